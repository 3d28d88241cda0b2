// The goals as ratios and figures of one `make bench` run: met or not, never asserted.
import type { InflightCheck } from "./scale/inflight.js";
import type { PollCheck } from "./scale/poll.js";
import type { PassCost } from "./scale/poll-pass.js";
import type { Row } from "./summary.js";

export interface Goal {
  goal: string;
  figure: number | undefined;
  /** the figure must stay at or below (max) or at or above (min) this */
  limit: { max: number } | { min: number };
  unit: string;
}

export interface GoalInputs {
  rows: Row[];
  poll?: PollCheck;
  smallPoll?: PollCheck;
  inflight: InflightCheck[];
}

const rowOf = (rows: Row[], name: string) => rows.find((r) => r.contender === name);
const ratio = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : a / b);
/** the dispatcher's own CPU in a poll check's step: the remote's side is the git server's */
export const ownPassCpu = (c: PassCost) => c.selfMs + c.childrenMs - c.remoteMs;
const cpu = (c?: PassCost) => (c ? ownPassCpu(c) : undefined);

export function evaluateGoals(g: GoalInputs): Goal[] {
  const d = rowOf(g.rows, "dispatcher");
  const md = rowOf(g.rows, "mock-dispatcher");
  const big = g.inflight.reduce<InflightCheck | undefined>((a, c) => (!a || c.requested > a.requested ? c : a), undefined);
  // a check that ended early measured nothing: its RSS is of fewer allocations than asked
  const bigRss = big?.outcome === "ok" ? big.peakRssMiB : undefined;
  return [
    { goal: "throughput ÷ raw (runner child, concurrency 4)", figure: ratio(d?.perSecond, rowOf(g.rows, "raw")?.perSecond), limit: { min: 0.98 }, unit: "×" },
    { goal: "throughput ÷ raw (mock_driver, concurrency 64)", figure: ratio(md?.perSecond, rowOf(g.rows, "mock-raw")?.perSecond), limit: { min: 0.9 }, unit: "×" },
    { goal: "dispatcher CPU per action (runner child)", figure: d?.cpuPerAction, limit: { max: 25 }, unit: "ms" },
    { goal: "dispatcher CPU per action (mock_driver)", figure: md?.cpuPerAction, limit: { max: 25 }, unit: "ms" },
    { goal: "git processes per action (runner child)", figure: d?.gitPerAction, limit: { max: 1.5 }, unit: "" },
    { goal: "git processes per action (mock_driver)", figure: md?.gitPerAction, limit: { max: 1.5 }, unit: "" },
    { goal: `idle pass CPU at ${g.poll?.history ?? "–"} done actions`, figure: cpu(g.poll?.idle), limit: { max: 30 }, unit: "ms" },
    {
      goal: `first result commit at ${g.poll?.history ?? "–"} actions ÷ at ${g.smallPoll?.history ?? "–"} (dispatcher CPU: the ops remote's side apart)`,
      figure: ratio(cpu(g.poll?.finish), cpu(g.smallPoll?.finish)),
      limit: { max: 2 },
      unit: "×",
    },
    { goal: `peak RSS with ${big?.requested ?? "–"} in flight`, figure: bigRss, limit: { max: 250 }, unit: "MiB" },
  ];
}

export function isMet(goal: Goal): boolean | undefined {
  if (goal.figure === undefined || !Number.isFinite(goal.figure)) return undefined;
  return "max" in goal.limit ? goal.figure <= goal.limit.max : goal.figure >= goal.limit.min;
}

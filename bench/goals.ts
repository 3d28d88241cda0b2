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

/**
 * Issue 36's goals, every one a ratio within this run (two machines 3× apart in speed agree on
 * ratios, not on milliseconds). The CPU goals divide by raw's machine CPU per action.
 */
export function evaluateGoals(g: GoalInputs): Goal[] {
  const d = rowOf(g.rows, "dispatcher");
  const raw = rowOf(g.rows, "raw");
  const trivial = rowOf(g.rows, "raw-trivial");
  const big = g.inflight.reduce<InflightCheck | undefined>((a, c) => (!a || c.requested > a.requested ? c : a), undefined);
  const bigRss = big?.outcome === "ok" ? big.peakRssMiB : undefined;
  const percent = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : (100 * a) / b);
  return [
    { goal: "service p50, dispatcher ÷ raw (runner child, concurrency 4)", figure: ratio(d?.serviceP50, raw?.serviceP50), limit: { max: 1.1 }, unit: "×" },
    { goal: "service p99, dispatcher ÷ raw", figure: ratio(d?.serviceP99, raw?.serviceP99), limit: { max: 1.5 }, unit: "×" },
    { goal: "batch p50, dispatcher ÷ raw", figure: ratio(d?.batchP50, raw?.batchP50), limit: { max: 1.1 }, unit: "×" },
    { goal: "throughput ÷ raw (runner child, concurrency 4)", figure: ratio(d?.perSecond, raw?.perSecond), limit: { min: 0.98 }, unit: "×" },
    { goal: "dispatcher's own CPU ÷ raw's machine CPU per action", figure: percent(d?.cpuPerAction, raw?.machinePerAction), limit: { max: 2 }, unit: "%" },
    { goal: "raw runner child's machine CPU ÷ raw-trivial's, per action (the runner's own cost)", figure: ratio(raw?.machinePerAction, trivial?.machinePerAction), limit: { max: 1.8 }, unit: "×" },
    {
      // the machine's CPU counts whatever else runs on it (another bench, a build): this one counts the child's own processes only
      goal: "… the same from the child's own processes (the agent, its executors and tasks, the git daemon serving the fetch)",
      figure: ratio(raw && childCpu(raw), trivial && childCpu(trivial)),
      limit: { max: 1.8 },
      unit: "×",
    },
    { goal: "throughput ÷ raw (mock_driver, concurrency 64)", figure: ratio(rowOf(g.rows, "mock-dispatcher")?.perSecond, rowOf(g.rows, "mock-raw")?.perSecond), limit: { min: 0.98 }, unit: "×" },
    { goal: `peak RSS with ${big?.requested ?? "–"} in flight (mock_driver; the issue's target is at 10,000)`, figure: bigRss, limit: { max: 250 }, unit: "MiB" },
    { goal: `idle pass CPU at ${g.poll?.history ?? "–"} done actions ÷ raw's machine CPU per action`, figure: percent(cpu(g.poll?.idle), raw?.machinePerAction), limit: { max: 1 }, unit: "%" },
  ];
}

/** A child's CPU per action on the stack's processes that run it: the Nomad agent, its reaped executors and tasks, the git daemon's upload-packs. */
export const childCpu = (r: Row) => r.agentPerAction + r.tasksPerAction + r.servicesPerAction.gitDaemon;

/** The goals of the issues before 36 (throughput, the dispatcher's CPU in ms, git processes, scale), kept to compare runs. */
export function evaluateEarlierGoals(g: GoalInputs): Goal[] {
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

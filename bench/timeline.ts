// The timeline of the runner rounds' batches, from the dispatcher's own log lines (kept by the
// bench with BENCH_LOG_DIR, at BENCH_LOG_LEVEL=debug for the points the info lines lack): per
// action webhook → pass → dispatched → child running → child ended (its place free) → result in
// the ledger → pushed, and how long a freed place waits for the next dispatch. Wall-clock gaps on
// a shared machine are noise in their milliseconds; what they show is where a wait sits.
//
//   node dist/bench/timeline.js <log file or directory> [--min N] [--concurrency C]
//
// Batches are split at each push webhook; those with fewer than --min actions (the warm-up
// batch of 4) are left out. "dispatched" is logged once the dispatch is in the ledger (after
// Nomad's answer); "child ended" when the allocation was seen terminal (the place is freed then).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseLines, type LogLine } from "./loglines.js";
import { percentile } from "./stats.js";

/** a log line as the timeline reads it (the level is not needed) */
interface Line extends Omit<LogLine, "level"> {
  duration_ms?: number;
  synced_ms?: number;
  read_ms?: number;
  started?: number;
  actions?: string[];
}

export interface BatchTimeline {
  webhookAt: number;
  actions: number;
  /** named gaps, ms, one value per action (or per freed place) */
  gaps: Map<string, number[]>;
}

const WEBHOOK = "push webhook: starting a pass";

/** The batches of one dispatcher's log lines, each from its webhook to the next. */
export function timelines(lines: Line[], concurrency: number): BatchTimeline[] {
  const starts = lines.flatMap((l, i) => (l.msg === WEBHOOK ? [i] : []));
  return starts.map((from, k) => batchTimeline(lines.slice(from, starts[k + 1] ?? lines.length), concurrency));
}

function batchTimeline(lines: Line[], concurrency: number): BatchTimeline {
  const webhookAt = lines[0]!.time;
  const at = (msg: string) => new Map(lines.filter((l) => l.msg === msg && l.action).map((l) => [l.action!, l.time] as const));
  const dispatched = at("dispatched");
  const running = at("child running");
  const ended = at("child ended: its place is free");
  const recorded = at("action finished");
  const pushed = new Map<string, number>();
  for (const l of lines) if (l.msg === "results pushed") for (const id of l.results ?? []) if (!pushed.has(id)) pushed.set(id, l.time);
  /** the starts a freed place made without a pass: the decision's time, as a pass's end */
  const freedStarts = lines.filter((l) => l.msg === "a freed place started the next decided actions").map((l) => ({ start: l.time, end: l.time, started: l.actions?.length ?? 0, synced: undefined, read: undefined }));
  const passes = lines.filter((l) => l.msg === "pass done").map((l) => ({ start: l.time - (l.duration_ms ?? 0), end: l.time, started: l.started ?? 0, synced: l.synced_ms, read: l.read_ms }));
  const first = passes.find((p) => p.started > 0);
  const ids = [...dispatched.keys()];
  const gaps = new Map<string, number[]>();
  const add = (name: string, v: number | undefined) => {
    if (v === undefined || Number.isNaN(v)) return;
    gaps.set(name, [...(gaps.get(name) ?? []), v]);
  };
  const between = (a: Map<string, number>, b: Map<string, number>, id: string) => (a.has(id) && b.has(id) ? b.get(id)! - a.get(id)! : undefined);
  if (first) {
    add("webhook → first dispatching pass starts", first.start - webhookAt);
    add("first dispatching pass (sync, read, decide)", first.end - first.start);
    add("… of it: sync (the webhook's tip fetched)", first.synced);
    add("… of it: the actions directory read", first.read !== undefined && first.synced !== undefined ? first.read - first.synced : undefined);
    add("… of it: decide and start (catalog, approvals, ledger, plan)", first.read !== undefined ? first.end - first.start - first.read : undefined);
  }
  const byDispatch = [...ids].sort((a, b) => dispatched.get(a)! - dispatched.get(b)!);
  for (const id of byDispatch.slice(0, concurrency)) add("first pass done → dispatched (first wave)", first ? dispatched.get(id)! - first.end : undefined);
  for (const id of ids) {
    add("dispatched → child running", between(dispatched, running, id));
    add("child running → child ended", between(running, ended, id));
    add("child ended → result in the ledger", between(ended, recorded, id));
    add("result in the ledger → pushed", between(recorded, pushed, id));
    add("dispatched → pushed (service)", between(dispatched, pushed, id));
    add("webhook → pushed (batch)", pushed.has(id) ? pushed.get(id)! - webhookAt : undefined);
  }
  // the k-th place freed is taken by the (k + concurrency)-th dispatch
  const freed = [...ended.values()].sort((a, b) => a - b);
  const starts = byDispatch.map((id) => dispatched.get(id)!);
  for (let k = 0; k + concurrency < starts.length && k < freed.length; k++) {
    add("child ended → next dispatched (a freed place)", starts[k + concurrency]! - freed[k]!);
    // what started the next action: a pass, or the freed place itself from the passes' decisions
    const fast = freedStarts.find((p) => p.end >= freed[k]!);
    const pass = passes.find((p) => p.end >= freed[k]! && p.started > 0);
    const decider = fast && (!pass || fast.end <= pass.end) ? fast : pass;
    if (decider) {
      add("child ended → the next start decided (pass start, or a freed place's own start)", decider.start - freed[k]!);
      add("next start decided → its dispatch logged", starts[k + concurrency]! - decider.end);
    }
    if (decider === fast) add("freed places started without a pass (1 each)", 1);
    else if (decider) add("freed places started by a pass (1 each)", 1);
  }
  for (const p of passes) add("pass duration (every pass)", p.end - p.start);
  return { webhookAt, actions: ids.length, gaps };
}

function readLines(file: string): Line[] {
  return (parseLines(readFileSync(file, "utf8")) as Line[]).sort((a, b) => a.time - b.time);
}

function main(argv: string[]): void {
  const path = argv[0];
  if (!path) throw new Error("usage: node dist/bench/timeline.js <log file or directory> [--min N] [--concurrency C] (e.g. node dist/bench/timeline.js .dev/bench-logs --min 20)");
  const opt = (name: string, dflt: number) => {
    const i = argv.indexOf(name);
    return i < 0 ? dflt : Number(argv[i + 1]);
  };
  const min = opt("--min", 5);
  const concurrency = opt("--concurrency", 4);
  const files = statSync(path).isDirectory() ? readdirSync(path).filter((f) => f.endsWith(".log")).map((f) => join(path, f)) : [path];
  const batches = files.flatMap((f) => timelines(readLines(f), concurrency)).filter((b) => b.actions >= min);
  const all = new Map<string, number[]>();
  for (const b of batches) for (const [name, values] of b.gaps) all.set(name, [...(all.get(name) ?? []), ...values]);
  console.log(`${batches.length} batches of at least ${min} actions (${batches.map((b) => b.actions).join(", ")}), concurrency ${concurrency}\n`);
  console.log("| gap | n | p50 ms | p90 ms | max ms |\n|---|---|---|---|---|");
  for (const [name, v] of all) console.log(`| ${name} | ${v.length} | ${percentile(v, 50).toFixed(0)} | ${percentile(v, 90).toFixed(0)} | ${Math.max(...v).toFixed(0)} |`);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));

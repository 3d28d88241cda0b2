import type { AllocationState, ChildJob, InstanceBeat } from "./ports.js";
import type { ActionResult, ResultStatus } from "./result.js";

// What `dispatcher status` shows: the ops repo at its tip (pending actions, results) merged with
// Nomad (dispatched children whose meta names the action). Pure: the CLI gathers, this decides.

export type Kind = "runner" | "sidecar";

/**
 * Before a result exists: pending (not dispatched), queued (no allocation yet), starting, running,
 * finishing (ended, result not pushed yet), unpushed (its result is in the ledger but did not
 * reach the repo: a push keeps failing, or the repo's layout refuses its path), unwritable (its
 * result's path is taken by what is no file: never dispatched, as no result could land).
 */
export type LiveState = "pending" | "queued" | "starting" | "running" | "finishing" | "unpushed" | "unwritable";

export interface StatusRow {
  id: string;
  kind?: Kind;
  state: LiveState | ResultStatus;
  job?: string;
  alloc?: string;
  node?: string;
  /** when the current state began: dispatch, task start or the result's end */
  since?: string;
  exitCode?: number;
}

export type StoredResult = Pick<ActionResult, "id" | "status" | "exit_code" | "timestamp"> &
  Partial<Pick<ActionResult, "job_id" | "alloc_id" | "node" | "finished_at">>;

export interface LiveChild extends ChildJob {
  alloc?: AllocationState;
}

export interface StatusInput {
  /** what this dispatcher's children carry as ops_repo (the runner remote): children of another ops repo are not ours */
  remote: string;
  /** parent job name → kind, e.g. runner → runner */
  kinds: Readonly<Record<string, Kind>>;
  /** action files at the tip without a result; kind when the file parses */
  pending: { id: string; kind?: Kind }[];
  results: StoredResult[];
  children: LiveChild[];
  /** pending actions whose ledger entry holds a finished result: when it ended */
  unpushed?: ReadonlyMap<string, string>;
  /** actions held back because their result's path is taken by what is no file (repo-read.ts) */
  unwritable?: readonly string[];
}

/** The allocation Nomad created last (a dispatched child has one, unless it was rescheduled). */
const TERMINAL = new Set(["complete", "failed", "lost"]);

/** The allocation will not change any more: its task ended, or its node was lost. */
export function isTerminal(alloc: AllocationState): boolean {
  return TERMINAL.has(alloc.clientStatus);
}

export function latestAllocation(allocs: AllocationState[]): AllocationState | undefined {
  return [...allocs].sort((a, b) => b.createIndex - a.createIndex)[0];
}

/** The latest child per pending action of this ops repo (tests and other repos share a cluster). */
export function latestChildren<T extends ChildJob>(children: T[], pendingIds: ReadonlySet<string>, remote: string): Map<string, T> {
  const latest = new Map<string, T>();
  for (const c of children) {
    const id = c.meta.action_id;
    if (id === undefined || !pendingIds.has(id)) continue;
    if (c.meta.ops_repo !== undefined && c.meta.ops_repo !== remote) continue;
    const prev = latest.get(id);
    if (!prev || c.submittedAt > prev.submittedAt) latest.set(id, c);
  }
  return latest;
}

export function mergeStatus(input: StatusInput): StatusRow[] {
  const pendingIds = new Set(input.pending.map((p) => p.id));
  const live = latestChildren(input.children, pendingIds, input.remote);
  const rows: StatusRow[] = input.pending.map((p) => {
    const row = liveRow(p.id, p.kind, live.get(p.id));
    const ended = input.unpushed?.get(p.id);
    return ended === undefined || (row.state !== "finishing" && row.state !== "pending") ? row : { ...row, state: "unpushed", since: ended };
  });
  for (const id of input.unwritable ?? []) rows.push({ id, state: "unwritable" });
  for (const r of input.results) {
    if (pendingIds.has(r.id)) continue;
    rows.push({
      id: r.id,
      kind: r.job_id ? input.kinds[r.job_id.split("/")[0]!] : undefined,
      state: r.status,
      job: r.job_id,
      alloc: r.alloc_id,
      node: r.node,
      since: r.finished_at ?? r.timestamp,
      // -1 marks "no process ran"
      exitCode: r.exit_code >= 0 ? r.exit_code : undefined,
    });
  }
  return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function liveRow(id: string, kind: Kind | undefined, child: LiveChild | undefined): StatusRow {
  if (!child) return { id, kind, state: "pending" };
  const a = child.alloc;
  const base = { id, kind, job: child.jobId, alloc: a?.id, node: a?.node || undefined };
  if (!a) return { ...base, state: "queued", since: child.submittedAt.toISOString() };
  if (a.clientStatus === "pending") return { ...base, state: "starting", since: child.submittedAt.toISOString() };
  if (a.clientStatus === "running") return { ...base, state: "running", since: a.startedAt ?? child.submittedAt.toISOString() };
  return { ...base, state: "finishing", since: a.finishedAt ?? a.startedAt, exitCode: a.exitCode };
}

/** 45s, 12m, 5h, 3d: one unit, like kubectl. */
export function formatAge(since: string | undefined, now: Date): string {
  const t = since ? Date.parse(since) : NaN;
  if (!Number.isFinite(t)) return "-";
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 120 * 60) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const COLUMNS = ["ID", "KIND", "STATE", "JOB", "ALLOC", "NODE", "AGE", "EXIT"] as const;

/** A plain-text table; allocation ids short like Nomad's CLI, "-" for what is unknown. */
/** Columns padded to their widest cell, the last one left ragged. */
function formatColumns(all: string[][]): string {
  const widths = all[0]!.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/**
 * `status --instances`: one row per replica that beat under this ledger. STATE: alive, draining
 * (finishing what it holds, claiming nothing), or silent (no beat within the lease: presumed dead,
 * its actions are taken over).
 */
export function formatInstancesTable(beats: InstanceBeat[], now: Date, leaseMs: number): string {
  if (beats.length === 0) return "no instances have beaten under this ledger\n";
  const sorted = [...beats].sort((a, b) => b.seenAt.getTime() - a.seenAt.getTime() || a.instance.localeCompare(b.instance));
  const cells = sorted.map((b) => {
    const silent = now.getTime() - b.seenAt.getTime() > leaseMs;
    const state = silent ? "silent" : b.draining ? "draining" : "alive";
    return [b.instance, state, formatAge(b.seenAt.toISOString(), now), b.inFlight === undefined ? "-" : String(b.inFlight), b.version ?? "-"];
  });
  return formatColumns([["INSTANCE", "STATE", "LAST SEEN", "IN FLIGHT", "VERSION"], ...cells]);
}

export function formatStatusTable(rows: StatusRow[], now: Date): string {
  if (rows.length === 0) return "no actions\n";
  const cells = rows.map((r) => [
    r.id,
    r.kind ?? "-",
    r.state,
    r.job ?? "-",
    r.alloc ? r.alloc.slice(0, 8) : "-",
    r.node ?? "-",
    formatAge(r.since, now),
    r.exitCode === undefined ? "-" : String(r.exitCode),
  ]);
  return formatColumns([[...COLUMNS], ...cells]);
}

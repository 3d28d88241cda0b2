import type { ChildIdentity, LedgerEntry } from "./ports.js";
import { RESULT_STATUSES } from "./result.js";

// The ledger is not trusted blindly: anyone who could write a variable under its prefix could
// point an entry at an unrelated job (which the dispatcher would then stop) or an unrelated
// token (which it would revoke). Before acting on an entry, its job must be our child for it.

export interface Fence {
  /** every runner/sidecar parent (one per mount set) */
  parents: ReadonlySet<string>;
  /** the namespace runner jobs live in */
  namespace: string;
}

/**
 * Pure: why the entry's job is not this action's dispatched child, or undefined when it is (or
 * when the entry names no job, or Nomad no longer knows it: then there is nothing to stop).
 */
export function entryProblem(entry: LedgerEntry, child: ChildIdentity | undefined, fence: Fence): string | undefined {
  if (!entry.jobId || !child) return undefined;
  if (child.namespace !== fence.namespace) return `job ${entry.jobId} is in namespace "${child.namespace}", not "${fence.namespace}"`;
  if (!fence.parents.has(child.parent)) {
    return `job ${entry.jobId} is not a dispatched child of a runner/sidecar parent (parent: "${child.parent || "none"}")`;
  }
  const { action_id: id, action_sha: sha } = child.meta;
  if (id !== entry.id || sha !== entry.actionSha) {
    return `job ${entry.jobId} runs action "${id ?? "none"}" at ${sha ?? "no sha"}, not "${entry.id}" at ${entry.actionSha}`;
  }
  return undefined;
}

/**
 * Pure: a stored result must be the result of the entry it is stored in, for the action file as
 * it is now (`sha`, when given), and at the entry's commit.
 */
export function storedResultProblem(entry: LedgerEntry, sha?: string): string | undefined {
  let r: { id?: unknown; action_sha?: unknown; commit?: unknown; status?: unknown };
  try {
    r = JSON.parse(entry.result ?? "{}") as typeof r;
  } catch {
    return `the stored result of "${entry.id}" is not JSON`;
  }
  if (r.id !== entry.id) return `the stored result names action ${JSON.stringify(r.id ?? null)}, not "${entry.id}"`;
  if (sha === undefined) return undefined;
  if (entry.actionSha !== sha || r.action_sha !== sha) return `the stored result is for ${JSON.stringify(r.action_sha ?? null)} (entry ${entry.actionSha}), not the action file's ${sha}`;
  if (r.commit !== entry.commit) return `the stored result names commit ${JSON.stringify(r.commit ?? null)}, not the entry's ${entry.commit}`;
  if (typeof r.status !== "string" || !STATUSES.has(r.status)) return `the stored result's status ${JSON.stringify(r.status ?? null)} is not a result status`;
  return undefined;
}

const STATUSES: ReadonlySet<string> = new Set(RESULT_STATUSES);

/**
 * Pure: a finished entry's stored result is pushed only when its job is our child for this
 * action at the entry's commit (entryProblem, and the job must still be known).
 */
export function finishedJobProblem(entry: LedgerEntry, child: ChildIdentity | undefined, fence: Fence): string | undefined {
  if (!entry.jobId) return `the entry names no job`;
  if (!child) return `job ${entry.jobId} is not known to Nomad`;
  return entryProblem(entry, child, fence) ?? (child.meta.commit === entry.commit ? undefined : `job ${entry.jobId} ran commit ${child.meta.commit ?? "none"}, not the entry's ${entry.commit}`);
}

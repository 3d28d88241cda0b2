import type { ChildIdentity, LedgerEntry } from "./ports.js";

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

/** Pure: a stored result must be the result of the entry it is stored in. */
export function storedResultProblem(entry: LedgerEntry): string | undefined {
  let id: unknown;
  try {
    id = (JSON.parse(entry.result ?? "{}") as { id?: unknown }).id;
  } catch {
    return `the stored result of "${entry.id}" is not JSON`;
  }
  return id === entry.id ? undefined : `the stored result names action ${JSON.stringify(id ?? null)}, not "${entry.id}"`;
}

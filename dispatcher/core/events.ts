// What the loop reports as it carries out the lifecycle: one typed event per transition, in the
// manner of graphile-worker's WorkerEvents. Logs hang on these (core/log-events.ts), and so do
// the Prometheus metrics (server/metrics.ts). A listener that throws is dropped from that event,
// never allowed to stop the loop.
import type { IgnoredCode } from "../actions/names.js";
import type { FailureClass } from "../errors.js";
import type { ResultStatus } from "./result.js";

interface Attempt {
  id: string;
  attempt: number;
}

export interface LoopEvents {
  /** refused before any token was minted: invalid, not allowed, unapproved, unknown secret */
  "action:refused": { id: string; class: FailureClass; problem: string };
  /** a child runs for the attempt; `duplicate`: Nomad already had it (same idempotency token); `queuedMs`: since the pass first saw the action pending */
  "action:dispatched": Attempt & { jobId: string; policies: string[]; duplicate: boolean; queuedMs: number };
  /** the child's allocation is running, `sinceDispatchMs` after the dispatch */
  "action:started": Attempt & { jobId: string; allocId: string; node: string; sinceDispatchMs: number };
  /** the child has ended: its place under the limits is free (its logs, token and result follow) */
  "action:released": { id: string };
  /** a child left by another owner (or a previous life) is followed again */
  "action:reattached": Attempt & { jobId: string; from: string };
  /** the attempt ends without a result and is tried again after `delayMs` */
  "action:retrying": Attempt & { class: FailureClass; delayMs: number; jobId?: string; err?: unknown };
  /** the result is in the ledger; `ran`: a child ran (else it failed before one did); `sinceDispatchMs`: dispatch → result */
  "action:finished": Attempt & { status: ResultStatus; ran: boolean; class?: FailureClass; jobId?: string; allocId?: string; exitCode?: number; problem?: string; err?: unknown; sinceDispatchMs?: number };
  /** a runner token was minted (wrapped) for the attempt */
  "token:minted": Attempt & { policies: string[] };
  /** the attempt's runner token was revoked after its run */
  "token:revoked": { id: string };
  /** minting or revoking failed (a revoke that fails leaves the token to its TTL) */
  "token:failed": { id: string; op: "mint" | "revoke"; class: FailureClass; err: unknown };
  /** a check-and-set on the ledger found another writer first: the action is someone else's now */
  "ledger:conflict": { id: string };
  /** a child with neither evaluation nor allocation was evaluated again (nomad#26655) */
  "job:reevaluated": { id: string; jobId: string };
  /** a child whose result is in the ops repo was purged from Nomad after the retention */
  "job:purged": { id: string; jobId: string };
  /** purging failed: the child stays for Nomad's own garbage collection */
  "job:purge-failed": { id: string; jobId: string; class: FailureClass; err: unknown };
  /** the actions a pass's plan would start but that wait for a place another replica holds (a key's lock, a slot), and the slots this process holds */
  "places:waits": { lock: number; slot: number; held: number };
  /** a re-attached child got no place under the shared limits (another replica took them): followed anyway */
  "places:overrun": { id: string };
  /** freeing a place failed: it stays until this process's lease ends or it frees it again */
  "places:free-failed": { id: string; err: unknown };
  /** a replica's heartbeat silent past the retention was removed from the ledger */
  "ledger:instance-forgotten": { instance: string; seenAt: string };
  /** a recorded action's ledger entry past the retention was removed (its result in the repo is the record) */
  "ledger:entry-removed": { id: string; recordedAt: string };
  /** the ledger's entries after a retention sweep */
  "ledger:size": { entries: number };
  /** a pass ended: what it started and refused, and how long it took */
  /** a freed place started these actions from the passes' decisions, without a pass of its own */
  "pass:freed-start": { ids: string[] };
  "pass:done": { durationMs: number; commit: string; started: number; refused: number; waiting: number; signaturesChecked?: number; syncedMs?: number; readMs?: number };
  /** a pass failed (an engine unreachable, …): the next poll tries again */
  "pass:failed": { durationMs: number; class: FailureClass; err: unknown };
  /** a ledger entry that does not hold up (forged, or another action's): left alone */
  "ledger:distrusted": { id: string; problem: string; owner: string; jobId?: string; attempt?: number };
  /**
   * the entries of the actions directory that are not part of the contract changed (names.ts):
   * how many by code, the first few paths, whether the listing was cut at its cap
   */
  "repo:ignored": { dir: string; count: number; byCode: Partial<Record<IgnoredCode, number>>; sample: { path: string; reason: string }[]; truncated: boolean };
  /** a pending action could not be considered (its input made a check throw): the pass went on with the others */
  "action:skipped": { id: string; class: FailureClass; err: unknown };
  /** results the repo cannot hold at their paths (names.ts never lets such an action through; a symlink or a file in the way): the others landed */
  "results:unwritable": { ids: string[] };
  /** results committed and pushed in one commit; `rejections`: pushes refused by a concurrent writer first */
  "results:pushed": { ids: string[]; rejections: number };
  /** a push failed: the results stay queued (and in the ledger) for the next flush */
  "results:kept": { waiting: number; err: unknown };
  /** a labelled issue started its sidecar run (core/issue-loop.ts): `id` is <project>/<issue>-<label>-<event> */
  "issue:started": { id: string; repo: string; issue: number; label: string; formula: string; resumed: boolean };
  /** the run's result is pushed and the issue carries its outcome label and comment */
  "issue:finished": { id: string; repo: string; issue: number; formula: string; status: ResultStatus; outcome: string };
  /** a labelled issue waits: its run is held by another replica, the project file is missing, or the limit is reached */
  "issue:waiting": { id: string; reason: string };
  /** the forge's issues could not be read or told (the next issue pass tries again) */
  "issue:forge-failed": { repo: string; class: FailureClass; err: unknown };
}

export type LoopEventName = keyof LoopEvents;

export interface LoopEmitter {
  /** returns a function that removes the listener */
  on<K extends LoopEventName>(name: K, listener: (event: LoopEvents[K]) => void): () => void;
  emit<K extends LoopEventName>(name: K, event: LoopEvents[K]): void;
}

export function createLoopEmitter(): LoopEmitter {
  const listeners = new Map<LoopEventName, Set<(event: never) => void>>();
  return {
    on(name, listener) {
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      set.add(listener as (event: never) => void);
      return () => void set.delete(listener as (event: never) => void);
    },
    emit(name, event) {
      for (const listener of listeners.get(name) ?? []) {
        try {
          (listener as (e: typeof event) => void)(event);
        } catch {
          // an observer's bug must not fail an action
        }
      }
    },
  };
}

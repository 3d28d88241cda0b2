// What the loop reports as it carries out the lifecycle: one typed event per transition, in the
// manner of graphile-worker's WorkerEvents. Logs hang on these (core/log-events.ts); so will
// metrics. A listener that throws is dropped from that event, never allowed to stop the loop.
import type { FailureClass } from "../errors.js";
import type { ResultStatus } from "./result.js";

interface Attempt {
  id: string;
  attempt: number;
}

export interface LoopEvents {
  /** refused before any token was minted: invalid, not allowed, unapproved, unknown secret */
  "action:refused": { id: string; class: FailureClass; problem: string };
  /** a child runs for the attempt; `duplicate`: Nomad already had it (same idempotency token) */
  "action:dispatched": Attempt & { jobId: string; policies: string[]; duplicate: boolean };
  /** a child left by another owner (or a previous life) is followed again */
  "action:reattached": Attempt & { jobId: string; from: string };
  /** the attempt ends without a result and is tried again after `delayMs` */
  "action:retrying": Attempt & { class: FailureClass; delayMs: number; jobId?: string; err?: unknown };
  /** the result is in the ledger; `ran`: a child ran (else it failed before one did) */
  "action:finished": Attempt & { status: ResultStatus; ran: boolean; class?: FailureClass; jobId?: string; allocId?: string; exitCode?: number; problem?: string; err?: unknown };
  /** a ledger entry that does not hold up (forged, or another action's): left alone */
  "ledger:distrusted": { id: string; problem: string; owner: string; jobId?: string; attempt?: number };
  /** results committed and pushed in one commit */
  "results:pushed": { ids: string[] };
  /** a push failed: the results stay queued (and in the ledger) for the next flush */
  "results:kept": { waiting: number; err: unknown };
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

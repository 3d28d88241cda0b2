// Results on their way to the ops repo: queued (each already in the ledger when it has an entry),
// committed and pushed together, then each one's `pushed` continuation runs (its lifecycle's
// finished → recorded). The writer (writer.ts) builds the commit; this module decides when.
import type { Logger } from "../log.js";
import type { LoopEmitter } from "./events.js";
import type { Clock, OpsRepoPort } from "./ports.js";
import type { ActionResult } from "./result.js";
import { createResultWriter } from "./writer.js";

export interface FlushDeps {
  repo: OpsRepoPort;
  clock: Clock;
  events: LoopEmitter;
  log: Logger;
  settings: {
    actionsDir: string;
    maxLogBytes: number;
    /** results finished within this window share one commit and one push */
    commitWindowMs: number;
    /** pushes of results start at most this often; what finishes meanwhile joins the next (0: no bound) */
    pushIntervalMs: number;
  };
  /** attempts alive: while none is, no other result can join a commit */
  inFlight(): number;
}

export function createFlusher(d: FlushDeps) {
  const writer = createResultWriter(d.repo, { actionsDir: d.settings.actionsDir, maxLogBytes: d.settings.maxLogBytes, log: d.log });
  /** what runs once a queued result is at the tip, by id */
  const onPushed = new Map<string, () => Promise<void>>();
  /** the coalescing window's flush, while one is scheduled or running */
  let flushing: Promise<void> | undefined;
  /** ends the scheduled flush's wait early: nothing is left in flight to join it */
  let flushNow: AbortController | undefined;
  /** when the last flush started */
  let lastFlushAt = Number.NEGATIVE_INFINITY;
  const now = () => d.clock.now().getTime();

  /** Queues a result; `pushed` runs once it is at the tip (pushed, or found there). The push is not scheduled. */
  function add(result: ActionResult, fullLog: string, pushed?: () => Promise<void>): void {
    writer.add({ result, fullLog });
    if (pushed) onPushed.set(result.id, pushed);
    else onPushed.delete(result.id);
  }

  /**
   * Results that finish within the window share one commit and one push, and pushes start at most
   * once per push interval (git hosts rate-limit pushes, and each push costs both sides several git processes):
   * under load a commit carries what finished since the last one. The wait ends early when
   * nothing is left in flight.
   */
  function schedule(): void {
    if (flushing || writer.size() === 0) return;
    // with nothing in flight no other result can join: push now (a pass that ran during the
    // last push, or one that only refused, would otherwise wait out the interval)
    const wait = d.inFlight() === 0 ? 0 : Math.max(d.settings.commitWindowMs, lastFlushAt + d.settings.pushIntervalMs - now());
    const cut = new AbortController();
    flushNow = cut;
    flushing = d.clock
      .sleep(wait, cut.signal)
      .catch(() => undefined)
      .then(() => {
        flushing = undefined; // results recorded from here on get the next window
        flushNow = undefined;
        lastFlushAt = now();
        return flushSafely();
      });
  }

  /** Pushes what is queued and marks it recorded (each one's `pushed`); rejects when the push fails. */
  async function flush(): Promise<void> {
    const { written, skipped, failed, rejections } = await writer.flush();
    if (written.length > 0) d.events.emit("results:pushed", { ids: written, rejections });
    if (failed.length > 0) d.events.emit("results:unwritable", { ids: failed });
    for (const id of [...written, ...skipped]) {
      const pushed = onPushed.get(id);
      onPushed.delete(id);
      await pushed?.();
    }
  }

  /** flush(), reporting a failed push instead of rejecting: the results stay queued for the next */
  async function flushSafely(): Promise<void> {
    try {
      await flush();
    } catch (err) {
      d.events.emit("results:kept", { waiting: writer.size(), err });
    }
  }

  return {
    add,
    /** queues a result and schedules its push */
    queue(result: ActionResult, fullLog: string, pushed?: () => Promise<void>): void {
      add(result, fullLog, pushed);
      schedule();
    },
    schedule,
    /** ids with a result waiting to be pushed or pushed by this process */
    holds: (id: string) => writer.holds(id),
    size: () => writer.size(),
    /** the last attempt ended: no other result can join the scheduled commit soon, push it now */
    nothingInFlight(): void {
      flushNow?.abort();
    },
    /** the scheduled or running flush has ended */
    settled: async (): Promise<void> => void (await flushing),
    flush,
    flushSafely,
  };
}

export type Flusher = ReturnType<typeof createFlusher>;

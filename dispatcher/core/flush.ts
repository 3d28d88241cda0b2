// Results on their way to the ops repo: queued (each already in the ledger when it has an entry),
// committed and pushed together, then each one's `pushed` continuation runs (its lifecycle's
// finished → recorded). The writer (writer.ts) builds the commit; this module decides when.
import type { Logger } from "../log.js";
import type { LoopEmitter } from "./events.js";
import type { OpsRepoPort } from "./ports.js";
import type { ActionResult } from "./result.js";
import { createResultWriter } from "./writer.js";

export interface FlushDeps {
  repo: OpsRepoPort;
  events: LoopEmitter;
  log: Logger;
  settings: { actionsDir: string; maxLogBytes: number };
  /** a push of ours made `commit` on `base`: it differs from it only by the results it wrote */
  onCommit?(base: string, commit: string): void;
}

/**
 * Group commit: a push starts as soon as a result waits and no push is running; what is queued
 * during a push joins the next one. Alone, a result waits only for its own push; under load a
 * commit carries what finished during the push before it, so the batch grows with the push's own
 * duration (and the pushes' rate stays bounded by it), with no timer to wait out.
 */
export function createFlusher(d: FlushDeps) {
  // the writer pushes through this port: each commit of ours is reported with the tip it was built on
  const repo: OpsRepoPort = {
    ...d.repo,
    async writeFiles(files, message) {
      const outcome = await d.repo.writeFiles(files, message);
      if (outcome.base !== undefined && outcome.base !== outcome.commit) d.onCommit?.(outcome.base, outcome.commit);
      return outcome;
    },
  };
  const writer = createResultWriter(repo, { actionsDir: d.settings.actionsDir, maxLogBytes: d.settings.maxLogBytes, log: d.log });
  /** what runs once a queued result is at the tip, by id */
  const onPushed = new Map<string, () => Promise<void>>();
  /** the pushes in progress, one after the other while results wait */
  let pushing: Promise<void> | undefined;
  /** pushed results being marked recorded: the next push does not wait for them */
  const marking = new Set<Promise<void>>();

  /**
   * Queues a result; `pushed` runs once it is at the tip (pushed, or found there). No push is
   * started. `dir`: the folder it goes to when not the actions folder (an issue run's).
   */
  function add(result: ActionResult, fullLog: string, pushed?: () => Promise<void>, dir?: string): void {
    writer.add({ result, fullLog, ...(dir === undefined ? {} : { dir }) });
    if (pushed) onPushed.set(result.id, pushed);
    else onPushed.delete(result.id);
  }

  /** Starts pushing what waits unless a push runs (what waits then joins the next push it makes). */
  function schedule(): void {
    if (pushing || writer.size() === 0) return;
    pushing = pushWhileWaiting().finally(() => (pushing = undefined));
  }

  /** pushes until nothing waits; a failed push ends the round (the results stay queued: the next result or pass tries again) */
  async function pushWhileWaiting(): Promise<void> {
    try {
      while (writer.size() > 0) {
        const { marks } = await push();
        marking.add(marks);
        void marks.finally(() => marking.delete(marks));
      }
    } catch (err) {
      d.events.emit("results:kept", { waiting: writer.size(), err });
    }
  }

  /** Pushes what is queued (rejects when the push fails); resolves to the marks of what it pushed, each one's `pushed` in turn. */
  async function push(): Promise<{ marks: Promise<void> }> {
    const { written, skipped, failed, rejections } = await writer.flush();
    if (written.length > 0) d.events.emit("results:pushed", { ids: written, rejections });
    if (failed.length > 0) d.events.emit("results:unwritable", { ids: failed });
    const marks = [...written, ...skipped].flatMap((id) => {
      const pushed = onPushed.get(id);
      onPushed.delete(id);
      return pushed ? [pushed] : [];
    });
    const all = (async () => {
      for (const pushed of marks) await pushed();
    })();
    return { marks: all };
  }

  /** Pushes what is queued and marks it recorded; rejects when the push fails. */
  async function flush(): Promise<void> {
    await (await push()).marks;
  }

  return {
    add,
    /** queues a result and starts its push unless one runs */
    queue(result: ActionResult, fullLog: string, pushed?: () => Promise<void>, dir?: string): void {
      add(result, fullLog, pushed, dir);
      schedule();
    },
    schedule,
    /** ids with a result waiting to be pushed or pushed by this process */
    holds: (id: string) => writer.holds(id),
    size: () => writer.size(),
    /** the pushes in progress, and the marks of what they pushed, have ended */
    settled: async (): Promise<void> => {
      await pushing;
      await Promise.all(marking);
    },
    flush,
    /** flush(), reporting a failed push instead of rejecting: the results stay queued for the next */
    async flushSafely(): Promise<void> {
      try {
        await flush();
      } catch (err) {
        d.events.emit("results:kept", { waiting: writer.size(), err });
      }
    },
  };
}

export type Flusher = ReturnType<typeof createFlusher>;

// What ends the loop's wait between passes: a due time, a child's end (its place frees), an
// attempt that is over, or one of the caller's signals (shutdown, a push webhook).
import type { Clock } from "./ports.js";

/** why a wait's timer and listeners were dropped (see until) */
const WAIT_OVER = new Error("the wait is over");

export function createWaits(clock: Clock) {
  /** a child ended or an attempt was over since the last pass began: the next wait returns at once */
  let endedSincePass = false;
  /** ends the current wait */
  let wakeOnEnd: (() => void) | undefined;

  return {
    /** a child ended or an attempt is over: a pass may start what waited on its place */
    noteEnd(): void {
      endedSincePass = true;
      wakeOnEnd?.();
    },
    /** a pass begins: ends noted before it are its to see */
    passBegins(): void {
      endedSincePass = false;
    },
    /**
     * Waits for the next pass: until `due`, or until a child in flight ends or an attempt is
     * over, or one of `signals`. An end since the last pass began ends the wait at once.
     */
    async until(due: number, ...signals: AbortSignal[]): Promise<void> {
      if (endedSincePass || signals.some((x) => x.aborted)) return;
      // ends this wait's timer and listeners: the signals outlive many waits
      const done = new AbortController();
      const ended = new Promise<void>((r) => (wakeOnEnd = r));
      const woken = signals.map((x) => new Promise<void>((r) => x.addEventListener("abort", () => r(), { once: true, signal: done.signal })));
      const timer = Number.isFinite(due) ? [clock.sleep(Math.max(100, due - clock.now().getTime()), done.signal).catch(() => undefined)] : [];
      await Promise.race([ended, ...woken, ...timer]);
      wakeOnEnd = undefined;
      // a reason of our own: the default builds a DOMException, with its stack, on every wait
      done.abort(WAIT_OVER);
    },
  };
}

export type Waits = ReturnType<typeof createWaits>;

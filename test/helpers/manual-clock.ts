// A clock that moves only when the test says so: a sleep ends when `advance` passes its deadline
// (or its signal aborts), so a test holds every timer of a module under test in its hand.
import { Writable } from "node:stream";
import type { Clock } from "../../dispatcher/core/ports.js";
import { createLogger, type Logger } from "../../dispatcher/log.js";

export function manualClock(start = Date.parse("2026-12-02T10:00:00.000Z")): Clock & { advance(ms: number): Promise<void>; sleeping(): number[] } {
  let t = start;
  const sleepers = new Set<{ at: number; resolve: () => void }>();
  return {
    now: () => new Date(t),
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const s = { at: t + ms, resolve };
        sleepers.add(s);
        signal?.addEventListener("abort", () => (sleepers.delete(s), reject(signal.reason)), { once: true });
      });
    },
    /** moves the clock, ending each sleep it passes, and lets what they started run */
    async advance(ms) {
      t += ms;
      for (const s of [...sleepers].filter((x) => x.at <= t)) {
        sleepers.delete(s);
        s.resolve();
      }
      for (let i = 0; i < 10; i++) await Promise.resolve();
    },
    /** the deadlines of the sleeps in progress, ms from now */
    sleeping: () => [...sleepers].map((s) => s.at - t),
  };
}

/** A logger whose lines are kept as parsed objects (or dropped, when `lines` is not read). */
export function capturingLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ destination, level: "debug", pretty: false }), lines };
}

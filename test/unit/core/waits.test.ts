// The wait between passes: what ends it (due time, a child's end, a signal) and what makes it
// return at once (an end noted since the pass began).
import { describe, expect, it } from "vitest";
import { createWaits } from "../../../dispatcher/core/waits.js";
import { manualClock } from "../../helpers/manual-clock.js";

/** whether `p` has settled after the microtasks pending now */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
}

describe("createWaits", () => {
  it("ends at the due time (never sooner than 100 ms), leaving no timer behind", async () => {
    const clock = manualClock();
    const w = createWaits(clock);
    const waiting = w.until(clock.now().getTime() + 5000);
    expect(clock.sleeping()).toEqual([5000]);
    await clock.advance(4999);
    expect(await settled(waiting)).toBe(false);
    await clock.advance(1);
    expect(await settled(waiting)).toBe(true);
    const soon = w.until(clock.now().getTime());
    expect(clock.sleeping()).toEqual([100]);
    await clock.advance(100);
    expect(await settled(soon)).toBe(true);
    expect(clock.sleeping()).toEqual([]);
  });

  it("a child's end ends the wait; an end noted since the pass began returns at once, until the next pass begins", async () => {
    const clock = manualClock();
    const w = createWaits(clock);
    const waiting = w.until(Number.POSITIVE_INFINITY);
    expect(clock.sleeping()).toEqual([]);
    expect(await settled(waiting)).toBe(false);
    w.noteEnd();
    expect(await settled(waiting)).toBe(true);
    expect(await settled(w.until(Number.POSITIVE_INFINITY))).toBe(true);
    w.passBegins();
    expect(await settled(w.until(Number.POSITIVE_INFINITY))).toBe(false);
  });

  it("a signal ends it, one aborted already at once; the timer is dropped", async () => {
    const clock = manualClock();
    const w = createWaits(clock);
    const stop = new AbortController();
    const waiting = w.until(clock.now().getTime() + 60_000, stop.signal);
    stop.abort();
    expect(await settled(waiting)).toBe(true);
    expect(clock.sleeping()).toEqual([]);
    expect(await settled(w.until(Number.POSITIVE_INFINITY, stop.signal))).toBe(true);
  });
});

import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../dispatcher/clock.js";

describe("systemClock.sleep", () => {
  it("leaves no listener on the signal once it has slept, and rejects with the signal's reason when aborted", async () => {
    const stop = new AbortController();
    await systemClock.sleep(1, stop.signal);
    await systemClock.sleep(1, stop.signal);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
    const waiting = systemClock.sleep(60_000, stop.signal);
    stop.abort(new Error("stopping"));
    await expect(waiting).rejects.toThrow("stopping");
  });
});

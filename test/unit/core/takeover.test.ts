import { describe, expect, it } from "vitest";
import { decideTakeover } from "../../../dispatcher/core/takeover.js";
import type { LedgerEntry } from "../../../dispatcher/core/ports.js";

const now = new Date("2026-11-23T12:00:00Z");
const LEASE = 60_000;
const entry = (state: LedgerEntry["state"], owner: string): LedgerEntry => ({
  id: "a",
  state,
  owner,
  attempt: 1,
  actionSha: "s",
  commit: "c",
  updatedAt: now.toISOString(),
  index: 7,
});
const ago = (ms: number) => new Date(now.getTime() - ms);

describe("decideTakeover", () => {
  it("claims an action the ledger has never seen", () => {
    expect(decideTakeover(undefined, "me", undefined, now, LEASE)).toEqual({ kind: "new" });
  });

  it("leaves an action to a live other owner, whatever its state", () => {
    for (const state of ["claimed", "dispatched", "finished"] as const) {
      expect(decideTakeover(entry(state, "other"), "me", ago(1_000), now, LEASE)).toEqual({
        kind: "skip",
        wait: { kind: "lease", until: new Date(ago(1_000).getTime() + LEASE), reason: "held by other" },
      });
    }
  });

  it("takes over from an owner silent for the lease or never seen", () => {
    const e = entry("dispatched", "other");
    expect(decideTakeover(e, "me", ago(LEASE), now, LEASE)).toEqual({ kind: "reattach", entry: e });
    expect(decideTakeover(e, "me", undefined, now, LEASE)).toEqual({ kind: "reattach", entry: e });
  });

  it("resumes its own claims from a previous life at once", () => {
    const claimed = entry("claimed", "me");
    expect(decideTakeover(claimed, "me", undefined, now, LEASE)).toEqual({ kind: "resume", entry: claimed });
    const dispatched = entry("dispatched", "me");
    expect(decideTakeover(dispatched, "me", undefined, now, LEASE)).toEqual({ kind: "reattach", entry: dispatched });
  });

  it("pushes a finished result a dead owner never pushed", () => {
    const e = entry("finished", "other");
    expect(decideTakeover(e, "me", ago(LEASE * 2), now, LEASE)).toEqual({ kind: "push", entry: e });
  });

  it("waits for a recorded result to show up at the tip instead of running again", () => {
    expect(decideTakeover(entry("recorded", "other"), "me", undefined, now, LEASE)).toEqual({
      kind: "skip",
      wait: { kind: "recorded", reason: "result recorded; waiting for it to appear at the tip" },
    });
  });

  it("runs afresh an action whose recorded result is still not at the tip a lease after it was written", () => {
    const stale = { ...entry("recorded", "other"), updatedAt: ago(LEASE).toISOString() };
    expect(decideTakeover(stale, "me", ago(1_000), now, LEASE)).toEqual({
      kind: "afresh",
      entry: stale,
      problem: `its result was recorded at ${ago(LEASE).toISOString()} (attempt 1) but is not at the tip`,
    });
  });
});

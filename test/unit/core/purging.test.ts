// Purging over a ledger in memory: children leave Nomad a retention after their result was pushed
// (the schedule read back from the ledger after a restart, our own entries only), recorded
// entries leave the ledger a retention after they were recorded.
import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import type { LedgerFields } from "../../../dispatcher/core/ports.js";
import { createPurging } from "../../../dispatcher/core/purging.js";
import { NomadApiError } from "../../../dispatcher/errors.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";
import { capturingLog, manualClock } from "../../helpers/manual-clock.js";

const MIN = 60_000;

function setup(over: { purgeAfterMs?: number; ledgerRetentionMs?: number } = {}) {
  const clock = manualClock();
  const ledger = createMemoryLedger();
  const events = createLoopEmitter();
  const seen: string[] = [];
  events.on("job:purged", (e) => seen.push(`purged ${e.id} ${e.jobId}`));
  events.on("job:purge-failed", (e) => seen.push(`purge-failed ${e.id} ${e.class}`));
  events.on("ledger:entry-removed", (e) => seen.push(`removed ${e.id}`));
  events.on("ledger:size", (e) => seen.push(`size ${e.entries}`));
  const purged: string[] = [];
  const nomad = { purgeJob: async (jobId: string) => void purged.push(jobId) };
  const p = createPurging({ nomad, ledger, clock, events, log: capturingLog().log, me: "me", purgeAfterMs: over.purgeAfterMs ?? 10 * MIN, ledgerRetentionMs: over.ledgerRetentionMs });
  const entry = (id: string, fields: Partial<LedgerFields>) =>
    ledger.create(id, { state: "recorded", owner: "me", attempt: 1, actionSha: "s", commit: "c", updatedAt: clock.now().toISOString(), ...fields });
  return { p, clock, ledger, nomad, purged, seen, entry };
}

describe("createPurging", () => {
  it("purges a child once the retention after its push has passed, and marks its entry purged", async () => {
    const t = setup();
    await t.entry("a", { jobId: "runner/dispatch-a" });
    t.p.schedule("a", "runner/dispatch-a");
    await t.clock.advance(10 * MIN - 1);
    await t.p.due();
    expect(t.purged).toEqual([]);
    await t.clock.advance(1);
    await t.p.due();
    await t.p.due();
    expect([t.purged, t.seen]).toEqual([["runner/dispatch-a"], ["purged a runner/dispatch-a"]]);
    expect(t.ledger.entries.get("a")!.purgedAt).toBe("2026-12-02T10:10:00.000Z");
  });

  it("a restart reads its own schedule back from the ledger at its first look, never another replica's or a purged one", async () => {
    const t = setup();
    await t.entry("mine", { jobId: "runner/dispatch-mine" });
    await t.entry("theirs", { jobId: "runner/dispatch-theirs", owner: "other" });
    await t.entry("done", { jobId: "runner/dispatch-done", purgedAt: "2026-12-02T09:00:00.000Z" });
    await t.entry("running", { jobId: "runner/dispatch-running", state: "dispatched" });
    await t.p.due();
    await t.clock.advance(10 * MIN);
    await t.p.due();
    expect(t.purged).toEqual(["runner/dispatch-mine"]);
  });

  it("a purge Nomad refuses is reported and not tried again; the entry stays unmarked", async () => {
    const t = setup();
    await t.entry("a", { jobId: "runner/dispatch-a" });
    t.nomad.purgeJob = async () => {
      throw new NomadApiError("nomad: DELETE /v1/job/runner/dispatch-a failed: HTTP 403: Permission denied", 403);
    };
    t.p.schedule("a", "runner/dispatch-a");
    await t.clock.advance(10 * MIN);
    await t.p.due();
    await t.p.due();
    expect(t.seen).toEqual(["purge-failed a auth"]);
    expect(t.ledger.entries.get("a")!.purgedAt).toBeUndefined();
  });

  it("removes recorded entries past the ledger retention only, and reports the ledger's size", async () => {
    const t = setup({ ledgerRetentionMs: 60 * MIN });
    await t.entry("old", {});
    await t.entry("busy", { state: "finished" });
    await t.clock.advance(30 * MIN);
    await t.entry("new", {});
    await t.clock.advance(30 * MIN + 1);
    await t.p.removeExpired();
    expect(t.seen).toEqual(["removed old", "size 2"]);
    expect([...t.ledger.entries.keys()]).toEqual(["busy", "new"]);
  });
});

// The ledger on real Nomad Variables: check-and-set decides who claims, and stale writes lose.
import { describe, expect, it } from "vitest";
import { createNomadLedger } from "../../dispatcher/nomad/ledger.js";
import { dispatcherNomad, uniq } from "../helpers/stack.js";

const fields = (owner: string) => ({ state: "claimed" as const, owner, attempt: 1, actionSha: "abc", commit: "def", updatedAt: new Date().toISOString() });

describe("nomad ledger", () => {
  const ledger = createNomadLedger(dispatcherNomad(), `dispatcher/test-${uniq()}`);

  it("lets exactly one of two racing claims win", async () => {
    const id = `race.${uniq()}`;
    const [a, b] = await Promise.all([ledger.create(id, fields("a")), ledger.create(id, fields("b"))]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    const winner = (a ?? b)!;
    expect(await ledger.get(id)).toEqual(winner);
    expect(winner.id).toBe(id);
  });

  it("refuses an update made from a stale index", async () => {
    const id = `stale-${uniq()}`;
    const created = (await ledger.create(id, fields("a")))!;
    const moved = await ledger.update(created, { state: "dispatched", jobId: "runner/dispatch-1" });
    expect(moved).toMatchObject({ state: "dispatched", jobId: "runner/dispatch-1", owner: "a" });
    expect(await ledger.update(created, { owner: "b" })).toBeUndefined();
    expect((await ledger.get(id))?.owner).toBe("a");
  });

  it("drops a field set to undefined and lists entries with their ids", async () => {
    const id = `drop-${uniq()}`;
    const created = (await ledger.create(id, { ...fields("a"), result: "{}" }))!;
    const cleared = (await ledger.update(created, { state: "recorded", result: undefined }))!;
    expect(cleared.result).toBeUndefined();
    expect((await ledger.list()).has(id)).toBe(true);
    expect((await ledger.list()).has(`${id}-never`)).toBe(false);
  });

  it("remembers when an instance was last alive", async () => {
    const at = new Date("2026-11-23T10:00:00.000Z");
    await ledger.heartbeat("host.example-1", at);
    expect(await ledger.lastSeen("host.example-1")).toEqual(at);
    expect(await ledger.lastSeen(`never-${uniq()}`)).toBeUndefined();
  });
});

// The heartbeat over a ledger in memory: how often it beats, what it says, and the retention
// sweep that rides on it (silent replicas' heartbeats; recorded entries through removeExpired).
import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createHeartbeat, type HeartbeatDeps } from "../../../dispatcher/core/heartbeat.js";
import type { InstanceBeat } from "../../../dispatcher/core/ports.js";
import { NomadApiError } from "../../../dispatcher/errors.js";
import { createMemoryLedger } from "../../helpers/memory-ledger.js";
import { capturingLog, manualClock } from "../../helpers/manual-clock.js";

const HOUR = 3_600_000;

function setup(over: Partial<HeartbeatDeps> = {}) {
  const clock = manualClock();
  const ledger = createMemoryLedger();
  const beats: [string, string, unknown][] = [];
  ledger.heartbeat = async (instance, at, info) => void beats.push([instance, at.toISOString(), info]);
  const { log, lines } = capturingLog();
  const events = createLoopEmitter();
  const forgotten: string[] = [];
  events.on("ledger:instance-forgotten", (e) => forgotten.push(e.instance));
  let removals = 0;
  let draining = false;
  const hb = createHeartbeat({
    ledger,
    clock,
    events,
    log,
    me: "me",
    version: "0.1.0",
    leaseMs: 60_000,
    removeExpired: async () => void removals++,
    status: () => ({ inFlight: 2, draining }),
    ...over,
  });
  return { hb, clock, ledger, beats, lines, forgotten, removals: () => removals, drain: () => (draining = true) };
}

describe("createHeartbeat", () => {
  it("beats at most every third of the lease unless forced, saying how many are in flight and whether it drains", async () => {
    const t = setup();
    await t.hb.beat();
    await t.hb.beat();
    await t.clock.advance(19_999);
    await t.hb.beat();
    await t.clock.advance(1);
    await t.hb.beat();
    t.drain();
    await t.hb.beat(true);
    expect(t.beats).toEqual([
      ["me", "2026-12-02T10:00:00.000Z", { inFlight: 2, draining: false, version: "0.1.0" }],
      ["me", "2026-12-02T10:00:20.000Z", { inFlight: 2, draining: false, version: "0.1.0" }],
      ["me", "2026-12-02T10:00:20.000Z", { inFlight: 2, draining: true, version: "0.1.0" }],
    ]);
  });

  it("sweeps at the first beat and then hourly: silent replicas' heartbeats go (check-and-set), recorded entries through removeExpired", async () => {
    const seen = (instance: string, agoMs: number): InstanceBeat => ({ instance, seenAt: new Date(Date.parse("2026-12-02T10:00:00Z") - agoMs), index: 1 }) as InstanceBeat;
    const beats = [seen("gone", 8 * 24 * HOUR), seen("raced", 8 * 24 * HOUR), seen("alive", 1000), seen("me", 9 * 24 * HOUR)];
    const t = setup({ instanceRetentionMs: 7 * 24 * HOUR, ledgerRetentionMs: 7 * 24 * HOUR });
    t.ledger.instances = async () => beats;
    // "raced" beat again after the listing: its check-and-set delete fails, it stays
    t.ledger.forgetInstance = async (b) => b.instance !== "raced";
    await t.hb.beat();
    expect([t.forgotten, t.removals()]).toEqual([["gone"], 1]);
    // beats come every 20 s; the sweep waits for the hour
    await t.clock.advance(HOUR - 20_000);
    await t.hb.beat();
    expect([t.beats.length, t.removals()]).toEqual([2, 1]);
    await t.clock.advance(20_000);
    await t.hb.beat();
    expect([t.beats.length, t.removals()]).toEqual([3, 2]);
  });

  it("sweeps nothing without a retention; a failed sweep is logged and tried at the next one, the beat stands", async () => {
    const none = setup();
    await none.hb.beat();
    expect(none.removals()).toBe(0);
    let fail = true;
    const failing = setup({
      ledgerRetentionMs: 60_000,
      removeExpired: async () => {
        if (fail) throw new NomadApiError("nomad: GET /v1/vars failed: HTTP 500", 500);
      },
    });
    await failing.hb.beat();
    expect(failing.beats).toHaveLength(1);
    expect(failing.lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(["could not sweep the ledger (silent replicas' heartbeats, recorded entries); trying again at the next sweep"]);
    fail = false;
    await failing.clock.advance(60_000);
    await failing.hb.beat();
    expect(failing.lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(failing.beats).toHaveLength(2);
  });

  it("start() beats on a timer of a third of the lease until stopped", async () => {
    const t = setup({ leaseMs: 750 });
    const stop = t.hb.start();
    await new Promise((r) => setTimeout(r, 300));
    stop();
    const n = t.beats.length;
    expect(n).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(t.beats).toHaveLength(n);
  });
});

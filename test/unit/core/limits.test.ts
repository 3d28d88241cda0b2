import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createSharedLimits, needsLock, orphanGuarded, placeHolder } from "../../../dispatcher/core/limits.js";
import type { LedgerEntry, Place } from "../../../dispatcher/core/ports.js";
import { createMemoryPlaces } from "../../helpers/memory-places.js";

const NOW = new Date("2024-05-01T12:00:00.000Z");
const LEASE = 60_000;
const clock = { now: () => NOW, sleep: async () => undefined };
/** how long a child may run at the most */
const RUN = 3_600_000;
const run = () => RUN;

function place(owner: string, session = "s1"): Place {
  return { name: "lock/formula:release", owner, session, action: "a1", since: NOW.toISOString(), until: NOW.toISOString(), index: 1 };
}

describe("placeHolder", () => {
  const me = { instance: "r1", session: "s1" };
  it("is mine in this process, stale when an earlier life of this instance left it", () => {
    expect(placeHolder(place("r1"), me, undefined, NOW, LEASE)).toEqual({ kind: "mine" });
    expect(placeHolder(place("r1", "s0"), me, undefined, NOW, LEASE)).toEqual({ kind: "stale" });
  });
  it("is another replica's until its heartbeat is a lease old, then stale", () => {
    const seen = new Date(NOW.getTime() - 10_000);
    expect(placeHolder(place("r2"), me, seen, NOW, LEASE)).toEqual({ kind: "held", until: new Date(seen.getTime() + LEASE) });
    expect(placeHolder(place("r2"), me, new Date(NOW.getTime() - LEASE), NOW, LEASE)).toEqual({ kind: "stale" });
    expect(placeHolder(place("r2"), me, undefined, NOW, LEASE)).toEqual({ kind: "stale" });
  });
});

describe("orphanGuarded", () => {
  const orphan = { ...place("dead"), until: new Date(NOW.getTime() + 10 * LEASE).toISOString() };
  it("keeps a dead owner's place for its child until a second lease has passed, or the child must have ended", () => {
    expect(orphanGuarded(orphan, new Date(NOW.getTime() - LEASE - 1), NOW, LEASE)).toBe(true);
    expect(orphanGuarded(orphan, new Date(NOW.getTime() - 2 * LEASE), NOW, LEASE)).toBe(false);
    expect(orphanGuarded({ ...orphan, until: NOW.toISOString() }, new Date(NOW.getTime() - LEASE - 1), NOW, LEASE)).toBe(false);
    expect(orphanGuarded(orphan, undefined, NOW, LEASE)).toBe(false);
  });
});

describe("a handed-over lock", () => {
  it("is held for the replica it was handed to until its until, then free to anyone", () => {
    const reserved = { ...place("r2"), session: "", action: "", until: new Date(NOW.getTime() + 3000).toISOString() };
    expect(placeHolder(reserved, { instance: "r1", session: "s1" }, NOW, NOW, LEASE)).toEqual({ kind: "held", until: new Date(NOW.getTime() + 3000) });
    expect(placeHolder(reserved, { instance: "r2", session: "s9" }, NOW, NOW, LEASE)).toEqual({ kind: "stale" });
    expect(placeHolder(reserved, { instance: "r1", session: "s1" }, NOW, new Date(NOW.getTime() + 3000), LEASE)).toEqual({ kind: "stale" });
  });
});

describe("needsLock", () => {
  it("locks a formula key; an id key is the ledger claim's", () => {
    expect(needsLock("formula:release")).toBe(true);
    expect(needsLock("id:deploy-web")).toBe(false);
  });
});

function cand(id: string, formula: string) {
  return { action: { id, formula } };
}
const keyOf = (c: ReturnType<typeof cand>) => `formula:${c.action.formula}`;

/** replicas over one store; `seen`: each replica's last heartbeat; `entries`: the ledger */
function replicas(max: number, seen: Record<string, Date | undefined> = {}, entries: Record<string, LedgerEntry["state"]> = {}) {
  const store = createMemoryPlaces();
  const waits: unknown[] = [];
  const make = (instance: string, session = "s1") => {
    const events = createLoopEmitter();
    events.on("places:waits", (e) => waits.push({ instance, ...e }));
    return createSharedLimits({
      places: store,
      ledger: {
        lastSeen: async (i) => (i in seen ? seen[i] : NOW),
        get: async (id) => (entries[id] ? ({ id, state: entries[id] } as LedgerEntry) : undefined),
      },
      clock,
      events,
      instance,
      session,
      maxInFlight: max,
      leaseMs: LEASE,
    });
  };
  return { store, make, waits };
}

describe("createSharedLimits", () => {
  it("a key's lock held by one replica makes another's action of that formula wait, naming the holder, until it is freed", async () => {
    const { make, store, waits } = replicas(4);
    const [a, b] = [make("r1"), make("r2")];
    expect((await a.admit([cand("x1", "release")], keyOf, NOW, run)).start.map((c) => c.action.id)).toEqual(["x1"]);
    const second = await b.admit([cand("x2", "release"), cand("y1", "build")], keyOf, NOW, run);
    expect(second.start.map((c) => c.action.id)).toEqual(["y1"]);
    expect(second.waiting).toEqual([
      { id: "x2", kind: "place", until: new Date(NOW.getTime() + 1000), reason: "waiting for the lock formula=release held by replica r1 (action x1)" },
    ]);
    expect(waits.at(-1)).toEqual({ instance: "r2", lock: 1, slot: 0, held: 1 });
    // r2 asked to be next: freeing hands the lock over to it, and r1 does not take it back meanwhile
    expect(store.places.get("lock/formula:release")?.next).toBe("r2");
    await a.free("x1");
    expect(store.places.get("lock/formula:release")).toMatchObject({ owner: "r2", action: "", until: new Date(NOW.getTime() + 3000).toISOString() });
    expect((await a.admit([cand("x3", "release")], keyOf, NOW, run)).waiting.map((w) => w.reason)).toEqual(["waiting for the lock formula=release handed to replica r2"]);
    expect((await b.admit([cand("x2", "release")], keyOf, NOW, run)).start.map((c) => c.action.id)).toEqual(["x2"]);
    await b.free("x2");
    // nobody asked to be next (r1's wait came while it was reserved): freed outright
    expect(store.places.has("lock/formula:release")).toBe(false);
  });

  it("max_in_flight counts every replica's slots; the rest wait, naming who holds them", async () => {
    const { make, store } = replicas(3);
    const [a, b] = [make("r1"), make("r2")];
    expect((await a.admit([cand("a1", "f1"), cand("a2", "f2")], keyOf, NOW, run)).start).toHaveLength(2);
    const second = await b.admit([cand("b1", "f3"), cand("b2", "f4"), cand("b3", "f5")], keyOf, NOW, run);
    expect(second.start.map((c) => c.action.id)).toEqual(["b1"]);
    expect(second.waiting.map((w) => [w.id, w.reason])).toEqual([
      ["b2", "waiting for a slot: max in flight (3) reached across replicas, held by r1 (2), r2 (1)"],
      ["b3", "waiting for a slot: max in flight (3) reached across replicas, held by r1 (2), r2 (1)"],
    ]);
    // a waiting action gave back the lock it took: nothing of it is held
    expect([...store.places.values()].map((p) => p.action).sort()).toEqual(["a1", "a1", "a2", "a2", "b1", "b1"]);
    await a.free("a2");
    expect((await b.admit([cand("b2", "f4")], keyOf, NOW, run)).start).toHaveLength(1);
  });

  it("takes over the places of a replica silent for the lease, and of an earlier life of itself", async () => {
    const { make, store } = replicas(1, { dead: new Date(NOW.getTime() - LEASE - 1) });
    await make("dead").admit([cand("d1", "release")], keyOf, NOW, run);
    const b = make("r2");
    expect((await b.admit([cand("x1", "release")], keyOf, NOW, run)).start).toHaveLength(1);
    expect([...store.places.values()].map((p) => [p.name, p.owner, p.action])).toEqual([
      ["lock/formula:release", "r2", "x1"],
      ["slot/0", "r2", "x1"],
    ]);
    // restarted under the same name: its earlier life's places are free to it
    const again = make("r2", "s2");
    expect((await again.admit([cand("x2", "release")], keyOf, NOW, run)).start).toHaveLength(1);
  });

  it("a dead replica's place stays with its action while its child may run: another action waits, the re-attacher adopts it", async () => {
    const { make, store } = replicas(2, { dead: new Date(NOW.getTime() - LEASE - 1) }, { d1: "dispatched" });
    await make("dead").admit([cand("d1", "release")], keyOf, NOW, run);
    const b = make("r2");
    const other = await b.admit([cand("x1", "release")], keyOf, NOW, run);
    expect(other.start).toEqual([]);
    expect(other.waiting.map((w) => w.reason)).toEqual(["waiting for the lock formula=release held by replica dead (action d1)"]);
    expect(await b.adopt("d1", "formula:release", RUN)).toBe(true);
    expect([...store.places.values()].map((p) => [p.name, p.owner, p.action])).toEqual([
      ["lock/formula:release", "r2", "d1"],
      ["slot/0", "r2", "d1"],
    ]);
    await b.free("d1");
    expect(store.places.size).toBe(0);
  });

  it("an orphan keeps its dead owner's place only until its child must have ended", async () => {
    const { make, store } = replicas(1, { dead: new Date(NOW.getTime() - LEASE - 1) }, { d1: "dispatched" });
    await make("dead").admit([cand("d1", "release")], keyOf, NOW, () => 0);
    expect(store.places.get("slot/0")?.until).toBe(NOW.toISOString());
    expect((await make("r2").admit([cand("x1", "release")], keyOf, NOW, run)).start.map((c) => c.action.id)).toEqual(["x1"]);
  });

  it("a place taken over meanwhile is left to its new owner when the old one frees it", async () => {
    const { make, store } = replicas(1);
    const a = make("r1");
    await a.admit([cand("a1", "release")], keyOf, NOW, run);
    const lock = store.places.get("lock/formula:release")!;
    await store.replace(lock, { owner: "r9", session: "z", action: "z1", since: NOW.toISOString(), until: NOW.toISOString() });
    await a.free("a1");
    expect(store.places.get("lock/formula:release")?.owner).toBe("r9");
    expect(store.places.has("slot/0")).toBe(false);
  });
});

// The limits every replica sharing a ledger prefix shares: a serialization key's lock and
// max_in_flight's slots are places in the ledger's store (PlacesPort), taken with check-and-set
// before an action starts and freed when its child ends (where `release` frees the local place).
// A place's lease is its owner's heartbeat: one whose owner has been silent for the lease, or
// that an earlier life of this instance left, is taken over. The decisions are pure
// (`placeHolder`, `lockWait`, `slotsWait`); `createSharedLimits` carries them out.
import type { LoopEmitter } from "./events.js";
import type { Clock, LedgerPort, Place, PlaceFields, PlacesPort } from "./ports.js";
import type { Wait } from "./schedule.js";

/** a wait on another replica's place is looked at again after this, unless its lease ends sooner */
export const PLACE_RECHECK_MS = 1000;

/** the action of a lock handed over to the replica that waited for it, until that one takes it */
export const RESERVED = "";

/** how long a handed-over lock waits for the replica it was handed to (a few of its rechecks) */
export const HANDOVER_MS = 3 * PLACE_RECHECK_MS;

export type Holder = { kind: "mine" } | { kind: "stale" } | { kind: "held"; until: Date };

/**
 * Pure: whose a place is. This process's (same instance and session); free to take over (an
 * earlier life of this instance, or an owner silent for the lease); or another live replica's
 * until its lease would run out.
 */
export function placeHolder(place: Place, me: { instance: string; session: string }, ownerSeen: Date | undefined, now: Date, leaseMs: number): Holder {
  // a lock handed over to a replica that waited (no action yet): its until, not a lease
  if (place.action === RESERVED) return now.getTime() >= Date.parse(place.until) ? { kind: "stale" } : place.owner === me.instance ? { kind: "stale" } : { kind: "held", until: new Date(place.until) };
  if (place.owner === me.instance) return place.session === me.session ? { kind: "mine" } : { kind: "stale" };
  if (ownerSeen === undefined || now.getTime() - ownerSeen.getTime() >= leaseMs) return { kind: "stale" };
  return { kind: "held", until: new Date(ownerSeen.getTime() + leaseMs) };
}

/** "formula:release" → "formula=release", as people read it */
function shown(key: string): string {
  return key.replace(":", "=");
}

/** Pure: the wait of an action whose key's lock another replica holds. */
export function lockWait(id: string, key: string, place: Place, until: Date, now: Date): Wait {
  const by = place.action === RESERVED ? `handed to replica ${place.owner}` : `held by replica ${place.owner} (action ${place.action})`;
  return { id, kind: "place", until: earlier(until, now), reason: `waiting for the lock ${shown(key)} ${by}` };
}

/** Pure: the wait of an action when every slot is held; `holders`: slots per replica. */
export function slotsWait(id: string, max: number, holders: ReadonlyMap<string, number>, until: Date, now: Date): Wait {
  const who = [...holders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([owner, n]) => `${owner} (${n})`);
  return { id, kind: "place", until: earlier(until, now), reason: `waiting for a slot: max in flight (${max}) reached across replicas, held by ${who.join(", ")}` };
}

function earlier(until: Date, now: Date): Date {
  return new Date(Math.min(until.getTime(), now.getTime() + PLACE_RECHECK_MS));
}

/** Pure: a stale place's action may still have a child running (its ledger entry says claimed or dispatched). */
export function orphanMayRun(state: string | undefined): boolean {
  return state === "claimed" || state === "dispatched";
}

/**
 * Pure: how long a dead owner's place stays with its orphan: until the child must have ended,
 * and no longer than a second lease after the owner fell silent (a pass re-attaches a pending
 * orphan within it; one nobody re-attaches, its action gone from the repo, frees the place).
 */
export function orphanGuarded(place: Place, ownerSeen: Date | undefined, now: Date, leaseMs: number): boolean {
  return ownerSeen !== undefined && now.getTime() < Math.min(Date.parse(place.until), ownerSeen.getTime() + 2 * leaseMs);
}

/** Pure: a serialization key that needs a lock; an action's own id is the ledger claim's already. */
export function needsLock(key: string): boolean {
  return !key.startsWith("id:");
}

export interface SharedLimitsDeps {
  places: PlacesPort;
  ledger: Pick<LedgerPort, "lastSeen" | "get">;
  clock: Clock;
  events: LoopEmitter;
  instance: string;
  session: string;
  maxInFlight: number;
  leaseMs: number;
}

export interface Admission<C> {
  start: C[];
  waiting: Wait[];
}

export function createSharedLimits(deps: SharedLimitsDeps) {
  const me = { instance: deps.instance, session: deps.session };
  /** action id → the places it holds */
  const held = new Map<string, Place[]>();
  /** slot numbers this process holds */
  const mySlots = new Set<number>();
  /** frees on their way (settle waits for them before the process ends) */
  const freeing = new Set<Promise<void>>();

  /** how long an action's child may run at the most, by id (admit and adopt set it) */
  const runMs = new Map<string, number>();
  const fields = (action: string): PlaceFields => {
    const at = deps.clock.now();
    return { owner: me.instance, session: me.session, action, since: at.toISOString(), until: new Date(at.getTime() + (runMs.get(action) ?? 0)).toISOString() };
  };

  /** A place that stands in the way: mine (left by a free in progress), stale (taken over), or held. */
  async function takeOver(current: Place, id: string, now: Date, seen: Map<string, Date | undefined>): Promise<{ place?: Place; until?: Date }> {
    if (!seen.has(current.owner) && current.owner !== me.instance) seen.set(current.owner, await deps.ledger.lastSeen(current.owner));
    const h = placeHolder(current, me, seen.get(current.owner), now, deps.leaseMs);
    if (h.kind === "held") return { until: h.until };
    // a dead owner's place stays its action's while that action's child may run: whoever
    // re-attaches it adopts the place (adopt); another action waits for that
    if (h.kind === "stale" && current.action !== id && current.action !== RESERVED && orphanGuarded(current, seen.get(current.owner), now, deps.leaseMs) && orphanMayRun((await deps.ledger.get(current.action))?.state)) return { until: new Date(now.getTime() + PLACE_RECHECK_MS) };
    // ours and not held by any attempt here (its free is on its way), or stale: take it over
    if (h.kind === "mine" && [...held.values()].some((ps) => ps.some((p) => p.name === current.name && p.index === current.index))) return { until: now };
    const place = await deps.places.replace(current, fields(id));
    return place ? { place } : { until: now };
  }

  async function takeLock(id: string, key: string, now: Date, seen: Map<string, Date | undefined>): Promise<Place | Wait> {
    const name = `lock/${key}`;
    for (let i = 0; i < 2; i++) {
      const made = await deps.places.create(name, fields(id));
      if (made) return made;
      const current = await deps.places.get(name);
      if (!current) continue; // freed in between: create again
      const t = await takeOver(current, id, now, seen);
      if (t.place) return t.place;
      // next in line: the holder hands the lock over when it frees it, so replicas take turns
      if (current.owner !== me.instance && current.action !== RESERVED && !current.next) {
        const { name: _n, index: _i, ...kept } = current;
        await deps.places.replace(current, { ...kept, next: me.instance });
      }
      return lockWait(id, key, current, t.until ?? now, now);
    }
    return { id, kind: "place", until: new Date(now.getTime() + PLACE_RECHECK_MS), reason: `waiting for the lock ${shown(key)} (taken and freed meanwhile)` };
  }

  async function takeSlot(id: string, now: Date, seen: Map<string, Date | undefined>, listed: { names?: Set<number> }): Promise<Place | Wait> {
    const free = (taken: Set<number>) => Array.from({ length: deps.maxInFlight }, (_, n) => n).filter((n) => !mySlots.has(n) && !taken.has(n));
    // a guess first (with no other replica busy, the lowest slot not ours is free): one write
    if (!listed.names) {
      const guess = free(new Set())[0];
      if (guess === undefined) return slotsWait(id, deps.maxInFlight, new Map([[me.instance, mySlots.size]]), new Date(now.getTime() + PLACE_RECHECK_MS), now);
      const made = await deps.places.create(`slot/${guess}`, fields(id));
      if (made) return (mySlots.add(guess), made);
      listed.names = new Set((await deps.places.list("slot")).map((n) => Number(n.slice("slot/".length))));
      listed.names.add(guess);
    }
    for (const n of free(listed.names)) {
      listed.names.add(n);
      const made = await deps.places.create(`slot/${n}`, fields(id));
      if (made) return (mySlots.add(n), made);
    }
    // every slot is held: take over a stale one, or wait for the earliest lease to end
    const holders = new Map<string, number>(mySlots.size > 0 ? [[me.instance, mySlots.size]] : []);
    let until = new Date(now.getTime() + PLACE_RECHECK_MS);
    for (let n = 0; n < deps.maxInFlight; n++) {
      if (mySlots.has(n)) continue;
      const current = await deps.places.get(`slot/${n}`);
      if (!current) {
        const made = await deps.places.create(`slot/${n}`, fields(id));
        if (made) return (mySlots.add(n), made);
        continue;
      }
      const t = await takeOver(current, id, now, seen);
      if (t.place) return (mySlots.add(n), t.place);
      holders.set(current.owner, (holders.get(current.owner) ?? 0) + 1);
      if (t.until && t.until < until) until = t.until;
    }
    return slotsWait(id, deps.maxInFlight, holders, until, now);
  }

  function slotOf(p: Place): number | undefined {
    return p.name.startsWith("slot/") ? Number(p.name.slice("slot/".length)) : undefined;
  }

  async function freePlaces(places: Place[]): Promise<void> {
    for (const p of places) {
      const n = slotOf(p);
      try {
        if (await deps.places.remove(p)) continue;
        // changed since taken: a replica asked to be next (hand it over), or it was taken over (leave it)
        const current = await deps.places.get(p.name);
        if (!current || current.owner !== me.instance || current.session !== me.session || current.action !== p.action) continue;
        const at = deps.clock.now();
        if (current.next && current.next !== me.instance) await deps.places.replace(current, { owner: current.next, session: RESERVED, action: RESERVED, since: at.toISOString(), until: new Date(at.getTime() + HANDOVER_MS).toISOString() });
        else await deps.places.remove(current);
      } finally {
        if (n !== undefined) mySlots.delete(n);
      }
    }
  }

  return {
    /**
     * Of the actions the local plan would start (in its order), those that got their key's lock
     * and a slot; the others wait, saying for whom. Once the slots are all held, the rest wait
     * without asking again in this pass.
     */
    async admit<C extends { action: { id: string } }>(planned: readonly C[], keyOf: (c: C) => string, now: Date, runMsOf: (c: C) => number): Promise<Admission<C>> {
      const out: Admission<C> = { start: [], waiting: [] };
      const seen = new Map<string, Date | undefined>();
      const listed: { names?: Set<number> } = {};
      let full: Wait | undefined;
      const waits = { lock: 0, slot: 0 };
      for (const c of planned) {
        const id = c.action.id;
        if (full) {
          waits.slot++;
          out.waiting.push({ ...full, id });
          continue;
        }
        const key = keyOf(c);
        runMs.set(id, runMsOf(c));
        let lock: Place | Wait | undefined;
        try {
          lock = needsLock(key) ? await takeLock(id, key, now, seen) : undefined;
          if (lock && "kind" in lock) {
            waits.lock++;
            out.waiting.push(lock);
            continue;
          }
          const slot = await takeSlot(id, now, seen, listed);
          if ("kind" in slot) {
            if (lock) await freePlaces([lock]);
            waits.slot++;
            out.waiting.push(slot);
            full = slot;
            continue;
          }
          held.set(id, lock ? [lock, slot] : [slot]);
          out.start.push(c);
          continue;
        } catch (err) {
          // Nomad unreachable: what was taken for this action goes back (or to the lease), the rest waits
          if (lock && !("kind" in lock)) await freePlaces([lock]).catch(() => undefined);
          full = { id, kind: "place", until: new Date(now.getTime() + PLACE_RECHECK_MS), reason: `waiting for the shared limits: ${err instanceof Error ? err.message : String(err)}` };
          out.waiting.push(full);
        }
      }
      deps.events.emit("places:waits", { ...waits, held: mySlots.size });
      return out;
    },
    /**
     * A child re-attached after a take-over keeps (or gets) its places without waiting: it runs
     * already. It takes over its dead owner's lock and slot for this action, or free ones; with
     * none free it is followed without (the limit is exceeded by it; the returned flag says so).
     */
    async adopt(id: string, key: string, childRunMs: number): Promise<boolean> {
      const now = deps.clock.now();
      runMs.set(id, childRunMs);
      const seen = new Map<string, Date | undefined>();
      const mine: Place[] = [];
      const own = async (name: string): Promise<Place | undefined> => {
        const made = await deps.places.create(name, fields(id));
        if (made) return made;
        const current = await deps.places.get(name);
        if (!current || current.action !== id) return undefined;
        if (!seen.has(current.owner) && current.owner !== me.instance) seen.set(current.owner, await deps.ledger.lastSeen(current.owner));
        if (placeHolder(current, me, seen.get(current.owner), now, deps.leaseMs).kind === "held") return undefined;
        return deps.places.replace(current, fields(id));
      };
      let lockOk = true;
      if (needsLock(key)) {
        const lock = await own(`lock/${key}`);
        if (lock) mine.push(lock);
        else lockOk = false;
      }
      let slot: Place | undefined;
      const names = new Set((await deps.places.list("slot")).map((n) => Number(n.slice("slot/".length))));
      for (let n = 0; n < deps.maxInFlight && !slot; n++) {
        if (mySlots.has(n)) continue;
        if (names.has(n)) {
          const current = await deps.places.get(`slot/${n}`);
          if (current?.action === id) slot = await own(`slot/${n}`);
        }
      }
      for (let n = 0; n < deps.maxInFlight && !slot; n++) if (!mySlots.has(n) && !names.has(n)) slot = await deps.places.create(`slot/${n}`, fields(id));
      if (slot) {
        mySlots.add(slotOf(slot)!);
        mine.push(slot);
      }
      held.set(id, mine);
      return lockOk && slot !== undefined;
    },
    /** frees what `id` holds (its child ended, or its attempt is over); a place taken over meanwhile is left to its new owner */
    async free(id: string): Promise<void> {
      const places = held.get(id);
      runMs.delete(id);
      if (!places) return;
      held.delete(id);
      const p = freePlaces(places);
      freeing.add(p);
      try {
        await p;
      } finally {
        freeing.delete(p);
      }
    },
    /** waits for the frees on their way (a process about to end) */
    settle: () => Promise.allSettled([...freeing]).then(() => undefined),
    holds: (id: string) => held.has(id),
  };
}

export type SharedLimits = ReturnType<typeof createSharedLimits>;

/** The shared places as a reader (`plan`, `status`) finds them, with when each owner last beat. */
export interface PlacesSnapshot {
  places: Place[];
  seen: ReadonlyMap<string, Date | undefined>;
}

/** Reads every lock and slot of the ledger prefix (one listing each, then one read per place and per owner). */
export async function readPlaces(places: PlacesPort, ledger: Pick<LedgerPort, "lastSeen">): Promise<PlacesSnapshot> {
  const names = [...(await places.list("lock")), ...(await places.list("slot"))];
  const found = (await Promise.all(names.map((n) => places.get(n)))).filter((p): p is Place => p !== undefined);
  const seen = new Map<string, Date | undefined>();
  for (const owner of new Set(found.map((p) => p.owner))) seen.set(owner, await ledger.lastSeen(owner));
  return { places: found, seen };
}

/**
 * Pure: what the places other replicas hold make wait, of the actions a pass would start (in
 * order, with their serialization keys), as a reader that holds nothing sees it: `plan` and
 * `status` say it with the loop's own words.
 */
export function sharedWaits(planned: readonly { id: string; key: string }[], snap: PlacesSnapshot, maxInFlight: number, now: Date, leaseMs: number): Wait[] {
  const reader = { instance: "", session: "" };
  const live = snap.places.flatMap((p) => {
    const h = placeHolder(p, reader, snap.seen.get(p.owner), now, leaseMs);
    return h.kind === "held" ? [{ p, until: h.until }] : [];
  });
  const locks = new Map(live.filter((l) => l.p.name.startsWith("lock/")).map((l) => [l.p.name.slice("lock/".length), l]));
  const slots = live.filter((l) => l.p.name.startsWith("slot/"));
  const holders = new Map<string, number>();
  for (const s of slots) holders.set(s.p.owner, (holders.get(s.p.owner) ?? 0) + 1);
  const soonest = new Date(Math.min(...slots.map((s) => s.until.getTime()), now.getTime() + PLACE_RECHECK_MS));
  let free = maxInFlight - slots.length;
  const waits: Wait[] = [];
  for (const { id, key } of planned) {
    const lock = needsLock(key) ? locks.get(key) : undefined;
    if (lock && lock.p.action !== id) waits.push(lockWait(id, key, lock.p, lock.until, now));
    else if (free <= 0) waits.push(slotsWait(id, maxInFlight, holders, soonest, now));
    else free--;
  }
  return waits;
}

import type { Logger } from "../log.js";
import type { AllocationState, JobPlacement, NomadPort } from "../core/ports.js";
import { isTerminal, latestAllocation } from "../core/status.js";
import type { NomadClient } from "./client.js";

// One event stream for every job being tracked, instead of one blocking query per job: Nomad
// limits connections per client (100 by default), and a factory runs more jobs than that at once.
// Events can be missed across a reconnect (its index may have left Nomad's event buffer) or before
// the stream is live, so a job's allocations are listed when it is first watched, and a wait that
// ends without an event lists it again unless the job is "covered": it has an allocation and was
// listed while the current connection was live, so the stream carries all its changes since
// (thousands of long jobs would otherwise cost a listing each every wait). A covered job still
// without an allocation is listed again after half a minute, then after twice as long each time
// up to five minutes: only a listing tells why it is blocked, whether it has an evaluation, or
// that it is gone, and a listing without an allocation costs three requests (thousands of jobs
// queued behind a full cluster would otherwise keep the dispatcher and the agent busy). A
// reconnect uncovers every job. A stream silent past a few heartbeats is cut and reconnected.
// A job dispatched through the feed while its connection was live is covered from the start: Nomad
// subscribes a connection before its first line (the opening heartbeat), so every change of that
// job comes on it. Changes that come before the job is watched are held briefly for it, and its
// first watch lists nothing (up to three requests a child, for the agent and for us).

interface Tracked {
  allocs: Map<string, AllocationState>;
  index: number;
  blockedReason?: string;
  evaluations?: number;
  gone?: boolean;
  waiters: Set<() => void>;
  askedAt: number;
  /** the connection it was last listed on while live: on that one, no event means no change */
  coveredOn?: number;
  listedAt: number;
  /** listings so far that found no allocation: each doubles the wait before the next */
  emptyListings: number;
}

/** a job nobody asked about for this long is no longer tracked (its tracker gave up); looked for once a minute */
const FORGET_MS = 10 * 60_000;
const FORGET_SWEEP_MS = 60_000;

/**
 * Nomad 1.6 sends a heartbeat as the stream opens and every 30 s after: this long without a line,
 * the connection is presumed dead
 */
const SILENCE_MS = 75_000;

/**
 * The first connection asks for an index past Nomad's newest, so the stream starts at the newest
 * raft index Nomad holds instead of replaying its whole event buffer (index 0): up to 100 indexes
 * of allocation changes, thousands of allocations after a busy spell, parsed at every start.
 * Nothing before is needed: a job is listed when it is first watched.
 */
const FROM_NEWEST = Number.MAX_SAFE_INTEGER;

/** a covered job without an allocation is listed again after this long (blocked reason, evaluations, gone), doubling up to the cap */
const UNPLACED_RELIST_MS = 30_000;
const UNPLACED_RELIST_MAX_MS = 5 * 60_000;

/**
 * Changes of untracked jobs are held this long, for a job dispatched just before (its watch starts
 * after the ledger has recorded the dispatch); a job watched later than this after its dispatch is
 * listed, as are all jobs while more than `RECENT_MAX` are held (a busy cluster's other jobs).
 */
const RECENT_MS = 60_000;
const RECENT_MAX = 10_000;

interface Held {
  allocs: Map<string, AllocationState>;
  index: number;
  at: number;
}

/** a job dispatched while the stream was live: on which connection, when it was sent, and how many held jobs were dropped for room by then */
interface Dispatched {
  connection: number;
  sentAt: number;
  crowded: number;
}

export interface AllocationFeed {
  watchJob: NomadPort["watchJob"];
  dispatch: NomadPort["dispatch"];
  close(): void;
}

export function createAllocationFeed(
  nomad: NomadClient,
  log: Logger,
  opts: { reconnectMs?: number; silenceMs?: number; unplacedRelistMs?: number; unplacedRelistMaxMs?: number; recentMax?: number } = {},
): AllocationFeed {
  const reconnectMs = opts.reconnectMs ?? 1000;
  const silenceMs = opts.silenceMs ?? SILENCE_MS;
  const unplacedRelistMs = opts.unplacedRelistMs ?? UNPLACED_RELIST_MS;
  const unplacedRelistMaxMs = opts.unplacedRelistMaxMs ?? UNPLACED_RELIST_MAX_MS;
  const recentMax = opts.recentMax ?? RECENT_MAX;
  const tracked = new Map<string, Tracked>();
  /** changes of jobs nobody watches yet, oldest first */
  const recent = new Map<string, Held>();
  /** held jobs dropped for room so far: a dispatch held across a drop may have lost its changes */
  let crowded = 0;
  const dispatched = new Map<string, Dispatched>();
  let streamIndex = FROM_NEWEST;
  let stream: AbortController | undefined;
  /** the current connection has delivered a line (an event or a heartbeat) */
  let live = false;
  /** counts connections: a listing covers its job only if the connection it began on is still up */
  let connection = 0;
  let sweptAt = 0;
  /**
   * One abort listener per signal, fanning out to the waits on it: every attempt waits on the
   * loop's one shutdown signal, and an EventTarget checks each new listener against all the others
   * (thousands of waits made each wait's registration cost thousands of comparisons).
   */
  const onAborts = new WeakMap<AbortSignal, Set<() => void>>();

  function onAbort(signal: AbortSignal, fn: () => void): () => void {
    let fns = onAborts.get(signal);
    if (!fns) {
      const set = new Set<() => void>();
      fns = set;
      onAborts.set(signal, set);
      signal.addEventListener("abort", () => [...set].forEach((f) => f()), { once: true });
    }
    fns.add(fn);
    return () => fns.delete(fn);
  }

  function wake(t: Tracked): void {
    for (const w of t.waiters) w();
    t.waiters.clear();
  }

  /** The list fallback: the job's allocations as Nomad has them now. */
  async function reconcile(jobId: string, t: Tracked): Promise<void> {
    const coveredFrom = live ? connection : undefined;
    t.listedAt = Date.now();
    const p = await nomad.watchJob(jobId, 0, 1000);
    t.coveredOn = coveredFrom;
    for (const a of p.allocations) t.allocs.set(a.id, a);
    t.blockedReason = p.blockedReason;
    t.evaluations = p.evaluations;
    t.gone = p.gone;
    t.emptyListings = p.allocations.length === 0 ? t.emptyListings + 1 : 0;
    if (p.index > t.index) {
      t.index = p.index;
      wake(t);
    }
  }

  function ensureStream(): void {
    if (stream) return;
    const controller = new AbortController();
    stream = controller;
    void (async () => {
      while (!controller.signal.aborted) {
        const cut = new AbortController();
        let heardAt = Date.now();
        const watchdog = setInterval(() => {
          if (Date.now() - heardAt > silenceMs) cut.abort();
        }, silenceMs / 5);
        try {
          for await (const batch of nomad.allocationEvents(streamIndex, AbortSignal.any([controller.signal, cut.signal]))) {
            heardAt = Date.now();
            live = true;
            if (batch.heartbeat) continue;
            streamIndex = batch.index;
            for (const a of batch.allocations) {
              const t = tracked.get(a.jobId);
              if (!t) {
                hold(a.jobId, a, batch.index);
                continue;
              }
              t.allocs.set(a.id, a);
              t.index = Math.max(t.index, batch.index);
              wake(t);
            }
          }
        } catch (err) {
          log.warn({ err }, "allocation event stream broke off; reconnecting (tracked jobs are listed again as their waits end)");
        } finally {
          clearInterval(watchdog);
          live = false;
          connection++;
        }
        if (controller.signal.aborted) break;
        if (cut.signal.aborted) log.warn({ silent_ms: Date.now() - heardAt }, "allocation event stream went silent; reconnecting (tracked jobs are listed again as their waits end)");
        // no listing of every tracked job here: none is covered by the next connection, so each
        // is listed when its wait ends, spread over one wait instead of a burst before reconnecting
        await new Promise((r) => setTimeout(r, reconnectMs));
      }
    })();
  }

  /** Keeps an untracked job's change for a watch that may follow its dispatch. */
  function hold(jobId: string, a: AllocationState, index: number): void {
    const now = Date.now();
    const held = recent.get(jobId) ?? { allocs: new Map(), index, at: now };
    recent.delete(jobId); // re-inserted last: the map stays oldest first
    held.allocs.set(a.id, a);
    held.index = Math.max(held.index, index);
    held.at = now;
    recent.set(jobId, held);
    for (const [id, h] of recent) {
      if (recent.size <= recentMax && now - h.at < RECENT_MS) break;
      if (recent.size > recentMax) crowded++;
      recent.delete(id);
    }
  }

  /**
   * A job dispatched on the live connection, watched for the first time on it: its changes are all
   * held or still to come, so it starts covered, without a listing.
   */
  function adoptDispatched(jobId: string, t: Tracked): boolean {
    const d = dispatched.get(jobId);
    dispatched.delete(jobId);
    const held = recent.get(jobId);
    recent.delete(jobId);
    if (!d || !live || d.connection !== connection || d.crowded !== crowded || Date.now() - d.sentAt >= RECENT_MS) return false;
    if (held) {
      t.allocs = held.allocs;
      t.index = held.index;
    }
    t.coveredOn = connection;
    t.listedAt = Date.now();
    return true;
  }

  function stopIfIdle(): void {
    // a child dispatched and not yet watched keeps it too: its changes may be on their way
    if (tracked.size > 0 || dispatched.size > 0 || !stream) return;
    stream.abort();
    stream = undefined;
  }

  function waitFor(t: Tracked, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const done = () => {
        clearTimeout(timer);
        forget?.();
        resolve();
      };
      const aborted = () => {
        clearTimeout(timer);
        t.waiters.delete(done);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => (t.waiters.delete(done), done()), ms);
      t.waiters.add(done);
      const forget = signal && onAbort(signal, aborted);
    });
  }

  function snapshot(jobId: string, t: Tracked): JobPlacement {
    const allocations = [...t.allocs.values()];
    const latest = latestAllocation(allocations);
    const gone = allocations.length === 0 && t.gone === true;
    // nothing more will happen to this job: stop following it
    if (gone || (latest && isTerminal(latest))) {
      tracked.delete(jobId);
      stopIfIdle();
    }
    const none = allocations.length === 0;
    return { allocations, blockedReason: none ? t.blockedReason : undefined, evaluations: none ? t.evaluations : undefined, gone, index: t.index };
  }

  function needsListing(t: Tracked): boolean {
    if (!live || t.coveredOn !== connection) return true;
    const relistMs = Math.min(unplacedRelistMaxMs, unplacedRelistMs * 2 ** Math.max(0, t.emptyListings - 1));
    return t.allocs.size === 0 && Date.now() - t.listedAt >= relistMs;
  }

  function forgetAbandoned(now: number): void {
    if (now - sweptAt < FORGET_SWEEP_MS) return;
    sweptAt = now;
    for (const [jobId, t] of tracked) if (now - t.askedAt > FORGET_MS && t.waiters.size === 0) tracked.delete(jobId);
    for (const [jobId, d] of dispatched) if (now - d.sentAt >= RECENT_MS) dispatched.delete(jobId);
  }

  return {
    async watchJob(jobId, index, waitMs, signal) {
      const now = Date.now();
      forgetAbandoned(now);
      let t = tracked.get(jobId);
      if (!t) {
        t = { allocs: new Map(), index: 0, waiters: new Set(), askedAt: now, listedAt: 0, emptyListings: 0 };
        tracked.set(jobId, t);
        ensureStream();
        if (!adoptDispatched(jobId, t)) await reconcile(jobId, t);
      }
      t.askedAt = now;
      if (t.index <= index) {
        await waitFor(t, waitMs, signal);
        // no event for this job: list it unless the stream is known to carry all its changes
        if (t.index <= index && needsListing(t)) await reconcile(jobId, t);
      }
      return snapshot(jobId, t);
    },
    async dispatch(req) {
      // opened here, so the children after the first are covered while it is live
      ensureStream();
      const seen = live ? { connection, sentAt: Date.now(), crowded } : undefined;
      const job = await nomad.dispatch(req);
      if (seen) dispatched.set(job.jobId, seen);
      return job;
    },
    close() {
      tracked.clear();
      dispatched.clear();
      recent.clear();
      stopIfIdle();
    },
  };
}

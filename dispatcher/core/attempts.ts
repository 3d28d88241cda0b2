// The attempts alive in this process: each one's place under the limits (its serialization key,
// whether its child has ended), its backoff (notBefore) and its failures so far, when it was first
// seen pending (the queue wait). It starts attempts (runAttempt carries each out) and lets the
// pass know when one is over. Keyed by id: anything with an id, a key and a lifecycle can run here.
import type { Logger } from "../log.js";
import { runAttempt, type AttemptDeps } from "./attempt.js";
import { policiesFor } from "./catalog.js";
import type { LoopEmitter } from "./events.js";
import type { Flusher } from "./flush.js";
import { beginClaim, beginPushFromLedger, beginReattach, type AttemptStart, type Step } from "./lifecycle.js";
import type { SharedLimits } from "./limits.js";
import type { LedgerEntry, LedgerPort } from "./ports.js";
import type { Purging } from "./purging.js";
import type { ActionResult } from "./result.js";
import { serializationKey, type Candidate, type Limits } from "./schedule.js";
import type { Fence } from "./verify.js";

/** An attempt alive in this process. */
interface InFlight {
  key: string;
  /** its child has ended: it no longer counts towards the limits, though its result is still being recorded */
  ended: boolean;
  done: Promise<void>;
}

type Ports = Omit<AttemptDeps, "log" | "events" | "me" | "fence" | "signal" | "queueResult" | "retryAt" | "release" | "schedulePurge" | "settings">;

export interface AttemptsDeps extends Ports {
  ledger: LedgerPort;
  log: Logger;
  events: LoopEmitter;
  settings: AttemptDeps["settings"] & { limits: Limits; dispatcher: { version: string; instance: string } };
  fence: Fence;
  /** shutdown: children are left running for whoever re-attaches */
  signal: AbortSignal;
  flusher: Pick<Flusher, "add" | "queue">;
  purging: Pick<Purging, "schedule">;
  /** the places of the limits replicas share; without them the limits hold in this process only */
  shared?: Pick<SharedLimits, "adopt" | "free">;
  /** a child ended (its place is free) or an attempt is over */
  onEnd(): void;
  /** the attempt of `id` is over (its result queued, or none: a retry, a lost claim) */
  onOver(id: string): void;
}

/** How long a child of `action` may exist at the most: placement deadline, timeout, the backup stop's grace. */
export function childRunMs(action: { timeout_minutes?: number }, s: { defaultTimeoutMinutes: number; placementSeconds: number }): number {
  return ((action.timeout_minutes ?? s.defaultTimeoutMinutes) * 60 + s.placementSeconds) * 1000 + 60_000;
}

export function createAttempts(d: AttemptsDeps) {
  const s = d.settings;
  const me = s.dispatcher.instance;
  const inFlight = new Map<string, InFlight>();
  const notBefore = new Map<string, Date>();
  /** consecutive failures before a dispatch, per action: the retry table's attempt number */
  const failures = new Map<string, number>();
  /** when a pass first saw each pending action: the queue wait ends at its dispatch */
  const firstSeen = new Map<string, number>();
  const now = () => d.clock.now();
  const keyOf = (c: Candidate) => serializationKey(c.action, s.limits.serializeBy);
  /** frees the shared places of `id` (its child ended, or its attempt is over) */
  const freePlaces = (id: string) => void d.shared?.free(id).catch((err: unknown) => d.events.emit("places:free-failed", { id, err }));

  function track(c: Candidate, work: () => Promise<void>): void {
    const id = c.action.id;
    const f: InFlight = { key: keyOf(c), ended: false, done: Promise.resolve() };
    inFlight.set(id, f);
    f.done = work().finally(() => {
      inFlight.delete(id);
      freePlaces(id);
      d.onEnd();
      d.onOver(id);
    });
  }

  /**
   * What one attempt needs: the ports, where results and retries go. Its own six fields on `d` as
   * prototype, not a copy of `d`'s two dozen: a spread literal (`{ ...d, log, … }`) gave each
   * attempt in flight a hidden class of its own (V8 gives a warm spread clone with properties added
   * after the spread a new map), and a copy into `{}` a property array instead, either way about
   * 0.8 KB per attempt (bench/README.md, "Memory in flight"). Nothing spreads or lists an
   * attempt's deps: each port is read as `deps.x`.
   */
  function attemptDeps(id: string, log: Logger, queue: (r: ActionResult, fullLog: string, pushed: () => Promise<void>) => void): AttemptDeps {
    const own: Pick<AttemptDeps, "log" | "me" | "queueResult" | "schedulePurge" | "retryAt" | "release"> = {
      log,
      me,
      queueResult: queue,
      schedulePurge: (pushedId, jobId) => d.purging.schedule(pushedId, jobId),
      retryAt: (at) => notBefore.set(id, at),
      release() {
        const f = inFlight.get(id);
        if (!f) return;
        f.ended = true;
        freePlaces(id);
        d.events.emit("action:released", { id });
        d.onEnd();
      },
    };
    return Object.assign(Object.create(d) as AttemptsDeps, own);
  }

  /** Runs an attempt to its end; the failures of one left waiting count towards its next retry. */
  async function carry(c: Candidate, first: Step, entry: LedgerEntry | undefined, log: Logger): Promise<void> {
    const end = await runAttempt(first, { file: c.file, action: c.action, entry }, attemptDeps(c.action.id, log, d.flusher.queue));
    if (end.phase === "waiting") failures.set(c.action.id, end.failures);
    else failures.delete(c.action.id);
    // the queue wait of an action that failed before its child ran goes on
    if (end.phase !== "waiting" || end.jobId !== undefined) firstSeen.delete(c.action.id);
  }

  function attemptOf(c: Candidate, commit: string, previous: LedgerEntry | undefined): AttemptStart {
    const id = c.action.id;
    return {
      id,
      attempt: previous?.attempt ?? 1,
      // the ledger records, it does not decide: a resumed claim runs at the commit this pass approved
      actionSha: c.file.sha,
      commit,
      policies: policiesFor(c.action.secrets),
      approvedBy: c.approvedBy,
      seenAt: firstSeen.get(id) ?? now().getTime(),
      failures: failures.get(id),
      dispatcher: s.dispatcher,
    };
  }

  return {
    /** a claim (fresh, or resuming `previous`) at `commit` */
    start(c: Candidate, commit: string, previous?: LedgerEntry): void {
      const log = d.log.child({ action: c.action.id, attempt: previous?.attempt ?? 1 });
      track(c, () => carry(c, beginClaim(attemptOf(c, commit, previous), previous !== undefined), previous, log));
    },
    /** following the child `previous` names (verify_entry checks it is ours, for this action): its result says what it ran */
    reattach(c: Candidate, previous: LedgerEntry): void {
      const log = d.log.child({ action: c.action.id, attempt: previous.attempt, job_id: previous.jobId });
      const a = { ...attemptOf(c, previous.commit, previous), actionSha: previous.actionSha, jobId: previous.jobId!, accessor: previous.accessor, dispatchedAt: previous.dispatchedAt, from: previous.owner };
      track(c, async () => {
        // it runs already: it keeps its dead owner's places, or takes free ones, without waiting
        const adopted = d.shared ? await d.shared.adopt(c.action.id, keyOf(c), childRunMs(c.action, s)).catch(() => false) : true;
        if (!adopted) d.events.emit("places:overrun", { id: c.action.id });
        await carry(c, beginReattach(a), previous, log);
      });
    },
    /** A result a dead owner finished but never pushed (checked by the caller): queued, recorded once pushed. */
    async pushFromLedger(entry: LedgerEntry, result: ActionResult): Promise<void> {
      const start = { id: entry.id, attempt: entry.attempt, actionSha: entry.actionSha, commit: entry.commit, policies: [], seenAt: now().getTime(), dispatcher: s.dispatcher, jobId: entry.jobId };
      await runAttempt(beginPushFromLedger(start, result), { entry }, attemptDeps(entry.id, d.log.child({ action: entry.id }), d.flusher.add));
    },
    /** the pass first saw `id` pending at `at` (kept until its dispatch) */
    seen(id: string, at: number): void {
      if (!firstSeen.has(id)) firstSeen.set(id, at);
    },
    has: (id: string) => inFlight.has(id),
    size: () => inFlight.size,
    ids: () => [...inFlight.keys()],
    /** the attempts holding a place under max_in_flight and their serialization keys (a child that has ended holds none) */
    holding: () => new Map([...inFlight].filter(([, f]) => !f.ended).map(([id, f]) => [id, { key: f.key }])),
    /** when each action's backoff ends */
    notBefore: notBefore as ReadonlyMap<string, Date>,
    /** every attempt alive now has ended */
    settled: async (): Promise<void> => void (await Promise.all([...inFlight.values()].map((f) => f.done))),
  };
}

export type Attempts = ReturnType<typeof createAttempts>;

import { createActionsIndex, readActions, takeIgnoredChange } from "./repo-read.js";
import type { ParsedAction } from "../actions/schema.js";
import { failureClassOf, nextRetry } from "../errors.js";
import type { Logger } from "../log.js";
import { buildCatalog, catalogNeeds, policiesFor, refusalOf, waitsForVault, type Catalog, type CatalogSettings } from "./catalog.js";
import type { ExecuteDeps } from "./execute.js";
import { runAttempt, type AttemptDeps } from "./attempt.js";
import { beginClaim, beginReattach, type AttemptStart, type Step } from "./lifecycle.js";
import { approvalRefusal, readApproval, type ApprovalRule, type ApprovalVerdict } from "./approval.js";
import { readForgeApproval, type ForgeApprovalRule } from "./forge-approval.js";
import { decideTakeover } from "./takeover.js";
import { parentJobsOf } from "./request.js";
import { finishedJobProblem, storedResultProblem, type Fence } from "./verify.js";
import { createLoopEmitter, type LoopEmitter } from "./events.js";
import { planDispatches, serializationKey, type Candidate, type Limits, type Plan, type Wait } from "./schedule.js";
import type { Clock, FactoryPort, ForgeGatePort, LedgerEntry, LedgerPort, NomadPort, OpsRepoPort, PlacesPort, SyncHint, VaultPort } from "./ports.js";
import { buildRefusal, type ActionResult, type ResultBase } from "./result.js";
import { createResultWriter } from "./writer.js";
import { createPurgeSchedule, entryExpired, PURGE_RESUME_MARGIN_MS, resumable, silentInstances } from "./purge.js";
import { createSharedLimits } from "./limits.js";

export interface LoopDeps {
  nomad: NomadPort;
  vault: VaultPort;
  repo: OpsRepoPort;
  /** formulas.factory_remote: formulas from the factory repository at its pinned commit */
  factory?: FactoryPort;
  ledger: LedgerPort;
  /** the places of the limits replicas share (core/limits.ts); without it the limits hold in this process only */
  places?: PlacesPort;
  clock: Clock;
  log: Logger;
  /** where the loop reports its transitions (its logs hang on them); a new one when absent */
  events?: LoopEmitter;
  /** the forge's pull requests, for approvals with provider = "forge" */
  forgeGate?: ForgeGatePort;
  settings: ExecuteDeps["settings"] & {
    knownSecrets: string[];
    classes: CatalogSettings["classes"];
    formulaSecrets?: CatalogSettings["formulaSecrets"];
    formulaMounts?: CatalogSettings["formulaMounts"];
    hostVolumes: CatalogSettings["hostVolumes"];
    limits: Limits;
    tailBytes: number;
    /** results finished within this window share one commit and one push */
    commitWindowMs: number;
    /** pushes of results start at most this often; what finishes meanwhile joins the next (0: no bound) */
    pushIntervalMs: number;
    /** an owner silent this long is presumed dead and its actions are taken over */
    leaseMs: number;
    /** a replica's heartbeat silent this long is removed from the ledger (checked at most hourly) */
    instanceRetentionMs?: number;
    /** a recorded action's ledger entry is removed this long after it was recorded (0 or absent: kept) */
    ledgerRetentionMs?: number;
    /** a child is purged from Nomad this long after its result was pushed (0: never) */
    purgeAfterMs: number;
    /** the namespace runner jobs live in (ledger entries must point there) */
    namespace: string;
    /** require signed commits (and N approvals), or the forge's merged and approved pull requests; undefined: any commit on the branch may trigger */
    approvals?: ApprovalRule | ForgeApprovalRule;
    dispatcher: { version: string; instance: string };
    /** action files a pass reads at most (default READS_PER_PASS); the next pass reads on */
    readsPerPass?: number;
  };
}

export interface PassSummary {
  commit: string;
  started: string[];
  reattached: string[];
  refused: string[];
  waiting: Wait[];
  inFlight: number;
  /** pending action files this pass left unread (a pass reads at most READS_PER_PASS): the next pass comes at once */
  deferred?: number;
}

/** How old a confirmed remote tip may be for the passes `once` makes between completions. */
const RECENT_TIP_MS = 1000;

/** failed passes in a row that `once` waits out before it gives up (refusals, HTTP 429, aside) */
const ONCE_PASS_RETRIES = 5;

/** how long the passes after a full read may lean on it (its catalog: host volumes, Vault's policies) */
const FULL_SCAN_MS = 10_000;

/** why a wait's timer and listeners were dropped (see untilWork) */
const WAIT_OVER = new Error("the wait is over");

/** a wait without its own end (Vault, a result not yet at the tip) is looked at again after this */
const RECHECK_MS = 1000;


/** An attempt alive in this process. */
interface InFlight {
  key: string;
  /** its child has ended: it no longer counts towards the limits, though its result is still being recorded */
  ended: boolean;
  done: Promise<void>;
}

/** The dispatch loop over the ports: read → refuse or plan → claim → execute → record. */
export function createLoop(deps: LoopDeps) {
  const s = deps.settings;
  const me = s.dispatcher.instance;
  const log = deps.log;
  const events = deps.events ?? createLoopEmitter();
  const writer = createResultWriter(deps.repo, { actionsDir: s.actionsDir, maxLogBytes: s.maxLogBytes, log });
  const inFlight = new Map<string, InFlight>();
  const notBefore = new Map<string, Date>();
  /** consecutive failures before a dispatch, per action: the retry table's attempt number */
  const failures = new Map<string, number>();
  /** entries whose result is queued: marked recorded once pushed */
  const toRecord = new Map<string, LedgerEntry>();
  const controller = new AbortController();
  const purges = createPurgeSchedule(s.purgeAfterMs);
  const shared =
    deps.places &&
    createSharedLimits({ places: deps.places, ledger: deps.ledger, clock: deps.clock, events, instance: me, session: `${process.pid}-${deps.clock.now().getTime().toString(36)}`, maxInFlight: s.limits.maxInFlight, leaseMs: s.leaseMs });
  /** how long a child of `action` may exist at the most: placement deadline, timeout, the backup stop's grace */
  const childRunMs = (action: { timeout_minutes?: number }) => ((action.timeout_minutes ?? s.defaultTimeoutMinutes) * 60 + s.placementSeconds) * 1000 + 60_000;
  /** frees the shared places of `id` (its child ended, or its attempt is over) */
  const freePlaces = (id: string) => void shared?.free(id).catch((err: unknown) => events.emit("places:free-failed", { id, err }));
  /** when a pass first saw each pending action: the queue wait ends at its dispatch */
  const firstSeen = new Map<string, number>();
  /** aborted to cut the poll interval short (a push webhook) */
  let wakeUp = new AbortController();
  /** the tip the pending wake's webhook named */
  let pushedTip: string | undefined;
  /** the actions directory as the last pass saw it: the next applies only what changed */
  const actionsIndex = createActionsIndex({ readsPerPass: s.readsPerPass });
  let lastBeat = 0;
  /**
   * The last pass that read every pending action, its catalog and the timed waits it found. A pass
   * at the same commit, within FULL_SCAN_MS and before any of those waits is due, reads only as
   * far as the free places reach: a backlog of n was otherwise read n times over, one pass per
   * completion.
   */
  let scan: { commit: string; at: number; catalog: Catalog; timed: Wait[] } | undefined;
  /** a tip at which nothing was pending: the same tip again means a pass has nothing to do */
  let quietAt: string | undefined;
  /** the coalescing window's flush, while one is scheduled or running */
  let flushing: Promise<void> | undefined;
  /** ends the scheduled flush's wait early: nothing is left in flight to join it */
  let flushNow: AbortController | undefined;
  /** a child ended or an attempt was over since the last pass began: the next wait returns at once */
  let endedSincePass = false;
  /** ends the loop's current wait (untilWork) */
  let wakeOnEnd: (() => void) | undefined;
  function noteEnd(): void {
    endedSincePass = true;
    wakeOnEnd?.();
  }
  /** when the last flush started */
  let lastFlushAt = Number.NEGATIVE_INFINITY;
  const fence: Fence = { parents: new Set([...parentJobsOf(s.runnerJob, s.classes, s.mountSets), ...parentJobsOf(s.sidecarJob, s.classes, s.mountSets)]), namespace: s.namespace };

  const now = () => deps.clock.now();
  const stamp = () => now().toISOString();

  /** `force`: say so now (draining starts), not at the next beat */
  async function beat(force = false): Promise<void> {
    if (!force && now().getTime() - lastBeat < s.leaseMs / 3) return;
    await deps.ledger.heartbeat(me, now(), { inFlight: inFlight.size, draining: controller.signal.aborted, version: s.dispatcher.version });
    lastBeat = now().getTime();
    await forgetSilent();
  }

  /** when the heartbeats were last swept */
  let lastSweep = Number.NEGATIVE_INFINITY;

  /**
   * The ledger's retention, at most hourly (or each retention, when shorter) and at the first
   * beat: heartbeats of replicas silent past theirs, and recorded entries past theirs.
   */
  async function forgetSilent(): Promise<void> {
    const retentions = [s.instanceRetentionMs, s.ledgerRetentionMs].filter((r): r is number => r !== undefined && r > 0);
    if (retentions.length === 0 || now().getTime() - lastSweep < Math.min(...retentions, 3_600_000)) return;
    lastSweep = now().getTime();
    try {
      if (s.instanceRetentionMs) {
        for (const b of silentInstances(await deps.ledger.instances(), me, now(), s.instanceRetentionMs)) {
          if (await deps.ledger.forgetInstance(b)) events.emit("ledger:instance-forgotten", { instance: b.instance, seenAt: b.seenAt.toISOString() });
        }
      }
      if (s.ledgerRetentionMs) {
        const written = await deps.ledger.written();
        let removed = 0;
        // only entries last written before the retention are read: a recorded one has not changed since
        for (const { id } of written.filter((w) => now().getTime() - w.writtenAt.getTime() > s.ledgerRetentionMs!)) {
          const entry = await deps.ledger.get(id);
          if (entry && entryExpired(entry, now(), s.ledgerRetentionMs) && (await deps.ledger.remove(entry))) {
            removed++;
            events.emit("ledger:entry-removed", { id, recordedAt: entry.updatedAt });
          }
        }
        events.emit("ledger:size", { entries: written.length - removed });
      }
    } catch (err) {
      log.warn({ err }, "could not sweep the ledger (silent replicas' heartbeats, recorded entries); trying again at the next sweep");
    }
  }

  function baseOf(id: string, sha: string, commit: string, attempt: number, approvedBy?: string[]): ResultBase {
    return { id, actionSha: sha, commit, attempts: attempt, dispatcher: s.dispatcher, ...(approvedBy ? { approvedBy } : {}) };
  }

  /** verdicts by commit and action blob: the signatures of a commit's history never change */
  const verdicts = new Map<string, ApprovalVerdict>();

  async function approvalFor(rule: ApprovalRule | ForgeApprovalRule, commit: string, file: { path: string; sha: string }, action: ParsedAction & { ok: true }): Promise<ApprovalVerdict> {
    const key = `${commit}\0${file.path}\0${file.sha}`;
    let verdict = verdicts.get(key);
    if (!verdict) {
      verdict = "approvers" in rule ? await readForgeApproval(deps.forgeGate!, rule, commit, file, action.action) : await readApproval(deps.repo, rule, commit, file, action.action.formula);
      if (verdicts.size > 10_000) verdicts.clear();
      verdicts.set(key, verdict);
    }
    return verdict;
  }

  /**
   * One pass, reported as pass:done or pass:failed. `tip`: what is known of the remote's tip
   * (confirmed recently between completions, or named by a push webhook).
   */
  async function pass(tip?: SyncHint): Promise<PassSummary> {
    const t0 = now().getTime();
    const checked = deps.repo.signatureChecks?.() ?? 0;
    try {
      const summary = await readAndStart(tip);
      // every pass that reached the remote pushes what is waiting: refusals it queued, and results
      // a failed push kept (a quiet tip too: nothing new is pending there, the kept ones are held)
      scheduleFlush();
      const signaturesChecked = (deps.repo.signatureChecks?.() ?? 0) - checked;
      events.emit("pass:done", { durationMs: now().getTime() - t0, commit: summary.commit, started: summary.started.length, refused: summary.refused.length, waiting: summary.waiting.length, ...(signaturesChecked > 0 ? { signaturesChecked } : {}) });
      return summary;
    } catch (err) {
      events.emit("pass:failed", { durationMs: now().getTime() - t0, class: failureClassOf(err), err });
      throw err;
    }
  }

  /**
   * Ids this instance knows to have a ledger entry, so a pass reads it before deciding. The
   * ledger is never listed: it keeps every action ever recorded, and a listing grew with the
   * history (10,000 entries: 1.6 MB, 160 ms of node CPU on a slow machine, then its garbage).
   * An id not known is taken for new, and the claim's check-and-set create finds any entry
   * there is (another instance's, an earlier life's, a recorded one): a lost claim, never two
   * owners. An attempt that ends without a result (a lost claim, a retry) adds its id, so the
   * next pass reads it.
   */
  const known = new Set<string>();

  /** the purge schedule was read back from the ledger (at the first pass) */
  let purgesResumed = false;

  /** Purges a previous life (or a dead replica) scheduled: recorded entries with a job, not yet purged, recorded recently. */
  async function resumePurges(): Promise<void> {
    if (purgesResumed || s.purgeAfterMs <= 0) return;
    purgesResumed = true;
    try {
      const since = now().getTime() - s.purgeAfterMs - PURGE_RESUME_MARGIN_MS;
      for (const w of (await deps.ledger.written()).filter((x) => x.writtenAt.getTime() >= since)) {
        const entry = await deps.ledger.get(w.id);
        // its own only (a stable DISPATCHER_INSTANCE): another replica's are that replica's to resume
        const recordedAt = entry && entry.owner === me ? resumable(entry) : undefined;
        if (recordedAt && entry?.jobId) purges.add(w.id, entry.jobId, recordedAt);
      }
    } catch (err) {
      log.warn({ err }, "could not read the purge schedule back from the ledger; those children are left to Nomad's GC");
    }
  }

  /** Children whose retention passed since their result was pushed leave Nomad. */
  async function purgeDue(): Promise<void> {
    await resumePurges();
    for (const p of purges.takeDue(now())) {
      try {
        await deps.nomad.purgeJob(p.jobId);
        events.emit("job:purged", p);
        // done with it: a restart does not purge it again
        const entry = await deps.ledger.get(p.id).catch(() => undefined);
        if (entry?.jobId === p.jobId && !entry.purgedAt) await deps.ledger.update(entry, { purgedAt: stamp() }).catch(() => undefined);
      } catch (err) {
        events.emit("job:purge-failed", { ...p, class: failureClassOf(err), err });
      }
    }
  }

  /** Read pending actions at the remote's tip, refuse the bad ones, claim and start what the plan allows. */
  async function readAndStart(tip?: SyncHint): Promise<PassSummary> {
    endedSincePass = false;
    await beat();
    await purgeDue();
    const commit = await deps.repo.sync(tip);
    const summary: PassSummary = { commit, started: [], reattached: [], refused: [], waiting: [], inFlight: inFlight.size };
    if (commit === quietAt) return summary;
    const all = await readActions(deps.repo, commit, s.actionsDir, actionsIndex);
    reportIgnored();
    if (actionsIndex.deferred > 0) summary.deferred = actionsIndex.deferred;
    const at = now(); // one instant for the whole pass: thousands may be pending
    const last = scan?.commit === commit && at.getTime() - scan.at < FULL_SCAN_MS && scan.timed.every((w) => w.until !== undefined && w.until > at) ? scan : undefined;
    let catalog: Catalog;
    if (last) catalog = last.catalog;
    else {
      const pending = all.filter((p) => !writer.holds(p.file.id) && !inFlight.has(p.file.id));
      if (pending.length === 0) {
        if (!summary.deferred) quietAt = commit;
        return summary;
      }
      catalog = await buildCatalog(deps, commit, s, catalogNeeds(pending));
    }
    const seen = new Map<string, Date | undefined>();
    /** `at`: the commit the attempt runs at (a resumed claim may keep its own: resumeAt) */
    const candidates: (Candidate & { entry?: LedgerEntry; at?: string })[] = [];

    /** An entry that does not hold up: the action runs as its next attempt (a new idempotency key), at the approved commit. */
    function afresh(p: ParsedAction & { ok: true }, approvedBy: string[] | undefined, entry: LedgerEntry, problem: string): void {
      log.error({ action: entry.id, owner: entry.owner, problem }, "ledger entry does not hold up: running the action afresh at the approved commit");
      if (!firstSeen.has(p.action.id)) firstSeen.set(p.action.id, now().getTime());
      const next = { ...entry, state: "claimed" as const, attempt: entry.attempt + 1, jobId: undefined, accessor: undefined, dispatchedAt: undefined, result: undefined };
      candidates.push({ file: p.file, action: p.action, approvedBy, entry: next });
    }

    /**
     * Where a claim left by a crash resumes. A crash between dispatch and its record left a child
     * dispatched at the entry's commit, which the same idempotency key returns: the entry's commit
     * when the action blob is the same and it runs the same code as the approved tip (only action
     * files and results moved on since), so that child is the one the claim meant. Otherwise the
     * approved tip: the ledger records, it does not decide (a child found at another commit then
     * differs from its pin, and fails as tampered rather than running code the tip does not approve).
     */
    async function resumeAt(p: ParsedAction & { ok: true }, entry: LedgerEntry, tip: string): Promise<string> {
      if (entry.commit === tip) return tip;
      if (entry.actionSha === p.file.sha && (await deps.repo.sameCodeAs(entry.commit, tip, s.actionsDir))) return entry.commit;
      log.warn({ action: p.action.id, owner: entry.owner, entry_commit: entry.commit, commit: tip }, "resuming a claim at the approved commit, not the one its ledger entry names (the code or the action differs there)");
      return tip;
    }

    /** Refuses `p`, or notes why it waits, or takes it as a candidate. */
    async function consider(p: ParsedAction): Promise<void> {
      let refusal = refusalOf(p, catalog);
      let approvedBy: string[] | undefined;
      if (!refusal && p.ok && s.approvals) {
        // before any token: an unsigned commit, even a formula's own push, triggers nothing
        const verdict = await approvalFor(s.approvals, commit, p.file, p);
        if (verdict.ok) approvedBy = verdict.signers;
        refusal = approvalRefusal(p.file.path, verdict);
      }
      if (refusal) {
        writer.add({ result: buildRefusal(baseOf(p.file.id, p.file.sha, commit, 1), now(), refusal.class, refusal.message), fullLog: "" });
        events.emit("action:refused", { id: p.file.id, class: refusal.class, problem: refusal.message });
        summary.refused.push(p.file.id);
        return;
      }
      if (!p.ok) return;
      if (waitsForVault(p, catalog)) {
        // its secrets cannot be checked now: wait for Vault, never refuse on an outage
        summary.waiting.push({ id: p.action.id, kind: "vault", reason: "vault unreachable" });
        return;
      }
      const retry = notBefore.get(p.action.id);
      if (retry && retry > at) {
        // our own attempt's backoff (its entry is ours): the plan says so, no ledger read needed
        candidates.push({ file: p.file, action: p.action, approvedBy });
        return;
      }
      const entry = known.has(p.action.id) ? await deps.ledger.get(p.action.id) : undefined;
      if (entry && entry.owner !== me && !seen.has(entry.owner)) seen.set(entry.owner, await deps.ledger.lastSeen(entry.owner));
      const d = decideTakeover(entry, me, entry && seen.get(entry.owner), at, s.leaseMs);
      if (d.kind === "skip") summary.waiting.push({ id: p.action.id, ...d.wait });
      else if (d.kind === "push") {
        const problem = storedResultProblem(d.entry, p.file.sha) ?? finishedJobProblem(d.entry, d.entry.jobId ? await deps.nomad.childJob(d.entry.jobId) : undefined, fence);
        if (!problem) pushFromLedger(d.entry);
        else {
          events.emit("ledger:distrusted", { id: d.entry.id, problem, owner: d.entry.owner });
          afresh(p, approvedBy, d.entry, problem);
        }
      } else if (d.kind === "afresh") afresh(p, approvedBy, d.entry, d.problem);
      else if (d.kind === "reattach") {
        reattach({ file: p.file, action: p.action, approvedBy }, d.entry);
        summary.reattached.push(p.action.id);
      } else {
        if (!firstSeen.has(p.action.id)) firstSeen.set(p.action.id, at.getTime());
        candidates.push({ file: p.file, action: p.action, approvedBy, entry: d.kind === "resume" ? d.entry : undefined, at: d.kind === "resume" ? await resumeAt(p, d.entry, commit) : commit });
      }
    }

    /** consider(), failing only on an engine's outage: a check that throws on one action's input skips that one */
    async function considerAlone(p: ParsedAction): Promise<void> {
      try {
        await consider(p);
      } catch (err) {
        const cls = failureClassOf(err);
        if (cls === "infra" || cls === "rate_limited" || cls === "auth") throw err;
        events.emit("action:skipped", { id: p.file.id, class: cls, err });
      }
    }

    // an attempt whose child has ended holds no place under max_in_flight or its serialization key
    const inFlightView = new Map([...inFlight].filter(([, f]) => !f.ended).map(([id, f]) => [id, { key: f.key }]));
    const free = s.limits.maxInFlight - inFlightView.size;
    // after a full read, a pass reads only until its candidates fill the free places, reading
    // further while the plan leaves places free (a backoff, a serialization key)
    let want = free;
    let i = 0;
    let plan: Plan<(typeof candidates)[number]>;
    for (;;) {
      for (; i < all.length && !(last && candidates.length >= want); i++) {
        const p = all[i]!;
        if (!writer.holds(p.file.id) && !inFlight.has(p.file.id)) await considerAlone(p);
      }
      plan = planDispatches(candidates, { inFlight: inFlightView, notBefore }, s.limits, at);
      if (!last || i >= all.length || plan.dispatch.length >= free) break;
      want += free - plan.dispatch.length;
    }
    // the limits replicas share: a key's lock and a slot each, or a wait naming who holds them
    const admitted = shared ? await shared.admit(plan.dispatch, (c) => serializationKey(c.action, s.limits.serializeBy), at, (c) => childRunMs(c.action)) : { start: plan.dispatch, waiting: [] };
    for (const c of admitted.start) start(c, c.at ?? commit, c.entry);
    summary.started = admitted.start.map((c) => c.action.id);
    summary.waiting.push(...plan.waiting, ...admitted.waiting);
    if (last) summary.waiting.push(...last.timed);
    else scan = { commit, at: at.getTime(), catalog, timed: summary.waiting.filter((w) => w.kind !== "limit") };
    // files read by the next pass need a catalog of their own
    if (summary.deferred) scan = undefined;
    summary.inFlight = inFlight.size;
    return summary;
  }

  /** entries ignored at the last report: a change to none is reported once */
  let ignoredCount = 0;

  /** The actions directory's entries outside the contract, logged and counted when they change. */
  function reportIgnored(): void {
    const change = takeIgnoredChange(actionsIndex);
    if (!change || (change.entries.length === 0 && !change.truncated && ignoredCount === 0)) return;
    ignoredCount = change.entries.length;
    const byCode: Partial<Record<(typeof change.entries)[number]["code"], number>> = {};
    for (const e of change.entries) byCode[e.code] = (byCode[e.code] ?? 0) + 1;
    const sample = change.entries.slice(0, 10).map((e) => ({ path: e.path, reason: e.reason }));
    events.emit("repo:ignored", { dir: s.actionsDir, count: ignoredCount, byCode, sample, truncated: change.truncated });
  }

  /** A result a dead owner finished but never pushed. Its full log was not kept, only the tail. */
  function pushFromLedger(entry: LedgerEntry): void {
    const forged = storedResultProblem(entry);
    if (forged) return void events.emit("ledger:distrusted", { id: entry.id, problem: forged, owner: entry.owner });
    const { log_file: _dropped, ...result } = JSON.parse(entry.result ?? "{}") as ActionResult;
    writer.add({ result, fullLog: "" });
    toRecord.set(entry.id, entry);
    log.info({ action: entry.id, owner: entry.owner }, "pushing a result left in the ledger");
  }

  function track(c: Candidate, work: () => Promise<void>): void {
    const id = c.action.id;
    const f: InFlight = { key: serializationKey(c.action, s.limits.serializeBy), ended: false, done: Promise.resolve() };
    inFlight.set(id, f);
    f.done = work().finally(() => {
      inFlight.delete(id);
      freePlaces(id);
      noteEnd();
      // an attempt that ends without a result (a retry, a lost claim) is pending again at this tip,
      // and the ledger has an entry for it (its own, or another instance's): read it next pass
      quietAt = undefined;
      if (!writer.holds(id)) known.add(id);
      // no other result can join the scheduled commit soon: push it now
      if (inFlight.size === 0) flushNow?.abort();
    });
  }

  /** What one attempt needs from the loop: the ports, where results and retries go. */
  function attemptDeps(c: Candidate, actionLog: Logger): AttemptDeps {
    const id = c.action.id;
    return {
      ...deps,
      log: actionLog,
      events,
      me,
      fence,
      signal: controller.signal,
      queueResult(result, fullLog, entry) {
        if (entry) toRecord.set(id, entry);
        writer.add({ result, fullLog });
        scheduleFlush();
      },
      retryAt: (at) => notBefore.set(id, at),
      release() {
        const f = inFlight.get(id);
        if (!f) return;
        f.ended = true;
        freePlaces(id);
        noteEnd();
      },
    };
  }

  /** Runs an attempt to its end; the failures of one left waiting count towards its next retry. */
  async function carry(c: Candidate, first: Step, entry: LedgerEntry | undefined, actionLog: Logger): Promise<void> {
    const end = await runAttempt(first, { file: c.file, action: c.action, entry }, attemptDeps(c, actionLog));
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

  function start(c: Candidate, commit: string, previous?: LedgerEntry): void {
    const actionLog = log.child({ action: c.action.id, attempt: previous?.attempt ?? 1 });
    track(c, () => carry(c, beginClaim(attemptOf(c, commit, previous), previous !== undefined), previous, actionLog));
  }

  function reattach(c: Candidate, previous: LedgerEntry): void {
    const actionLog = log.child({ action: c.action.id, attempt: previous.attempt, job_id: previous.jobId });
    // following the child the entry names (verify_entry checks it is ours, for this action): its result says what it ran
    const a = { ...attemptOf(c, previous.commit, previous), actionSha: previous.actionSha, jobId: previous.jobId!, accessor: previous.accessor, dispatchedAt: previous.dispatchedAt, from: previous.owner };
    track(c, async () => {
      // it runs already: it keeps its dead owner's places, or takes free ones, without waiting
      const adopted = shared ? await shared.adopt(c.action.id, serializationKey(c.action, s.limits.serializeBy), childRunMs(c.action)).catch(() => false) : true;
      if (!adopted) events.emit("places:overrun", { id: c.action.id });
      await carry(c, beginReattach(a), previous, actionLog);
    });
  }

  /**
   * Results that finish within the window share one commit and one push, and pushes start at most
   * once per push interval (git hosts rate-limit pushes, and each push costs both sides several git processes):
   * under load a commit carries what finished since the last one. The wait ends early when
   * nothing is left in flight.
   */
  function scheduleFlush(): void {
    if (flushing || writer.size() === 0) return;
    // with nothing in flight no other result can join: push now (a pass that ran during the
    // last push, or one that only refused, would otherwise wait out the interval)
    const wait = inFlight.size === 0 ? 0 : Math.max(s.commitWindowMs, lastFlushAt + s.pushIntervalMs - now().getTime());
    const cut = new AbortController();
    flushNow = cut;
    flushing = deps.clock
      .sleep(wait, cut.signal)
      .catch(() => undefined)
      .then(() => {
        flushing = undefined; // results recorded from here on get the next window
        flushNow = undefined;
        lastFlushAt = now().getTime();
        return flushSafely();
      });
  }

  /** Pushes what is queued and marks it recorded in the ledger; rejects when the push fails. */
  async function flushAndMark(): Promise<void> {
    const { written, skipped, failed, rejections } = await writer.flush();
    if (written.length > 0) events.emit("results:pushed", { ids: written, rejections });
    if (failed.length > 0) events.emit("results:unwritable", { ids: failed });
    await markRecorded([...written, ...skipped]);
  }

  async function flushSafely(): Promise<void> {
    try {
      await flushAndMark();
    } catch (err) {
      events.emit("results:kept", { waiting: writer.size(), err });
    }
  }

  async function markRecorded(ids: string[]): Promise<void> {
    for (const id of ids) {
      const entry = toRecord.get(id);
      if (!entry) continue;
      toRecord.delete(id);
      await deps.ledger.update(entry, { state: "recorded", result: undefined, updatedAt: stamp() });
      if (entry.jobId) purges.add(id, entry.jobId, now());
    }
  }

  /** When a pass's timed waits (a backoff, another owner's lease, Vault) are due; never without one. */
  function dueOf(summary: PassSummary): number {
    if (summary.deferred) return now().getTime();
    const timed = summary.waiting.filter((w) => w.kind !== "limit");
    return Math.min(...timed.map((w) => w.until?.getTime() ?? now().getTime() + RECHECK_MS));
  }

  /**
   * Waits for the next pass: until `due`, or until a child in flight ends (its place frees: what
   * waits on a limit can start while the result is still being recorded) or an attempt is over,
   * or one of `signals`. An end since the last pass began ends the wait at once.
   */
  async function untilWork(due: number, ...signals: AbortSignal[]): Promise<void> {
    if (endedSincePass || signals.some((x) => x.aborted)) return;
    // ends this wait's timer and listeners: the signals outlive many waits
    const done = new AbortController();
    const ended = new Promise<void>((r) => (wakeOnEnd = r));
    const woken = signals.map((x) => new Promise<void>((r) => x.addEventListener("abort", () => r(), { once: true, signal: done.signal })));
    const timer = Number.isFinite(due) ? [deps.clock.sleep(Math.max(100, due - now().getTime()), done.signal).catch(() => undefined)] : [];
    await Promise.race([ended, ...woken, ...timer]);
    wakeOnEnd = undefined;
    // a reason of our own: the default builds a DOMException, with its stack, on every wait
    done.abort(WAIT_OVER);
  }

  /** Keeps this instance's lease alive while it waits on long jobs. */
  function startHeartbeat(): () => void {
    const timer = setInterval(() => void beat().catch((err: unknown) => log.warn({ err }, "heartbeat failed")), Math.max(250, s.leaseMs / 3));
    timer.unref();
    return () => clearInterval(timer);
  }

  return {
    pass,
    /**
     * Passes until nothing is pending or in flight, then pushes. Rejects when a result could not
     * be recorded (the CLI turns that into a non-zero exit).
     */
    async once(): Promise<{ passes: number }> {
      const stopBeat = startHeartbeat();
      let passes = 0;
      let failedPasses = 0;
      /** failed passes in a row, refusals included: the retry rule's count */
      let inRow = 0;
      /** the next pass asks the remote (the first, and the last before `once` ends) */
      let fresh = true;
      try {
        for (;;) {
          let summary: PassSummary;
          try {
            // passes woken by a completion reuse a tip seen within a second
            summary = await pass(fresh ? undefined : { maxAgeMs: RECENT_TIP_MS });
            failedPasses = 0;
            inRow = 0;
          } catch (err) {
            // a brief outage is waited out by the retry rule, a few passes long; past that `once`
            // gives up (the CLI exits 3) instead of waiting forever. Refusals (429) are Nomad
            // answering: waited out as the retry table says, its own attempts' requests among them
            const cls = failureClassOf(err);
            const retry = cls === "rate_limited" || ++failedPasses <= ONCE_PASS_RETRIES ? nextRetry(cls, { attempt: 1, failures: ++inRow }, now()) : undefined;
            if (!retry) throw err;
            log.warn({ err, retry_in_ms: retry.getTime() - now().getTime() }, "pass failed; trying again");
            await deps.clock.sleep(retry.getTime() - now().getTime());
            continue;
          }
          passes++;
          const due = dueOf(summary);
          if (inFlight.size === 0 && !Number.isFinite(due)) {
            // nothing left: done, once a pass that asked the remote found nothing new either
            if (fresh) break;
            fresh = true;
            continue;
          }
          fresh = false;
          await untilWork(due);
        }
        await flushing;
        await flushAndMark();
        await shared?.settle();
        return { passes };
      } finally {
        stopBeat();
      }
    },
    /** Polls until `signal`; then stops claiming, leaves running jobs for re-attachment, pushes what it holds. */
    async run(signal: AbortSignal, pollMs: number): Promise<void> {
      const stopBeat = startHeartbeat();
      let pollAt = now().getTime();
      while (!signal.aborted) {
        // the poll asks the remote, a push webhook names the new tip; a pass woken by a child's end
        // takes the tip the last of them (or our own push) left: a commit is seen at the poll or its
        // webhook, however busy the dispatcher is, and a busy one asks the remote no more often
        const polled = now().getTime() >= pollAt;
        const pushed = wakeUp.signal.aborted;
        const hint: SyncHint | undefined = polled ? undefined : pushed ? (pushedTip === undefined ? undefined : { pushed: pushedTip }) : { maxAgeMs: pollMs };
        // the poll stays due until a pass asks the remote: a webhook naming our own push asks nothing
        if (hint === undefined) pollAt = now().getTime() + pollMs;
        if (pushed) [wakeUp, pushedTip] = [new AbortController(), undefined];
        try {
          const summary = await pass(hint);
          await untilWork(Math.min(pollAt, dueOf(summary)), signal, wakeUp.signal);
        } catch (err) {
          log.error({ err }, "pass failed; backing off until the next poll");
          await deps.clock.sleep(Math.max(0, pollAt - now().getTime()), AbortSignal.any([signal, wakeUp.signal])).catch(() => undefined);
        }
      }
      controller.abort(new Error("dispatcher stopping"));
      await beat(true).catch((err: unknown) => log.warn({ err }, "heartbeat failed"));
      await Promise.all([...inFlight.values()].map((f) => f.done));
      await flushing;
      await flushSafely();
      await shared?.settle();
      stopBeat();
    },
    inFlightIds: () => [...inFlight.keys()],
    /**
     * starts the next pass of \`run\` now (several calls before it starts make one pass); `tip`:
     * the commit the push webhook named, kept only when every call before the pass named it
     */
    wake: (tip?: string) => {
      pushedTip = wakeUp.signal.aborted && pushedTip !== tip ? undefined : tip;
      wakeUp.abort();
    },
    events,
  };
}

export type Loop = ReturnType<typeof createLoop>;

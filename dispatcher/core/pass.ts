// One pass: read the pending actions at the remote's tip, refuse the bad ones, decide with the
// pure modules (catalog, approval, takeover, schedule, limits) which start, and start them
// (attempts.ts). A pass keeps what lets the next one read less: the actions directory as it saw
// it, its last full read (catalog and timed waits), a tip with nothing pending, the ids known to
// have a ledger entry.
import { createActionsIndex, readActions, takeIgnoredChange } from "./repo-read.js";
import type { ParsedAction } from "../actions/schema.js";
import { Deferred, failureClassOf } from "../errors.js";
import { buildCatalog, catalogNeeds, refusalOf, waitsForVault, type Catalog } from "./catalog.js";
import { approvalRefusal, type ApprovalRule, type ApprovalVerdict } from "./approval.js";
import { readRuleApproval, type ForgeApprovalRule } from "./forge-approval.js";
import { decideTakeover } from "./takeover.js";
import { finishedJobProblem, storedResultProblem, type Fence } from "./verify.js";
import type { LoopEmitter } from "./events.js";
import { planDispatches, serializationKey, type Candidate, type Plan, type Wait } from "./schedule.js";
import type { LedgerEntry, SyncHint } from "./ports.js";
import { buildRefusal, type ActionResult, type ResultBase } from "./result.js";
import { childRunMs, type Attempts } from "./attempts.js";
import type { Flusher } from "./flush.js";
import type { Heartbeat } from "./heartbeat.js";
import type { Purging } from "./purging.js";
import type { SharedLimits } from "./limits.js";
import type { Waits } from "./waits.js";
import type { LoopDeps } from "./loop.js";

export interface PassSummary {
  commit: string;
  started: string[];
  reattached: string[];
  refused: string[];
  waiting: Wait[];
  inFlight: number;
  /** pending action files this pass left unread (a pass reads at most READS_PER_PASS) or could not judge within its budget of signature checks: the next pass comes at once */
  deferred?: number;
}

export interface PassDeps extends Pick<LoopDeps, "nomad" | "vault" | "repo" | "ledger" | "clock" | "log" | "forgeGate" | "settings"> {
  events: LoopEmitter;
  fence: Fence;
  attempts: Pick<Attempts, "start" | "reattach" | "pushFromLedger" | "seen" | "has" | "size" | "holding" | "notBefore">;
  flusher: Pick<Flusher, "add" | "holds" | "schedule">;
  heartbeat: Pick<Heartbeat, "beat">;
  purging: Pick<Purging, "due">;
  waits: Pick<Waits, "passBegins">;
  shared?: Pick<SharedLimits, "admit">;
}

/** a pending action a pass decided may start, and at which commit */
type ReadyCandidate = Candidate & { entry?: LedgerEntry; at?: string };

/** how long the passes after a full read may lean on it (its catalog: host volumes, Vault's policies) */
const FULL_SCAN_MS = 10_000;

/** a wait without its own end (Vault, a result not yet at the tip) is looked at again after this */
const RECHECK_MS = 1000;

export function createPass(d: PassDeps) {
  const deps = d;
  const s = d.settings;
  const me = s.dispatcher.instance;
  const { log, events, attempts, flusher, fence } = d;
  const writer = flusher;
  /** the actions directory as the last pass saw it: the next applies only what changed */
  const actionsIndex = createActionsIndex({ readsPerPass: s.readsPerPass });
  /**
   * The last pass that read every pending action, its catalog and the timed waits it found. A pass
   * at the same commit, within FULL_SCAN_MS and before any of those waits is due, reads only as
   * far as the free places reach: a backlog of n was otherwise read n times over, one pass per
   * completion.
   */
  let scan: { commit: string; at: number; catalog: Catalog; timed: Wait[] } | undefined;
  /** a tip at which nothing was pending: the same tip again means a pass has nothing to do */
  let quietAt: string | undefined;
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
  const now = () => d.clock.now();

  function baseOf(id: string, sha: string, commit: string, attempt: number, approvedBy?: string[]): ResultBase {
    return { id, actionSha: sha, commit, attempts: attempt, dispatcher: s.dispatcher, ...(approvedBy ? { approvedBy } : {}) };
  }

  /**
   * Candidates the passes since the last full read decided and left waiting only for a place
   * (max_in_flight, a serialization key), in the order read: a freed place starts the next of
   * them at once (startFreed) from these decisions, at the commit they were decided at, instead
   * of waiting for the next pass. Valid while that full read is (same scan, its timed waits not
   * due) and no pass has failed since.
   */
  let ready: { scanAt: number; commit: string; byId: Map<string, ReadyCandidate> } | undefined;
  /** the tip the last pass synced to (moved on by our own pushes): ready holds only at it */
  let tipSeen: string | undefined;
  /** a pass, or a fast start waiting for shared places: the other waits for it (one start per action) */
  let deciding: Promise<unknown> | undefined;

  /** the last pass's points from its start: the tip known, the actions directory read (pass:done; bench/timeline.ts) */
  let phases: { syncedMs?: number; readMs?: number } = {};

  /** verdicts by commit and action blob: the signatures of a commit's history never change */
  const verdicts = new Map<string, ApprovalVerdict>();

  async function approvalFor(rule: ApprovalRule | ForgeApprovalRule, commit: string, file: { path: string; sha: string }, action: ParsedAction & { ok: true }): Promise<ApprovalVerdict> {
    const key = `${commit}\0${file.path}\0${file.sha}`;
    let verdict = verdicts.get(key);
    if (!verdict) {
      verdict = await readRuleApproval(rule, { repo: deps.repo, ...(deps.forgeGate ? { gate: deps.forgeGate } : {}) }, commit, file, action.action);
      if (verdicts.size > 10_000) verdicts.clear();
      verdicts.set(key, verdict);
    }
    return verdict;
  }

  /** Read pending actions at the remote's tip, refuse the bad ones, claim and start what the plan allows. */
  async function readAndStart(tip?: SyncHint): Promise<PassSummary> {
    const t0 = now().getTime();
    phases = {};
    d.waits.passBegins();
    await d.heartbeat.beat();
    await d.purging.due();
    const commit = await deps.repo.sync(tip);
    tipSeen = commit;
    const summary: PassSummary = { commit, started: [], reattached: [], refused: [], waiting: [], inFlight: attempts.size() };
    phases.syncedMs = now().getTime() - t0;
    if (commit === quietAt) return summary;
    const all = await readActions(deps.repo, commit, s.actionsDir, actionsIndex);
    phases.readMs = now().getTime() - t0;
    reportIgnored();
    if (actionsIndex.deferred > 0) summary.deferred = actionsIndex.deferred;
    const at = now(); // one instant for the whole pass: thousands may be pending
    const last = scan?.commit === commit && at.getTime() - scan.at < FULL_SCAN_MS && scan.timed.every((w) => w.until !== undefined && w.until > at) ? scan : undefined;
    let catalog: Catalog;
    if (last) catalog = last.catalog;
    else {
      const pending = all.filter((p) => !writer.holds(p.file.id) && !attempts.has(p.file.id));
      if (pending.length === 0) {
        if (!summary.deferred) quietAt = commit;
        return summary;
      }
      catalog = await buildCatalog(deps, commit, s, catalogNeeds(pending));
    }
    const seen = new Map<string, Date | undefined>();
    /** `at`: the commit the attempt runs at (a resumed claim may keep its own: resumeAt) */
    const candidates: ReadyCandidate[] = [];

    /** An entry that does not hold up: the action runs as its next attempt (a new idempotency key), at the approved commit. */
    function afresh(p: ParsedAction & { ok: true }, approvedBy: string[] | undefined, entry: LedgerEntry, problem: string): void {
      log.error({ action: entry.id, owner: entry.owner, problem }, "ledger entry does not hold up: running the action afresh at the approved commit");
      attempts.seen(p.action.id, now().getTime());
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
        writer.add(buildRefusal(baseOf(p.file.id, p.file.sha, commit, 1), now(), refusal.class, refusal.message), "");
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
      const retry = attempts.notBefore.get(p.action.id);
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
        attempts.reattach({ file: p.file, action: p.action, approvedBy }, d.entry);
        summary.reattached.push(p.action.id);
      } else {
        attempts.seen(p.action.id, at.getTime());
        candidates.push({ file: p.file, action: p.action, approvedBy, entry: d.kind === "resume" ? d.entry : undefined, at: d.kind === "resume" ? await resumeAt(p, d.entry, commit) : commit });
      }
    }

    /** consider(), failing only on an engine's outage: a check that throws on one action's input skips that one */
    async function considerAlone(p: ParsedAction): Promise<void> {
      try {
        await consider(p);
      } catch (err) {
        if (err instanceof Deferred) {
          // a per-pass budget is spent (commit signatures): the next pass comes at once and goes on
          summary.waiting.push({ id: p.file.id, kind: "budget", reason: err.message });
          summary.deferred = (summary.deferred ?? 0) + 1;
          return;
        }
        const cls = failureClassOf(err);
        if (cls === "infra" || cls === "rate_limited" || cls === "auth") throw err;
        events.emit("action:skipped", { id: p.file.id, class: cls, err });
      }
    }

    // an attempt whose child has ended holds no place under max_in_flight or its serialization key
    const inFlightView = attempts.holding();
    const free = s.limits.maxInFlight - inFlightView.size;
    // after a full read, a pass reads only until its candidates fill the free places, reading
    // further while the plan leaves places free (a backoff, a serialization key)
    let want = free;
    let i = 0;
    let plan: Plan<(typeof candidates)[number]>;
    for (;;) {
      for (; i < all.length && !(last && candidates.length >= want); i++) {
        const p = all[i]!;
        if (!writer.holds(p.file.id) && !attempts.has(p.file.id)) await considerAlone(p);
      }
      plan = planDispatches(candidates, { inFlight: inFlightView, notBefore: attempts.notBefore }, s.limits, at);
      if (!last || i >= all.length || plan.dispatch.length >= free) break;
      want += free - plan.dispatch.length;
    }
    // the limits replicas share: a key's lock and a slot each, or a wait naming who holds them
    const admitted = d.shared ? await d.shared.admit(plan.dispatch, (c) => serializationKey(c.action, s.limits.serializeBy), at, (c) => childRunMs(c.action, s)) : { start: plan.dispatch, waiting: [] };
    for (const c of admitted.start) attempts.start(c, c.at ?? commit, c.entry);
    summary.started = admitted.start.map((c) => c.action.id);
    summary.waiting.push(...plan.waiting, ...admitted.waiting);
    if (last) summary.waiting.push(...last.timed);
    else scan = { commit, at: at.getTime(), catalog, timed: summary.waiting.filter((w) => w.kind !== "limit") };
    // files read by the next pass need a catalog of their own
    if (summary.deferred) scan = undefined;
    keepReady(commit, candidates, new Set(plan.waiting.filter((w) => w.kind === "limit").map((w) => w.id)));
    summary.inFlight = attempts.size();
    return summary;
  }

  /**
   * What this pass decided and held back only for a place (max_in_flight, a serialization key)
   * joins the candidates a freed place starts (startFreed); what it started, or holds back for
   * anything else (a backoff: its next attempt is read from the ledger by a pass), leaves them.
   */
  function keepReady(commit: string, considered: ReadyCandidate[], placeOnly: Set<string>): void {
    if (!scan) return void (ready = undefined);
    if (ready?.scanAt !== scan.at) ready = { scanAt: scan.at, commit, byId: new Map() };
    ready.commit = commit;
    for (const c of considered) {
      if (placeOnly.has(c.action.id)) ready.byId.set(c.action.id, { ...c, at: c.at ?? commit });
      else ready.byId.delete(c.action.id);
    }
  }

  /** The candidates a freed place may start now: the full read they were decided on still holds (as a pass would lean on it). */
  function readyNow(at: Date): ReadyCandidate[] {
    if (!ready || !scan || ready.scanAt !== scan.at || ready.commit !== tipSeen || scan.commit !== tipSeen || at.getTime() - scan.at >= FULL_SCAN_MS || !scan.timed.every((w) => w.until !== undefined && w.until > at)) return [];
    for (const [id] of ready.byId) if (writer.holds(id) || attempts.has(id)) ready.byId.delete(id);
    return [...ready.byId.values()];
  }

  /** Starts what the plan allows of `ready` now; with shared limits, once their places are taken (the pass waits for it). */
  function startReady(at: Date): void {
    const candidates = readyNow(at);
    if (candidates.length === 0) return;
    const plan = planDispatches(candidates, { inFlight: attempts.holding(), notBefore: attempts.notBefore }, s.limits, at);
    if (plan.dispatch.length === 0) return;
    const start = (list: ReadyCandidate[]) => {
      for (const c of list) {
        ready?.byId.delete(c.action.id);
        attempts.start(c, c.at!, c.entry);
      }
      if (list.length > 0) events.emit("pass:freed-start", { ids: list.map((c) => c.action.id) });
    };
    if (!d.shared) return start(plan.dispatch);
    const admitting = d.shared
      .admit(plan.dispatch, (c) => serializationKey(c.action, s.limits.serializeBy), at, (c) => childRunMs(c.action, s))
      .then((admitted) => start(admitted.start.filter((c) => !attempts.has(c.action.id))))
      .catch((err: unknown) => log.warn({ err }, "could not take shared places for a freed place's next action; the next pass tries again"))
      .finally(() => {
        if (deciding === admitting) deciding = undefined;
      });
    deciding = admitting;
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
    attempts.pushFromLedger(entry, result).catch((err: unknown) => log.error({ err, action: entry.id }, "could not queue a result left in the ledger"));
    log.info({ action: entry.id, owner: entry.owner }, "pushing a result left in the ledger");
  }

  return {
    /**
     * One pass, reported as pass:done or pass:failed. `tip`: what is known of the remote's tip
     * (confirmed recently between completions, or named by a push webhook).
     */
    async pass(tip?: SyncHint): Promise<PassSummary> {
      // a fast start taking shared places decides with what it read: never two starts of one action
      while (deciding) await deciding.catch(() => undefined);
      const t0 = now().getTime();
      const checked = deps.repo.signatureChecks?.() ?? 0;
      const reading = readAndStart(tip);
      deciding = reading;
      try {
        const summary = await reading;
        // every pass that reached the remote pushes what is waiting: refusals it queued, and results
        // a failed push kept (a quiet tip too: nothing new is pending there, the kept ones are held)
        flusher.schedule();
        const signaturesChecked = (deps.repo.signatureChecks?.() ?? 0) - checked;
        events.emit("pass:done", { durationMs: now().getTime() - t0, commit: summary.commit, started: summary.started.length, refused: summary.refused.length, waiting: summary.waiting.length, ...(signaturesChecked > 0 ? { signaturesChecked } : {}), ...phases });
        return summary;
      } catch (err) {
        // the loop waits a failed pass out until its poll: so does a freed place
        ready = undefined;
        events.emit("pass:failed", { durationMs: now().getTime() - t0, class: failureClassOf(err), err });
        throw err;
      } finally {
        if (deciding === reading) deciding = undefined;
      }
    },
    /**
     * A place has freed (a child ended): the next action the passes decided starts now, without
     * a pass of its own (no sync, no read), when the full read it was decided on still holds, no
     * pass is deciding, and `current` says the loop's next pass would take the same tip (no
     * webhook or poll asks for a newer one). The pass that follows sees it in flight.
     */
    startFreed(current: boolean): void {
      if (!current || deciding) return;
      startReady(now());
    },
    /** When a pass's timed waits (a backoff, another owner's lease, Vault) are due; never without one. */
    dueOf(summary: PassSummary): number {
      if (summary.deferred) return now().getTime();
      const timed = summary.waiting.filter((w) => w.kind !== "limit");
      return Math.min(...timed.map((w) => w.until?.getTime() ?? now().getTime() + RECHECK_MS));
    },
    /**
     * Our push made `commit` on `base`, writing only results of actions this process holds: what
     * the pass knew of `base` (its last full read, a quiet tip) holds at `commit` too. Otherwise
     * every push of ours would make the next pass read every pending action again.
     */
    ownCommit(base: string, commit: string): void {
      if (scan?.commit === base) scan = { ...scan, commit };
      if (quietAt === base) quietAt = commit;
      if (ready?.commit === base) ready.commit = commit;
      if (tipSeen === base) tipSeen = commit;
    },
    /**
     * The attempt of `id` is over: without a result (a retry, a lost claim) it is pending again
     * at this tip, and the ledger has an entry for it (its own, or another instance's): read it next pass.
     */
    attemptOver(id: string): void {
      quietAt = undefined;
      if (!writer.holds(id)) known.add(id);
    },
  };
}

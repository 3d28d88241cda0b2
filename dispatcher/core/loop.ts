// The dispatch loop: wires the pass (pass.ts: read → refuse or plan → start), the attempts in
// flight (attempts.ts), the result pushes (flush.ts), the heartbeat and the ledger's retention
// (heartbeat.ts), the purges (purging.ts), the waits between passes (waits.ts) and shutdown
// (shutdown.ts), and drives them: `once` until nothing is left, `run` until a signal.
import { failureClassOf, nextRetry } from "../errors.js";
import type { Logger } from "../log.js";
import type { CatalogSettings } from "./catalog.js";
import type { ExecuteDeps } from "./execute.js";
import type { ApprovalRule } from "./approval.js";
import type { ForgeApprovalRule } from "./forge-approval.js";
import { parentJobsOf } from "./request.js";
import { createLoopEmitter, type LoopEmitter } from "./events.js";
import type { Limits } from "./schedule.js";
import type { Clock, FactoryPort, ForgeGatePort, LedgerPort, NomadPort, OpsRepoPort, PlacesPort, SyncHint, VaultPort } from "./ports.js";
import { createSharedLimits } from "./limits.js";
import { createAttempts } from "./attempts.js";
import { createFlusher } from "./flush.js";
import { createHeartbeat } from "./heartbeat.js";
import { createPass, type PassSummary } from "./pass.js";
import { createPurging } from "./purging.js";
import { drain, finish } from "./shutdown.js";
import { createWaits } from "./waits.js";
import type { ActionResult } from "./result.js";

export type { PassSummary } from "./pass.js";

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

/**
 * How old a confirmed remote tip may be for the passes `once` makes between completions (our own
 * pushes confirm it too). Each ask is a git process: at 1 s, a 50-action `once` asked at almost
 * every pass (0.6 s of its 6.5 s of node CPU). `once` still ends only after a pass that asked.
 */
const RECENT_TIP_MS = 10_000;

/** failed passes in a row that `once` waits out before it gives up (refusals, HTTP 429, aside) */
const ONCE_PASS_RETRIES = 5;

/** The dispatch loop over the ports. */
export function createLoop(deps: LoopDeps) {
  const s = deps.settings;
  const me = s.dispatcher.instance;
  const log = deps.log;
  const events = deps.events ?? createLoopEmitter();
  const controller = new AbortController();
  const now = () => deps.clock.now();
  const shared =
    deps.places &&
    createSharedLimits({ places: deps.places, ledger: deps.ledger, clock: deps.clock, events, instance: me, session: `${process.pid}-${now().getTime().toString(36)}`, maxInFlight: s.limits.maxInFlight, leaseMs: s.leaseMs });
  const fence = { parents: new Set([...parentJobsOf(s.runnerJob, s.classes, s.mountSets), ...parentJobsOf(s.sidecarJob, s.classes, s.mountSets)]), namespace: s.namespace };
  const waits = createWaits(deps.clock);
  const flusher = createFlusher({ ...deps, events, onCommit: (base, commit) => passing.ownCommit(base, commit) });
  const purging = createPurging({ ...deps, events, me, purgeAfterMs: s.purgeAfterMs, ledgerRetentionMs: s.ledgerRetentionMs });
  const heartbeat = createHeartbeat({
    ...deps,
    ...s,
    events,
    me,
    version: s.dispatcher.version,
    removeExpired: purging.removeExpired,
    status: () => ({ inFlight: attempts.size(), draining: controller.signal.aborted }),
  });
  const attempts = createAttempts({
    ...deps,
    events,
    fence,
    signal: controller.signal,
    flusher,
    purging,
    shared,
    // a freed place starts the next decided action at once; the pass it wakes sees it in flight
    onEnd: () => {
      waits.noteEnd();
      queueMicrotask(() => passing.startFreed(!controller.signal.aborted && tipCurrent()));
    },
    onOver: (id) => passing.attemptOver(id),
  });
  const passing = createPass({ ...deps, events, fence, attempts, flusher, heartbeat, purging, waits, shared });
  const pass = passing.pass;
  /**
   * The next pass would take the tip the last one did: `run` while no webhook is pending and its
   * poll is not due. `once` (a scheduled job, whose passes already lean on a recent tip) starts
   * only from its passes.
   */
  let tipCurrent = () => false;
  /** aborted to cut the poll interval short (a push webhook) */
  let wakeUp = new AbortController();
  /** the tip the pending wake's webhook named */
  let pushedTip: string | undefined;

  return {
    pass,
    /**
     * Passes until nothing is pending or in flight, then pushes. Rejects when a result could not
     * be recorded (the CLI turns that into a non-zero exit).
     */
    async once(): Promise<{ passes: number }> {
      const stopBeat = heartbeat.start();
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
          const due = passing.dueOf(summary);
          if (attempts.size() === 0 && !Number.isFinite(due)) {
            // nothing left: done, once a pass that asked the remote found nothing new either
            if (fresh) break;
            fresh = true;
            continue;
          }
          fresh = false;
          await waits.until(due);
        }
        await finish({ flusher, shared });
        return { passes };
      } finally {
        stopBeat();
      }
    },
    /** Polls until `signal`; then stops claiming, leaves running jobs for re-attachment, pushes what it holds. */
    async run(signal: AbortSignal, pollMs: number): Promise<void> {
      const stopBeat = heartbeat.start();
      let pollAt = now().getTime();
      tipCurrent = () => !signal.aborted && !wakeUp.signal.aborted && now().getTime() < pollAt;
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
          await waits.until(Math.min(pollAt, passing.dueOf(summary)), signal, wakeUp.signal);
        } catch (err) {
          log.error({ err }, "pass failed; backing off until the next poll");
          await deps.clock.sleep(Math.max(0, pollAt - now().getTime()), AbortSignal.any([signal, wakeUp.signal])).catch(() => undefined);
        }
      }
      await drain({ controller, heartbeat, attempts, flusher, shared, log });
      stopBeat();
    },
    inFlightIds: attempts.ids,
    /** a result made beside the loop (an issue run's, core/issue-loop.ts) joins the next push, in its own folder */
    queueResult(result: ActionResult, fullLog: string, dir: string): void {
      flusher.queue(result, fullLog, undefined, dir);
    },
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

import { AllocationLost, TimeoutExceeded, failureClassOf, retryTable, type FailureClass } from "../errors.js";
import type { Logger } from "../log.js";
import { RUNNER_TASK, decodePayload, looksLikeRunnerVerdict, parseRunnerError, stripVerdictNonce } from "../contract.js";
import type { PinFile } from "./pins.js";
import type { AllocationState, Clock, JobPlacement, NomadPort, VaultPort } from "./ports.js";
import type { RequestSettings } from "./request.js";
import { statusOf, type RunOutcome } from "./result.js";
import { isTerminal, latestAllocation } from "./status.js";
import type { LoopEmitter } from "./events.js";
import { WATCH_MS, watchPlacements } from "./watch.js";

export interface ExecuteDeps {
  nomad: NomadPort;
  vault: VaultPort;
  clock: Clock;
  log: Logger;
  /** token and job transitions are reported here (metrics hang on them) */
  events?: LoopEmitter;
  settings: RequestSettings & {
    actionsDir: string;
    placementSeconds: number;
    /** a child with neither evaluation nor allocation this long is evaluated again, once (0: never) */
    reevaluateSeconds: number;
    /** a task log is read up to its last this many bytes */
    maxLogBytes: number;
    /** the runner/sidecar parents as pinned after registration */
    pins?: PinFile;
  };
}

export interface ExecutionReport {
  outcome: RunOutcome;
  stdout: string;
  stderr: string;
}


/**
 * The runner enforces the action's deadline itself (it kills the formula and exits with its
 * timeout code). The dispatcher's own stop is a backup this much later, and only where its
 * Nomad policy allows stopping (submit-job, not granted by acl/dispatcher.hcl).
 */
export const BACKUP_STOP_GRACE_MS = 60_000;

export interface Follow {
  actionId: string;
  attempt: number;
  jobId: string;
  timeoutMinutes: number;
  /** deadlines count from here (the dispatch, possibly by a predecessor) */
  since: Date;
  policies: string[];
  accessor?: string;
}

/**
 * Tracks the job to a terminal state or a deadline. When `signal` aborts (shutdown), the job is
 * left running and the token alive for whoever re-attaches; so is it when following fails with a
 * class that is retried (Nomad without a leader during an election answers HTTP 500): the retry
 * re-attaches to the same child, which still needs its token. A final failure revokes it.
 */
export async function trackChild(f: Follow, deps: ExecuteDeps, signal?: AbortSignal): Promise<Tracked> {
  const log = deps.log.child({ job_id: f.jobId });
  try {
    return await trackJob(f, deps, log, signal);
  } catch (err) {
    if (signal?.aborted !== true && retryTable[failureClassOf(err)].retries === 0) await revokeToken(f, deps, log);
    throw err;
  }
}

/** Collects the ended child's output, then revokes its token. */
export async function collectChild(f: Follow, run: Tracked, deps: ExecuteDeps): Promise<ExecutionReport> {
  const log = deps.log.child({ job_id: f.jobId });
  try {
    return await collect(f, run, deps, log);
  } finally {
    await revokeToken(f, deps, log);
  }
}

async function revokeToken(f: Follow, deps: ExecuteDeps, log: Logger): Promise<void> {
  if (!f.accessor) return;
  await deps.vault.revokeAccessor(f.accessor, f.actionId).then(() => deps.events?.emit("token:revoked", { id: f.actionId }), (err: unknown) => {
    deps.events?.emit("token:failed", { id: f.actionId, op: "revoke", class: failureClassOf(err), err });
    if (failureClassOf(err) === "tampered") log.error({ err }, "the ledger's token accessor is not this action's runner token: left alone");
    else log.warn({ err }, "could not revoke runner token; it expires with its TTL");
  });
}

/** How tracking ended: collectChild reads the output of either. */
export type Tracked =
  | { kind: "done"; alloc: AllocationState }
  | { kind: "failed"; alloc?: AllocationState; class: FailureClass; message: string };

/** Blocking queries on the job's allocations until one is terminal or a deadline passes. */
async function trackJob(f: Follow, deps: ExecuteDeps, log: Logger, signal?: AbortSignal): Promise<Tracked> {
  const { jobId, timeoutMinutes } = f;
  const start = f.since.getTime();
  const placementDeadline = start + deps.settings.placementSeconds * 1000;
  const runDeadline = start + timeoutMinutes * 60_000 + BACKUP_STOP_GRACE_MS;
  const reevaluateAt = deps.settings.reevaluateSeconds > 0 ? start + deps.settings.reevaluateSeconds * 1000 : Number.POSITIVE_INFINITY;
  let reevaluated = false;
  let started = false;
  let waitMs = WATCH_MS;
  const watch = watchPlacements(deps.nomad, jobId, () => waitMs, signal);
  let last: AllocationState | undefined;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    const now = deps.clock.now().getTime();
    const alloc = latestAllocation(last ? [last] : []);
    if (now >= runDeadline) {
      await stopSafely(deps, jobId, log);
      const err = new TimeoutExceeded(`job ${jobId} ran past its timeout of ${timeoutMinutes} min and was stopped`);
      return { kind: "failed", alloc, class: err.class, message: err.message };
    }
    waitMs = Math.max(1000, Math.min(WATCH_MS, runDeadline - now));
    const placement = (await watch.next()).value as JobPlacement;
    last = latestAllocation(placement.allocations) ?? last;
    // a short task may be seen first when it has already ended: its start time still counts
    if (!started && last && (last.clientStatus === "running" || last.startedAt)) {
      started = true;
      const at = last.startedAt ? Date.parse(last.startedAt) : deps.clock.now().getTime();
      deps.events?.emit("action:started", { id: f.actionId, attempt: f.attempt, jobId, allocId: last.id, node: last.node, sinceDispatchMs: Math.max(0, at - start) });
    }
    if (!last && placement.gone) {
      const err = new AllocationLost(`job ${jobId} no longer exists in Nomad (purged or garbage-collected) and never showed an allocation`);
      return { kind: "failed", class: err.class, message: err.message };
    }
    if (last && isTerminal(last)) {
      if (last.clientStatus === "lost") {
        const err = new AllocationLost(`allocation ${last.id} was lost on node ${last.node}`);
        return { kind: "failed", alloc: last, class: err.class, message: err.message };
      }
      return { kind: "done", alloc: last };
    }
    const running = last?.clientStatus === "running" || last?.startedAt;
    if (!last && placement.evaluations === 0 && !reevaluated && deps.clock.now().getTime() >= reevaluateAt) {
      // the job was written but its evaluation never was (nomad#26655): ask once more
      reevaluated = true;
      await reevaluate(deps, f, log);
      continue;
    }
    if (!running && deps.clock.now().getTime() >= placementDeadline) {
      await stopSafely(deps, jobId, log);
      const why = placement.blockedReason ?? last?.failureMessage ?? "no allocation started";
      const err = new AllocationLost(`job ${jobId} did not start within ${deps.settings.placementSeconds}s: ${why}`);
      return { kind: "failed", alloc: last, class: err.class, message: err.message };
    }
    if (last && last.id !== alloc?.id) log.info({ alloc_id: last.id, node: last.node }, "allocation placed");
  }
}

async function reevaluate(deps: ExecuteDeps, f: Follow, log: Logger): Promise<void> {
  try {
    await deps.nomad.evaluateJob(f.jobId);
    deps.events?.emit("job:reevaluated", { id: f.actionId, jobId: f.jobId });
  } catch (err) {
    log.warn({ err, job_id: f.jobId }, "the job has no evaluation and could not be evaluated again (needs submit-job: acl/dispatcher-janitor.hcl); it ends lost at the placement deadline");
  }
}

/** A refused stop (no submit-job) is logged: the runner's own deadline and the token's TTL still bound the job. */
async function stopSafely(deps: ExecuteDeps, jobId: string, log: Logger): Promise<void> {
  try {
    await deps.nomad.stopJob(jobId);
  } catch (err) {
    log.warn({ err, job_id: jobId }, "could not stop the job (the dispatcher's Nomad policy has no submit-job); the runner's own deadline ends it");
  }
}

async function collect(f: Follow, run: Tracked, deps: ExecuteDeps, log: Logger): Promise<ExecutionReport> {
  const alloc = run.alloc;
  const [stdout, stderrRaw] = alloc ? await Promise.all([readLogSafe(deps, alloc.id, RUNNER_TASK, "stdout", log), readLogSafe(deps, alloc.id, RUNNER_TASK, "stderr", log)]) : ["", ""];
  const base = {
    jobId: f.jobId,
    allocId: alloc?.id,
    node: alloc?.node,
    startedAt: alloc?.startedAt,
    finishedAt: alloc?.finishedAt,
    policies: f.policies,
    tokenAccessor: f.accessor,
  };
  let stderr = stderrRaw;
  if (run.kind === "failed") {
    return { outcome: { ...base, exitCode: alloc?.exitCode, status: runStatusOf(run.class), error: { class: run.class, message: run.message } }, stdout, stderr };
  }
  const code = run.alloc.exitCode;
  if (code === 0) return { outcome: { ...base, exitCode: 0, status: "succeeded" }, stdout, stderr };
  const verdict = code === undefined ? undefined : await runnerVerdict(f, code, stderr, deps, log);
  const own = verdict?.own;
  // the log shows the runner's line without its nonce (a line the formula forged stays as printed)
  if (verdict?.own) stderr = stripVerdictNonce(stderr, verdict.nonce);
  const error = own ?? {
    class: (code === undefined ? "infra" : "agent") as FailureClass,
    message: code === undefined ? `task did not run: ${run.alloc.failureMessage ?? "no exit code"}` : `formula exited with code ${code}`,
  };
  log.info({ alloc_id: run.alloc.id, exit_code: code, class: error.class }, "allocation finished");
  // the runner enforces the deadline itself: its timeout is the action's timeout
  return { outcome: { ...base, exitCode: code, status: runStatusOf(error.class), error }, stdout, stderr };
}

/**
 * The runner's own failure, when stderr ends in a verdict signed with the nonce this child's
 * payload carries (read from Nomad only then: the formula never saw it). Anything else is the
 * formula's exit code, whatever it printed.
 */
async function runnerVerdict(f: Follow, code: number, stderr: string, deps: ExecuteDeps, log: Logger): Promise<{ own?: { class: FailureClass; message: string }; nonce: string } | undefined> {
  if (!looksLikeRunnerVerdict(code, stderr)) return undefined;
  let nonce: string | undefined;
  try {
    nonce = decodePayload((await deps.nomad.childJob(f.jobId))?.payload).nonce;
  } catch (err) {
    log.warn({ err }, "could not read the child's payload: its runner verdict is not believed");
  }
  const own = parseRunnerError(code, stderr, nonce);
  if (!own) log.warn({ exit_code: code }, "the task's stderr ends in a runner verdict that does not carry this child's nonce: recorded as the formula's own exit");
  return nonce ? { own, nonce } : undefined;
}

/** A job that ran records what its class says; a refusal status cannot come out of a run. */
function runStatusOf(cls: FailureClass): RunOutcome["status"] {
  const status = statusOf(cls);
  return status === "invalid" || status === "rejected" ? "failed" : status;
}

async function readLogSafe(deps: ExecuteDeps, allocId: string, task: string, type: "stdout" | "stderr", log: Logger): Promise<string> {
  try {
    return await deps.nomad.readLog(allocId, task, type, deps.settings.maxLogBytes);
  } catch (err) {
    log.warn({ err, alloc_id: allocId, type }, "could not read task log");
    return "";
  }
}


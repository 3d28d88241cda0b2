import { checkAction, formatProblems, unknownSecretProblems } from "../actions/check.js";
import { readActions, readFormulas, type BlobCache } from "../actions/read.js";
import type { ActionCatalog, ParsedAction } from "../actions/schema.js";
import { MOUNTS } from "../actions/schema.js";
import { backoffFor, failureClassOf, type FailureClass } from "../errors.js";
import type { Logger } from "../log.js";
import { executeAction, policiesFor, policyFor, type ExecuteDeps } from "./execute.js";
import { planDispatches, serializationKey, type Candidate, type Limits } from "./plan.js";
import type { Clock, NomadPort, OpsRepoPort, VaultPort } from "./ports.js";
import { tail } from "./redact.js";
import { buildRefusal, buildRunResult, logPath, type ResultBase } from "./result.js";
import { combineLogs, createResultWriter } from "./writer.js";

export interface LoopDeps {
  nomad: NomadPort;
  vault: VaultPort;
  repo: OpsRepoPort;
  clock: Clock;
  log: Logger;
  settings: ExecuteDeps["settings"] & {
    knownSecrets: string[];
    limits: Limits;
    tailBytes: number;
    maxLogBytes: number;
    dispatcher: { version: string; instance: string };
  };
}

export interface PassSummary {
  commit: string;
  started: string[];
  refused: string[];
  waiting: { id: string; reason: string }[];
  inFlight: number;
}

interface Flight {
  key: string;
  done: Promise<void>;
}

/** The dispatch loop over the ports: read → refuse or plan → execute → record. */
export function createLoop(deps: LoopDeps) {
  const s = deps.settings;
  const log = deps.log;
  const writer = createResultWriter(deps.repo, { actionsDir: s.actionsDir, maxLogBytes: s.maxLogBytes, log });
  const inFlight = new Map<string, Flight>();
  const notBefore = new Map<string, Date>();
  const attempts = new Map<string, number>();
  const pendingBlobs: BlobCache = new Map();
  const controller = new AbortController();

  function baseOf(p: { file: { id: string; sha: string } }, commit: string): ResultBase {
    return { id: p.file.id, actionSha: p.file.sha, commit, attempts: attempts.get(p.file.id) ?? 1, dispatcher: s.dispatcher };
  }

  async function buildCatalog(commit: string, needsVault: boolean): Promise<ActionCatalog & { vaultOk: boolean }> {
    const formulas = await readFormulas(deps.repo, commit);
    const volumes = await deps.nomad.hostVolumes();
    const mounts = new Set(MOUNTS.filter((m) => volumes.has(m)));
    let secrets = new Set<string>();
    let vaultOk = true;
    if (needsVault) {
      try {
        const missing = new Set(await deps.vault.missingPolicies(policiesFor(s.knownSecrets)));
        secrets = new Set(s.knownSecrets.filter((n) => !missing.has(policyFor(n))));
      } catch (err) {
        vaultOk = false;
        log.error({ err }, "vault unreachable: actions with secrets wait until it is back");
      }
    }
    return { formulas, mounts, secrets, vaultOk };
  }

  /** One pass: read pending actions at the remote's tip, refuse the bad ones, start what the plan allows. */
  async function pass(): Promise<PassSummary> {
    const commit = await deps.repo.sync();
    // a pass runs after every completion: re-reading every queued and in-flight file each time
    // made a batch cost quadratic in git processes
    const parsed = await readActions(deps.repo, commit, s.actionsDir, { skip: (id) => writer.holds(id) || inFlight.has(id), cache: pendingBlobs });
    const needsVault = parsed.some((p) => p.ok && p.action.secrets.length > 0);
    const catalog = await buildCatalog(commit, needsVault);
    const refused: string[] = [];
    const candidates: Candidate[] = [];
    for (const p of parsed) {
      const refusal = refuse(p, catalog);
      if (refusal) {
        writer.add({ result: buildRefusal(baseOf(p, commit), deps.clock.now(), refusal.status, refusal.class, refusal.message), fullLog: "" });
        log.warn({ action: p.file.id, problem: refusal.message }, "action refused");
        refused.push(p.file.id);
      } else if (p.ok && (catalog.vaultOk || p.action.secrets.length === 0)) {
        candidates.push({ file: p.file, action: p.action });
      }
    }
    const inFlightView = new Map([...inFlight].map(([id, f]) => [id, { key: f.key }]));
    const plan = planDispatches(candidates, { inFlight: inFlightView, notBefore }, s.limits, deps.clock.now());
    for (const c of plan.dispatch) start(c, commit);
    await flushSafely();
    return { commit, started: plan.dispatch.map((c) => c.action.id), refused, waiting: plan.waiting, inFlight: inFlight.size };
  }

  function refuse(p: ParsedAction, catalog: ActionCatalog): { status: "invalid" | "failed"; class: FailureClass; message: string } | undefined {
    if (!p.ok) return { status: "invalid", class: "invalid", message: formatProblems(p.file.path, p.problems) };
    const check = checkAction(p.action, catalog);
    if (check.problems.length > 0) return { status: "invalid", class: "invalid", message: formatProblems(p.file.path, check.problems) };
    if (check.unknownSecrets.length > 0) {
      return { status: "failed", class: "secret_unknown", message: formatProblems(p.file.path, unknownSecretProblems(p.action, catalog)) };
    }
    return undefined;
  }

  function start(c: Candidate, commit: string): void {
    const id = c.action.id;
    const attempt = attempts.get(id) ?? 1;
    attempts.set(id, attempt);
    const actionLog = log.child({ action: id, attempt });
    const done = executeAction({ file: c.file, action: c.action, commit, attempt }, { ...deps, log: actionLog }, controller.signal)
      .then((report) => {
        const { outcome } = report;
        const retry = outcome.status === "lost" ? backoffFor("lost", attempt) : undefined;
        if (retry !== undefined) {
          attempts.set(id, attempt + 1);
          notBefore.set(id, new Date(deps.clock.now().getTime() + retry));
          actionLog.warn({ job_id: outcome.jobId, retry_in_ms: retry }, "allocation lost; retrying");
          return;
        }
        const full = combineLogs(report.stdout, report.stderr, []);
        const tailed = tail(full, s.tailBytes);
        const logFile = tailed.length < full.length ? logPath(s.actionsDir, id) : undefined;
        const result = buildRunResult(baseOf(c, commit), deps.clock.now(), outcome, tailed, logFile);
        writer.add({ result, fullLog: full });
        actionLog.info({ job_id: outcome.jobId, alloc_id: outcome.allocId, status: outcome.status, exit_code: outcome.exitCode }, "action finished");
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        const cls = failureClassOf(err);
        const delay = backoffFor(cls, attempt);
        if (delay !== undefined) {
          // the dispatch never happened: the same attempt (same idempotency token) is tried again
          notBefore.set(id, new Date(deps.clock.now().getTime() + delay));
          actionLog.warn({ err, class: cls, retry_in_ms: delay }, "dispatch failed; will retry");
          return;
        }
        const message = err instanceof Error ? err.message : String(err);
        writer.add({ result: buildRefusal(baseOf(c, commit), deps.clock.now(), "failed", cls, message), fullLog: "" });
        actionLog.error({ err, class: cls }, "action failed before it ran");
      })
      .finally(() => inFlight.delete(id));
    inFlight.set(id, { key: serializationKey(c.action, s.limits.serializeBy), done });
  }

  async function flushSafely(): Promise<void> {
    try {
      const { written } = await writer.flush();
      if (written.length > 0) log.info({ results: written }, "results pushed");
    } catch (err) {
      log.error({ err, waiting: writer.size() }, "could not push results; they are kept and retried on the next pass");
    }
  }

  async function settle(): Promise<void> {
    await Promise.all([...inFlight.values()].map((f) => f.done));
  }

  return {
    pass,
    /**
     * Passes until nothing is pending or in flight, then pushes. Rejects when a result could not
     * be recorded (the CLI turns that into a non-zero exit).
     */
    async once(): Promise<{ passes: number }> {
      let passes = 0;
      for (;;) {
        const summary = await pass();
        passes++;
        if (inFlight.size > 0) {
          await Promise.race([...inFlight.values()].map((f) => f.done));
          continue;
        }
        // nothing in flight: whatever still waits, waits for a retry backoff
        if (summary.waiting.length === 0) break;
        const due = Math.min(...summary.waiting.map((w) => notBefore.get(w.id)?.getTime() ?? 0));
        await deps.clock.sleep(Math.max(100, due - deps.clock.now().getTime()));
      }
      await writer.flush();
      return { passes };
    },
    async run(signal: AbortSignal, pollMs: number): Promise<void> {
      while (!signal.aborted) {
        try {
          await pass();
        } catch (err) {
          log.error({ err }, "pass failed; backing off until the next poll");
        }
        await deps.clock.sleep(pollMs, signal).catch(() => undefined);
      }
      // stop claiming; finish what we hold and record it
      await settle();
      await flushSafely();
    },
    inFlightIds: () => [...inFlight.keys()],
    abort: () => controller.abort(new Error("dispatcher stopping")),
  };
}

export type Loop = ReturnType<typeof createLoop>;

// The interpreter of core/lifecycle.ts for one attempt: it carries out each command through the
// ports and feeds back what happened as the next event. It decides nothing: every "what next" is
// step()'s. Errors become events (failed with the command that failed, conflict, aborted).
import type { Action, ActionFile } from "../actions/schema.js";
import { ParentChanged, Tampered, failureClassOf } from "../errors.js";
import { encodePayload, newVerdictNonce } from "../contract.js";
import type { LoopEmitter } from "./events.js";
import { collectChild, trackChild, type ExecuteDeps, type Follow, type Tracked } from "./execute.js";
import { step, type AttemptCommand, type AttemptEvent, type AttemptState, type FailedOp, type Step } from "./lifecycle.js";
import { childProblem, pinProblem, type ParentSpec } from "./pins.js";
import type { LedgerEntry, LedgerPort, WrappedToken } from "./ports.js";
import { tail } from "./redact.js";
import { buildDispatchSpec, type DispatchSpec, type SidecarIdentity } from "./request.js";
import { buildRunResult, logPath, type ActionResult } from "./result.js";
import { entryProblem, type Fence } from "./verify.js";
import { combineLogs } from "./writer.js";

export interface AttemptDeps extends ExecuteDeps {
  ledger: LedgerPort;
  events: LoopEmitter;
  settings: ExecuteDeps["settings"] & { tailBytes: number };
  /** this instance: every ledger write takes the entry for it */
  me: string;
  fence: Fence;
  /** shutdown: the child is left running for whoever re-attaches */
  signal: AbortSignal;
  /** the result is in the ledger (when the attempt holds an entry): queue it for the push, and call `pushed` once it is at the tip */
  queueResult(result: ActionResult, fullLog: string, pushed: () => Promise<void>): void;
  /** the child of `id` may leave Nomad after the purge retention: its result is at the tip */
  schedulePurge(id: string, jobId: string): void;
  retryAt(at: Date): void;
  /** the child has ended: its place under the limits is free while the result is recorded */
  release(): void;
}

export interface AttemptInput {
  /** the action file and action the attempt runs; absent for a result taken from the ledger (nothing is dispatched) */
  file?: ActionFile;
  action?: Action;
  /** the ledger entry taken over (resume or re-attach); undefined for a fresh claim */
  entry?: LedgerEntry;
  /** a sidecar issue run's bot identity: its policy joins the token, its path goes in the payload */
  identity?: SidecarIdentity;
}

/** Carries out `first` and every step after it until no command has an outcome; returns the last state. */
export async function runAttempt(first: Step, input: AttemptInput, deps: AttemptDeps): Promise<AttemptState> {
  let { state, commands } = first;
  let entry = input.entry;
  let token: WrappedToken | undefined;
  /** how the child ended, kept from follow for collect */
  let tracked: Tracked | undefined;
  /** the parent as Nomad holds it, read while the claim is written (one round trip less per dispatch) */
  let parentRead: Promise<ParentSpec | undefined> | undefined;
  const log = deps.log;
  const now = () => deps.clock.now();
  // built once per commit and attempt: each of claim, check_parent, mint and dispatch needs it (a hash and the meta each time)
  let built: { key: string; spec: DispatchSpec } | undefined;
  const spec = () => {
    const key = `${state.commit} ${state.attempt}`;
    if (built?.key !== key) built = { key, spec: buildDispatchSpec({ file: ran().file, action: ran().action, commit: state.commit, attempt: state.attempt, identity: input.identity }, deps.settings) };
    return built.spec;
  };
  /** what the attempt runs: a step that dispatches or follows has it (lifecycle.ts: a result taken from the ledger only records) */
  const ran = () => {
    if (!input.file || !input.action) throw new Error(`lifecycle: attempt of ${state.id} in phase ${state.phase} needs its action file`);
    return { file: input.file, action: input.action };
  };

  async function write(changes: Partial<LedgerEntry>, urgent = false): Promise<AttemptEvent> {
    const next = await deps.ledger.update(entry!, { ...changes, owner: deps.me, updatedAt: now().toISOString() }, { urgent });
    if (!next) return { type: "conflict", message: `action ${state.id} was taken over by another instance` };
    entry = next;
    return { type: "recorded" };
  }

  /** The outcome of a command with one, as an event; undefined for the others. */
  async function carryOut(cmd: AttemptCommand): Promise<AttemptEvent | undefined> {
    switch (cmd.type) {
      case "claim": {
        parentRead = deps.nomad.parentSpec(spec().job);
        parentRead.catch(() => undefined); // a lost claim never looks at it; check_parent gets its error
        if (cmd.resume) {
          // the entry records what this attempt runs: the commit and action file the pass approved
          const ev = await write({ state: "claimed", attempt: state.attempt, actionSha: state.actionSha, commit: state.commit }, true);
          return ev.type === "recorded" ? { type: "claimed", accessor: entry!.accessor } : ev;
        }
        const created = await deps.ledger.create(state.id, { state: "claimed", owner: deps.me, attempt: state.attempt, actionSha: state.actionSha, commit: state.commit, updatedAt: now().toISOString() });
        if (!created) return { type: "claim_taken" };
        entry = created;
        return { type: "claimed", accessor: created.accessor };
      }
      case "verify_entry": {
        const forged = entryProblem(entry!, await deps.nomad.childJob(entry!.jobId!), deps.fence);
        return forged ? { type: "entry_forged", problem: forged, owner: entry!.owner } : { type: "entry_verified" };
      }
      case "check_parent": {
        // whoever re-registered the parent would receive the token: read with the claim, checked before minting
        const job = spec().job;
        const live = parentRead ?? deps.nomad.parentSpec(job);
        parentRead = undefined;
        const changed = pinProblem(deps.settings.pins, job, await live);
        if (changed) throw new ParentChanged(changed);
        return { type: "parent_ok" };
      }
      case "mint": {
        const s = spec();
        token = await deps.vault.mintWrapped({ policies: s.policies, ttlSeconds: s.tokenTtlSeconds, meta: { action: state.id, commit: state.commit, attempt: String(state.attempt) } });
        return { type: "minted", accessor: token.accessor };
      }
      case "dispatch": {
        const s = spec();
        // a fresh nonce per dispatch; a repeated dispatch gets the first child back, with its own payload (collect reads it from Nomad)
        const payload = encodePayload({ nonce: newVerdictNonce(), wrappingToken: token?.wrappingToken, bot: input.identity?.bot });
        const d = await deps.nomad.dispatch({ job: s.job, meta: s.meta, payload, idempotencyToken: s.idempotencyToken });
        await checkChild(s, d.jobId);
        return { type: "dispatched", jobId: d.jobId, duplicate: d.evalId === "" };
      }
      case "record":
        return write(cmd.changes, cmd.urgent);
      case "follow":
        tracked = await trackChild(followed(), deps, deps.signal);
        return { type: "child_ended" };
      case "collect":
        return collect(tracked!);
      case "revoke":
        await deps.vault.revokeAccessor(cmd.accessor, state.id).catch(() => undefined);
        return undefined;
      case "queue_result":
        // finished → recorded is a step of its own, carried out once the push put the result at the tip
        deps.queueResult(cmd.result, cmd.fullLog, async () => void (await drive(step(state, { type: "pushed" }, now()))));
        return undefined;
      case "schedule_purge":
        deps.schedulePurge(state.id, cmd.jobId);
        return undefined;
      case "retry_at":
        deps.retryAt(cmd.at);
        return undefined;
      case "release":
        deps.release();
        return undefined;
      case "log":
        log[cmd.level](cmd.fields ?? {}, cmd.message);
        return undefined;
      case "emit":
        deps.events.emit(cmd.name, cmd.event as never);
        return undefined;
    }
  }

  /**
   * The child is a copy of the parent made at dispatch: one that differs from the pin (the parent
   * re-registered after check_parent) must not keep its token. Thrown as tampered while the token
   * is still spare: step() revokes it and records the result, naming the field.
   */
  async function checkChild(s: DispatchSpec, jobId: string): Promise<void> {
    const child = await deps.nomad.childJob(jobId);
    if (!child?.spec) return; // a port that cannot show the child's spec (test doubles); Nomad's adapter always does
    const problem = childProblem(deps.settings.pins, s.job, s.meta, { jobId, spec: child.spec });
    if (problem) throw new Tampered(problem);
  }

  function followed(): Follow {
    return {
      actionId: state.id,
      attempt: state.attempt,
      jobId: state.jobId!,
      timeoutMinutes: ran().action.timeout_minutes ?? deps.settings.defaultTimeoutMinutes,
      since: new Date(state.dispatchedAt ?? now().toISOString()),
      policies: state.policies,
      accessor: state.accessor,
    };
  }

  async function collect(run: Tracked): Promise<AttemptEvent> {
    const report = await collectChild(followed(), run, deps);
    const { outcome } = report;
    const full = combineLogs(report.stdout, report.stderr, []);
    const tailed = tail(full, deps.settings.tailBytes);
    const logFile = tailed.length < full.length ? logPath(deps.settings.actionsDir, state.id) : undefined;
    const base = { id: state.id, actionSha: state.actionSha, commit: state.commit, attempts: state.attempt, dispatcher: state.dispatcher, ...(state.approvedBy ? { approvedBy: state.approvedBy } : {}) };
    const result = buildRunResult(base, now(), outcome, tailed, logFile);
    return {
      type: "run_ended",
      lost: outcome.status === "lost",
      jobId: outcome.jobId,
      result,
      fullLog: full,
      ran: { allocId: outcome.allocId, exitCode: outcome.exitCode, class: outcome.error?.class, problem: outcome.error?.message },
    };
  }

  /** Which command's failure an error is (the last one with an outcome in the list). */
  const opOf = (cmds: AttemptCommand[]): FailedOp => {
    const last = cmds.at(-1)?.type;
    return last === "claim" || last === "check_parent" || last === "mint" || last === "dispatch" || last === "record" || last === "follow" || last === "collect" ? last : "record";
  };

  /** Carries out `from` and each step after it until a step has no outcome; returns the last state. */
  async function drive(from: Step): Promise<AttemptState> {
    ({ state, commands } = from);
    for (;;) {
      let event: AttemptEvent | undefined;
      try {
        for (const cmd of commands) event = await carryOut(cmd);
      } catch (err) {
        event = deps.signal.aborted ? { type: "aborted" } : { type: "failed", op: opOf(commands), class: failureClassOf(err), message: err instanceof Error ? err.message : String(err), err };
      }
      if (!event) return state;
      ({ state, commands } = step(state, event, now()));
    }
  }

  return drive(first);
}

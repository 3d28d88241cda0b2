// One attempt of one action as a pure state machine: step(state, event, now) → state + commands.
// The loop (core/attempt.ts) carries out the commands through the ports and feeds back what they
// did as events; every order that makes a crash safe (claim before mint, accessor recorded before
// dispatch, dispatched recorded before following, the result stored before it is queued) is decided
// here, and nowhere else. Phases map to the ledger's states (core/README.md has the diagram).
import { nextRetry, type FailureClass } from "../errors.js";
import type { LedgerFields } from "./ports.js";
import type { LoopEventName, LoopEvents } from "./events.js";
import { buildRefusal, type ActionResult, type ResultBase } from "./result.js";

export type Phase =
  /** the claim (create, or take over an entry) is being written */
  | "claiming"
  /** another owner's entry is being checked and taken over (re-attach) */
  | "reattaching"
  /** ledger: claimed — the parent is checked, a token minted, the child dispatched */
  | "claimed"
  /** the minted token's accessor is being recorded (before any dispatch) */
  | "recording_accessor"
  | "dispatching"
  | "recording_dispatch"
  /** ledger: dispatched — the child is followed to its end */
  | "dispatched"
  /** the child has ended (its place is free): its logs are read and its token revoked */
  | "collecting"
  /** a lost run: attempt + 1 is being recorded */
  | "recording_retry"
  | "recording_result"
  /** ledger: finished — the result waits for the push */
  | "finished"
  /** the result is at the tip: the entry is being marked recorded */
  | "recording_pushed"
  /** ledger: recorded — the result is at the tip; the entry stays for the ledger retention */
  | "recorded"
  /** the attempt ended without a result; the action is pending again after its backoff */
  | "waiting"
  /** nothing more to do here: another instance holds the action, or the entry was distrusted */
  | "released";

export interface AttemptState {
  phase: Phase;
  id: string;
  attempt: number;
  actionSha: string;
  commit: string;
  approvedBy?: string[];
  /** runner-<secret> policies the token carries; none: no token is minted */
  policies: string[];
  /** consecutive failures of this attempt before its child ran (the retry rule's count) */
  failures: number;
  /** the ledger held an entry of ours (claimed) */
  claimed: boolean;
  /** the accessor the ledger held when we claimed it: a predecessor's token the child may hold */
  earlierAccessor?: string;
  /** the token this attempt minted */
  accessor?: string;
  jobId?: string;
  dispatchedAt?: string;
  /** when the action was first seen pending (queue wait) */
  seenAt: number;
  /** who held the entry before a re-attach */
  from?: string;
  /** Nomad answered the dispatch with a child made earlier under the same idempotency token */
  duplicate?: boolean;
  /** the retry's time, in phase waiting */
  retryAt?: Date;
  /** written to the ledger, then queued and reported (phase recording_result) */
  pending?: { result: ActionResult; fullLog: string; finished: LoopEvents["action:finished"] };
  dispatcher: { version: string; instance: string };
}

/** Which command failed, where that decides something (a failed mint is reported as such). */
export type FailedOp = "claim" | "check_parent" | "mint" | "record" | "dispatch" | "follow" | "collect";

export type AttemptEvent =
  | { type: "claimed"; accessor?: string }
  /** someone else created the entry first: theirs */
  | { type: "claim_taken" }
  | { type: "entry_verified" }
  | { type: "entry_forged"; problem: string; owner: string }
  | { type: "parent_ok" }
  | { type: "minted"; accessor: string }
  | { type: "dispatched"; jobId: string; duplicate: boolean }
  /** a ledger write (record command) landed */
  | { type: "recorded" }
  /** the child's allocation is terminal, or its job gone or past a deadline */
  | { type: "child_ended" }
  /** the child's output is read; `result` is what its run records unless the run was lost */
  | { type: "run_ended"; lost: boolean; jobId: string; result: ActionResult; fullLog: string; ran: RanFacts }
  | { type: "failed"; op: FailedOp; class: FailureClass; message: string; err: unknown }
  /** a check-and-set found another writer first */
  | { type: "conflict"; message: string }
  /** the queued result is at the tip (pushed by us, or found there already: never overwritten) */
  | { type: "pushed" }
  /** shutdown: leave the child running and the ledger as it is, for whoever re-attaches */
  | { type: "aborted" };

/** What the finished event reports of a run. */
export interface RanFacts {
  allocId?: string;
  exitCode?: number;
  class?: FailureClass;
  problem?: string;
}

type Emit = { [K in LoopEventName]: { type: "emit"; name: K; event: LoopEvents[K] } }[LoopEventName];

export type AttemptCommand =
  | { type: "claim"; resume: boolean }
  | { type: "verify_entry" }
  | { type: "check_parent" }
  | { type: "mint" }
  | { type: "dispatch" }
  /** write the ledger entry (check-and-set); outcome: recorded, conflict or failed. `urgent`: the dispatch waits on it */
  | { type: "record"; changes: Partial<LedgerFields>; urgent?: true }
  | { type: "revoke"; accessor: string }
  /** outcome: child_ended */
  | { type: "follow" }
  /** outcome: run_ended */
  | { type: "collect" }
  /** the child has ended: its place under max_in_flight and its serialization key are free */
  | { type: "release" }
  /** into the push queue; the push feeds back `pushed` */
  | { type: "queue_result"; result: ActionResult; fullLog: string }
  /** the child's result is at the tip: it may leave Nomad after the purge retention */
  | { type: "schedule_purge"; jobId: string }
  /** every write takes the entry for this instance (owner) and stamps it; outcome: recorded, conflict or failed */
  | { type: "retry_at"; at: Date }
  | { type: "log"; level: "debug" | "warn" | "error"; message: string; fields?: Record<string, unknown> }
  | Emit;

/**
 * A step's commands run in order; at most one of them has an outcome (claim, verify_entry,
 * check_parent, mint, dispatch, record, follow, collect), and it is the last: its outcome is the next event.
 */
export interface Step {
  state: AttemptState;
  commands: AttemptCommand[];
}

export interface AttemptStart {
  id: string;
  attempt: number;
  actionSha: string;
  commit: string;
  policies: string[];
  approvedBy?: string[];
  seenAt: number;
  /** carried over from earlier attempts of this action in this process */
  failures?: number;
  dispatcher: { version: string; instance: string };
}

/** A fresh claim, or taking over an entry left `claimed` (resume: same attempt, same idempotency key). */
export function beginClaim(a: AttemptStart, resume: boolean): Step {
  return { state: { ...a, phase: "claiming", failures: a.failures ?? 0, claimed: false }, commands: [{ type: "claim", resume }] };
}

/** Following a child dispatched earlier (by us before a restart, or by a silent owner). */
export function beginReattach(a: AttemptStart & { jobId: string; accessor?: string; dispatchedAt?: string; from: string }): Step {
  return {
    state: { ...a, phase: "reattaching", failures: a.failures ?? 0, claimed: false, earlierAccessor: a.accessor },
    commands: [{ type: "verify_entry" }],
  };
}

/**
 * A result a dead owner stored in its `finished` entry but never pushed, checked by the pass
 * (verify.ts): queued as it is; the push marks the entry recorded, as for an attempt of ours.
 */
export function beginPushFromLedger(a: AttemptStart & { jobId?: string }, result: ActionResult): Step {
  return { state: { ...a, phase: "finished", failures: a.failures ?? 0, claimed: true }, commands: [{ type: "queue_result", result, fullLog: "" }] };
}

const emit = <K extends LoopEventName>(name: K, event: LoopEvents[K]): AttemptCommand => ({ type: "emit", name, event }) as AttemptCommand;

function baseOf(s: AttemptState): ResultBase {
  return { id: s.id, actionSha: s.actionSha, commit: s.commit, attempts: s.attempt, dispatcher: s.dispatcher, ...(s.approvedBy ? { approvedBy: s.approvedBy } : {}) };
}

/** Pure: the next state of an attempt and what to do, given what just happened. */
export function step(s: AttemptState, e: AttemptEvent, now: Date): Step {
  const at = (phase: Phase, commands: AttemptCommand[] = [], more: Partial<AttemptState> = {}): Step => ({ state: { ...s, ...more, phase }, commands });
  if (e.type === "aborted") return at("released");
  if (e.type === "conflict") {
    // another instance holds the action now; a token we minted and never recorded is spare
    const spare: AttemptCommand[] = s.phase === "recording_accessor" && s.accessor ? [{ type: "revoke", accessor: s.accessor }] : [];
    return at("released", [...spare, emit("ledger:conflict", { id: s.id }), { type: "log", level: "warn", message: e.message }]);
  }
  // the result is at the tip whatever the ledger says: a failed mark leaves the entry finished,
  // and its result is never taken up again (the action is not pending at the tip)
  if (e.type === "failed" && s.phase === "recording_pushed") return at("finished", [{ type: "log", level: "warn", message: `could not mark ${s.id} recorded in the ledger: ${e.message}` }]);
  if (e.type === "failed") return fail(s, e, now);

  switch (s.phase) {
    case "claiming":
      if (e.type === "claim_taken") return at("released", [{ type: "log", level: "debug", message: "the ledger holds an entry for it already: read on the next pass" }]);
      if (e.type === "claimed") return at("claimed", [{ type: "check_parent" }], { claimed: true, earlierAccessor: e.accessor });
      break;
    case "reattaching":
      // a forged entry is an incident: its job is not stopped, its token not revoked, no result written
      if (e.type === "entry_forged") return at("released", [emit("ledger:distrusted", { id: s.id, problem: e.problem, owner: e.owner, jobId: s.jobId, attempt: s.attempt })]);
      if (e.type === "entry_verified") return at("reattaching", [{ type: "record", changes: {} }]);
      if (e.type === "recorded") {
        return at("dispatched", [emit("action:reattached", { id: s.id, attempt: s.attempt, jobId: s.jobId!, from: s.from ?? "" }), { type: "follow" }], { claimed: true, accessor: s.earlierAccessor });
      }
      break;
    case "claimed":
      if (e.type === "parent_ok") return s.policies.length > 0 ? at("claimed", [{ type: "mint" }]) : at("dispatching", [{ type: "dispatch" }]);
      if (e.type === "minted") {
        // recorded before the dispatch: a crash in between still lets a successor revoke it
        return at("recording_accessor", [emit("token:minted", { id: s.id, attempt: s.attempt, policies: s.policies }), { type: "record", changes: { accessor: e.accessor }, urgent: true }], { accessor: e.accessor });
      }
      break;
    case "recording_accessor":
      if (e.type === "recorded") return at("dispatching", [{ type: "dispatch" }]);
      break;
    case "dispatching":
      if (e.type === "dispatched") {
        // a duplicate: the child already holds the token minted before our predecessor died; ours is spare
        const spare = e.duplicate && s.accessor ? [{ type: "revoke", accessor: s.accessor } as AttemptCommand] : [];
        const accessor = e.duplicate ? s.earlierAccessor : s.accessor;
        const dispatchedAt = now.toISOString();
        return at("recording_dispatch", [...spare, { type: "record", changes: { state: "dispatched", jobId: e.jobId, accessor, dispatchedAt } }], {
          jobId: e.jobId,
          accessor,
          dispatchedAt,
          duplicate: e.duplicate,
        });
      }
      break;
    case "recording_dispatch":
      if (e.type === "recorded") {
        return at(
          "dispatched",
          [
            emit("action:dispatched", { id: s.id, attempt: s.attempt, jobId: s.jobId!, policies: s.policies, duplicate: s.duplicate === true, queuedMs: Math.max(0, now.getTime() - s.seenAt) }),
            { type: "follow" },
          ],
          { failures: 0 },
        );
      }
      break;
    case "dispatched":
      // the next action may start while this one's output is read: the child holds nothing in Nomad any more
      if (e.type === "child_ended") return at("collecting", [{ type: "release" }, { type: "collect" }]);
      break;
    case "collecting":
      if (e.type === "run_ended") {
        const retry = e.lost ? nextRetry("lost", { attempt: s.attempt, failures: s.failures }, now) : undefined;
        if (retry) {
          return at("recording_retry", [{ type: "record", changes: { state: "claimed", attempt: s.attempt + 1, jobId: undefined, accessor: undefined, dispatchedAt: undefined } }], { retryAt: retry, jobId: e.jobId });
        }
        const pending = { result: e.result, fullLog: e.fullLog, finished: finishedEvent(s, e, now) };
        return at("recording_result", [{ type: "record", changes: { state: "finished", result: JSON.stringify(e.result) } }], { pending });
      }
      break;
    case "recording_retry":
      if (e.type === "recorded") {
        return at("waiting", [emit("action:retrying", { id: s.id, attempt: s.attempt, class: "lost", delayMs: s.retryAt!.getTime() - now.getTime(), jobId: s.jobId }), { type: "retry_at", at: s.retryAt! }]);
      }
      break;
    case "recording_result":
      // into the ledger first (it survives a crash and a remote outage), then the push queue
      if (e.type === "recorded") return at("finished", [{ type: "queue_result", result: s.pending!.result, fullLog: s.pending!.fullLog }, emit("action:finished", s.pending!.finished)], { pending: undefined });
      break;
    case "finished":
      // finished → recorded: the entry says its result is at the tip (one never claimed has no entry)
      if (e.type === "pushed") return s.claimed ? at("recording_pushed", [{ type: "record", changes: { state: "recorded", result: undefined } }]) : at("recorded");
      break;
    case "recording_pushed":
      if (e.type === "recorded") return at("recorded", s.jobId ? [{ type: "schedule_purge", jobId: s.jobId }] : []);
      break;
  }
  return at(s.phase, [{ type: "log", level: "error", message: `lifecycle: event ${e.type} in phase ${s.phase} ignored` }]);
}

function finishedEvent(s: AttemptState, e: Extract<AttemptEvent, { type: "run_ended" }>, now: Date): LoopEvents["action:finished"] {
  return {
    id: s.id,
    attempt: s.attempt,
    status: e.result.status,
    ran: true,
    class: e.ran.class,
    jobId: e.jobId,
    allocId: e.ran.allocId,
    exitCode: e.ran.exitCode,
    problem: e.ran.problem,
    sinceDispatchMs: s.dispatchedAt ? now.getTime() - Date.parse(s.dispatchedAt) : undefined,
  };
}

/**
 * A command failed. The retry rule decides: again after a backoff (same attempt, same idempotency
 * key), or a final result (in the ledger when we hold an entry; queued at once when not).
 */
function fail(s: AttemptState, e: Extract<AttemptEvent, { type: "failed" }>, now: Date): Step {
  const commands: AttemptCommand[] = [];
  if (e.op === "mint") commands.push(emit("token:failed", { id: s.id, op: "mint", class: e.class, err: e.err }));
  // a token minted for a child that was never dispatched (or whose dispatch failed) is spare
  const spare = s.accessor && (s.phase === "recording_accessor" || s.phase === "dispatching");
  if (spare) commands.push({ type: "revoke", accessor: s.accessor! });
  const failures = s.failures + 1;
  // taking over another owner's entry failed: its child may still run, so no result is written
  // for it here; the next pass looks again (a final class waits like an outage)
  const retryAt = nextRetry(e.class, { attempt: s.attempt, failures }, now) ?? (s.phase === "reattaching" ? nextRetry("infra", { attempt: s.attempt, failures }, now) : undefined);
  const cleared = spare ? { accessor: undefined } : {};
  if (retryAt) {
    commands.push(emit("action:retrying", { id: s.id, attempt: s.attempt, class: e.class, delayMs: retryAt.getTime() - now.getTime(), err: e.err }), { type: "retry_at", at: retryAt });
    return { state: { ...s, ...cleared, phase: "waiting", failures, retryAt }, commands };
  }
  const result = buildRefusal(baseOf(s), now, e.class, e.message);
  const finished: LoopEvents["action:finished"] = { id: s.id, attempt: s.attempt, status: result.status, ran: false, class: e.class, problem: e.message, err: e.err };
  // never claimed (no entry to hold it): queued at once, like a refusal
  if (!s.claimed) return { state: { ...s, ...cleared, phase: "finished", failures }, commands: [...commands, { type: "queue_result", result, fullLog: "" }, emit("action:finished", finished)] };
  return {
    state: { ...s, ...cleared, phase: "recording_result", failures, pending: { result, fullLog: "", finished } },
    commands: [...commands, { type: "record", changes: { state: "finished", result: JSON.stringify(result) } }],
  };
}

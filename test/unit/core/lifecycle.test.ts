import { describe, expect, it } from "vitest";
import type { FailureClass } from "../../../dispatcher/errors.js";
import { beginClaim, beginPushFromLedger, beginReattach, step, type AttemptCommand, type AttemptEvent, type AttemptStart, type Step } from "../../../dispatcher/core/lifecycle.js";
import type { ActionResult } from "../../../dispatcher/core/result.js";

const now = new Date("2026-12-02T10:00:00.000Z");
const later = (ms: number) => new Date(now.getTime() + ms);
const start: AttemptStart = { id: "deploy", attempt: 1, actionSha: "a1", commit: "c1", policies: ["runner-github_token"], seenAt: now.getTime() - 5000, dispatcher: { version: "0.1.0", instance: "i-1" } };
const noSecrets: AttemptStart = { ...start, policies: [] };

/** Feeds events in order from `first`, returning every step. */
function run(first: Step, events: AttemptEvent[], at = now): Step[] {
  const steps = [first];
  for (const e of events) steps.push(step(steps.at(-1)!.state, e, at));
  return steps;
}

const types = (cmds: AttemptCommand[]) => cmds.map((c) => (c.type === "emit" ? `emit ${c.name}` : c.type === "record" ? `record${c.urgent ? " (urgent)" : ""} ${JSON.stringify(c.changes)}` : c.type));
const result = (status: ActionResult["status"]): ActionResult => ({ id: "deploy", status, exit_code: status === "succeeded" ? 0 : 1 }) as ActionResult;
const failed = (op: "claim" | "check_parent" | "mint" | "record" | "dispatch" | "follow", cls: FailureClass, message: string): AttemptEvent => ({ type: "failed", op, class: cls, message, err: new Error(message) });

describe("step: the happy path and the ledger after each command (crash points)", () => {
  it("claims, checks the parent, mints, records the accessor, dispatches, records the dispatch, follows, stores the result, queues it", () => {
    const steps = run(beginClaim(start, false), [
      { type: "claimed" },
      { type: "parent_ok" },
      { type: "minted", accessor: "acc-1" },
      { type: "recorded" },
      { type: "dispatched", jobId: "runner/dispatch-1", duplicate: false },
      { type: "recorded" },
      { type: "child_ended" },
      { type: "run_ended", lost: false, jobId: "runner/dispatch-1", result: result("succeeded"), fullLog: "ok", ran: { allocId: "al-1", exitCode: 0 } },
      { type: "recorded" },
    ]);
    expect(steps.map((s) => [s.state.phase, types(s.commands)])).toEqual([
      // a crash here: no entry; the next pass claims afresh
      ["claiming", ["claim"]],
      // a crash from here on leaves the entry `claimed`: a successor goes on from the parent check
      ["claimed", ["check_parent"]],
      ["claimed", ["mint"]],
      // the accessor reaches the ledger before the dispatch: a successor can revoke the token (the
      // dispatch waits on this write: it goes ahead of other requests)
      ["recording_accessor", ["emit token:minted", 'record (urgent) {"accessor":"acc-1"}']],
      ["dispatching", ["dispatch"]],
      // a crash here: the entry says claimed; the successor's dispatch (same idempotency key) gets this child back
      ["recording_dispatch", ['record {"state":"dispatched","jobId":"runner/dispatch-1","accessor":"acc-1","dispatchedAt":"2026-12-02T10:00:00.000Z"}']],
      ["dispatched", ["emit action:dispatched", "follow"]],
      // the child has ended: its place is free before its output is read; a crash here or in the
      // next step: the entry says dispatched, the successor re-attaches and collects the result
      ["collecting", ["release", "collect"]],
      ["recording_result", [`record ${JSON.stringify({ state: "finished", result: JSON.stringify(result("succeeded")) })}`]],
      // only once stored is the result queued: a crash leaves it `finished`, and it is pushed from the ledger
      ["finished", ["queue_result", "emit action:finished"]],
    ]);
    const dispatched = steps[6]!.commands[0];
    expect(dispatched).toEqual({ type: "emit", name: "action:dispatched", event: { id: "deploy", attempt: 1, jobId: "runner/dispatch-1", policies: ["runner-github_token"], duplicate: false, queuedMs: 5000 } });
  });

  it("mints nothing for an action without secrets", () => {
    const steps = run(beginClaim(noSecrets, false), [{ type: "claimed" }, { type: "parent_ok" }]);
    expect(steps.at(-1)).toMatchObject({ state: { phase: "dispatching" }, commands: [{ type: "dispatch" }] });
  });

  it("resumes an entry left claimed by updating it, not creating it", () => {
    expect(beginClaim(start, true).commands).toEqual([{ type: "claim", resume: true }]);
  });

  it("stops when another instance created the entry first", () => {
    const s = run(beginClaim(start, false), [{ type: "claim_taken" }]).at(-1)!;
    expect(s.state.phase).toBe("released");
    expect(types(s.commands)).toEqual(["log"]);
  });
});

describe("step: a duplicate dispatch", () => {
  it("revokes the spare token and records the predecessor's accessor, which the child holds", () => {
    const steps = run(beginClaim(start, true), [
      { type: "claimed", accessor: "acc-old" },
      { type: "parent_ok" },
      { type: "minted", accessor: "acc-new" },
      { type: "recorded" },
      { type: "dispatched", jobId: "runner/dispatch-1", duplicate: true },
    ]);
    const last = steps.at(-1)!;
    expect(last.commands).toEqual([
      { type: "revoke", accessor: "acc-new" },
      { type: "record", changes: { state: "dispatched", jobId: "runner/dispatch-1", accessor: "acc-old", dispatchedAt: now.toISOString() } },
    ]);
    const followed = step(last.state, { type: "recorded" }, now);
    expect(followed.commands[0]).toMatchObject({ name: "action:dispatched", event: { duplicate: true } });
    expect(followed.state.accessor).toBe("acc-old");
  });
});

describe("step: failures and the one retry rule", () => {
  const claimedState = () => run(beginClaim(start, false), [{ type: "claimed" }, { type: "parent_ok" }]).at(-1)!.state;

  it("retries an engine outage with the same attempt after its backoff, counting failures", () => {
    const first = step(claimedState(), failed("mint", "infra", "vault down"), now);
    expect(first.state).toMatchObject({ phase: "waiting", failures: 1, attempt: 1, retryAt: later(500) });
    expect(types(first.commands)).toEqual(["emit token:failed", "emit action:retrying", "retry_at"]);
    // the next attempt of the same action starts with its failures so far
    const again = run(beginClaim({ ...start, failures: 1 }, true), [{ type: "claimed" }, { type: "parent_ok" }, failed("mint", "infra", "vault down")]).at(-1)!;
    expect(again.state).toMatchObject({ phase: "waiting", failures: 2, retryAt: later(1000) });
  });

  it("revokes a token whose dispatch failed, then retries", () => {
    const dispatching = run(beginClaim(start, false), [{ type: "claimed" }, { type: "parent_ok" }, { type: "minted", accessor: "acc-1" }, { type: "recorded" }]).at(-1)!;
    expect(dispatching.state.phase).toBe("dispatching");
    const s = step(dispatching.state, failed("dispatch", "infra", "nomad down"), now);
    expect(s.commands.slice(0, 1)).toEqual([{ type: "revoke", accessor: "acc-1" }]);
    expect(s.state).toMatchObject({ phase: "waiting", accessor: undefined });
  });

  it("records a final failure as the result, in the ledger first", () => {
    const err = Object.assign(new Error("dispatch refused: missing meta"), { class: "rejected" as const });
    const s = step(claimedState(), { type: "failed", op: "dispatch", class: "rejected", message: err.message, err }, now);
    expect(s.state.phase).toBe("recording_result");
    expect(s.commands).toHaveLength(1);
    expect(s.commands[0]).toMatchObject({ type: "record", changes: { state: "finished" } });
    const stored = JSON.parse((s.commands[0] as { changes: { result: string } }).changes.result) as ActionResult;
    expect(stored).toMatchObject({ id: "deploy", status: "rejected", error: { class: "rejected", message: "dispatch refused: missing meta" } });
    const done = step(s.state, { type: "recorded" }, now);
    expect(types(done.commands)).toEqual(["queue_result", "emit action:finished"]);
    expect(done.commands[1]).toMatchObject({ event: { status: "rejected", ran: false, class: "rejected" } });
  });

  it("queues a final failure at once when no entry was ever claimed (nothing to record it in)", () => {
    const err = Object.assign(new Error("403 on the ledger"), { class: "auth" as const });
    const s = step({ ...beginClaim(start, false).state, failures: 2 }, { type: "failed", op: "claim", class: "auth", message: err.message, err }, now);
    expect(s.state.phase).toBe("finished");
    expect(types(s.commands)).toEqual(["queue_result", "emit action:finished"]);
  });

  it("gives a lost run one more attempt (attempt + 1, recorded before the wait), then records lost", () => {
    const following = run(beginClaim(noSecrets, false), [{ type: "claimed" }, { type: "parent_ok" }, { type: "dispatched", jobId: "j1", duplicate: false }, { type: "recorded" }]).at(-1)!;
    const lost = { type: "run_ended", lost: true, jobId: "j1", result: result("lost"), fullLog: "", ran: { class: "lost" } } as const;
    const retry = step(step(following.state, { type: "child_ended" }, now).state, lost, now);
    expect(retry.state.phase).toBe("recording_retry");
    expect(retry.commands).toEqual([{ type: "record", changes: { state: "claimed", attempt: 2, jobId: undefined, accessor: undefined, dispatchedAt: undefined } }]);
    const waiting = step(retry.state, { type: "recorded" }, now);
    expect(types(waiting.commands)).toEqual(["emit action:retrying", "retry_at"]);
    expect(waiting.commands[1]).toEqual({ type: "retry_at", at: later(2000) });
    // the second attempt is lost too: no retry left
    const second = run(beginClaim({ ...noSecrets, attempt: 2 }, true), [{ type: "claimed" }, { type: "parent_ok" }, { type: "dispatched", jobId: "j2", duplicate: false }, { type: "recorded" }]).at(-1)!;
    const final = step(step(second.state, { type: "child_ended" }, now).state, { ...lost, jobId: "j2" }, now);
    expect(final.state.phase).toBe("recording_result");
  });
});

describe("step: conflicts, shutdown, re-attach", () => {
  it("releases the action on a lost check-and-set, revoking a token it never recorded", () => {
    const minted = run(beginClaim(start, false), [{ type: "claimed" }, { type: "parent_ok" }, { type: "minted", accessor: "acc-1" }]).at(-1)!;
    const s = step(minted.state, { type: "conflict", message: "action deploy was taken over by another instance" }, now);
    expect(s.state.phase).toBe("released");
    expect(types(s.commands)).toEqual(["revoke", "emit ledger:conflict", "log"]);
  });

  it("leaves everything as it is on shutdown", () => {
    const s = step(beginClaim(start, false).state, { type: "aborted" }, now);
    expect(s).toEqual({ state: { ...beginClaim(start, false).state, phase: "released" }, commands: [] });
  });

  it("re-attaches after verifying the entry, taking it over before following", () => {
    const first = beginReattach({ ...start, jobId: "runner/dispatch-1", accessor: "acc-old", dispatchedAt: "2026-12-02T09:59:00.000Z", from: "other" });
    const steps = run(first, [{ type: "entry_verified" }, { type: "recorded" }]);
    expect(steps.map((s) => [s.state.phase, types(s.commands)])).toEqual([
      ["reattaching", ["verify_entry"]],
      ["reattaching", ["record {}"]],
      ["dispatched", ["emit action:reattached", "follow"]],
    ]);
    expect(steps.at(-1)!.state.accessor).toBe("acc-old");
  });

  it("writes no result when taking over another owner's entry fails, even for a final class", () => {
    // auth retries twice: the third failure in a row is final
    const s = step(beginReattach({ ...start, failures: 2, jobId: "runner/dispatch-1", from: "other" }).state, failed("record", "auth", "403 on the ledger"), now);
    expect(s.state.phase).toBe("waiting");
    expect(types(s.commands)).toEqual(["emit action:retrying", "retry_at"]);
  });

  it("acts on nothing of a forged entry: no stop, no revoke, no result", () => {
    const s = step(beginReattach({ ...start, jobId: "runner/dispatch-9", from: "x" }).state, { type: "entry_forged", problem: "job meta names another action", owner: "x" }, now);
    expect(s.state.phase).toBe("released");
    expect(s.commands).toEqual([{ type: "emit", name: "ledger:distrusted", event: { id: "deploy", problem: "job meta names another action", owner: "x", jobId: "runner/dispatch-9", attempt: 1 } }]);
  });

  it("reports an event that does not fit the phase, and changes nothing", () => {
    const s0 = beginClaim(start, false).state;
    const s = step(s0, { type: "recorded" }, now);
    expect(s.state).toEqual(s0);
    expect(s.commands).toEqual([{ type: "log", level: "error", message: "lifecycle: event recorded in phase claiming ignored" }]);
  });
});

describe("step: finished → recorded, once the push put the result at the tip", () => {
  const finished = run(beginClaim(noSecrets, false), [
    { type: "claimed" },
    { type: "parent_ok" },
    { type: "dispatched", jobId: "runner/dispatch-1", duplicate: false },
    { type: "recorded" },
    { type: "child_ended" },
    { type: "run_ended", lost: false, jobId: "runner/dispatch-1", result: result("succeeded"), fullLog: "ok", ran: {} },
    { type: "recorded" },
  ]).at(-1)!;

  it("marks the entry recorded (its stored result dropped), then schedules the child's purge", () => {
    expect(finished.state.phase).toBe("finished");
    const steps = run(finished, [{ type: "pushed" }, { type: "recorded" }]).slice(1);
    expect(steps.map((s) => [s.state.phase, types(s.commands)])).toEqual([
      ["recording_pushed", ['record {"state":"recorded"}']],
      ["recorded", ["schedule_purge"]],
    ]);
    expect(steps[0]!.commands).toEqual([{ type: "record", changes: { state: "recorded", result: undefined } }]);
    expect(steps[1]!.commands).toEqual([{ type: "schedule_purge", jobId: "runner/dispatch-1" }]);
  });

  it("a result never claimed (no entry) is recorded with no write; one without a child schedules no purge", () => {
    const refused = step(beginClaim(start, false).state, failed("claim", "rejected", "no"), now);
    expect(refused.state).toMatchObject({ phase: "finished", claimed: false });
    expect(step(refused.state, { type: "pushed" }, now)).toMatchObject({ state: { phase: "recorded" }, commands: [] });
    const noChild = step({ ...finished.state, jobId: undefined, phase: "recording_pushed" }, { type: "recorded" }, now);
    expect(noChild).toMatchObject({ state: { phase: "recorded" }, commands: [] });
  });

  it("a failed mark leaves the entry finished and says so; the result is at the tip, nothing is retried", () => {
    const marking = step(finished.state, { type: "pushed" }, now).state;
    const s = step(marking, failed("record", "infra", "nomad: PUT /v1/var/dispatcher/actions/deploy failed: connect ECONNREFUSED"), now);
    expect(s).toEqual({
      state: { ...marking, phase: "finished" },
      commands: [{ type: "log", level: "warn", message: "could not mark deploy recorded in the ledger: nomad: PUT /v1/var/dispatcher/actions/deploy failed: connect ECONNREFUSED" }],
    });
  });

  it("a dead owner's stored result starts finished, its queue_result first", () => {
    const first = beginPushFromLedger({ ...start, jobId: "runner/dispatch-7" }, result("failed"));
    expect([first.state.phase, first.state.claimed, first.state.jobId, first.commands]).toEqual(["finished", true, "runner/dispatch-7", [{ type: "queue_result", result: result("failed"), fullLog: "" }]]);
    expect(step(first.state, { type: "pushed" }, now).state.phase).toBe("recording_pushed");
  });
});

describe("every outcome command is last in its step", () => {
  it("holds for each step of the paths above", () => {
    const outcome = new Set(["claim", "verify_entry", "check_parent", "mint", "dispatch", "record", "follow", "collect"]);
    const steps = run(beginClaim(start, false), [
      { type: "claimed" },
      { type: "parent_ok" },
      { type: "minted", accessor: "a" },
      { type: "recorded" },
      { type: "dispatched", jobId: "j", duplicate: true },
      { type: "recorded" },
      { type: "child_ended" },
      { type: "run_ended", lost: false, jobId: "j", result: result("failed"), fullLog: "", ran: {} },
      { type: "recorded" },
    ]);
    expect(steps.at(-1)!.state.phase).toBe("finished");
    for (const s of steps) {
      const idx = s.commands.map((c) => outcome.has(c.type));
      expect(idx.filter(Boolean).length).toBeLessThanOrEqual(1);
      if (idx.includes(true)) expect(idx.at(-1)).toBe(true);
    }
  });
});

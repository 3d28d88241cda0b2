import { describe, expect, it } from "vitest";
import { createLoopEmitter } from "../../../dispatcher/core/events.js";
import { createMetrics } from "../../../dispatcher/server/metrics.js";

/** The sample lines of `name` in the exposition text, without comments. */
async function samples(registry: Awaited<ReturnType<typeof createMetrics>>, name: string): Promise<string[]> {
  return (await registry.metrics()).split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe("createMetrics", () => {
  it("counts what the loop's events report, and nothing else", async () => {
    const events = createLoopEmitter();
    let inFlight = 3;
    const m = createMetrics({ events, inFlight: () => inFlight });
    events.emit("action:refused", { id: "a", class: "invalid", problem: "p" });
    events.emit("action:refused", { id: "b", class: "not_allowed", problem: "p" });
    events.emit("action:dispatched", { id: "c", attempt: 1, jobId: "runner/dispatch-1", policies: [], duplicate: false, queuedMs: 1500 });
    events.emit("action:started", { id: "c", attempt: 1, jobId: "runner/dispatch-1", allocId: "x", node: "n", sinceDispatchMs: 800 });
    events.emit("action:finished", { id: "c", attempt: 1, status: "succeeded", ran: true, sinceDispatchMs: 4000 });
    events.emit("action:finished", { id: "d", attempt: 2, status: "failed", ran: true, class: "agent", sinceDispatchMs: 2000 });
    events.emit("action:retrying", { id: "e", attempt: 1, class: "infra", delayMs: 1000 });
    events.emit("token:minted", { id: "c", attempt: 1, policies: ["runner-X"] });
    events.emit("token:revoked", { id: "c" });
    events.emit("token:failed", { id: "e", op: "mint", class: "infra", err: new Error("down") });
    events.emit("ledger:conflict", { id: "f" });
    events.emit("results:pushed", { ids: ["a", "b", "c"], rejections: 2 });
    events.emit("results:kept", { waiting: 1, err: new Error("down") });
    events.emit("pass:done", { durationMs: 40, commit: "abc", started: 1, refused: 2, waiting: 0, signaturesChecked: 7 });
    events.emit("pass:failed", { durationMs: 10, class: "infra", err: new Error("down") });
    events.emit("job:purged", { id: "c", jobId: "runner/dispatch-1" });

    expect(await samples(m, "dispatcher_actions_total")).toEqual([
      'dispatcher_actions_total{status="invalid",class="invalid"} 1',
      'dispatcher_actions_total{status="rejected",class="not_allowed"} 1',
      'dispatcher_actions_total{status="succeeded",class="none"} 1',
      'dispatcher_actions_total{status="failed",class="agent"} 1',
    ]);
    expect(await samples(m, "dispatcher_actions_in_flight")).toEqual(["dispatcher_actions_in_flight 3"]);
    inFlight = 0;
    expect(await samples(m, "dispatcher_actions_in_flight")).toEqual(["dispatcher_actions_in_flight 0"]);
    expect(await samples(m, "dispatcher_queue_wait_seconds_sum")).toEqual(["dispatcher_queue_wait_seconds_sum 1.5"]);
    expect(await samples(m, "dispatcher_dispatch_to_start_seconds_count")).toEqual(["dispatcher_dispatch_to_start_seconds_count 1"]);
    expect(await samples(m, "dispatcher_dispatch_to_result_seconds_sum")).toEqual(["dispatcher_dispatch_to_result_seconds_sum 6"]);
    expect(await samples(m, "dispatcher_tokens_total")).toEqual([
      'dispatcher_tokens_total{op="mint",outcome="ok"} 1',
      'dispatcher_tokens_total{op="revoke",outcome="ok"} 1',
      'dispatcher_tokens_total{op="mint",outcome="failed"} 1',
    ]);
    expect(await samples(m, "dispatcher_ledger_conflicts_total")).toEqual(["dispatcher_ledger_conflicts_total 1"]);
    expect(await samples(m, "dispatcher_git_pushes_total")).toEqual(['dispatcher_git_pushes_total{outcome="ok"} 1', 'dispatcher_git_pushes_total{outcome="failed"} 1']);
    expect(await samples(m, "dispatcher_git_push_rejections_total")).toEqual(["dispatcher_git_push_rejections_total 2"]);
    expect(await samples(m, "dispatcher_results_pushed_total")).toEqual(["dispatcher_results_pushed_total 3"]);
    expect(await samples(m, "dispatcher_signature_checks_total")).toEqual(["dispatcher_signature_checks_total 7"]);
    expect(await samples(m, "dispatcher_pass_duration_seconds_count")).toEqual(['dispatcher_pass_duration_seconds_count{outcome="ok"} 1', 'dispatcher_pass_duration_seconds_count{outcome="failed"} 1']);
    expect(await samples(m, "dispatcher_engine_errors_total")).toEqual([
      'dispatcher_engine_errors_total{class="infra",where="dispatch"} 1',
      'dispatcher_engine_errors_total{class="infra",where="token"} 1',
      'dispatcher_engine_errors_total{class="infra",where="pass"} 1',
    ]);
    expect(await samples(m, "dispatcher_retries_total")).toEqual(['dispatcher_retries_total{class="infra"} 1']);
    expect(await samples(m, "dispatcher_jobs_total")).toEqual(['dispatcher_jobs_total{op="purged"} 1']);
    // the process's own figures come with it
    expect(await samples(m, "dispatcher_process_resident_memory_bytes")).toHaveLength(1);
  });

  it("shows what waits for another replica's lock or slot, the slots held, and re-attached children without a place", async () => {
    const events = createLoopEmitter();
    const m = createMetrics({ events, inFlight: () => 0 });
    events.emit("places:waits", { lock: 2, slot: 1, held: 3 });
    events.emit("places:overrun", { id: "x" });
    expect(await samples(m, "dispatcher_shared_limit_waiting")).toEqual(['dispatcher_shared_limit_waiting{kind="lock"} 2', 'dispatcher_shared_limit_waiting{kind="slot"} 1']);
    expect(await samples(m, "dispatcher_shared_limit_slots_held")).toEqual(["dispatcher_shared_limit_slots_held 3"]);
    expect(await samples(m, "dispatcher_shared_limit_overruns_total")).toEqual(["dispatcher_shared_limit_overruns_total 1"]);
    events.emit("places:waits", { lock: 0, slot: 0, held: 1 });
    expect(await samples(m, "dispatcher_shared_limit_waiting")).toEqual(['dispatcher_shared_limit_waiting{kind="lock"} 0', 'dispatcher_shared_limit_waiting{kind="slot"} 0']);
  });

  it("shows the ledger's size after a retention sweep and the entries it removed", async () => {
    const events = createLoopEmitter();
    const m = createMetrics({ events, inFlight: () => 0 });
    events.emit("ledger:entry-removed", { id: "a", recordedAt: "2024-05-01T12:00:00.000Z" });
    events.emit("ledger:size", { entries: 12 });
    expect(await samples(m, "dispatcher_ledger_entries")).toEqual(["dispatcher_ledger_entries 12"]);
    expect(await samples(m, "dispatcher_ledger_entries_removed_total")).toEqual(["dispatcher_ledger_entries_removed_total 1"]);
  });

  it("keeps two dispatchers' registries apart", async () => {
    const a = createLoopEmitter();
    const ma = createMetrics({ events: a, inFlight: () => 0 });
    const mb = createMetrics({ events: createLoopEmitter(), inFlight: () => 0 });
    a.emit("ledger:conflict", { id: "x" });
    expect(await samples(ma, "dispatcher_ledger_conflicts_total")).toEqual(["dispatcher_ledger_conflicts_total 1"]);
    expect(await samples(mb, "dispatcher_ledger_conflicts_total")).toEqual(["dispatcher_ledger_conflicts_total 0"]);
  });
});

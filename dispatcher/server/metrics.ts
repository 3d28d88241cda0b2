// Prometheus metrics, all hung on the loop's events (core/events.ts): no counter is bumped
// anywhere else in the dispatcher. One registry per dispatcher, so tests can run several.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { LoopEmitter } from "../core/events.js";
import { statusOf } from "../core/result.js";

/** seconds: a dispatch is quick; a run or a queue wait can last the action's timeout */
const SHORT = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LONG = [1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 14400];

export interface MetricsSources {
  events: LoopEmitter;
  /** actions with a child in Nomad now */
  inFlight(): number;
}

export function createMetrics(src: MetricsSources): Registry {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: "dispatcher_" });
  const ev = src.events;

  const actions = new Counter({ name: "dispatcher_actions_total", help: "Actions with a result in the ledger, by status and failure class (class none: succeeded)", labelNames: ["status", "class"], registers });
  ev.on("action:finished", (e) => actions.inc({ status: e.status, class: e.class ?? "none" }));
  ev.on("action:refused", (e) => actions.inc({ status: statusOf(e.class), class: e.class }));

  new Gauge({ name: "dispatcher_actions_in_flight", help: "Actions this instance is running or following now", registers, collect() { this.set(src.inFlight()); } });

  const dispatches = new Counter({ name: "dispatcher_dispatches_total", help: "Children dispatched (duplicate: Nomad already had it under the idempotency token)", labelNames: ["duplicate"], registers });
  const queueWait = new Histogram({ name: "dispatcher_queue_wait_seconds", help: "From the first pass that saw an action pending to its dispatch", buckets: LONG, registers });
  ev.on("action:dispatched", (e) => {
    dispatches.inc({ duplicate: String(e.duplicate) });
    queueWait.observe(e.queuedMs / 1000);
  });
  const toStart = new Histogram({ name: "dispatcher_dispatch_to_start_seconds", help: "From the dispatch to the allocation running", buckets: [...SHORT, 60, 120, 300], registers });
  ev.on("action:started", (e) => toStart.observe(e.sinceDispatchMs / 1000));
  const toResult = new Histogram({ name: "dispatcher_dispatch_to_result_seconds", help: "From the dispatch to the result in the ledger", buckets: LONG, registers });
  ev.on("action:finished", (e) => e.sinceDispatchMs !== undefined && toResult.observe(e.sinceDispatchMs / 1000));
  const retries = new Counter({ name: "dispatcher_retries_total", help: "Attempts that end without a result and go again, by failure class", labelNames: ["class"], registers });
  ev.on("action:retrying", (e) => retries.inc({ class: e.class }));

  const issueRuns = new Counter({ name: "dispatcher_issue_runs_started_total", help: "Sidecar runs started (or taken over: resumed true) for labelled issues, by formula", labelNames: ["formula", "resumed"], registers });
  ev.on("issue:started", (e) => issueRuns.inc({ formula: e.formula, resumed: String(e.resumed) }));
  const issueDone = new Counter({ name: "dispatcher_issue_runs_finished_total", help: "Sidecar runs whose issue got its outcome label and comment, by formula, status and outcome label", labelNames: ["formula", "status", "outcome"], registers });
  ev.on("issue:finished", (e) => issueDone.inc({ formula: e.formula, status: e.status, outcome: e.outcome }));
  const issueForge = new Counter({ name: "dispatcher_issue_forge_failures_total", help: "Issue passes' forge calls that failed (retried at the next issue pass)", registers });
  ev.on("issue:forge-failed", () => issueForge.inc());

  const passes = new Histogram({ name: "dispatcher_pass_duration_seconds", help: "One pass: fetch, read, refuse, plan, dispatch (outcome ok or failed)", labelNames: ["outcome"], buckets: SHORT, registers });
  ev.on("pass:done", (e) => passes.observe({ outcome: "ok" }, e.durationMs / 1000));
  const signatures = new Counter({ name: "dispatcher_signature_checks_total", help: "Commit signatures checked (require_signed); each commit once per process", registers });
  ev.on("pass:done", (e) => signatures.inc(e.signaturesChecked ?? 0));
  ev.on("pass:failed", (e) => passes.observe({ outcome: "failed" }, e.durationMs / 1000));

  const pushes = new Counter({ name: "dispatcher_git_pushes_total", help: "Result commits pushed (ok) or kept for the next flush (failed)", labelNames: ["outcome"], registers });
  const rejections = new Counter({ name: "dispatcher_git_push_rejections_total", help: "Pushes refused by a concurrent writer and redone on the new tip", registers });
  const pushed = new Counter({ name: "dispatcher_results_pushed_total", help: "Results that reached the ops repo", registers });
  ev.on("results:pushed", (e) => {
    pushes.inc({ outcome: "ok" });
    rejections.inc(e.rejections);
    pushed.inc(e.ids.length);
  });
  ev.on("results:kept", () => pushes.inc({ outcome: "failed" }));

  const ignored = new Gauge({ name: "dispatcher_repo_ignored_entries", help: "Entries of the actions directory at the last tip read that are not part of the contract, by why (not_utf8, control_character, name_too_long, not_a_file, not_in_contract)", labelNames: ["reason"], registers });
  const truncated = new Gauge({ name: "dispatcher_repo_listing_truncated", help: "1 when the actions directory held more entries than a listing reads (those past the cap are not seen)", registers });
  ev.on("repo:ignored", (e) => {
    ignored.reset();
    for (const [code, n] of Object.entries(e.byCode)) ignored.set({ reason: code }, n);
    truncated.set(e.truncated ? 1 : 0);
  });
  const skipped = new Counter({ name: "dispatcher_actions_skipped_total", help: "Pending actions a pass could not consider (a check threw on their input); the pass went on with the others", labelNames: ["class"], registers });
  ev.on("action:skipped", (e) => skipped.inc({ class: e.class }));
  const unwritable = new Counter({ name: "dispatcher_results_unwritable_total", help: "Results the ops repo could not hold at their paths; the others of their commit landed", registers });
  ev.on("results:unwritable", (e) => unwritable.inc(e.ids.length));

  const conflicts = new Counter({ name: "dispatcher_ledger_conflicts_total", help: "Ledger check-and-set writes that found another writer first", registers });
  ev.on("ledger:conflict", () => conflicts.inc());
  const distrusted = new Counter({ name: "dispatcher_ledger_distrusted_total", help: "Ledger entries that did not hold up (forged or another action's) and were left alone", registers });
  ev.on("ledger:distrusted", () => distrusted.inc());

  const tokens = new Counter({ name: "dispatcher_tokens_total", help: "Runner tokens minted and revoked (outcome ok or failed)", labelNames: ["op", "outcome"], registers });
  ev.on("token:minted", () => tokens.inc({ op: "mint", outcome: "ok" }));
  ev.on("token:revoked", () => tokens.inc({ op: "revoke", outcome: "ok" }));
  ev.on("token:failed", (e) => tokens.inc({ op: e.op, outcome: "failed" }));

  const errors = new Counter({ name: "dispatcher_engine_errors_total", help: "Errors from Nomad, OpenBao or git by failure class, where they surfaced (pass, dispatch, token, purge)", labelNames: ["class", "where"], registers });
  ev.on("pass:failed", (e) => errors.inc({ class: e.class, where: "pass" }));
  ev.on("action:retrying", (e) => e.class !== "lost" && errors.inc({ class: e.class, where: "dispatch" }));
  ev.on("token:failed", (e) => errors.inc({ class: e.class, where: "token" }));
  ev.on("job:purge-failed", (e) => errors.inc({ class: e.class, where: "purge" }));

  const jobs = new Counter({ name: "dispatcher_jobs_total", help: "Children purged after their retention, or evaluated again by the watchdog", labelNames: ["op"], registers });
  ev.on("job:purged", () => jobs.inc({ op: "purged" }));
  ev.on("job:reevaluated", () => jobs.inc({ op: "reevaluated" }));

  const ledgerSize = new Gauge({ name: "dispatcher_ledger_entries", help: "Action entries in the ledger after the last retention sweep (hourly)", registers });
  ev.on("ledger:size", (e) => ledgerSize.set(e.entries));
  const ledgerRemoved = new Counter({ name: "dispatcher_ledger_entries_removed_total", help: "Recorded entries removed after the ledger retention", registers });
  ev.on("ledger:entry-removed", () => ledgerRemoved.inc());

  // the limits replicas share (core/limits.ts): what the last pass left waiting on another replica's place
  const placeWaits = new Gauge({ name: "dispatcher_shared_limit_waiting", help: "Actions the last pass would have started but that wait for a place another replica holds: its serialization key's lock (kind lock) or a max_in_flight slot (kind slot)", labelNames: ["kind"], registers });
  const placesHeld = new Gauge({ name: "dispatcher_shared_limit_slots_held", help: "max_in_flight slots this instance holds in the shared ledger", registers });
  ev.on("places:waits", (e) => {
    placeWaits.set({ kind: "lock" }, e.lock);
    placeWaits.set({ kind: "slot" }, e.slot);
    placesHeld.set(e.held);
  });
  const overruns = new Counter({ name: "dispatcher_shared_limit_overruns_total", help: "Children re-attached without a shared place (the shared limits exceeded while they run)", registers });
  ev.on("places:overrun", () => overruns.inc());

  return registry;
}

// The loop's log lines, written from its events: one child logger per action and attempt.
import type { Logger } from "../log.js";
import type { LoopEmitter } from "./events.js";

export function logLoopEvents(events: LoopEmitter, log: Logger): void {
  const actionLog = (id: string, attempt?: number, jobId?: string) => log.child({ action: id, ...(attempt === undefined ? {} : { attempt }), ...(jobId ? { job_id: jobId } : {}) });

  events.on("issue:started", (e) => log.info({ run: e.id, repo: e.repo, issue: e.issue, label: e.label, formula: e.formula, resumed: e.resumed }, "issue run started"));
  events.on("issue:finished", (e) => log.info({ run: e.id, repo: e.repo, issue: e.issue, status: e.status, outcome: e.outcome }, "issue run finished: outcome label and comment set"));
  events.on("issue:waiting", (e) => log.debug({ run: e.id, reason: e.reason }, "issue run waits"));
  events.on("issue:forge-failed", (e) => log.warn({ repo: e.repo, class: e.class, err: e.err }, "the forge's issues could not be read or told; trying again at the next issue pass"));

  events.on("action:refused", (e) => log.warn({ action: e.id, class: e.class, problem: e.problem }, "action refused"));

  events.on("action:dispatched", (e) => {
    const l = actionLog(e.id, e.attempt);
    if (e.duplicate) l.warn({ job_id: e.jobId }, "dispatch was a duplicate: re-attached to the existing child");
    l.info({ job_id: e.jobId, policies: e.policies }, "dispatched");
  });

  // debug: the points of an action's timeline (bench/timeline.ts) the info lines do not show
  events.on("action:started", (e) => actionLog(e.id, e.attempt, e.jobId).debug({ alloc_id: e.allocId, since_dispatch_ms: e.sinceDispatchMs }, "child running"));
  events.on("action:released", (e) => actionLog(e.id).debug("child ended: its place is free"));
  events.on("token:minted", (e) => actionLog(e.id, e.attempt).debug({ policies: e.policies }, "token minted"));
  events.on("pass:freed-start", (e) => log.debug({ actions: e.ids }, "a freed place started the next decided actions"));
  events.on("pass:done", (e) => log.debug({ commit: e.commit, duration_ms: e.durationMs, synced_ms: e.syncedMs, read_ms: e.readMs, started: e.started, waiting: e.waiting }, "pass done"));

  events.on("action:reattached", (e) => actionLog(e.id, e.attempt, e.jobId).info({ from: e.from }, "re-attached to a running job"));

  events.on("action:retrying", (e) => {
    const l = actionLog(e.id, e.attempt);
    if (e.class === "lost") return l.warn({ job_id: e.jobId, retry_in_ms: e.delayMs }, "allocation lost; retrying");
    // an incident, not an outage: whoever re-registered the parent would receive the token
    if (e.class === "parent_changed") return l.error({ class: e.class, problem: (e.err as Error).message, retry_in_ms: e.delayMs }, "the runner parent differs from its pin: nothing minted or dispatched");
    l.warn({ err: e.err, class: e.class, retry_in_ms: e.delayMs }, "dispatch failed; will retry");
  });

  events.on("action:finished", (e) => {
    const l = actionLog(e.id, e.attempt);
    if (!e.ran) return l.error({ err: e.err, class: e.class }, "action failed before it ran");
    const fields = { job_id: e.jobId, alloc_id: e.allocId, status: e.status, exit_code: e.exitCode, class: e.class };
    // someone else unwrapped this action's token first: an incident, with the secrets to rotate
    if (e.class === "tampered") l.error({ ...fields, problem: e.problem }, "action finished: its wrapping token was tampered with");
    else l.info(fields, "action finished");
  });

  events.on("ledger:distrusted", (e) =>
    e.jobId
      ? actionLog(e.id, e.attempt, e.jobId).error({ problem: e.problem, owner: e.owner }, "ledger entry does not match its job: not acting on it")
      : log.error({ action: e.id, problem: e.problem }, "ledger entry does not hold this action's result: not pushing it"),
  );

  events.on("job:reevaluated", (e) => actionLog(e.id, undefined, e.jobId).warn("the job had neither evaluation nor allocation: evaluated again"));
  events.on("job:purged", (e) => actionLog(e.id, undefined, e.jobId).info("purged from Nomad: its result is in the ops repo"));
  events.on("job:purge-failed", (e) =>
    actionLog(e.id, undefined, e.jobId).warn({ err: e.err, class: e.class }, "could not purge the job (needs submit-job: acl/dispatcher-janitor.hcl); it stays until Nomad's own GC"),
  );

  events.on("repo:ignored", (e) =>
    e.count === 0 && !e.truncated
      ? log.info({ dir: e.dir }, "nothing is ignored in the actions directory any more")
      : log.warn({ dir: e.dir, count: e.count, by_code: e.byCode, sample: e.sample, truncated: e.truncated }, "entries that are not part of the ops repo's contract are ignored (plan and status name them)"),
  );
  events.on("action:skipped", (e) => log.error({ action: e.id, class: e.class, err: e.err }, "action not considered this pass; the others go on"));
  events.on("results:unwritable", (e) => log.error({ results: e.ids }, "results the ops repo cannot hold at their paths; the others landed"));

  // each commit's signature is checked once per process: a pass checks only commits new to it
  events.on("pass:done", (e) => e.signaturesChecked && log.info({ commit: e.commit, signatures_checked: e.signaturesChecked }, "commit signatures checked"));

  events.on("places:free-failed", (e) => log.warn({ action: e.id, err: e.err }, "could not free a shared place; it is freed by this replica's next life or taken over after the lease"));
  events.on("places:overrun", (e) => log.warn({ action: e.id }, "re-attached without a shared place (another replica holds them): the shared limits are exceeded by this child until it ends"));
  events.on("places:waits", (e) => (e.lock + e.slot > 0 ? log.debug({ lock: e.lock, slot: e.slot, held: e.held }, "actions waiting for places other replicas hold") : undefined));

  events.on("ledger:instance-forgotten", (e) => log.info({ replica: e.instance, seen_at: e.seenAt }, "removed the heartbeat of a replica silent past the retention"));

  events.on("ledger:entry-removed", (e) => log.info({ action: e.id, recorded_at: e.recordedAt }, "removed a recorded ledger entry past the retention"));

  events.on("results:pushed", (e) => log.info({ results: e.ids, ...(e.rejections > 0 ? { rejections: e.rejections } : {}) }, "results pushed"));
  events.on("results:kept", (e) => log.error({ err: e.err, waiting: e.waiting }, "could not push results; they are kept and retried on the next pass"));
}

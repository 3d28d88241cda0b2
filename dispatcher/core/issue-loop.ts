// The issue loop, beside the action loop: open issues carrying a configured label start a sidecar
// run each, keyed by (issue, label, the label's event) in a ledger of their own, and carried out by
// the same attempt machinery as actions (claim, mint, dispatch, follow, record). When the run's
// result is pushed the issue gets its outcome label and one comment. It decides nothing itself:
// issue-runs.ts does.
import { failureClassOf } from "../errors.js";
import type { Logger } from "../log.js";
import { runAttempt, type AttemptDeps } from "./attempt.js";
import type { LoopEmitter } from "./events.js";
import {
  commentMarker,
  decideIssueRun,
  issueAction,
  issueComment,
  issueResultPath,
  issueRunId,
  labelsAfter,
  outcomeOf,
  triggersOf,
  type IssueDecision,
  type IssuePlanRow,
  type IssueProject,
  type IssueTrigger,
} from "./issue-runs.js";
import { beginClaim, beginPushFromLedger, beginReattach, type AttemptStart, type Step } from "./lifecycle.js";
import type { ForgeIssue, IssueForgePort, LedgerEntry, LedgerPort, OpsRepoPort } from "./ports.js";
import type { SidecarIdentity } from "./request.js";
import type { ActionResult } from "./result.js";
import type { ApprovalVerdict } from "./approval.js";
import { storedResultProblem } from "./verify.js";

export interface IssueLoopSettings {
  /** the folder of issue runs' results (vault/issues) */
  dir: string;
  progressLabel: string;
  pollMs: number;
  maxInFlight: number;
  leaseMs: number;
  projects: readonly IssueProject[];
  /** the sidecar's bot identity; undefined: sidecars get no token of their own */
  identity?: SidecarIdentity;
  dispatcher: { version: string; instance: string };
}

export interface IssueLoopDeps extends Omit<AttemptDeps, "queueResult" | "retryAt" | "release" | "schedulePurge" | "ledger" | "events" | "log"> {
  forge: IssueForgePort;
  repo: Pick<OpsRepoPort, "listFiles" | "readFile">;
  /** issue runs' own entries (a prefix apart from actions'); heartbeats are the action ledger's */
  ledger: LedgerPort;
  /** the attempts' transitions (logged; kept from the forge reporter, which reports actions) */
  attemptEvents: LoopEmitter;
  /** issue:* events (metrics, log) */
  events: LoopEmitter;
  log: Logger;
  /**
   * the approval rule's verdict on the code a run would run at `commit` (the project file as the
   * action file, the formula, everything outside the actions folder); absent: no rule configured
   */
  approve?(commit: string, file: { path: string; sha: string }, action: { formula: string }): Promise<ApprovalVerdict>;
  /** the action loop's push: a result joins its next commit, in the issues folder */
  queueResult(result: ActionResult, fullLog: string, dir: string): void;
  issues: IssueLoopSettings;
}

/** A run waiting for its push, then its issue's labels and comment. */
interface Finishing {
  trigger: IssueTrigger;
  issue: number;
  result: ActionResult;
  /** the run's lifecycle's last step (finished → recorded), once pushed; absent for a result already at the tip */
  record?: () => Promise<void>;
}

export function createIssueLoop(deps: IssueLoopDeps) {
  const s = deps.issues;
  const triggers = triggersOf(s.projects);
  const now = () => deps.clock.now();
  const inFlight = new Map<string, Promise<void>>();
  /** runs whose issue is done with: not looked at again by this process */
  const done = new Set<string>();
  /** runs left waiting by a failure before their child ran: not before this */
  const notBefore = new Map<string, number>();
  const finishing = new Map<string, Finishing>();
  let lastPass = Number.NEGATIVE_INFINITY;
  let woken = false;
  let running: Promise<void> | undefined;
  /** a pass asked for while one ran: the commit it asked at */
  let again: string | undefined;

  const failed = (repo: string, err: unknown) => deps.events.emit("issue:forge-failed", { repo, class: failureClassOf(err), err });

  /** Result files under the project's folder at `commit`. */
  async function resultsAt(commit: string, project: string): Promise<Set<string>> {
    const listed = await deps.repo.listFiles(commit, `${s.dir}/${project}`).catch(() => []);
    return new Set(listed.map((f) => f.path));
  }

  async function blobOf(commit: string, path: string): Promise<string | undefined> {
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
    return (await deps.repo.listFiles(commit, dir)).find((f) => f.path === path && f.kind === undefined)?.sha;
  }

  /** The issue's labels and comment once the run's result is at the tip; then the entry is recorded. */
  async function followUp(f: Finishing, id: string): Promise<void> {
    const t = f.trigger;
    const outcome = outcomeOf(t, f.result).label;
    const labels = labelsAfter(t, s.progressLabel, outcome);
    await deps.forge.upsertIssueComment(t.repo, f.issue, commentMarker(id), issueComment(t, id, f.result, outcome, issueResultPath(s.dir, id)));
    await deps.forge.addLabels(t.repo, f.issue, labels.add);
    // the trigger label goes last: a follow-up cut short is found again by it
    for (const label of labels.remove) await deps.forge.removeLabel(t.repo, f.issue, label);
    done.add(id);
    deps.events.emit("issue:finished", { id, repo: t.repo, issue: f.issue, formula: t.formula, status: f.result.status, outcome });
  }

  /** What run `id`'s attempt needs: its result joins the action loop's push, and its issue is told once it lands. */
  function attemptDepsFor(t: IssueTrigger, issue: number, id: string, log: Logger): AttemptDeps {
    return {
      ...deps,
      log,
      events: deps.attemptEvents,
      queueResult(result, fullLog, pushed) {
        finishing.set(id, { trigger: t, issue, result, record: pushed });
        deps.queueResult(result, fullLog, s.dir);
      },
      // an issue run's child stays in Nomad until its own GC (the purge schedule is the action loop's)
      schedulePurge: () => undefined,
      retryAt: (at) => notBefore.set(id, at.getTime()),
      release: () => undefined,
    };
  }

  function start(t: IssueTrigger, issue: ForgeIssue, id: string, first: Step, projectBlob: string, entry: LedgerEntry | undefined): void {
    const { file, action } = issueAction(t, issue, id, projectBlob);
    const log = deps.log.child({ run: id });
    deps.events.emit("issue:started", { id, repo: t.repo, issue: issue.number, label: t.label, formula: t.formula, resumed: entry !== undefined });
    const work = runAttempt(first, { file, action, entry, ...(s.identity ? { identity: s.identity } : {}) }, attemptDepsFor(t, issue.number, id, log))
      .then(() => undefined)
      .catch((err: unknown) => log.error({ err }, "issue run failed"))
      .finally(() => inFlight.delete(id));
    inFlight.set(id, work);
  }

  function attemptOf(id: string, commit: string, projectBlob: string, previous: LedgerEntry | undefined): AttemptStart {
    return {
      id,
      attempt: previous?.attempt ?? 1,
      actionSha: projectBlob,
      commit,
      policies: s.identity ? [s.identity.policy] : [],
      seenAt: now().getTime(),
      dispatcher: s.dispatcher,
    };
  }

  /** Why the approval rule refuses the code a fresh run of `t` would run at `commit`; undefined when approved or no rule is set. */
  async function unapproved(t: IssueTrigger, commit: string, projectBlob: string): Promise<string | undefined> {
    const verdict = await deps.approve?.(commit, { path: t.projectToml, sha: projectBlob }, { formula: t.formula });
    return verdict && !verdict.ok ? `unapproved at ${commit.slice(0, 12)}: ${verdict.problem}` : undefined;
  }

  /** What this instance would do with one labelled issue's run; undefined when the label has no add event. */
  async function decideFor(t: IssueTrigger, issue: ForgeIssue, atTip: Set<string>): Promise<{ id: string; decision: IssueDecision; entry?: LedgerEntry } | undefined> {
    const event = await deps.forge.labelAdded(t.repo, issue.number, t.label);
    if (!event) return undefined;
    const id = issueRunId(t, issue.number, event);
    const entry = await deps.ledger.get(id);
    const ownerSeen = entry && entry.owner !== deps.me ? await deps.ledger.lastSeen(entry.owner) : undefined;
    return { id, entry, decision: decideIssueRun(entry, atTip.has(issueResultPath(s.dir, id)), deps.me, ownerSeen, now(), s.leaseMs) };
  }

  /** One labelled issue: start, resume, re-attach, push or follow up its run, or leave it. */
  async function consider(t: IssueTrigger, issue: ForgeIssue, commit: string, atTip: Set<string>): Promise<void> {
    const decided = await decideFor(t, issue, atTip);
    if (!decided) return;
    const { id, decision: d } = decided;
    if (done.has(id) || inFlight.has(id) || finishing.has(id) || (notBefore.get(id) ?? 0) > now().getTime()) return;
    if (d.kind === "skip") return deps.events.emit("issue:waiting", { id, reason: d.wait.reason });
    if (d.kind === "follow_up") {
      const text = await deps.repo.readFile(commit, issueResultPath(s.dir, id));
      return followUp({ trigger: t, issue: issue.number, result: JSON.parse(text!.toString("utf8")) as ActionResult }, id);
    }
    if (d.kind === "push") {
      const problem = storedResultProblem(d.entry);
      if (!problem) {
        // the lifecycle's own push of a stored result: queued, then recorded once at the tip (as the action loop's)
        const result = JSON.parse(d.entry.result!) as ActionResult;
        const a = { ...attemptOf(id, d.entry.commit, d.entry.actionSha, d.entry), jobId: d.entry.jobId };
        await runAttempt(beginPushFromLedger(a, result), { entry: d.entry }, attemptDepsFor(t, issue.number, id, deps.log.child({ run: id })));
        return;
      }
      deps.log.error({ run: id, problem }, "ledger entry does not hold up: running the issue run afresh");
    }
    if (inFlight.size >= s.maxInFlight) return deps.events.emit("issue:waiting", { id, reason: `${inFlight.size} issue runs in flight (issues.max_in_flight)` });
    const projectBlob = await blobOf(commit, t.projectToml);
    if (!projectBlob) return deps.events.emit("issue:waiting", { id, reason: `the project file ${t.projectToml} is not in the ops repo at ${commit.slice(0, 12)}` });
    if (d.kind === "reattach") {
      const a = { ...attemptOf(id, d.entry.commit, d.entry.actionSha, d.entry), jobId: d.entry.jobId!, accessor: d.entry.accessor, dispatchedAt: d.entry.dispatchedAt, from: d.entry.owner };
      return start(t, issue, id, beginReattach(a), d.entry.actionSha, d.entry);
    }
    // the code a sidecar runs with the bot's token is approved as an action's is: a push without it starts nothing
    const problem = await unapproved(t, commit, projectBlob);
    if (problem) return deps.events.emit("issue:waiting", { id, reason: problem });
    if (d.kind === "resume") return start(t, issue, id, beginClaim(attemptOf(id, commit, projectBlob, d.entry), true), projectBlob, d.entry);
    if (d.kind === "afresh" || d.kind === "push") {
      const next = { ...d.entry, state: "claimed" as const, attempt: d.entry.attempt + 1, jobId: undefined, accessor: undefined, dispatchedAt: undefined, result: undefined };
      return start(t, issue, id, beginClaim(attemptOf(id, commit, projectBlob, next), true), projectBlob, next);
    }
    // new: the issue says it is being worked on before the claim (idempotent: a replica that loses the claim adds the same label)
    if (s.progressLabel) await deps.forge.addLabels(t.repo, issue.number, [s.progressLabel]);
    start(t, issue, id, beginClaim(attemptOf(id, commit, projectBlob, undefined), false), projectBlob, undefined);
  }

  async function passAt(commit: string): Promise<void> {
    lastPass = now().getTime();
    woken = false;
    const results = new Map<string, Set<string>>();
    for (const t of triggers) {
      try {
        const atTip = results.get(t.project) ?? (await resultsAt(commit, t.project));
        results.set(t.project, atTip);
        for (const issue of await deps.forge.openIssuesWithLabel(t.repo, t.label)) {
          try {
            await consider(t, issue, commit, atTip);
          } catch (err) {
            failed(t.repo, err);
          }
        }
      } catch (err) {
        failed(t.repo, err);
      }
    }
  }

  return {
    /**
     * What an issue pass at `commit` would do with each labelled issue (`plan`): the run's key and
     * the decision, the sidecar's formula and project file. Starts, labels and writes nothing.
     */
    async survey(commit: string): Promise<IssuePlanRow[]> {
      const out: IssuePlanRow[] = [];
      for (const t of triggers) {
        const atTip = await resultsAt(commit, t.project);
        const projectBlob = await blobOf(commit, t.projectToml);
        for (const issue of await deps.forge.openIssuesWithLabel(t.repo, t.label)) {
          const decided = await decideFor(t, issue, atTip);
          if (!decided) continue;
          const fresh = decided.decision.kind === "new" || decided.decision.kind === "resume" || decided.decision.kind === "afresh";
          const problem = fresh && projectBlob ? await unapproved(t, commit, projectBlob) : undefined;
          out.push({ trigger: t, issue, id: decided.id, decision: decided.decision, ...(projectBlob ? { projectBlob } : {}), ...(problem ? { unapproved: problem } : {}) });
        }
      }
      return out;
    },
    /**
     * An issue pass at the ops repo's `commit` (after each pass of the action loop): at most once
     * per poll unless an issue webhook woke it or a run of its own ended. One at a time.
     */
    pass(commit: string): Promise<void> {
      if (triggers.length === 0) return Promise.resolve();
      if (running) {
        again = commit;
        return running;
      }
      if (!woken && now().getTime() - lastPass < s.pollMs) return Promise.resolve();
      running = passAt(commit).finally(() => {
        running = undefined;
        if (again !== undefined) {
          const next = again;
          again = undefined;
          void this.pass(next);
        }
      });
      return running;
    },
    /** the next pass lists the issues at once (a signed issue webhook) */
    wake(): void {
      woken = true;
    },
    /** results the action loop pushed: the runs among them are recorded, their issues told */
    async pushed(ids: readonly string[]): Promise<void> {
      for (const id of ids) {
        const f = finishing.get(id);
        if (!f) continue;
        finishing.delete(id);
        await f.record?.().catch((err: unknown) => deps.log.warn({ err, run: id }, "could not mark the issue run recorded"));
        // a failure leaves the trigger label on: the next pass finds the result at the tip and follows up again
        await followUp(f, id).catch((err: unknown) => failed(f.trigger.repo, err));
        woken = true;
      }
    },
    inFlightIds: () => [...inFlight.keys()],
    /** every run in flight has ended (a stopping dispatcher leaves the children for a re-attach) */
    settle: () => Promise.all([...inFlight.values()]).then(() => undefined),
  };
}

export type IssueLoop = ReturnType<typeof createIssueLoop>;

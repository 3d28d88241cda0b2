// Pure decisions of the issue loop: which labelled issue starts which sidecar run (its key is the
// issue, the label and the label's event: a label added again is a new run), what the run sends,
// the outcome the issue gets, and the one comment it carries.
import type { Action, ActionFile } from "../actions/schema.js";
import { parseOutcomeLine } from "../contract.js";
import type { ForgeIssue, LabelEvent, LedgerEntry } from "./ports.js";
import { resultPath, type ActionResult } from "./result.js";
import { decideTakeover, type Takeover } from "./takeover.js";

/** One row of the config's table: in `repo`, an open issue labelled `label` starts `formula` for the project. */
export interface IssueTrigger {
  /** the project's short name: the folder of its runs' results (vault/issues/<project>/) */
  project: string;
  /** the project file in the ops repo (the sidecar's project_toml) */
  projectToml: string;
  /** owner/name of the project's repo on the forge, where its issues live */
  repo: string;
  label: string;
  formula: string;
  /** outcome labels the formula may give: the first on success, the second on failure, any on its verdict */
  outcomes: readonly [string, string, ...string[]];
}

/** The project table of the config ([[issues.projects]]). */
export interface IssueProject {
  name: string;
  projectToml: string;
  repo: string;
  /** label → sidecar formula */
  labels: Record<string, string>;
  /** formula → its outcome labels (default: OUTCOMES, or <formula>-succeeded / <formula>-failed) */
  outcomes?: Record<string, string[]>;
}

/** The cutover plan's formulas and the labels their outcome is told by: success first, failure second. */
export const OUTCOMES: Readonly<Record<string, readonly [string, string, ...string[]]>> = {
  reproduce: ["reproduced", "not-reproduced"],
  triage: ["triaged", "needs-info"],
  verify: ["verified", "not-verified"],
};

export function triggersOf(projects: readonly IssueProject[]): IssueTrigger[] {
  return projects.flatMap((p) =>
    Object.entries(p.labels).map(([label, formula]) => {
      const own = p.outcomes?.[formula];
      const outcomes = own && own.length >= 2 ? (own as unknown as IssueTrigger["outcomes"]) : (OUTCOMES[formula] ?? [`${formula}-succeeded`, `${formula}-failed`]);
      return { project: p.name, projectToml: p.projectToml, repo: p.repo, label, formula, outcomes };
    }),
  );
}

/** A label as a path and id segment: lower-case letters, digits and dashes (the event id keeps keys apart). */
function slug(label: string): string {
  return (
    label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 32) || "label"
  );
}

/**
 * A run's key, as ledger id, job meta action_id and result path under the issues folder:
 * `<project>/<issue>-<label>-<label event>`. Action ids hold no "/": the two never collide, and
 * the ledger keeps issue runs under a prefix of their own.
 */
export function issueRunId(t: Pick<IssueTrigger, "project" | "label">, issue: number, event: LabelEvent): string {
  return `${t.project}/${issue}-${slug(t.label)}-${event.id}`;
}

/** Where a run's result lands: vault/issues/<project>/<issue>-<label>-<event>.result.json. */
export function issueResultPath(issuesDir: string, id: string): string {
  return resultPath(issuesDir, id);
}

/** The sidecar run as an action (never read from a file: the dispatcher makes it), checked at `projectBlob`. */
export function issueAction(t: IssueTrigger, issue: ForgeIssue, id: string, projectBlob: string, timeoutMinutes?: number): { file: ActionFile; action: Action } {
  return {
    // the runner checks the project file's blob at the commit, as it checks an action file's
    file: { path: t.projectToml, id, sha: projectBlob },
    action: {
      id,
      formula: t.formula,
      context: `issue #${issue.number} of ${t.repo}: ${issue.title}`.slice(0, 500),
      secrets: [],
      mounts: [],
      kind: "sidecar",
      issue: issue.number,
      project: t.projectToml,
      ...(timeoutMinutes ? { timeout_minutes: timeoutMinutes } : {}),
    },
  };
}

/** What this instance does with a labelled issue, given the run's ledger entry and whether its result is at the tip. */
export type IssueDecision = Takeover | { kind: "follow_up"; entry: LedgerEntry };

export function decideIssueRun(entry: LedgerEntry | undefined, resultAtTip: boolean, me: string, ownerSeen: Date | undefined, now: Date, leaseMs: number): IssueDecision {
  // the result is pushed: only the issue's labels and comment may be missing (a crash in between)
  if (resultAtTip) return entry ? { kind: "follow_up", entry } : { kind: "skip", wait: { kind: "recorded", reason: "result at the tip" } };
  return decideTakeover(entry, me, ownerSeen, now, leaseMs);
}

/** The stdout part of a result's logs (combineLogs writes stderr after a marker). */
function stdoutOf(logs: string): string {
  if (logs.startsWith("[stderr]\n")) return "";
  const at = logs.lastIndexOf("\n[stderr]\n");
  return at < 0 ? logs : logs.slice(0, at);
}

/**
 * The outcome label: the formula's verdict when it wrote one of its outcomes, else the first
 * outcome on success and the second otherwise. A verdict not among them is not a label.
 */
export function outcomeOf(t: Pick<IssueTrigger, "outcomes">, result: Pick<ActionResult, "status" | "logs">): { label: string; verdict?: string } {
  const verdict = stdoutOf(result.logs).trimEnd().split("\n").reverse().map(parseOutcomeLine).find((v) => v !== undefined);
  if (verdict && t.outcomes.includes(verdict)) return { label: verdict, verdict };
  return { label: result.status === "succeeded" ? t.outcomes[0] : t.outcomes[1], ...(verdict ? { verdict } : {}) };
}

/**
 * The labels the issue ends with: the outcome on, the progress and trigger labels off, in this
 * order: while the trigger label is on, a follow-up cut short is found and done again.
 */
export function labelsAfter(t: Pick<IssueTrigger, "label">, progressLabel: string, outcome: string): { remove: string[]; add: string[] } {
  return { remove: [progressLabel, t.label].filter((l) => l && l !== outcome), add: [outcome] };
}

export function commentMarker(id: string): string {
  return `<!-- nomad-dispatcher:issue-run:${id} -->`;
}

/** The one comment of a run: what ran, the outcome, where the result is, the log tail (masked by the runner, as in the result). */
export function issueComment(t: IssueTrigger, id: string, result: ActionResult, outcome: string, path: string, tailChars = 2000): string {
  const logs = result.logs.slice(-tailChars);
  return [
    commentMarker(id),
    `**${t.formula}** ran for this issue (label \`${t.label}\`): **${outcome}**`,
    "",
    "| | |",
    "|---|---|",
    `| status | ${result.status} |`,
    `| exit code | ${result.exit_code} |`,
    `| attempts | ${result.attempts} |`,
    `| result | \`${path}\` |`,
    ...(result.job_id ? [`| job | \`${result.job_id}\` |`] : []),
    "",
    "```",
    logs.replaceAll("```", "'''"),
    "```",
  ].join("\n");
}

/** What an issue pass would do with one labelled issue (`plan`). */
export interface IssuePlanRow {
  trigger: IssueTrigger;
  issue: ForgeIssue;
  id: string;
  decision: IssueDecision;
  projectBlob?: string;
  /** why the approval rule refuses a fresh run's code */
  unapproved?: string;
}

/** `plan`'s lines for the issue runs a pass would start, take over, follow up, or leave. */
export function formatIssuePlan(rows: readonly IssuePlanRow[], policies: readonly string[]): string {
  if (rows.length === 0) return "issue runs: no open issue carries a trigger label\n";
  const lines = rows.map(({ trigger: t, issue, id, decision: d, projectBlob, unapproved }) => {
    const head = `  ${t.repo}#${issue.number} (${t.label}) ${id}:`;
    if (unapproved) return `${head} wait: ${unapproved}`;
    if (d.kind === "skip") return `${head} wait: ${d.wait.reason}`;
    if (d.kind === "follow_up") return `${head} follow up: the result is at the tip; the outcome label and comment are set again`;
    if (!projectBlob) return `${head} wait: the project file ${t.projectToml} is not in the ops repo`;
    const verb = d.kind === "new" ? "start" : d.kind === "reattach" ? "re-attach to" : d.kind === "push" ? "push the stored result of" : d.kind === "resume" ? "resume" : "run afresh";
    return `${head} ${verb} sidecar ${t.formula} (meta issue_number=${issue.number} project_toml=${t.projectToml}; policies ${policies.length > 0 ? policies.join(", ") : "none: no token"})`;
  });
  return ["issue runs:", ...lines, ""].join("\n");
}

// What the forge is told about an action, decided here and sent by forge-report.ts: a commit
// status on the commit that brought the action file (pending when dispatched, then the result's),
// and, when that commit is a pull request's merge, one comment on the pull request with the result.
import type { ForgeStatus, ForgeStatusState } from "./ports.js";
import type { ActionResult, ResultStatus } from "./result.js";
import { tail } from "./redact.js";

/** One report waiting to be sent; a newer one for the same action replaces it. */
export interface ForgeReport {
  id: string;
  /** the commit that last changed the action file on the branch (its first-parent history) */
  commit: string;
  status: ForgeStatus;
  /** the pull request comment's body (results only) */
  comment?: string;
  /** what has been sent of this report already (a retry sends only the rest) */
  sent?: { status?: boolean; comment?: boolean };
  /** when the report was made (ISO) */
  queuedAt: string;
  /** failed tries so far, and the last error's message */
  tries?: number;
  lastError?: string;
}

/** the status a result gives its commit: the action's own failure is `failure`, an allocation Nomad lost `error` */
const STATE_OF: Readonly<Record<ResultStatus, ForgeStatusState>> = {
  succeeded: "success",
  failed: "failure",
  timeout: "failure",
  invalid: "failure",
  rejected: "failure",
  lost: "error",
};

export function forgeStateOf(status: ResultStatus): ForgeStatusState {
  return STATE_OF[status];
}

export function forgeContext(id: string): string {
  return `dispatcher/${id}`;
}

/** the marker that finds our comment for `id` again (updated, never duplicated) */
export function commentMarker(id: string): string {
  return `<!-- nomad-dispatcher:result:${id} -->`;
}

/** Gitea keeps a status description of up to 255 characters; one short line reads best */
const DESCRIPTION_MAX = 140;

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length <= DESCRIPTION_MAX ? line : `${line.slice(0, DESCRIPTION_MAX - 1)}…`;
}

function seconds(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : `${(ms / 1000).toFixed(1)} s`;
}

export function pendingReport(id: string, commit: string, attempt: number, now: Date): ForgeReport {
  return {
    id,
    commit,
    status: { state: "pending", context: forgeContext(id), description: oneLine(`dispatched (attempt ${attempt})`) },
    queuedAt: now.toISOString(),
  };
}

function describe(r: ActionResult): string {
  if (r.error && (r.status === "invalid" || r.status === "rejected")) return `${r.status} (${r.error.class}): ${r.error.message}`;
  const parts = [`${r.status}: exit ${r.exit_code}`];
  const took = seconds(r.duration_ms);
  if (took) parts.push(`in ${took}`);
  parts.push(`attempt${r.attempts === 1 ? "" : "s"} ${r.attempts}`);
  if (r.error) parts.push(`(${r.error.class})`);
  return parts.join(", ");
}

/** lines of the log tail a comment shows */
const COMMENT_TAIL_BYTES = 3000;

/** The pull request comment: status, exit code, duration, attempts and the (already masked) log tail. */
export function resultComment(r: ActionResult): string {
  const logs = tail(r.logs, COMMENT_TAIL_BYTES);
  // a fence longer than any run of backticks in the log: the log cannot close it
  const longest = Math.max(2, ...[...logs.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const rows = [
    ["status", r.status],
    ["exit code", String(r.exit_code)],
    ["duration", seconds(r.duration_ms) ?? "-"],
    ["attempts", String(r.attempts)],
    ...(r.error ? [["error", `${r.error.class}: ${oneLine(r.error.message)}`]] : []),
    ["commit", r.commit],
  ];
  return [
    commentMarker(r.id),
    `**nomad-dispatcher**: \`${r.id}\` ${r.status}`,
    "",
    "| | |",
    "|---|---|",
    ...rows.map(([k, v]) => `| ${k} | ${v!.replace(/\|/g, "\\|")} |`),
    "",
    "Log tail (secrets masked):",
    "",
    fence,
    logs,
    fence,
    "",
  ].join("\n");
}

export function resultReport(r: ActionResult, commit: string, now: Date): ForgeReport {
  return {
    id: r.id,
    commit,
    status: { state: forgeStateOf(r.status), context: forgeContext(r.id), description: oneLine(describe(r)) },
    comment: resultComment(r),
    queuedAt: now.toISOString(),
  };
}

/**
 * A new report for an action takes the place of the one queued: a result replaces its pending
 * status (never sent twice, never sent after the result), and a pending report never replaces a
 * result that is still unsent (a retry's pending comes after a result only on a new attempt).
 */
export function supersedes(next: ForgeReport, queued: ForgeReport | undefined): boolean {
  if (!queued) return true;
  if (queued.status.state !== "pending" && next.status.state === "pending" && queued.commit === next.commit) return false;
  return true;
}

/** What `status` shows of the reports the forge has not taken yet ("" when none). */
export function formatUnsent(reports: readonly ForgeReport[]): string {
  if (reports.length === 0) return "";
  const lines = reports.map((r) => {
    const what = [r.status.state, ...(r.comment !== undefined && !r.sent?.comment ? ["+ comment"] : [])].join(" ");
    const tried = r.tries ? `, ${r.tries} ${r.tries === 1 ? "try" : "tries"}: ${oneLine(r.lastError ?? "")}` : "";
    return `  ${r.id}  ${what} on ${r.commit.slice(0, 12)} since ${r.queuedAt}${tried}`;
  });
  return `forge: ${reports.length} ${reports.length === 1 ? "report" : "reports"} not sent yet (retried by the daemon):\n${lines.join("\n")}\n`;
}

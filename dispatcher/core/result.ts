import type { FailureClass } from "../errors.js";

/** Every status a result can have: the one list (readers' schemas derive from it). */
export const RESULT_STATUSES = ["succeeded", "failed", "timeout", "invalid", "rejected", "lost"] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];
export type FailedStatus = Exclude<ResultStatus, "succeeded">;

/** The status a failure of each class records: the one place a class becomes a status. */
const STATUS_OF_CLASS: Readonly<Record<FailureClass, FailedStatus>> = {
  invalid: "invalid",
  rejected: "rejected",
  not_allowed: "rejected",
  unapproved: "rejected",
  timeout: "timeout",
  lost: "lost",
  secret_unknown: "failed",
  secret_missing: "failed",
  rate_limited: "failed",
  auth: "failed",
  infra: "failed",
  agent: "failed",
  tampered: "failed",
  parent_changed: "failed",
  config: "failed",
};

export function statusOf(cls: FailureClass): FailedStatus {
  return STATUS_OF_CLASS[cls];
}

/** vault/actions/<id>.result.json: the disinto fields first, then the dispatcher's. */
export interface ActionResult {
  id: string;
  exit_code: number;
  timestamp: string;
  logs: string;
  status: ResultStatus;
  error?: { class: FailureClass; message: string };
  attempts: number;
  action_sha: string;
  commit: string;
  job_id?: string;
  alloc_id?: string;
  node?: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  policies: string[];
  token_accessor?: string;
  log_file?: string;
  /** the allowed signers who approved the action's content (with require_signed) */
  approved_by?: string[];
  dispatcher: { version: string; instance: string };
}

export interface ResultBase {
  id: string;
  actionSha: string;
  commit: string;
  attempts: number;
  approvedBy?: string[];
  dispatcher: { version: string; instance: string };
}

/** Exit code recorded when no process ran or its code is unknown (disinto uses 1 for failures). */
const NO_EXIT = -1;

/** A result for an action that did not run (or not to the end): its status follows from `cls`. */
export function buildRefusal(base: ResultBase, now: Date, cls: FailureClass, message: string): ActionResult {
  const status = statusOf(cls);
  return {
    id: base.id,
    exit_code: NO_EXIT,
    timestamp: now.toISOString(),
    logs: message,
    status,
    error: { class: cls, message },
    attempts: base.attempts,
    action_sha: base.actionSha,
    commit: base.commit,
    policies: [],
    dispatcher: base.dispatcher,
  };
}

export interface RunOutcome {
  jobId: string;
  allocId?: string;
  node?: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  status: Exclude<ResultStatus, "invalid" | "rejected">;
  error?: { class: FailureClass; message: string };
  policies: string[];
  tokenAccessor?: string;
}

export function buildRunResult(base: ResultBase, now: Date, run: RunOutcome, logs: string, logFile?: string): ActionResult {
  const started = run.startedAt ? Date.parse(run.startedAt) : NaN;
  const finished = run.finishedAt ? Date.parse(run.finishedAt) : NaN;
  return {
    id: base.id,
    exit_code: run.exitCode ?? NO_EXIT,
    timestamp: now.toISOString(),
    logs,
    status: run.status,
    ...(run.error ? { error: run.error } : {}),
    attempts: base.attempts,
    action_sha: base.actionSha,
    commit: base.commit,
    job_id: run.jobId,
    alloc_id: run.allocId,
    node: run.node,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    duration_ms: Number.isFinite(started) && Number.isFinite(finished) ? finished - started : undefined,
    policies: run.policies,
    token_accessor: run.tokenAccessor,
    ...(logFile ? { log_file: logFile } : {}),
    ...(base.approvedBy ? { approved_by: base.approvedBy } : {}),
    dispatcher: base.dispatcher,
  };
}

export function resultPath(actionsDir: string, id: string): string {
  return `${actionsDir}/${id}.result.json`;
}

export function logPath(actionsDir: string, id: string): string {
  return `${actionsDir}/${id}.log`;
}

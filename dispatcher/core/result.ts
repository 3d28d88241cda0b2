import type { FailureClass } from "../errors.js";

export type ResultStatus = "succeeded" | "failed" | "timeout" | "invalid" | "rejected" | "lost";

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

export function buildRefusal(base: ResultBase, now: Date, status: "invalid" | "rejected" | "failed", cls: FailureClass, message: string): ActionResult {
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

import { createHash } from "node:crypto";
import type { Action, ActionFile } from "../actions/schema.js";
import { buildMeta } from "../runner/contract.js";
import { policiesFor } from "./decide.js";

export interface Execution {
  file: ActionFile;
  action: Action;
  commit: string;
  attempt: number;
  /** host path of each mount alias the cluster offers (the runner exposes the requested ones) */
  mountPaths: ReadonlyMap<string, string>;
}

export interface RequestSettings {
  runnerJob: string;
  sidecarJob: string;
  opsRemote: string;
  kvMount: string;
  defaultTimeoutMinutes: number;
  tokenGraceSeconds: number;
}

/** Everything about one dispatch that is decided before it happens; `plan` prints it, `execute` does it. */
export interface DispatchSpec {
  /** parameterized parent job */
  job: string;
  /** the task inside it, whose logs are the action's output */
  task: "runner" | "sidecar";
  meta: Record<string, string>;
  /** runner-<name> policies of the wrapped token; empty: no token at all */
  policies: string[];
  tokenTtlSeconds: number;
  timeoutMinutes: number;
  idempotencyToken: string;
}

/** Nomad's second fence: the same (action, content, attempt) never makes a second child. */
export function idempotencyToken(id: string, sha: string, attempt: number): string {
  return createHash("sha256").update(`${id}\0${sha}\0${attempt}`).digest("hex").slice(0, 32);
}

/** Pure: the dispatch an execution makes (job, meta, token scope) from the action and settings. */
export function buildDispatchSpec(ex: Execution, s: RequestSettings): DispatchSpec {
  const { action } = ex;
  const timeoutMinutes = action.timeout_minutes ?? s.defaultTimeoutMinutes;
  const sidecar = action.kind === "sidecar";
  const mountMeta = Object.fromEntries(action.mounts.map((m) => [`mount_path_${m}`, ex.mountPaths.get(m)]));
  return {
    job: sidecar ? s.sidecarJob : s.runnerJob,
    task: sidecar ? "sidecar" : "runner",
    meta: buildMeta(
      {
        actionId: action.id,
        actionSha: ex.file.sha,
        actionPath: ex.file.path,
        commit: ex.commit,
        formula: action.formula,
        opsRepo: s.opsRemote,
        secrets: action.secrets,
        mounts: action.mounts,
        kvMount: s.kvMount,
      },
      {
        attempt: String(ex.attempt),
        model: action.model,
        tools_csv: action.tools?.join(","),
        blast_radius: action.blast_radius,
        dispatch_mode: action.dispatch_mode,
        timeout_minutes: String(timeoutMinutes),
        issue_number: action.issue === undefined ? undefined : String(action.issue),
        project_toml: action.project,
        ...mountMeta,
      },
    ),
    policies: policiesFor(action.secrets),
    tokenTtlSeconds: timeoutMinutes * 60 + s.tokenGraceSeconds,
    timeoutMinutes,
    idempotencyToken: idempotencyToken(action.id, ex.file.sha, ex.attempt),
  };
}

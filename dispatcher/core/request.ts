import { createHash } from "node:crypto";
import { allMountSets, type Action, type ActionFile, type Mount } from "../actions/schema.js";
import { RUNNER_TASK, buildMeta, layoutMeta, type BotIdentity, type RunnerLayout } from "../contract.js";
import { policiesFor } from "./catalog.js";

export interface Execution {
  file: ActionFile;
  action: Action;
  commit: string;
  attempt: number;
  /** a sidecar run's bot identity (issue runs only, never an action file's): its policy joins the token */
  identity?: SidecarIdentity;
}

/** The bot secret a sidecar reads and the Vault policy that reads that one path (bootstrap-vault.sh makes it). */
export interface SidecarIdentity {
  policy: string;
  bot: BotIdentity;
}

export interface RequestSettings {
  runnerJob: string;
  sidecarJob: string;
  /** where the runner fetches the action's commit (read-only; never the push credential) */
  runnerRemote: string;
  kvMount: string;
  defaultTimeoutMinutes: number;
  tokenGraceSeconds: number;
  /** the parents' mount sets (mount_sets, or every subset of the aliases); absent: every subset of ssh/gpg/sops */
  mountSets?: readonly (readonly string[])[];
  /** the secret path template, the formulas' repository, the formula's arguments (absent: the default layout) */
  layout?: RunnerLayout;
}

/** Everything about one dispatch that is decided before it happens; `plan` prints it, `execute` does it. */
export interface DispatchSpec {
  /** parameterized parent job: the kind's base job for the action's mount set */
  job: string;
  /** the task inside it, whose logs are the action's output */
  task: string;
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

/**
 * The parent for a class and mount set: its node pool and volumes are fixed at registration, so
 * one parent per pair (runner, runner-gpg-ssh, runner.big, runner.big-ssh, …).
 */
export function parentJobFor(base: string, mounts: readonly Mount[], cls?: string): string {
  const set = [...new Set(mounts)].sort();
  const classed = cls ? `${base}.${cls}` : base;
  return set.length === 0 ? classed : `${classed}-${set.join("-")}`;
}

/**
 * Every parent of a kind, one per class (the default first) and mount set (what
 * scripts/register-jobs.sh registers): `sets` from the config (mount_sets), every subset of
 * ssh/gpg/sops by default.
 */
export function parentJobsOf(base: string, classes: readonly string[] = [], sets: readonly (readonly string[])[] = allMountSets()): string[] {
  const all = sets.some((s) => s.length === 0) ? sets : [[], ...sets];
  return [undefined, ...classes].flatMap((cls) => all.map((set) => parentJobFor(base, set, cls)));
}

/** Pure: the dispatch an execution makes (job, meta, token scope) from the action and settings. */
export function buildDispatchSpec(ex: Execution, s: RequestSettings): DispatchSpec {
  const { action } = ex;
  const timeoutMinutes = action.timeout_minutes ?? s.defaultTimeoutMinutes;
  const sidecar = action.kind === "sidecar";
  return {
    job: parentJobFor(sidecar ? s.sidecarJob : s.runnerJob, action.mounts, action.class),
    task: RUNNER_TASK,
    meta: buildMeta(
      {
        actionId: action.id,
        actionSha: ex.file.sha,
        actionPath: ex.file.path,
        commit: ex.commit,
        formula: action.formula,
        opsRepo: s.runnerRemote,
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
        ...(s.layout ? layoutMeta(s.layout) : {}),
      },
    ),
    policies: [...policiesFor(action.secrets), ...(ex.identity ? [ex.identity.policy] : [])],
    tokenTtlSeconds: timeoutMinutes * 60 + s.tokenGraceSeconds,
    timeoutMinutes,
    idempotencyToken: idempotencyToken(action.id, ex.file.sha, ex.attempt),
  };
}

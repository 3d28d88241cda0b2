import { retryTable, type FailureClass } from "../errors.js";

const FAILURE_CLASSES = Object.keys(retryTable) as FailureClass[];

// What the dispatcher and the runner agree on: the job meta, the payload, and how the runner
// reports a failure of its own (as opposed to the formula's exit code).

/** The task of every runner/sidecar parent (jobspecs/runner.nomad.hcl): its logs are the action's output. */
export const RUNNER_TASK = "runner";

/** The runner exits with this code when it fails before or around the formula. */
export const RUNNER_ERROR_EXIT = 90;
/** … and with this one when it killed the formula at the action's deadline (as timeout(1) does). */
export const RUNNER_TIMEOUT_EXIT = 124;
const ERROR_LINE = /^\[runner\] error ([a-z_]+): (.*)$/m;

export interface RunnerMeta {
  actionId: string;
  actionSha: string;
  actionPath: string;
  commit: string;
  formula: string;
  opsRepo: string;
  secrets: string[];
  mounts: string[];
  /** where each requested mount is: <MOUNT_ROOT>/<alias> (read-only volume mounts under exec) */
  mountPaths: Record<string, string>;
  kvMount: string;
  vaultAddr: string;
  rolePath: string;
  /** the formula is killed this long after the runner starts it (meta timeout_minutes) */
  timeoutMs: number;
}

/** The meta the dispatcher sets on a dispatch (values are strings; lists are CSV). */
export function buildMeta(m: Omit<RunnerMeta, "vaultAddr" | "rolePath" | "mountPaths" | "timeoutMs">, extra: Record<string, string | undefined>): Record<string, string> {
  const meta: Record<string, string | undefined> = {
    action_id: m.actionId,
    action_sha: m.actionSha,
    action_path: m.actionPath,
    commit: m.commit,
    formula: m.formula,
    ops_repo: m.opsRepo,
    secrets_csv: m.secrets.join(","),
    mounts_csv: m.mounts.join(","),
    kv_mount: m.kvMount,
    ...extra,
  };
  return Object.fromEntries(Object.entries(meta).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
}

export function readRunnerMeta(env: NodeJS.ProcessEnv): RunnerMeta {
  const get = (key: string): string => {
    const v = env[`NOMAD_META_${key}`];
    if (v === undefined || v === "") throw new Error(`job meta ${key} is missing (NOMAD_META_${key})`);
    return v;
  };
  const list = (key: string): string[] => (env[`NOMAD_META_${key}`] ?? "").split(",").filter(Boolean);
  const vaultAddr = env.VAULT_ADDR;
  if (list("secrets_csv").length > 0 && !vaultAddr) throw new Error("VAULT_ADDR is not set in the job's env");
  return {
    actionId: get("action_id"),
    actionSha: get("action_sha"),
    actionPath: get("action_path"),
    commit: get("commit"),
    formula: get("formula"),
    opsRepo: get("ops_repo"),
    secrets: list("secrets_csv"),
    mounts: list("mounts_csv"),
    mountPaths: Object.fromEntries(list("mounts_csv").map((m) => [m, `${env.MOUNT_ROOT || "/mnt"}/${m}`])),
    kvMount: env.NOMAD_META_kv_mount || "kv",
    vaultAddr: vaultAddr ?? "",
    rolePath: `auth/token/create/${env.DISPATCHER_RUNNER_ROLE || "dispatcher-runner"}`,
    timeoutMs: timeoutMinutesOf(env.NOMAD_META_timeout_minutes) * 60_000,
  };
}

/** The dispatcher always sends timeout_minutes; a child dispatched without it gets a day. */
function timeoutMinutesOf(text: string | undefined): number {
  if (text === undefined || text === "") return 24 * 60;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`job meta timeout_minutes must be a positive whole number of minutes, got "${text}"`);
  return n;
}

/** One line, always: the dispatcher reads the last line of stderr. */
export function formatRunnerError(cls: FailureClass, message: string): string {
  return `[runner] error ${cls}: ${message.replace(/\s*\n\s*/g, " | ")}`;
}

/** The runner's own failure, if the task's stderr ends with one. */
export function parseRunnerError(exitCode: number, stderr: string): { class: FailureClass; message: string } | undefined {
  if (exitCode !== RUNNER_ERROR_EXIT && exitCode !== RUNNER_TIMEOUT_EXIT) return undefined;
  const lines = stderr.trimEnd().split("\n");
  const m = ERROR_LINE.exec(lines.at(-1) ?? "");
  if (!m || !FAILURE_CLASSES.includes(m[1] as FailureClass)) return undefined;
  return { class: m[1] as FailureClass, message: m[2]! };
}

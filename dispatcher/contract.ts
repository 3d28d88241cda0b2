import { randomBytes, timingSafeEqual } from "node:crypto";
import { retryTable, type FailureClass } from "./errors.js";

const FAILURE_CLASSES = Object.keys(retryTable) as FailureClass[];

// What the dispatcher and the runner agree on: the job meta, the payload, and how the runner
// reports a failure of its own (as opposed to the formula's exit code).

/** The task of every runner/sidecar parent (jobspecs/runner.nomad.hcl): its logs are the action's output. */
export const RUNNER_TASK = "runner";

/** The runner exits with this code when it fails before or around the formula. */
export const RUNNER_ERROR_EXIT = 90;
/** … and with this one when it killed the formula at the action's deadline (as timeout(1) does). */
export const RUNNER_TIMEOUT_EXIT = 124;
const ERROR_LINE = /^\[runner\] error ([a-z_]+): (.*) \[verdict ([0-9a-f]{32})\]$/;

/**
 * The dispatch payload (the task's `wrap.token` file, which the runner deletes before the formula
 * starts): the verdict nonce, and the response-wrapped token when the action has secrets. Only
 * the dispatcher (read-job in `dispatch`) and the runner ever see it; the runner signs its own
 * failure line with the nonce, so a formula that prints one is not believed.
 */
export interface RunnerPayload {
  nonce?: string;
  wrappingToken?: string;
  /** a sidecar's bot identity: which secret its token may read, and the variable the formula gets it in */
  bot?: BotIdentity;
}

/**
 * The bot secret a sidecar run reads with its wrapped token (scoped to that path alone by the
 * bot policy): a KV v2 data path (`kv/data/disinto/bots/dev`), its field, and the formula's
 * variable. It travels in the payload, beside the token; the value never in meta or env of the job.
 */
export interface BotIdentity {
  path: string;
  field: string;
  env: string;
}

const BOT_PATH = /^[a-zA-Z0-9_-]+\/data\/[a-zA-Z0-9_./-]+$/;
const BOT_ENV = /^[A-Z][A-Z0-9_]*$/;

function botOf(v: unknown): BotIdentity | undefined {
  const o = (v ?? {}) as Record<string, unknown>;
  const { path, field, env } = o;
  if (typeof path !== "string" || typeof field !== "string" || typeof env !== "string") return undefined;
  if (!BOT_PATH.test(path) || path.includes("..") || !field || !BOT_ENV.test(env)) return undefined;
  return { path, field, env };
}

export function newVerdictNonce(): string {
  return randomBytes(16).toString("hex");
}

export function encodePayload(p: RunnerPayload): string {
  return JSON.stringify({ verdict: p.nonce, wrap: p.wrappingToken, ...(p.bot ? { bot: p.bot } : {}) });
}

/** A payload of this format, or a bare wrapping token (a child dispatched before it: no nonce). */
export function decodePayload(text: string | undefined): RunnerPayload {
  const t = text?.trim() ?? "";
  if (!t.startsWith("{")) return { wrappingToken: t || undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch {
    return {};
  }
  const o = (parsed ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const bot = botOf(o.bot);
  return { nonce: str(o.verdict), wrappingToken: str(o.wrap), ...(bot ? { bot } : {}) };
}

/**
 * A sidecar's own verdict (its output contract): one word the formula writes to
 * $DISPATCHER_OUTCOME_FILE; the runner prints it last on stdout as `[outcome] <word>`.
 */
const OUTCOME_WORD = /^[a-z0-9][a-z0-9:._-]{0,49}$/;
const OUTCOME_PREFIX = "[outcome] ";

/** The line the runner prints for what the formula wrote; undefined when it is not one word. */
export function outcomeLine(written: string): string | undefined {
  const word = written.trim();
  return OUTCOME_WORD.test(word) ? `${OUTCOME_PREFIX}${word}` : undefined;
}

/** The verdict of an outcome line; undefined for any other line. */
export function parseOutcomeLine(line: string): string | undefined {
  return line.startsWith(OUTCOME_PREFIX) && OUTCOME_WORD.test(line.slice(OUTCOME_PREFIX.length)) ? line.slice(OUTCOME_PREFIX.length) : undefined;
}

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

/** The secret path template of the runner/ layout, and the one disinto's dispatcher.sh used. */
export const DEFAULT_SECRET_PATH = "runner/{name}";
export const SECRET_PATH_TEMPLATE = /^([A-Za-z0-9_-]+\/)*[A-Za-z0-9_-]*\{name\}[A-Za-z0-9_-]*(\/[A-Za-z0-9_-]+)*$/;

/** A secret's path under `<mount>/data/`: the template with {name} replaced, e.g. disinto/runner/GITHUB_TOKEN. */
export function secretPathOf(template: string, name: string): string {
  return template.replace("{name}", name);
}

export const FORMULA_ARGS = ["none", "action-id"] as const;
export type FormulaArgs = (typeof FORMULA_ARGS)[number];

/** The factory repository's formulas: the dispatcher's config pins the commit, and the pin is their approval. */
export interface FactoryPin {
  repo: string;
  commit: string;
}

/** Where the runner finds secrets and formulas, and how it calls one: the default layout, or disinto's. */
export interface RunnerLayout {
  /** where a secret lives under the KV mount's data/: a template with {name} (meta secret_path; default runner/{name}) */
  secretPath: string;
  /** what the formula gets as arguments: none, or the action id as $1 (meta formula_args) */
  formulaArgs: FormulaArgs;
  /** formulas from a second repository at a pinned commit (meta factory_repo, factory_commit); absent: the ops repo's */
  factory?: FactoryPin;
  /** the formula's HOME (meta formula_home), e.g. /home/agent so that ~/.ssh is a mount's landing path; absent: the task dir */
  home?: string;
}

/** The layout meta a dispatch carries besides the action's own: only what differs from the default layout. */
export function layoutMeta(l: RunnerLayout): Record<string, string | undefined> {
  return {
    secret_path: l.secretPath === DEFAULT_SECRET_PATH ? undefined : l.secretPath,
    formula_args: l.formulaArgs === "none" ? undefined : l.formulaArgs,
    factory_repo: l.factory?.repo,
    factory_commit: l.factory?.commit,
    formula_home: l.home,
  };
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
    mountPaths: mountPathsOf(list("mounts_csv"), env),
    kvMount: env.NOMAD_META_kv_mount || "kv",
    vaultAddr: vaultAddr ?? "",
    rolePath: `auth/token/create/${env.DISPATCHER_RUNNER_ROLE || "dispatcher-runner"}`,
    timeoutMs: timeoutMinutesOf(env.NOMAD_META_timeout_minutes) * 60_000,
  };
}

/** Where each mount landed: the parent's MOUNT_PATHS (alias → path, from jobspecs/runner.nomad.hcl), else <MOUNT_ROOT>/<alias>. */
function mountPathsOf(mounts: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  let landing: Record<string, unknown> = {};
  try {
    landing = env.MOUNT_PATHS ? (JSON.parse(env.MOUNT_PATHS) as Record<string, unknown>) : {};
  } catch {
    throw new Error(`MOUNT_PATHS in the job's env is not a JSON object of alias → path: ${env.MOUNT_PATHS}`);
  }
  return Object.fromEntries(mounts.map((m) => [m, typeof landing[m] === "string" ? (landing[m] as string) : `${env.MOUNT_ROOT || "/mnt"}/${m}`]));
}

/** The layout the dispatch's meta names (the default one when it names none). */
export function readRunnerLayout(env: NodeJS.ProcessEnv): RunnerLayout {
  return {
    secretPath: secretPathFrom(env.NOMAD_META_secret_path),
    formulaArgs: formulaArgsFrom(env.NOMAD_META_formula_args),
    ...factoryFrom(env.NOMAD_META_factory_repo, env.NOMAD_META_factory_commit),
    ...(env.NOMAD_META_formula_home ? { home: homeFrom(env.NOMAD_META_formula_home) } : {}),
  };
}

function homeFrom(text: string): string {
  if (!/^\/[^\0]*$/.test(text) || text.split("/").includes("..")) throw new Error(`job meta formula_home must be an absolute path like /home/agent, got "${text}"`);
  return text;
}

function secretPathFrom(text: string | undefined): string {
  if (text === undefined || text === "") return DEFAULT_SECRET_PATH;
  if (!SECRET_PATH_TEMPLATE.test(text)) throw new Error(`job meta secret_path must be a KV path with one {name}, like disinto/runner/{name}, got "${text}"`);
  return text;
}

function formulaArgsFrom(text: string | undefined): FormulaArgs {
  if (text === undefined || text === "") return "none";
  if (!(FORMULA_ARGS as readonly string[]).includes(text)) throw new Error(`job meta formula_args must be one of ${FORMULA_ARGS.join(", ")}, got "${text}"`);
  return text as FormulaArgs;
}

function factoryFrom(repo: string | undefined, commit: string | undefined): { factory?: FactoryPin } {
  if (!repo && !commit) return {};
  if (!repo || !commit || !/^[0-9a-f]{40}$/.test(commit)) throw new Error(`job meta factory_repo and factory_commit go together, the commit a full 40-hex id (got repo "${repo ?? ""}", commit "${commit ?? ""}")`);
  return { factory: { repo, commit } };
}

/** The dispatcher always sends timeout_minutes; a child dispatched without it gets a day. */
function timeoutMinutesOf(text: string | undefined): number {
  if (text === undefined || text === "") return 24 * 60;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`job meta timeout_minutes must be a positive whole number of minutes, got "${text}"`);
  return n;
}

/**
 * One line, always: the dispatcher reads the last line of stderr. With the payload's nonce the
 * line is the runner's verdict; without one (a child dispatched with a bare token) it is only
 * text for the log, and the dispatcher records the exit code as the formula's.
 */
export function formatRunnerError(cls: FailureClass, message: string, nonce?: string): string {
  const line = `[runner] error ${cls}: ${message.replace(/\s*\n\s*/g, " | ")}`;
  return nonce ? `${line} [verdict ${nonce}]` : line;
}

/** The stored log shows the runner's verified verdict line without its nonce. */
export function stripVerdictNonce(stderr: string, nonce: string): string {
  const suffix = ` [verdict ${nonce}]`;
  const at = stderr.lastIndexOf(suffix);
  return at < 0 || stderr.slice(at + suffix.length).trim() !== "" ? stderr : stderr.slice(0, at) + stderr.slice(at + suffix.length);
}

/** Does the task's stderr end in something shaped like the runner's verdict (worth reading the child's nonce for)? */
export function looksLikeRunnerVerdict(exitCode: number, stderr: string): boolean {
  if (exitCode !== RUNNER_ERROR_EXIT && exitCode !== RUNNER_TIMEOUT_EXIT) return false;
  return ERROR_LINE.test(stderr.trimEnd().split("\n").at(-1) ?? "");
}

/**
 * The runner's own failure, if the task's stderr ends with its verdict signed with this child's
 * nonce. A line the formula printed (it never sees the nonce), a class the runner never reports
 * (`lost` is Nomad's word alone), or no nonce at all: undefined, the exit code is the formula's.
 */
export function parseRunnerError(exitCode: number, stderr: string, nonce: string | undefined): { class: FailureClass; message: string } | undefined {
  if (!nonce || (exitCode !== RUNNER_ERROR_EXIT && exitCode !== RUNNER_TIMEOUT_EXIT)) return undefined;
  const m = ERROR_LINE.exec(stderr.trimEnd().split("\n").at(-1) ?? "");
  if (!m || !FAILURE_CLASSES.includes(m[1] as FailureClass) || m[1] === "lost") return undefined;
  const seen = Buffer.from(m[3]!);
  const want = Buffer.from(nonce);
  if (seen.length !== want.length || !timingSafeEqual(seen, want)) return undefined;
  return { class: m[1] as FailureClass, message: m[2]! };
}

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import TOML from "@iarna/toml";
import * as z from "zod";
import { allMountSets, CLASS_NAME, MOUNT_ALIAS, MOUNTS, type FormulaMounts, type FormulaSecrets } from "./actions/schema.js";
import { DEFAULT_SECRET_PATH, FORMULA_ARGS, SECRET_PATH_TEMPLATE, type RunnerLayout } from "./contract.js";
import { ConfigInvalid } from "./errors.js";
import type { LogOptions } from "./log.js";
import type { SshCredential } from "./opsrepo/exec.js";
import { SIGNATURE_CHECKS_PER_PASS } from "./opsrepo/provenance.js";
import type { VaultAuthMethod } from "./vault/login.js";

// Config is one zod pipeline: defaults → file (TOML) → environment → flags. Each layer is a
// partial tree; the merged tree is validated once, and every error names where the value came from.

const positiveInt = z.coerce.number().int().positive();
/**
 * Credentials never travel in URLs (they would reach job meta, logs and `doctor`): an http(s)
 * URL has no user info at all, and no URL carries a password. ssh://git@host names a user only.
 */
function noCredential(url: string): boolean {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^@/]*)@/i.exec(url);
  if (!m) return true;
  return !/^https?$/i.test(m[1]!) && !m[2]!.includes(":");
}
const CREDENTIAL_IN_URL = {
  message: "must not carry a credential: use an SSH deploy key (DISPATCHER_GIT_SSH_KEY, DISPATCHER_GIT_KNOWN_HOSTS) or a git credential helper, e.g. ssh://git@git.example.org/ops.git",
};
const mountAlias = z.string().regex(MOUNT_ALIAS, 'must be a mount alias (lower-case letters, digits, -) like "ssh" or "agent-data"');
const secretName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, "must be UPPER_SNAKE_CASE like GITHUB_TOKEN");

export const configSchema = z.strictObject({
  nomad: z.strictObject({
    addr: z.url(),
    token: z.string().optional(),
    namespace: z.string().optional(),
    region: z.string().optional(),
    runnerJob: z.string().min(1),
    sidecarJob: z.string().min(1),
    /** what `dispatcher jobs pin` recorded of the runner/sidecar parents; nothing is dispatched to a parent that differs */
    pins: z.string(),
    /** Nomad Variables prefix of the ledger: one per ops repo sharing a cluster */
    ledgerPrefix: z.string().regex(/^[a-zA-Z0-9_~-]+(\/[a-zA-Z0-9_~-]+)*$/, "must be a Nomad variable path like dispatcher or ops/dispatcher"),
    /** a child whose result is in the ops repo is purged this long after the push; 0: left to Nomad's GC (purging needs submit-job) */
    purgeAfterSeconds: z.coerce.number().int().min(0),
    /** runner classes an action may name (`class = "big"`); each is the Nomad node pool of that name */
    classes: z.array(z.string().regex(CLASS_NAME, "must be a node pool name like big or gpu (lower-case, digits, -)")),
  }),
  vault: z
    .strictObject({
    addr: z.url(),
    /** the dispatcher's own login, one of: a token, a token file (re-read on change), an AppRole */
    token: z.string(),
    tokenFile: z.string(),
    roleIdFile: z.string(),
    secretIdFile: z.string(),
    approleMount: z.string().min(1),
    role: z.string().min(1),
    kvMount: z.string().min(1),
    /** where secret NAME lives under <kv_mount>/data/: runner/{name}, or disinto/runner/{name} for disinto's layout */
    secretPath: z.string().regex(SECRET_PATH_TEMPLATE, "must be a KV path with one {name}, like runner/{name} or disinto/runner/{name}"),
    wrapTtlSeconds: positiveInt,
    tokenGraceSeconds: positiveInt,
  })
    .refine((v) => v.token || v.tokenFile || (v.roleIdFile && v.secretIdFile), {
      path: ["token"],
      message:
        "is required: the dispatcher's own Vault login (policy service-dispatcher, never root): DISPATCHER_VAULT_ROLE_ID_FILE and DISPATCHER_VAULT_SECRET_ID_FILE (AppRole), DISPATCHER_VAULT_TOKEN_FILE, or VAULT_TOKEN",
    }),
  repo: z
    .strictObject({
    remote: z.string().min(1, "is required: the ops repo's git URL or path").refine(noCredential, CREDENTIAL_IN_URL),
    /** what runners fetch the action's commit from: a read-only URL (default: remote); it travels in job meta */
    runnerRemote: z.string().refine(noCredential, CREDENTIAL_IN_URL),
    /** an SSH remote's deploy key (private key file) and the known_hosts file pinning its host key */
    sshKey: z.string(),
    knownHosts: z.string(),
    branch: z.string().min(1),
    workdir: z.string().min(1),
    actionsDir: z.string().min(1),
    authorName: z.string().min(1),
    authorEmail: z.string().min(1),
    /** deprecated, ignored (see DEPRECATED): results are pushed by group commit */
    commitWindowMs: z.coerce.number().int().min(0).max(60_000).optional(),
    /** deprecated, ignored (see DEPRECATED) */
    pushIntervalMs: z.coerce.number().int().min(0).max(600_000).optional(),
  })
    .refine((r) => !r.sshKey || r.knownHosts, { path: ["knownHosts"], message: "is required with a deploy key: a known_hosts file pinning the remote's host key" }),
  /** secret names actions may ask for; each also needs a runner-<NAME> policy */
  secrets: z.array(secretName),
  /**
   * formula → the secrets it may be granted ([formula_secrets] in the config file). Absent: any
   * formula may ask for any known secret (`doctor` says so); present: a formula not listed gets none.
   */
  formulaSecrets: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "must be a formula name like release"), z.array(secretName)).optional(),
  /**
   * formula → the mounts it may get ([formula_mounts]: `release = ["ssh"]`): a mount holds key
   * files, a grant like a secret. Absent: any offered mount; present: a formula not listed gets none.
   */
  formulaMounts: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "must be a formula name like release"), z.array(mountAlias)).optional(),
  /** where formulas come from and how they are called (disinto's layout: a factory repository, the action id as $1) */
  formulas: z
    .strictObject({
      /** a second repository holding formulas/<f>.sh, read-only for the runner (no credential in the URL) */
      factoryRemote: z.string().refine(noCredential, CREDENTIAL_IN_URL),
      /** the factory commit that runs: the pin is the approval of that code; a full commit id, never a branch */
      factoryCommit: z.union([z.literal(""), z.string().regex(/^[0-9a-f]{40}$/, "must be a full 40-hex commit id (the pin is the approval of that code; a branch would let a push change it), e.g. 3f0b447c1d2e3f405162738495a6b7c8d9e0f1a2")]),
      /** what the formula gets: none, or the action id as $1 (disinto's `bash formulas/<f>.sh <action-id>`) */
      args: z.enum(FORMULA_ARGS),
      /** the formula's HOME ("": the task dir); /home/agent with mounts landing under it gives disinto's ~/.ssh */
      home: z.union([z.literal(""), z.string().regex(/^\/[^\0]*$/, "must be an absolute path like /home/agent").refine((p) => !p.split("/").includes(".."), "must not contain ..")]),
    })
    .refine((f) => !f.factoryRemote === !f.factoryCommit, { path: ["factoryCommit"], message: "and formulas.factory_remote go together: the factory repository and the commit pinned in it" }),
  limits: z.strictObject({
    maxInFlight: positiveInt,
    /** actions with the same value of this field run one at a time */
    serializeBy: z.enum(["formula", "id", "none"]),
  }),
  timeouts: z.strictObject({
    defaultMinutes: positiveInt,
    /** an allocation not running by then fails with the scheduler's reason */
    placementSeconds: positiveInt,
    /** a child with neither evaluation nor allocation this long is evaluated again, once (0: never; needs submit-job) */
    reevaluateSeconds: z.coerce.number().int().min(0),
  }),
  /** what `run` serves: /metrics, /healthz, /readyz and the push webhook */
  server: z.strictObject({
    /** host:port, loopback by default; "off" serves nothing */
    listen: z.string().regex(/^(off|[^\s:]+:\d{1,5})$/, 'must be host:port like 127.0.0.1:9464, or "off"'),
    /** the webhook's shared secret (Forgejo/Gitea/GitHub); without it /hooks/push answers 404 */
    webhookSecretFile: z.string(),
    /** how long a push delivery's record in the ledger makes the same delivery a replay, for every replica */
    webhookReplaySeconds: positiveInt,
  }),
  /** mount alias → name of the Nomad host volume that provides it on client nodes */
  hostVolumes: z.strictObject({ ssh: z.string().min(1), gpg: z.string().min(1), sops: z.string().min(1) }),
  /**
   * [mounts]: alias → the host volume behind it and where it lands inside the task, read-only
   * (`agent-data = { volume = "agent-data", path = "/home/agent/data" }`; a string is the volume,
   * landing at /mnt/<alias>). Adds to ssh/gpg/sops (at /mnt/<alias>, volumes from [host_volumes]) or
   * overrides them (`ssh = { volume = "ssh", path = "/home/agent/.ssh" }`).
   */
  mounts: z.record(
    mountAlias,
    z.union([
      z.string().min(1),
      z.strictObject({ volume: z.string().min(1), path: z.string().regex(/^\/[^\0]*$/, "must be an absolute path inside the task like /home/agent/.ssh").refine((p) => !p.split("/").includes(".."), "must not contain ..") }),
    ]),
  ),
  /** the parents registered for the mount sets (register-jobs.sh): each a list of aliases; default every subset of the aliases */
  mountSets: z.array(z.array(mountAlias)).optional(),
  /** who may trigger what: signed commits by allowed keys, and how many distinct signers */
  approvals: z
    .strictObject({
      requireSigned: z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean()),
      /** gpg.ssh.allowedSignersFile format: `principal namespaces="git" ssh-ed25519 AAAA…` */
      allowedSigners: z.string(),
      count: positiveInt,
      /** signed: require_signed decides (off by default); forge: merged pull requests with `count` approvals by `approvers` */
      provider: z.enum(["signed", "forge"]),
      /** provider = "forge": forge user names whose approving reviews count */
      approvers: z.array(z.string().min(1)),
      /** provider = "forge": formulas whose actions may run from a direct push with dispatch_mode = "direct" (none by default) */
      directFormulas: z.array(z.string().min(1)),
      /** commit signatures a pass checks at most (require_signed); the next pass checks on, each commit once */
      signatureChecksPerPass: positiveInt,
    })
    .refine((a) => !a.requireSigned || a.allowedSigners, { path: ["allowedSigners"], message: "is required with require_signed: the allowed-signers file" })
    .refine((a) => a.provider !== "forge" || a.approvers.length > 0, { path: ["approvers"], message: 'is required with provider = "forge": the forge users whose approving reviews count, e.g. ["alice", "bob"]' }),
  /** the forge hosting the ops repo (Gitea/Forgejo): commit statuses and pull request comments with results; off without url */
  forge: z
    .strictObject({
      url: z.union([z.literal(""), z.url().refine(noCredential, CREDENTIAL_IN_URL)]),
      /** owner/name of the ops repo on the forge */
      repo: z.union([z.literal(""), z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "must be owner/name like ops/ops")]),
      /** the bot's access token (least scopes: write:repository, write:issue), read from this file */
      tokenFile: z.string(),
      /** where unsent reports wait (default: beside the clone, <workdir>-forge-outbox.json) */
      outbox: z.string(),
      /** optional, doctor only: a repo admin's token, to see the push webhook (the bot may not list webhooks) */
      hooksTokenFile: z.string(),
    })
    .refine((f) => !f.url || f.repo, { path: ["repo"], message: "is required with forge.url: the ops repo on the forge, e.g. ops/ops" })
    .refine((f) => !f.url || f.tokenFile, { path: ["tokenFile"], message: "is required with forge.url: the bot's token file, e.g. /etc/dispatcher/forge-token" }),
  /** sidecars started by labelled issues on the forge (core/issue-loop.ts); off without projects */
  issues: z.strictObject({
    /** where issue runs' results land: <dir>/<project>/<issue>-<label>-<event>.result.json */
    dir: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, "must be a folder of the ops repo like vault/issues"),
    /** the label an issue carries while its sidecar runs ("" for none) */
    progressLabel: z.string(),
    /** the forge's issues are listed this often (a signed issue webhook passes at once) */
    pollSeconds: positiveInt,
    /** issue runs of this replica at once */
    maxInFlight: positiveInt,
    /** the sidecar's bot identity: a KV v2 data path its token may read ("" for none), e.g. kv/data/disinto/bots/dev */
    botSecret: z.union([z.literal(""), z.string().regex(/^[a-zA-Z0-9_-]+\/data\/[a-zA-Z0-9_-]+(\/[a-zA-Z0-9_.-]+)*$/, "must be a KV v2 data path like kv/data/disinto/bots/dev")]),
    /** the field of that secret holding the bot's token */
    botField: z.string().min(1),
    /** the variable the formula finds it in */
    botEnv: secretName,
    /** the Vault policy reading that one path (scripts/bootstrap-vault.sh makes it; the runner role allows it) */
    botPolicy: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a Vault policy name like sidecar-bot"),
    projects: z.array(
      z.strictObject({
        /** short name: the folder of its runs' results */
        name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "must be a short name like disinto (lower-case, digits, - and _)"),
        /** the project file in the ops repo: the sidecar's project_toml */
        projectToml: z.string().regex(/^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\.toml$/, "must be a .toml file of the ops repo like projects/disinto.toml"),
        /** owner/name of the project's repo on the forge, where its issues are */
        repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "must be owner/name like disinto-admin/disinto"),
        /** label → sidecar formula, e.g. { "bug-report" = "reproduce" } */
        labels: z.record(z.string().min(1), z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "must be a formula name like reproduce")),
        /** formula → its outcome labels: success first, failure second, then any other verdict it may give */
        outcomes: z.record(z.string(), z.array(z.string().regex(/^[a-z0-9][a-z0-9:._-]{0,49}$/, "must be a label like reproduced")).min(2)).optional(),
      }),
    ),
  }),
  pollSeconds: positiveInt,
  /** a replica silent this long is presumed dead; its actions are re-attached by another */
  leaseSeconds: positiveInt,
  /** a replica's heartbeat silent this long leaves the ledger (status --instances forgets it) */
  instanceRetentionSeconds: positiveInt,
  /** a recorded action's ledger entry is removed this long after it was recorded (0: kept for good) */
  ledgerRetentionSeconds: z.coerce.number().int().min(0),
  logs: z.strictObject({
    tailBytes: positiveInt,
    maxBytes: positiveInt,
    /** the dispatcher's own log: auto (readable lines on a terminal, JSON when piped), json, pretty */
    format: z.enum(["auto", "json", "pretty"]),
    /** also append readable lines to this file ("": none) */
    file: z.string(),
  }),
  instance: z.string().min(1),
});

/** The validated tree, and the config file it was read from (for messages that say where a setting lives). */
export type Config = z.infer<typeof configSchema> & { file?: string };
type Layer = Record<string, unknown>;

export function defaults(cwd = process.cwd()): Layer {
  return {
    nomad: { addr: "http://127.0.0.1:4646", runnerJob: "runner", sidecarJob: "sidecar", pins: "", ledgerPrefix: "dispatcher", purgeAfterSeconds: 0, classes: [] },
    vault: { addr: "http://127.0.0.1:8200", token: "", tokenFile: "", roleIdFile: "", secretIdFile: "", approleMount: "approle", role: "dispatcher-runner", kvMount: "kv", secretPath: DEFAULT_SECRET_PATH, wrapTtlSeconds: 300, tokenGraceSeconds: 300 },
    repo: {
      remote: "",
      runnerRemote: "",
      sshKey: "",
      knownHosts: "",
      branch: "main",
      workdir: join(cwd, ".dispatcher", "ops"),
      actionsDir: "vault/actions",
      authorName: "nomad-dispatcher",
      authorEmail: "dispatcher@localhost",
    },
    secrets: [],
    formulas: { factoryRemote: "", factoryCommit: "", args: "none", home: "" },
    limits: { maxInFlight: 4, serializeBy: "formula" },
    timeouts: { defaultMinutes: 60, placementSeconds: 300, reevaluateSeconds: 30 },
    server: { listen: "127.0.0.1:9464", webhookSecretFile: "", webhookReplaySeconds: 86_400 },
    hostVolumes: { ssh: "ssh", gpg: "gpg", sops: "sops" },
    mounts: {},
    approvals: { requireSigned: false, allowedSigners: "", count: 1, provider: "signed", approvers: [], directFormulas: [], signatureChecksPerPass: SIGNATURE_CHECKS_PER_PASS },
    forge: { url: "", repo: "", tokenFile: "", outbox: "", hooksTokenFile: "" },
    issues: { dir: "vault/issues", progressLabel: "in-progress", pollSeconds: 60, maxInFlight: 2, botSecret: "", botField: "token", botEnv: "FORGE_BOT_TOKEN", botPolicy: "sidecar-bot", projects: [] },
    pollSeconds: 30,
    leaseSeconds: 60,
    instanceRetentionSeconds: 604_800,
    ledgerRetentionSeconds: 604_800,
    logs: { tailBytes: 4096, maxBytes: 1_048_576, format: "auto", file: "" },
    instance: `${hostname()}-${process.pid}`,
  };
}

/** Environment variables and where they land; HashiCorp's own names for the engines. */
const ENV: Record<string, string> = {
  NOMAD_ADDR: "nomad.addr",
  NOMAD_TOKEN: "nomad.token",
  NOMAD_NAMESPACE: "nomad.namespace",
  NOMAD_REGION: "nomad.region",
  DISPATCHER_LEDGER_PREFIX: "nomad.ledgerPrefix",
  DISPATCHER_JOB_PINS: "nomad.pins",
  DISPATCHER_PURGE_AFTER_SECONDS: "nomad.purgeAfterSeconds",
  DISPATCHER_CLASSES: "nomad.classes",
  DISPATCHER_REEVALUATE_SECONDS: "timeouts.reevaluateSeconds",
  DISPATCHER_LISTEN: "server.listen",
  DISPATCHER_WEBHOOK_SECRET_FILE: "server.webhookSecretFile",
  DISPATCHER_WEBHOOK_REPLAY_SECONDS: "server.webhookReplaySeconds",
  VAULT_ADDR: "vault.addr",
  VAULT_TOKEN: "vault.token",
  DISPATCHER_VAULT_TOKEN_FILE: "vault.tokenFile",
  DISPATCHER_VAULT_ROLE_ID_FILE: "vault.roleIdFile",
  DISPATCHER_VAULT_SECRET_ID_FILE: "vault.secretIdFile",
  DISPATCHER_OPS_REMOTE: "repo.remote",
  DISPATCHER_RUNNER_REMOTE: "repo.runnerRemote",
  DISPATCHER_GIT_SSH_KEY: "repo.sshKey",
  DISPATCHER_GIT_KNOWN_HOSTS: "repo.knownHosts",
  DISPATCHER_OPS_BRANCH: "repo.branch",
  DISPATCHER_WORKDIR: "repo.workdir",
  DISPATCHER_SECRETS: "secrets",
  DISPATCHER_SECRET_PATH: "vault.secretPath",
  DISPATCHER_FACTORY_REMOTE: "formulas.factoryRemote",
  DISPATCHER_FACTORY_COMMIT: "formulas.factoryCommit",
  DISPATCHER_FORMULA_ARGS: "formulas.args",
  DISPATCHER_FORMULA_HOME: "formulas.home",
  DISPATCHER_MAX_IN_FLIGHT: "limits.maxInFlight",
  DISPATCHER_POLL_SECONDS: "pollSeconds",
  DISPATCHER_COMMIT_WINDOW_MS: "repo.commitWindowMs",
  DISPATCHER_PUSH_INTERVAL_MS: "repo.pushIntervalMs",
  DISPATCHER_REQUIRE_SIGNED: "approvals.requireSigned",
  DISPATCHER_ALLOWED_SIGNERS: "approvals.allowedSigners",
  DISPATCHER_APPROVALS: "approvals.count",
  DISPATCHER_APPROVALS_PROVIDER: "approvals.provider",
  DISPATCHER_APPROVERS: "approvals.approvers",
  DISPATCHER_DIRECT_FORMULAS: "approvals.directFormulas",
  DISPATCHER_SIGNATURE_CHECKS_PER_PASS: "approvals.signatureChecksPerPass",
  DISPATCHER_FORGE_URL: "forge.url",
  DISPATCHER_FORGE_REPO: "forge.repo",
  DISPATCHER_FORGE_TOKEN_FILE: "forge.tokenFile",
  DISPATCHER_FORGE_OUTBOX: "forge.outbox",
  DISPATCHER_FORGE_HOOKS_TOKEN_FILE: "forge.hooksTokenFile",
  DISPATCHER_ISSUES_PROGRESS_LABEL: "issues.progressLabel",
  DISPATCHER_ISSUES_POLL_SECONDS: "issues.pollSeconds",
  DISPATCHER_BOT_SECRET: "issues.botSecret",
  DISPATCHER_BOT_POLICY: "issues.botPolicy",
  DISPATCHER_LEASE_SECONDS: "leaseSeconds",
  DISPATCHER_INSTANCE_RETENTION_SECONDS: "instanceRetentionSeconds",
  DISPATCHER_LEDGER_RETENTION_SECONDS: "ledgerRetentionSeconds",
  DISPATCHER_INSTANCE: "instance",
  DISPATCHER_LOG_FORMAT: "logs.format",
  DISPATCHER_LOG_FILE: "logs.file",
};

/** settings given in the environment as comma-separated lists */
const LISTS = new Set(["secrets", "nomad.classes", "approvals.approvers", "approvals.directFormulas"]);

/**
 * Settings still accepted but ignored, and why: a deployment that sets them keeps starting (with a
 * warning naming them), and nothing they said holds any more.
 */
const DEPRECATED = {
  commitWindowMs: "DISPATCHER_COMMIT_WINDOW_MS (repo.commit_window_ms) is deprecated and ignored: a push starts as soon as a result waits and no push runs; what finishes during a push joins the next",
  pushIntervalMs: "DISPATCHER_PUSH_INTERVAL_MS (repo.push_interval_ms) is deprecated and ignored: a push starts as soon as a result waits and no push runs; what finishes during a push joins the next",
} as const;

/** What the config sets that is deprecated and ignored, one message each (start logs them). */
export function deprecatedSettings(config: Pick<Config, "repo">): string[] {
  return (Object.keys(DEPRECATED) as (keyof typeof DEPRECATED)[]).filter((k) => config.repo[k] !== undefined).map((k) => DEPRECATED[k]);
}

export function fromEnv(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = {};
  for (const [name, path] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    setPath(layer, path, LISTS.has(path) ? value.split(",").map((s) => s.trim()).filter(Boolean) : value);
  }
  return layer;
}

export function fromFile(path: string): Layer {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigInvalid(`${path}: cannot read config file (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
  try {
    return tomlToConfig(TOML.parse(text) as Layer);
  } catch (err) {
    throw new ConfigInvalid(`${path}: not valid TOML: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
}

/** tables whose keys are names (formulas, labels), kept as written */
const NAMED_KEYS = new Set(["formulaSecrets", "formulaMounts", "mounts", "labels", "outcomes"]);

/** File keys are snake_case (TOML habit); the tree is camelCase. Formula and label names stay as written. */
function tomlToConfig(value: Layer): Layer {
  const table = (v: unknown): v is Layer => Boolean(v) && typeof v === "object" && !Array.isArray(v);
  const out: Layer = {};
  for (const [k, v] of Object.entries(value)) {
    const key = k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    // an array of tables ([[issues.projects]]) converts each table
    out[key] = NAMED_KEYS.has(key) ? v : table(v) ? tomlToConfig(v) : Array.isArray(v) ? v.map((x: unknown) => (table(x) ? tomlToConfig(x) : x)) : v;
  }
  return out;
}

/**
 * What `migrate-check` needs of the config (no engine, no credential): secrets and their path,
 * [formulas], the mounts and both allowlists, from the file and the environment.
 */
export function loadLayoutConfig(opts: LoadOptions = {}): Pick<Config, "secrets" | "formulas" | "hostVolumes" | "mounts" | "mountSets" | "formulaSecrets" | "formulaMounts" | "file"> & { vault: Pick<Config["vault"], "secretPath"> } {
  const s = configSchema.shape;
  const layout = z
    .object({ secrets: s.secrets, vault: z.object({ secretPath: s.vault.shape.secretPath }), formulas: s.formulas, hostVolumes: s.hostVolumes, mounts: s.mounts, mountSets: s.mountSets, formulaSecrets: s.formulaSecrets, formulaMounts: s.formulaMounts })
    .superRefine(mountSetsKnown);
  const file = opts.file ?? (opts.env ?? process.env).DISPATCHER_CONFIG;
  return { ...parseLayers(layout, opts), ...(file ? { file } : {}) };
}

/** Only [formula_secrets] of a config file (`validate --config` needs no engine settings). */
export function loadFormulaSecrets(file: string): FormulaSecrets | undefined {
  return formulaSecretsOf({ ...parseLayers(z.object({ formulaSecrets: configSchema.shape.formulaSecrets }), { file, env: {} }), file });
}

/** Only [formula_mounts] of a config file, as `validate --config` checks it. */
export function loadFormulaMounts(file: string): FormulaMounts | undefined {
  return formulaMountsOf({ ...parseLayers(z.object({ formulaMounts: configSchema.shape.formulaMounts }), { file, env: {} }), file });
}

/** The mounts allowlist as the catalog takes it. */
export function formulaMountsOf(config: Pick<Config, "formulaMounts" | "file">): FormulaMounts | undefined {
  if (!config.formulaMounts) return undefined;
  return {
    allowed: new Map(Object.entries(config.formulaMounts).map(([f, list]) => [f, new Set<string>(list)])),
    source: `[formula_mounts] in ${config.file ?? "the config"}`,
  };
}

/** Where the runner finds secrets and formulas and how it calls one, as the dispatch's meta carries it. */
export function runnerLayoutOf(config: Pick<Config, "vault" | "formulas">): RunnerLayout {
  const f = config.formulas;
  return { secretPath: config.vault.secretPath, formulaArgs: f.args, ...(f.factoryRemote ? { factory: { repo: f.factoryRemote, commit: f.factoryCommit } } : {}), ...(f.home ? { home: f.home } : {}) };
}

/** The mounts as configured: alias → host volume, alias → landing path in the task, and the parents' mount sets. */
export interface MountLayout {
  volumes: Record<string, string>;
  paths: Record<string, string>;
  sets: string[][];
}

/** At most this many aliases get every subset as a parent by default (2^n parents per kind and class). */
export const MAX_DEFAULT_MOUNT_ALIASES = 4;

/** ssh/gpg/sops at /mnt/<alias> (volumes from [host_volumes]), then [mounts]; mount_sets or every subset. */
export function mountLayoutOf(config: Pick<Config, "hostVolumes" | "mounts" | "mountSets">): MountLayout {
  const volumes: Record<string, string> = { ...config.hostVolumes };
  const paths: Record<string, string> = Object.fromEntries(MOUNTS.map((m) => [m, `/mnt/${m}`]));
  for (const [alias, m] of Object.entries(config.mounts)) {
    volumes[alias] = typeof m === "string" ? m : m.volume;
    paths[alias] = typeof m === "string" ? `/mnt/${alias}` : m.path;
  }
  const sets = config.mountSets?.map((s) => [...new Set(s)].sort()) ?? allMountSets(Object.keys(volumes));
  return { volumes, paths, sets };
}

/** The deploy key of an SSH ops remote, when one is configured. */
export function sshCredentialOf(r: Config["repo"]): SshCredential | undefined {
  return r.sshKey ? { key: r.sshKey, knownHosts: r.knownHosts } : undefined;
}

/** Where unsent forge reports wait: forge.outbox, or beside the clone. */
export function forgeOutboxOf(config: Pick<Config, "forge" | "repo">): string {
  return config.forge.outbox || `${config.repo.workdir}-forge-outbox.json`;
}

/** The dispatcher's Vault login: an explicit VAULT_TOKEN wins, then a token file, then AppRole. */
export function vaultAuthOf(v: Config["vault"]): VaultAuthMethod {
  if (v.token) return { kind: "token", token: v.token };
  if (v.tokenFile) return { kind: "token_file", path: v.tokenFile };
  return { kind: "approle", roleIdFile: v.roleIdFile, secretIdFile: v.secretIdFile, mount: v.approleMount };
}

/** The daemon's own log: auto leaves the choice to the terminal (readable on a TTY, JSON when piped). */
export function logOptionsOf(l: Config["logs"]): LogOptions {
  return { ...(l.format === "auto" ? {} : { pretty: l.format === "pretty" }), ...(l.file ? { file: l.file } : {}) };
}

/** The allowlist as the catalog takes it; `file` names where it lives in messages. */
export function formulaSecretsOf(config: Pick<Config, "formulaSecrets" | "file">): FormulaSecrets | undefined {
  if (!config.formulaSecrets) return undefined;
  return {
    allowed: new Map(Object.entries(config.formulaSecrets).map(([f, list]) => [f, new Set(list)])),
    source: `[formula_secrets] in ${config.file ?? "the config"}`,
  };
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: Layer;
  cwd?: string;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const config = parseLayers(configSchema.superRefine(mountSetsKnown), opts);
  const file = opts.file ?? (opts.env ?? process.env).DISPATCHER_CONFIG;
  // runners fetch from the push remote unless a read-only URL is given
  return { ...config, repo: { ...config.repo, runnerRemote: config.repo.runnerRemote || config.repo.remote }, ...(file ? { file } : {}) };
}

/** Only the Nomad section and the mounts (`dispatcher jobs pin|sets` need no Vault token or ops remote). */
export function loadNomadConfig(opts: LoadOptions = {}): Pick<Config, "nomad" | "hostVolumes" | "mounts" | "mountSets"> {
  const s = configSchema.shape;
  return parseLayers(z.object({ nomad: s.nomad, hostVolumes: s.hostVolumes, mounts: s.mounts, mountSets: s.mountSets }).superRefine(mountSetsKnown), opts);
}

/** mount_sets and [formula_mounts] name configured aliases only; past MAX_DEFAULT_MOUNT_ALIASES aliases they must be listed. */
function mountSetsKnown(c: Pick<Config, "hostVolumes" | "mounts" | "mountSets"> & Partial<Pick<Config, "formulaMounts">>, ctx: z.RefinementCtx): void {
  const aliases = new Set([...Object.keys(c.hostVolumes), ...Object.keys(c.mounts)]);
  if (!c.mountSets && aliases.size > MAX_DEFAULT_MOUNT_ALIASES) {
    ctx.addIssue({ code: "custom", path: ["mountSets"], message: `is required with more than ${MAX_DEFAULT_MOUNT_ALIASES} mount aliases (${aliases.size}: every subset would be ${2 ** aliases.size} parents per kind): list the sets the actions use, e.g. [["ssh"], ["agent-data", "ops-repo", "project-repos"]]` });
  }
  for (const [formula, list] of Object.entries(c.formulaMounts ?? {})) {
    list.forEach((alias, i) => {
      if (!aliases.has(alias)) ctx.addIssue({ code: "custom", path: ["formulaMounts", formula, i], message: `"${alias}" is not a mount alias (configured: ${[...aliases].join(", ")})` });
    });
  }
  c.mountSets?.forEach((set, i) =>
    set.forEach((alias, j) => {
      if (!aliases.has(alias)) ctx.addIssue({ code: "custom", path: ["mountSets", i, j], message: `"${alias}" is not a mount alias (configured: ${[...aliases].join(", ")})` });
    }),
  );
}

function parseLayers<T extends z.ZodType>(schema: T, opts: LoadOptions): z.infer<T> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.DISPATCHER_CONFIG;
  const layers: [Layer, Label][] = [
    [defaults(opts.cwd), (_, leaf) => (ENV_OF[leaf] ? `${ENV_OF[leaf]} (not set)` : `config ${leaf}`)],
    [file ? fromFile(file) : {}, (path) => `${file} (${toSnake(path)})`],
    [fromEnv(env), (_, leaf) => ENV_OF[leaf]!],
    [opts.flags ?? {}, (path) => `flag (${path})`],
  ];
  const merged = layers.reduce<Layer>((acc, [layer]) => mergeDeep(acc, layer), {});
  const parsed = schema.safeParse(merged);
  if (parsed.success) return parsed.data;
  const origin = originsOf(layers);
  const lines = parsed.error.issues.flatMap((issue) => {
    const path = issue.path.join(".");
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => {
        const full = path ? `${path}.${key}` : key;
        return `${origin(full)}: unknown key`;
      });
    }
    return [`${origin(path)}: ${issue.message}`];
  });
  throw new ConfigInvalid(lines.join("\n"));
}

const ENV_OF: Record<string, string> = Object.fromEntries(Object.entries(ENV).map(([name, path]) => [path, name]));

/** Names where a value came from: the path in error, and the leaf the layer set. */
type Label = (path: string, leaf: string) => string;

/** Where a config path got its value: the last layer that set it (or a parent of it). */
function originsOf(layers: [Layer, Label][]): (path: string) => string {
  const labels = new Map<string, Label>();
  for (const [layer, label] of layers) for (const leaf of leavesOf(layer)) labels.set(leaf, label);
  return (path) => {
    for (let p = path; p; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
      const label = labels.get(p);
      if (label) return label(path, p);
    }
    // an unknown section: name it by the layer that set something inside it
    const child = [...labels].filter(([leaf]) => leaf.startsWith(`${path}.`)).at(-1);
    return child ? child[1](path, child[0]) : `config ${path}`;
  };
}

function leavesOf(layer: Layer, prefix = ""): string[] {
  return Object.entries(layer).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return v && typeof v === "object" && !Array.isArray(v) ? leavesOf(v as Layer, path) : [path];
  });
}

function toSnake(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function setPath(obj: Layer, path: string, value: unknown): void {
  const keys = path.split(".");
  let cur = obj;
  for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Layer;
  cur[keys.at(-1)!] = value;
}

function mergeDeep(a: Layer, b: Layer): Layer {
  const out: Layer = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && prev && typeof prev === "object" && !Array.isArray(prev)
        ? mergeDeep(prev as Layer, v as Layer)
        : v;
  }
  return out;
}

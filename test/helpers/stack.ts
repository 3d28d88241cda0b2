// The running dev stack as the integration tests see it: addresses and tokens from .dev/env,
// fixture calls with the root token (secrets and policies, as the bootstrap makes them), and a
// dispatcher wired to a test's own ops remote with its log lines captured.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { systemClock } from "../../dispatcher/clock.js";
import { loadConfig, vaultAuthOf, type Config } from "../../dispatcher/config.js";
import { DEFAULT_SECRET_PATH, secretPathOf } from "../../dispatcher/contract.js";
import { policyFor } from "../../dispatcher/core/catalog.js";
import type { VaultPort } from "../../dispatcher/core/ports.js";
import { createLogger } from "../../dispatcher/log.js";
import { createVaultSession, type VaultSession } from "../../dispatcher/vault/login.js";
import { createVaultPort } from "../../dispatcher/vault/tokens.js";
import { createNomadPort, type NomadClient } from "../../dispatcher/nomad/client.js";
import { startDispatcher, type Dispatcher } from "../../dispatcher/start.js";

const root = new URL("../..", import.meta.url).pathname;

export interface StackEnv {
  NOMAD_ADDR: string;
  /** the dispatcher's Nomad token (policy acl/dispatcher.hcl) */
  NOMAD_TOKEN: string;
  /** where runner/sidecar jobs live */
  NOMAD_NAMESPACE: string;
  VAULT_ADDR: string;
  /** the dispatcher's AppRole: it logs in itself (serviceToken() for a test's own use) */
  DISPATCHER_VAULT_ROLE_ID_FILE: string;
  DISPATCHER_VAULT_SECRET_ID_FILE: string;
  DISPATCHER_JOB_PINS: string;
  /** runner classes: "big", the node pool of the stack's second client */
  DISPATCHER_CLASSES: string;
  /** git://… base of the stack's read-only git daemon, serving GIT_SERVED_DIR */
  GIT_DAEMON_URL: string;
  GIT_SERVED_DIR: string;
  /** ssh://root@127.0.0.1:<port>: the stack's SSH remote (deploy key only, git-shell) */
  SSH_REMOTE_BASE: string;
  DISPATCHER_GIT_SSH_KEY: string;
  DISPATCHER_GIT_KNOWN_HOSTS: string;
  NOMAD_BIN: string;
  BAO_BIN: string;
  rootToken: string;
  /** Nomad's management token: fixtures and attacks' victims only, never a dispatcher's */
  managementToken: string;
  /** a token with acl/operator-readonly.hcl */
  operatorToken: string;
  /** the dispatcher's policy plus acl/dispatcher-janitor.hcl (submit-job): purge and watchdog tests */
  janitorToken: string;
}

export function stackEnv(): StackEnv {
  let text: string;
  try {
    text = readFileSync(join(root, ".dev/env"), "utf8");
  } catch {
    throw new Error("the dev stack is not up: .dev/env is missing (run `make up`, or `make test` which starts it)");
  }
  const env = Object.fromEntries(text.trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
  const secret = (file: string) => readFileSync(join(root, ".dev", file), "utf8").trim();
  return {
    ...(env as unknown as StackEnv),
    rootToken: secret("root-token"),
    managementToken: secret("nomad-management-token"),
    operatorToken: secret("nomad-operator-token"),
    janitorToken: secret("nomad-janitor-token"),
  };
}

/** What runners fetch for `remote` (a served path, or its ssh:// URL): its read-only git:// URL. */
export function runnerRemoteFor(remote: string): string {
  const env = stackEnv();
  const path = remote.startsWith(env.SSH_REMOTE_BASE) ? remote.slice(env.SSH_REMOTE_BASE.length) : remote;
  return path.startsWith(`${env.GIT_SERVED_DIR}/`) ? `${env.GIT_DAEMON_URL}/${path.slice(env.GIT_SERVED_DIR.length + 1)}` : remote;
}

/** The environment of a dispatcher on the dev stack for `remote`: its own tokens, never management. */
export function dispatcherEnv(remote: string): Record<string, string> {
  const s = stackEnv();
  return {
    NOMAD_ADDR: s.NOMAD_ADDR,
    NOMAD_TOKEN: s.NOMAD_TOKEN,
    NOMAD_NAMESPACE: s.NOMAD_NAMESPACE,
    VAULT_ADDR: s.VAULT_ADDR,
    DISPATCHER_VAULT_ROLE_ID_FILE: s.DISPATCHER_VAULT_ROLE_ID_FILE,
    DISPATCHER_VAULT_SECRET_ID_FILE: s.DISPATCHER_VAULT_SECRET_ID_FILE,
    DISPATCHER_JOB_PINS: s.DISPATCHER_JOB_PINS,
    DISPATCHER_CLASSES: s.DISPATCHER_CLASSES,
    DISPATCHER_OPS_REMOTE: remote,
    DISPATCHER_RUNNER_REMOTE: runnerRemoteFor(remote),
    DISPATCHER_GIT_SSH_KEY: s.DISPATCHER_GIT_SSH_KEY,
    DISPATCHER_GIT_KNOWN_HOSTS: s.DISPATCHER_GIT_KNOWN_HOSTS,
  };
}

/** The stack's SSH URL of a served bare repo (a path under GIT_SERVED_DIR). */
export function sshRemoteFor(remote: string): string {
  return `${stackEnv().SSH_REMOTE_BASE}${remote}`;
}

let service: Promise<string> | undefined;

/** A token of the dispatcher's own (service-dispatcher), from an AppRole login as the dispatcher makes it. */
export function serviceToken(): Promise<string> {
  service ??= (async () => {
    const s = stackEnv();
    const res = await fetch(`${s.VAULT_ADDR}/v1/auth/approle/login`, {
      method: "POST",
      body: JSON.stringify({ role_id: readFileSync(s.DISPATCHER_VAULT_ROLE_ID_FILE, "utf8").trim(), secret_id: readFileSync(s.DISPATCHER_VAULT_SECRET_ID_FILE, "utf8").trim() }),
    });
    if (!res.ok) throw new Error(`AppRole login failed: HTTP ${res.status} ${await res.text()}`);
    return ((await res.json()) as { auth: { client_token: string } }).auth.client_token;
  })();
  return service;
}

/** Nomad as the stack's administrator sees it (management token, runner namespace): for fixtures. */
export function adminNomad(): NomadClient {
  const s = stackEnv();
  return createNomadPort({ addr: s.NOMAD_ADDR, token: s.managementToken, namespace: s.NOMAD_NAMESPACE });
}

/** Nomad with the dispatcher's own token, as a dispatcher on the dev stack calls it. */
export function dispatcherNomad(): NomadClient {
  const s = stackEnv();
  return createNomadPort({ addr: s.NOMAD_ADDR, token: s.NOMAD_TOKEN, namespace: s.NOMAD_NAMESPACE });
}

/** A raw Nomad HTTP call with `token` (management by default; "" for an anonymous request). */
export async function nomadHttp(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Response> {
  const s = stackEnv();
  const token = opts.token ?? s.managementToken;
  return fetch(`${s.NOMAD_ADDR}${path}`, {
    method,
    headers: { ...(token ? { "X-Nomad-Token": token } : {}), "Content-Type": "application/json" },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
}

/** A short random suffix: action ids, secret names and job meta stay unique per test. */
export function uniq(): string {
  return randomBytes(4).toString("hex");
}

async function vaultRoot(method: string, path: string, body?: unknown): Promise<Response> {
  const env = stackEnv();
  const res = await fetch(`${env.VAULT_ADDR}/v1/${path}`, {
    method,
    headers: { "X-Vault-Token": env.rootToken, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok && res.status !== 404) throw new Error(`vault ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

/**
 * What the bootstrap does for a secret: its value, its one-path runner policy, and the role
 * allowing it; at the path `template` names (vault.secret_path), runner/{name} by default.
 */
export async function grantSecret(name: string, value: string, template = DEFAULT_SECRET_PATH): Promise<void> {
  const path = secretPathOf(template, name);
  const policy = readFileSync(join(root, "vault/policies/runner.hcl.tmpl"), "utf8").replaceAll("@PATH@", path).replaceAll("@NAME@", name).replaceAll("@MOUNT@", "kv");
  await vaultRoot("PUT", `sys/policies/acl/${policyFor(name)}`, { policy });
  await putSecret(path, value);
  await allowOnRunnerRole(policyFor(name));
}

/** A value at kv/data/<path>, as an operator writes it (no policy). */
export async function putSecret(path: string, value: string): Promise<void> {
  await vaultRoot("POST", `kv/data/${path}`, { data: { value } });
}

/**
 * Adds a policy to the runner role's allowed_policies. Test files grant secrets concurrently
 * and Vault has no check-and-set on roles, so the write is checked and repeated until it holds.
 */
async function allowOnRunnerRole(policy: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const role = (await (await vaultRoot("GET", "auth/token/roles/dispatcher-runner")).json()) as { data: { allowed_policies: string[] } };
    if (role.data.allowed_policies.includes(policy)) return;
    await vaultRoot("POST", "auth/token/roles/dispatcher-runner", { allowed_policies: [...role.data.allowed_policies, policy] });
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
  }
  throw new Error(`could not add ${policy} to the runner role's allowed_policies`);
}

/** What the bootstrap does for the sidecar's bot: its secret (field token) at `path`, the policy reading that one path, the role allowing it. */
export async function grantBot(path: string, policy: string, value: string): Promise<void> {
  const text = readFileSync(join(root, "vault/policies/sidecar-bot.hcl.tmpl"), "utf8").replaceAll("@PATH@", path);
  await vaultRoot("PUT", `sys/policies/acl/${policy}`, { policy: text });
  await vaultRoot("POST", path, { data: { token: value } });
  await allowOnRunnerRole(policy);
}

/** A KV v2 secret written with the root token (a fixture: a sibling path nobody is granted). */
export async function writeKv(path: string, data: Record<string, string>): Promise<void> {
  await vaultRoot("POST", path, { data });
}

export async function deleteSecret(name: string, template = DEFAULT_SECRET_PATH): Promise<void> {
  await vaultRoot("DELETE", `kv/metadata/${secretPathOf(template, name)}`);
}

export interface CapturedLog {
  lines: Record<string, unknown>[];
  text(): string;
}

export interface TestDispatcher extends Dispatcher {
  captured: CapturedLog;
  /** the Vault login its port uses (keepVaultAlive renews this one) */
  vaultSession: VaultSession;
}

/** A dispatcher on the dev stack for `remote`, with its JSON log lines kept in memory. */
export async function createTestDispatcher(
  remote: string,
  env: Record<string, string> = {},
  wrapVault: (vault: VaultPort) => VaultPort = (v) => v,
): Promise<TestDispatcher> {
  const workdir = join(await mkdtemp(join(tmpdir(), "dispatcher-work-")), "ops");
  const config: Config = loadConfig({
    env: {
      ...dispatcherEnv(remote),
      DISPATCHER_WORKDIR: workdir,
      DISPATCHER_INSTANCE: `test-${uniq()}`,
      ...env,
    },
    flags: { timeouts: { placementSeconds: 60 } },
  });
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: "debug", destination: sink, pretty: false });
  const session = createVaultSession(config.vault.addr, vaultAuthOf(config.vault), log.child({ component: "vault" }), systemClock);
  const vault = wrapVault(createVaultPort({ addr: config.vault.addr, session, role: config.vault.role, wrapTtlSeconds: config.vault.wrapTtlSeconds }));
  const d = startDispatcher(config, { log, vault });
  return {
    ...d,
    vaultSession: session,
    keepVaultAlive: (signal) => session.keepAlive(signal),
    captured: {
      get lines() {
        return raw.map((l) => JSON.parse(l) as Record<string, unknown>);
      },
      text: () => raw.join("\n"),
    },
  };
}

/** Dispatched children of a parameterized job, grouped by the action their meta names. */
export async function childrenByAction(parent: string, nomad: NomadClient = adminNomad()): Promise<Map<string, string[]>> {
  const byAction = new Map<string, string[]>();
  for (const child of await nomad.listChildren(parent)) {
    const id = child.meta.action_id;
    if (id) byAction.set(id, [...(byAction.get(id) ?? []), child.jobId]);
  }
  return byAction;
}

export async function childrenOf(parent: string, actionId: string): Promise<string[]> {
  return (await childrenByAction(parent)).get(actionId) ?? [];
}

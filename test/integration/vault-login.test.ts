// The dispatcher's own Vault login: an AppRole whose tokens live 30 s keeps a daemon working for
// three minutes (renewed at half TTL), and a token revoked under it leads to a fresh login.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, stackEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const SECRET = `LOGIN_${u.toUpperCase()}`;
const ROLE = `dispatcher-short-${u}`;
const s = stackEnv();
let dir: string;
let remote: OpsRemote;
let d: TestDispatcher;
const stop = new AbortController();
let running: Promise<unknown>;

async function vaultRoot(method: string, path: string, body?: unknown): Promise<Record<string, any>> {
  const res = await fetch(`${s.VAULT_ADDR}/v1/${path}`, { method, headers: { "X-Vault-Token": s.rootToken }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`vault ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.status === 204 ? {} : ((await res.json()) as Record<string, any>);
}

/** Commits an action that needs the secret (so the dispatcher must mint) and waits for its result. */
async function runAction(n: number): Promise<ActionResult> {
  const id = `login-${u}-${n}`;
  await remote.commit({ [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "uses"\ncontext = "c"\nsecrets = ["${SECRET}"]\n` });
  for (let i = 0; i < 120; i++) {
    const text = await remote.read(`vault/actions/${id}.result.json`);
    if (text) return JSON.parse(text) as ActionResult;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no result for ${id} after 60 s`);
}

beforeAll(async () => {
  await grantSecret(SECRET, `login-value-${u}`);
  await vaultRoot("POST", `auth/approle/role/${ROLE}`, { token_policies: ["service-dispatcher"], token_no_default_policy: true, token_ttl: "30s", token_max_ttl: "10m" });
  const roleId = (await vaultRoot("GET", `auth/approle/role/${ROLE}/role-id`)).data.role_id as string;
  const secretId = (await vaultRoot("POST", `auth/approle/role/${ROLE}/secret-id`)).data.secret_id as string;
  dir = await mkdtemp(join(tmpdir(), "vault-login-"));
  await writeFile(join(dir, "role-id"), roleId, { mode: 0o600 });
  await writeFile(join(dir, "secret-id"), secretId, { mode: 0o600 });
  remote = await createOpsRemote({ "formulas/uses.sh": `#!/usr/bin/env bash\n[ -n "$${SECRET}" ] && echo "has its secret"\n` });
  d = await createTestDispatcher(remote.remote, {
    DISPATCHER_SECRETS: SECRET,
    DISPATCHER_VAULT_ROLE_ID_FILE: join(dir, "role-id"),
    DISPATCHER_VAULT_SECRET_ID_FILE: join(dir, "secret-id"),
    DISPATCHER_POLL_SECONDS: "1",
  });
  running = Promise.all([d.keepVaultAlive(stop.signal), d.loop.run(stop.signal, 1000)]);
});

afterAll(async () => {
  stop.abort();
  await running;
  await deleteSecret(SECRET);
  await vaultRoot("DELETE", `auth/approle/role/${ROLE}`).catch(() => undefined);
  await remote?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("the dispatcher's Vault login", () => {
  it("keeps a 30 s token working through a 3-minute run by renewing it", async () => {
    const started = Date.now();
    for (let n = 0; n < 4; n++) {
      expect(await runAction(n)).toMatchObject({ status: "succeeded", logs: "has its secret" });
      if (n < 3) await new Promise((r) => setTimeout(r, 60_000 - ((Date.now() - started) % 60_000)));
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(180_000);
    const logins = d.captured.lines.filter((l) => l.msg === "logged in to Vault");
    expect(logins).toHaveLength(1);
    expect(logins[0]).toMatchObject({ method: "approle", ttl_s: 30 });
    // one renewal every 15 s
    expect(d.captured.lines.filter((l) => l.msg === "renewed own Vault token").length).toBeGreaterThanOrEqual(10);
  }, 300_000);

  it("logs in afresh when its token is revoked under it", async () => {
    await vaultRoot("POST", "auth/token/revoke", { token: d.vaultSession.client.token });
    expect(await runAction(9)).toMatchObject({ status: "succeeded" });
    // the failed renewal or the refused mint, whichever came first, logged in again
    expect(d.captured.lines.filter((l) => l.msg === "logged in to Vault").length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});

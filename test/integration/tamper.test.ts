// A wrapping token unwrapped by someone else before the runner: an incident with its own result
// class, naming the secrets to rotate; the thief's token is revoked when the allocation ends.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionResult } from "../../dispatcher/core/result.js";
import { createOpsRemote, type OpsRemote } from "../helpers/gitrepo.js";
import { createTestDispatcher, deleteSecret, grantSecret, stackEnv, uniq, type TestDispatcher } from "../helpers/stack.js";

const u = uniq();
const SECRET = `TAMPER_${u.toUpperCase()}`;
const id = `tamper-${u}`;
const s = stackEnv();
let remote: OpsRemote;
let d: TestDispatcher;
let stolen: string | undefined;

async function unwrap(wrappingToken: string): Promise<string> {
  const res = await fetch(`${s.VAULT_ADDR}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrappingToken } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { auth: { client_token: string } }).auth.client_token;
}

async function lookupSelf(token: string): Promise<number> {
  return (await fetch(`${s.VAULT_ADDR}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": token } })).status;
}

beforeAll(async () => {
  await grantSecret(SECRET, `tamper-value-${u}`);
  remote = await createOpsRemote({
    "formulas/uses.sh": "#!/usr/bin/env bash\necho should not run\n",
    [`vault/actions/${id}.toml`]: `id = "${id}"\nformula = "uses"\ncontext = "c"\nsecrets = ["${SECRET}"]\n`,
  });
  // the thief reads the payload between dispatch and the runner's start and unwraps it first
  d = await createTestDispatcher(remote.remote, { DISPATCHER_SECRETS: SECRET }, (v) => ({
    ...v,
    async mintWrapped(req) {
      const wrapped = await v.mintWrapped(req);
      stolen = await unwrap(wrapped.wrappingToken);
      return wrapped;
    },
  }));
  await d.loop.once();
}, 120_000);

afterAll(async () => {
  await deleteSecret(SECRET);
  await remote?.cleanup();
});

describe("a wrapping token unwrapped by someone else first", () => {
  it("fails the action with class tampered, naming the secret to rotate; the formula never runs", async () => {
    const r = JSON.parse((await remote.read(`vault/actions/${id}.result.json`))!) as ActionResult;
    expect(r).toMatchObject({
      status: "failed",
      exit_code: 90,
      error: { class: "tampered", message: `wrapping token is invalid, expired or already used: refusing to run (possible tampering; rotate: ${SECRET})` },
    });
    expect(r.logs).not.toContain("should not run");
  });

  it("logs the incident at error", () => {
    const line = d.captured.lines.find((l) => l.msg === "action finished: its wrapping token was tampered with");
    expect(line).toMatchObject({ level: 50, action: id, class: "tampered", status: "failed" });
  });

  it("revokes the token the thief unwrapped once the allocation ended", async () => {
    expect(stolen).toMatch(/^s\./);
    expect(await lookupSelf(stolen!)).toBe(403);
  });
});

// The policies the bootstrap applies, checked on OpenBao: a runner token reads only its secret,
// and the dispatcher's own token reads none.
import { beforeAll, describe, expect, it } from "vitest";
import type { VaultPort } from "../../dispatcher/core/ports.js";
import { createVaultPort } from "../../dispatcher/vault/tokens.js";
import { grantSecret, serviceToken, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq().toUpperCase();
const A = `POL_A_${u}`;
const B = `POL_B_${u}`;

async function readSecret(token: string, name: string): Promise<number> {
  const env = stackEnv();
  return (await fetch(`${env.VAULT_ADDR}/v1/kv/data/runner/${name}`, { headers: { "X-Vault-Token": token } })).status;
}

async function unwrap(wrappingToken: string): Promise<{ client_token: string; policies: string[]; lease_duration: number }> {
  const env = stackEnv();
  const res = await fetch(`${env.VAULT_ADDR}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrappingToken } });
  return ((await res.json()) as { auth: { client_token: string; policies: string[]; lease_duration: number } }).auth;
}

describe("vault policies", () => {
  const env = stackEnv();
  let vault: VaultPort;

  beforeAll(async () => {
    vault = createVaultPort({ addr: env.VAULT_ADDR, token: await serviceToken(), role: "dispatcher-runner", wrapTtlSeconds: 60 });
    await grantSecret(A, "value-a");
    await grantSecret(B, "value-b");
  });

  it("gives a runner-A token read on A and 403 on B", async () => {
    const wrapped = await vault.mintWrapped({ policies: [`runner-${A.toLowerCase()}`], ttlSeconds: 60, meta: { action: "policy-test" } });
    const auth = await unwrap(wrapped.wrappingToken);
    // no default policy: the token can read A and revoke itself, nothing else
    expect(auth.policies).toEqual([`runner-${A.toLowerCase()}`]);
    expect(await readSecret(auth.client_token, A)).toBe(200);
    expect(await readSecret(auth.client_token, B)).toBe(403);
    await vault.revokeAccessor(wrapped.accessor, "policy-test");
    expect(await readSecret(auth.client_token, A)).toBe(403);
  });

  it("refuses the dispatcher's own token on every secret path", async () => {
    for (const name of [A, B, "DEMO_TOKEN", "DEPLOY_KEY"]) expect(await readSecret(await serviceToken(), name)).toBe(403);
  });

  it("refuses a policy the role does not allow: another service's, default, and a runner policy that was never made", async () => {
    for (const policy of ["service-dispatcher", "default", "runner-never_made"]) {
      await expect(vault.mintWrapped({ policies: [policy], ttlSeconds: 60, meta: {} }), policy).rejects.toThrow(/vault: create token on role dispatcher-runner failed \(HTTP 400: /);
    }
  });

  it("refuses a TTL past the role's explicit maximum (24 h plus grace)", async () => {
    const wrapped = await vault.mintWrapped({ policies: [`runner-${A.toLowerCase()}`], ttlSeconds: 3 * 24 * 3600, meta: { action: "ttl-test" } });
    const auth = await unwrap(wrapped.wrappingToken);
    expect(auth.lease_duration).toBeLessThanOrEqual(24 * 3600 + 600);
    await vault.revokeAccessor(wrapped.accessor, "ttl-test");
  });

  it("reports which runner policies are missing", async () => {
    expect(await vault.missingPolicies([`runner-${A.toLowerCase()}`, "runner-never_made"])).toEqual(["runner-never_made"]);
  });
});

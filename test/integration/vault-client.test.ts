// The Vault client (vault/client.ts, on node-vault) against OpenBao: it takes nothing from the
// environment, where node-vault on its own takes the token, address, path prefix and namespace a
// client was not given. Mint, wrap, unwrap, lookup and revoke go through it end to end.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { policyFor } from "../../dispatcher/core/catalog.js";
import { VaultApiError } from "../../dispatcher/errors.js";
import { callVault, createVaultClient } from "../../dispatcher/vault/client.js";
import { readRunnerSecret, revokeSelf, unwrapRunnerToken } from "../../dispatcher/vault/runner.js";
import { createVaultPort } from "../../dispatcher/vault/tokens.js";
import { deleteSecret, grantSecret, serviceToken, stackEnv, uniq } from "../helpers/stack.js";

const u = uniq();
const SECRET = `DECLARED_${u.toUpperCase()}`;
const VALUE = `declared-value-${u}`;
const s = stackEnv();
const ENV_KEYS = ["VAULT_TOKEN", "VAULT_ADDR", "VAULT_PREFIX", "VAULT_NAMESPACE"] as const;
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

beforeAll(() => grantSecret(SECRET, VALUE));
afterAll(() => deleteSecret(SECRET));
afterEach(() => {
  for (const k of ENV_KEYS) if (saved[k] === undefined) delete process.env[k];
  else process.env[k] = saved[k];
});

describe("createVaultClient on OpenBao", () => {
  it("sends no token when it was given none: the root token in VAULT_TOKEN reads nothing", async () => {
    process.env.VAULT_TOKEN = s.rootToken;
    const err = await callVault(`read secret ${SECRET}`, () => createVaultClient(s.VAULT_ADDR).read(`kv/data/runner/${SECRET}`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultApiError);
    expect([(err as VaultApiError).message, (err as VaultApiError).status]).toEqual([`vault: read secret ${SECRET} failed (HTTP 403: permission denied)`, 403]);
  });

  it("reads at its own address and path whatever VAULT_ADDR, VAULT_PREFIX and VAULT_NAMESPACE say", async () => {
    Object.assign(process.env, { VAULT_ADDR: "http://127.0.0.1:1", VAULT_PREFIX: "/elsewhere", VAULT_NAMESPACE: "other" });
    const res = await createVaultClient(s.VAULT_ADDR, s.rootToken).read<{ data: { data: { value: string } } }>(`kv/data/runner/${SECRET}`);
    expect(res.data.data.value).toBe(VALUE);
  });

  it("mints a wrapped token that the runner's side unwraps once, reads with and revokes, under a VAULT_TOKEN that could read anything", async () => {
    const port = createVaultPort({ addr: s.VAULT_ADDR, token: await serviceToken(), role: "dispatcher-runner", wrapTtlSeconds: 60 });
    const wrapped = await port.mintWrapped({ policies: [policyFor(SECRET)], ttlSeconds: 60, meta: { action: `declared-${u}` } });
    process.env.VAULT_TOKEN = s.rootToken;
    const t = await unwrapRunnerToken(s.VAULT_ADDR, wrapped.wrappingToken, "auth/token/create/dispatcher-runner", [SECRET]);
    expect(await readRunnerSecret(t, "kv", SECRET)).toBe(VALUE);
    // a replay of the wrapping token is refused as tampering
    await expect(unwrapRunnerToken(s.VAULT_ADDR, wrapped.wrappingToken, "auth/token/create/dispatcher-runner", [SECRET])).rejects.toThrow(
      `wrapping token is invalid, expired or already used: refusing to run (possible tampering; rotate: ${SECRET})`,
    );
    await revokeSelf(t);
    const after = await callVault("look up own token", () => t.client.read("auth/token/lookup-self")).catch((e: unknown) => e);
    expect([(after as VaultApiError).message, (after as VaultApiError).status]).toEqual(["vault: look up own token failed (HTTP 403: permission denied)", 403]);
    // the accessor is gone with it: the dispatcher's revoke reaches its goal without a call failing
    await port.revokeAccessor(wrapped.accessor, `declared-${u}`);
  });
});

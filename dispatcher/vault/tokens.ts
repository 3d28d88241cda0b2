import type { VaultPort, WrappedToken } from "../core/ports.js";
import { Tampered } from "../errors.js";
import type { VaultSession } from "./login.js";
import { callVault as callAsIs, createVaultClient, statusOf } from "./client.js";

export interface VaultPortOptions {
  addr: string;
  /** the dispatcher's own login (policy service-dispatcher): mints, revokes, reads policy names */
  session?: VaultSession;
  /** or a fixed token (tests, tools) */
  token?: string;
  /** token role the runner tokens are created on */
  role: string;
  /** how long the wrapping token may wait for the job to start */
  wrapTtlSeconds: number;
}

/** The dispatcher's side of the secret handoff: check policies, mint wrapped tokens, revoke. */
export function createVaultPort(opts: VaultPortOptions): VaultPort {
  const session = opts.session;
  const client = session?.client ?? createVaultClient(opts.addr, opts.token);
  /** every call waits for the login; a 403 (token revoked under us) logs in again and retries once */
  async function callVault<T>(what: string, call: () => Promise<T>): Promise<T> {
    await session?.ready();
    try {
      return await callAsIs(what, call);
    } catch (err) {
      if (!session || statusOf(err) !== 403) throw err;
      await session.relogin();
      return callAsIs(what, call);
    }
  }
  return {
    async missingPolicies(policies) {
      const missing: string[] = [];
      for (const name of policies) {
        try {
          await callVault(`read policy ${name}`, () => client.read(`sys/policies/acl/${name}`));
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
          missing.push(name);
        }
      }
      return missing;
    },

    async mintWrapped({ policies, ttlSeconds, meta }): Promise<WrappedToken> {
      const res = await callVault(`create token on role ${opts.role}`, () =>
        client.write(
          `auth/token/create/${opts.role}`,
          { policies, ttl: `${ttlSeconds}s`, explicit_max_ttl: `${ttlSeconds}s`, meta, renewable: false },
          { headers: { "X-Vault-Wrap-TTL": `${opts.wrapTtlSeconds}s` } },
        ),
      );
      const info = (res as { wrap_info?: { token?: string; wrapped_accessor?: string } }).wrap_info;
      if (!info?.token || !info.wrapped_accessor) {
        throw new Error(`vault: token create on role ${opts.role} returned no wrap_info (is response wrapping disabled?)`);
      }
      return { wrappingToken: info.token, accessor: info.wrapped_accessor, policies };
    },

    async revokeAccessor(accessor, actionId) {
      // the accessor comes from the ledger: revoke only a token this role made for this action
      const expected = `auth/token/create/${opts.role}`;
      let info: { data?: { path?: string; meta?: Record<string, string> | null } };
      try {
        info = await callVault("look up token by accessor", () => client.write("auth/token/lookup-accessor", { accessor }));
      } catch (err) {
        // already expired or revoked (by the runner itself): the goal is reached
        if (statusOf(err) === 400 || statusOf(err) === 404) return;
        throw err;
      }
      const path = info.data?.path;
      const action = info.data?.meta?.action;
      if (path !== expected || action !== actionId) {
        throw new Tampered(
          `refusing to revoke token accessor ${accessor}: it was made at "${path ?? "unknown"}" for action "${action ?? "none"}", expected "${expected}" for "${actionId}"`,
        );
      }
      try {
        await callVault("revoke token by accessor", () => client.write("auth/token/revoke-accessor", { accessor }));
      } catch (err) {
        // already expired or revoked by the runner itself: the goal is reached
        if (statusOf(err) === 400 || statusOf(err) === 404) return;
        throw err;
      }
    },
  };
}

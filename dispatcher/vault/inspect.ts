import { callVault, statusOf, type VaultClient } from "./client.js";
import type { VaultSession } from "./login.js";

/** Read-only questions `dispatcher doctor` asks Vault about the dispatcher's own token. */
export interface VaultInspector {
  /** server version; throws when unreachable, sealed or uninitialized */
  version(): Promise<string>;
  /** the token's capabilities on each path (sys/capabilities-self), e.g. ["deny"] */
  capabilities(paths: string[]): Promise<Record<string, string[]>>;
  /** how the dispatcher logs in, and the seconds its token has left (0: no expiry) */
  login(): Promise<{ method: string; ttlSeconds: number }>;
  /** a policy's rules (sys/policies/acl/<name>), undefined when it does not exist */
  policyRules(policy: string): Promise<string | undefined>;
}

export function createVaultInspector(addr: string, session: VaultSession): VaultInspector {
  const client: VaultClient = session.client;
  return {
    async login() {
      return { method: session.describe(), ttlSeconds: await session.remainingSeconds() };
    },
    async version() {
      const res = (await callVault(`read health of ${addr}`, () => client.health())) as { version?: string; sealed?: boolean; initialized?: boolean };
      if (res.initialized === false) throw new Error(`${addr} is not initialized`);
      if (res.sealed) throw new Error(`${addr} is sealed`);
      return res.version ?? "unknown";
    },

    async policyRules(policy) {
      await session.ready();
      try {
        const res = (await callVault(`read policy ${policy}`, () => client.read(`sys/policies/acl/${policy}`))) as { data?: { policy?: string } };
        return res.data?.policy;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },

    async capabilities(paths) {
      await session.ready();
      const res = (await callVault("look up own capabilities", () => client.write("sys/capabilities-self", { paths }))) as Record<string, unknown>;
      // the answer keys each path at the top level (and again under data)
      return Object.fromEntries(paths.map((p) => [p, Array.isArray(res[p]) ? (res[p] as string[]) : []]));
    },
  };
}

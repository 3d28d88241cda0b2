import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type nodeVault from "node-vault";
import { VaultApiError } from "../errors.js";

// Vault's HTTP API on node-vault (0.12, itself on axios). node-vault fills what it is not given
// from the environment (VAULT_TOKEN, VAULT_ADDR, VAULT_PREFIX, VAULT_NAMESPACE,
// VAULT_SKIP_VERIFY) and logs request bodies (AppRole secret_id, tokens to unwrap) under
// DEBUG=node-vault: here every one of those is set explicitly, its own token is never set (each
// call carries its token as a header), and its debug log is a no-op.

export interface VaultClient {
  /** sent as X-Vault-Token; replaced in place on login */
  token: string | undefined;
  /** GET /v1/<path>; T is the shape the caller reads (Vault's JSON, unchecked) */
  read<T>(path: string): Promise<T>;
  /** POST /v1/<path>; `headers` on top of the token (a wrap TTL, another token for unwrap) */
  write<T>(path: string, data: unknown, opts?: { headers?: Record<string, string> }): Promise<T>;
  /** GET /v1/sys/health; its non-200 answers (sealed, standby) are answers, not failures */
  health<T>(): Promise<T>;
}

const TIMEOUT_MS = 15_000;

/** node-vault's options and client as its source has them (its typings leave these out) */
type NodeVaultOptions = NonNullable<Parameters<typeof nodeVault>[0]> & { rpDefaults?: { strictSSL?: boolean; timeout?: number } };
type NodeVaultClient = Omit<nodeVault.client, "token"> & { token: string | undefined; pathPrefix: string; namespace: string | undefined };

/**
 * node-vault, loaded at the first call: it brings axios, whose load reads the fetch globals (Node
 * then loads its undici, about 50 ms of CPU); a runner without secrets and a CLI command that
 * never asks Vault do not pay for it.
 */
let loaded: Promise<typeof nodeVault> | undefined;
const load = () => (loaded ??= import("node-vault").then((m) => m.default));

/** The one place a Vault client is constructed; every Vault call in the project goes through here. */
export function createVaultClient(addr: string, token?: string): VaultClient {
  const tls = addr.startsWith("https:");
  const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: 16 }) : new HttpAgent({ keepAlive: true, maxSockets: 16 });
  const options: NodeVaultOptions = {
    apiVersion: "v1",
    endpoint: addr,
    // certificates are checked whatever VAULT_SKIP_VERIFY says
    rpDefaults: { strictSSL: true, timeout: TIMEOUT_MS },
    requestOptions: tls ? { httpsAgent: agent } : { httpAgent: agent },
    debug: () => undefined,
  };
  let made: Promise<NodeVaultClient> | undefined;
  const vault = () =>
    (made ??= load().then((create) => {
      const v = create(options) as unknown as NodeVaultClient;
      // what it read from the environment for what it was not given: none of it is ours
      v.token = undefined;
      v.pathPrefix = "";
      v.namespace = undefined;
      return v;
    }));

  const tokenHeader = (): Record<string, string> => (client.token ? { "X-Vault-Token": client.token } : {});
  const client: VaultClient = {
    token,
    read: async (path) => (await vault()).read(path, { headers: tokenHeader() }),
    write: async (path, data, opts) => (await vault()).write(path, data, { headers: { ...tokenHeader(), ...opts?.headers } }),
    // node-vault hands sys/health's non-200 answers over as answers
    health: async () => (await vault()).request({ path: "/sys/health", method: "GET" }),
  };
  return client;
}

/** axios's code for its own timeout, in the words the rest of the project uses */
const TRANSPORT_CODES: Record<string, string> = { ECONNABORTED: "ETIMEDOUT" };

/** Runs a Vault call and turns its failures into VaultApiError naming the operation. */
export async function callVault<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    // node-vault's refusal: { response: { statusCode, body } }, the message Vault's first error (or "Status <n>")
    const status = (err as { response?: { statusCode?: unknown } }).response?.statusCode;
    const code = (err as { code?: unknown }).code;
    const detail = typeof status === "number" ? `HTTP ${status}: ${(err as Error).message}` : typeof code === "string" ? (TRANSPORT_CODES[code] ?? code) : String(err);
    throw new VaultApiError(`vault: ${what} failed (${detail})`, typeof status === "number" ? status : undefined, { cause: err });
  }
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof VaultApiError ? err.status : undefined;
}

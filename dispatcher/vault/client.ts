import type nodeVault from "node-vault";
import type { HttpRequest } from "../http.js";
import { VaultApiError } from "../errors.js";

// Vault's HTTP API on node-vault (0.12): its paths, token header, error words and sys/health
// handling. Its requests go through the project's transport (http.ts, axios configured for the hot
// path: keep-alive, a bounded pool, no compression, no redirects, no proxy), handed to node-vault
// as its `request-promise` option, instead of the axios instance it builds itself (redirects
// through follow-redirects, gzip asked for and undone, JSON transforms: about 3 ms of CPU a call).
// node-vault fills what it is not given from the environment (VAULT_TOKEN, VAULT_ADDR,
// VAULT_PREFIX, VAULT_NAMESPACE) and logs request bodies (AppRole secret_id, tokens to unwrap)
// under DEBUG=node-vault: here each of those is set explicitly, its own token is never set (each
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

/** node-vault's client as its source has it (its typings leave these out) */
type NodeVaultClient = Omit<nodeVault.client, "token"> & { token: string | undefined; pathPrefix: string; namespace: string | undefined };

/** What node-vault hands its `request-promise`, and what it reads back. */
interface VaultWireRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
}

/**
 * node-vault and the transport, loaded at the first call: they bring axios, whose load reads the
 * fetch globals (Node then loads its undici, about 50 ms of CPU); a runner without secrets and a
 * CLI command that never asks Vault do not pay for it.
 */
let loaded: Promise<[typeof nodeVault, typeof import("../http.js")]> | undefined;
const load = () => (loaded ??= Promise.all([import("node-vault").then((m) => m.default), import("../http.js")]));

/** The one place a Vault client is constructed; every Vault call in the project goes through here. */
export function createVaultClient(addr: string, token?: string): VaultClient {
  const endpoint = addr.replace(/\/+$/, "");
  let made: Promise<NodeVaultClient> | undefined;
  const vault = () =>
    (made ??= load().then(([create, { createHttp }]) => {
      const http = createHttp({ baseUrl: endpoint, headers: {}, params: {}, maxSockets: 16 });
      const send = async (o: VaultWireRequest) => {
        const res = await http.request({ method: o.method as HttpRequest["method"], url: o.uri.slice(endpoint.length), headers: o.headers, data: o.json, timeout: TIMEOUT_MS });
        return { statusCode: res.status, body: res.data, request: { path: new URL(o.uri).pathname } };
      };
      const v = create({ apiVersion: "v1", endpoint, pathPrefix: "", "request-promise": { defaults: () => send }, debug: () => undefined }) as unknown as NodeVaultClient;
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

/** Runs a Vault call and turns its failures into VaultApiError naming the operation. */
export async function callVault<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    // node-vault's refusal: { response: { statusCode, body } }, the message Vault's first error (or
    // "Status <n>"); the transport's failure (HttpFailure): its code
    const status = (err as { response?: { statusCode?: unknown } }).response?.statusCode;
    const code = (err as { code?: unknown }).code;
    const detail = typeof status === "number" ? `HTTP ${status}: ${(err as Error).message}` : typeof code === "string" ? code : String(err);
    throw new VaultApiError(`vault: ${what} failed (${detail})`, typeof status === "number" ? status : undefined, { cause: err });
  }
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof VaultApiError ? err.status : undefined;
}

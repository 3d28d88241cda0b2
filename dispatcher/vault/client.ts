import { createHttp, HttpFailure } from "../http.js";
import { VaultApiError } from "../errors.js";

// Vault's HTTP API on the shared node:http transport. node-vault (with axios, follow-redirects,
// form-data, tv4, mustache) cost about 50 ms of CPU at every start of the CLI and the runner,
// and read VAULT_TOKEN from the environment for a client created without a token.

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

/** An answer other than 2xx; the message is Vault's first error, as Vault words it. */
class VaultRefusal extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 15_000;

/** The one place a Vault client is constructed; every Vault call in the project goes through here. */
export function createVaultClient(addr: string, token?: string): VaultClient {
  const http = createHttp({ baseUrl: addr, headers: {}, params: {}, maxSockets: 16 });

  async function call<T>(method: "GET" | "POST", path: string, data: unknown, headers: Record<string, string>): Promise<T> {
    const res = await http.request({ method, url: `/v1/${path}`, data, headers, timeout: TIMEOUT_MS });
    if (res.status >= 200 && res.status < 300) return res.data as T;
    const errors = (res.data as { errors?: unknown } | undefined)?.errors;
    throw new VaultRefusal(Array.isArray(errors) && typeof errors[0] === "string" ? errors[0] : `Status ${res.status}`, res.status);
  }

  const tokenHeader = (): Record<string, string> => (client.token ? { "X-Vault-Token": client.token } : {});
  const client: VaultClient = {
    token,
    read: (path) => call("GET", path, undefined, tokenHeader()),
    write: (path, data, opts) => call("POST", path, data, { ...tokenHeader(), ...opts?.headers }),
    async health<T>() {
      return (await http.request({ url: "/v1/sys/health", timeout: TIMEOUT_MS })).data as T;
    },
  };
  return client;
}

/** Runs a Vault call and turns its failures into VaultApiError naming the operation. */
export async function callVault<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const status = err instanceof VaultRefusal ? err.status : undefined;
    const detail = status !== undefined ? `HTTP ${status}: ${(err as Error).message}` : err instanceof HttpFailure ? err.code : String(err);
    throw new VaultApiError(`vault: ${what} failed (${detail})`, status, { cause: err });
  }
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof VaultApiError ? err.status : undefined;
}

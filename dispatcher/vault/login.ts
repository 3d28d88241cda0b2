import { readFile, stat } from "node:fs/promises";
import type { Clock } from "../core/ports.js";
import { ConfigInvalid } from "../errors.js";
import type { Logger } from "../log.js";
import { callVault, createVaultClient, type VaultClient } from "./client.js";

// The dispatcher's own Vault login. AppRole (role_id and secret_id from files) by default, a
// token file re-read when it changes, or a plain VAULT_TOKEN. The token is renewed at half its
// TTL; when renewal fails (revoked, past its max TTL) the session logs in afresh.

export type VaultAuthMethod =
  | { kind: "approle"; roleIdFile: string; secretIdFile: string; mount: string }
  | { kind: "token_file"; path: string }
  | { kind: "token"; token: string };

export interface VaultSession {
  /** one client for every call of the dispatcher's own: its token is replaced in place on login */
  client: VaultClient;
  /** resolves once the first login is done (every call waits for it) */
  ready(): Promise<void>;
  /** logs in again now (after a 403, or when renewal failed) */
  relogin(): Promise<void>;
  /** renews at half TTL and logs in afresh on failure, until `signal` aborts */
  keepAlive(signal: AbortSignal): Promise<void>;
  /** seconds the current token has left (0: it never expires) */
  remainingSeconds(): Promise<number>;
  describe(): string;
}

/** How often a token file is checked for a new token. */
const FILE_CHECK_MS = 5_000;
const RETRY_MS = 5_000;

async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigInvalid(`${path}: cannot read the dispatcher's ${what} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
  const value = text.trim();
  if (!value) throw new ConfigInvalid(`${path}: the dispatcher's ${what} file is empty`);
  return value;
}

export function createVaultSession(addr: string, method: VaultAuthMethod, log: Logger, clock: Clock): VaultSession {
  const client = createVaultClient(addr, method.kind === "token" ? method.token : undefined);
  const anonymous = createVaultClient(addr, undefined);
  let ttlSeconds = 0;
  let renewedAt = clock.now().getTime();
  let fileMtime = 0;
  let first: Promise<void> | undefined;

  async function lookupTtl(): Promise<number> {
    const res = (await callVault("look up own token", () => client.read("auth/token/lookup-self"))) as { data?: { ttl?: number } };
    return res.data?.ttl ?? 0;
  }

  async function login(): Promise<void> {
    if (method.kind === "approle") {
      const [roleId, secretId] = await Promise.all([readSecretFile(method.roleIdFile, "AppRole role_id"), readSecretFile(method.secretIdFile, "AppRole secret_id")]);
      const res = (await callVault(`log in with AppRole at auth/${method.mount}`, () =>
        anonymous.write(`auth/${method.mount}/login`, { role_id: roleId, secret_id: secretId }),
      )) as { auth?: { client_token?: string; lease_duration?: number } };
      if (!res.auth?.client_token) throw new ConfigInvalid(`vault: AppRole login at auth/${method.mount} returned no token`);
      client.token = res.auth.client_token;
      ttlSeconds = res.auth.lease_duration ?? 0;
    } else {
      if (method.kind === "token_file") {
        fileMtime = (await stat(method.path)).mtimeMs;
        client.token = await readSecretFile(method.path, "Vault token");
      }
      ttlSeconds = await lookupTtl();
    }
    renewedAt = clock.now().getTime();
    log.info({ method: method.kind, ttl_s: ttlSeconds }, "logged in to Vault");
  }

  async function renew(): Promise<void> {
    const res = (await callVault("renew own token", () => client.write("auth/token/renew-self", {}))) as { auth?: { lease_duration?: number } };
    ttlSeconds = res.auth?.lease_duration ?? ttlSeconds;
    renewedAt = clock.now().getTime();
    log.debug({ ttl_s: ttlSeconds }, "renewed own Vault token");
  }

  async function fileChanged(): Promise<boolean> {
    if (method.kind !== "token_file") return false;
    return (await stat(method.path).catch(() => undefined))?.mtimeMs !== fileMtime;
  }

  /** the first login, shared by every caller while it runs; a failed one is tried afresh by the next caller */
  const ready = () =>
    (first ??= login().catch((err: unknown) => {
      first = undefined;
      throw err;
    }));

  return {
    client,
    ready,
    async relogin() {
      await ready().catch(() => undefined);
      await login();
    },
    async keepAlive(signal) {
      // Vault down (or sealed) when the dispatcher starts is an outage like any other: waited out
      while (!signal.aborted) {
        try {
          await ready();
          break;
        } catch (err) {
          log.error({ err }, "Vault login failed; retrying");
          await clock.sleep(RETRY_MS, signal).catch(() => undefined);
        }
      }
      while (!signal.aborted) {
        const halfMs = (ttlSeconds * 1000) / 2;
        const waitMs = ttlSeconds > 0 ? Math.max(1000, renewedAt + halfMs - clock.now().getTime()) : Number.POSITIVE_INFINITY;
        await clock.sleep(method.kind === "token_file" ? Math.min(waitMs, FILE_CHECK_MS) : Math.min(waitMs, 2 ** 31 - 1), signal).catch(() => undefined);
        if (signal.aborted) return;
        try {
          if (await fileChanged()) await login();
          else if (ttlSeconds > 0 && clock.now().getTime() >= renewedAt + halfMs) {
            await renew().catch(async (err: unknown) => {
              log.warn({ err }, "could not renew own Vault token; logging in again");
              await login();
            });
          }
        } catch (err) {
          log.error({ err }, "Vault login failed; retrying");
          await clock.sleep(RETRY_MS, signal).catch(() => undefined);
        }
      }
    },
    async remainingSeconds() {
      await ready();
      return lookupTtl();
    },
    describe() {
      if (method.kind === "approle") return `AppRole at auth/${method.mount} (role_id ${method.roleIdFile}, secret_id ${method.secretIdFile})`;
      return method.kind === "token_file" ? `token file ${method.path}` : "VAULT_TOKEN";
    },
  };
}

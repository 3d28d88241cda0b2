import { MIN_SECRET_LENGTH, trimSecret } from "../core/redact.js";
import { DEFAULT_SECRET_PATH, secretPathOf } from "../contract.js";
import { PermanentFailure, SecretMissing, Tampered } from "../errors.js";
import { callVault, createVaultClient, statusOf, type VaultClient } from "./client.js";

/** The runner's side of the handoff: unwrap once, read the granted secrets, revoke itself. */

/** How long the runner waits out an unreachable or sealed Vault before it gives up. */
const OUTAGE_MS = 120_000;

function isOutage(err: unknown): boolean {
  const status = statusOf(err);
  return status === undefined || status >= 500;
}

/**
 * Vault down or sealed (no answer, 5xx) is waited out: a job that starts during a Vault restart
 * must not mistake the outage for a forged token. Anything else is returned at once.
 */
async function patiently<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + OUTAGE_MS;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isOutage(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export interface RunnerToken {
  client: VaultClient;
  token: string;
}

/**
 * Checks where the wrapping token came from, then unwraps it. Single use: a second unwrap
 * (a replay, or someone who read it first) is refused by Vault and reported as tampering.
 */
export async function unwrapRunnerToken(addr: string, wrappingToken: string, expectedPath: string, secrets: string[]): Promise<RunnerToken> {
  // whoever unwrapped it first holds a token for these secrets: they must be rotated
  const rotate = `rotate: ${secrets.join(", ")}`;
  const wrapping = createVaultClient(addr, undefined);
  let lookup: { data?: { creation_path?: string } };
  try {
    lookup = await patiently(() => callVault("look up wrapping token", () => wrapping.write("sys/wrapping/lookup", { token: wrappingToken })));
  } catch (err) {
    if (isOutage(err)) throw err;
    throw new Tampered(`wrapping token is invalid, expired or already used: refusing to run (possible tampering; ${rotate})`, { cause: err });
  }
  const path = lookup.data?.creation_path;
  if (path !== expectedPath) {
    throw new Tampered(`wrapping token was created at "${path}", expected "${expectedPath}": refusing to run (${rotate})`);
  }
  let res: { auth?: { client_token?: string } };
  try {
    res = await patiently(() => callVault("unwrap", () => wrapping.write("sys/wrapping/unwrap", {}, { headers: { "X-Vault-Token": wrappingToken } })));
  } catch (err) {
    if (isOutage(err)) throw err;
    throw new Tampered(`unwrap refused: the wrapping token was already used (possible tampering; ${rotate})`, { cause: err });
  }
  const token = res.auth?.client_token;
  if (!token) throw new PermanentFailure("unwrapped response holds no token", "auth");
  return { client: createVaultClient(addr, token), token };
}

/** Reads kv <mount>/data/<secret path of name> (runner/<name> by default) field `value`; absent or empty is SecretMissing. */
export function readRunnerSecret(t: RunnerToken, mount: string, name: string, pathTemplate = DEFAULT_SECRET_PATH): Promise<string> {
  return readSecretField(t, `${mount}/data/${secretPathOf(pathTemplate, name)}`, "value", `secret ${name}`);
}

/** Reads the sidecar's bot secret (a KV v2 data path and field); absent or empty is SecretMissing. */
export function readBotSecret(t: RunnerToken, bot: { path: string; field: string }): Promise<string> {
  return readSecretField(t, bot.path, bot.field, "the bot secret");
}

async function readSecretField(t: RunnerToken, path: string, field: string, what: string): Promise<string> {
  let res: { data?: { data?: Record<string, unknown> } };
  try {
    res = await patiently(() => callVault(`read ${what}`, () => t.client.read(path)));
  } catch (err) {
    if (statusOf(err) === 404) throw new SecretMissing(`${what} is missing: nothing at ${path}`, { cause: err });
    throw err;
  }
  const value = res.data?.data?.[field];
  if (typeof value !== "string" || value.length === 0) {
    throw new SecretMissing(`${what} is missing or empty at ${path} (expected a non-empty string field "${field}")`);
  }
  // a value this short could not be masked in the formula's output: refuse rather than leak it
  const length = trimSecret(value).length;
  if (length < MIN_SECRET_LENGTH) {
    throw new SecretMissing(`${what} at ${path} is ${length} characters long: values shorter than ${MIN_SECRET_LENGTH} cannot be masked in the formula's output; store a longer value`);
  }
  return value;
}

export async function revokeSelf(t: RunnerToken): Promise<void> {
  await patiently(() => callVault("revoke own token", () => t.client.write("auth/token/revoke-self", {})));
}

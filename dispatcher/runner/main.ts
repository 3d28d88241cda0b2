#!/usr/bin/env node
// Runs inside the allocation: unwrap the token, read exactly the granted secrets, run the
// formula from the ops repo at the action's commit, revoke the token, exit with the formula's code.
import { constants } from "node:fs";
import { access, readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { MIN_SECRET_LENGTH, trimSecret } from "../core/redact.js";
import { PermanentFailure, failureClassOf } from "../errors.js";
import { checkoutAt, checkoutBoundsFromEnv, checkoutFactory, verifyCheckout } from "./checkout.js";
import type { RunnerToken } from "../vault/runner.js";
import { RUNNER_ERROR_EXIT, RUNNER_TIMEOUT_EXIT, decodePayload, outcomeLine, formatRunnerError, readRunnerLayout, readRunnerMeta, type RunnerLayout, type RunnerMeta, type RunnerPayload } from "../contract.js";
import { formulaEnv, runFormula, wallsFromEnv } from "./formula.js";

/** The verdict nonce from the payload: held in memory only, it signs the runner's own failure line. */
let payload: RunnerPayload = {};

async function main(): Promise<number> {
  const taskDir = process.env.NOMAD_TASK_DIR ?? process.cwd();
  payload = await takePayload(join(taskDir, "wrap.token"));
  const { wrappingToken } = payload;
  const meta = readRunnerMeta(process.env);
  const layout = readRunnerLayout(process.env);
  // what runs is checked before anything is unwrapped
  const checkout = await checkoutApproved(meta, join(taskDir, "ops"));
  const factory = layout.factory ? await checkoutFactory(layout.factory.repo, layout.factory.commit, join(taskDir, "factory"), checkoutBoundsFromEnv(process.env)) : undefined;
  let token: RunnerToken | undefined;
  let vault: VaultSide | undefined;
  const { bot } = payload;
  if (meta.secrets.length > 0 || bot) {
    if (!wrappingToken) throw new PermanentFailure(`the ${bot ? "sidecar has a bot identity" : "action lists secrets"} but the job carries no wrapping token`, "auth");
    vault = await loadVault();
    token = await vault.unwrapRunnerToken(meta.vaultAddr || process.env.VAULT_ADDR || "", wrappingToken, meta.rolePath, [...meta.secrets, ...(bot ? [bot.path] : [])]);
  }
  try {
    const secrets: Record<string, string> = {};
    for (const name of meta.secrets) secrets[name] = await vault!.readRunnerSecret(token!, meta.kvMount, name, layout.secretPath);
    if (bot) secrets[bot.env] = await vault!.readBotSecret(token!, bot);
    await checkMounts(meta.mountPaths);
    const mountValues = await mountFileValues(meta.mountPaths);
    const outcomeFile = join(taskDir, "outcome");
    const base = formulaEnv({ meta, checkout, home: taskDir, secrets, token: token?.token, base: process.env, ...(oldInvocation(layout) ? { roots: { factory, home: layout.home } } : {}) });
    const env = { ...base, DISPATCHER_OUTCOME_FILE: outcomeFile };
    const code = await runFormula({
      script: join(factory ?? checkout, "formulas", `${meta.formula}.sh`),
      args: layout.formulaArgs === "action-id" ? [meta.actionId] : [],
      cwd: checkout,
      env,
      secretValues: [...Object.values(secrets), ...(token ? [token.token] : []), ...mountValues],
      timeoutMs: meta.timeoutMs,
      walls: wallsFromEnv(process.env),
      stdout: process.stdout,
      stderr: process.stderr,
    });
    await tellOutcome(outcomeFile);
    return code;
  } finally {
    if (token) await vault!.revokeSelf(token).catch((err) => console.error(`[runner] warning: could not revoke own token: ${(err as Error).message}`));
  }
}

type VaultSide = typeof import("../vault/runner.js");

/**
 * The Vault side (node-vault and axios, most of the bundle) is loaded only by a run that unwraps
 * a token: an action without secrets or a bot identity never loads it (esbuild puts it in a chunk
 * of its own beside runner.mjs; bench/README.md, "The runner child's cost").
 */
function loadVault(): Promise<VaultSide> {
  return import("../vault/runner.js");
}

/** disinto's way of calling a formula (the id as $1, or formulas from the factory): its variables too (OPS_REPO_ROOT, FACTORY_ROOT, HOME). */
function oldInvocation(layout: RunnerLayout): boolean {
  return layout.formulaArgs === "action-id" || layout.factory !== undefined || layout.home !== undefined;
}

/** The ops repo at the approved commit, verified to be it (commit and action blob). */
async function checkoutApproved(meta: RunnerMeta, dir: string): Promise<string> {
  await checkoutAt(meta.opsRepo, meta.commit, dir, meta.actionPath, undefined, checkoutBoundsFromEnv(process.env));
  await verifyCheckout(dir, meta);
  return dir;
}

/** A requested mount that is not a readable directory on this node fails the run before the formula. */
async function checkMounts(paths: Record<string, string>): Promise<void> {
  for (const [alias, path] of Object.entries(paths)) {
    await access(path, constants.R_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
      throw new PermanentFailure(`mount ${alias}: host path ${path} is not readable on this node (${err.code})`, "infra");
    });
  }
}

/** A granted mount holds key files: every small file the formula could read there is masked like a secret. */
const MOUNT_FILE_MAX_BYTES = 64 * 1024;
const MOUNT_FILES_MAX = 256;

async function mountFileValues(paths: Record<string, string>): Promise<string[]> {
  const values: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (values.length >= MOUNT_FILES_MAX) return;
      const path = join(dir, e.name);
      if (e.isDirectory() && depth < 3) await walk(path, depth + 1);
      if (!e.isFile()) continue;
      const size = (await stat(path).catch(() => undefined))?.size ?? Infinity;
      if (size > MOUNT_FILE_MAX_BYTES) continue;
      const text = await readFile(path, "utf8").catch(() => undefined);
      if (text !== undefined && trimSecret(text).length >= MIN_SECRET_LENGTH) values.push(text);
    }
  };
  for (const dir of Object.values(paths)) await walk(dir, 0);
  return values;
}

/**
 * The formula's own verdict (the output contract of sidecars): one word it wrote to
 * $DISPATCHER_OUTCOME_FILE, printed last on stdout as `[outcome] <word>` for the dispatcher.
 */
async function tellOutcome(path: string): Promise<void> {
  const line = outcomeLine((await readFile(path, "utf8").catch(() => "")).slice(0, 200));
  if (line) await new Promise<void>((r) => process.stdout.write(`${line}\n`, () => r()));
}

/** Reads the payload file and deletes it, so the formula finds neither the wrapping token nor the verdict nonce. */
async function takePayload(path: string): Promise<RunnerPayload> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  await rm(path, { force: true });
  return decodePayload(text);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const cls = failureClassOf(err);
    console.error(formatRunnerError(cls, err instanceof Error ? err.message : String(err), payload.nonce));
    process.exit(cls === "timeout" ? RUNNER_TIMEOUT_EXIT : RUNNER_ERROR_EXIT);
  },
);

#!/usr/bin/env node
// Runs inside the allocation: unwrap the token, read exactly the granted secrets, run the
// formula from the ops repo at the action's commit, revoke the token, exit with the formula's code.
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { createMasker } from "../core/redact.js";
import { PermanentFailure, failureClassOf } from "../errors.js";
import { checkoutAt } from "../opsrepo/checkout.js";
import { readRunnerSecret, revokeSelf, unwrapRunnerToken, type RunnerToken } from "../vault/runner.js";
import { RUNNER_ERROR_EXIT, formatRunnerError, readRunnerMeta, type RunnerMeta } from "./contract.js";

async function main(): Promise<number> {
  const meta = readRunnerMeta(process.env);
  const taskDir = process.env.NOMAD_TASK_DIR ?? process.cwd();
  const wrappingToken = await takeWrappingToken(join(taskDir, "wrap.token"));
  let token: RunnerToken | undefined;
  if (meta.secrets.length > 0) {
    if (!wrappingToken) throw new PermanentFailure("the action lists secrets but the job carries no wrapping token", "auth");
    token = await unwrapRunnerToken(meta.vaultAddr, wrappingToken, meta.rolePath);
  }
  try {
    const secrets: Record<string, string> = {};
    for (const name of meta.secrets) secrets[name] = await readRunnerSecret(token!, meta.kvMount, name);
    await checkMounts(meta.mountPaths);
    const checkout = join(taskDir, "ops");
    await checkoutAt(meta.opsRepo, meta.commit, checkout);
    return await runFormula(meta, checkout, secrets, token?.token);
  } finally {
    if (token) await revokeSelf(token).catch((err) => console.error(`[runner] warning: could not revoke own token: ${(err as Error).message}`));
  }
}

/** A requested mount that is not a readable directory on this node fails the run before the formula. */
async function checkMounts(paths: Record<string, string>): Promise<void> {
  for (const [alias, path] of Object.entries(paths)) {
    await access(path, constants.R_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
      throw new PermanentFailure(`mount ${alias}: host path ${path} is not readable on this node (${err.code})`, "infra");
    });
  }
}

/** Reads the payload file and deletes it, so the formula cannot find the wrapping token. */
async function takeWrappingToken(path: string): Promise<string | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  await rm(path, { force: true });
  return text?.trim() || undefined;
}

function runFormula(meta: RunnerMeta, checkout: string, secrets: Record<string, string>, token?: string): Promise<number> {
  const script = join(checkout, "formulas", `${meta.formula}.sh`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...secrets,
    VAULT_ACTION_TOML: join(checkout, meta.actionPath),
    ACTION_ID: meta.actionId,
    OPS_REPO_DIR: checkout,
    // raw_exec cannot bind-mount: the formula reads the node's host volume path directly
    ...Object.fromEntries(Object.entries(meta.mountPaths).map(([alias, path]) => [`MOUNT_${alias.toUpperCase()}`, path])),
  };
  // the formula may use the token for its own secrets' paths; it can read nothing else
  if (token) env.VAULT_TOKEN = token;
  else delete env.VAULT_TOKEN;
  const values = [...Object.values(secrets), ...(token ? [token] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { cwd: checkout, env, stdio: ["ignore", "pipe", "pipe"] });
    const done = [pipeMasked(child.stdout, process.stdout, values), pipeMasked(child.stderr, process.stderr, values)];
    child.on("error", reject);
    child.on("close", (code, signal) => {
      void Promise.all(done).then(() => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
    });
  });
}

/** Copies a formula stream to ours with every secret value masked (Nomad stores what we print). */
function pipeMasked(from: Readable, to: Writable, values: string[]): Promise<void> {
  const masker = createMasker(values);
  from.setEncoding("utf8");
  from.on("data", (chunk: string) => to.write(masker.push(chunk)));
  return new Promise((resolve) => from.on("end", () => to.write(masker.end(), () => resolve())));
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(formatRunnerError(failureClassOf(err), err instanceof Error ? err.message : String(err)));
    process.exit(RUNNER_ERROR_EXIT);
  },
);

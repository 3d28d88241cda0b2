#!/usr/bin/env node
// Runs inside the allocation: unwrap the token, read exactly the granted secrets, run the
// formula from the ops repo at the action's commit, revoke the token, exit with the formula's code.
import { constants } from "node:fs";
import { access, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { PermanentFailure, failureClassOf } from "../errors.js";
import { checkoutAt, verifyCheckout } from "./checkout.js";
import { readRunnerSecret, revokeSelf, unwrapRunnerToken, type RunnerToken } from "../vault/runner.js";
import { RUNNER_ERROR_EXIT, RUNNER_TIMEOUT_EXIT, formatRunnerError, readRunnerMeta, type RunnerMeta } from "./contract.js";
import { formulaEnv, runFormula } from "./formula.js";

async function main(): Promise<number> {
  const meta = readRunnerMeta(process.env);
  const taskDir = process.env.NOMAD_TASK_DIR ?? process.cwd();
  const wrappingToken = await takeWrappingToken(join(taskDir, "wrap.token"));
  // what runs is checked before anything is unwrapped
  const checkout = await checkoutApproved(meta, join(taskDir, "ops"));
  let token: RunnerToken | undefined;
  if (meta.secrets.length > 0) {
    if (!wrappingToken) throw new PermanentFailure("the action lists secrets but the job carries no wrapping token", "auth");
    token = await unwrapRunnerToken(meta.vaultAddr, wrappingToken, meta.rolePath, meta.secrets);
  }
  try {
    const secrets: Record<string, string> = {};
    for (const name of meta.secrets) secrets[name] = await readRunnerSecret(token!, meta.kvMount, name);
    await checkMounts(meta.mountPaths);
    const env = formulaEnv({ meta, checkout, home: taskDir, secrets, token: token?.token, base: process.env });
    return await runFormula({
      script: join(checkout, "formulas", `${meta.formula}.sh`),
      cwd: checkout,
      env,
      secretValues: [...Object.values(secrets), ...(token ? [token.token] : [])],
      timeoutMs: meta.timeoutMs,
      stdout: process.stdout,
      stderr: process.stderr,
    });
  } finally {
    if (token) await revokeSelf(token).catch((err) => console.error(`[runner] warning: could not revoke own token: ${(err as Error).message}`));
  }
}

/** The ops repo at the approved commit, verified to be it (commit and action blob). */
async function checkoutApproved(meta: RunnerMeta, dir: string): Promise<string> {
  await checkoutAt(meta.opsRepo, meta.commit, dir, meta.actionPath);
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

/** Reads the payload file and deletes it, so the formula cannot find the wrapping token. */
async function takeWrappingToken(path: string): Promise<string | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  await rm(path, { force: true });
  return text?.trim() || undefined;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const cls = failureClassOf(err);
    console.error(formatRunnerError(cls, err instanceof Error ? err.message : String(err)));
    process.exit(cls === "timeout" ? RUNNER_TIMEOUT_EXIT : RUNNER_ERROR_EXIT);
  },
);

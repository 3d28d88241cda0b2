// Scale check 1: the cost of one poll with a long history. The ops repo holds `history` actions
// with results (one fast-import commit); then one new action arrives.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { benchNodeArgs, writeDispatcherConfig, dispatcherEnv, type DispatcherSetup } from "../contenders/dispatcher.js";
import { createNomadPort } from "../../nomad/client.js";
import { createNomadLedger } from "../../nomad/ledger.js";
import { actionToml, createBareRepo, NOOP_FORMULA } from "../opsrepo.js";
import { remoteSideEnv } from "../remote.js";
import type { Stack } from "../settings.js";
import { runPool } from "../stats.js";
import type { PassCost } from "./poll-pass.js";

const PASS_CHILD = new URL("./poll-pass.js", import.meta.url).pathname;

export interface PollCheck {
  history: number;
  buildMs: number;
  /** idle and after are the mean of this many passes */
  idlePasses: number;
  cold: PassCost;
  idle: PassCost;
  fresh: PassCost;
  finish: PassCost;
  after: PassCost;
  next: PassCost;
}

export async function checkPollCost(stack: Stack, history: number, nodeArgs: string[] = benchNodeArgs()): Promise<PollCheck> {
  const { env, buildMs } = await preparePollRepo(stack, history);
  const out = await runChild([...nodeArgs, PASS_CHILD], env);
  return { history, buildMs, ...(JSON.parse(out) as Omit<PollCheck, "history" | "buildMs">) };
}

/**
 * The ops repo of `history` done actions and their ledger entries; the environment of a
 * dispatcher on it (its clone in `history-<n>-work`, the remote's side recorded apart).
 */
export async function preparePollRepo(stack: Stack, history: number): Promise<{ env: NodeJS.ProcessEnv; buildMs: number; workdir: string }> {
  const t = performance.now();
  const remote = join(stack.repos, `history-${history}.git`);
  await createBareRepo(remote, buildHistory(history));
  const configFile = join(stack.dir, `history-${history}.toml`);
  await writeDispatcherConfig(configFile, { maxInFlight: 4, runnerJob: "runner" });
  const setup: DispatcherSetup = { stack, remote, workdir: join(stack.dir, `history-${history}-work`), configFile, pins: stack.pins };
  const env: NodeJS.ProcessEnv = { ...dispatcherEnv(setup), ...remoteSideEnv(join(stack.dir, `history-${history}-remote.cpu`)) };
  await seedLedger(stack, env.DISPATCHER_LEDGER_PREFIX!, history);
  return { env, buildMs: performance.now() - t, workdir: setup.workdir };
}

/** how many ledger entries are written at once while seeding */
const SEED_CONCURRENCY = 16;

/**
 * The ledger of `n` done actions as the dispatcher leaves it once their results are pushed: one
 * recorded entry each, written through the dispatcher's own ledger with its own token.
 */
async function seedLedger(stack: Stack, prefix: string, n: number): Promise<void> {
  const nomad = createNomadPort({ addr: stack.NOMAD_ADDR, token: stack.NOMAD_TOKEN, namespace: stack.NOMAD_NAMESPACE });
  const ledger = createNomadLedger(nomad, prefix);
  const indexes = Array.from({ length: n }, (_, i) => i);
  await runPool(indexes, SEED_CONCURRENCY, async (i) => {
    await ledger.create(historyId(i), {
      state: "recorded",
      owner: "bench-history",
      attempt: 1,
      actionSha: "0".repeat(40),
      commit: "0".repeat(40),
      jobId: `runner/dispatch-${i}`,
      updatedAt: "2026-01-01T00:00:00.000Z",
    });
  });
}

function historyId(i: number): string {
  return `h-${String(i).padStart(6, "0")}`;
}

/** `n` done actions: each TOML with a result shaped like the dispatcher's. */
function buildHistory(n: number): Record<string, string> {
  const files: Record<string, string> = { "formulas/noop.sh": NOOP_FORMULA };
  for (let i = 0; i < n; i++) {
    const id = historyId(i);
    files[`vault/actions/${id}.toml`] = actionToml(id, "noop");
    files[`vault/actions/${id}.result.json`] = `${JSON.stringify(
      { id, exit_code: 0, timestamp: "2026-01-01T00:00:00.000Z", logs: "ok", status: "succeeded", attempts: 1, job_id: `runner/dispatch-${i}` },
      null,
      2,
    )}\n`;
  }
  return files;
}

export function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`poll check exited ${code}: ${err.trim().slice(-1000)}`))));
  });
}

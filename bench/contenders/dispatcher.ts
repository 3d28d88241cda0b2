// Contender "dispatcher-once": N action files land in the ops repo in one commit, then
// `dispatcher once` (dist/dispatcher.mjs, in a child process under bench/usage.ts) dispatches them
// all, tracks them and pushes every result. Timings come from its own log lines. What both
// dispatcher contenders share (environment, log lines, a batch's figures) is here too.
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { tryGit } from "../../opsrepo/exec.js";
import type { GitCounter } from "../gitcount.js";
import { parseLines, type LogLine } from "../loglines.js";
import { actionToml, commitFiles, RUN, tomlStrings } from "../opsrepo.js";
import { readRemoteMs, remoteSideEnv } from "../remote.js";
import type { Stack } from "../settings.js";
import type { BatchRun } from "./run.js";

const USAGE_WRAPPER = new URL("../usage.js", import.meta.url).pathname;

export interface DispatcherSetup {
  stack: Stack;
  remote: string;
  /** its private clone; kept between runs like a daemon's volume */
  workdir: string;
  configFile: string;
  /** the stack's pins plus the bench's own parents */
  pins: string;
  /** notes every git process the dispatcher starts */
  git?: GitCounter;
  /** DISPATCHER_INSTANCE; "bench" when absent */
  instance?: string;
}

/** What runners fetch: the bench's repos live under the stack's git daemon. */
export function runnerRemoteOf(stack: Stack, remote: string): string {
  if (!remote.startsWith(`${stack.GIT_SERVED_DIR}/`)) throw new Error(`bench repo ${remote} is not under ${stack.GIT_SERVED_DIR}: runners could not fetch it`);
  return `${stack.GIT_DAEMON_URL}/${remote.slice(stack.GIT_SERVED_DIR.length + 1)}`;
}

export interface Usage {
  selfMs: number;
  childrenMs: number;
  maxRssMiB: number;
  /** of childrenMs: the ops remote's side (bench/remote.ts) */
  remoteMs: number;
  /** git processes the dispatcher started (when counted) */
  gitProcesses?: number;
}

export async function writeDispatcherConfig(path: string, c: { maxInFlight: number; runnerJob: string; secrets?: readonly string[] }): Promise<void> {
  // serialize_by = "none": every contender runs `concurrency` identical children at once
  const secrets = c.secrets ? `secrets = ${tomlStrings(c.secrets)}\n` : "";
  await writeFile(
    path,
    `${secrets}[nomad]\nrunner_job = "${c.runnerJob}"\n[limits]\nmax_in_flight = ${c.maxInFlight}\nserialize_by = "none"\n[timeouts]\nplacement_seconds = 900\n`,
  );
}

export function dispatcherEnv(setup: DispatcherSetup): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NOMAD_ADDR: setup.stack.NOMAD_ADDR,
    NOMAD_TOKEN: setup.stack.NOMAD_TOKEN,
    NOMAD_NAMESPACE: setup.stack.NOMAD_NAMESPACE,
    VAULT_ADDR: setup.stack.VAULT_ADDR,
    DISPATCHER_VAULT_ROLE_ID_FILE: setup.stack.DISPATCHER_VAULT_ROLE_ID_FILE,
    DISPATCHER_VAULT_SECRET_ID_FILE: setup.stack.DISPATCHER_VAULT_SECRET_ID_FILE,
    DISPATCHER_JOB_PINS: setup.pins,
    DISPATCHER_OPS_REMOTE: setup.remote,
    DISPATCHER_RUNNER_REMOTE: runnerRemoteOf(setup.stack, setup.remote),
    DISPATCHER_WORKDIR: setup.workdir,
    DISPATCHER_CONFIG: setup.configFile,
    DISPATCHER_INSTANCE: setup.instance ?? "bench",
    // one ledger per run and ops repo, as in production one per ops repo: a rerun on the same
    // stack, and the poll checks of two repos, reuse action ids
    DISPATCHER_LEDGER_PREFIX: `dispatcher/bench-${RUN}-${basename(setup.remote, ".git")}`,
    // BENCH_LOG_LEVEL=debug: the timeline's points (bench/timeline.ts) and the passes' waits on places (bench/scale/timeline.ts); figures are taken at info
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
  };
}

/** BENCH_LOG_DIR: where each dispatcher process's log is kept (`<name>-<time>.log`), for timelines */
export async function keepLog(name: string, text: string): Promise<void> {
  const dir = process.env.BENCH_LOG_DIR;
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}-${Date.now()}.log`), text);
}

/** BENCH_NODE_ARGS: node options for every dispatcher process the bench starts (rounds and scale checks) */
export function benchNodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
}

/** `dispatcher once` in a child process; resolves with its log lines and what it cost. */
export function runOnce(setup: DispatcherSetup, nodeArgs: string[] = benchNodeArgs()): Promise<{ lines: LogLine[]; usage: Usage }> {
  const usageFile = join(setup.stack.dir, `usage-${process.pid}-${Date.now()}.json`);
  const gitFile = `${usageFile}.git`;
  const remoteFile = `${usageFile}.remote`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, USAGE_WRAPPER, "once"], {
      env: { ...dispatcherEnv(setup), ...setup.git?.env(gitFile), ...remoteSideEnv(remoteFile), BENCH_USAGE_FILE: usageFile },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      void keepLog("once", err);
      if (code !== 0) return reject(new Error(`dispatcher once exited ${code}: ${err.trim().slice(-1000)}`));
      readFile(usageFile, "utf8").then(
        (text) => resolve({ lines: parseLines(err), usage: { ...(JSON.parse(text) as Omit<Usage, "gitProcesses" | "remoteMs">), remoteMs: readRemoteMs(remoteFile), gitProcesses: setup.git?.count(gitFile) } }),
        reject,
      );
    });
  });
}

export async function runDispatcher(setup: DispatcherSetup, ids: string[], formula: string): Promise<BatchRun> {
  const files = Object.fromEntries(ids.map((id) => [`vault/actions/${id}.toml`, actionToml(id, formula)]));
  await commitFiles(setup.remote, files, `bench: ${ids.length} actions`);
  const start = Date.now();
  const { lines, usage } = await runOnce(setup);
  const run = await batchOf(setup.remote, ids, lines, start);
  return { ...run, cpu: { selfMs: usage.selfMs, childrenMs: usage.childrenMs }, remoteMs: usage.remoteMs, peakRssMiB: usage.maxRssMiB, gitProcesses: usage.gitProcesses };
}

/** A batch's timings and outcomes from the dispatcher's log lines; `start`: its commit had landed. */
export async function batchOf(remote: string, ids: string[], lines: LogLine[], start: number): Promise<Omit<BatchRun, "cpu">> {
  const pushed = new Map<string, number>();
  const dispatched = new Map<string, number>();
  const finished = new Map<string, number>();
  for (const l of lines) {
    if (l.msg === "results pushed") for (const id of l.results ?? []) pushed.set(id, l.time);
    if (l.msg === "dispatched" && l.action) dispatched.set(l.action, l.time);
    if (l.msg === "action finished" && l.action) finished.set(l.action, l.time);
  }
  const done = ids.filter((id) => pushed.has(id));
  const statuses = await Promise.all(ids.map((id) => resultStatus(remote, id)));
  return {
    actions: ids.length,
    wallMs: Math.max(...done.map((id) => pushed.get(id)!)) - start,
    batchLatencies: done.map((id) => pushed.get(id)! - start),
    serviceLatencies: done.filter((id) => dispatched.has(id)).map((id) => pushed.get(id)! - dispatched.get(id)!),
    childLatencies: ids.filter((id) => dispatched.has(id) && finished.has(id)).map((id) => finished.get(id)! - dispatched.get(id)!),
    failures: statuses.filter((s) => s !== "succeeded").length,
  };
}

async function resultStatus(remote: string, id: string): Promise<string> {
  const run = await tryGit(remote, ["cat-file", "blob", `main:vault/actions/${id}.result.json`]);
  return run.code === 0 ? (JSON.parse(run.stdout.toString()) as { status: string }).status : "missing";
}

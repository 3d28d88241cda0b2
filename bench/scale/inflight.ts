// Scale check 2: the dispatcher's memory while it tracks many allocations. `n` actions are
// dispatched as bench-mock-hold children (mock_driver, "running" for an hour, no process); once all
// run (or the deadline passes) the samples stop, the dispatcher is killed and the children purged.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { benchNodeArgs, dispatcherEnv, keepLog, writeDispatcherConfig, type DispatcherSetup } from "../contenders/dispatcher.js";
import { parseLines } from "../loglines.js";
import { MOCK_HOLD_JOB } from "../jobs.js";
import type { BenchNomad } from "../nomad.js";
import { actionToml, createBareRepo } from "../opsrepo.js";
import { readCpu, readRss } from "../proc.js";
import type { Stack } from "../settings.js";
import { runPool } from "../stats.js";

const CLI = new URL("../../dispatcher.mjs", import.meta.url).pathname;
const SAMPLE_MS = 2000;

export interface InflightCheck {
  requested: number;
  dispatched: number;
  maxRunning: number;
  /** start → every allocation running; undefined when the deadline came first */
  allRunningMs?: number;
  /** start → the dispatcher logged its last dispatch */
  lastDispatchMs?: number;
  peakRssMiB: number;
  /** RSS at the end, while tracking maxRunning allocations */
  endRssMiB: number;
  /** the dispatcher's CPU until it was stopped: own, and its git processes */
  selfMs: number;
  childrenMs: number;
  elapsedMs: number;
  /** "ok", or why the check ended early */
  outcome: string;
}

export async function checkInflight(stack: Stack, nomad: BenchNomad, n: number, limitSeconds: number, holdSeconds: number): Promise<InflightCheck> {
  const name = join(stack.dir, `inflight-${n}`);
  const files: Record<string, string> = { "formulas/sleep.sh": "#!/usr/bin/env bash\nsleep 3600\n" };
  for (let i = 0; i < n; i++) {
    const id = `s${n}-${String(i).padStart(4, "0")}`;
    files[`vault/actions/${id}.toml`] = actionToml(id, "sleep");
  }
  const remote = join(stack.repos, `inflight-${n}.git`);
  await createBareRepo(remote, files);
  await writeDispatcherConfig(`${name}.toml`, { maxInFlight: n, runnerJob: MOCK_HOLD_JOB });
  const setup: DispatcherSetup = { stack, remote, workdir: `${name}-work`, configFile: `${name}.toml`, pins: stack.pins };

  const start = Date.now();
  const child = spawn(process.execPath, [...benchNodeArgs(), CLI, "once"], { env: dispatcherEnv(setup), stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  let exited = false;
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  child.on("close", () => (exited = true));
  const pid = child.pid!;
  const result: InflightCheck = { requested: n, dispatched: 0, maxRunning: 0, peakRssMiB: 0, endRssMiB: 0, selfMs: 0, childrenMs: 0, elapsedMs: 0, outcome: "ok" };
  let holdUntil: number | undefined;
  try {
    while (!exited && Date.now() < (holdUntil ?? start + limitSeconds * 1000)) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      if (exited) break;
      const rss = readRss(pid);
      const cpu = readCpu(pid);
      // the agent may refuse us too when the dispatcher holds its connections
      const counts = await nomad.countAllocs(MOCK_HOLD_JOB).catch(() => ({ pending: 0, running: 0, terminal: 0 }));
      Object.assign(result, { peakRssMiB: rss.peakMiB, endRssMiB: rss.rssMiB, selfMs: cpu.selfMs, childrenMs: cpu.childrenMs, elapsedMs: Date.now() - start });
      result.maxRunning = Math.max(result.maxRunning, counts.running);
      if (counts.running >= n && holdUntil === undefined) {
        result.allRunningMs = Date.now() - start;
        holdUntil = Date.now() + holdSeconds * 1000;
      }
      process.stderr.write(`\r  in flight: ${counts.running} running, ${counts.pending} pending, dispatcher RSS ${rss.rssMiB.toFixed(0)} MiB   `);
    }
    process.stderr.write("\n");
    if (exited) result.outcome = `the dispatcher exited early: ${lastError(log)}`;
    else if (result.allRunningMs === undefined) result.outcome = `not all running within ${limitSeconds} s`;
  } finally {
    child.kill("SIGKILL");
    await purgeChildren(nomad);
  }
  await keepLog(`inflight-${n}`, log);
  const dispatched = parseLines(log).filter((l) => l.msg === "dispatched");
  result.dispatched = dispatched.length;
  if (dispatched.length > 0) result.lastDispatchMs = Math.max(...dispatched.map((l) => l.time)) - start;
  return result;
}

/** The dispatcher's last words: its stderr line, or its last error-level log message. */
function lastError(log: string): string {
  const plain = log.split("\n").filter((l) => l.startsWith("dispatcher:")).at(-1);
  const logged = parseLines(log).filter((l) => l.level >= 50).at(-1);
  return (plain ?? logged?.msg ?? "no message").slice(0, 300);
}

/** Until none is left: requests the agent still counts against our connection limit may fail. */
async function purgeChildren(nomad: BenchNomad): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const ids = await nomad.listChildren(MOCK_HOLD_JOB).catch(() => undefined);
    if (ids?.length === 0) return;
    await runPool(ids ?? [], 8, (id) => nomad.purge(id).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`could not purge the ${MOCK_HOLD_JOB} children; stop the stack to clean up`);
}

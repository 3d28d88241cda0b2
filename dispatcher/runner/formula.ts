// The formula as a child of the runner: an explicit environment, a process limit, and its output
// copied with every secret value masked. When it exits or its deadline passes, every other
// process of the task is killed (the runner is init of the task's pid namespace), the pipes are
// read for a bounded time, and the runner goes on to revoke its token and give its verdict.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { createMasker } from "../core/redact.js";
import { ProcessLimitExceeded, TimeoutExceeded } from "../errors.js";
import type { RunnerMeta } from "../contract.js";

const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

export interface FormulaContext {
  meta: RunnerMeta;
  /** the ops repo at the action's commit */
  checkout: string;
  /** the task's own directory: the formula's HOME */
  home: string;
  secrets: Record<string, string>;
  /** the formula's own Vault token: only with secrets, for their paths and nothing else */
  token?: string;
  /** the runner's environment: only PATH and VAULT_ADDR are taken from it */
  base: NodeJS.ProcessEnv;
  /**
   * disinto's names beside ours: OPS_REPO_ROOT (the ops checkout, as OPS_REPO_DIR) and, when
   * formulas come from the factory repository, FACTORY_ROOT (its checkout at the pinned commit)
   */
  roots?: { factory?: string; home?: string };
}

/**
 * What the formula's environment holds, and nothing else: never the runner's inherited
 * variables (Nomad's NOMAD_*, a token of the agent's, the payload's path).
 */
export function formulaEnv(c: FormulaContext): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: c.base.PATH || DEFAULT_PATH,
    HOME: c.roots?.home ?? c.home,
    LANG: "C.UTF-8",
    VAULT_ADDR: c.base.VAULT_ADDR,
    ACTION_ID: c.meta.actionId,
    VAULT_ACTION_TOML: join(c.checkout, c.meta.actionPath),
    OPS_REPO_DIR: c.checkout,
    ...(c.roots ? { OPS_REPO_ROOT: c.checkout, FACTORY_ROOT: c.roots.factory } : {}),
    ...Object.fromEntries(Object.entries(c.meta.mountPaths).map(([alias, path]) => [`MOUNT_${alias.toUpperCase().replaceAll("-", "_")}`, path])),
    // a sidecar's subject: the issue and the project it belongs to
    ISSUE_NUMBER: c.base.NOMAD_META_issue_number,
    PROJECT_TOML: c.base.NOMAD_META_project_toml,
    ...(c.token ? { VAULT_TOKEN: c.token } : {}),
    ...c.secrets,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
}

export interface FormulaRun {
  script: string;
  /** the formula's arguments ($1 …): the action id in disinto's layout, none by default */
  args?: string[];
  cwd: string;
  env: Record<string, string>;
  /** masked wherever they appear in the output */
  secretValues: string[];
  timeoutMs: number;
  stdout: Writable;
  stderr: Writable;
  walls?: Partial<TaskWalls>;
}

/** Runs `bash script`; resolves with its exit code, rejects with TimeoutExceeded when the deadline killed it. */
export function runFormula(r: FormulaRun): Promise<number> {
  const walls = { ...DEFAULT_WALLS, ...r.walls };
  return new Promise((resolve, reject) => {
    // its own process group (the fallback when the runner is not its pid namespace's init);
    // RLIMIT_NPROC as the node-wide ceiling for the task user (see TaskWalls.nodeNproc)
    const child = spawn("bash", ["-c", `ulimit -u ${walls.nodeNproc} 2>/dev/null; exec bash -- "$0" "$@"`, r.script, ...(r.args ?? [])], { cwd: r.cwd, env: r.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const done = [pipeMasked(child.stdout, r.stdout, r.secretValues), pipeMasked(child.stderr, r.stderr, r.secretValues)];
    let timedOut = false;
    let tooMany = 0;
    const taskInit = walls.isInit();
    const killRest = (signal: NodeJS.Signals) => {
      try {
        // as the task's init, kill(-1) reaches every other process of the task and nothing else
        if (taskInit) process.kill(-1, signal);
        else process.kill(-child.pid!, signal);
      } catch {
        // nothing left to signal
      }
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      killRest("SIGTERM");
      setTimeout(() => killRest("SIGKILL"), walls.killGraceMs).unref();
    }, r.timeoutMs);
    // the per-task process limit: the runner counts its own pid namespace (RLIMIT_NPROC cannot: it counts the user's processes on the whole node)
    const watchdog = taskInit
      ? setInterval(() => {
          const all = otherProcesses();
          // zombies (orphans reparented to the runner, which node never reaps) hold no resources but a pid
          const n = all.length > walls.maxProcesses ? all.filter((pid) => !isZombieOrGone(pid)).length : 0;
          if (n > walls.maxProcesses) {
            tooMany = n;
            killRest("SIGKILL");
          }
        }, walls.watchMs)
      : undefined;
    child.on("error", reject);
    // "exit", not "close": close waits for the pipes, which a process the formula left behind may hold for ever
    child.on("exit", (code, signal) => {
      clearTimeout(deadline);
      if (watchdog) clearInterval(watchdog);
      // nothing the formula started outlives it: background jobs, other process groups, daemons
      void endTask(taskInit, killRest, walls)
        .then(() => drain(done, [child.stdout, child.stderr], walls.drainMs))
        .then(() => {
          if (timedOut) reject(new TimeoutExceeded(`formula ran past its timeout of ${formatMinutes(r.timeoutMs)} and was killed by the runner`));
          else if (tooMany > 0) reject(new ProcessLimitExceeded(`the formula ran more than ${walls.maxProcesses} processes at once (the task's limit; ${tooMany} seen): every process of the task was killed`));
          else resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
        });
    });
  });
}

/** How the runner bounds the formula's processes; the jobspec's env may change the numbers. */
export interface TaskWalls {
  /** more processes than this in the task's pid namespace (besides the runner) and they are all killed */
  maxProcesses: number;
  /**
   * RLIMIT_NPROC of the formula. Linux counts it per real uid across the whole node, and every
   * task runs as `nobody`: it is a ceiling for all tasks of the node together (a fork bomb stops
   * there until the runner's watchdog kills it), never a per-task limit, so it must exceed what
   * the node's concurrent tasks use together.
   */
  nodeNproc: number;
  /** after SIGTERM at the deadline, the rest of the task gets this long before SIGKILL */
  killGraceMs: number;
  /** after the last process is gone, the output pipes are read at most this long */
  drainMs: number;
  watchMs: number;
  /** the runner is its pid namespace's init (exec, docker): kill(-1) reaches exactly the task */
  isInit: () => boolean;
}

export const DEFAULT_WALLS: TaskWalls = {
  maxProcesses: 512,
  nodeNproc: 16384,
  killGraceMs: 10_000,
  drainMs: 2_000,
  watchMs: 100,
  isInit: () => process.pid === 1,
};

/** The walls from the runner's env (RUNNER_MAX_PROCESSES, RUNNER_NODE_NPROC), defaults otherwise. */
export function wallsFromEnv(env: NodeJS.ProcessEnv): TaskWalls {
  const num = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number, got "${text}" (example: ${name}=${fallback})`);
    return n;
  };
  return { ...DEFAULT_WALLS, maxProcesses: num("RUNNER_MAX_PROCESSES", DEFAULT_WALLS.maxProcesses), nodeNproc: num("RUNNER_NODE_NPROC", DEFAULT_WALLS.nodeNproc) };
}

/** Other processes of this pid namespace (zombies included). */
function otherProcesses(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    pids.push(pid);
  }
  return pids;
}

function isZombieOrGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
}

/** SIGKILL everything else of the task until only zombies are left (a few rounds: a fork in flight). */
async function endTask(taskInit: boolean, killRest: (s: NodeJS.Signals) => void, walls: TaskWalls): Promise<void> {
  killRest("SIGKILL");
  if (!taskInit) return;
  const until = Date.now() + walls.killGraceMs;
  while (otherProcesses().some((pid) => !isZombieOrGone(pid)) && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 20));
    killRest("SIGKILL");
  }
}

/** The output copied until both pipes end, or for `ms` at most (a descriptor passed on elsewhere must not hold the verdict). */
async function drain(done: Promise<void>[], pipes: Readable[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((res) => (timer = setTimeout(res, ms)));
  await Promise.race([Promise.all(done), late]);
  clearTimeout(timer);
  for (const p of pipes) p.destroy();
}

function formatMinutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
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

// Bench sizes and the dev stack it runs on; every size is an env variable so a quick run is easy.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** the repo root, seen from the compiled dist/bench/settings.js */
export const ROOT = new URL("../..", import.meta.url).pathname;

export interface Settings {
  rounds: number;
  /** actions per contender per round */
  actions: number;
  /** children in flight at once, the same for every contender */
  concurrency: number;
  cliPollSeconds: number;
  history: number;
  /** mock_driver contenders: actions in one batch, and children in flight at once */
  mockActions: number;
  mockConcurrency: number;
  /** the small repo whose first result commit the long history's is compared with */
  smallHistory: number;
  /** in-flight counts to try, one check each (mock_driver children that hold for an hour) */
  inflight: number[];
  /** hard bound for the in-flight check (dispatch, placement, hold) */
  inflightSeconds: number;
  /** how long to keep sampling once every allocation runs */
  holdSeconds: number;
  /** the round contenders to run (BENCH_CONTENDERS, comma-separated); empty: all */
  contenders: string[];
  out: string;
}

function int(name: string, fallback: number, raw = process.env[name]): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

function ints(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  return raw.split(",").map((part) => int(name, Number.NaN, part.trim())).filter((n) => n > 0);
}

export function readSettings(): Settings {
  return {
    rounds: int("BENCH_ROUNDS", 6),
    actions: int("BENCH_ACTIONS", 30),
    concurrency: int("BENCH_CONCURRENCY", 4),
    cliPollSeconds: int("BENCH_CLI_POLL_SECONDS", 2),
    history: int("BENCH_HISTORY", 10_000),
    mockActions: int("BENCH_MOCK_ACTIONS", 2000),
    mockConcurrency: int("BENCH_MOCK_CONCURRENCY", 64),
    smallHistory: int("BENCH_SMALL_HISTORY", 10),
    inflight: ints("BENCH_INFLIGHT", [150, 5000]),
    inflightSeconds: int("BENCH_INFLIGHT_SECONDS", 900),
    holdSeconds: int("BENCH_HOLD_SECONDS", 15),
    contenders: (process.env.BENCH_CONTENDERS ?? "").split(",").map((c) => c.trim()).filter(Boolean),
    out: process.env.BENCH_OUT ?? join(ROOT, "bench/results.md"),
  };
}

export interface Stack {
  NOMAD_ADDR: string;
  /** the dispatcher's Nomad token (acl/dispatcher.hcl): the dispatcher and the raw client use it */
  NOMAD_TOKEN: string;
  NOMAD_NAMESPACE: string;
  /** the bench's own bookkeeping (register, purge, agent version): never a contender's */
  managementToken: string;
  DISPATCHER_JOB_PINS: string;
  /** served read-only to runners as GIT_DAEMON_URL/<path> */
  GIT_SERVED_DIR: string;
  GIT_DAEMON_URL: string;
  VAULT_ADDR: string;
  /** the dispatcher's AppRole (it logs in and renews itself) */
  DISPATCHER_VAULT_ROLE_ID_FILE: string;
  DISPATCHER_VAULT_SECRET_ID_FILE: string;
  NOMAD_BIN: string;
  BAO_BIN: string;
  nomadPid: number;
  /** the stack's other services (SERVICES), whose CPU the CPU-bound note names */
  servicePids: Record<ServiceName, number>;
  /** scratch space of the bench, removed with the stack */
  dir: string;
  /** the bench's ops repos: under the git daemon's directory, so runners can fetch them */
  repos: string;
  /** pin file of the dispatcher contenders: the stack's parents and the bench's */
  pins: string;
  /** the data dirs of the stack's Nomad clients (the dev agent's and the big pool's) */
  clientDataDirs: string[];
}

/** The stack's services other than the Nomad agent the tasks run under: their pid file in .dev, and how the report names them. */
export const SERVICES = {
  openbao: { pidFile: "bao", label: "OpenBao" },
  gitDaemon: { pidFile: "git-daemon", label: "the git daemon serving the runners" },
  nomadBig: { pidFile: "nomad-big", label: "the second Nomad client" },
} as const;
export type ServiceName = keyof typeof SERVICES;

/** One figure per service. */
export function perService(f: (name: ServiceName) => number): Record<ServiceName, number> {
  return Object.fromEntries((Object.keys(SERVICES) as ServiceName[]).map((k) => [k, f(k)])) as Record<ServiceName, number>;
}

const pidOf = (dev: string, name: string) => Number(readFileSync(join(dev, `${name}.pid`), "utf8").trim());

export function readStack(): Stack {
  const dev = join(ROOT, ".dev");
  const text = readFileSync(join(dev, "env"), "utf8");
  const env = Object.fromEntries(text.trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
  return {
    ...(env as unknown as Stack),
    nomadPid: pidOf(dev, "nomad"),
    servicePids: perService((k) => pidOf(dev, SERVICES[k].pidFile)),
    managementToken: readFileSync(join(dev, "nomad-management-token"), "utf8").trim(),
    dir: join(dev, "bench"),
    repos: join(env.GIT_SERVED_DIR!, "bench"),
    pins: join(dev, "bench", "pins.json"),
    clientDataDirs: [join(dev, "nomad-data"), join(dev, "nomad-big-data")],
  };
}

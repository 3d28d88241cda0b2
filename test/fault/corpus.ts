// Shared fixtures of the fault suite: an ops repo of N actions, a disturbed run over it, and the
// checks on its results.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runGit } from "../../dispatcher/opsrepo/exec.js";
import type { ActionResult } from "../../dispatcher/core/result.js";
import type { OpsRemote } from "../helpers/gitrepo.js";
import { sleep, spawnDispatcher, waitUntil, type CliProcess } from "../helpers/process.js";
import { childrenByAction } from "../helpers/stack.js";
import type { Witness } from "../helpers/witness.js";

export const FORMULAS: Record<string, string> = {
  // short, uneven work so kills land at every stage
  "formulas/work.sh": '#!/usr/bin/env bash\nset -eu\nsleep "0.$((RANDOM % 9))"\necho "worked on $ACTION_ID"\n',
  // proves the secret reached the job: no secret, exit 1
  "formulas/with-secret.sh": '#!/usr/bin/env bash\nset -eu\n[ -n "${FAULT_SECRET:-}" ] || { echo "FAULT_SECRET missing" >&2; exit 1; }\nsleep "0.$((RANDOM % 5))"\necho "secret seen by $ACTION_ID"\n',
};

/** `count` actions `${prefix}-NN`; every fifth one uses the secret. */
export function actionFiles(prefix: string, count: number, secret: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${String(i).padStart(2, "0")}`;
    const withSecret = i % 5 === 0;
    files[`vault/actions/${id}.toml`] =
      `id = "${id}"\nformula = "${withSecret ? "with-secret" : "work"}"\ncontext = "fault suite"\nsecrets = [${withSecret ? `"${secret}"` : ""}]\n`;
  }
  return files;
}

export function actionIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
}

export async function readResults(remote: OpsRemote, ids: string[]): Promise<Map<string, ActionResult>> {
  const out = new Map<string, ActionResult>();
  for (const id of ids) {
    const text = await remote.read(`vault/actions/${id}.result.json`);
    if (text) out.set(id, JSON.parse(text) as ActionResult);
  }
  return out;
}

/** How many commits on main touched each result file: more than one would be an overwrite. */
export async function resultWrites(remote: OpsRemote): Promise<Map<string, number>> {
  const out = (await runGit(remote.dir, ["--git-dir", remote.remote, "log", "--format=", "--name-only", "main", "--", "vault/actions"])).toString("utf8");
  const counts = new Map<string, number>();
  for (const line of out.split("\n").filter((l) => l.endsWith(".result.json"))) {
    const id = line.slice("vault/actions/".length, -".result.json".length);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

export interface DisturbedRun {
  /** the dispatcher was still running when the last result landed */
  alive: boolean;
  allDone: boolean;
  results: Map<string, ActionResult>;
  /** dispatched runner children per action */
  children: Map<string, string[]>;
  logFile: string;
}

/**
 * `dispatcher run` over `ids` while `disturb` breaks something, then until every result is in
 * (or `boundMs` passes); the dispatcher is stopped before this resolves.
 */
export async function runDisturbed(
  remote: OpsRemote,
  ids: string[],
  env: Record<string, string>,
  disturb: () => Promise<void>,
  boundMs = 240_000,
): Promise<DisturbedRun> {
  const work = await mkdtemp(join(tmpdir(), "fault-run-"));
  const logFile = join(work, "dispatcher.log");
  const p = spawnDispatcher(
    ["run"],
    {
      DISPATCHER_OPS_REMOTE: remote.remote,
      DISPATCHER_WORKDIR: join(work, "ops"),
      DISPATCHER_SECRETS: "FAULT_SECRET",
      DISPATCHER_POLL_SECONDS: "1",
      DISPATCHER_MAX_IN_FLIGHT: "4",
      DISPATCHER_CONFIG: "",
      ...env,
    },
    logFile,
  );
  await disturb();
  const allDone = await waitUntil(async () => (await readResults(remote, ids)).size === ids.length, boundMs, 2000);
  const alive = p.child.exitCode === null;
  p.child.kill("SIGTERM");
  await p.exited;
  return { alive, allDone, results: await readResults(remote, ids), children: await childrenByAction("runner"), logFile };
}

/** Results that did not succeed, one line each (the with-secret formula fails without its secret). */
export function unsuccessful(results: Map<string, ActionResult>): string[] {
  return [...results.values()].filter((r) => r.status !== "succeeded").map((r) => `${r.id}: ${r.status} ${r.error?.message}`);
}

/** `formulas` each reporting its run to `witness` first (the formula's own side effect, counted outside the dispatcher). */
export function witnessed(formulas: Record<string, string>, witness: Witness): Record<string, string> {
  return Object.fromEntries(Object.entries(formulas).map(([path, text]) => [path, text.replace("set -eu\n", `set -eu\n${witness.line}\n`)]));
}

export interface Tally {
  /** actions without a result */
  lost: string[];
  /** actions with more dispatched children, or more runs of their formula, than their result's attempts */
  duplicates: string[];
  /** every run the witness saw */
  runs: number;
}

/** Lost and doubled actions, from the results, Nomad's children and the formula's own side effect. */
export function tally(ids: string[], results: Map<string, ActionResult>, children: Map<string, string[]>, runs: Map<string, number>): Tally {
  return {
    lost: ids.filter((id) => !results.has(id)),
    duplicates: ids.filter((id) => {
      const attempts = results.get(id)?.attempts ?? 0;
      return (children.get(id)?.length ?? 0) !== attempts || (runs.get(id) ?? 0) > attempts;
    }),
    runs: ids.reduce((n, id) => n + (runs.get(id) ?? 0), 0),
  };
}

/** how many lives in `logFile` said they run (their first pass may start) */
async function livesRunning(logFile: string): Promise<number> {
  const text = await readFile(logFile, "utf8").catch(() => "");
  return text.split('"msg":"dispatcher running"').length - 1;
}

/**
 * `dispatcher run` with `env`, killed with -9 after a random 300..300+`spreadMs` ms, `kills` times
 * (each life starts where the last was killed); returns the last life, left running. With
 * `workingEvery` n, every n-th life is killed that long after it said it runs instead of after its
 * start: on a loaded machine a start alone can outlast the spread, and those kills then land in
 * the work (claims, dispatches, pushes), not only in the start.
 */
export async function killRepeatedly(env: Record<string, string>, logFile: string, kills: number, spreadMs = 2200, workingEvery = 0): Promise<CliProcess> {
  for (let k = 0; k < kills; k++) {
    const before = workingEvery > 0 && k % workingEvery === 0 ? await livesRunning(logFile) : undefined;
    const p = spawnDispatcher(["run"], env, logFile);
    if (before !== undefined) await waitUntil(async () => (await livesRunning(logFile)) > before || p.child.exitCode !== null, 30_000, 100);
    await sleep(300 + Math.floor(Math.random() * spreadMs));
    p.child.kill("SIGKILL");
    await p.exited;
  }
  return spawnDispatcher(["run"], env, logFile);
}

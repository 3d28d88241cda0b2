// Two builds side by side (issue 34, the declared stack): the dispatcher's CPU per action and the
// CLI's start, old build and new alternately, N times each, medians printed. The old build is a
// worktree of the commit before the change, built there (`npm run build`); the new one is this
// repo's dist/.
//   node dist/bench/declared.js <old repo dir> [rounds]      (DEV_NOMAD_PORT/DEV_BAO_PORT as for make up)
// Per action: `dispatcher once` (under bench/usage.ts) on a batch of BENCH_ACTIONS actions that
// each ask for a secret (a wrapped mint per action, its revoke) on the mock_driver parent (the
// child itself costs nothing), its node CPU over the batch's size; an idle `once` (nothing
// pending) of the same build is the fixed start cost, shown apart. Start: `dispatcher --help`.
import { spawn } from "node:child_process";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { runOnce, writeDispatcherConfig, type DispatcherSetup, type Usage } from "./contenders/dispatcher.js";
import { MOCK_JOB, registerBenchJobs } from "./jobs.js";
import { createBenchNomad } from "./nomad.js";
import { actionToml, commitFiles, createBareRepo, NOOP_FORMULA, RUN } from "./opsrepo.js";
import { ROOT, readStack } from "./settings.js";
import { percentile } from "./stats.js";

const say = (text: string) => process.stderr.write(`==> ${text}\n`);
const USAGE = new URL("./usage.js", import.meta.url).pathname;

interface Build {
  name: string;
  bundle: string;
  runner: string;
}

async function main(): Promise<void> {
  const [oldDir, roundsArg] = process.argv.slice(2);
  if (!oldDir) throw new Error("usage: node dist/bench/declared.js <old repo dir, built> [rounds]");
  const rounds = Number(roundsArg ?? 5);
  const actions = Number(process.env.BENCH_ACTIONS ?? 30);
  const builds: Build[] = [
    { name: "old", bundle: resolve(oldDir, "dist/dispatcher.mjs"), runner: resolve(oldDir, "dist/runner/runner.mjs") },
    { name: "new", bundle: join(ROOT, "dist/dispatcher.mjs"), runner: join(ROOT, "dist/runner/runner.mjs") },
  ];
  for (const b of builds) for (const f of [b.bundle, b.runner]) await stat(f).catch(() => Promise.reject(new Error(`${f} is missing: npm run build there`)));

  const stack = readStack();
  const admin = createBenchNomad(stack.NOMAD_ADDR, stack.managementToken, stack.NOMAD_NAMESPACE);
  const dir = join(stack.dir, "declared");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await mkdir(stack.repos, { recursive: true });
  await registerBenchJobs(stack, admin);
  const remote = join(stack.repos, `declared-${RUN}.git`);
  await createBareRepo(remote, { "formulas/noop.sh": NOOP_FORMULA });
  const setup: DispatcherSetup = { stack, remote, workdir: join(dir, "work"), configFile: join(dir, "dispatcher.toml"), pins: stack.pins, instance: "declared" };
  await writeDispatcherConfig(setup.configFile, { maxInFlight: 8, runnerJob: MOCK_JOB, secrets: ["DEMO_TOKEN"] });

  const once = async (b: Build): Promise<Usage> => {
    process.env.BENCH_DISPATCHER_MJS = b.bundle;
    return (await runOnce(setup)).usage;
  };
  say("warm-up: the dispatcher's clone, one action per build");
  let n = 0;
  const batch = async (b: Build, size: number) => {
    const ids = Array.from({ length: size }, () => `declared-${RUN}-${n++}`);
    await commitFiles(remote, Object.fromEntries(ids.map((id) => [`vault/actions/${id}.toml`, actionToml(id, "noop", ["DEMO_TOKEN"])])), `bench: ${size} actions`);
    return once(b);
  };
  for (const b of builds) await batch(b, 1);

  const figures = new Map(builds.map((b) => [b.name, { perAction: [] as number[], idle: [] as number[], startMs: [] as number[], startCpuMs: [] as number[], runnerMs: [] as number[], runnerCpuMs: [] as number[] }]));
  for (let r = 0; r < rounds; r++) {
    // alternate which build goes first
    for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
      const f = figures.get(b.name)!;
      const busy = await batch(b, actions);
      f.perAction.push(busy.selfMs / actions);
      f.idle.push((await once(b)).selfMs);
      const start = await startOf(b.bundle, ["--help"]);
      f.startMs.push(start.wallMs);
      f.startCpuMs.push(start.cpuMs);
      const runner = await startOf(b.runner, []);
      f.runnerMs.push(runner.wallMs);
      f.runnerCpuMs.push(runner.cpuMs);
      say(`round ${r + 1}/${rounds} ${b.name}: ${(busy.selfMs / actions).toFixed(1)} ms node CPU per action, start ${start.wallMs.toFixed(0)} ms`);
    }
  }
  const med = (xs: number[]) => percentile(xs, 50).toFixed(1);
  console.log(`| build | node CPU per action (once, ${actions} actions with a secret) | idle once CPU | CLI --help wall / CPU | runner start wall / CPU | CLI bundle | runner bundle |`);
  console.log("|---|---|---|---|---|---|---|");
  for (const b of builds) {
    const f = figures.get(b.name)!;
    const kb = async (file: string) => `${Math.round((await stat(file)).size / 1024)} KiB`;
    console.log(`| ${b.name} | ${med(f.perAction)} ms | ${med(f.idle)} ms | ${med(f.startMs)} / ${med(f.startCpuMs)} ms | ${med(f.runnerMs)} / ${med(f.runnerCpuMs)} ms | ${await kb(b.bundle)} | ${await kb(b.runner)} |`);
  }
  console.log(`(medians of ${rounds} rounds, builds alternating)`);
}

/**
 * A bundle's start under bench/usage.ts: its wall time and its node CPU. The CLI with --help; the
 * runner without its environment, so it loads, finds no meta and exits (its modules' cost).
 */
function startOf(bundle: string, args: string[]): Promise<{ wallMs: number; cpuMs: number }> {
  const dir = join(readStack().dir, "declared");
  const file = join(dir, `start-${Date.now()}.json`);
  const began = performance.now();
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [USAGE, ...args], { cwd: dir, env: { PATH: process.env.PATH, NOMAD_TASK_DIR: dir, BENCH_DISPATCHER_MJS: bundle, BENCH_USAGE_FILE: file }, stdio: "ignore" });
    child.on("error", fail);
    child.on("close", () => {
      const wallMs = performance.now() - began;
      readFile(file, "utf8").then((t) => ok({ wallMs, cpuMs: (JSON.parse(t) as { selfMs: number }).selfMs }), fail);
    });
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// The runner child's own CPU, outside Nomad: the runner bundle run N times as a task runs it
// (a fresh task directory, the payload file, the job meta, an environment of PATH and the task's
// variables only) on a bench-like ops repo served by the stack's git daemon. Prints, per run, the
// CPU of the whole child (node and every process under it: git, bash), node's own share, and
// that of the git daemon serving the fetch. No Nomad: the executor, logmon and the agent are
// apart (bench/README.md, "The runner child's cost").
//   node dist/bench/runner-cost.js [RUNS]   (RUNNER_BUNDLE=path: another bundle; RUNNER_NODE_ARGS: node options)
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildMeta, encodePayload } from "../contract.js";
import { runnerRemoteOf } from "./contenders/dispatcher.js";
import { actionToml, blobSha, commitFiles, createBareRepo, NOOP_FORMULA, packRepo } from "./opsrepo.js";
import { readCpu } from "./proc.js";
import { ROOT, readStack } from "./settings.js";

/** as the bench's ops repo by its last round: the action, and about 400 others with their results */
const OTHER_ACTIONS = 400;
const ACTION = "vault/actions/noop.toml";
/** node's own CPU, printed by the runner's node on exit (its children are apart) */
const NODE_SELF = "data:text/javascript,process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('runner-cost-node '+(u.user+u.system)/1000+'\\n')})";

const stack = readStack();
const runs = Number(process.argv[2] ?? 20);
const bundle = process.env.RUNNER_BUNDLE ?? join(ROOT, "dist/runner/runner.mjs");
const remote = join(stack.repos, "runner-cost.git");
mkdirSync(stack.dir, { recursive: true });
mkdirSync(stack.repos, { recursive: true });
rmSync(remote, { recursive: true, force: true });
const seed = await createBareRepo(remote, { "formulas/noop.sh": NOOP_FORMULA, [ACTION]: actionToml("noop", "noop") });
const others = Object.fromEntries(
  Array.from({ length: OTHER_ACTIONS }, (_, i) => [
    [`vault/actions/a${i}.toml`, actionToml(`a${i}`, "noop")],
    [`vault/actions/a${i}.result.json`, `{"id":"a${i}","exit_code":0}\n`],
  ]).flat(),
);
const commit = await commitFiles(remote, others, "bench: earlier rounds");
await packRepo(remote);
const meta = buildMeta(
  { actionId: "cost", actionSha: await blobSha(remote, seed, ACTION), actionPath: ACTION, commit, formula: "noop", opsRepo: runnerRemoteOf(stack, remote), secrets: [], mounts: [], kvMount: "kv" },
  { attempt: "1", timeout_minutes: "60" },
);
const nodeArgs = (process.env.RUNNER_NODE_ARGS ?? "").split(" ").filter(Boolean);
const waited = () => readCpu(process.pid).childrenMs;
const daemon = () => readCpu(stack.servicePids.gitDaemon).childrenMs;

const totals: number[] = [];
const nodes: number[] = [];
const daemonBefore = daemon();
for (let i = 0; i < runs; i++) {
  const task = mkdtempSync(join(stack.dir, "runner-cost-"));
  writeFileSync(join(task, "wrap.token"), encodePayload({ nonce: "0".repeat(32) }));
  const env = { PATH: "/usr/bin:/bin", NOMAD_TASK_DIR: task, ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`NOMAD_META_${k}`, v])) };
  const before = waited();
  const run = spawnSync(process.execPath, [...nodeArgs, "--import", NODE_SELF, bundle], { env, encoding: "utf8" });
  totals.push(waited() - before);
  if (run.status !== 0) throw new Error(`runner exited ${run.status}: ${run.stderr}`);
  nodes.push(Number(/runner-cost-node ([\d.]+)/.exec(run.stderr)?.[1]));
  rmSync(task, { recursive: true, force: true });
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
// the kernel's CPU times of reaped children are in clock ticks (10 ms): a mean over many runs
const total = mean(totals);
const node = mean(nodes);
process.stdout.write(
  `runner child, ${runs} runs of ${bundle} at a commit of ${2 * OTHER_ACTIONS + 2} files: ` +
    `${total.toFixed(1)} ms CPU per run (node ${node.toFixed(1)}, git and bash ${(total - node).toFixed(1)}), ` +
    `git daemon ${((daemon() - daemonBefore) / runs).toFixed(1)} ms\n`,
);

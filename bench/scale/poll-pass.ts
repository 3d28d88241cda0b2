// Child process of the poll check: a dispatcher in this process on an ops repo with a long
// history, measured pass by pass. Prints one JSON object: PassCost per step.
import { createWriteStream } from "node:fs";
import { loadConfig } from "../../config.js";
import { createLogger } from "../../log.js";
import { startDispatcher } from "../../start.js";
import { actionToml, commitFiles } from "../opsrepo.js";
import { diffCpu, readCpu } from "../proc.js";
import { readRemoteMs } from "../remote.js";

export interface PassCost {
  wallMs: number;
  /** the dispatcher's node process */
  selfMs: number;
  /** git processes it ran, the remote's side included */
  childrenMs: number;
  /** of childrenMs: the remote's upload-pack and receive-pack (the git server's work, on another machine when deployed) */
  remoteMs: number;
}

/**
 * an idle pass is a few ms: /proc counts CPU in 10 ms ticks, so idle passes are measured this many
 * times and averaged (BENCH_IDLE_PASSES; bench/scale/idle.ts asks for more)
 */
const IDLE_PASSES = Number(process.env.BENCH_IDLE_PASSES ?? 20);

/** The mean cost of `times` runs of `step`; the node process's CPU from process.cpuUsage (µs), git's from /proc. */
async function measure(step: () => Promise<unknown>, times = 1): Promise<PassCost> {
  const remoteFile = process.env.BENCH_REMOTE_CPU_FILE!;
  const remote = readRemoteMs(remoteFile);
  const before = readCpu("self");
  const self = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < times; i++) await step();
  const wallMs = performance.now() - t;
  const used = process.cpuUsage(self);
  const { childrenMs } = diffCpu(before, readCpu("self"));
  return { wallMs: wallMs / times, selfMs: (used.user + used.system) / 1000 / times, childrenMs: childrenMs / times, remoteMs: (readRemoteMs(remoteFile) - remote) / times };
}

async function main(): Promise<void> {
  const remote = process.env.DISPATCHER_OPS_REMOTE!;
  // log lines are part of a pass's cost: written, but to nowhere
  const d = startDispatcher(loadConfig(), { log: createLogger({ destination: createWriteStream("/dev/null"), pretty: false }) });
  const cold = await measure(() => d.loop.pass());
  const idle = await measure(() => d.loop.pass(), IDLE_PASSES);
  // bench/scale/idle.ts: the idle passes alone (no child is dispatched)
  if (process.env.BENCH_IDLE_ONLY === "1") {
    process.stdout.write(`${JSON.stringify({ idlePasses: IDLE_PASSES, cold, idle })}\n`);
    return;
  }
  await commitFiles(remote, { "vault/actions/fresh.toml": actionToml("fresh", "noop") }, "bench: one new action");
  const fresh = await measure(() => d.loop.pass());
  const finish = await measure(() => d.loop.once());
  const after = await measure(() => d.loop.pass(), IDLE_PASSES);
  // the steady state: the clone's worktree exists now, as in a daemon that has written before
  await commitFiles(remote, { "vault/actions/next.toml": actionToml("next", "noop") }, "bench: another new action");
  const next = await measure(() => d.loop.once());
  process.stdout.write(`${JSON.stringify({ idlePasses: IDLE_PASSES, cold, idle, fresh, finish, after, next })}\n`);
}

await main();

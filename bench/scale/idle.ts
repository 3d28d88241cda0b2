// The idle pass at a long history, two builds side by side: `node dist/bench/scale/idle.js <build
// dir>...` (the stack up, after a `make bench` has registered the bench's jobs and pins) builds the
// poll check's ops repo and ledger once (BENCH_HISTORY done actions, default 10,000), then for
// each build dir in turn (e.g. old new old new) runs that build's poll-pass child on it: a first
// pass (the clone), then BENCH_IDLE_PASSES idle passes (default 200). Prints one JSON line per
// run: the mean idle pass's node CPU (µs-precise) and git CPU (its children, /proc), the remote's
// side apart. BENCH_NODE_ARGS applies (e.g. `--cpu-prof --cpu-prof-dir=/tmp/idle-prof`).
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { benchNodeArgs } from "../contenders/dispatcher.js";
import { readStack } from "../settings.js";
import { preparePollRepo, runChild } from "./poll.js";

const builds = process.argv.slice(2).map((d) => resolve(d));
if (builds.length === 0) throw new Error("usage: node dist/bench/scale/idle.js <build dir>... (a checkout with dist/ built, e.g. . or an older worktree)");
const history = Number(process.env.BENCH_HISTORY ?? 10_000);
const passes = process.env.BENCH_IDLE_PASSES ?? "200";
const stack = readStack();
const { env, workdir } = await preparePollRepo(stack, history);
for (const build of builds) {
  await rm(workdir, { recursive: true, force: true });
  const out = await runChild([...benchNodeArgs(), join(build, "dist/bench/scale/poll-pass.js")], { ...env, BENCH_IDLE_ONLY: "1", BENCH_IDLE_PASSES: passes });
  const { cold, idle } = JSON.parse(out) as { cold: Record<string, number>; idle: Record<string, number> };
  const ms = (n: number | undefined) => Number((n ?? 0).toFixed(2));
  process.stdout.write(
    `${JSON.stringify({ build, history, passes: Number(passes), idle: { nodeMs: ms(idle.selfMs), gitMs: ms((idle.childrenMs ?? 0) - (idle.remoteMs ?? 0)), remoteMs: ms(idle.remoteMs), wallMs: ms(idle.wallMs) }, coldMs: ms((cold.selfMs ?? 0) + (cold.childrenMs ?? 0) - (cold.remoteMs ?? 0)) })}\n`,
  );
}

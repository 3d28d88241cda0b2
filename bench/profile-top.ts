// Where a short process's CPU went, from node's `--cpu-prof` profiles: self time per script and
// per function, the mean over every profile in a directory (one per run). Used for the runner
// child (bench/README.md, "The runner child's cost"):
//   RUNNER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" node dist/bench/runner-cost.js 10
//   node dist/bench/profile-top.js /tmp/prof [ROWS]
// The profiler's own overhead is in the figures: compare profiles taken the same way, never
// with runner-cost's CPU.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const dir = process.argv[2];
if (!dir) throw new Error("usage: node dist/bench/profile-top.js DIR [ROWS] (DIR holds *.cpuprofile, e.g. from --cpu-prof-dir=DIR)");
const rows = Number(process.argv[3] ?? 20);
const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
if (files.length === 0) throw new Error(`${dir} holds no .cpuprofile file (expected node's --cpu-prof output, e.g. CPU.20261208.011836.1536.0.001.cpuprofile)`);

const byScript = new Map<string, number>();
const byFunction = new Map<string, number>();
const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
for (const f of files) {
  const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as Profile;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  // a sample's time is the delta to the next one
  p.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    const script = url ? url.replace(/^file:\/\/.*\//, "") : `(${functionName || "native"})`;
    const us = p.timeDeltas[i + 1] ?? 0;
    add(byScript, script, us);
    add(byFunction, `${functionName || "(anonymous)"} ${script}:${lineNumber + 1}`, us);
  });
}
const top = (m: Map<string, number>) =>
  [...m]
    .filter(([k]) => k !== "((idle))" && !k.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([k, us]) => `${(us / 1000 / files.length).toFixed(1).padStart(7)} ms  ${k}`)
    .join("\n");
const busy = [...byScript].filter(([k]) => k !== "((idle))").reduce((a, [, us]) => a + us, 0);
process.stdout.write(`${files.length} profiles, ${(busy / 1000 / files.length).toFixed(1)} ms sampled busy per profile (idle left out)\n-- self time by script --\n${top(byScript)}\n-- self time by function --\n${top(byFunction)}\n`);

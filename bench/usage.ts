// Runs the dispatcher CLI (dist/dispatcher.mjs) in this process and, when it exits, writes what it
// cost to $BENCH_USAGE_FILE: its own CPU and peak RSS, and the CPU of the git processes it ran.
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { readCpu } from "./proc.js";

const out = process.env.BENCH_USAGE_FILE;
if (!out) throw new Error("BENCH_USAGE_FILE is not set");
process.on("exit", () => {
  const u = process.resourceUsage();
  const { childrenMs } = readCpu("self");
  writeFileSync(out, JSON.stringify({ selfMs: (u.userCPUTime + u.systemCPUTime) / 1000, childrenMs, maxRssMiB: u.maxRSS / 1024 }));
});
// BENCH_DISPATCHER_MJS: another build's bundle (bench/declared.ts runs two builds side by side)
const bundle = process.env.BENCH_DISPATCHER_MJS;
await import(bundle ? pathToFileURL(bundle).href : new URL("../dispatcher.mjs", import.meta.url).href);

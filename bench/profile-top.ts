// The top entries of V8 CPU profiles (`--cpu-prof`, e.g. through BENCH_NODE_ARGS):
// `node dist/bench/profile-top.js [--by=function|file|package] [--top=N] <file.cpuprofile>...`
// sums self time over the given profiles and prints each entry's share and ms, plus the total.
// Entries are grouped by function (name, file and line), by file, or by package (node_modules/<pkg>,
// node: internals, the dispatcher's own folders, GC and the idle loop apart), or with
// --by=inclusive by function with the time of everything it called (each function once a sample).
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const by = args.find((a) => a.startsWith("--by="))?.slice(5) ?? "function";
const top = Number(args.find((a) => a.startsWith("--top="))?.slice(6) ?? 25);
const files = args.filter((a) => !a.startsWith("--"));
if (files.length === 0 || !["function", "file", "package", "inclusive"].includes(by)) {
  throw new Error("usage: node dist/bench/profile-top.js [--by=function|file|package|inclusive] [--top=N] <file.cpuprofile>... (example: --by=package /tmp/prof/*.cpuprofile)");
}

function shortUrl(url: string): string {
  if (!url) return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const dist = url.lastIndexOf("/dist/");
  if (dist >= 0) return url.slice(dist + "/dist/".length);
  return url.replace(/^file:\/\//, "");
}

function keyOf(f: ProfileNode["callFrame"]): string {
  const special = ["(garbage collector)", "(idle)", "(program)", "(root)"];
  if (special.includes(f.functionName)) return f.functionName;
  const file = shortUrl(f.url);
  if (by === "file") return file;
  if (by === "inclusive") return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
  if (by === "package") {
    if (f.url.startsWith("node:")) return f.url.split("/")[0]!.split(":")[0] === "node" ? `node:${f.url.slice(5).split("/")[0]}` : f.url;
    const nm = f.url.lastIndexOf("node_modules/");
    if (nm >= 0) {
      const rest = f.url.slice(nm + "node_modules/".length).split("/");
      return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
    }
    if (!f.url) return "(native)";
    return file.split("/").slice(0, -1).join("/") || file;
  }
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
}

const totals = new Map<string, number>();
let all = 0;
let idle = 0;
for (const file of files) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i] ?? 0;
    const key = keyOf(byId.get(id)!.callFrame);
    if (key === "(idle)") idle += us;
    else all += us;
    const keys = new Set([key]);
    // inclusive: every function on the sample's stack, once
    for (let at = parent.get(id); by === "inclusive" && at !== undefined; at = parent.get(at)) keys.add(keyOf(byId.get(at)!.callFrame));
    keys.delete("(root)");
    for (const k of keys) totals.set(k, (totals.get(k) ?? 0) + us);
  });
}
totals.delete("(idle)");
const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
process.stdout.write(`${files.length} profiles: ${(all / 1000).toFixed(0)} ms busy (idle ${(idle / 1000).toFixed(0)} ms), top ${rows.length} by ${by}:\n`);
for (const [key, us] of rows) process.stdout.write(`${((100 * us) / all).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}\n`);

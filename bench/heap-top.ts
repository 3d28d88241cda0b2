// What a V8 heap snapshot holds, by constructor: `node dist/bench/heap-top.js [--top=N] <file.heapsnapshot>`
// (a dispatcher started with `--heapsnapshot-signal=SIGUSR2`, e.g. through BENCH_NODE_ARGS, writes one
// into its working directory on `kill -USR2 <pid>`). Prints the self size and count of each node
// type and name (objects by constructor, strings, closures by function name), largest first.
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith("--top="))?.slice(6) ?? 30);
const file = args.find((a) => !a.startsWith("--"));
if (!file) throw new Error("usage: node dist/bench/heap-top.js [--top=N] <file.heapsnapshot> (example: --top=40 Heap.20261208.heapsnapshot)");

const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
const fields = s.snapshot.meta.node_fields;
const types = s.snapshot.meta.node_types[0];
const width = fields.length;
const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number];
const totals = new Map<string, { bytes: number; count: number }>();
let all = 0;
for (let i = 0; i < s.nodes.length; i += width) {
  const type = types[s.nodes[i + typeAt]!]!;
  const bytes = s.nodes[i + sizeAt]!;
  // strings by type only: their names are their contents
  const key = type === "string" || type === "concatenated string" || type === "sliced string" ? `(${type})` : `${type} ${s.strings[s.nodes[i + nameAt]!]}`;
  const t = totals.get(key) ?? { bytes: 0, count: 0 };
  t.bytes += bytes;
  t.count++;
  totals.set(key, t);
  all += bytes;
}
process.stdout.write(`${(all / 1048576).toFixed(1)} MiB in ${s.nodes.length / width} nodes; top ${top} by self size:\n`);
for (const [key, t] of [...totals].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
  process.stdout.write(`${(t.bytes / 1048576).toFixed(2).padStart(8)} MiB ${String(t.count).padStart(9)}  ${key.slice(0, 100)}\n`);
}

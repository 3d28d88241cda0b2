// What a V8 heap snapshot holds, by constructor: `node dist/bench/heap-top.js [--top=N] <file.heapsnapshot>`
// (a dispatcher started with `--heapsnapshot-signal=SIGUSR2`, e.g. through BENCH_NODE_ARGS, writes one
// into its working directory on `kill -USR2 <pid>`). Prints the self size and count of each node
// type and name (objects by constructor, strings, closures by function name), largest first.
// `--base=<earlier.heapsnapshot>` prints the difference instead (later less earlier), largest growth
// first, and with `--per=N` each difference divided by N (bytes and objects per in-flight action).
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

const base = args.find((a) => a.startsWith("--base="))?.slice(7);
const per = Number(args.find((a) => a.startsWith("--per="))?.slice(6) ?? 1);
if (!Number.isInteger(per) || per <= 0) throw new Error(`--per must be a positive integer (the count the difference is divided by), example: --per=3000`);

type Totals = Map<string, { bytes: number; count: number }>;

/** self size and count per node type and name, and the heap's total */
function totalsOf(path: string): { totals: Totals; all: number; nodes: number } {
  const s = JSON.parse(readFileSync(path, "utf8")) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number];
  const totals: Totals = new Map();
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
  return { totals, all, nodes: s.nodes.length / width };
}

const later = totalsOf(file);
if (base === undefined) {
  process.stdout.write(`${(later.all / 1048576).toFixed(1)} MiB in ${later.nodes} nodes; top ${top} by self size:\n`);
  for (const [key, t] of [...later.totals].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    process.stdout.write(`${(t.bytes / 1048576).toFixed(2).padStart(8)} MiB ${String(t.count).padStart(9)}  ${key.slice(0, 100)}\n`);
  }
} else {
  const earlier = totalsOf(base);
  const diff = [...new Set([...later.totals.keys(), ...earlier.totals.keys()])].map((key) => {
    const [a, b] = [earlier.totals.get(key), later.totals.get(key)];
    return { key, bytes: (b?.bytes ?? 0) - (a?.bytes ?? 0), count: (b?.count ?? 0) - (a?.count ?? 0) };
  });
  const grew = later.all - earlier.all;
  process.stdout.write(`${(earlier.all / 1048576).toFixed(1)} → ${(later.all / 1048576).toFixed(1)} MiB (${(grew / 1048576).toFixed(1)} MiB, ${(grew / per).toFixed(0)} B per ${per === 1 ? "snapshot" : `one of ${per}`}); top ${top} by growth (bytes, objects per one):\n`);
  for (const d of diff.sort((x, y) => y.bytes - x.bytes).slice(0, top)) {
    process.stdout.write(`${(d.bytes / 1048576).toFixed(2).padStart(8)} MiB ${(d.bytes / per).toFixed(0).padStart(8)} B ${(d.count / per).toFixed(2).padStart(8)}  ${d.key.slice(0, 100)}\n`);
  }
}

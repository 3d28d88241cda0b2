// Where a `--cpu-prof` profile's CPU went: self and total time by package and by function (top N),
// for the notes. A bundle (dist/dispatcher.mjs, dist/runner/runner.mjs) is one script to V8, so a
// function's package is read from esbuild's module comments in the bundle (`// node_modules/axios/…`,
// `// dist/nomad/client.js`): the last one above the function's line.
//   node dist/bench/profile-summary.js [--top N] [--from S] [--to S] FILE.cpuprofile...
// --from/--to keep only the samples between S seconds after the profile's start and S seconds
// (e.g. a batch, without the process's start); several files are summed (a bench's processes).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** V8's pseudo-frames: not code of any package */
const PSEUDO = new Set(["(garbage collector)", "(program)", "(idle)", "(root)"]);

/** per script URL: the module comments of a bundle, as [line, module] sorted by line */
const bundles = new Map<string, [number, string][]>();

function modulesOf(url: string): [number, string][] {
  let m = bundles.get(url);
  if (m) return m;
  m = [];
  if (url.endsWith(".mjs") && url.startsWith("file://")) {
    const lines = readFileSync(fileURLToPath(url), "utf8").split("\n");
    lines.forEach((l, i) => {
      const c = /^\/\/ ((?:node_modules|dist|dispatcher)\/\S+)$/.exec(l);
      if (c) m!.push([i, c[1]!]);
    });
  }
  bundles.set(url, m);
  return m;
}

/** The module a frame's code comes from: a path inside the bundle, or the script's own URL. */
function moduleOf(f: CallFrame): string {
  if (PSEUDO.has(f.functionName) && !f.url) return f.functionName;
  if (!f.url) return "(native)";
  if (f.url.startsWith("node:")) return f.url;
  const mods = modulesOf(f.url);
  if (mods.length === 0) return f.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/");
  let lo = 0;
  let hi = mods.length - 1;
  let found = "(bundle prologue)";
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (mods[mid]![0] <= f.lineNumber) {
      found = mods[mid]![1];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** node_modules/<pkg> (scoped too), dist/<folder>, node's own (node:internal), or the pseudo-frame */
export function packageOf(module: string): string {
  const nm = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(module);
  if (nm) return nm[1]!;
  const own = /^(?:dist|dispatcher)\/(?:([^/]+)\/)?[^/]+$/.exec(module);
  if (own) return `dispatcher/${own[1] ?? "(top)"}`;
  if (module.startsWith("node:")) return "node (internals)";
  return module;
}

interface Tally {
  self: Map<string, number>;
  total: Map<string, number>;
}
const tally = (): Tally => ({ self: new Map(), total: new Map() });
const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);

function summarize(files: string[], from: number, to: number) {
  const byPackage = tally();
  const byFunction = tally();
  let sampled = 0;
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const label = new Map<number, { fn: string; pkg: string }>();
    for (const n of p.nodes) {
      const module = moduleOf(n.callFrame);
      const name = n.callFrame.functionName || "(anonymous)";
      label.set(n.id, { fn: PSEUDO.has(name) ? name : `${name} ${module}:${n.callFrame.lineNumber + 1}`, pkg: packageOf(module) });
    }
    let t = p.startTime;
    p.samples.forEach((id, i) => {
      // a sample's time is the delta to the next one: the time spent in this stack
      t += p.timeDeltas[i]!;
      const us = p.timeDeltas[i + 1] ?? 0;
      const at = (t - p.startTime) / 1e6;
      if (at < from || at > to || byId.get(id)?.callFrame.functionName === "(idle)") return;
      sampled += us;
      const own = label.get(id)!;
      add(byPackage.self, own.pkg, us);
      add(byFunction.self, own.fn, us);
      // total: each function and package once per sample, however deep it recurses
      const fns = new Set<string>();
      const pkgs = new Set<string>();
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const l = label.get(n)!;
        if (l.fn === "(root)") continue;
        fns.add(l.fn);
        pkgs.add(l.pkg);
      }
      fns.forEach((f) => add(byFunction.total, f, us));
      pkgs.forEach((k) => add(byPackage.total, k, us));
    });
  }
  return { byPackage, byFunction, sampled };
}

function table(title: string, t: Tally, sampled: number, top: number, by: "self" | "total"): string {
  const rows = [...t[by].entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const ms = (us: number | undefined) => ((us ?? 0) / 1000).toFixed(1);
  const pct = (us: number | undefined) => `${(((us ?? 0) / sampled) * 100).toFixed(1)} %`;
  const lines = [`### ${title}, by ${by} time`, "", "| self ms | self | total ms | total | what |", "|---|---|---|---|---|"];
  for (const [k] of rows) lines.push(`| ${ms(t.self.get(k))} | ${pct(t.self.get(k))} | ${ms(t.total.get(k))} | ${pct(t.total.get(k))} | ${k.replace(/\|/g, "\\|")} |`);
  return lines.join("\n");
}

function main(argv: string[]): void {
  let top = 30;
  let from = 0;
  let to = Infinity;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--top") top = Number(argv[++i]);
    else if (a === "--from") from = Number(argv[++i]);
    else if (a === "--to") to = Number(argv[++i]);
    else files.push(a);
  }
  if (files.length === 0 || !Number.isFinite(top) || Number.isNaN(from) || Number.isNaN(to)) {
    process.stderr.write("usage: node dist/bench/profile-summary.js [--top N] [--from S] [--to S] FILE.cpuprofile...\n");
    process.exit(2);
  }
  const { byPackage, byFunction, sampled } = summarize(files, from, to);
  process.stdout.write(
    [
      `${files.length} profile(s), ${(sampled / 1000).toFixed(1)} ms sampled (idle left out)${from > 0 || to < Infinity ? `, from ${from} s to ${to} s` : ""}`,
      "",
      table("Packages", byPackage, sampled, top, "self"),
      "",
      table("Functions", byFunction, sampled, top, "self"),
      "",
      table("Functions", byFunction, sampled, top, "total"),
      "",
    ].join("\n"),
  );
}

main(process.argv.slice(2));

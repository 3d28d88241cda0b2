// A preload that logs a process's memory: `BENCH_NODE_ARGS="--import <repo>/dist/bench/memlog.js"`
// (with BENCH_MEMLOG_DIR=/tmp/mem, every BENCH_MEMLOG_MS, 2000 by default) makes each dispatcher the
// bench starts append one JSON line per sample to <dir>/memlog-<pid>.jsonl: process.memoryUsage()'s
// split in MiB (rss, heapTotal, heapUsed, external, arrayBuffers) and its live handles by type
// (sockets, timers, child processes). Read it beside a heap snapshot (heap-top.js) to tell the
// JavaScript heap from buffers and native memory. The timer is unref'd: it keeps nothing alive.
//
// `kill -USR2 <pid>` writes a heap snapshot into the same directory (heap-<pid>-<n>.heapsnapshot),
// use it instead of `--heapsnapshot-signal`: in the 1.7 MB bundle (dist/dispatcher.mjs) node 20's
// snapshot looks up each closure's line by scanning the script from its start (V8's
// Script::GetPositionInfo without line ends, `perf` shows 96 % there), so a snapshot of 2,500
// attempts had not finished after several minutes. Enabling the inspector's debugger first
// computes every script's line ends once (its scriptParsed events carry each script's end line),
// after which each lookup is a binary search.
import { appendFileSync, mkdirSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";

const dir = process.env.BENCH_MEMLOG_DIR ?? process.cwd();
const everyMs = Number(process.env.BENCH_MEMLOG_MS ?? 2000);
if (!Number.isInteger(everyMs) || everyMs <= 0) throw new Error(`BENCH_MEMLOG_MS must be a positive integer (ms), got ${JSON.stringify(process.env.BENCH_MEMLOG_MS)}; example: 2000`);
mkdirSync(dir, { recursive: true });
const file = join(dir, `memlog-${process.pid}.jsonl`);
const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

function sample(): void {
  const m = process.memoryUsage();
  const handles: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) handles[kind] = (handles[kind] ?? 0) + 1;
  const line = { t: Date.now(), rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), handles };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

let snapshots = 0;
function snapshot(): void {
  const session = new Session();
  session.connect();
  session.post("Debugger.enable");
  sample();
  const from = Date.now();
  const path = writeHeapSnapshot(join(dir, `heap-${process.pid}-${++snapshots}.heapsnapshot`));
  session.post("Debugger.disable");
  session.disconnect();
  appendFileSync(file, `${JSON.stringify({ t: Date.now(), snapshot: path, writeMs: Date.now() - from })}\n`);
  sample();
}

sample();
setInterval(sample, everyMs).unref();
process.on("SIGUSR2", snapshot);

// How full a dispatcher kept its places, from a kept log (BENCH_LOG_DIR): `node
// dist/bench/scale/timeline.js [--only=<id prefix>] <max in flight> <run-….log>...` prints, per log, the children in
// flight on average between the first dispatch and the last child's end (a child counts from its
// "dispatched" line to its "action finished" line), and how long a place stayed empty: from an
// "action finished" to the next "dispatched" while fewer than the maximum were in flight.
import { readFileSync } from "node:fs";
import { parseLines } from "../loglines.js";
import { percentile } from "../stats.js";

const args = process.argv.slice(2);
/** only actions whose id starts with this (`--only=m`: a mock batch, not the daemon's warm-up) */
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length) ?? "";
const [maxArg, ...files] = args.filter((a) => !a.startsWith("--"));
const max = Number(maxArg);
if (!Number.isInteger(max) || max <= 0 || files.length === 0) throw new Error("usage: node dist/bench/scale/timeline.js [--only=<id prefix>] <max in flight> <run-….log>... (example: --only=m 64 /tmp/logs/mock-*.log)");

for (const file of files) {
  const steps: { t: number; d: number }[] = [];
  for (const l of parseLines(readFileSync(file, "utf8"))) {
    if (!l.action?.startsWith(only)) continue;
    if (l.msg === "dispatched") steps.push({ t: l.time, d: +1 });
    if (l.msg === "action finished") steps.push({ t: l.time, d: -1 });
  }
  steps.sort((a, b) => a.t - b.t || a.d - b.d);
  if (steps.length === 0) continue;
  let inFlight = 0;
  let area = 0;
  const gaps: number[] = [];
  /** when each place below the maximum emptied, oldest first */
  const empty: number[] = [];
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    if (i > 0) area += inFlight * (s.t - steps[i - 1]!.t);
    inFlight += s.d;
    if (s.d < 0) empty.push(s.t);
    else if (empty.length > 0) gaps.push(s.t - empty.shift()!);
  }
  const span = steps.at(-1)!.t - steps[0]!.t;
  const dispatched = steps.filter((s) => s.d > 0).length;
  process.stdout.write(
    `${file}: ${dispatched} children over ${(span / 1000).toFixed(1)} s, in flight on average ${(area / span).toFixed(1)} of ${max}; a place empty before its next dispatch: p50 ${percentile(gaps, 50).toFixed(0)} ms, p90 ${percentile(gaps, 90).toFixed(0)} ms, p99 ${percentile(gaps, 99).toFixed(0)} ms\n`,
  );
}

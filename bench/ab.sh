#!/usr/bin/env bash
# Two builds of the dispatcher in turns, A B A B, in the same conditions: each run is the bench
# (dist/bench/main.js, built from this tree) with BENCH_DISPATCHER_MJS set to one build's bundle.
#
#   bench/ab.sh <build A dir> <build B dir> [out dir]
#
# A build dir holds dist/dispatcher.mjs and package.json (a checkout after `npm run build`, or a
# copy of those two). The bench's own settings come from the environment, e.g. (issue 36):
#   DEV_NOMAD_PORT=4850 DEV_BAO_PORT=8240 BENCH_CONTENDERS=raw,dispatcher BENCH_ROUNDS=2 \
#   BENCH_ACTIONS=20 BENCH_MOCK_ACTIONS=0 BENCH_HISTORY=0 BENCH_INFLIGHT=0 bench/ab.sh /tmp/a /tmp/b
# Each run writes <out>/<A1|B1|A2|B2>.md; with BENCH_LOG_DIR set, each run keeps its logs in
# $BENCH_LOG_DIR/<run> (bench/timeline.ts reads them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
a=$(cd "${1:?build A dir}" && pwd)
b=$(cd "${2:?build B dir}" && pwd)
out=${3:-$root/.dev/ab}
mkdir -p "$out"
for dir in "$a" "$b"; do
  [ -f "$dir/dist/dispatcher.mjs" ] && [ -f "$dir/package.json" ] || { echo "$dir: needs dist/dispatcher.mjs and package.json (npm run build there)" >&2; exit 2; }
done
for run in A1 B1 A2 B2; do
  case $run in A*) dir=$a ;; *) dir=$b ;; esac
  logs=()
  [ -n "${BENCH_LOG_DIR:-}" ] && logs=(BENCH_LOG_DIR="$BENCH_LOG_DIR/$run")
  env "${logs[@]}" BENCH_OUT="$out/$run.md" BENCH_DISPATCHER_MJS="$dir/dist/dispatcher.mjs" "$root/scripts/with-stack.sh" node "$root/dist/bench/main.js" > "$out/$run.out" 2>&1
  echo "$run: $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg), $out/$run.md"
done

#!/usr/bin/env bash
# Contender 2, the CLI baseline, in the style of the ops repos' dispatch scripts:
# `nomad job dispatch -detach`, then `nomad job status` every few seconds until the child is dead,
# then `nomad alloc status` for the exit code. Reads action ids on stdin, CONCURRENCY at a time;
# prints "<id> <dispatch epoch ms> <done epoch ms> <exit code>" per action.
#   NOMAD_BIN=… NOMAD_ADDR=… BENCH_META="k=v …" cli-baseline.sh JOB POLL_SECONDS CONCURRENCY
set -euo pipefail
export BENCH_JOB=$1 BENCH_POLL=$2
concurrency=$3

dispatch_one() {
  local id=$1 start job alloc code kv
  local meta=(-meta "action_id=$id")
  for kv in $BENCH_META; do meta+=(-meta "$kv"); done
  start=$(date +%s%3N)
  job=$("$NOMAD_BIN" job dispatch -detach "${meta[@]}" "$BENCH_JOB" | awk '/^Dispatched Job ID/ {print $NF}')
  while :; do
    sleep "$BENCH_POLL"
    "$NOMAD_BIN" job status -short "$job" | grep -q '^Status *= dead' && break
  done
  alloc=$("$NOMAD_BIN" job status "$job" | awk '/^Allocations/ {getline; getline; print $1}')
  code=$("$NOMAD_BIN" alloc status "$alloc" | grep -o 'Exit Code: [0-9]*' | tail -1 | awk '{print $3}')
  echo "$id $start $(date +%s%3N) ${code:-none}"
}
export -f dispatch_one

xargs -P "$concurrency" -n 1 bash -c 'dispatch_one "$1"' _

#!/usr/bin/env bash
# Runs a command with the dev stack up. A stack this script started is stopped afterwards,
# whatever the command's outcome; one that was already running is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
started=0
# not `status | grep -q`: grep exits at the first match, status can die of SIGPIPE, and pipefail
# then reads a running stack as stopped (and stops it afterwards)
if [[ "$("$root/scripts/stack.sh" status)" != *"nomad: running"* ]]; then
  "$root/scripts/stack.sh" up
  started=1
fi
# DEV_FORGE=1: Gitea too (up starts it with the stack; a running stack without it gets it added)
forge_started=0
if [ "${DEV_FORGE:-0}" = 1 ] && [[ "$("$root/scripts/stack.sh" status)" != *"gitea: running"* ]]; then
  "$root/scripts/stack.sh" forge up
  forge_started=1
fi
# an `&&` list as the trap's last command would turn a stack we did not start into exit 1
cleanup() {
  if [ "$started" = 1 ]; then "$root/scripts/stack.sh" down
  elif [ "$forge_started" = 1 ]; then "$root/scripts/stack.sh" forge down; fi
}
trap cleanup EXIT
"$@"

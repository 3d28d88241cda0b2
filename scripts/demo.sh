#!/usr/bin/env bash
# The main job end to end on the dev stack: an operator commits actions to the ops repo, the
# dispatcher runs one pass, and the results it pushed back are printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
set -a; . "$root/.dev/env"; set +a
# the operator pushes to the repo directly; the dispatcher over SSH with its deploy key
export DISPATCHER_OPS_REMOTE="$OPS_SSH_REMOTE" DISPATCHER_SECRETS=DEMO_TOKEN,DEPLOY_KEY
export DISPATCHER_WORKDIR="$root/.dev/dispatcher-work"
# the dispatcher's log as an operator tails it: one readable line per event, also when piped
export DISPATCHER_LOG_FORMAT=pretty
stamp=$(date -u +%Y%m%d-%H%M%S)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

echo "==> operator commits two actions to the ops repo ($OPS_REMOTE)"
git clone -q "$OPS_REMOTE" "$work/ops"
for kind in hello release; do
  sed -e "s/^id = .*/id = \"$kind-$stamp\"/" "$root/examples/ops/vault/actions/$kind.toml" \
    > "$work/ops/vault/actions/$kind-$stamp.toml"
done
git -C "$work/ops" add -A
git -C "$work/ops" -c user.name=operator -c user.email=operator@example.com commit -qm "actions: demo $stamp"
git -C "$work/ops" push -q origin main

echo "==> dispatcher doctor"
node "$root/dist/dispatcher.mjs" doctor

echo "==> dispatcher once"
node "$root/dist/dispatcher.mjs" once

echo "==> dispatcher status"
node "$root/dist/dispatcher.mjs" status

echo "==> results pushed back to the ops repo"
git -C "$work/ops" pull -q
for kind in hello release; do
  echo "--- vault/actions/$kind-$stamp.result.json"
  cat "$work/ops/vault/actions/$kind-$stamp.result.json"
done

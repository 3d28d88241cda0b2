#!/usr/bin/env bash
# Registers every runner/sidecar parent from jobspecs/runner.nomad.hcl: one per kind, runner class
# and configured mount set (`dispatcher jobs sets`: [mounts] and mount_sets of DISPATCHER_CONFIG;
# by default runner, runner-gpg, …, runner-gpg-sops-ssh, sidecar, …; with DISPATCHER_CLASSES=big
# also runner.big, runner.big-gpg, … in node pool big), then pins what Nomad now holds
# (`dispatcher jobs pin`), so the dispatcher refuses to mint for a parent changed afterwards.
# A class may register another variant of the jobspec: with DISPATCHER_CLASS_VARS=DIR, a file
# DIR/<class>.vars.hcl is passed as -var-file for that class's parents, after the common
# arguments (the dev stack's class docker: driver = "docker", its image). Nomad lets a later var
# file override an earlier one, but never a -var flag: give what a class may change in a file.
# Needs a token that may submit jobs in the namespace (management on the dev stack): the
# dispatcher's own token cannot register jobs.
#   NOMAD_ADDR=… NOMAD_TOKEN=<management> VAULT_ADDR=… scripts/register-jobs.sh PIN_FILE [-var k=v …]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/engines.env"
nomad=${NOMAD_BIN:-$ENGINE_CACHE/bin/nomad-$NOMAD_VERSION}
pins=${1:?usage: scripts/register-jobs.sh PIN_FILE [-var k=v …]}
shift

# the parents of the configured mount sets ([mounts], mount_sets in DISPATCHER_CONFIG; every
# subset of ssh/gpg/sops by default): per parent its aliases, their host volumes and landing paths
mapfile -t parents < <(node "$root/dist/dispatcher.mjs" jobs sets)
[ "${#parents[@]}" -gt 0 ] || { echo "register-jobs: dispatcher jobs sets listed no parents" >&2; exit 1; }
IFS=, read -r -a classes <<<"${DISPATCHER_CLASSES:-}"
count=0
for class in "" "${classes[@]}"; do
  pool=${class:-default}
  class_vars=()
  if [ -n "$class" ] && [ -f "${DISPATCHER_CLASS_VARS:-/nonexistent}/$class.vars.hcl" ]; then
    class_vars=(-var-file "$DISPATCHER_CLASS_VARS/$class.vars.hcl")
  fi
  for parent in "${parents[@]}"; do
    kind=$(jq -r .kind <<<"$parent")
    set=$(jq -r '.mounts | join("-")' <<<"$parent")
    id=$(jq -r .base <<<"$parent")${class:+.$class}${set:+-$set}
    "$nomad" job run -output -var "kind=$kind" -var "mounts=$(jq -c .mounts <<<"$parent")" \
      -var "mount_sources=$(jq -c .sources <<<"$parent")" -var "mount_paths=$(jq -c .paths <<<"$parent")" \
      -var "node_pool=$pool" -var "vault_addr=$VAULT_ADDR" "$@" ${class_vars[@]+"${class_vars[@]}"} "$root/jobspecs/runner.nomad.hcl" \
      | jq --arg id "$id" '.Job.ID = $id | .Job.Name = $id' \
      | curl -fsS -X PUT -H "X-Nomad-Token: $NOMAD_TOKEN" --data-binary @- "$NOMAD_ADDR/v1/jobs" >/dev/null \
      || { echo "register-jobs: registering $id failed" >&2; exit 1; }
    count=$((count + 1))
  done
done
# pinned with the dispatcher's token when one is given (it can read jobs there), else with this one
NOMAD_TOKEN=${DISPATCHER_NOMAD_TOKEN:-$NOMAD_TOKEN} node "$root/dist/dispatcher.mjs" jobs pin --out "$pins"
echo "registered and pinned $count runner and sidecar parents (classes: default${DISPATCHER_CLASSES:+, ${DISPATCHER_CLASSES//,/, }}) ($pins)" >&2

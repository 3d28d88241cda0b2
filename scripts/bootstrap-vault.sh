#!/usr/bin/env bash
# Applies vault/ to an OpenBao (or Vault) server: KV v2 mount, runner-<NAME> policies and values
# for the dev secrets, the service-dispatcher policy, the dispatcher-runner token role, and a
# token for the dispatcher. Needs VAULT_ADDR and a root-capable VAULT_TOKEN. Prints the
# dispatcher's token on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bao=${BAO_BIN:-bao}
mount=${KV_MOUNT:-kv}
export BAO_ADDR=$VAULT_ADDR BAO_TOKEN=$VAULT_TOKEN

if ! "$bao" secrets list -format=json | jq -e --arg m "$mount/" 'has($m)' >/dev/null; then
  "$bao" secrets enable -path="$mount" -version=2 kv >&2
fi

# write_runner_secret NAME VALUE: the secret and its one-path policy
write_runner_secret() {
  sed -e "s/@NAME@/$1/g" -e "s/@MOUNT@/$mount/g" "$root/vault/policies/runner.hcl.tmpl" \
    | "$bao" policy write "runner-$(tr "[:upper:]" "[:lower:]" <<<"$1")" - >&2
  "$bao" kv put -mount="$mount" "runner/$1" value="$2" >/dev/null
}

policies=()
while IFS='=' read -r name value; do
  case "$name" in ''|\#*) continue ;; esac
  write_runner_secret "$name" "$value"
  policies+=("runner-$(tr "[:upper:]" "[:lower:]" <<<"$name")")
done < "${DEV_SECRETS:-$root/vault/dev-secrets.env}"

"$bao" policy write service-dispatcher "$root/vault/policies/service-dispatcher.hcl" >&2
# the role mints exactly the runner policies that exist (no glob: a name without a policy is refused)
jq --argjson p "$(printf '%s\n' "${policies[@]}" | jq -R . | jq -s .)" '.allowed_policies = $p' "$root/vault/roles/dispatcher-runner.json" \
  | "$bao" write auth/token/roles/dispatcher-runner - >&2
"$bao" token create -policy=service-dispatcher -orphan -period=24h -display-name=dispatcher -field=token

#!/usr/bin/env bash
# Applies vault/ to an OpenBao (or Vault) server: KV v2 mount, runner-<NAME> policies and values
# for the dev secrets, the service-dispatcher policy, the dispatcher-runner token role, and the
# dispatcher's own login: an AppRole `dispatcher` (service-dispatcher only, 1 h tokens renewable
# up to 24 h) whose role_id and secret_id go to $APPROLE_DIR/vault-role-id and vault-secret-id
# (mode 600). No periodic token is minted. Needs VAULT_ADDR and a root-capable VAULT_TOKEN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bao=${BAO_BIN:-bao}
mount=${KV_MOUNT:-kv}
# where secret NAME lives under $mount/data/: the dispatcher's vault.secret_path (DISPATCHER_SECRET_PATH),
# runner/{name} by default, disinto/runner/{name} for disinto's layout
secret_path=${DISPATCHER_SECRET_PATH:-runner/\{name\}}
export BAO_ADDR=$VAULT_ADDR BAO_TOKEN=$VAULT_TOKEN

if ! "$bao" secrets list -format=json | jq -e --arg m "$mount/" 'has($m)' >/dev/null; then
  "$bao" secrets enable -path="$mount" -version=2 kv >&2
fi

case "$secret_path" in *'{name}'*) ;; *) echo "bootstrap-vault: DISPATCHER_SECRET_PATH must hold {name}, e.g. disinto/runner/{name}" >&2; exit 1 ;; esac

# write_runner_secret NAME VALUE: the secret and its one-path policy
write_runner_secret() {
  local path=${secret_path//\{name\}/$1}
  sed -e "s|@PATH@|$path|g" -e "s/@NAME@/$1/g" -e "s/@MOUNT@/$mount/g" "$root/vault/policies/runner.hcl.tmpl" \
    | "$bao" policy write "runner-$(tr "[:upper:]" "[:lower:]" <<<"$1")" - >&2
  "$bao" kv put -mount="$mount" "$path" value="$2" >/dev/null
}

policies=()
while IFS='=' read -r name value; do
  case "$name" in ''|\#*) continue ;; esac
  write_runner_secret "$name" "$value"
  policies+=("runner-$(tr "[:upper:]" "[:lower:]" <<<"$name")")
done < "${DEV_SECRETS:-$root/vault/dev-secrets.env}"

# the sidecar's bot identity (issues.bot_secret, issues.bot_policy): a policy reading that one path,
# which the runner role may mint; the secret itself is the operator's to write (field "token"),
# or BOT_SECRET_VALUE's here
bot_path=${BOT_SECRET_PATH:-$mount/data/disinto/bots/dev}
bot_policy=${BOT_POLICY:-sidecar-bot}
sed -e "s|@PATH@|$bot_path|g" "$root/vault/policies/sidecar-bot.hcl.tmpl" | "$bao" policy write "$bot_policy" - >&2
if [ -n "${BOT_SECRET_VALUE:-}" ]; then "$bao" kv put -mount="$mount" "${bot_path#"$mount"/data/}" token="$BOT_SECRET_VALUE" >/dev/null; fi
policies+=("$bot_policy")

"$bao" policy write service-dispatcher "$root/vault/policies/service-dispatcher.hcl" >&2
# the dispatcher logs in with an AppRole and renews its token itself
if ! "$bao" auth list -format=json | jq -e 'has("approle/")' >/dev/null; then
  "$bao" auth enable approle >&2
fi
"$bao" write auth/approle/role/dispatcher token_policies=service-dispatcher token_no_default_policy=true \
  token_type=service token_ttl="${DISPATCHER_TOKEN_TTL:-1h}" token_max_ttl=24h secret_id_ttl=0 >&2
out=${APPROLE_DIR:?APPROLE_DIR: where to write the dispatcher AppRole role_id and secret_id}
(umask 077
  "$bao" read -field=role_id auth/approle/role/dispatcher/role-id >"$out/vault-role-id"
  "$bao" write -f -field=secret_id auth/approle/role/dispatcher/secret-id >"$out/vault-secret-id")

# the role mints exactly the runner policies that exist (no glob: a name without a policy is refused)
jq --argjson p "$(printf '%s\n' "${policies[@]}" | jq -R . | jq -s .)" '.allowed_policies = $p' "$root/vault/roles/dispatcher-runner.json" \
  | "$bao" write auth/token/roles/dispatcher-runner - >&2

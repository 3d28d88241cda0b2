#!/usr/bin/env bash
# The dev stack's forge: Gitea (API-compatible with Forgejo) on loopback, sqlite, hosting ops
# repos. Its users, made with its CLI: `admin` (site admin: this script and test fixtures only),
# `operator` (owns the ops repos, opens and merges pull requests) and `dispatcher-bot` (a
# collaborator with write access; its token has the least scopes the forge offers for statuses and
# comments: write:repository, write:issue). Tokens go to DEV/forge (mode 600). Repos live under
# DEV/git/forge, so the stack's read-only git daemon serves them to runners; the dispatcher fetches
# and pushes over Gitea's built-in SSH server with its deploy key (a deploy key with write access
# on each repo), the host key pinned in DEV/forge/known_hosts.
#   scripts/forge.sh up DEV HTTP_PORT          start Gitea (first start: migrate, users, tokens)
#   scripts/forge.sh repo DEV NAME HOOK_URL    an ops repo seeded from examples/ops, the deploy
#                                              key, the bot as collaborator, a push webhook to
#                                              HOOK_URL signed with DEV/forge/webhook-secret;
#                                              prints its remotes as JSON
#   scripts/forge.sh down DEV
# Gitea refuses to run as root unless told: this dev stack runs it as root
# (GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true), as it runs the other engines; a deployment runs
# it as its own user.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/engines.env"
cmd=${1:?usage: scripts/forge.sh up DEV HTTP_PORT | repo DEV NAME HOOK_URL | down DEV}
dev=${2:?usage: scripts/forge.sh up DEV HTTP_PORT | repo DEV NAME HOOK_URL | down DEV}
dir="$dev/forge"
gitea_bin="$ENGINE_CACHE/bin/gitea-$GITEA_VERSION"
share="$ENGINE_CACHE/share/gitea-$GITEA_VERSION"
export GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true
OWNER=operator
BOT=dispatcher-bot

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'forge: %s\n' "$*" >&2; exit 1; }
gitea() { "$gitea_bin" --config "$dir/app.ini" --work-path "$dir" "$@"; }
url() { cat "$dir/url"; }
# the admin's API: fixtures only (the dispatcher gets the bot's token)
api() {
  local method=$1 path=$2; shift 2
  curl -fsS -X "$method" -H "Authorization: token $(cat "$dir/admin-token")" -H "Content-Type: application/json" "$(url)/api/v1$path" "$@"
}

write_config() {
  local port=$1
  mkdir -p "$dir/data/ssh" "$dir/log" "$dev/git/forge"
  [ -f "$dir/data/ssh/gitea.ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C dev-forge -f "$dir/data/ssh/gitea.ed25519"
  [ -f "$dir/secret-key" ] || (umask 077; "$gitea_bin" generate secret SECRET_KEY >"$dir/secret-key" 2>>"$dir/cli.log"; "$gitea_bin" generate secret INTERNAL_TOKEN >"$dir/internal-token" 2>>"$dir/cli.log")
  cat >"$dir/app.ini" <<INI
APP_NAME = ops forge (dev stack)
RUN_MODE = prod
WORK_PATH = $dir

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = $port
ROOT_URL = http://127.0.0.1:$port/
DOMAIN = 127.0.0.1
; templates, locales and public assets from the module copy (built without bindata)
STATIC_ROOT_PATH = $share
APP_DATA_PATH = $dir/data
OFFLINE_MODE = true
LFS_START_SERVER = false
START_SSH_SERVER = true
SSH_LISTEN_HOST = 127.0.0.1
SSH_PORT = $((port + 1))
SSH_LISTEN_PORT = $((port + 1))
SSH_DOMAIN = 127.0.0.1
BUILTIN_SSH_SERVER_USER = git
SSH_SERVER_HOST_KEYS = ssh/gitea.ed25519

[database]
DB_TYPE = sqlite3
PATH = $dir/data/gitea.db

[repository]
ROOT = $dev/git/forge
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = $(cat "$dir/secret-key")
INTERNAL_TOKEN = $(cat "$dir/internal-token")

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[webhook]
; the dispatcher's listener is on loopback
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 10

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[mailer]
ENABLED = false

[oauth2]
ENABLED = false

[cron]
ENABLED = false

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = $dir/log
INI
  chmod 600 "$dir/app.ini"
  echo "http://127.0.0.1:$port" >"$dir/url"
  echo "[127.0.0.1]:$((port + 1)) $(cut -d' ' -f1,2 "$dir/data/ssh/gitea.ed25519.pub")" >"$dir/known_hosts"
}

alive() { [ -f "$dir/gitea.pid" ] && kill -0 "$(cat "$dir/gitea.pid")" 2>/dev/null; }

healthy() { curl -fsS "$(url)/api/healthz" >/dev/null 2>&1; }

# user NAME [--admin]: made once by the CLI; the password is random and kept in DEV/forge
make_user() {
  local name=$1; shift
  [ -f "$dir/$name-password" ] && return
  (umask 077; openssl rand -hex 16 >"$dir/$name-password")
  gitea admin user create --username "$name" --email "$name@forge.test" --password "$(cat "$dir/$name-password")" --must-change-password=false "$@" >/dev/null 2>>"$dir/cli.log"
}

# token NAME SCOPES: an access token for the user, written to DEV/forge/NAME-token (mode 600)
make_token() {
  local name=$1 scopes=$2
  [ -s "$dir/$name-token" ] && return
  (umask 077; gitea admin user generate-access-token --username "$name" --token-name "dev-$name" --scopes "$scopes" --raw >"$dir/$name-token" 2>>"$dir/cli.log")
}

up() {
  local port=${1:?usage: scripts/forge.sh up DEV HTTP_PORT}
  [ -x "$gitea_bin" ] || die "$gitea_bin is missing: run scripts/build-engines.sh gitea (cold: about 5+ minutes)"
  mkdir -p "$dir"; chmod 700 "$dir"
  alive && { say "gitea already running (pid $(cat "$dir/gitea.pid"))"; return; }
  local start=$SECONDS
  write_config "$port"
  [ -f "$dir/data/gitea.db" ] || gitea migrate >>"$dir/cli.log" 2>&1 || die "gitea migrate failed (see $dir/cli.log)"
  make_user admin --admin
  make_user "$OWNER"
  make_user "$BOT"
  make_token admin all
  make_token "$OWNER" write:repository,write:issue,write:user
  # statuses (write:repository) and pull-request comments (write:issue): nothing else
  make_token "$BOT" write:repository,write:issue
  [ -f "$dir/webhook-secret" ] || (umask 077; openssl rand -hex 32 >"$dir/webhook-secret")
  healthy && die "something already answers on $(url) (another gitea?): stop it first"
  say "starting gitea $GITEA_VERSION on $(url) (ssh 127.0.0.1:$((port + 1)))"
  # the binary itself, not the gitea() function: a function would run in a subshell whose pid
  # (the one `down` stops) is not Gitea's
  "$gitea_bin" --config "$dir/app.ini" --work-path "$dir" web >>"$dir/gitea.out" 2>&1 &
  echo $! >"$dir/gitea.pid"
  local t=0
  until healthy; do
    t=$((t + 1)); [ "$t" -le 120 ] || die "gitea not healthy after 60s (see $dir/gitea.out, $dir/log)"
    alive || die "gitea exited at start (see $dir/gitea.out)"
    sleep 0.5
  done
  alive || die "gitea exited at start (see $dir/gitea.out)"
  say "gitea up in $((SECONDS - start))s"
}

# repo NAME HOOK_URL: an ops repo of the operator, seeded from examples/ops
repo() {
  local name=${1:?usage: scripts/forge.sh repo DEV NAME HOOK_URL} hook=${2:?usage: scripts/forge.sh repo DEV NAME HOOK_URL}
  local full="$OWNER/$name"
  if ! api GET "/repos/$full" >/dev/null 2>&1; then
    api POST "/admin/users/$OWNER/repos" -d "$(jq -n --arg n "$name" '{name: $n, private: false, auto_init: false, default_branch: "main"}')" >/dev/null
    local tmp; tmp=$(mktemp -d)
    cp -r "$root/examples/ops/." "$tmp/"
    git -C "$tmp" init -q -b main
    git -C "$tmp" add -A
    git -C "$tmp" -c user.name="$OWNER" -c user.email="$OWNER@forge.test" -c commit.gpgsign=false commit -qm "ops repo: examples"
    # the operator's token as an HTTP header from the environment: never in a URL or argv
    GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader \
      GIT_CONFIG_VALUE_0="Authorization: Basic $(printf '%s:%s' "$OWNER" "$(cat "$dir/$OWNER-token")" | base64 -w0)" \
      git -C "$tmp" push -q "$(url)/$full.git" main
    rm -rf "$tmp"
    api POST "/repos/$full/keys" -d "$(jq -n --arg k "$(cat "$dev/ssh/deploy-key.pub")" '{title: "nomad-dispatcher", key: $k, read_only: false}')" >/dev/null
    api PUT "/repos/$full/collaborators/$BOT" -d '{"permission": "write"}' >/dev/null
    api POST "/repos/$full/hooks" -d "$(jq -n --arg u "$hook" --arg s "$(cat "$dir/webhook-secret")" \
      '{type: "gitea", active: true, events: ["push"], branch_filter: "main", config: {url: $u, content_type: "json", secret: $s}}')" >/dev/null
  fi
  local port; port=$(sed -n 's/^SSH_PORT = //p' "$dir/app.ini")
  jq -n --arg full "$full" --arg url "$(url)" --arg ssh "ssh://git@127.0.0.1:$port/$full.git" --arg path "$dev/git/forge/$full.git" \
    '{repo: $full, url: $url, remote: $ssh, path: $path}'
}

down() {
  if alive; then
    local pid; pid=$(cat "$dir/gitea.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "stopped gitea (pid $pid)"
  fi
  rm -f "$dir/gitea.pid"
}

case "$cmd" in
  up) up "${3:-}" ;;
  repo) repo "${3:-}" "${4:-}" ;;
  down) down ;;
  *) die "usage: scripts/forge.sh up DEV HTTP_PORT | repo DEV NAME HOOK_URL | down DEV" ;;
esac

#!/usr/bin/env bash
# The embedded dev stack, secured as production would be: nomad agent -dev with ACLs on (the
# anonymous policy grants nothing), runner/sidecar jobs in their own `dispatch` namespace, run by
# the exec driver (minimal chroot, user nobody, no capabilities, read-only host volumes), the
# dispatcher on its own least-privilege Nomad token; bao server (file storage under .dev/, so it
# survives a restart) bootstrapped from vault/; a bare ops repo seeded from examples/ops, which the
# dispatcher pushes to by path and runners fetch read-only from a loopback git daemon.
#   scripts/stack.sh up     build engines if needed, start, bootstrap; writes .dev/env
#   scripts/stack.sh down   stop exactly the processes `up` started (by pid), remove state
#   scripts/stack.sh register  (re-)register jobspecs/ on the running stack
#   scripts/stack.sh restart bao  restart OpenBao on its persisted state
#   scripts/stack.sh forge up|down   add Gitea (scripts/forge.sh) to the running stack, or stop it
#   scripts/stack.sh status
# DEV_FORGE=1 makes `up` start Gitea too (building it first: cold, about 5+ minutes).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/engines.env"
dev="$root/.dev"
nomad="$ENGINE_CACHE/bin/nomad-$NOMAD_VERSION"
bao="$ENGINE_CACHE/bin/bao-$BAO_VERSION"
NOMAD_PORT=${DEV_NOMAD_PORT:-4646}
BAO_PORT=${DEV_BAO_PORT:-8200}
GIT_PORT=$((NOMAD_PORT + 3))
GIT_DAEMON_URL_BASE="git://127.0.0.1:$GIT_PORT"
SSH_PORT=$((NOMAD_PORT + 4))
# Gitea: HTTP on +20, its built-in SSH server on +21; +22 is where its ops repo's webhook points
FORGE_PORT=$((NOMAD_PORT + 20))
FORGE_HOOK_URL="http://127.0.0.1:$((NOMAD_PORT + 22))/hooks/push"
# exec isolates formulas; raw_exec (no isolation) stays selectable for trusted formulas
DRIVER=${DEV_DRIVER:-exec}
export NOMAD_ADDR="http://127.0.0.1:$NOMAD_PORT" VAULT_ADDR="http://127.0.0.1:$BAO_PORT"
unset NOMAD_TOKEN NOMAD_NAMESPACE

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

# wait_for WHAT SECONDS CMD...: poll until CMD succeeds
wait_for() {
  local what=$1 limit=$2; shift 2
  local t=0
  until "$@" >/dev/null 2>&1; do
    t=$((t + 1)); [ "$t" -le "$((limit * 2))" ] || die "$what not healthy after ${limit}s (see $dev/*.log)"
    sleep 0.5
  done
}

alive() { [ -f "$dev/$1.pid" ] && kill -0 "$(cat "$dev/$1.pid")" 2>/dev/null; }

# the management token: for this script and test setup only, never handed to the dispatcher
mgmt() { cat "$dev/nomad-management-token"; }
nomad_api() { curl -fsS -H "X-Nomad-Token: $(mgmt)" "$@"; }
nomad_leader() { curl -fsS "$NOMAD_ADDR/v1/status/leader" | grep -q :; }
nomad_ready() { nomad_api "$NOMAD_ADDR/v1/nodes" | jq -e --arg d "$DRIVER" 'map(select(.Status=="ready" and .Drivers[$d].Healthy)) | length > 0'; }

# the mounts (ssh, gpg, sops, and the cutover plan's sidecar set: project-repos, ops-repo,
# agent-data) as read-only host volumes, from .dev/volumes: the first client and the docker client
# offer the same ones
DEV_MOUNTS=(ssh gpg sops project-repos ops-repo agent-data)
mount_volumes() {
  local alias
  for alias in "${DEV_MOUNTS[@]}"; do
    printf '  host_volume "%s" {\n    path      = "%s"\n    read_only = true\n  }\n' "$alias" "$dev/volumes/$alias"
  done
}

# short GC so tests see the dispatcher outlive Nomad's memory of a job (every server's)
SERVER_GC='  job_gc_interval   = "1m"
  job_gc_threshold  = "10m"
  eval_gc_threshold = "10m"'

write_nomad_config() {
  local alias
  for alias in "${DEV_MOUNTS[@]}"; do mkdir -p "$dev/volumes/$alias"; done
  mkdir -p "$dev/runner" "$dev/nomad-data"
  cat > "$dev/nomad.hcl" <<HCL
data_dir  = "$dev/nomad-data"
bind_addr = "127.0.0.1"
acl {
  enabled = true
}
ports {
  http = $NOMAD_PORT
  rpc  = $((NOMAD_PORT + 1))
  serf = $((NOMAD_PORT + 2))
}
server {
$SERVER_GC
}
client {
  # several dev stacks (worktrees, other ports) may run side by side: one cgroup tree each
  cgroup_parent = "/nomad-dev-$NOMAD_PORT"
  # room for the bench's 5,000 in-flight mock_driver allocations (10 MB, 1 MHz reserved each):
  # a dev client's reservations only, nothing is allocated
  memory_total_mb   = ${DEV_NOMAD_MEMORY_MB:-65536}
  cpu_total_compute = ${DEV_NOMAD_CPU_MHZ:-20000}
  # what an exec task's root holds: scripts/chroot.sh (node, git, a shell, coreutils, CA certs)
  chroot_env {
    "$dev/chroot" = "/"
  }
  # the runner bundle, mounted read-only into every runner/sidecar task
  host_volume "dispatcher-runner" {
    path      = "$dev/runner"
    read_only = true
  }
$(mount_volumes)
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
HCL
}

# a second client agent in node pool "big" (runner class big): its own data dir, ports and cgroup
# tree; it offers only the ssh mount, from a directory of its own, so class routing and
# "a mount offered on one node only" are tested on two real nodes
BIG_POOL=big
# the head of an extra client agent's config, NAME POOL FIRST_PORT [SERVERS]: its own data dir,
# ports and cgroup tree; SERVERS (HCL list items) defaults to the dev agent's RPC; the caller adds
# its volumes and plugins and closes the client block
client_agent_head() {
  local name=$1 pool=$2 port=$3 servers=${4:-"\"127.0.0.1:$((NOMAD_PORT + 1))\""}
  agent_head "$dev/nomad-$name-data" "dev-$pool" "$port"
  cat <<HCL
client {
  enabled       = true
  servers       = [$servers]
  node_pool     = "$pool"
  cgroup_parent = "/nomad-dev-$NOMAD_PORT-$pool"
HCL
}

# what every agent but the -dev one starts with, DATA_DIR NAME FIRST_PORT: its data dir and name,
# ACLs on, its three loopback ports (http, rpc, serf) and loopback advertised
agent_head() {
  local data=$1 name=$2 port=$3
  cat <<HCL
data_dir  = "$data"
bind_addr = "127.0.0.1"
name      = "$name"
acl {
  enabled = true
}
ports {
  http = $port
  rpc  = $((port + 1))
  serf = $((port + 2))
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
HCL
}

# start_client_agent NAME POOL WHAT READY: its node pool, then the agent (clean environment)
start_client_agent() {
  local name=$1 pool=$2 what=$3 ready=$4
  # the built-in pool "default" exists and cannot be changed
  if [ "$pool" != default ]; then
    printf 'node_pool "%s" {\n  description = "runner class %s (dev stack: %s)"\n}\n' "$pool" "$pool" "$what" >"$dev/pool-$pool.hcl"
    NOMAD_TOKEN=$(mgmt) "$nomad" node pool apply "$dev/pool-$pool.hcl" >/dev/null
  fi
  say "starting a nomad client in node pool $pool ($what)"
  "${AGENT_ENV[@]}" "$nomad" agent -config "$dev/nomad-$name.hcl" >"$dev/nomad-$name.log" 2>&1 &
  echo $! >"$dev/nomad-$name.pid"
  wait_for "nomad client ($pool)" 60 "$ready"
}

write_nomad_big_config() {
  mkdir -p "$dev/volumes-big/ssh" "$dev/nomad-big-data"
  echo "ssh volume of the $BIG_POOL node" >"$dev/volumes-big/ssh/where"
  { client_agent_head big "$BIG_POOL" $((NOMAD_PORT + 10))
    cat <<HCL
  chroot_env {
    "$dev/chroot" = "/"
  }
  host_volume "dispatcher-runner" {
    path      = "$dev/runner"
    read_only = true
  }
  host_volume "ssh" {
    path      = "$dev/volumes-big/ssh"
    read_only = true
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
HCL
  } > "$dev/nomad-big.hcl"
}

nomad_big_ready() { nomad_api "$NOMAD_ADDR/v1/nodes" | jq -e --arg d "$DRIVER" --arg p "$BIG_POOL" 'map(select(.NodePool==$p and .Status=="ready" and .Drivers[$d].Healthy)) | length > 0'; }

# The exec driver hands the agent's environment (minus a short denylist) to every task, and a
# formula runs as the same user as its runner: it reads it in /proc/1/environ. So the agents start
# with an empty environment plus what they need: whatever the shell running `make up` exported
# (a cloud credential, a token, DEV_*) never reaches a task.
# (an array, not a function: `cmd &` of a simple command execs it in the forked child, so $! is the agent's pid)
AGENT_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)

start_nomad_big() {
  alive nomad-big && return
  write_nomad_big_config
  start_client_agent big "$BIG_POOL" "second client" nomad_big_ready
}

# a third client agent in node pool "docker" (runner class docker): the runner jobspec's docker
# variant (no-new-privileges, a pids limit, a read-only root, no capabilities, user nobody) on a
# real Docker engine (scripts/docker-engine.sh: the stack's own dockerd, an image built locally
# from the task chroot); it offers the same mounts as the first client, from the same directories
DOCKER_POOL=docker
# the runner classes the stack offers (DISPATCHER_CLASSES in .dev/env)
CLASSES=$BIG_POOL,$DOCKER_POOL
write_nomad_docker_config() {
  mkdir -p "$dev/nomad-docker-data"
  { client_agent_head docker "$DOCKER_POOL" $((NOMAD_PORT + 15))
    cat <<HCL
$(mount_volumes)
}
plugin "docker" {
  config {
    endpoint = "unix://$dev/docker/docker.sock"
    # images are built here and never pulled; nothing else is pruned behind the stack's back
    gc {
      image = false
    }
    # what a task may keep: nothing (the jobspec drops all), so nothing needs allowing
    allow_privileged = false
    volumes {
      enabled = false
    }
  }
}
HCL
  } > "$dev/nomad-docker.hcl"
}

nomad_docker_ready() { nomad_api "$NOMAD_ADDR/v1/nodes" | jq -e --arg p "$DOCKER_POOL" 'map(select(.NodePool==$p and .Status=="ready" and .Drivers.docker.Healthy)) | length > 0'; }

start_nomad_docker() {
  alive nomad-docker && return
  "$root/scripts/docker-engine.sh" up "$dev"
  write_nomad_docker_config
  start_client_agent docker "$DOCKER_POOL" "the docker variant" nomad_docker_ready
}

start_nomad() {
  alive nomad && { say "nomad already running (pid $(cat "$dev/nomad.pid"))"; return; }
  write_nomad_config
  say "starting nomad agent -dev on $NOMAD_ADDR"
  "${AGENT_ENV[@]}" "$nomad" agent -dev -config "$dev/nomad.hcl" >"$dev/nomad.log" 2>&1 &
  echo $! >"$dev/nomad.pid"
  wait_for "nomad leader" 60 nomad_leader
  (umask 077; "$nomad" acl bootstrap -json | jq -r .SecretID >"$dev/nomad-management-token")
  wait_for "nomad" 60 nomad_ready
  secure_nomad
}

# namespaces, the shipped policies (acl/), and one token per role; -dev keeps ACL state in memory,
# so this runs on every start
secure_nomad() {
  local token
  export NOMAD_TOKEN; NOMAD_TOKEN=$(mgmt)
  "$nomad" namespace apply -description "runner and sidecar parents and their dispatched children" dispatch >/dev/null
  "$nomad" namespace apply -description "the dispatcher's own service job" dispatcher >/dev/null
  "$nomad" acl policy apply -description "nomad-dispatcher: dispatch and follow runner jobs, its ledger" dispatcher "$root/acl/dispatcher.hcl" >/dev/null
  "$nomad" acl policy apply -description "operators: list dispatched jobs, read their logs and the ledger" operator-readonly "$root/acl/operator-readonly.hcl" >/dev/null
  "$nomad" acl policy apply -description "optional: purge finished children, re-evaluate unevaluated ones (submit-job)" dispatcher-janitor "$root/acl/dispatcher-janitor.hcl" >/dev/null
  (umask 077
    # for the purge and watchdog tests only: the dev dispatcher runs without submit-job
    "$nomad" acl token create -name dispatcher-janitor -type client -policy dispatcher -policy dispatcher-janitor -json | jq -r .SecretID >"$dev/nomad-janitor-token"
    "$nomad" acl token create -name dispatcher -type client -policy dispatcher -json | jq -r .SecretID >"$dev/nomad-dispatcher-token"
    "$nomad" acl token create -name operator -type client -policy operator-readonly -json | jq -r .SecretID >"$dev/nomad-operator-token")
  unset NOMAD_TOKEN
  say "nomad ACLs on: namespaces dispatch, dispatcher; policies dispatcher, operator-readonly, dispatcher-janitor"
}

# runners fetch the action's commit from here: git daemon serves fetches only (no receive-pack)
start_git_daemon() {
  alive git-daemon && return
  mkdir -p "$dev/git"
  git daemon --reuseaddr --export-all --base-path="$dev/git" --listen=127.0.0.1 --port="$GIT_PORT" \
    --pid-file="$dev/git-daemon.pid" "$dev/git" >>"$dev/git-daemon.log" 2>&1 &
  wait_for "git daemon" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$GIT_PORT"
  say "git daemon (read-only) on git://127.0.0.1:$GIT_PORT/"
}

# the runner bundle, root-owned and read-only, where the dispatcher-runner host volume points
install_runner() {
  [ -f "$root/dist/runner/runner.mjs" ] && [ -d "$root/dist/runner/chunks" ] || die "dist/runner/runner.mjs or dist/runner/chunks is missing: run npm run build"
  # its chunks first (named by their content: the runner.mjs below imports exactly these); the
  # Vault side (node-vault, axios) is one of them, loaded only by a run with secrets
  rm -rf "$dev/runner/chunks"
  install -d -m 0755 "$dev/runner/chunks"
  install -m 0444 "$root"/dist/runner/chunks/*.mjs "$dev/runner/chunks/"
  install -m 0444 "$root/dist/runner/runner.mjs" "$dev/runner/runner.mjs"
  # the runner's own node, executable but not readable by the task user: Linux makes a process
  # that execs a binary it cannot read non-dumpable, so its /proc/1/mem, /proc/1/environ and
  # /proc/1/fd are closed to the formula (same uid, no Yama here): the verdict nonce and the
  # token stay in the runner. Started through env (-var sealed_node=true): Nomad adds r-x for
  # everyone to a task's command binary.
  [ "$(stat -c %a "$dev/runner/node" 2>/dev/null)" = 711 ] || install -m 0711 "$(readlink -f "$(command -v node)")" "$dev/runner/node"
}

bao_listening() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$VAULT_ADDR/v1/sys/health")" != 000 ]; }

# file storage, not -dev: secrets, policies and tokens survive a restart; the one unseal key and
# the root token stay in .dev (git-ignored, mode 600) and are used by this script only
start_bao() {
  alive bao && { say "bao already running (pid $(cat "$dev/bao.pid"))"; return; }
  mkdir -p "$dev/bao-data"
  cat >"$dev/bao.hcl" <<HCL
storage "file" {
  path = "$dev/bao-data"
}
listener "tcp" {
  address     = "127.0.0.1:$BAO_PORT"
  tls_disable = true
}
api_addr      = "$VAULT_ADDR"
disable_mlock = true
HCL
  say "starting bao server on $VAULT_ADDR"
  "$bao" server -config "$dev/bao.hcl" >>"$dev/bao.log" 2>&1 &
  echo $! >"$dev/bao.pid"
  wait_for "bao listener" 60 bao_listening
  if [ ! -f "$dev/unseal-key" ]; then
    local init; init=$(BAO_ADDR=$VAULT_ADDR "$bao" operator init -key-shares=1 -key-threshold=1 -format=json)
    (umask 077; jq -r '.unseal_keys_b64[0]' <<<"$init" >"$dev/unseal-key"; jq -r .root_token <<<"$init" >"$dev/root-token")
  fi
  BAO_ADDR=$VAULT_ADDR "$bao" operator unseal "$(cat "$dev/unseal-key")" >/dev/null
  wait_for "bao" 60 curl -fsS "$VAULT_ADDR/v1/sys/health"
}

# restart bao: stop it and start it on the same state (for the fault suite). Nomad stays a -dev
# agent: restarted on a persisted data dir, Nomad 1.6's raw_exec could not re-attach to its
# executors here and left their allocations "running" for good.
restart() {
  [ "${1:-}" = bao ] || die "usage: scripts/stack.sh restart bao"
  stop_pid bao
  start_bao
}

register_jobs() {
  # a var file, not -var flags: a class's own var file (below) overrides it, and a -var flag
  # would override the class's
  mkdir -p "$dev/class-vars"
  echo "driver = \"$DRIVER\"" >"$dev/jobs.vars.hcl"
  # raw_exec: no chroot, no volumes; the task reads the bundle and the mounts on the host
  [ "$DRIVER" = raw_exec ] && printf 'node_bin = "%s"\nrunner_dir = "%s"\nmount_root = "%s"\n' "$(command -v node)" "$dev/runner" "$dev/volumes" >>"$dev/jobs.vars.hcl"
  # exec: the runner's own node, sealed (install_runner)
  [ "$DRIVER" = exec ] && printf 'node_bin = "/opt/dispatcher/node"\nsealed_node = true\n' >>"$dev/jobs.vars.hcl"
  local vars=(-var-file "$dev/jobs.vars.hcl")
  install_runner
  # the docker class's parents: the docker variant, from the image of this very bundle
  local image; image=$("$root/scripts/docker-engine.sh" image "$dev")
  cat >"$dev/class-vars/$DOCKER_POOL.vars.hcl" <<VARS
driver       = "docker"
image        = "$image"
network_mode = "host"
VARS
  NOMAD_TOKEN=$(mgmt) DISPATCHER_NOMAD_TOKEN=$(cat "$dev/nomad-dispatcher-token") NOMAD_NAMESPACE=dispatch NOMAD_BIN=$nomad DISPATCHER_CLASSES=$CLASSES \
    DISPATCHER_CLASS_VARS="$dev/class-vars" "$root/scripts/register-jobs.sh" "$dev/jobs.pin.json" "${vars[@]}"
}

seed_ops_repo() {
  [ -d "$dev/git/ops.git" ] && return
  local tmp; tmp=$(mktemp -d)
  git init -q --bare -b main "$dev/git/ops.git"
  cp -r "$root/examples/ops/." "$tmp/"
  git -C "$tmp" init -q -b main
  git -C "$tmp" add -A
  git -C "$tmp" -c user.name=operator -c user.email=operator@example.com commit -qm "ops repo: examples"
  git -C "$tmp" push -q "$dev/git/ops.git" main
  rm -rf "$tmp"
  say "seeded bare ops repo $dev/git/ops.git"
}

up() {
  mkdir -p "$dev"
  "$root/scripts/build-engines.sh" >&2
  [ -f "$root/dist/runner/runner.mjs" ] && [ -d "$root/dist/runner/chunks" ] || (cd "$root" && npm run -s build)
  [ -d "$dev/chroot" ] || { say "building the task chroot"; "$root/scripts/chroot.sh" "$dev/chroot"; }
  start_git_daemon
  "$root/scripts/ssh-remote.sh" up "$dev" "$SSH_PORT"
  say "ssh remote (deploy key only, git-shell) on ssh://root@127.0.0.1:$SSH_PORT"
  start_nomad
  start_nomad_big
  start_nomad_docker
  start_bao
  VAULT_TOKEN=$(cat "$dev/root-token") BAO_BIN="$bao" APPROLE_DIR="$dev" "$root/scripts/bootstrap-vault.sh"
  register_jobs
  seed_ops_repo
  cat >"$dev/env" <<ENV
NOMAD_ADDR=$NOMAD_ADDR
NOMAD_TOKEN=$(cat "$dev/nomad-dispatcher-token")
NOMAD_NAMESPACE=dispatch
VAULT_ADDR=$VAULT_ADDR
DISPATCHER_VAULT_ROLE_ID_FILE=$dev/vault-role-id
DISPATCHER_VAULT_SECRET_ID_FILE=$dev/vault-secret-id
OPS_REMOTE=$dev/git/ops.git
OPS_SSH_REMOTE=ssh://root@127.0.0.1:$SSH_PORT$dev/git/ops.git
SSH_REMOTE_BASE=ssh://root@127.0.0.1:$SSH_PORT
DISPATCHER_GIT_SSH_KEY=$dev/ssh/deploy-key
DISPATCHER_GIT_KNOWN_HOSTS=$dev/ssh/known_hosts
DISPATCHER_RUNNER_REMOTE=git://127.0.0.1:$GIT_PORT/ops.git
DISPATCHER_JOB_PINS=$dev/jobs.pin.json
DISPATCHER_CLASSES=$CLASSES
GIT_DAEMON_URL=git://127.0.0.1:$GIT_PORT
GIT_SERVED_DIR=$dev/git
NOMAD_BIN=$nomad
BAO_BIN=$bao
ENV
  chmod 600 "$dev/env"
  # a Gitea already running keeps its settings in the new .dev/env
  if [ "${DEV_FORGE:-0}" = 1 ] || alive forge/gitea; then forge_up; fi
  say "dev stack up: nomad $NOMAD_ADDR (ACLs on, driver $DRIVER), bao $VAULT_ADDR; the dispatcher's environment in .dev/env"
}

stop_pid() {
  local name=$1 pid
  [ -f "$dev/$name.pid" ] || return 0
  pid=$(cat "$dev/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "stopped $name (pid $pid)"
  fi
  rm -f "$dev/$name.pid"
}

# Gitea with its ops repo (operator/ops, webhook to FORGE_HOOK_URL); its settings join .dev/env
forge_up() {
  [ -f "$dev/env" ] || die "the stack is not up: scripts/stack.sh up first (or DEV_FORGE=1 scripts/stack.sh up)"
  "$root/scripts/build-engines.sh" gitea >&2
  "$root/scripts/forge.sh" up "$dev" "$FORGE_PORT"
  local ops; ops=$("$root/scripts/forge.sh" repo "$dev" ops "$FORGE_HOOK_URL")
  local env; env=$(grep -v '^FORGE_' "$dev/env")
  cat >"$dev/env" <<ENV
$env
FORGE_URL=$(jq -r .url <<<"$ops")
FORGE_REPO=$(jq -r .repo <<<"$ops")
FORGE_OPS_REMOTE=$(jq -r .remote <<<"$ops")
FORGE_RUNNER_REMOTE=$GIT_DAEMON_URL_BASE/forge/$(jq -r .repo <<<"$ops").git
FORGE_KNOWN_HOSTS=$dev/forge/known_hosts
FORGE_BOT_TOKEN_FILE=$dev/forge/dispatcher-bot-token
FORGE_WEBHOOK_SECRET_FILE=$dev/forge/webhook-secret
FORGE_HOOK_URL=$FORGE_HOOK_URL
ENV
  chmod 600 "$dev/env"
  say "forge: gitea $(jq -r .url <<<"$ops"), ops repo $(jq -r .repo <<<"$ops") (ssh $(jq -r .remote <<<"$ops")), push webhook to $FORGE_HOOK_URL"
}

forge() {
  case "${1:-}" in
    up) forge_up ;;
    down) "$root/scripts/forge.sh" down "$dev" ;;
    *) die "usage: scripts/stack.sh forge up|down" ;;
  esac
}

down() {
  # the fault suite's three-server cluster (scripts/cluster.sh) keeps its state under .dev too
  if [ -d "$dev/cluster" ]; then "$root/scripts/cluster.sh" down; fi
  "$root/scripts/forge.sh" down "$dev"
  stop_pid nomad-docker
  stop_pid nomad-big
  stop_pid nomad
  "$root/scripts/docker-engine.sh" down "$dev"
  stop_pid bao
  stop_pid git-daemon
  "$root/scripts/ssh-remote.sh" down "$dev"
  # tasks are children of nomad's executors; reap any left under our data dir
  pkill -f "$dev/nomad-data" 2>/dev/null || true
  pkill -f "$dev/nomad-big-data" 2>/dev/null || true
  pkill -f "$dev/nomad-docker-data" 2>/dev/null || true
  # exec tasks' volume mounts live under the data dirs until their executor ends
  grep -oE " $dev/nomad(-big|-docker)?-data[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$dev"
}

status() {
  local s
  for s in nomad nomad-big nomad-docker bao git-daemon forge/gitea; do
    if alive "$s"; then echo "${s#forge/}: running (pid $(cat "$dev/$s.pid"))"; else echo "${s#forge/}: stopped"; fi
  done
}

# sourced (scripts/cluster.sh): the functions only
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-}" in
  up) up ;;
  down) down ;;
  register) register_jobs ;;
  restart) restart "${2:-}" ;;
  forge) forge "${2:-}" ;;
  status) status ;;
  *) die "usage: scripts/stack.sh up|down|register|restart bao|forge up|forge down|status" ;;
esac

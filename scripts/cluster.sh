#!/usr/bin/env bash
# A three-server Nomad cluster beside the dev stack, for the fault suite: three server agents
# (raft, one leader elected among them, ACLs on and bootstrapped, the dev stack's namespaces,
# policies and tokens) and one exec client with the dev stack's chroot, runner bundle and mounts;
# the runner/sidecar parents registered and pinned by scripts/register-jobs.sh. OpenBao, the git
# daemon and the runner bundle are the dev stack's (`make up` first). State in .dev/cluster; ports
# NOMAD_PORT+25 … +36 (server i: http +25+3i, rpc +26+3i, serf +27+3i; the client +34..+36).
#   scripts/cluster.sh up           start (or keep) the cluster; writes .dev/cluster/env
#   scripts/cluster.sh down         stop its agents (by pid) and remove its state
#   scripts/cluster.sh leader       the index (0-2) of the current leader
#   scripts/cluster.sh kill I       kill -9 server I
#   scripts/cluster.sh start I      start server I again on its data dir
#   scripts/cluster.sh restart-client   stop the client agent (SIGTERM: its tasks keep running) and start it on its data dir
#   scripts/cluster.sh stop-client | start-client   the same in two steps (a client down past the heartbeat grace)
#   scripts/cluster.sh status
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# stack.sh's settings (ports, engines, AGENT_ENV) and functions (client_agent_head,
# agent_head, start_client_agent, mount_volumes, secure_nomad, wait_for, alive, stop_pid, mgmt)
# shellcheck source=stack.sh
. "$root/scripts/stack.sh"
base=$dev
# the shared functions read and write under $dev: here the cluster's own state (its tokens, pins)
dev="$base/cluster"
FIRST=$((NOMAD_PORT + 25))
http_port() { echo $((FIRST + 3 * $1)); }
CLIENT_PORT=$((FIRST + 9))
SERVERS=(0 1 2)
export NOMAD_ADDR="http://127.0.0.1:$(http_port 0)"
unset NOMAD_TOKEN

rpc_list() { local i; for i in "${SERVERS[@]}"; do printf '"127.0.0.1:%s"%s' $(($(http_port "$i") + 1)) "$([ "$i" = 2 ] || echo ', ')"; done; }
serf_list() { local i; for i in "${SERVERS[@]}"; do printf '"127.0.0.1:%s"%s' $(($(http_port "$i") + 2)) "$([ "$i" = 2 ] || echo ', ')"; done; }

write_server_config() {
  local i=$1 port; port=$(http_port "$1")
  mkdir -p "$dev/server-$i-data"
  { agent_head "$dev/server-$i-data" "cluster-server-$i" "$port"
    cat <<HCL
server {
  enabled          = true
  bootstrap_expect = 3
  server_join {
    retry_join     = [$(serf_list)]
    retry_interval = "1s"
  }
$SERVER_GC
}
HCL
  } >"$dev/server-$i.hcl"
}

start_server() {
  local i=$1
  alive "server-$i" && return
  [ -f "$dev/server-$i.hcl" ] || write_server_config "$i"
  say "starting nomad server $i on http://127.0.0.1:$(http_port "$i")"
  "${AGENT_ENV[@]}" "$nomad" agent -config "$dev/server-$i.hcl" >>"$dev/server-$i.log" 2>&1 &
  echo $! >"$dev/server-$i.pid"
}

# a server's view of the leader: "127.0.0.1:<rpc>"; any live server answers
leader_of() { curl -fsS --max-time 2 "http://127.0.0.1:$(http_port "$1")/v1/status/leader" | tr -d '"'; }
leader_index() {
  local i l
  for i in "${SERVERS[@]}"; do
    alive "server-$i" || continue
    l=$(leader_of "$i" 2>/dev/null) || continue
    [ -n "$l" ] || continue
    for j in "${SERVERS[@]}"; do [ "$l" = "127.0.0.1:$(($(http_port "$j") + 1))" ] && { echo "$j"; return 0; }; done
  done
  return 1
}

write_client_config() {
  mkdir -p "$dev/nomad-client-data"
  # the dev stack's mounts, chroot and runner bundle (mount_volumes reads $dev/volumes)
  ln -sfn "$base/volumes" "$dev/volumes"
  { client_agent_head client default "$CLIENT_PORT" "$(rpc_list)"
    cat <<HCL
  chroot_env {
    "$base/chroot" = "/"
  }
  host_volume "dispatcher-runner" {
    path      = "$base/runner"
    read_only = true
  }
$(mount_volumes)
}
HCL
  } >"$dev/nomad-client.hcl"
}

nomad_cluster_ready() { nomad_api "$NOMAD_ADDR/v1/nodes" | jq -e 'map(select(.Status=="ready" and .Drivers.exec.Healthy)) | length > 0'; }

register_cluster_jobs() {
  [ -f "$base/jobs.vars.hcl" ] || die "the dev stack registered no jobs: make up first"
  NOMAD_TOKEN=$(mgmt) DISPATCHER_NOMAD_TOKEN=$(cat "$dev/nomad-dispatcher-token") NOMAD_NAMESPACE=dispatch NOMAD_BIN=$nomad DISPATCHER_CLASSES="" \
    "$root/scripts/register-jobs.sh" "$dev/jobs.pin.json" -var-file "$base/jobs.vars.hcl"
}

up() {
  [ -f "$base/env" ] || die "the dev stack is not up: make up first (the cluster uses its OpenBao, git daemon and runner bundle)"
  mkdir -p "$dev"
  local i
  for i in "${SERVERS[@]}"; do start_server "$i"; done
  wait_for "a cluster leader" 90 leader_index
  if [ ! -s "$dev/nomad-management-token" ]; then
    (umask 077; "$nomad" acl bootstrap -json | jq -r .SecretID >"$dev/nomad-management-token")
    secure_nomad
  fi
  if ! alive nomad-client; then
    write_client_config
    start_client_agent client default "the cluster's exec client" nomad_cluster_ready
  fi
  [ -f "$dev/jobs.pin.json" ] || register_cluster_jobs
  cat >"$dev/env" <<ENV
NOMAD_ADDR=$NOMAD_ADDR
NOMAD_ADDRS=$(for i in "${SERVERS[@]}"; do printf 'http://127.0.0.1:%s%s' "$(http_port "$i")" "$([ "$i" = 2 ] || echo ,)"; done)
NOMAD_CLIENT_ADDR=http://127.0.0.1:$CLIENT_PORT
NOMAD_TOKEN=$(cat "$dev/nomad-dispatcher-token")
DISPATCHER_JOB_PINS=$dev/jobs.pin.json
ENV
  chmod 600 "$dev/env"
  say "cluster up: servers $(for i in "${SERVERS[@]}"; do printf '%s ' "$(http_port "$i")"; done)(leader: server $(leader_index)), exec client on $CLIENT_PORT; its settings in $dev/env"
}

down() {
  [ -d "$dev" ] || return 0
  stop_pid nomad-client
  local i pid
  for i in "${SERVERS[@]}"; do stop_pid "server-$i"; done
  # exec tasks outlive their client agent: their executors run from the cluster client's data dir
  for pid in $(pgrep -f -- "$dev/nomad-client-data" || true); do kill "$pid" 2>/dev/null || true; done
  grep -oE " $dev/nomad-client-data[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$dev"
}

kill_server() {
  local i=${1:?usage: scripts/cluster.sh kill 0|1|2}
  alive "server-$i" || die "server $i is not running"
  kill -KILL "$(cat "$dev/server-$i.pid")"
  while alive "server-$i"; do sleep 0.1; done
  rm -f "$dev/server-$i.pid"
  say "killed server $i (kill -9)"
}

start_client() { start_client_agent client default "the cluster's exec client" nomad_cluster_ready; }

restart_client() {
  stop_pid nomad-client
  start_client
}

status() {
  local s
  for s in server-0 server-1 server-2 nomad-client; do
    if alive "$s"; then echo "$s: running (pid $(cat "$dev/$s.pid"))"; else echo "$s: stopped"; fi
  done
  leader_index >/dev/null && echo "leader: server $(leader_index)" || echo "leader: none"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  leader) leader_index ;;
  kill) kill_server "${2:-}" ;;
  start) start_server "${2:?usage: scripts/cluster.sh start 0|1|2}"; wait_for "a cluster leader" 60 leader_index ;;
  restart-client) restart_client ;;
  stop-client) stop_pid nomad-client ;;
  start-client) start_client ;;
  status) status ;;
  *) die "usage: scripts/cluster.sh up|down|leader|kill I|start I|restart-client|stop-client|start-client|status" ;;
esac

#!/usr/bin/env bash
# The dev stack's Docker engine, for the runner jobspec's docker variant (runner class `docker`):
# Debian's docker.io (installed when missing), a dockerd of the stack's own on a private socket,
# data root and exec root under .dev/docker (it never touches /var/lib/docker or a system
# dockerd), no bridge and no iptables rules: tasks use the host's network, as exec tasks do here.
# The runner image is built locally, never pulled: the exec chroot (scripts/chroot.sh) plus the
# runner bundle and its sealed node at /opt/dispatcher, imported with `docker import` and tagged by the bundle's hash.
#   scripts/docker-engine.sh up DEV_DIR      start dockerd (installs docker.io if missing)
#   scripts/docker-engine.sh image DEV_DIR   (re)build the runner image; prints its tag
#   scripts/docker-engine.sh down DEV_DIR    stop it, unmount what it mounted
set -euo pipefail
cmd=${1:?usage: scripts/docker-engine.sh up|image|down DEV_DIR}
dev=${2:?usage: scripts/docker-engine.sh up|image|down DEV_DIR}
state="$dev/docker"
sock="$state/docker.sock"
export DOCKER_HOST="unix://$sock"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'docker-engine: %s\n' "$*" >&2; exit 1; }

# docker's client talks to our socket only; the image's own /usr/local/bin/docker may be a
# client of another version, and any client speaks this API
docker_cli() { command -v docker >/dev/null || die "no docker client on PATH (apt-get install -y docker.io)"; docker "$@"; }

install_engine() {
  command -v dockerd >/dev/null && command -v containerd >/dev/null && command -v runc >/dev/null && return
  say "installing Debian's docker.io (dockerd, containerd, runc)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || die "apt-get install docker.io failed"
  # the package enables a system dockerd on /var/run/docker.sock; the stack never uses it
}

up() {
  install_engine
  mkdir -p "$state/data" "$state/exec"
  if [ -f "$state/dockerd.pid" ] && kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null; then return; fi
  say "starting dockerd on $sock"
  # no bridge and no iptables: nothing of the host's firewall or network changes
  dockerd --data-root "$state/data" --exec-root "$state/exec" -H "$DOCKER_HOST" \
    --pidfile "$state/dockerd.pid" --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
    --userland-proxy=false --log-level=warn >>"$dev/dockerd.log" 2>&1 &
  local t=0
  until docker_cli version >/dev/null 2>&1; do
    t=$((t + 1)); [ "$t" -le 120 ] || die "dockerd not answering on $sock after 60s (see $dev/dockerd.log)"
    sleep 0.5
  done
}

# the image: the chroot exec tasks get, plus the bundle where the jobspec runs it; imported,
# not built from a Dockerfile (no base image to pull), tagged by the bundle's hash so a stale
# tag cannot name another bundle
image() {
  local chroot="$dev/chroot" bundle="$dev/runner/runner.mjs" stage id tag
  [ -d "$chroot" ] || die "$chroot is missing (scripts/chroot.sh builds it)"
  [ -f "$bundle" ] || die "$bundle is missing (npm run build, then scripts/stack.sh register)"
  # one image per bundle (runner.mjs and its chunks): a register with an unchanged bundle reuses it
  tag="dispatcher-runner:bundle-$(cat "$bundle" "$(dirname "$bundle")"/chunks/*.mjs | sha256sum | cut -c1-12)"
  if docker_cli image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
  stage=$(mktemp -d "$state/stage.XXXXXX")
  cp -al "$chroot/." "$stage/"
  mkdir -p "$stage/opt/dispatcher"
  install -m 0444 "$bundle" "$stage/opt/dispatcher/runner.mjs"
  install -d -m 0755 "$stage/opt/dispatcher/chunks"
  install -m 0444 "$(dirname "$bundle")"/chunks/*.mjs "$stage/opt/dispatcher/chunks/"
  # the runner's own node, executable but not readable by the task user (sealed_node: a process
  # that execs a binary it cannot read is not dumpable, so the formula cannot read /proc/1)
  install -m 0711 "$chroot/usr/bin/node" "$stage/opt/dispatcher/node"
  id=$(tar -C "$stage" --numeric-owner --owner=0 --group=0 -c . | docker_cli import - "$tag")
  rm -rf "$stage"
  [ -n "$id" ] || die "docker import of $tag failed (see $dev/dockerd.log)"
  echo "$tag"
}

down() {
  [ -f "$state/dockerd.pid" ] || return 0
  local pid; pid=$(cat "$state/dockerd.pid")
  # containers first (a task's container outlives a killed Nomad client)
  docker_cli ps -q 2>/dev/null | xargs -r docker_cli rm -f >/dev/null 2>&1 || true
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    say "stopped dockerd (pid $pid)"
  fi
  # overlay and shm mounts under the data and exec roots
  grep -oE " $state/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -f "$state/dockerd.pid"
}

case "$cmd" in
  up) up ;;
  image) image ;;
  down) down ;;
  *) die "usage: scripts/docker-engine.sh up|image|down DEV_DIR" ;;
esac

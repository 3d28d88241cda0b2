#!/usr/bin/env bash
# The dev stack's SSH git remote: sshd on loopback, key-only, serving the repos under DEV/git.
# Every login is forced through git-only.sh (git-shell commands on repos under DEV/git, nothing
# else: no shell, no forwarding, no TTY). The dispatcher's deploy key and the pinned host key
# (known_hosts) are written to DEV/ssh.
#   scripts/ssh-remote.sh up DEV PORT     install openssh-server if missing, start sshd
#   scripts/ssh-remote.sh down DEV
set -euo pipefail
cmd=${1:?usage: scripts/ssh-remote.sh up DEV PORT | down DEV}
dev=${2:?usage: scripts/ssh-remote.sh up DEV PORT | down DEV}
dir="$dev/ssh"

up() {
  local port=${1:?usage: scripts/ssh-remote.sh up DEV PORT}
  if [ ! -x /usr/sbin/sshd ]; then
    echo "==> installing openssh-server (Debian package) for the SSH ops remote" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
  fi
  mkdir -p "$dir" /run/sshd
  chmod 700 "$dir"
  [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N "" -C dev-ssh-remote -f "$dir/host_key"
  [ -f "$dir/deploy-key" ] || ssh-keygen -q -t ed25519 -N "" -C nomad-dispatcher-deploy -f "$dir/deploy-key"
  cat >"$dir/git-only.sh" <<SH
#!/bin/sh
# forced command: git fetch/push of a repo under $dev/git, nothing else
case "\$SSH_ORIGINAL_COMMAND" in
  "git-upload-pack '$dev/git/"*|"git-receive-pack '$dev/git/"*) ;;
  *) echo "only git fetch and push of repos under $dev/git" >&2; exit 1 ;;
esac
case "\$SSH_ORIGINAL_COMMAND" in *..*) echo "no .. in paths" >&2; exit 1 ;; esac
exec git-shell -c "\$SSH_ORIGINAL_COMMAND"
SH
  chmod 755 "$dir/git-only.sh"
  echo "command=\"$dir/git-only.sh\",restrict $(cat "$dir/deploy-key.pub")" >"$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  cat >"$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
# the stack may live under a world-writable directory (a CI checkout in /tmp), which StrictModes
# refuses; the key files are this script's own (mode 600 in a 700 directory)
StrictModes no
PermitRootLogin forced-commands-only
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PermitTunnel no
CONF
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dev/sshd.log"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
  for _ in $(seq 1 40); do bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && return; sleep 0.25; done
  echo "ssh-remote: sshd did not listen on 127.0.0.1:$port (see $dev/sshd.log)" >&2
  exit 1
}

down() {
  [ -f "$dir/sshd.pid" ] && kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
  rm -f "$dir/sshd.pid"
}

case "$cmd" in
  up) up "${3:-}" ;;
  down) down ;;
  *) echo "usage: scripts/ssh-remote.sh up DEV PORT | down DEV" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Builds the minimal root the exec driver puts each runner/sidecar task in (client chroot_env):
# node, git, curl, jq, bash and the utilities formulas use, with exactly the shared libraries they link,
# CA certificates and a passwd/group that know `nobody`. Nothing setuid or setgid, nothing of the
# host's /home, /root, /etc or the project. Nomad hard-links it into every task directory, which
# takes about a second instead of the default chroot's whole /usr.
#   scripts/chroot.sh DIR
set -euo pipefail
dest=${1:?usage: scripts/chroot.sh DIR}
node_bin=$(command -v node)

# what formulas may call: a shell, coreutils, text tools, git, node
tools=(bash sh env cat echo printf ls id grep egrep sed awk head tail tr wc sort uniq cut tee sleep date
  mkdir rm rmdir cp mv ln touch test true false dirname basename base64 sha256sum md5sum xargs find
  chmod stat mktemp readlink realpath seq timeout kill tar gzip diff cmp git curl jq)

rm -rf "$dest"
mkdir -p "$dest"/{usr/bin,usr/lib,usr/lib64,etc/ssl/certs,tmp}
chmod 1777 "$dest/tmp"
ln -s usr/bin "$dest/bin"
ln -s usr/lib "$dest/lib"
ln -s usr/lib64 "$dest/lib64"

# copy_file HOSTPATH: the file at its canonical path (through /lib, /bin links), dereferenced, no setuid
copy_file() {
  local real dir
  dir=$(readlink -f "$(dirname "$1")")
  real="$dest$dir/$(basename "$1")"
  [ -e "$real" ] && return
  mkdir -p "$(dirname "$real")"
  cp -L --no-preserve=mode,ownership "$1" "$real"
  chmod 0755 "$real"
}

copy_libs() {
  { ldd "$1" 2>/dev/null || true; } | awk '/=> \// {print $3} /^\t\/.* \(0x/ {print $1}' | while read -r lib; do copy_file "$lib"; done
}

elves=("$node_bin")
for t in "${tools[@]}"; do
  p=$(type -P "$t") || { echo "chroot: $t not found on this host" >&2; exit 1; }
  elves+=("$p")
done
for p in "${elves[@]}"; do copy_file "$p"; copy_libs "$p"; done
# node may live elsewhere (nvm, /usr/local): formulas and the runner call it as /usr/bin/node
[ -e "$dest/usr/bin/node" ] || cp "$dest$(readlink -f "$node_bin")" "$dest/usr/bin/node"

# git's helpers (upload-pack for local clones, remote-http): most are relative links to git itself
cp -a /usr/lib/git-core "$dest/usr/lib/"
# git runs its builtins as `git <name>` (its exec path's `git`): their dashed links (git-add,
# git-log, …: 137 of git-core's 193 entries on Debian 12) are there for old scripts only, and
# Nomad links every entry of the chroot into every task directory. Kept: the builtins a transport
# starts by their dashed name (a local or ssh remote's upload-pack and receive-pack, archive --remote)
for name in $(git --list-cmds=builtins); do
  case $name in upload-pack | receive-pack | upload-archive) continue ;; esac
  link="$dest/usr/lib/git-core/git-$name"
  if [ -L "$link" ] || [ "$link" -ef "$dest/usr/lib/git-core/git" ]; then rm -f "$link"; fi
done
for f in "$dest"/usr/lib/git-core/*; do
  [ -f "$f" ] && [ ! -L "$f" ] && copy_libs "/usr/lib/git-core/$(basename "$f")"
done

# git init/clone warn on every run without its templates
[ -d /usr/share/git-core/templates ] && mkdir -p "$dest/usr/share/git-core" && cp -a /usr/share/git-core/templates "$dest/usr/share/git-core/"

cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/" 2>/dev/null || true
cat >"$dest/etc/passwd" <<PASSWD
root:x:0:0:root:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$dest/etc/group" <<GROUP
root:x:0:
nogroup:x:65534:
GROUP
echo "passwd: files
group: files
hosts: files" >"$dest/etc/nsswitch.conf"
echo "127.0.0.1 localhost" >"$dest/etc/hosts"

# a setuid file hard-linked into a task would run as root there
bad=$(find "$dest" -perm /6000 -type f)
[ -z "$bad" ] || { echo "chroot: setuid/setgid files in $dest: $bad" >&2; exit 1; }

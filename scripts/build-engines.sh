#!/usr/bin/env bash
# Builds nomad and bao (and, with `gitea`, the forge) from the Go module proxy into
# $ENGINE_CACHE/bin, keyed by version.
# Idempotent: a cached binary, or one on PATH at the pinned version, is reused.
#   scripts/build-engines.sh [all|nomad|bao|gitea]   (all: nomad and bao; gitea only when asked)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=engines.env
. "$here/engines.env"
bin_dir="$ENGINE_CACHE/bin"
mkdir -p "$bin_dir"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-engines: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH (need Go >= 1.24; /usr/local/go/bin?)"
command -v jq >/dev/null || die "jq is not on PATH (apt-get install -y jq)"

# download MODULE@VERSION, print its directory in the module cache
download() {
  local json
  json=$(go mod download -json "$1" 2>&1) || true
  local err; err=$(jq -r '.Error // empty' <<<"$json" 2>/dev/null || echo "$json")
  [ -z "$err" ] || die "go mod download $1 failed: $err (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  jq -r .Dir <<<"$json"
}

# reuse_on_path NAME VERSION: link a binary on PATH whose version output matches
reuse_on_path() {
  local name=$1 version=$2 found
  found=$(command -v "$name" 2>/dev/null) || return 1
  [ "$found" -ef "$bin_dir/$name-$version" ] && return 1
  "$found" version 2>/dev/null | grep -q "v$version\b" || return 1
  ln -sf "$found" "$bin_dir/$name-$version"
  say "$name $version: reusing $found"
}

# build NAME VERSION ROOT NESTED UNUSED CGO LDFLAGS
build() {
  local name=$1 version=$2 root=$3 nested=$4 unused=$5 cgo=$6 ldflags=$7
  local out="$bin_dir/$name-$version"
  if [ -x "$out" ]; then say "$name $version: cached at $out"; return; fi
  reuse_on_path "$name" "$version" && return
  local start=$SECONDS src="$ENGINE_CACHE/src/$name-$version"
  say "$name $version: downloading $root"
  local dir; dir=$(download "$root")
  rm -rf "$src"; mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"; chmod -R u+w "$src"
  local pair rel mod
  for pair in $nested; do
    rel=${pair%%=*}; mod=${pair#*=}
    say "$name $version: restoring nested module $mod at ./$rel"
    dir=$(download "$mod")
    rm -rf "${src:?}/$rel"; mkdir -p "$src/$rel"
    cp -r "$dir/." "$src/$rel/"; chmod -R u+w "$src/$rel"
  done
  for mod in $unused; do
    say "$name $version: dropping unused nested module $mod"
    (cd "$src" && go mod edit -droprequire="$mod" -dropreplace="$mod")
  done
  say "$name $version: go build (cold builds take several minutes on 2 cores)"
  (cd "$src" && CGO_ENABLED=$cgo go build -trimpath -ldflags "$ldflags" -o "$out.tmp" .) \
    || die "go build of $name $version failed (source in $src)"
  mv "$out.tmp" "$out"
  rm -rf "$src"
  say "$name $version: built in $((SECONDS - start))s, $(du -h "$out" | cut -f1)"
}

want=${1:-all}
if [ "$want" = all ] || [ "$want" = nomad ]; then
  build nomad "$NOMAD_VERSION" "$NOMAD_MODULE" "$NOMAD_NESTED" "$NOMAD_UNUSED" 1 \
    "-s -w -checklinkname=0 -X github.com/hashicorp/nomad/version.GitCommit=v$NOMAD_VERSION"
  "$bin_dir/nomad-$NOMAD_VERSION" version
fi
if [ "$want" = all ] || [ "$want" = bao ]; then
  build bao "$BAO_VERSION" "$BAO_MODULE" "$BAO_NESTED" "$BAO_UNUSED" 0 \
    "-s -w -checklinkname=0 -X github.com/openbao/openbao/version.fullVersion=$BAO_VERSION -X github.com/openbao/openbao/version.GitCommit=f9407a27fbee"
  "$bin_dir/bao-$BAO_VERSION" version
fi

# Gitea: `go build` inside a writable copy of the module (its go.mod says gitea.dev), with sqlite;
# the copy's templates/, options/ and public/ stay as its STATIC_ROOT_PATH (no bindata tag)
build_gitea() {
  local out="$bin_dir/gitea-$GITEA_VERSION" share="$ENGINE_CACHE/share/gitea-$GITEA_VERSION"
  if [ -x "$out" ] && [ -d "$share/templates" ]; then say "gitea $GITEA_VERSION: cached at $out"; return; fi
  local start=$SECONDS src="$ENGINE_CACHE/src/gitea-$GITEA_VERSION"
  say "gitea $GITEA_VERSION: downloading $GITEA_MODULE"
  local dir; dir=$(download "$GITEA_MODULE")
  rm -rf "$src"; mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"; chmod -R u+w "$src"
  say "gitea $GITEA_VERSION: go build (cold: about 5+ minutes on 2 cores)"
  (cd "$src" && CGO_ENABLED=1 go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
      -ldflags "-s -w -X main.Version=$GITEA_VERSION" -o "$out.tmp" .) \
    || die "go build of gitea $GITEA_VERSION failed (source in $src)"
  rm -rf "$share"; mkdir -p "$share"
  cp -r "$src/templates" "$src/options" "$src/public" "$share/"
  mv "$out.tmp" "$out"
  rm -rf "$src"
  say "gitea $GITEA_VERSION: built in $((SECONDS - start))s, $(du -h "$out" | cut -f1)"
}
if [ "$want" = gitea ]; then
  build_gitea
  "$bin_dir/gitea-$GITEA_VERSION" --version
fi

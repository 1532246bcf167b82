#!/usr/bin/env bash
# shellcheck shell=bash
# The one way budgetgate's scripts and make targets get a binary, and the one
# reader of hack/versions.env.
#
#   hack/get.sh NAME DEST VERSION [OPTION...]     from make or any shell
#   . hack/get.sh; get_or_build NAME DEST VERSION [OPTION...]
#                                                 sourced (hack/lib.sh does), so
#                                                 --fetch and --build can name
#                                                 shell functions
#
# It puts NAME at VERSION (a pin of hack/versions.env) at DEST:
#   1. DEST is there and DIR/.BASENAME.version (written beside it) says VERSION:
#      it prints "already there" and does nothing else. A DEST that predates
#      those records is kept when `go version -m` shows it was built from the
#      pinned module at VERSION (--module, or the module of --go-pkg).
#   2. The fast path, skipped with OFFLINE=1: the release download (--url),
#      checked against the checksums upstream publishes (--sha256-url), or a
#      command of the caller's (--fetch).
#   3. When that is skipped or fails: a build from the Go module proxy, which
#      works without the internet: `go install PKG@VERSION` into a scratch GOBIN
#      (--go-pkg), or a build command of the caller's (--build).
# The result is moved into place with one rename in DEST's directory, then its
# version recorded: an interrupted get leaves DEST as it was, never half
# written, and bumping a pin gets the new version on the next run. Scratch
# space is DIR/.BASENAME.get.*, removed afterwards (and by the next get of the
# same DEST if an interrupted one left it). Gets of the same DEST wait for
# each other (flock on the version record). Every step prints a `==>` line;
# a get ends with how it got the binary and how long that took.
#
# Options:
#   --url URL           release download: the binary itself, or an archive
#                       (.tar.gz, .tgz) to take --member from
#   --member PATH       the file inside the archive; archives are kept in
#                       bin/.build/downloads so that the other members of the
#                       same archive need no second download
#   --sha256-url URL    upstream's checksums: sha256sum lines (the one naming
#                       the downloaded file is used) or a bare hash; the
#                       download is used only when it matches
#   --fetch CMD         the fast path as a command instead of --url: CMD's
#                       words, then OUT, the file to write
#   --go-pkg PKG@VER    build: go install PKG@VER (run outside any module)
#   --ldflags FLAGS     -ldflags of the go install
#   --tags TAGS         -tags of the go install
#   --trimpath          -trimpath for the go install
#   --env KEY=VALUE     environment of the go install (repeatable), e.g.
#                       --env CGO_ENABLED=0
#   --build CMD         build as a command instead of --go-pkg: CMD's words,
#                       then OUT. It runs in the calling shell with errexit
#                       off (as inside any `if`), so it must return non-zero
#                       itself when a step fails.
#   --module MOD        the Go module whose version VERSION is, for keeping a
#                       DEST built before versions were recorded
#   --time TEXT         how long a build takes, for the message
#
# Example (hack/kwok.sh, with the pins of hack/versions.env loaded):
#   get_or_build kwok bin/kwok/kwok "$KWOK_VERSION" \
#     --url "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok-linux-amd64" \
#     --go-pkg "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" --ldflags "-s -w" --env CGO_ENABLED=0
# From make, every pin is a make variable: hack/get.sh NAME "$(LOCALBIN)/NAME"
# "$(NAME_VERSION)" --go-pkg "example.com/cmd/NAME@$(NAME_VERSION)".

GET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# load_versions: every KEY=value of hack/versions.env as a shell variable,
# unless the environment sets KEY already (K8S_VERSION=v1.37.1 hack/... wins).
load_versions() {
  local key val
  while IFS='=' read -r key val; do
    [[ $key =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
    [ -n "${!key:-}" ] || printf -v "$key" '%s' "$val"
  done <"$GET_ROOT/hack/versions.env"
}

_get_say() { printf '==> %s\n' "$*" >&2; }

# _get_built_from FILE VERSION MODULE PKG: FILE's Go build information names
# MODULE at VERSION (a `mod` or `dep` line), or, without MODULE, PKG is its
# main package and its module is at VERSION.
_get_built_from() {
  local file=$1 version=$2 module=$3 pkg=$4 info
  [ -n "$module$pkg" ] || return 1
  info=$(go version -m "$file" 2>/dev/null) || return 1
  if [ -n "$module" ]; then
    awk -v m="$module" -v v="$version" '($1 == "mod" || $1 == "dep") && $2 == m && $3 == v { ok = 1 } END { exit !ok }' <<<"$info"
  else
    awk -v p="$pkg" -v v="$version" '$1 == "path" && $2 == p { path = 1 } $1 == "mod" && $3 == v { mod = 1 } END { exit !(path && mod) }' <<<"$info"
  fi
}

# _get_sha256_of SUMS ASSET: the hash SUMS gives for ASSET (a sha256sum line
# naming it, possibly as *ASSET or DIR/ASSET), or SUMS's only word (a bare hash).
_get_sha256_of() {
  awk -v a="$2" '
    { n++; f = $2; sub(/^\*/, "", f); sub(/^.*\//, "", f) }
    NF >= 2 && f == a { print $1; found = 1; exit }
    NF == 1 { only = $1 }
    END { if (!found && n == 1 && only != "") print only }' "$1"
}

# _get_download URL MEMBER SHA256_URL SCRATCH OUT: the fast path by download.
_get_download() {
  local url=$1 member=$2 sums_url=$3 scratch=$4 out=$5
  local asset=${url##*/} file err want have cache=$GET_ROOT/bin/.build/downloads
  file=$scratch/$asset
  if [ -n "$member" ] && [ -s "$cache/$asset" ]; then
    _get_say "$name $version: $asset already downloaded (bin/.build/downloads)"
    file=$cache/$asset
  else
    _get_say "$name $version: trying $url"
    if ! err=$(curl -fsS --connect-timeout 5 --max-time 300 -L -o "$file" "$url" 2>&1); then
      _get_say "$name $version: download failed: $err"
      return 1
    fi
    if [ -n "$sums_url" ]; then
      if ! err=$(curl -fsS --connect-timeout 5 --max-time 60 -L -o "$scratch/sha256sums" "$sums_url" 2>&1); then
        _get_say "$name $version: no checksums ($err): not using the download"
        return 1
      fi
      want=$(_get_sha256_of "$scratch/sha256sums" "$asset")
      have=$(sha256sum "$file" | cut -d' ' -f1)
      if [ -z "$want" ] || [ "$want" != "$have" ]; then
        _get_say "$name $version: $asset has sha256 $have, $sums_url says '${want:-nothing about it}': not using the download"
        return 1
      fi
      _get_say "$name $version: sha256 of $asset matches $sums_url"
    fi
    if [ -n "$member" ]; then
      mkdir -p "$cache" && cp "$file" "$cache/$asset.tmp.$$" && mv -f "$cache/$asset.tmp.$$" "$cache/$asset" || return 1
    fi
  fi
  if [ -z "$member" ]; then
    [ "$file" = "$out" ] || mv -f "$file" "$out"
    return
  fi
  if ! { mkdir -p "$scratch/x" && tar -xzf "$file" -C "$scratch/x"; }; then
    _get_say "$name $version: cannot unpack $asset"
    return 1
  fi
  [ -f "$scratch/x/$member" ] || {
    _get_say "$name $version: $asset has no $member"
    return 1
  }
  mv -f "$scratch/x/$member" "$out"
}

# get_or_build NAME DEST VERSION [OPTION...]: see the top of this file.
get_or_build() {
  if [ $# -lt 3 ]; then
    _get_say "usage: get_or_build NAME DEST VERSION [OPTION...] (hack/get.sh)"
    return 2
  fi
  local name=$1 dest=$2 version=$3
  shift 3
  local url='' member='' sums_url='' fetch='' go_pkg='' ldflags='' tags='' trimpath='' build='' module='' time=''
  local -a go_env=()
  while [ $# -gt 0 ]; do
    case $1 in
      --url) url=$2 ;;
      --member) member=$2 ;;
      --sha256-url) sums_url=$2 ;;
      --fetch) fetch=$2 ;;
      --go-pkg) go_pkg=$2 ;;
      --ldflags) ldflags=$2 ;;
      --tags) tags=$2 ;;
      --env) go_env+=("$2") ;;
      --build) build=$2 ;;
      --module) module=$2 ;;
      --time) time=$2 ;;
      --trimpath) trimpath=1; shift; continue ;;
      *) _get_say "get_or_build $name: unknown option $1"; return 2 ;;
    esac
    [ $# -ge 2 ] || { _get_say "get_or_build $name: $1 needs a value"; return 2; }
    shift 2
  done
  if [ -z "$version" ]; then
    _get_say "$name: no version given (is it pinned in hack/versions.env?)"
    return 2
  fi
  if [ -z "$go_pkg$build" ]; then
    _get_say "get_or_build $name: needs --go-pkg or --build"
    return 2
  fi
  local dir base stamp shown
  dir=$(dirname "$dest") base=$(basename "$dest")
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd)
  dest=$dir/$base stamp=$dir/.$base.version shown=${dest#"$GET_ROOT"/}
  if [ -x "$dest" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    _get_say "$name $version: already there ($shown)"
    return 0
  fi

  local lock='' rc=0
  if command -v flock >/dev/null 2>&1; then
    exec {lock}>>"$stamp"
    if ! flock -n "$lock"; then
      _get_say "$name $version: waiting for another get of $shown"
      flock "$lock"
    fi
  fi
  _get_locked || rc=$?
  [ -z "$lock" ] || exec {lock}>&-
  return "$rc"
}

# _get_locked: the rest of get_or_build, holding the lock (its locals are in scope).
_get_locked() {
  local pkg=${go_pkg%@*}
  if [ -x "$dest" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    _get_say "$name $version: already there ($shown)"
    return 0
  fi
  if [ -x "$dest" ] && [ ! -s "$stamp" ] && _get_built_from "$dest" "$version" "$module" "$pkg"; then
    printf '%s\n' "$version" >"$stamp"
    _get_say "$name $version: already there ($shown; built from ${module:-$pkg} $version, version now recorded)"
    return 0
  fi

  rm -rf "$dir/.$base.get."*
  local scratch out start=$SECONDS how='' words
  scratch=$(mktemp -d "$dir/.$base.get.XXXXXX") || return 1
  out=$scratch/$base
  if [ -n "$url$fetch" ] && [ "${OFFLINE:-}" = 1 ]; then
    _get_say "$name $version: OFFLINE=1, not trying the download"
  elif [ -n "$fetch" ]; then
    read -r -a words <<<"$fetch"
    if "${words[@]}" "$out" && [ -s "$out" ]; then how="fetched (${words[0]})"; fi
  elif [ -n "$url" ]; then
    if _get_download "$url" "$member" "$sums_url" "$scratch" "$out"; then how="downloaded"; fi
  fi
  if [ -z "$how" ]; then
    rm -f "$out"
    if [ -n "$build" ]; then
      read -r -a words <<<"$build"
      _get_say "$name $version: building from the Go module proxy${time:+ ($time)}"
      "${words[@]}" "$out" && [ -s "$out" ] && how="built from the Go module proxy"
    else
      _get_say "$name $version: building from the Go module proxy: go install $go_pkg${time:+ ($time)}"
      local -a flags=()
      [ -z "$trimpath" ] || flags+=(-trimpath)
      [ -z "$tags" ] || flags+=(-tags "$tags")
      [ -z "$ldflags" ] || flags+=(-ldflags "$ldflags")
      mkdir -p "$scratch/gobin" &&
        (cd "$scratch" && env ${go_env[@]+"${go_env[@]}"} GOBIN="$scratch/gobin" go install ${flags[@]+"${flags[@]}"} "$go_pkg") &&
        set -- "$scratch/gobin"/* && [ $# -eq 1 ] && [ -f "$1" ] && mv -f "$1" "$out" &&
        how="built from the Go module proxy"
    fi
  fi
  if [ -z "$how" ]; then
    rm -rf "$scratch"
    _get_say "$name $version: FAILED to download or build (see above); $shown left as it was"
    return 1
  fi
  if ! { chmod +x "$out" && mv -fT "$out" "$dest" && printf '%s\n' "$version" >"$stamp"; }; then
    rm -rf "$scratch"
    return 1
  fi
  rm -rf "$scratch"
  _get_say "$name $version: $how in $((SECONDS - start))s: $shown"
}

# Run as a command: get_or_build with the arguments.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  get_or_build "$@"
fi

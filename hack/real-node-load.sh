#!/usr/bin/env bash
# Loads images into the real node's containerd, where pods with
# `imagePullPolicy: Never` (or IfNotPresent) find them.
#
#   hack/real-node-load.sh IMAGE.tar...     e.g. bin/images/manager.tar (make image)
#
# How it works: `ctr images import` into the k8s.io namespace of the node's
# containerd (socket .cluster/real/containerd/containerd.sock), which takes the
# OCI layout tars of hack/image (the name comes from their
# io.containerd.image.name annotation, e.g. ghcr.io/budgetgate/manager:v0.1.0,
# which is what `image: ghcr.io/budgetgate/manager:v0.1.0` means to the kubelet) as well
# as docker-archive tars (docker save). Only this machine's platform is unpacked.
# Images are labelled io.cri-containerd.pinned=pinned, so the kubelet's image
# garbage collection never removes them (nothing can pull them again offline).
# Reloading a changed image under the same name replaces it; running pods keep
# the old one until they restart. Prints each image's name and digest.
set -euo pipefail
# shellcheck source=hack/real-node-lib.sh
. "$(dirname "$0")/real-node-lib.sh"

[ $# -gt 0 ] || die "usage: $0 IMAGE.tar..."
[ -S "$CONTAINERD_SOCK" ] || die "the real node's containerd is not running ($CONTAINERD_SOCK); make cluster-up-real first"
for f in "$@"; do
  [ -f "$f" ] || die "no such image file: $f"
  if ! out=$(ctr_ images import --label io.cri-containerd.pinned=pinned "$f" 2>&1); then
    printf '%s\n' "$out" >&2
    die "ctr images import $f failed"
  fi
  # The name: from an OCI layout's index.json, else a docker-archive's
  # manifest.json (RepoTags, which containerd prefixes with docker.io/).
  name=$(tar -xOf "$f" index.json 2>/dev/null | sed -n 's/.*"io.containerd.image.name": *"\([^"]*\)".*/\1/p' | head -1 || true)
  if [ -z "$name" ]; then
    name=$(tar -xOf "$f" manifest.json 2>/dev/null | sed -n 's/.*"RepoTags": *\["\([^"]*\)".*/\1/p' | head -1 || true)
    case $name in "" | *.*/* | localhost/*) ;; */*) name=docker.io/$name ;; *) name=docker.io/library/$name ;; esac
  fi
  if [ -n "$name" ]; then
    digest=$(ctr_ images ls "name==$name" 2>/dev/null | awk 'NR == 2 {print $3}' || true)
    ok "loaded $name ${digest:-} ($(basename "$f"))"
  else
    ok "loaded $(basename "$f")"
  fi
done

#!/usr/bin/env bash
# Builds (or reuses) kube-apiserver and etcd from this Go module and prints the
# folder holding them. The binaries are cached under $MPLB_CACHE/kube/<key>/bin,
# keyed by go.mod, go.sum and the command sources, so a second run is instant.
set -euo pipefail
cd "$(dirname "$0")"

MPLB_CACHE="${MPLB_CACHE:-$HOME/.cache/mplb}"
GO="${MPLB_GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || GO=/usr/local/go/bin/go
KUBE_VERSION=v1.37.2

key=$(cat go.mod go.sum cmd/*/*.go | sha256sum | cut -c1-16)
bin="$MPLB_CACHE/kube/$key/bin"
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi
# One build at a time (test binaries may ask at once); the second one reuses.
mkdir -p "$MPLB_CACHE/kube"
exec 9>"$MPLB_CACHE/kube/.build.lock"
flock 9
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi

export GOMODCACHE="${GOMODCACHE:-$MPLB_CACHE/go/mod}"
export GOCACHE="${MPLB_GOCACHE:-$MPLB_CACHE/go/build}"
export GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$bin.tmp"
printf '[kube-harness] building kube-apiserver %s and etcd into %s\n' "$KUBE_VERSION" "$bin" >&2
ver="k8s.io/component-base/version"
ldflags="-s -w -X $ver.gitVersion=$KUBE_VERSION -X $ver.gitMajor=1 -X $ver.gitMinor=37 -X $ver.gitTreeState=clean"
"$GO" build -trimpath -ldflags "$ldflags" -o "$bin.tmp/kube-apiserver" ./cmd/kube-apiserver
"$GO" build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" ./cmd/etcd
rm -rf "$bin"
mv "$bin.tmp" "$bin"
echo "$bin"

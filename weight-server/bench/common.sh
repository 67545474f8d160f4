# Shared by the weight-server bench scripts (sourced).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${WEIGHT_SERVER_BIN:-$TARGET/release/weight-server}"
WORK="$(mktemp -d)"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

build() {
  if [ -z "${WEIGHT_SERVER_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p weight-server)
  fi
  [ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
}

# start_server LOG ARGS...: runs the server (pinned with $PIN if set) on a
# free loopback port; sets SERVER_PID and ADDR.
start_server() {
  local log="$1"; shift
  if [ -n "${PIN:-}" ]; then
    RUST_LOG=info taskset -c "$PIN" "$BIN" --listen 127.0.0.1:0 "$@" 2>"$log" &
  else
    RUST_LOG=info "$BIN" --listen 127.0.0.1:0 "$@" 2>"$log" &
  fi
  SERVER_PID=$!
  ADDR=""
  for _ in $(seq 1 200); do
    ADDR="$(grep -o 'listening on [0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)"
    [ -n "$ADDR" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$ADDR" ] || { echo "server did not start" >&2; cat "$log" >&2; exit 1; }
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  echo "server not ready" >&2; exit 1
}

#!/usr/bin/env bash
# Resident memory and CPU of the real host-agent binary sampling a 250-pod
# fixture tree (cgroup v1, cgroupfs driver, all QoS classes, pod names from a
# log directory) every INTERVAL (default 1s), pushing to a loopback sink, for
# DURATION s.
#
#   host-agent/scripts/bench-rss.sh            # DURATION=15 PODS=250 LAYOUT=v1
#   LAYOUT=v2 host-agent/scripts/bench-rss.sh  # cgroup v2, systemd driver
#   INTERVAL=500ms host-agent/scripts/bench-rss.sh
#
# Prints VmRSS/VmHWM from /proc/<pid>/status and the CPU the agent used
# (utime+stime from /proc/<pid>/stat) as a share of one core, after a 2 s
# warm-up. Every process it starts is stopped on exit.
set -euo pipefail

DURATION=${DURATION:-15}
PODS=${PODS:-250}
LAYOUT=${LAYOUT:-v1}
INTERVAL=${INTERVAL:-1s}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/target}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build -q --release -p host-agent --bin host-agent)
BIN=$TARGET/release/host-agent

# Fixture tree.
CG=$WORK/cg
LOGS=$WORK/logs
mkdir -p "$LOGS"
qos=(guaranteed burstable besteffort)
if [ "$LAYOUT" = v2 ]; then
  mkdir -p "$CG"; echo "cpuset cpu io memory pids" > "$CG/cgroup.controllers"
else
  mkdir -p "$CG/cpu" "$CG/cpuacct"; echo 0 > "$CG/cpuacct/cpuacct.usage"
  echo 100000 > "$CG/cpu/cpu.cfs_period_us"; echo -1 > "$CG/cpu/cpu.cfs_quota_us"
fi
for i in $(seq 0 $((PODS - 1))); do
  uid=$(printf '%08x-0000-4000-8000-%012x' "$i" "$((i * 7919))")
  q=${qos[$((i % 3))]}
  if [ "$LAYOUT" = v2 ]; then
    u=${uid//-/_}
    if [ "$q" = guaranteed ]; then d=kubepods.slice/kubepods-pod$u.slice
    else d=kubepods.slice/kubepods-$q.slice/kubepods-$q-pod$u.slice; fi
    mkdir -p "$CG/$d"
    printf 'usage_usec %d\nuser_usec 0\nsystem_usec 0\n' "$((i * 1000))" > "$CG/$d/cpu.stat"
  else
    if [ "$q" = guaranteed ]; then d=kubepods/pod$uid; else d=kubepods/$q/pod$uid; fi
    mkdir -p "$CG/cpuacct/$d"
    echo "$((i * 1000000))" > "$CG/cpuacct/$d/cpuacct.usage"
  fi
  mkdir -p "$LOGS/bench_pod-${i}_$uid"
done

# Loopback sink: counts reports, answers 204.
cat > "$WORK/sink.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    count = 0
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        H.count += 1
        open(sys.argv[2], "w").write(str(H.count))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$WORK/sink.py" "$WORK/port" "$WORK/count" & PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")

RUST_LOG=warn "$BIN" --server "http://127.0.0.1:$PORT" --node-name bench --interval "$INTERVAL" \
  --cgroup-root "$CG" --log-pods-dir "$LOGS" 2> "$WORK/agent.log" & AGENT=$!
PIDS+=("$AGENT")

ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
HZ=$(getconf CLK_TCK)
sleep 2
t0=$(ticks); s0=$(date +%s.%N)
sleep "$DURATION"
t1=$(ticks); s1=$(date +%s.%N)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$AGENT/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$AGENT/status")
reports=$(cat "$WORK/count" 2>/dev/null || echo 0)
awk -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v hz="$HZ" -v rss="$rss" -v hwm="$hwm" \
    -v pods="$PODS" -v layout="$LAYOUT" -v reports="$reports" 'BEGIN {
  cpu = (t1 - t0) / hz; wall = s1 - s0;
  printf "layout=%s pods=%d window=%.1fs reports_received=%d\n", layout, pods, wall, reports;
  printf "cpu: %.3f s over %.1f s = %.2f%% of one core (tick resolution %d ms)\n", cpu, wall, 100 * cpu / wall, 1000 / hz;
  printf "memory: VmRSS %.1f MiB, VmHWM %.1f MiB\n", rss / 1024, hwm / 1024;
}'
if [ -s "$WORK/agent.log" ]; then echo "agent warnings:"; head -5 "$WORK/agent.log"; fi

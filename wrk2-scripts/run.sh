#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && check || die`: die exits
# Runs one multiparty-lb workload against a target and writes a results file
# with throughput, p50/p90/p99/p99.9 latency and the non-2xx count.
#
# Load generator, first found:
#   1. wrk2 (`$WRK2` or `wrk2` on PATH): open loop at --rate, latencies
#      corrected for coordinated omission. Runs the Lua workload.
#   2. oha (`$OHA` or `oha` on PATH): `-q RATE --latency-correction`. oha cannot
#      run Lua: it requests --url itself (one endpoint), not the Lua mix.
#   3. wrk (`$WRK` or `wrk` on PATH): CLOSED loop, --rate IGNORED, latencies
#      NOT corrected for coordinated omission. Runs the Lua workload.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<USAGE
usage: $(basename "$0") --url URL [options]

  --url URL            target, e.g. http://127.0.0.1:5000   (env MPLB_URL)
  --rate N             requests/s, total over all connections (env MPLB_RATE, default 100)
  --duration D         e.g. 30s, 2m                          (env MPLB_DURATION, default 30s)
  --connections N      (env MPLB_CONNECTIONS, default 8)
  --threads N          (env MPLB_THREADS, default 2)
  --workload W         hotel-mixed | recommendations | path to a .lua file
                       (env MPLB_WORKLOAD, default hotel-mixed)
  --out FILE           results file (env MPLB_OUT, default results/<workload>-<time>.txt)
  --header 'K: V'      extra request header, repeatable, e.g. 'Host: frontend.hotel.svc.cluster.local'
                       (to reach a service through the ingress gateway)
  --tool T             force wrk2 | oha | wrk  (env MPLB_TOOL; default: first installed)
  -h, --help           this text

The results file holds "key: value" lines: tool, url, workload, rate_requested,
rate_enforced, latency_corrected, duration_s, requests, throughput_rps,
p50_ms, p90_ms, p99_ms, p999_ms, max_ms, non2xx, socket_errors.
The load generator's own output goes to FILE.log.
USAGE
}

die() { echo "run.sh: $*" >&2; exit 2; }

url="${MPLB_URL:-}"
rate="${MPLB_RATE:-100}"
duration="${MPLB_DURATION:-30s}"
connections="${MPLB_CONNECTIONS:-8}"
threads="${MPLB_THREADS:-2}"
workload="${MPLB_WORKLOAD:-hotel-mixed}"
out="${MPLB_OUT:-}"
tool="${MPLB_TOOL:-}"
headers=()

while [ $# -gt 0 ]; do
  case "$1" in
    --url) url="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --workload) workload="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --tool) tool="$2"; shift 2 ;;
    --header) [[ "$2" == *:* ]] || die "--header must look like 'Name: value'"; headers+=(-H "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ -n "$url" ] || die "--url is required (see --help)"
[[ "$rate" =~ ^[0-9]+$ ]] && [ "$rate" -gt 0 ] || die "--rate must be a positive integer"
[[ "$connections" =~ ^[0-9]+$ ]] && [ "$connections" -gt 0 ] || die "--connections must be a positive integer"
[[ "$threads" =~ ^[0-9]+$ ]] && [ "$threads" -gt 0 ] || die "--threads must be a positive integer"
[ "$threads" -le "$connections" ] || die "--threads must not exceed --connections"
[[ "$duration" =~ ^[0-9]+[smh]?$ ]] || die "--duration must look like 30s, 2m or 1h"

case "$workload" in
  hotel-mixed|recommendations) script="$here/$workload.lua" ;;
  *) script="$workload" ;;
esac
[ -f "$script" ] || die "workload script not found: $script"

duration_s() {
  local d="$1" n="${1%[smh]}"
  case "$d" in *m) echo $((n * 60)) ;; *h) echo $((n * 3600)) ;; *) echo "$n" ;; esac
}

if [ -z "$tool" ]; then
  if command -v "${WRK2:-wrk2}" >/dev/null 2>&1; then tool=wrk2
  elif command -v "${OHA:-oha}" >/dev/null 2>&1; then tool=oha
  elif command -v "${WRK:-wrk}" >/dev/null 2>&1; then tool=wrk
  else die "none of wrk2, oha, wrk is installed (scripts/setup.sh installs wrk)"
  fi
fi

if [ -z "$out" ]; then
  mkdir -p results
  out="results/$(basename "$script" .lua)-$(date -u +%Y%m%dT%H%M%SZ).txt"
fi
mkdir -p "$(dirname "$out")"
log="$out.log"
secs="$(duration_s "$duration")"
# every run is bounded: the generator gets its duration plus a grace period
bound=$((secs + 30))

header() {
  {
    echo "tool: $1"
    echo "url: $url"
    echo "workload: $2"
    echo "rate_requested: $rate"
    echo "rate_enforced: $3"
    echo "latency_corrected: $4"
    echo "connections: $connections"
    echo "threads: $threads"
  } >"$out"
}

from_result_line() {
  # parse the MPLB_RESULT line printed by lib/report.lua's done() hook
  local line
  line="$(grep '^MPLB_RESULT ' "$log" | tail -1)" || die "no MPLB_RESULT line in $log"
  local kv k v
  for kv in ${line#MPLB_RESULT }; do
    k="${kv%%=*}"; v="${kv#*=}"
    case "$k" in
      requests|duration_s|p50_ms|p90_ms|p99_ms|p999_ms|max_ms|non2xx) echo "$k: $v" >>"$out" ;;
      rps) echo "throughput_rps: $v" >>"$out" ;;
    esac
  done
  local errs
  errs="$(awk '{for(i=2;i<=NF;i++){split($i,a,"="); if(a[1] ~ /_err$|^timeouts$/) s+=a[2]}} END{print s+0}' <<<"$line")"
  echo "socket_errors: $errs" >>"$out"
}

case "$tool" in
  wrk2)
    header wrk2 "$script" yes yes
    timeout "$bound" "${WRK2:-wrk2}" -t "$threads" -c "$connections" -d "$duration" \
      -R "$rate" --latency "${headers[@]}" -s "$script" "$url" >"$log" 2>&1
    from_result_line
    ;;
  oha)
    echo "run.sh: oha cannot run Lua workloads: requesting $url itself (one endpoint), not $(basename "$script")" >&2
    header oha "$url (single URL, oha has no Lua)" yes yes
    fmt=(--json)
    "${OHA:-oha}" --help 2>/dev/null | grep -q -- '--output-format' && fmt=(--output-format json)
    timeout "$bound" "${OHA:-oha}" --no-tui -z "$duration" -c "$connections" -q "$rate" \
      --latency-correction "${headers[@]}" "${fmt[@]}" "$url" >"$log" 2>"$log.err"
    jq -r '
      def ms: (. // 0) * 1000;
      "requests: \([.statusCodeDistribution[]?] | add // 0)",
      "duration_s: \(.summary.total)",
      "throughput_rps: \(.summary.requestsPerSec)",
      "p50_ms: \(.latencyPercentiles.p50 | ms)",
      "p90_ms: \(.latencyPercentiles.p90 | ms)",
      "p99_ms: \(.latencyPercentiles.p99 | ms)",
      "p999_ms: \(.latencyPercentiles["p99.9"] | ms)",
      "max_ms: \(.summary.slowest | ms)",
      "non2xx: \([.statusCodeDistribution | to_entries[]? | select(.key | test("^2") | not) | .value] | add // 0)",
      "socket_errors: \([.errorDistribution[]?] | add // 0)"' "$log" >>"$out"
    ;;
  wrk)
    echo "run.sh: WARNING: wrk2 and oha are not installed: using wrk, CLOSED loop." >&2
    echo "run.sh: WARNING: --rate $rate is NOT enforced and latencies are NOT corrected for coordinated omission." >&2
    header wrk "$script" "no (wrk has no rate limit)" "no (closed loop: coordinated omission)"
    timeout "$bound" "${WRK:-wrk}" -t "$threads" -c "$connections" -d "$duration" \
      "${headers[@]}" -s "$script" "$url" >"$log" 2>&1
    from_result_line
    ;;
  *) die "unknown --tool $tool (wrk2 | oha | wrk)" ;;
esac

echo "run.sh: results in $out" >&2
cat "$out"

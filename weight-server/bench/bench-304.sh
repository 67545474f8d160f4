#!/usr/bin/env bash
# GET /v1/weights answered with 304 at one core: the server pinned to core 0
# with one tokio worker thread, wrk pinned to core 1 sending If-None-Match
# with the current version. Target: >= 20,000 answers per second.
#   weight-server/bench/bench-304.sh            (DURATION=10s CONNS=50)
source "$(dirname "$0")/common.sh"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-50}"
command -v wrk >/dev/null || { echo "wrk missing: run scripts/setup.sh" >&2; exit 1; }
build
echo "load before: $(uptime)"
PIN=0 start_server "$WORK/server.log" --topology "$ROOT/examples/hotel-topology.yaml" --worker-threads 1 --policy even
ETAG="$(curl -s -D - -o /dev/null "http://$ADDR/v1/weights" | tr -d '\r' | awk 'tolower($1)=="etag:"{print $2}')"
[ -n "$ETAG" ] || { echo "no ETag" >&2; exit 1; }
code="$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "http://$ADDR/v1/weights")"
[ "$code" = 304 ] || { echo "expected 304, got $code" >&2; exit 1; }
echo "server pid $SERVER_PID on core 0, ETag $ETAG, wrk on core 1: -t1 -c$CONNS -d$DURATION"
taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "If-None-Match: $ETAG" "http://$ADDR/v1/weights" | tee "$WORK/wrk.txt"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "http://$ADDR/v1/weights")"
[ "$code" = 304 ] || { echo "version changed during the run (got $code)" >&2; exit 1; }
if grep -q "Non-2xx or 3xx" "$WORK/wrk.txt"; then echo "some answers were not 304" >&2; exit 1; fi
rps="$(awk '/Requests\/sec/{print $2}' "$WORK/wrk.txt")"
echo "RESULT 304/s at one core: $rps (target >= 20000)"
echo "load after: $(uptime)"

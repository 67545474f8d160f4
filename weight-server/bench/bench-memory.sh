#!/usr/bin/env bash
# Resident memory with 10,000 pods: a generated topology of 1,000 nodes,
# 1,000 services x 10 pods; host reports for every node pushed for a few
# rounds; the server computes with POLICY (default optimal) every second.
# Reads VmRSS / VmHWM from /proc. Target: < 150 MiB.
#   weight-server/bench/bench-memory.sh          (POLICY=optimal ROUNDS=5)
source "$(dirname "$0")/common.sh"
POLICY="${POLICY:-optimal}"
ROUNDS="${ROUNDS:-5}"
NODES=1000 SERVICES=1000 PER=10
build
echo "load before: $(uptime)"
python3 - "$WORK/topology.json" "$NODES" "$SERVICES" "$PER" <<'PY'
import json, sys
path, nodes, services, per = sys.argv[1], *map(int, sys.argv[2:])
t = {"nodes": [{"name": f"node-{i}", "capacity_millicores": 4000} for i in range(nodes)],
     "services": [{"name": f"svc-{s}", "tenant": f"tenant-{s % 100}", "port": 8080,
                   "fair_share_millicores": 500} for s in range(services)], "pods": []}
k = 0
for s in range(services):
    for r in range(per):
        t["pods"].append({"name": f"svc-{s}-{r}", "service": f"svc-{s}", "node": f"node-{k % nodes}",
                          "address": f"10.{k // 65536}.{k // 256 % 256}.{k % 256}:8080"})
        k += 1
json.dump(t, open(path, "w"))
PY
start_server "$WORK/server.log" --topology "$WORK/topology.json" --policy "$POLICY" --insecure-admin --insecure-reports
echo "server pid $SERVER_PID at $ADDR, policy $POLICY, $NODES nodes, $((SERVICES * PER)) pods"
python3 - "$ADDR" "$WORK/topology.json" "$ROUNDS" <<'PY'
import http.client, json, random, sys, time
addr, path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = json.load(open(path))
by_node = {}
for p in t["pods"]:
    by_node.setdefault(p["node"], []).append(p["name"])
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
for r in range(rounds):
    now = int(time.time() * 1000)
    for n in t["nodes"]:
        pods = [{"uid": p, "millicores": random.uniform(50, 400), "sampled_at_ms": now} for p in by_node[n["name"]]]
        body = json.dumps({"node": n["name"], "capacity_millicores": 4000, "used_millicores": random.uniform(500, 3900),
                           "sampled_at_ms": now, "interval_ms": 1000, "pods": pods})
        c.request("POST", "/v1/reports", body, {"content-type": "application/json"})
        resp = c.getresponse(); resp.read()
        assert resp.status == 204, resp.status
    time.sleep(1)
c.request("GET", "/v1/weights"); resp = c.getresponse(); table = json.loads(resp.read())
print("table version", table["version"], "endpoints", sum(len(s["endpoints"]) for s in table["services"].values()))
PY
sleep 3
curl -s "http://$ADDR/metrics" | grep -E '^mplb_solve_seconds_(sum|count)' || true
grep -E 'VmRSS|VmHWM' "/proc/$SERVER_PID/status"
rss_kb="$(awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status")"
hwm_kb="$(awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status")"
echo "RESULT resident memory with 10,000 pods ($POLICY): VmRSS $((rss_kb / 1024)) MiB, VmHWM $((hwm_kb / 1024)) MiB (target < 150 MiB)"
echo "load after: $(uptime)"

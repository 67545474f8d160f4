#!/usr/bin/env python3
"""Check that Envoy loads the filter with each committed WasmPlugin's pluginConfig.

For every WasmPlugin in the given files, writes an Envoy config with a Wasm
HTTP filter running WASM with that pluginConfig (as Istio hands it over: the
JSON of the object) and the WasmPlugin's vmConfig.env, plus the cluster the
config names, and runs `envoy --mode validate` on it. The filter refuses an
unknown key, a wrong type or an out-of-range value at configure time, so a
pluginConfig that drifted from the filter's keys fails here.

Usage: envoy_plugin_config.py ENVOY WASM FILE.yaml...
Prints "N passed, N failed" last.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

TEMPLATE = {
    "static_resources": {
        "listeners": [{
            "name": "check",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "check",
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                        {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
                    "http_filters": [None, {
                        "name": "envoy.filters.http.router",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                    }],
                },
            }]}],
        }],
        "clusters": [],
    }
}


def envoy_config(plugin: dict, wasm: str) -> dict:
    spec = plugin["spec"]
    cfg = json.loads(json.dumps(TEMPLATE))
    env = {}
    for e in (spec.get("vmConfig") or {}).get("env") or []:
        if e.get("valueFrom") == "HOST":
            env.setdefault("host_env_keys", []).append(e["name"])
        else:
            env.setdefault("key_values", {})[e["name"]] = e.get("value", "")
    vm = {"vm_id": plugin["metadata"]["name"], "runtime": "envoy.wasm.runtime.v8",
          "code": {"local": {"filename": wasm}}}
    if env:
        vm["environment_variables"] = env
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0] = {
        "name": "mplb",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": plugin["metadata"]["name"],
                # fail closed here: a refused configuration must fail the check
                "fail_open": False,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps(spec.get("pluginConfig") or {})},
                "vm_config": vm,
            },
        },
    }
    cluster = (spec.get("pluginConfig") or {}).get("weight_server_cluster", "none")
    cfg["static_resources"]["clusters"].append({
        "name": cluster, "type": "STATIC",
        "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}}}}]}]},
    })
    return cfg


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    envoy, wasm, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    passed = failed = 0
    for path in files:
        with open(path) as f:
            plugins = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "WasmPlugin"]
        for plugin in plugins:
            name = f"{path} WasmPlugin/{plugin['metadata']['name']}"
            with tempfile.TemporaryDirectory() as d:
                conf = Path(d) / "envoy.json"
                conf.write_text(json.dumps(envoy_config(plugin, wasm)))
                p = subprocess.run([envoy, "--mode", "validate", "-c", str(conf), "-l", "error"],
                                   capture_output=True, text=True, timeout=120)
            if p.returncode == 0:
                print(f"ok   {name}: Envoy loads the filter with its pluginConfig")
                passed += 1
            else:
                print(f"FAIL {name}: Envoy refused it:\n{p.stdout}{p.stderr}")
                failed += 1
    if passed + failed == 0:
        print("envoy_plugin_config: no WasmPlugin found", file=sys.stderr)
        return 2
    print(f"envoy_plugin_config: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

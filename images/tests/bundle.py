#!/usr/bin/env python3
"""Turns an unpacked image bundle (umoci's config.json) into the OCI runtime
config a kubelet would give the container of a committed manifest: the
user and group of its securityContext, a read-only root filesystem, no
capabilities beyond `add`, no privilege escalation, the manifest's args and
env, and its volumeMounts (read-only where the manifest says so, host paths
supplied by the test), on the host network.

Usage: bundle.py CONFIG MANIFEST CONTAINER [--arg FLAG=VALUE]...
                 [--volume NAME=HOSTDIR]... [--env NAME=VALUE]...
                 [--mount HOSTPATH=DEST]...   (extra read-only bind mounts)
Rewrites CONFIG in place; prints the container's probe paths and port as
JSON ({"probes": ["/readyz", ...], "ports": {"http": 8080}}). Exits 2 with a
reason when the manifest asks for something the image cannot do (e.g. a
root user) or a volume has no host directory.
"""

import json
import sys

import yaml


def fail(msg):
    print(f"bundle.py: {msg}", file=sys.stderr)
    sys.exit(2)


def pairs(values, what):
    out = {}
    for v in values:
        if "=" not in v:
            fail(f"{what} {v!r} is not NAME=VALUE")
        k, val = v.split("=", 1)
        out[k] = val
    return out


def find_container(path, name):
    with open(path, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") not in ("Deployment", "DaemonSet", "StatefulSet"):
                continue
            pod = doc["spec"]["template"]["spec"]
            for c in pod.get("containers", []):
                if c.get("name") == name:
                    return pod, c
    fail(f"no container {name!r} in {path}")
    return None


def main(argv):
    if len(argv) < 4:
        fail(__doc__)
    config_path, manifest, name = argv[1:4]
    opts = {"--arg": [], "--volume": [], "--env": [], "--mount": []}
    rest = argv[4:]
    while rest:
        if rest[0] not in opts or len(rest) < 2:
            fail(f"unknown or incomplete option {rest[0]!r}")
        opts[rest[0]].append(rest[1])
        rest = rest[2:]
    arg_over = pairs(opts["--arg"], "--arg")
    vol_dirs = pairs(opts["--volume"], "--volume")
    env_over = pairs(opts["--env"], "--env")

    pod, c = find_container(manifest, name)
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    proc = cfg["process"]
    sc = dict(pod.get("securityContext") or {})
    sc.update(c.get("securityContext") or {})

    # user and groups
    if "runAsUser" in sc:
        proc["user"]["uid"] = sc["runAsUser"]
    if "runAsGroup" in sc:
        proc["user"]["gid"] = sc["runAsGroup"]
    if sc.get("runAsNonRoot") and proc["user"]["uid"] == 0:
        fail("runAsNonRoot, but the container would run as uid 0")
    if "fsGroup" in sc:
        proc["user"]["additionalGids"] = [sc["fsGroup"]]
    cfg["root"]["readonly"] = bool(sc.get("readOnlyRootFilesystem"))
    if sc.get("allowPrivilegeEscalation") is False:
        proc["noNewPrivileges"] = True
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        fail("the manifest does not drop ALL capabilities")
    keep = ["CAP_" + a.upper() for a in caps.get("add") or []]
    proc["capabilities"] = {k: list(keep) for k in ("bounding", "effective", "permitted")}
    proc["capabilities"]["inheritable"] = []
    proc["capabilities"]["ambient"] = []

    # args: the image's entrypoint, then the manifest's args with overrides
    entry = proc["args"][:1]
    args = []
    for a in c.get("args") or []:
        flag = a.split("=", 1)[0]
        if flag in arg_over:
            args.append(f"{flag}={arg_over.pop(flag)}")
        else:
            args.append(a)
    if arg_over:
        fail(f"--arg for flags the manifest does not pass: {sorted(arg_over)}")
    proc["args"] = entry + args
    proc["terminal"] = False

    env = [e for e in proc.get("env", [])]
    for e in c.get("env") or []:
        if "value" in e:
            env.append(f"{e['name']}={e['value']}")
        elif e["name"] in env_over:
            env.append(f"{e['name']}={env_over[e['name']]}")
        else:
            fail(f"env {e['name']} comes from {list(e)}: give it with --env")
    proc["env"] = env

    # volumes
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for vm in c.get("volumeMounts") or []:
        if vm["name"] not in volumes:
            fail(f"volumeMount {vm['name']} has no volume")
        if vm["name"] not in vol_dirs:
            fail(f"volume {vm['name']} needs a host directory (--volume {vm['name']}=DIR)")
        options = ["rbind", "ro" if vm.get("readOnly") else "rw", "nosuid", "nodev"]
        if vm.get("mountPropagation") == "HostToContainer":
            options.append("rslave")
        cfg["mounts"].append({"destination": vm["mountPath"], "type": "bind",
                              "source": vol_dirs[vm["name"]], "options": options})

    for src, dest in pairs(opts["--mount"], "--mount").items():
        cfg["mounts"].append({"destination": dest, "type": "bind", "source": src,
                              "options": ["rbind", "ro", "nosuid", "nodev"]})

    # host network, as the test reaches it on 127.0.0.1
    lin = cfg.setdefault("linux", {})
    lin["namespaces"] = [n for n in lin.get("namespaces", []) if n["type"] != "network"]

    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)
    probes = [p["httpGet"]["path"] for k in ("readinessProbe", "livenessProbe", "startupProbe")
              if (p := c.get(k)) and "httpGet" in p]
    ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in c.get("ports") or []}
    print(json.dumps({"probes": probes, "ports": ports}))


if __name__ == "__main__":
    main(sys.argv)

"""Validate render-istio output against the Istio CRD schemas.

usage: validate_istio.py CRD_FILE < rendered.yaml
Checks every DestinationRule/VirtualService document against the v1
openAPIV3Schema of its CRD and every Service document for the session label.
Also checks that a broken copy of the first document is rejected, so the
check itself can fail. Prints a summary; exits non-zero on any failure.
"""
import copy
import sys

import jsonschema
import yaml


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def schemas(crd_path):
    out = {}
    for doc in yaml.load_all(open(crd_path), Loader=LOADER):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind = doc["spec"]["names"]["kind"]
        if kind not in ("DestinationRule", "VirtualService"):
            continue
        for v in doc["spec"]["versions"]:
            if v["name"] == "v1":
                out[kind] = v["schema"]["openAPIV3Schema"]
    return out


def main():
    s = schemas(sys.argv[1])
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    counts = {}
    for d in docs:
        kind = d["kind"]
        counts[kind] = counts.get(kind, 0) + 1
        if kind in s:
            assert d["apiVersion"] == "networking.istio.io/v1", d["apiVersion"]
            jsonschema.validate(d, s[kind])
        elif kind == "Service":
            assert d["apiVersion"] == "v1"
            assert d["metadata"]["labels"]["istio.io/persistent-session-header"]
        else:
            raise SystemExit(f"unexpected kind {kind}")
    first = next((d for d in docs if d["kind"] in s), None)
    if first is not None:
        broken = copy.deepcopy(first)
        broken["spec"]["host" if first["kind"] == "DestinationRule" else "hosts"] = 42
        try:
            jsonschema.validate(broken, s[first["kind"]])
        except jsonschema.ValidationError:
            pass
        else:
            raise SystemExit("a broken document passed the schema")
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


main()

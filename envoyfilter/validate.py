#!/usr/bin/env python3
"""Schema check of every manifest in envoyfilter/ (or of the files given).

* Istio resources (apiVersion group *.istio.io) are validated against the
  served version's openAPIV3Schema from the Istio CRDs
  (--crds, else MPLB_ISTIO_CRDS, else customresourcedefinitions.gen.yaml of
  the istio.io/api module istio-harness/go.mod pins, found with `go list -m`
  in the Go module cache; scripts/setup.sh downloads it), with
  unknown fields refused like Kubernetes' strict field validation does.
  `x-kubernetes-*` extensions (CEL rules included) are not evaluated.
* Core resources are validated with PyPI `kubernetes-validate` (offline
  schemas, strict: unknown fields refused) for --k8s-version (default 1.30).
* kustomization.yaml must list exactly the other manifests of its folder.

Run: validate.py [--crds FILE] [--k8s-version V] [PATH ...]
(default: this folder and its subfolders but tests/)
Exit 0 when every document is valid, 1 otherwise; one line per document.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parent / "istio-harness"


def default_crds() -> Path:
    """MPLB_ISTIO_CRDS, else the CRDs of the istio.io/api module the Go
    harness pins (never a file outside the repository and the module cache)."""
    env = os.environ.get("MPLB_ISTIO_CRDS")
    if env:
        return Path(env)
    try:
        out = subprocess.run(
            [os.environ.get("MPLB_GO", "go"), "list", "-m", "-f", "{{.Dir}}", "istio.io/api"],
            cwd=HARNESS, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"validate.py: cannot locate istio.io/api (run scripts/setup.sh, or --crds): {e}")
    return Path(out) / "kubernetes" / "customresourcedefinitions.gen.yaml"

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def strict_schema(schema: object) -> object:
    """OpenAPI v3 (structural) -> JSON schema refusing unknown fields.

    An object schema with `properties` and neither `additionalProperties` nor
    `x-kubernetes-preserve-unknown-fields` gets `additionalProperties: false`,
    as the API server prunes or (strict field validation) rejects such fields.
    """
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
    out.pop("nullable", None)
    return out


class IstioSchemas:
    def __init__(self, crds_path: Path):
        self.by_gvk: dict[tuple[str, str, str], dict] = {}
        with open(crds_path) as f:
            for crd in yaml.load_all(f, Loader=LOADER):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for v in crd["spec"]["versions"]:
                    if not v.get("served", False):
                        continue
                    schema = v.get("schema", {}).get("openAPIV3Schema")
                    if schema is None:
                        continue
                    schema = copy.deepcopy(schema)
                    # the CRD schema covers spec/status; apiVersion, kind and
                    # metadata are checked by the API server itself
                    props = schema.setdefault("properties", {})
                    props.setdefault("apiVersion", {"type": "string"})
                    props.setdefault("kind", {"type": "string"})
                    props["metadata"] = {"type": "object"}
                    self.by_gvk[(group, v["name"], kind)] = strict_schema(schema)
        if not self.by_gvk:
            raise SystemExit(f"validate.py: no CRD schema in {crds_path}")

    def check(self, doc: dict) -> None:
        group, _, version = doc["apiVersion"].rpartition("/")
        schema = self.by_gvk.get((group, version, doc["kind"]))
        if schema is None:
            raise ValueError(f"no served CRD version for {doc['apiVersion']} {doc['kind']}")
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "<root>"
            raise ValueError(f"{where}: {e.message}")


def check_metadata(doc: dict) -> None:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ValueError("metadata.name is missing")
    for key in ("name", "namespace"):
        v = meta.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > 253 or not DNS1123.match(v)):
            raise ValueError(f"metadata.{key} {v!r} is not a DNS-1123 name")
    for key in ("labels", "annotations"):
        for k, v in (meta.get(key) or {}).items():
            if not isinstance(v, str):
                raise ValueError(f"metadata.{key}.{k} must be a string, got {type(v).__name__}")


def check_kustomization(path: Path) -> list[str]:
    with open(path) as f:
        k = yaml.safe_load(f)
    problems = []
    listed = set(k.get("resources") or [])
    for r in sorted(listed):
        if not (path.parent / r).is_file():
            problems.append(f"lists {r}, which does not exist")
    present = {p.name for p in path.parent.glob("*.yaml") if p.name != path.name}
    for p in sorted(present - listed):
        problems.append(f"does not list {p}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, default=[HERE])
    ap.add_argument("--crds", type=Path, default=None)
    ap.add_argument("--k8s-version", default=os.environ.get("MPLB_K8S_VERSION", "1.30.0"))
    args = ap.parse_args()
    if args.crds is None:
        args.crds = default_crds()

    if not args.crds.is_file():
        print(f"validate.py: Istio CRDs not found at {args.crds} (--crds or MPLB_ISTIO_CRDS)", file=sys.stderr)
        return 2
    istio = IstioSchemas(args.crds)

    files: list[Path] = []
    for p in args.paths:
        if p.is_dir():
            files.extend(f for f in sorted(p.rglob("*.yaml")) if "tests" not in f.relative_to(p).parts)
        else:
            files.append(p)
    if not files:
        print("validate.py: no YAML file to check", file=sys.stderr)
        return 2

    failed = checked = 0
    for path in files:
        if path.name == "kustomization.yaml":
            checked += 1
            problems = check_kustomization(path)
            for pr in problems:
                print(f"FAIL {path}: kustomization {pr}")
            failed += bool(problems)
            if not problems:
                print(f"ok   {path}: kustomization")
            continue
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            print(f"FAIL {path}: not YAML: {e}")
            failed += 1
            checked += 1
            continue
        if not docs:
            print(f"FAIL {path}: no document")
            failed += 1
            checked += 1
        for i, doc in enumerate(docs):
            checked += 1
            label = f"{path}[{i}]"
            try:
                if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                    raise ValueError("not a Kubernetes object (apiVersion/kind missing)")
                label = f"{path}[{i}] {doc['kind']}/{(doc.get('metadata') or {}).get('name')}"
                check_metadata(doc)
                if doc["apiVersion"].split("/")[0].endswith("istio.io"):
                    istio.check(doc)
                    how = "istio crd"
                else:
                    kubernetes_validate.validate(doc, args.k8s_version, strict=True)
                    how = f"k8s {args.k8s_version}"
                print(f"ok   {label} ({how})")
            except (ValueError, kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
                msg = getattr(e, "message", None) or str(e)
                print(f"FAIL {label}: {msg}")
                failed += 1
    print(f"validate.py: {checked - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

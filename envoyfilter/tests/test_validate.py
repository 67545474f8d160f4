"""validate.py must pass the committed manifests and fail broken ones.

Run: <venv>/bin/python envoyfilter/tests/test_validate.py
(needs kubernetes-validate, jsonschema, pyyaml: scripts/setup.sh's venv).
Prints "N passed, N failed" last.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
VALIDATE = HERE.parent / "validate.py"

GOOD_WASMPLUGIN = (HERE.parent / "hotel" / "wasmplugin-sidecar.yaml").read_text()
GOOD_DEPLOYMENT = (HERE.parent / "weight-server.yaml").read_text()


def run(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(VALIDATE), *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


class Validate(unittest.TestCase):
    def test_committed_manifests_pass(self):
        p = run()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(" 0 failed", p.stdout)
        for kind in ("WasmPlugin", "DestinationRule", "VirtualService", "Deployment",
                     "DaemonSet", "StatefulSet", "ClusterRole", "Sidecar"):
            self.assertIn(kind + "/", p.stdout, f"no {kind} checked")

    def bad(self, text: str, expect: str, name: str = "bad.yaml") -> None:
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / name
            f.write_text(textwrap.dedent(text))
            p = run(f)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAIL", p.stdout)
        self.assertIn(expect, p.stdout)

    def test_wasmplugin_unknown_field(self):
        self.bad(GOOD_WASMPLUGIN.replace("failStrategy:", "failStrategey:"), "failStrategey")

    def test_wasmplugin_bad_enum(self):
        self.bad(GOOD_WASMPLUGIN.replace("FAIL_OPEN", "FAIL_SOMETIMES"), "FAIL_SOMETIMES")

    def test_wasmplugin_bad_match_mode(self):
        self.bad(GOOD_WASMPLUGIN.replace("mode: CLIENT", "mode: OUTBOUND"), "OUTBOUND")

    def test_wasmplugin_env_wrong_type(self):
        self.bad(GOOD_WASMPLUGIN.replace("valueFrom: HOST", "valueFrom: [HOST]"), "valueFrom")

    def test_virtualservice_wrong_type(self):
        self.bad("""\
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: x, namespace: hotel}
            spec:
              hosts: profile.hotel.svc.cluster.local
            """, "hosts")

    def test_unknown_istio_version(self):
        self.bad("""\
            apiVersion: networking.istio.io/v9
            kind: VirtualService
            metadata: {name: x}
            spec: {hosts: [a]}
            """, "no served CRD version")

    def test_deployment_wrong_type(self):
        self.bad(GOOD_DEPLOYMENT.replace("replicas: 2", "replicas: two"), "Deployment/weight-server")

    def test_deployment_unknown_container_field(self):
        self.bad(GOOD_DEPLOYMENT.replace("readinessProbe:", "readynessProbe:"), "readynessProbe")

    def test_label_must_be_string(self):
        self.bad("""\
            apiVersion: v1
            kind: Namespace
            metadata: {name: x, labels: {mplb.io/managed: true}}
            """, "must be a string")

    def test_missing_name(self):
        self.bad("""\
            apiVersion: v1
            kind: ServiceAccount
            metadata: {namespace: x}
            """, "metadata.name")

    def test_not_yaml(self):
        self.bad("a: [b\n", "not YAML")

    def test_kustomization_must_list_every_manifest(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "a.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
            (Path(d) / "b.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")
            (Path(d) / "kustomization.yaml").write_text("resources: [a.yaml, c.yaml]\n")
            p = run(Path(d))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("does not list b.yaml", p.stdout)
        self.assertIn("lists c.yaml, which does not exist", p.stdout)


class HotelGateway(unittest.TestCase):
    def test_gateway_routes_use_generated_subsets(self):
        import yaml
        routing = list(yaml.safe_load_all((HERE.parent / "hotel" / "hotel-routing.yaml").read_text()))
        subsets = {s["name"] for d in routing if d and d["kind"] == "DestinationRule"
                   and d["spec"]["host"] == "frontend.hotel.svc.cluster.local"
                   for s in d["spec"].get("subsets", [])}
        self.assertTrue(subsets, "no frontend DestinationRule in hotel-routing.yaml")
        gw = list(yaml.safe_load_all((HERE.parent / "hotel" / "hotel-gateway.yaml").read_text()))
        used = {r["route"][0]["destination"].get("subset") for d in gw if d["kind"] == "VirtualService"
                for r in d["spec"]["http"]} - {None}
        self.assertEqual(used, subsets)


class HotelApp(unittest.TestCase):
    def test_statefulsets_match_the_hotel_topology(self):
        """hotel-app.yaml runs exactly the pods and ports of examples/hotel-topology.yaml,
        which hotel-routing.yaml is generated from."""
        import yaml
        topo = yaml.safe_load((HERE.parent.parent / "examples" / "hotel-topology.yaml").read_text())
        want_ports = {s["name"]: s["port"] for s in topo["services"]}
        want_pods = sorted(p["name"] for p in topo["pods"])
        docs = list(yaml.safe_load_all((HERE.parent / "hotel" / "hotel-app.yaml").read_text()))
        pods, ports = [], {}
        for d in docs:
            if d["kind"] == "StatefulSet":
                name = d["metadata"]["name"]
                pods += [f"{name}-{i}" for i in range(d["spec"]["replicas"])]
                labels = d["spec"]["template"]["metadata"]["labels"]
                self.assertEqual(labels.get("mplb.io/managed"), "true", name)
                self.assertEqual(labels.get("app"), name)
                self.assertEqual(d["metadata"]["namespace"], "hotel")
                c = d["spec"]["template"]["spec"]["containers"][0]
                ports[name] = c["ports"][0]["containerPort"]
            if d["kind"] == "Service":
                self.assertEqual(d["spec"]["ports"][0]["port"], want_ports[d["metadata"]["name"]])
            if d["kind"] == "Namespace":
                self.assertEqual(d["metadata"]["labels"].get("istio-injection"), "enabled")
        self.assertEqual(sorted(pods), want_pods)
        self.assertEqual(ports, want_ports)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"envoyfilter validate: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

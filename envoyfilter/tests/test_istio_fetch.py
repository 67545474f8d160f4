"""istio_fetch.py refuses what Istio refuses and accepts what it accepts.

Builds tiny OCI layouts by hand. Run: python3 envoyfilter/tests/test_istio_fetch.py
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import istio_fetch  # noqa: E402

WASM = b"\x00asm\x01\x00\x00\x00" + b"module-bytes"


def tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Layout:
    def __init__(self, d: str):
        self.d = d
        os.makedirs(os.path.join(d, "blobs", "sha256"))

    def put(self, data: bytes) -> dict:
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.d, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return {"digest": f"sha256:{h}", "size": len(data)}

    def image(self, layers: list[tuple[str, bytes]], manifest_mt: str | None = None) -> str:
        cfg = self.put(b"{}")
        m = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
             "layers": [{"mediaType": mt, **self.put(data)} for mt, data in layers]}
        if manifest_mt:
            m["mediaType"] = manifest_mt
        desc = self.put(json.dumps(m).encode())
        with open(os.path.join(self.d, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [
                {"mediaType": manifest_mt or "application/vnd.oci.image.manifest.v1+json", **desc,
                 "annotations": {"org.opencontainers.image.ref.name": "t"}}]}, f)
        return desc["digest"]


class IstioFetch(unittest.TestCase):
    def layout(self) -> Layout:
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        return Layout(self.tmp.name)

    def test_compat_single_gzip_layer(self):
        lay = self.layout()
        digest = lay.image([(istio_fetch.OCI_LAYER, gzip.compress(tar_of("plugin.wasm", WASM)))])
        self.assertEqual(istio_fetch.fetch(lay.d, "t"), (WASM, digest, "compat"))

    def test_compat_plugin_in_subdir_and_last_layer_wins(self):
        lay = self.layout()
        lay.image([(istio_fetch.OCI_LAYER, gzip.compress(tar_of("plugin.wasm", b"\x00asm\x01\x00\x00\x00old"))),
                   (istio_fetch.OCI_LAYER, gzip.compress(tar_of("./x/plugin.wasm", WASM)))])
        self.assertEqual(istio_fetch.fetch(lay.d, "t")[0], WASM)

    def test_docker_manifest(self):
        lay = self.layout()
        lay.image([(istio_fetch.DOCKER_LAYER, gzip.compress(tar_of("plugin.wasm", WASM)))],
                  manifest_mt=istio_fetch.DOCKER_MANIFEST)
        self.assertEqual(istio_fetch.fetch(lay.d, "t")[2], "docker")

    def test_uncompressed_layer_refused(self):
        # what `buildah commit` to an oci: directory writes (push compresses)
        lay = self.layout()
        lay.image([("application/vnd.oci.image.layer.v1.tar", tar_of("plugin.wasm", WASM))])
        with self.assertRaisesRegex(istio_fetch.Refused, "invalid media type"):
            istio_fetch.fetch(lay.d, "t")

    def test_missing_plugin_wasm_refused(self):
        lay = self.layout()
        lay.image([(istio_fetch.OCI_LAYER, gzip.compress(tar_of("filter.wasm", WASM)))])
        with self.assertRaisesRegex(istio_fetch.Refused, "plugin.wasm not found"):
            istio_fetch.fetch(lay.d, "t")

    def test_two_layer_artifact(self):
        lay = self.layout()
        lay.image([("application/vnd.module.wasm.config.v1+json", b"{}"), (istio_fetch.WASM_LAYER, WASM)])
        self.assertEqual(istio_fetch.fetch(lay.d, "t")[0::2], (WASM, "artifact"))

    def test_one_layer_artifact_refused(self):
        lay = self.layout()
        lay.image([(istio_fetch.WASM_LAYER, WASM)])
        with self.assertRaisesRegex(istio_fetch.Refused, "must be 2 but got 1"):
            istio_fetch.fetch(lay.d, "t")

    def test_not_wasm_refused(self):
        lay = self.layout()
        lay.image([(istio_fetch.OCI_LAYER, gzip.compress(tar_of("plugin.wasm", b"#!/bin/sh\necho hi\n")))])
        with self.assertRaisesRegex(istio_fetch.Refused, "invalid"):
            istio_fetch.fetch(lay.d, "t")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"istio_fetch: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

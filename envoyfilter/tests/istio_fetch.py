#!/usr/bin/env python3
"""Extract plugin.wasm from an image the way Istio's agent does.

Mirrors istio/istio pkg/wasm/imagefetcher.go on an OCI image layout (what
`skopeo copy docker://... oci:DIR:TAG` writes), deciding by media types:
  1. manifest mediaType application/vnd.docker.distribution.manifest.v2+json:
     the LAST layer must be application/vnd.docker.image.rootfs.diff.tar.gzip;
     plugin.wasm is searched (by base name) in that tar.gz;
  2. else "compat": the LAST layer must be application/vnd.oci.image.layer.v1.tar+gzip,
     same search;
  3. else the Wasm OCI artifact: exactly 2 layers, one of them
     application/vnd.module.wasm.content.layer.v1+wasm, taken raw.
Then, like pkg/wasm/cache.go, the bytes must start with the Wasm magic.

Usage: istio_fetch.py LAYOUT_DIR TAG OUT_FILE
Prints "digest=sha256:<manifest digest> variant=<docker|compat|artifact>".
Exit 1 with the reasons (as Istio would refuse) when nothing matches.
"""

import gzip
import io
import json
import os
import sys
import tarfile

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
WASM_MAGIC = b"\x00asm"


class Refused(Exception):
    pass


def blob(layout: str, digest: str) -> bytes:
    algo, _, hexd = digest.partition(":")
    with open(os.path.join(layout, "blobs", algo, hexd), "rb") as f:
        return f.read()


def plugin_from_targz(data: bytes) -> bytes:
    try:
        raw = gzip.decompress(data)
    except OSError as e:
        raise Refused(f"failed to parse layer as tar.gz: {e}")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for member in tar:
            if os.path.basename(member.name) == "plugin.wasm":
                f = tar.extractfile(member)
                if f is None:
                    raise Refused("plugin.wasm is not a regular file")
                return f.read()
    raise Refused("plugin.wasm not found in the archive")


def last_layer(layout: str, manifest: dict, want: str) -> bytes:
    layers = manifest.get("layers") or []
    if not layers:
        raise Refused("number of layers must be greater than zero")
    mt = layers[-1].get("mediaType")
    if mt != want:
        raise Refused(f"invalid media type {mt} (expect {want})")
    return plugin_from_targz(blob(layout, layers[-1]["digest"]))


def artifact(layout: str, manifest: dict) -> bytes:
    layers = manifest.get("layers") or []
    if len(layers) != 2:
        raise Refused(f"number of layers must be 2 but got {len(layers)}")
    for layer in layers:
        if layer.get("mediaType") == WASM_LAYER:
            return blob(layout, layer["digest"])
    raise Refused(f"could not find the layer of type {WASM_LAYER}")


def fetch(layout: str, tag: str) -> tuple[bytes, str, str]:
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    desc = next((m for m in index.get("manifests", [])
                 if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag), None)
    if desc is None:
        raise Refused(f"tag {tag} not in {layout}")
    manifest = json.loads(blob(layout, desc["digest"]))
    if manifest.get("mediaType") == DOCKER_MANIFEST:
        data, variant = last_layer(layout, manifest, DOCKER_LAYER), "docker"
    else:
        errors = []
        data = None
        try:
            data, variant = last_layer(layout, manifest, OCI_LAYER), "compat"
        except Refused as e:
            errors.append(f"could not parse as compat variant: {e}")
        if data is None:
            try:
                data, variant = artifact(layout, manifest), "artifact"
            except Refused as e:
                errors.append(f"could not parse as oci variant: {e}")
        if data is None:
            raise Refused("the given image is in invalid format as an OCI image: " + "; ".join(errors))
    if len(data) < 8 or data[:4] != WASM_MAGIC:
        raise Refused("fetched Wasm binary is invalid")
    return data, desc["digest"], variant


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    layout, tag, out = sys.argv[1:]
    try:
        data, digest, variant = fetch(layout, tag)
    except Refused as e:
        print(f"istio_fetch: refused: {e}", file=sys.stderr)
        return 1
    with open(out, "wb") as f:
        f.write(data)
    print(f"digest={digest} variant={variant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Builds the multiparty-lb filter (wasm32-wasip1, wasm-release profile),
# shrinks it with wasm-opt -Oz when binaryen is installed, checks that Envoy
# loads it (envoy --mode validate), packages it as an OCI image Istio's
# WasmPlugin accepts, and pushes it (or writes an OCI layout with --no-push).
# Run with --help for the options.
# The weight-server and host-agent images (static, multi-arch, SBOM) are
# built by images/build.sh, which this script runs after the filter's.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/filter/wasm/Cargo.toml" | head -1)"

usage() {
  cat <<USAGE
usage: $(basename "$0") [options]

Builds and pushes the three images: the filter (mplb-filter), weight-server
and host-agent (the last two by images/build.sh: static musl binaries for
linux/amd64 + linux/arm64 in one index, OCI labels, a CycloneDX SBOM pushed
beside each; see images/README.md).

Which:
  --only NAME          filter | weight-server | host-agent: build just that one
                       (default all three)
  --platforms P        servers: linux/amd64,linux/arm64 (default both)
Build (filter):
  --wasm FILE          package this module instead of building the filter (env MPLB_WASM)
  --no-opt             skip wasm-opt even when binaryen is installed
  --out-dir DIR        work/output directory (env MPLB_OUT_DIR,
                       default \${CARGO_TARGET_DIR:-target}/mplb-plugin)
Package:
  --format F           compat (default): one tar+gzip layer holding plugin.wasm;
                       artifact: the two-layer Wasm OCI artifact (config + wasm layer)
                       (env MPLB_OCI_FORMAT)
  --packager P         auto (default) | docker | podman | buildah | umoci
                       (env MPLB_PACKAGER; auto: a working docker/podman engine,
                       else buildah --storage-driver vfs, else umoci + skopeo)
Push:
  --registry R         e.g. ghcr.io/multiparty-lb or 127.0.0.1:5000 (env REGISTRY);
                       the servers are pushed as R/weight-server and R/host-agent
  --image I            the filter's image (env IMAGE, default mplb-filter)
  --tag T              (env TAG, default each crate's version: $crate_version)
  --insecure           plain-HTTP / unverified-TLS registry
  --no-push            write an OCI layout to OUT_DIR/oci (tag T) instead of pushing
                       (servers: OUT_DIR/NAME/oci)
  --update-manifests [DIR]
                       rewrite the WasmPlugin url + sha256 in DIR (default:
                       envoyfilter/) to oci://REGISTRY/IMAGE@<digest>, and the
                       Deployment's and DaemonSet's image to
                       REGISTRY/NAME@<index digest>; with --no-push the digest
                       is the layout's, which skopeo keeps when it later
                       copies the layout to REGISTRY
  -h, --help           this text

Prints, on stdout, shell-sourceable lines:
  PLUGIN_WASM=<path>  PLUGIN_SHA256=<hex of plugin.wasm>  IMAGE=<ref:tag>
  IMAGE_DIGEST=sha256:<hex>  WASMPLUGIN_URL=oci://<ref>@sha256:<hex>
  WASMPLUGIN_SHA256=<hex>
  and per server (WEIGHT_SERVER_, HOST_AGENT_): IMAGE DIGEST LAYOUT SBOM SBOM_REF
For an oci:// url, Istio compares the WasmPlugin's sha256 field with the
image (manifest) digest, not with plugin.wasm's hash: WASMPLUGIN_SHA256 is
therefore the manifest digest. PLUGIN_SHA256 is what an http(s):// url of the
raw module would need.
USAGE
}

log() { printf '[build-and-push] %s\n' "$*" >&2; }
die() { printf '[build-and-push] error: %s\n' "$*" >&2; exit 1; }

wasm_in="${MPLB_WASM:-}"
opt=1
out_dir="${MPLB_OUT_DIR:-${CARGO_TARGET_DIR:-$repo/target}/mplb-plugin}"
format="${MPLB_OCI_FORMAT:-compat}"
packager="${MPLB_PACKAGER:-auto}"
registry="${REGISTRY:-}"
image="${IMAGE:-mplb-filter}"
tag="${TAG:-$crate_version}"
insecure=0
push=1
update_dir=""
only=all
platforms=""
tag_given="${TAG:+1}"

while [ $# -gt 0 ]; do
  case "$1" in
    --wasm) wasm_in="$2"; shift 2 ;;
    --no-opt) opt=0; shift ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    --format) format="$2"; shift 2 ;;
    --packager) packager="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --tag) tag="$2"; tag_given=1; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --platforms) platforms="$2"; shift 2 ;;
    --insecure) insecure=1; shift ;;
    --no-push) push=0; shift ;;
    --update-manifests)
      if [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; then update_dir="$2"; shift 2
      else update_dir="$repo/envoyfilter"; shift; fi ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# ---- the server images (images/build.sh) -------------------------------------
server_images() { # names...
  local a=() n
  for n in "$@"; do a+=(--only "$n"); done
  [ -z "$registry" ] || a+=(--registry "$registry")
  [ -z "$tag_given" ] || a+=(--tag "$tag")
  [ -z "$platforms" ] || a+=(--platforms "$platforms")
  [ "$insecure" = 0 ] || a+=(--insecure)
  [ "$push" = 1 ] || a+=(--no-push)
  [ -z "$update_dir" ] || a+=(--update-manifests "$update_dir")
  "$repo/images/build.sh" "${a[@]}" --out-dir "$out_dir"
}
case "$only" in
  all|filter) ;;
  weight-server|host-agent) server_images "$only"; exit 0 ;;
  *) die "--only: filter | weight-server | host-agent" ;;
esac

case "$format" in compat|artifact) ;; *) die "--format must be compat or artifact" ;; esac
case "$packager" in auto|docker|podman|buildah|umoci) ;; *) die "--packager: auto|docker|podman|buildah|umoci" ;; esac
if [ "$push" = 1 ] && [ -z "$registry" ]; then die "--registry (or REGISTRY) is required unless --no-push"; fi
[ -z "$update_dir" ] || [ -n "$registry" ] || die "--update-manifests needs --registry (the url names it)"
command -v jq >/dev/null || die "jq is missing (scripts/setup.sh installs it)"

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
work="$(mktemp -d "$out_dir/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- 1. build -------------------------------------------------------------
if [ -z "$wasm_in" ]; then
  log "cargo build -p mplb-filter --target wasm32-wasip1 --profile wasm-release"
  (cd "$repo" && cargo build -q -p mplb-filter --target wasm32-wasip1 --profile wasm-release >&2)
  wasm_in="${CARGO_TARGET_DIR:-$repo/target}/wasm32-wasip1/wasm-release/mplb_filter.wasm"
fi
[ -f "$wasm_in" ] || die "wasm module not found: $wasm_in"
plugin="$out_dir/plugin.wasm"

# wasm-opt must be told the exact features rustc's wasm32-wasip1 output uses:
# --all-features lets it emit instructions Envoy's V8 refuses to load.
WASM_OPT_FEATURES=(--enable-bulk-memory --enable-sign-ext
  --enable-nontrapping-float-to-int --enable-mutable-globals)
if [ "$opt" = 1 ] && command -v wasm-opt >/dev/null; then
  log "wasm-opt -Oz ${WASM_OPT_FEATURES[*]}"
  wasm-opt -Oz "${WASM_OPT_FEATURES[@]}" "$wasm_in" -o "$work/plugin.wasm" \
    || die "wasm-opt failed (a feature the module uses is not enabled?); retry with --no-opt"
  log "size: $(stat -c %s "$wasm_in") -> $(stat -c %s "$work/plugin.wasm") bytes"
else
  [ "$opt" = 0 ] || log "wasm-opt not installed (apt binaryen): packaging the module unoptimised"
  cp "$wasm_in" "$work/plugin.wasm"
fi

# ---- 2. check Envoy loads it ---------------------------------------------
# The validation config is built by the project's Envoy harness (mplb-lab validate-wasm).
cluster='outbound|8080||weight-server.mplb-system.svc.cluster.local'
log "envoy --mode validate with the module loaded (mplb-lab validate-wasm)"
if ! (cd "$repo" && cargo run -q -p mplb-lab --bin mplb-lab -- validate-wasm \
    --wasm "$work/plugin.wasm" --weight-server-cluster "$cluster") >"$work/envoy-validate.log" 2>&1; then
  cat "$work/envoy-validate.log" >&2
  die "Envoy refused the module"
fi
cp "$work/plugin.wasm" "$plugin"
plugin_sha="$(sha256_of "$plugin")"
log "plugin.wasm $(stat -c %s "$plugin") bytes, sha256 $plugin_sha"

# ---- 3. package -------------------------------------------------------------
engine_works() { command -v "$1" >/dev/null && timeout 20 "$1" info >/dev/null 2>&1; }
if [ "$packager" = auto ]; then
  if [ "$format" = artifact ]; then packager=layout
  elif [ "$push" = 1 ] && engine_works docker; then packager=docker
  elif engine_works podman; then packager=podman
  elif command -v buildah >/dev/null; then packager=buildah
  elif command -v umoci >/dev/null; then packager=umoci
  else die "no packager: install buildah, or umoci + skopeo (scripts/setup.sh installs umoci, skopeo)"; fi
elif [ "$format" = artifact ]; then
  die "--format artifact is written directly as an OCI layout: leave --packager at auto"
fi
ref="${registry:+$registry/}$image"
layout="$out_dir/oci"
digest_file="$work/digest"
log "packaging $format image with $packager"

# a fresh single-tag OCI layout at $layout holding $ref:$tag
reset_layout() { rm -rf "$layout"; }

skopeo_push() { # $1: source (oci:DIR:TAG)
  command -v skopeo >/dev/null || die "skopeo is missing (scripts/setup.sh installs it)"
  local tls=()
  [ "$insecure" = 1 ] && tls=(--dest-tls-verify=false)
  skopeo copy -q "${tls[@]}" --digestfile "$digest_file" "$1" "docker://$ref:$tag" >&2
}

case "$packager" in
  docker|podman)
    printf 'FROM scratch\nCOPY plugin.wasm ./\n' >"$work/Containerfile"
    cp "$plugin" "$work/plugin.wasm"
    "$packager" build -q -f "$work/Containerfile" -t "$ref:$tag" "$work" >&2
    if [ "$push" = 1 ]; then
      tls=(); [ "$packager" = podman ] && [ "$insecure" = 1 ] && tls=(--tls-verify=false)
      "$packager" push "${tls[@]}" "$ref:$tag" | tee "$work/push.log" >&2
      grep -o 'sha256:[0-9a-f]\{64\}' "$work/push.log" | tail -1 >"$digest_file"
    else
      reset_layout
      [ "$packager" = podman ] || die "docker cannot write an OCI layout: use --packager buildah|umoci with --no-push"
      podman push --digestfile "$digest_file" "$ref:$tag" "oci:$layout:$tag" >&2
    fi
    ;;
  buildah)
    store="$work/buildah"
    b=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
    export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
    ctr="$("${b[@]}" from scratch)"
    "${b[@]}" copy "$ctr" "$plugin" /plugin.wasm >&2
    "${b[@]}" commit -q --format oci "$ctr" "localhost/mplb-plugin:build" >/dev/null
    # push compresses the layer: application/vnd.oci.image.layer.v1.tar+gzip
    if [ "$push" = 1 ]; then
      tls=(); [ "$insecure" = 1 ] && tls=(--tls-verify=false)
      "${b[@]}" push -q "${tls[@]}" --format oci --compression-format gzip \
        --digestfile "$digest_file" "localhost/mplb-plugin:build" "docker://$ref:$tag" >&2
    else
      reset_layout
      "${b[@]}" push -q --format oci --compression-format gzip \
        --digestfile "$digest_file" "localhost/mplb-plugin:build" "oci:$layout:$tag" >&2
    fi
    "${b[@]}" rm -a >/dev/null 2>&1 || true
    "${b[@]}" rmi -a -f >/dev/null 2>&1 || true
    ;;
  umoci)
    command -v umoci >/dev/null || die "umoci is missing (scripts/setup.sh installs it)"
    reset_layout
    # a deterministic tar holding only plugin.wasm (root-owned, mtime 0)
    mkdir -p "$work/rootfs" && cp "$plugin" "$work/rootfs/plugin.wasm"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      -C "$work/rootfs" -cf "$work/layer.tar" plugin.wasm
    umoci init --layout "$layout"
    umoci new --image "$layout:$tag"
    # raw add-layer gzips the tar: one application/vnd.oci.image.layer.v1.tar+gzip layer
    umoci raw add-layer --image "$layout:$tag" "$work/layer.tar"
    if [ "$push" = 1 ]; then skopeo_push "oci:$layout:$tag"; fi
    ;;
  layout)
    # The two-layer Wasm OCI artifact: a runtime-config layer and the raw
    # module (application/vnd.module.wasm.content.layer.v1+wasm). Istio refuses
    # a one-layer artifact, so both layers are always written.
    reset_layout
    mkdir -p "$layout/blobs/sha256"
    put_blob() { # $1 file -> prints digest hex, stores the blob
      local h; h="$(sha256_of "$1")"; cp "$1" "$layout/blobs/sha256/$h"; echo "$h"
    }
    printf '{"type":"envoy_proxy","abiVersions":["proxy_abi_version_0_2_1"],"config":{"root_ids":[""]}}' \
      >"$work/runtime-config.json"
    cfg="$(put_blob "$work/runtime-config.json")"
    mod="$(put_blob "$plugin")"
    cfg_size="$(stat -c %s "$work/runtime-config.json")"
    mod_size="$(stat -c %s "$plugin")"
    jq -cn --arg cfg "sha256:$cfg" --argjson cs "$cfg_size" --arg mod "sha256:$mod" --argjson ms "$mod_size" '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.module.wasm.config.v1+json", digest: $cfg, size: $cs},
      layers: [
        {mediaType: "application/vnd.module.wasm.config.v1+json", digest: $cfg, size: $cs,
         annotations: {"org.opencontainers.image.title": "runtime-config.json"}},
        {mediaType: "application/vnd.module.wasm.content.layer.v1+wasm", digest: $mod, size: $ms,
         annotations: {"org.opencontainers.image.title": "plugin.wasm"}}
      ]}' >"$work/manifest.json"
    man="$(put_blob "$work/manifest.json")"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    jq -cn --arg d "sha256:$man" --argjson s "$(stat -c %s "$work/manifest.json")" --arg t "$tag" \
      '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $t}}]}' >"$layout/index.json"
    echo "sha256:$man" >"$digest_file"
    if [ "$push" = 1 ]; then skopeo_push "oci:$layout:$tag"; fi
    ;;
esac

if [ ! -s "$digest_file" ]; then
  # the layout's manifest digest for the tag (umoci --no-push)
  jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
    "$layout/index.json" >"$digest_file"
fi
digest="$(tr -d '[:space:]' <"$digest_file")"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "could not determine the image digest (got '$digest')"

if [ "$push" = 1 ]; then log "pushed $ref:$tag@$digest"; else log "OCI layout $layout (tag $tag), digest $digest"; fi

# ---- 4. optionally pin the WasmPlugins --------------------------------------
if [ -n "$update_dir" ]; then
  n=0
  while IFS= read -r f; do
    sed -i -E \
      -e "s#^(  url: )oci://.*#\\1oci://$ref@$digest#" \
      -e "s#^(  sha256: ).*#\\1\"${digest#sha256:}\"#" "$f"
    log "pinned $f"
    n=$((n + 1))
  done < <(grep -rl --include='*.yaml' '^kind: WasmPlugin' "$update_dir" | sort)
  [ "$n" -gt 0 ] || die "no WasmPlugin manifest in $update_dir"
fi

echo "PLUGIN_WASM=$plugin"
echo "PLUGIN_SHA256=$plugin_sha"
echo "IMAGE=$ref:$tag"
echo "IMAGE_DIGEST=$digest"
echo "WASMPLUGIN_URL=oci://$ref@$digest"
if [ "$push" = 0 ]; then echo "OCI_LAYOUT=$layout"; fi
echo "WASMPLUGIN_SHA256=${digest#sha256:}"
if [ "$only" = all ]; then server_images weight-server host-agent; fi

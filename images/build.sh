#!/usr/bin/env bash
# Builds the weight-server and host-agent container images without a daemon:
# static musl binaries for linux/amd64 and linux/arm64 (cargo, cross C
# compiler for the TLS crates' C parts), one layer each (the binary, the CA
# bundle, /etc/passwd with the non-root user 65532), OCI labels, one
# multi-arch index per image, written as an OCI layout by hand (images/oci.sh)
# so that two builds of one commit give one digest; a CycloneDX SBOM from
# Cargo.lock beside each image (a file, and pushed as an OCI artifact whose
# subject is the image). Pushes with skopeo. build-and-push.sh calls it.
# Run with --help for the options.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=images/oci.sh
. "$here/oci.sh"

ALL_IMAGES=(weight-server host-agent)

usage() {
  cat <<USAGE
usage: images/build.sh [options]      (build-and-push.sh runs it for the servers)

  --only NAME          weight-server | host-agent (default: both)
  --registry R         e.g. ghcr.io/multiparty-lb or 127.0.0.1:5000 (env REGISTRY)
  --tag T              (env TAG; default: each crate's version)
  --platforms P        comma list of linux/amd64, linux/arm64 (default both)
  --insecure           plain-HTTP / unverified-TLS registry
  --no-push            only write the OCI layouts (OUT_DIR/NAME/oci)
  --out-dir DIR        (env MPLB_IMAGES_OUT_DIR, default \${CARGO_TARGET_DIR:-target}/mplb-images)
  --update-manifests [DIR]
                       rewrite the images of the Deployment and the DaemonSet in
                       DIR (default envoyfilter/) to REGISTRY/NAME@<index digest>
  --source-url URL     org.opencontainers.image.source label (env MPLB_SOURCE_URL,
                       default https://github.com/multiparty-lb/multiparty-lb)
  -h, --help           this text

Per image NAME (upper case, _ for -) it prints shell-sourceable lines:
  NAME_IMAGE=<ref:tag> NAME_DIGEST=sha256:<index> NAME_LAYOUT=<dir>
  NAME_SBOM=<file> NAME_SBOM_REF=<ref:sha256-<hex>.sbom> (pushed only)
The index digest does not depend on the time or the machine's paths: labels
and times come from the commit (SOURCE_DATE_EPOCH overrides the time).
USAGE
}

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

only=()
registry="${REGISTRY:-}"
tag="${TAG:-}"
platforms="linux/amd64,linux/arm64"
insecure=0
push=1
out_dir="${MPLB_IMAGES_OUT_DIR:-${CARGO_TARGET_DIR:-$repo/target}/mplb-images}"
update_dir=""
source_url="${MPLB_SOURCE_URL:-https://github.com/multiparty-lb/multiparty-lb}"

while [ $# -gt 0 ]; do
  case "$1" in
    --only) only+=("$2"); shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --platforms) platforms="$2"; shift 2 ;;
    --insecure) insecure=1; shift ;;
    --no-push) push=0; shift ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    --update-manifests)
      if [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; then update_dir="$2"; shift 2
      else update_dir="$repo/envoyfilter"; shift; fi ;;
    --source-url) source_url="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[ "${#only[@]}" -gt 0 ] || only=("${ALL_IMAGES[@]}")
for n in "${only[@]}"; do
  case "$n" in weight-server|host-agent) ;; *) die "--only: weight-server | host-agent, not '$n'" ;; esac
done
if [ "$push" = 1 ] && [ -z "$registry" ]; then die "--registry (or REGISTRY) is required unless --no-push"; fi
[ -z "$update_dir" ] || [ -n "$registry" ] || die "--update-manifests needs --registry (the image names it)"
for t in jq tar gzip readelf cargo; do command -v "$t" >/dev/null || die "$t is missing (scripts/setup.sh installs it)"; done
[ "$push" = 0 ] || command -v skopeo >/dev/null || die "skopeo is missing (scripts/setup.sh installs it)"

# platform -> (arch, rust target, readelf machine)
archs=(); triples=()
IFS=, read -ra plats <<<"$platforms"
for p in "${plats[@]}"; do
  case "$p" in
    linux/amd64) archs+=(amd64); triples+=(x86_64-unknown-linux-musl) ;;
    linux/arm64) archs+=(arm64); triples+=(aarch64-unknown-linux-musl) ;;
    *) die "--platforms: linux/amd64 and/or linux/arm64, not '$p'" ;;
  esac
done
machine_of() { case "$1" in amd64) echo 'X86-64' ;; arm64) echo 'AArch64' ;; esac; }

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
work="$(mktemp -d "$out_dir/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- what the commit says ---------------------------------------------------
revision="unknown"; epoch="${SOURCE_DATE_EPOCH:-}"
if git -C "$repo" rev-parse HEAD >/dev/null 2>&1; then
  revision="$(git -C "$repo" rev-parse HEAD)"
  [ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || revision="$revision-dirty"
  [ -n "$epoch" ] || epoch="$(git -C "$repo" log -1 --format=%ct)"
fi
[ -n "$epoch" ] || die "no commit time: set SOURCE_DATE_EPOCH"
ca_bundle="${MPLB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$ca_bundle" ] || die "CA bundle $ca_bundle missing (apt ca-certificates)"

crate_field() { # crate field
  sed -n "s/^$2 = \"\(.*\)\"/\1/p" "$repo/$1/Cargo.toml" | head -1
}
license="$(sed -n 's/^license = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)"

# ---- 1. the static binaries --------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$repo/target}/images"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
build_binaries() {
  local pkgs=() t env_t
  for n in "${only[@]}"; do pkgs+=(-p "$n" --bin "$n"); done
  for t in "${triples[@]}"; do
    env_t="$(echo "$t" | tr 'a-z-' 'A-Z_')"
    # Paths of the checkout, the registry sources and the target dir are
    # remapped so that the binaries do not depend on where the clone lives.
    export "CARGO_TARGET_${env_t}_RUSTFLAGS=--remap-path-prefix=$repo=/src --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target_dir=/target -C target-feature=+crt-static"
  done
  export CARGO_PROFILE_RELEASE_STRIP=symbols
  # ring's C and assembly: musl-gcc for amd64, Debian's aarch64 cross gcc
  # (freestanding code: no libc headers needed) for arm64, which also links.
  export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
  export CC_aarch64_unknown_linux_musl="${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}"
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-aarch64-linux-gnu-gcc}"
  local tgt=()
  for t in "${triples[@]}"; do tgt+=(--target "$t"); done
  log "cargo build --release ${tgt[*]} ${pkgs[*]}"
  (cd "$repo" && cargo build -q --locked --release --target-dir "$target_dir" "${tgt[@]}" "${pkgs[@]}" >&2) \
    || die "cargo build failed (scripts/setup.sh installs the musl targets, musl-tools, gcc-aarch64-linux-gnu)"
}

# Refuse a binary that is not a static executable of the platform's machine.
check_static() { # file arch
  local hdr
  [ -x "$1" ] || die "binary $1 missing"
  hdr="$(readelf -hldW "$1" 2>&1)" || die "$1 is not an ELF file"
  grep -q "Machine:.*$(machine_of "$2")" <<<"$hdr" || die "$1 is not a $2 binary"
  if grep -q -e 'INTERP' -e '(NEEDED)' <<<"$hdr"; then die "$1 is dynamically linked"; fi
}

# ---- 2. the SBOM ---------------------------------------------------------------
# cargo-cyclonedx writes one SBOM per workspace member beside its Cargo.toml
# (moved into the work dir at once); the random serial number and the time
# are replaced by ones derived from the commit, so the file is the same for
# two builds of one commit.
make_sboms() {
  local m
  command -v cargo-cyclonedx >/dev/null || die "cargo-cyclonedx is missing (scripts/setup.sh installs it)"
  (cd "$repo" && cargo cyclonedx -q --format json --spec-version 1.5 --target "${triples[0]}" \
     --override-filename mplb-sbom-build --manifest-path "$repo/Cargo.toml" >&2) \
    || die "cargo cyclonedx failed"
  # Members sit one or two levels deep (weight-server/, filter/core/): move
  # every SBOM out of the tree, named for the member's folder path.
  while IFS= read -r m; do
    mv "$m" "$work/sbom-$(dirname "${m#"$repo"/}" | tr / -).json"
  done < <(find "$repo" -path "$repo/target" -prune -o -name mplb-sbom-build.json -print)
}
make_sbom() { # name out
  local name="$1" out="$2" raw="$work/sbom-$1.json" uuid
  [ -s "$raw" ] || die "cargo cyclonedx wrote no SBOM for $name"
  uuid="$(printf '%s' "$name $revision" | sha256sum | cut -c1-32 \
    | sed -E 's/(.{8})(.{4})(.{4})(.{4})(.{12})/\1-\2-\3-\4-\5/')"
  jq -S --arg u "urn:uuid:$uuid" --arg t "$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" \
    '.serialNumber = $u | .metadata.timestamp = $t' "$raw" >"$out"
}

# ---- 3. one image ----------------------------------------------------------------
build_image() { # name -> sets IMG_* globals
  local name="$1" version desc labels img_dir layout manifests i arch triple bin rootfs idx port=""
  version="$(crate_field "$name" version)"
  desc="$(crate_field "$name" description)"
  [ "$name" = weight-server ] && port=8080
  local this_tag="${tag:-$version}"
  labels="$(jq -cnS --arg src "$source_url" --arg rev "$revision" --arg ver "$version" \
    --arg lic "$license" --arg title "$name" --arg desc "$desc" \
    --arg created "$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" '{
      "org.opencontainers.image.source": $src, "org.opencontainers.image.revision": $rev,
      "org.opencontainers.image.version": $ver, "org.opencontainers.image.licenses": $lic,
      "org.opencontainers.image.title": $title, "org.opencontainers.image.description": $desc,
      "org.opencontainers.image.created": $created}')"
  img_dir="$out_dir/$name"; layout="$img_dir/oci"
  rm -rf "$img_dir"; mkdir -p "$layout"
  manifests="$work/$name.manifests"; : >"$manifests"
  for i in "${!archs[@]}"; do
    arch="${archs[$i]}"; triple="${triples[$i]}"
    bin="$target_dir/$triple/release/$name"
    check_static "$bin" "$arch"
    rootfs="$work/$name-$arch/rootfs"
    mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/local/bin"
    cp "$here/rootfs/etc/passwd" "$here/rootfs/etc/group" "$rootfs/etc/"
    cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cp "$bin" "$rootfs/usr/local/bin/$name"
    oci_layer "$rootfs" "$work/$name-$arch/layer" "$epoch"
    oci_platform_image "$layout" "$arch" "$work/$name-$arch/layer" "$epoch" \
      "/usr/local/bin/$name" "$labels" "$port" >>"$manifests"
    log "$name $arch: binary $(stat -c %s "$bin") B, layer $(stat -c %s "$work/$name-$arch/layer.tar.gz") B gzip"
  done
  idx="$(oci_index "$layout" "$this_tag" "$manifests" "$labels")"
  make_sbom "$name" "$img_dir/sbom.cdx.json"
  IMG_REF="${registry:+$registry/}$name"; IMG_TAG="$this_tag"; IMG_DIGEST="sha256:$idx"
  IMG_LAYOUT="$layout"; IMG_SBOM="$img_dir/sbom.cdx.json"; IMG_SBOM_REF=""
  echo "$IMG_DIGEST" >"$img_dir/digest"
  log "$name: index $IMG_DIGEST (${archs[*]})"
  if [ "$push" = 1 ]; then push_image "$name" "$img_dir"; fi
}

push_image() { # name img_dir
  local tls=() pushed sbom_hex
  [ "$insecure" = 1 ] && tls=(--dest-tls-verify=false)
  skopeo copy -q --all --preserve-digests "${tls[@]}" --digestfile "$work/pushed" \
    "oci:$IMG_LAYOUT:$IMG_TAG" "docker://$IMG_REF:$IMG_TAG" >&2 || die "pushing $IMG_REF:$IMG_TAG failed"
  pushed="$(tr -d '[:space:]' <"$work/pushed")"
  [ "$pushed" = "$IMG_DIGEST" ] || die "registry stored $IMG_REF as $pushed, not $IMG_DIGEST"
  log "pushed $IMG_REF:$IMG_TAG@$IMG_DIGEST"
  # the SBOM, as an artifact tagged the way cosign names attachments
  local sbom_tag="sha256-${IMG_DIGEST#sha256:}.sbom"
  sbom_hex="$(oci_sbom_artifact "$2/sbom-oci" "$sbom_tag" "$IMG_SBOM" "$IMG_LAYOUT" "${IMG_DIGEST#sha256:}")"
  skopeo copy -q --preserve-digests "${tls[@]}" "oci:$2/sbom-oci:$sbom_tag" \
    "docker://$IMG_REF:$sbom_tag" >&2 || die "pushing the SBOM of $IMG_REF failed"
  IMG_SBOM_REF="$IMG_REF:$sbom_tag"
  log "pushed the SBOM $IMG_SBOM_REF (sha256:$sbom_hex)"
}

# Point the manifests' `image:` of NAME at REF@DIGEST.
pin_manifests() { # name ref digest
  local n=0 f
  while IFS= read -r f; do
    sed -i -E "s#^([[:space:]]*image:[[:space:]]*)([^[:space:]]*/)?$1([:@][^[:space:]]*)?[[:space:]]*\$#\\1$2@$3#" "$f"
    log "pinned $1 in $f"
    n=$((n + 1))
  done < <(grep -rlE --include='*.yaml' "^[[:space:]]*image:[[:space:]]*([^[:space:]]*/)?$1([:@]|[[:space:]]*\$)" "$update_dir" | sort)
  [ "$n" -gt 0 ] || die "no manifest in $update_dir names the image $1"
}

build_binaries
make_sboms
for name in "${only[@]}"; do
  build_image "$name"
  [ -z "$update_dir" ] || pin_manifests "$name" "$IMG_REF" "$IMG_DIGEST"
  v="$(echo "$name" | tr 'a-z-' 'A-Z_')"
  echo "${v}_IMAGE=$IMG_REF:$IMG_TAG"
  echo "${v}_DIGEST=$IMG_DIGEST"
  echo "${v}_LAYOUT=$IMG_LAYOUT"
  echo "${v}_SBOM=$IMG_SBOM"
  [ -z "$IMG_SBOM_REF" ] || echo "${v}_SBOM_REF=$IMG_SBOM_REF"
done

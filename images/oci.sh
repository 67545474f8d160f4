# shellcheck shell=bash
# Writes OCI image layouts by hand, byte for byte reproducibly: a sourced
# library of images/build.sh. Every input that could vary between two builds
# of one commit is fixed here: file order (sorted), owners (0:0), modes (set
# explicitly), mtimes (SOURCE_DATE_EPOCH), tar format (ustar), gzip without a
# name or a time stamp, JSON written compact with sorted keys by jq -S.
# Needs: tar gzip jq sha256sum.

# Store FILE as a blob of the layout DIR; print its sha256 hex.
oci_put_blob() { # dir file
  local h
  h="$(sha256sum "$2" | cut -d' ' -f1)"
  mkdir -p "$1/blobs/sha256"
  cp "$2" "$1/blobs/sha256/$h"
  echo "$h"
}

# A descriptor of a blob already in the layout.
oci_descriptor() { # dir media-type hex [platform-json]
  local size
  size="$(stat -c %s "$1/blobs/sha256/$3")"
  jq -cnS --arg m "$2" --arg d "sha256:$3" --argjson s "$size" --argjson p "${4:-null}" \
    '{mediaType: $m, digest: $d, size: $s} + (if $p == null then {} else {platform: $p} end)'
}

# Tar ROOTFS deterministically into OUT.tar and OUT.tar.gz. Modes: every
# directory 0755, every file 0644 unless it is executable (0755).
oci_layer() { # rootfs out-prefix epoch
  local rootfs="$1" out="$2" epoch="$3"
  find "$rootfs" -type d -exec chmod 0755 {} +
  find "$rootfs" -type f -perm /111 -exec chmod 0755 {} +
  find "$rootfs" -type f ! -perm /111 -exec chmod 0644 {} +
  (cd "$rootfs" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$out.list"
  tar --format=ustar --no-recursion --owner=0 --group=0 --numeric-owner \
    --mtime="@$epoch" -C "$rootfs" -cf "$out.tar" -T "$out.list"
  gzip -n -9 -c "$out.tar" >"$out.tar.gz"
}

# One platform's image: config + manifest blobs; prints the manifest's
# descriptor (with its platform) for the index.
# args: layout arch(amd64|arm64) layer-prefix epoch entrypoint labels-json [port]
oci_platform_image() {
  local layout="$1" arch="$2" layer="$3" epoch="$4" entry="$5" labels="$6" port="${7:-}"
  local created diff_id layer_hex cfg_hex man_hex platform tmp
  created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
  diff_id="sha256:$(sha256sum "$layer.tar" | cut -d' ' -f1)"
  layer_hex="$(oci_put_blob "$layout" "$layer.tar.gz")"
  platform="$(jq -cnS --arg a "$arch" '{architecture: $a, os: "linux"} + (if $a == "arm64" then {variant: "v8"} else {} end)')"
  tmp="$(mktemp -d)"
  jq -cnS --arg created "$created" --arg diff "$diff_id" --arg entry "$entry" \
    --argjson labels "$labels" --argjson platform "$platform" --arg port "$port" '
    $platform + {
      created: $created,
      config: ({
        User: "65532:65532",
        Entrypoint: [$entry],
        Env: ["PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
        WorkingDir: "/",
        Labels: $labels
      } + (if $port == "" then {} else {ExposedPorts: {($port + "/tcp"): {}}} end)),
      rootfs: {type: "layers", diff_ids: [$diff]},
      history: [{created: $created, created_by: "images/build.sh: static binary, CA bundle, /etc/passwd"}]
    }' >"$tmp/config.json"
  cfg_hex="$(oci_put_blob "$layout" "$tmp/config.json")"
  jq -cnS --argjson cfg "$(oci_descriptor "$layout" application/vnd.oci.image.config.v1+json "$cfg_hex")" \
    --argjson layer "$(oci_descriptor "$layout" application/vnd.oci.image.layer.v1.tar+gzip "$layer_hex")" \
    --argjson labels "$labels" '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: $cfg, layers: [$layer], annotations: $labels
    }' >"$tmp/manifest.json"
  man_hex="$(oci_put_blob "$layout" "$tmp/manifest.json")"
  rm -rf "$tmp"
  oci_descriptor "$layout" application/vnd.oci.image.manifest.v1+json "$man_hex" "$platform"
}

# The multi-arch index over the per-platform descriptors (one JSON per line
# in MANIFESTS), tagged TAG in the layout's index.json; prints the index hex.
oci_index() { # layout tag manifests-file labels-json
  local layout="$1" tag="$2" tmp hex
  tmp="$(mktemp)"
  jq -cS --slurp --argjson labels "$4" '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: ., annotations: $labels
    }' "$3" >"$tmp"
  hex="$(oci_put_blob "$layout" "$tmp")"
  rm -f "$tmp"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  jq -cnS --argjson d "$(oci_descriptor "$layout" application/vnd.oci.image.index.v1+json "$hex")" \
    --arg t "$tag" '{schemaVersion: 2, manifests: [$d + {annotations: {"org.opencontainers.image.ref.name": $t}}]}' \
    >"$layout/index.json"
  echo "$hex"
}

# An SBOM as an OCI artifact whose subject is the image index (the OCI 1.1
# referrers shape), tagged TAG in its own layout; prints the manifest hex.
oci_sbom_artifact() { # layout tag sbom-file subject-layout subject-hex
  local layout="$1" tag="$2" sbom="$3" tmp empty_hex sbom_hex hex subject
  tmp="$(mktemp -d)"
  printf '{}' >"$tmp/empty.json"
  empty_hex="$(oci_put_blob "$layout" "$tmp/empty.json")"
  sbom_hex="$(oci_put_blob "$layout" "$sbom")"
  subject="$(oci_descriptor "$4" application/vnd.oci.image.index.v1+json "$5")"
  jq -cnS --argjson cfg "$(oci_descriptor "$layout" application/vnd.oci.empty.v1+json "$empty_hex")" \
    --argjson layer "$(oci_descriptor "$layout" application/vnd.cyclonedx+json "$sbom_hex")" \
    --argjson subject "$subject" '{
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.cyclonedx+json",
      config: $cfg,
      layers: [$layer + {annotations: {"org.opencontainers.image.title": "sbom.cdx.json"}}],
      subject: $subject
    }' >"$tmp/manifest.json"
  hex="$(oci_put_blob "$layout" "$tmp/manifest.json")"
  rm -rf "$tmp"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  jq -cnS --argjson d "$(oci_descriptor "$layout" application/vnd.oci.image.manifest.v1+json "$hex")" \
    --arg t "$tag" '{schemaVersion: 2, manifests: [$d + {annotations: {"org.opencontainers.image.ref.name": $t}}]}' \
    >"$layout/index.json"
  echo "$hex"
}

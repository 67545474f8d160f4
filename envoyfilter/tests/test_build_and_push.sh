#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || fail`: ok never fails
# End-to-end test of build-and-push.sh against a real registry on loopback:
# apt's docker-registry on 127.0.0.1:<free port> with a temp storage dir.
# For each packaging (compat via umoci + skopeo, compat via buildah when it is
# installed, the 2-layer artifact) it pushes, checks the manifest digest the
# registry serves equals the one printed, pulls the image back with skopeo
# into an OCI layout, extracts plugin.wasm with Istio's fetcher logic
# (istio_fetch.py) and compares it byte for byte with the built module.
# Also: --no-push layouts, --update-manifests on a copy of envoyfilter/, and
# a module Envoy refuses makes the script fail.
# Prints "N passed, N failed" last. Needs: docker-registry skopeo umoci jq
# binaryen (scripts/setup.sh), cargo with the wasm32-wasip1 target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${MPLB_VENV:-$HOME/.cache/mplb/venv}/bin/python"
[ -x "$py" ] || py=python3
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

for tool in docker-registry skopeo umoci jq curl; do
  command -v "$tool" >/dev/null || { echo "test_build_and_push: $tool missing: run scripts/setup.sh" >&2; exit 1; }
done

tmp="$(mktemp -d)"
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0; failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# ---- the registry -----------------------------------------------------------
port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$tmp/registry.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $tmp/registry-data}
http:
  addr: 127.0.0.1:$port
YML
/usr/bin/docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  kill -0 "$reg_pid" 2>/dev/null || { cat "$tmp/registry.log" >&2; echo "registry died" >&2; exit 1; }
  sleep 0.1
done
registry="127.0.0.1:$port"

# get KEY from a build-and-push.sh output file
get() { sed -n "s/^$1=//p" "$2"; }

# pull $1 (tag) back and compare with the built module; $2: expected variant
check_pulled() {
  local tag="$1" variant="$2" out="$3" what="$4"
  local digest wasm served layout
  digest="$(get IMAGE_DIGEST "$out")"
  wasm="$(get PLUGIN_WASM "$out")"
  served="sha256:$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/mplb-filter/manifests/$tag" | sha256sum | cut -d' ' -f1)"
  if [ "$served" = "$digest" ]; then ok "$what: registry serves manifest $digest"
  else fail "$what: registry manifest $served != printed $digest"; fi
  [ "$(get WASMPLUGIN_URL "$out")" = "oci://$registry/mplb-filter@$digest" ] \
    && ok "$what: WasmPlugin url names the digest" || fail "$what: WASMPLUGIN_URL $(get WASMPLUGIN_URL "$out")"
  [ "$(get WASMPLUGIN_SHA256 "$out")" = "${digest#sha256:}" ] \
    && ok "$what: WasmPlugin sha256 is the manifest digest" || fail "$what: WASMPLUGIN_SHA256"
  [ "$(get PLUGIN_SHA256 "$out")" = "$(sha256sum "$wasm" | cut -d' ' -f1)" ] \
    && ok "$what: PLUGIN_SHA256 is plugin.wasm's" || fail "$what: PLUGIN_SHA256"
  layout="$tmp/pulled-$tag"
  skopeo copy -q --src-tls-verify=false --preserve-digests \
    "docker://$registry/mplb-filter:$tag" "oci:$layout:$tag" >&2
  local res
  if res="$("$py" "$here/istio_fetch.py" "$layout" "$tag" "$tmp/extracted-$tag.wasm")"; then
    if [ "$res" = "digest=$digest variant=$variant" ]; then ok "$what: pulled back as $variant, digest kept"
    else fail "$what: pulled back as '$res', expected digest=$digest variant=$variant"; fi
    if cmp -s "$tmp/extracted-$tag.wasm" "$wasm"; then ok "$what: extracted plugin.wasm is byte-identical to the built module"
    else fail "$what: extracted plugin.wasm differs from $wasm"; fi
  else
    fail "$what: Istio's fetcher logic refuses the pulled image"
  fi
}

# ---- 1. the whole script: cargo build, wasm-opt, Envoy validate, push ------
bp="$repo/build-and-push.sh"
if "$bp" --only filter --registry "$registry" --insecure --tag auto --out-dir "$tmp/out-auto" >"$tmp/auto.out" 2>"$tmp/auto.err"; then
  ok "build-and-push.sh (full build, default packager) exits 0"
  grep -q 'wasm-opt -Oz --enable-bulk-memory' "$tmp/auto.err" && ok "wasm-opt ran with explicit features" \
    || fail "wasm-opt did not run: $(cat "$tmp/auto.err")"
  check_pulled auto compat "$tmp/auto.out" "default packager"
else
  fail "build-and-push.sh exited non-zero: $(cat "$tmp/auto.err")"
fi
module="$(get PLUGIN_WASM "$tmp/auto.out" || true)"
[ -n "$module" ] && cp "$module" "$tmp/module.wasm"

# ---- 2. each packaging, from the same module (no rebuild) --------------------
pack() { # tag, expected variant, extra args...
  local tag="$1" variant="$2"; shift 2
  if "$bp" --only filter --wasm "$tmp/module.wasm" --no-opt --registry "$registry" --insecure --tag "$tag" \
      --out-dir "$tmp/out-$tag" "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err"; then
    check_pulled "$tag" "$variant" "$tmp/$tag.out" "$tag ($*)"
  else
    fail "$tag ($*): build-and-push.sh failed: $(cat "$tmp/$tag.err")"
  fi
}
pack umoci compat --packager umoci
if command -v buildah >/dev/null; then pack buildah compat --packager buildah
else echo "skip buildah packaging: buildah not installed"; fi
pack artifact artifact --format artifact

# ---- 3. --no-push writes a layout Istio's logic accepts -----------------------
if "$bp" --only filter --wasm "$tmp/module.wasm" --no-opt --no-push --packager umoci --tag np \
    --out-dir "$tmp/out-np" >"$tmp/np.out" 2>"$tmp/np.err"; then
  res="$("$py" "$here/istio_fetch.py" "$(get OCI_LAYOUT "$tmp/np.out")" np "$tmp/np.wasm" || true)"
  if [ "$res" = "digest=$(get IMAGE_DIGEST "$tmp/np.out") variant=compat" ] && cmp -s "$tmp/np.wasm" "$tmp/module.wasm"; then
    ok "--no-push: OCI layout holds plugin.wasm, digest printed"
  else fail "--no-push layout: '$res'"; fi
else fail "--no-push failed: $(cat "$tmp/np.err")"; fi

# ---- 4. --update-manifests pins every WasmPlugin (on a copy) ------------------
cp -r "$repo/envoyfilter" "$tmp/ef"
if "$bp" --only filter --wasm "$tmp/module.wasm" --no-opt --registry "$registry" --insecure --tag pin \
    --packager umoci --out-dir "$tmp/out-pin" --update-manifests "$tmp/ef" >"$tmp/pin.out" 2>"$tmp/pin.err"; then
  d="$(get IMAGE_DIGEST "$tmp/pin.out")"
  n="$(grep -rl --include='*.yaml' "url: oci://$registry/mplb-filter@$d" "$tmp/ef" | wc -l)"
  m="$(grep -rl --include='*.yaml' "sha256: \"${d#sha256:}\"" "$tmp/ef" | wc -l)"
  total="$(grep -rl --include='*.yaml' '^kind: WasmPlugin' "$tmp/ef" | wc -l)"
  if [ "$n" = "$total" ] && [ "$m" = "$total" ] && [ "$total" -ge 2 ]; then
    ok "--update-manifests pinned url + sha256 in all $total WasmPlugins"
  else fail "--update-manifests: $n urls, $m sha256 of $total WasmPlugins"; fi
  "$py" "$repo/envoyfilter/validate.py" "$tmp/ef" >"$tmp/pin-validate.log" 2>&1 || true
  if grep -q 'WasmPlugin/mplb-filter (istio crd)' "$tmp/pin-validate.log" \
      && grep -q 'WasmPlugin/mplb-filter-gateway (istio crd)' "$tmp/pin-validate.log" \
      && ! grep '^FAIL' "$tmp/pin-validate.log" | grep -q WasmPlugin; then
    ok "pinned WasmPlugins still validate against the CRDs"
  else fail "pinned WasmPlugins no longer validate: $(grep -i -E 'fail|error' "$tmp/pin-validate.log")"; fi
else fail "--update-manifests failed: $(cat "$tmp/pin.err")"; fi

# ---- 5. a module Envoy refuses fails the script, nothing is pushed ------------
printf '\0asm\1\0\0\0garbage' >"$tmp/bad.wasm"
if "$bp" --only filter --wasm "$tmp/bad.wasm" --no-opt --registry "$registry" --insecure --tag bad \
    --out-dir "$tmp/out-bad" >"$tmp/bad.out" 2>"$tmp/bad.err"; then
  fail "a module Envoy refuses was pushed"
else
  if grep -q "Envoy refused the module" "$tmp/bad.err" \
      && ! curl -fsS "http://$registry/v2/mplb-filter/manifests/bad" >/dev/null 2>&1; then
    ok "a module Envoy refuses fails the script before any push"
  else fail "bad module: unexpected failure: $(tail -3 "$tmp/bad.err")"; fi
fi

# ---- 6. Envoy loads the filter with each committed pluginConfig ---------------
envoy="${MPLB_ENVOY:-$HOME/.cache/mplb/venv/bin/envoy}"
if "$py" "$here/envoy_plugin_config.py" "$envoy" "$tmp/module.wasm" \
    "$repo/envoyfilter/wasmplugin-gateway.yaml" "$repo/envoyfilter/hotel/wasmplugin-sidecar.yaml" >"$tmp/pc.log" 2>&1; then
  ok "Envoy loads the filter with every committed WasmPlugin pluginConfig"
else fail "pluginConfig refused: $(cat "$tmp/pc.log")"; fi
sed 's/poll_interval_ms:/poll_intervall_ms:/' "$repo/envoyfilter/hotel/wasmplugin-sidecar.yaml" >"$tmp/typo.yaml"
if "$py" "$here/envoy_plugin_config.py" "$envoy" "$tmp/module.wasm" "$tmp/typo.yaml" >/dev/null 2>&1; then
  fail "a pluginConfig with an unknown key was accepted"
else ok "a pluginConfig with an unknown key is refused by the filter in Envoy"; fi

echo "build-and-push: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# shellcheck disable=SC2015 # `check && ok || fail`: ok never fails
# The server images, end to end (root needed: OCI runtimes, cgroups):
#  1. `build-and-push.sh` (no --only) builds and pushes all three images to
#     apt's docker-registry on 127.0.0.1; each server image is a linux/amd64 +
#     linux/arm64 index with OCI labels, and its CycloneDX SBOM is pushed as
#     an artifact whose subject is the index;
#  2. a second build of the same commit gives the same digests;
#  3. each image is pulled back by digest, unpacked into an OCI bundle by
#     umoci, configured from the committed Deployment/DaemonSet (user, groups,
#     read-only root, no capabilities, args, env, volumes) by bundle.py, and run
#     by every OCI runtime installed (crun, runc) on the host network:
#     - weight server: topology file mounted, the manifest's probe paths and
#       GET /v1/weights answer, SIGTERM stops it with exit status 0;
#     - host agent: as uid 65532 with no capabilities, reads a real cgroup of
#       the test (a busy loop in kubepods/burstable/pod<uid>) through the
#       read-only cgroup mount and posts it to a test server;
#  4. the arm64 binaries answer --version under qemu-aarch64-static;
#  5. broken images (binary missing, binary dynamically linked) fail the run.
# Prints "N passed, N failed" last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${MPLB_VENV:-$HOME/.cache/mplb/venv}/bin/python"
[ -x "$py" ] || py=python3
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

for tool in docker-registry skopeo umoci jq curl qemu-aarch64-static readelf; do
  command -v "$tool" >/dev/null || { echo "test_images: $tool missing: run scripts/setup.sh" >&2; exit 1; }
done
runtimes=()
for rt in ${MPLB_OCI_RUNTIMES:-crun runc}; do
  command -v "$rt" >/dev/null || continue
  # crun (1.8) refuses to start anything on a cgroup v1 host whose v2 mount
  # holds a controller ("hybrid mode", e.g. hugetlb only on v2): said, not hidden
  if [ "$rt" = crun ] && grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then
    echo "note: crun not used: this host's cgroup v2 mount holds $(cat /sys/fs/cgroup/unified/cgroup.controllers) (hybrid mode, which crun refuses)"
    continue
  fi
  runtimes+=("$rt")
done
[ "${#runtimes[@]}" -gt 0 ] || { echo "test_images: no OCI runtime (apt crun or runc)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test_images: needs root (OCI runtimes, cgroups)" >&2; exit 1; }

tmp="$(mktemp -d)"
pids=(); containers=(); cgroups=()
cleanup() {
  local c p d
  for c in "${containers[@]}"; do rt "${c%%:*}" delete -f "${c#*:}" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for d in "${cgroups[@]}"; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0; failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
get() { sed -n "s/^$1=//p" "$2"; }

# ---- the registry -----------------------------------------------------------
port="$(free_port)"
printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$tmp/registry-data" "$port" >"$tmp/registry.yml"
/usr/bin/docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
registry="127.0.0.1:$port"
manifest_of() { # name ref -> the manifest the registry serves
  curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' \
    "http://$registry/v2/$1/manifests/$2"
}

# ---- 1. one command builds and pushes the three -----------------------------
bp_out="$tmp/bp.out"
if "$repo/build-and-push.sh" --registry "$registry" --insecure --tag run --out-dir "$tmp/out" >"$bp_out" 2>"$tmp/bp.err"; then
  ok "build-and-push.sh builds and pushes all three images"
else
  fail "build-and-push.sh failed: $(tail -5 "$tmp/bp.err")"
  echo "images: $passed passed, $failed failed"; exit 1
fi
[[ "$(get IMAGE_DIGEST "$bp_out")" =~ ^sha256: ]] && ok "the filter image was pushed too" || fail "no filter IMAGE_DIGEST"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
for name in weight-server host-agent; do
  v="$(echo "$name" | tr 'a-z-' 'A-Z_')"
  digest="$(get "${v}_DIGEST" "$bp_out")"
  eval "${v}_DIGEST=\$digest"
  manifest_of "$name" run >"$tmp/$name.index" || true
  idx="$(cat "$tmp/$name.index")"
  [ "sha256:$(sha256sum <"$tmp/$name.index" | cut -d' ' -f1)" = "$digest" ] \
    && ok "$name: the registry serves index $digest" || { fail "$name: registry index != $digest"; continue; }
  plats="$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | sort | join(",")' <<<"$idx")"
  [ "$plats" = "linux/amd64,linux/arm64" ] && ok "$name: index holds linux/amd64 and linux/arm64" || fail "$name: platforms $plats"
  labels="$(skopeo inspect --tls-verify=false "docker://$registry/$name@$digest" | jq -c .Labels)"
  if jq -e --arg r "$revision" '(.["org.opencontainers.image.source"] | startswith("https://"))
      and (.["org.opencontainers.image.revision"] | startswith($r))
      and .["org.opencontainers.image.version"] == "0.1.0"
      and .["org.opencontainers.image.licenses"] == "Apache-2.0"' <<<"$labels" >/dev/null; then
    ok "$name: OCI labels source, revision, version, licenses"
  else fail "$name: labels $labels"; fi
  sbom_ref="$(get "${v}_SBOM_REF" "$bp_out")"
  art="$(manifest_of "$name" "${sbom_ref##*:}" || true)"
  blob="$(jq -r '.layers[0].digest' <<<"$art" 2>/dev/null || true)"
  dep="axum"; [ "$name" = host-agent ] && dep="reqwest"
  if jq -e --arg d "$digest" '.artifactType == "application/vnd.cyclonedx+json" and .subject.digest == $d' <<<"$art" >/dev/null \
      && curl -fsS "http://$registry/v2/$name/blobs/$blob" | jq -e --arg n "$name" --arg dep "$dep" \
        '.bomFormat == "CycloneDX" and (.metadata.component.name == $n) and ([.. | objects | select(.name? == $dep)] | length > 0)' >/dev/null \
      && cmp -s <(curl -fsS "http://$registry/v2/$name/blobs/$blob") "$(get "${v}_SBOM" "$bp_out")"; then
    ok "$name: CycloneDX SBOM (names $dep) pushed as $sbom_ref, subject the index, same as the file"
  else fail "$name: SBOM artifact at ${sbom_ref:-?}: $art"; fi
done

# ---- 2. the same commit gives the same digests --------------------------------
if "$repo/images/build.sh" --no-push --tag run --out-dir "$tmp/again" >"$tmp/again.out" 2>"$tmp/again.err"; then
  for v in WEIGHT_SERVER HOST_AGENT; do
    a="$(get "${v}_DIGEST" "$tmp/again.out")"; b="$(get "${v}_DIGEST" "$bp_out")"
    [ "$a" = "$b" ] && ok "$v: a second build gives the same index digest $a" || fail "$v: second build $a != $b"
  done
else fail "second images/build.sh failed: $(tail -3 "$tmp/again.err")"; fi

# ---- --update-manifests pins the Deployment and the DaemonSet by digest -------
cp -r "$repo/envoyfilter" "$tmp/ef"
if "$repo/images/build.sh" --registry "$registry" --insecure --tag run --out-dir "$tmp/pin" \
    --update-manifests "$tmp/ef" >"$tmp/pin.out" 2>"$tmp/pin.err"; then
  grep -q "^ *image: $registry/weight-server@$(get WEIGHT_SERVER_DIGEST "$bp_out")\$" "$tmp/ef/weight-server.yaml" \
    && grep -q "^ *image: $registry/host-agent@$(get HOST_AGENT_DIGEST "$bp_out")\$" "$tmp/ef/host-agent.yaml" \
    && ok "--update-manifests writes both images by index digest" \
    || fail "--update-manifests: $(grep -h 'image:' "$tmp/ef/weight-server.yaml" "$tmp/ef/host-agent.yaml")"
  "$py" "$repo/envoyfilter/validate.py" "$tmp/ef" >"$tmp/pin-validate.log" 2>&1 || true
  if grep -q '^ok .*Deployment/weight-server' "$tmp/pin-validate.log" \
      && grep -q '^ok .*DaemonSet/host-agent' "$tmp/pin-validate.log"; then
    ok "the pinned Deployment and DaemonSet still validate"
  else fail "pinned manifests: $(grep -E 'Deployment|DaemonSet' "$tmp/pin-validate.log")"; fi
else fail "images/build.sh --update-manifests failed: $(tail -3 "$tmp/pin.err")"; fi

# ---- --help names every option ---------------------------------------------------
for script in build-and-push.sh images/build.sh; do
  help="$("$repo/$script" --help)"
  missing=""
  for opt in $(grep -oE '^ +--[a-z-]+(\|-h\|--help)?\)' "$repo/$script" | grep -oE -- '--[a-z-]+' | sort -u); do
    grep -q -- "$opt" <<<"$help" || missing="$missing $opt"
  done
  [ -z "$missing" ] && ok "$script --help names every option" || fail "$script --help misses:$missing"
done

# ---- helpers to pull, unpack, run ----------------------------------------------
pull_unpack() { # name ref arch bundle -> unpacked bundle
  local name="$1" ref="$2" arch="$3" bundle="$4" layout="$tmp/pull-$RANDOM"
  local over=(--override-os linux --override-arch "$arch")
  [ "$arch" = arm64 ] && over+=(--override-variant v8)
  skopeo copy -q --src-tls-verify=false "${over[@]}" "docker://$ref" "oci:$layout:img" >&2 || return 1
  umoci unpack --image "$layout:img" "$bundle" >/dev/null || return 1
}

# Start the bundle under RUNTIME as ID; its output goes to LOG.
rt() { "$@"; }
start_ctr() { # runtime bundle id log
  rt "$1" run --bundle "$2" "$3" >"$4" 2>&1 </dev/null &
  CTR_PID=$!
  pids+=("$CTR_PID"); containers+=("$1:$3")
}
# SIGTERM the container and wait for its runtime; sets STOP_RC.
stop_ctr() { # runtime id pid
  local rc=0
  rt "$1" kill "$2" TERM >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do kill -0 "$3" 2>/dev/null || break; sleep 0.1; done
  wait "$3" 2>/dev/null || rc=$?
  rt "$1" delete -f "$2" >/dev/null 2>&1 || true
  STOP_RC="$rc"
}

# weight server: manifest config + a topology file; 0 when every check passes
check_weight_server() { # runtime ref label
  local rt="$1" ref="$2" what="$3" b="$tmp/ws-$RANDOM" id="mplb-ws-$RANDOM" wport info code ready=0
  pull_unpack weight-server "$ref" amd64 "$b" || { echo "  $what: pull/unpack failed"; return 1; }
  mkdir -p "$b-state" "$b-token"; chown 65532:65532 "$b-state"
  head -c 24 /dev/urandom | base64 >"$b-token/token"; chown 0:65532 "$b-token/token"; chmod 0440 "$b-token/token"
  wport="$(free_port)"
  info="$("$py" "$here/bundle.py" "$b/config.json" "$repo/envoyfilter/weight-server.yaml" weight-server \
    --arg --listen="127.0.0.1:$wport" --arg --topology=/etc/mplb/topology.yaml \
    --arg --leader-elect=false \
    --env POD_NAME=weight-server-0 --env POD_NAMESPACE=mplb-system --env POD_IP=127.0.0.1 \
    --volume state="$b-state" --volume admin-token="$b-token" \
    --mount "$repo/examples/topology.yaml=/etc/mplb/topology.yaml")" || { echo "  $what: bundle.py refused"; return 1; }
  start_ctr "$rt" "$b" "$id" "$b.log"
  local pid="$CTR_PID"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    curl -fsS "http://127.0.0.1:$wport/healthz" >/dev/null 2>&1 && { ready=1; break; }
    sleep 0.2
  done
  if [ "$ready" = 0 ]; then
    echo "  $what: never answered /healthz; its output:"; sed 's/^/    /' "$b.log" | tail -5
    stop_ctr "$rt" "$id" "$pid"; return 1
  fi
  local path bad=0
  for path in $(jq -r '.probes[]' <<<"$info") /v1/weights; do
    code=""
    for _ in $(seq 1 50); do
      code="$(curl -s -o "$b.body" -w '%{http_code}' "http://127.0.0.1:$wport$path" || true)"
      [ "$code" = 200 ] && break; sleep 0.2
    done
    [ "$code" = 200 ] || { echo "  $what: GET $path -> $code"; bad=1; }
  done
  jq -e '.services | to_entries | length > 0' "$b.body" >/dev/null 2>&1 \
    || { echo "  $what: /v1/weights has no service: $(head -c 300 "$b.body")"; bad=1; }
  stop_ctr "$rt" "$id" "$pid"
  [ "$STOP_RC" = 0 ] || { echo "  $what: exit status $STOP_RC after SIGTERM"; bad=1; }
  grep -q 'stopped' "$b.log" || { echo "  $what: no 'stopped' line after SIGTERM"; bad=1; }
  return "$bad"
}

# The cgroup usage tree the agent reads (v1 cpuacct, else the v2 tree).
usage_tree() {
  local d
  for d in /sys/fs/cgroup /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpuacct,cpu; do
    [ -f "$d/cpuacct.usage" ] && { echo "$d"; return; }
  done
  [ -f /sys/fs/cgroup/cgroup.controllers ] && { echo /sys/fs/cgroup; return; }
  [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && { echo /sys/fs/cgroup/unified; return; }
  return 1
}

# A busy pod of the test: kubepods/burstable/pod<uid> with a busy loop in it,
# and its kubelet log directory. Sets POD_UID.
make_busy_pod() {
  local tree d
  tree="$(usage_tree)" || { echo "  no writable cgroup tree"; return 1; }
  POD_UID="$(cat /proc/sys/kernel/random/uuid)"
  for d in "$tree/kubepods" "$tree/kubepods/burstable" "$tree/kubepods/burstable/pod$POD_UID"; do
    if [ ! -d "$d" ]; then mkdir "$d" || return 1; cgroups=("$d" "${cgroups[@]}"); fi
  done
  # the loop moves itself into the pod's cgroup before it spins
  timeout 120 sh -c 'echo $$ >"$1" && while :; do :; done' _ "$tree/kubepods/burstable/pod$POD_UID/cgroup.procs" &
  pids+=($!)
  mkdir -p "$tmp/log-pods/mplb-test_busy-0_$POD_UID"
}

# host agent: the DaemonSet's config, a real busy cgroup, a report sink
check_host_agent() { # runtime ref label
  local rt="$1" ref="$2" what="$3" b="$tmp/ha-$RANDOM" id="mplb-ha-$RANDOM" sport bad=0 st got=0
  pull_unpack host-agent "$ref" amd64 "$b" || { echo "  $what: pull/unpack failed"; return 1; }
  sport="$(free_port)"
  # the projected token the DaemonSet mounts: the sink accepts only it
  mkdir -p "$b-token" && printf 'report-token-%s' "$RANDOM" >"$b-token/token" && chmod 0755 "$b-token" && chmod 0644 "$b-token/token"
  "$py" "$here/report_sink.py" "$sport" "$b.reports" "$(cat "$b-token/token")" &
  pids+=($!)
  "$py" "$here/bundle.py" "$b/config.json" "$repo/envoyfilter/host-agent.yaml" host-agent \
    --arg --server="http://127.0.0.1:$sport" --volume cgroup=/sys/fs/cgroup \
    --volume log-pods="$tmp/log-pods" --volume report-token="$b-token" --env NODE_NAME=test-node >/dev/null || { echo "  $what: bundle.py refused"; return 1; }
  start_ctr "$rt" "$b" "$id" "$b.log"
  local pid="$CTR_PID"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    if [ -s "$b.reports" ] && jq -e --arg u "$POD_UID" \
        'select(.node == "test-node") | .pods[] | select(.uid == $u and .name == "busy-0"
           and .namespace == "mplb-test" and .millicores > 300)' "$b.reports" >/dev/null 2>&1; then
      got=1; break
    fi
    sleep 0.2
  done
  if [ "$got" = 0 ]; then
    echo "  $what: no report with the busy pod (> 300 millicores); agent output:"; sed 's/^/    /' "$b.log" | tail -5
    echo "    last report: $(tail -1 "$b.reports" 2>/dev/null | head -c 400)"; bad=1
  fi
  # the process runs as 65532 with no capabilities
  st="$(rt "$rt" state "$id" 2>/dev/null | jq -r .pid || true)"
  if [ -n "$st" ] && [ -r "/proc/$st/status" ]; then
    grep -qP '^Uid:\t65532\t65532\t65532\t65532' "/proc/$st/status" || { echo "  $what: $(grep ^Uid "/proc/$st/status")"; bad=1; }
    grep -q '^CapEff:\s*0000000000000000' "/proc/$st/status" || { echo "  $what: $(grep ^CapEff "/proc/$st/status")"; bad=1; }
  elif [ "$got" = 1 ]; then echo "  $what: no container pid to inspect"; bad=1; fi
  stop_ctr "$rt" "$id" "$pid"
  [ "$STOP_RC" = 0 ] || { echo "  $what: exit status $STOP_RC after SIGTERM"; bad=1; }
  return "$bad"
}

# ---- 3. run each image under each runtime ------------------------------------------
make_busy_pod || fail "cannot make the busy pod cgroup (root and a cgroup tree needed)"
for rt in "${runtimes[@]}"; do
  check_weight_server "$rt" "$registry/weight-server@$WEIGHT_SERVER_DIGEST" "weight-server/$rt" \
    && ok "weight-server under $rt: probes, /v1/weights, clean SIGTERM stop (read-only root, uid 65532)" \
    || fail "weight-server under $rt"
  check_host_agent "$rt" "$registry/host-agent@$HOST_AGENT_DIGEST" "host-agent/$rt" \
    && ok "host-agent under $rt: uid 65532, no capabilities, read-only mounts, reported the busy cgroup with its mounted token" \
    || fail "host-agent under $rt"
done

# ---- 4. arm64 binaries under qemu user emulation ------------------------------------
for name in weight-server host-agent; do
  v="$(echo "$name" | tr 'a-z-' 'A-Z_')_DIGEST"
  b="$tmp/arm64-$name"
  if pull_unpack "$name" "$registry/$name@${!v}" arm64 "$b"; then
    bin="$b/rootfs/usr/local/bin/$name"
    out="$(qemu-aarch64-static "$bin" --version 2>&1 || true)"
    if readelf -h "$bin" | grep -q 'Machine:.*AArch64' && [ "$out" = "$name 0.1.0" ]; then
      ok "$name arm64: an AArch64 binary, answers '$out' under qemu-aarch64-static"
    else fail "$name arm64: --version said '$out'"; fi
  else fail "$name arm64: pull/unpack failed"; fi
done

# ---- 5. broken images fail the run --------------------------------------------------
# Repack the pulled image with the binary removed, or replaced by a
# dynamically linked (glibc) build, push it, and run the same check on it.
# (scripts/test has built the workspace's debug binaries by now)
[ -x "$CARGO_TARGET_DIR/debug/weight-server" ] || cargo build -q -p weight-server --bin weight-server >&2
broken() { # tag how
  local b="$tmp/broken-$1" layout="$tmp/broken-layout-$1" bin
  skopeo copy -q --src-tls-verify=false "docker://$registry/weight-server@$WEIGHT_SERVER_DIGEST" "oci:$layout:img" >&2
  umoci unpack --image "$layout:img" "$b" >/dev/null
  bin="$b/rootfs/usr/local/bin/weight-server"
  case "$2" in
    missing) rm -f "$bin" ;;
    dynamic) cp "$CARGO_TARGET_DIR/debug/weight-server" "$bin" ;;
  esac
  umoci repack --image "$layout:img" "$b" >/dev/null
  skopeo copy -q --dest-tls-verify=false --digestfile "$tmp/broken-$1.digest" "oci:$layout:img" \
    "docker://$registry/weight-server:$1" >&2
  cat "$tmp/broken-$1.digest"
}
for how in missing dynamic; do
  d="$(broken "broken-$how" "$how")"
  if check_weight_server "${runtimes[0]}" "$registry/weight-server@$d" "broken ($how)" >"$tmp/broken-$how.log" 2>&1; then
    fail "an image with the binary $how passed the run check"
  else ok "an image with the binary $how fails the run check ($(grep -m1 '  broken' "$tmp/broken-$how.log" | sed 's/^ *//'))"; fi
done

echo "images: $passed passed, $failed failed"
[ "$failed" = 0 ]

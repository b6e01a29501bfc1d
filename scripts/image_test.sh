#!/usr/bin/env bash
# Build the production image with podman and test the container for real:
#   the model gets READY under token authorization with keys from a mounted Secret-like
#   folder (the token-keys plugin), JSON / .npy / PNG predictions answer,
#   the process runs as a non-root user under tini, the root file system can be read-only
#   (tmpfs only where TorchServe writes), the metrics port serves Prometheus text, the worker
#   killed under load and the worst accepted requests stay within the memory limit
#   (scripts/reliability.py, figures in docs/reliability.md), SIGTERM stops it cleanly; the
#   image size goes to docs/image.md.
#
#   sudo scripts/image_test.sh          # `make image-test`
#
# Runs as root (CI: a fresh Debian 12 machine): installs podman, buildah, runc and
# debootstrap with apt when they are missing. No container registry is needed: a stand-in
# for python:3.11-slim is made locally from a Debian bookworm debootstrap (cached under
# build/podman/) and handed to the unchanged Dockerfile as its BASE_IMAGE build argument;
# every build runs with --pull=never. Everything podman stores stays under build/podman/.
#
# Settings (environment):
#   IMAGE              tag to build                        pd-segmenter:image-test
#   BASE_IMAGE         a python:3.11-slim already in build/podman's storage, used instead
#                      of the stand-in (e.g. one loaded with `podman load`)
#   MEMORY             container memory limit              3g
#   SIZE_LIMIT_BYTES   fail when the image is larger       1000000000 (1.0 GB)
#   PODMAN_DIR         podman's configuration and storage  build/podman
#   STORAGE_DRIVER     overlay, or vfs where overlay fails overlay
#   DEBIAN_MIRROR      debootstrap's mirror                debootstrap's default
#   CA_BUNDLE          CA certificates for pip in the build /etc/ssl/certs/ca-certificates.crt
#   TORCH_WHEEL_DIR    folder with the CPU torch wheel     searched in /opt/wheels, /opt, ~/.cache
#   TORCH_INDEX_URL    passed to the build as is            (empty)
#   KEEP_CONTAINER=1   leave the test container for inspection
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
IMAGE=${IMAGE:-pd-segmenter:image-test}
MEMORY=${MEMORY:-3g}
SIZE_LIMIT_BYTES=${SIZE_LIMIT_BYTES:-1000000000}
PODMAN_DIR=${PODMAN_DIR:-$ROOT/build/podman}
STORAGE_DRIVER=${STORAGE_DRIVER:-overlay}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
STAND_IN_TAG=localhost/pd-image-test/python:3.11-slim
BASE_TAG=${BASE_IMAGE:-$STAND_IN_TAG}
ROOTFS_IMAGE=localhost/debian-bookworm-minbase
STAND_IN="stand-in for python:3.11-slim: Debian bookworm debootstrap minbase + python3.11"
NAME=pd-image-test-$$
STARTED=$(date +%s)

log() { printf '[image-test %3ds] %s\n' "$(($(date +%s) - STARTED))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------
missing=()
for command in podman buildah runc debootstrap python3; do
    command -v "$command" >/dev/null 2>&1 || missing+=("$command")
done
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; run as root (or install podman buildah runc debootstrap)"
    log "installing podman buildah runc debootstrap (missing: ${missing[*]})"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y podman buildah runc debootstrap python3
fi
[[ $(id -u) -eq 0 ]] || die "run as root: debootstrap and rootful podman need it"

# --- podman, confined to build/podman ------------------------------------------------------
mkdir -p "$PODMAN_DIR/storage-$STORAGE_DRIVER" "$PODMAN_DIR/runroot" "$PODMAN_DIR/tmp" "$PODMAN_DIR/cache"
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=1048576
cat > "$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$PODMAN_DIR/tmp"
EOF
cat > "$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "$STORAGE_DRIVER"
graphroot = "$PODMAN_DIR/storage-$STORAGE_DRIVER"
runroot = "$PODMAN_DIR/runroot"
EOF
export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
podman info >/dev/null || die "podman does not start with $CONTAINERS_CONF / $CONTAINERS_STORAGE_CONF (try STORAGE_DRIVER=vfs)"

# --- the python:3.11-slim stand-in --------------------------------------------------------
# Debian bookworm's python3 is 3.11, like the official image; the links in /usr/local/bin give
# the paths the official image has (the Dockerfile runs `python3`, the venv links to it).
# The official slim images keep apt's caches, downloaded .debs, documentation, man pages
# and translations out of every layer (apt and dpkg configuration under /etc); the stand-in
# does the same, so that its size and every apt layer built on it compare with the real base.
stand_in_containerfile=$(cat <<EOF
FROM $ROOTFS_IMAGE
LABEL org.opencontainers.image.description="$STAND_IN"
ENV LANG=C.UTF-8
RUN printf '%s\n' \\
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \\
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \\
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' \\
        'Acquire::Languages "none";' > /etc/apt/apt.conf.d/90-image-clean \\
    && printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \\
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \\
        'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \\
        'path-exclude /usr/share/lintian/*' > /etc/dpkg/dpkg.cfg.d/90-image-slim \\
    && apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        python3 python3-venv ca-certificates \\
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin \\
    && find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete \\
    && rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian \\
    && find /usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + \\
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3.11 \\
    && ln -s python3.11 /usr/local/bin/python3 \\
    && ln -s python3.11 /usr/local/bin/python \\
    && /usr/local/bin/python3 -m venv /tmp/venv-check && rm -rf /tmp/venv-check
CMD ["python3"]
EOF
)
stand_in_revision=$(sha256sum <<<"$stand_in_containerfile" | cut -c1-16)
if [[ $BASE_TAG != "$STAND_IN_TAG" ]]; then
    podman image exists "$BASE_TAG" || die "BASE_IMAGE=$BASE_TAG is not in $PODMAN_DIR's storage"
elif ! podman image exists "$BASE_TAG" ||
        [[ $(podman image inspect --format '{{index .Labels "pd.stand-in.revision"}}' "$BASE_TAG") \
           != "$stand_in_revision" ]]; then
    if ! podman image exists "$ROOTFS_IMAGE"; then
        rootfs_tar=$PODMAN_DIR/cache/bookworm-minbase.tar
        if [[ ! -s $rootfs_tar ]]; then
            log "debootstrap bookworm (minbase) -> $rootfs_tar"
            rootfs=$(mktemp -d "$PODMAN_DIR/tmp/rootfs.XXXXXX")
            # shellcheck disable=SC2086  # DEBIAN_MIRROR is optional: empty means debootstrap's default
            debootstrap --variant=minbase bookworm "$rootfs" ${DEBIAN_MIRROR:-}
            tar -C "$rootfs" -c . > "$rootfs_tar.partial"
            mv "$rootfs_tar.partial" "$rootfs_tar"
            rm -rf "$rootfs"
        fi
        log "importing $rootfs_tar as $ROOTFS_IMAGE"
        podman import --change 'CMD ["/bin/bash"]' "$rootfs_tar" "$ROOTFS_IMAGE" >/dev/null
    fi
    log "building the local $BASE_TAG (revision $stand_in_revision)"
    mkdir -p "$PODMAN_DIR/base"
    printf '%s\n' "$stand_in_containerfile" > "$PODMAN_DIR/base/Containerfile"
    # --squash-all: one layer, so what the cleanup deletes from the debootstrap tree is gone
    podman build --format docker --pull=never --squash-all \
        --label "pd.stand-in.revision=$stand_in_revision" \
        -t "$BASE_TAG" -f "$PODMAN_DIR/base/Containerfile" "$PODMAN_DIR/base"
fi

# --- build ---------------------------------------------------------------------------------
build_args=()
if [[ -s $CA_BUNDLE ]]; then  # pip inside the build trusts the same CAs as this machine
    build_args+=(-v "$CA_BUNDLE:/run/build-ca/ca.crt:ro" --build-arg PIP_CERT=/run/build-ca/ca.crt)
fi
wheel_dir=${TORCH_WHEEL_DIR:-}
if [[ -z $wheel_dir ]]; then
    wheel=$(find /opt/wheels /opt "$HOME/.cache" -maxdepth 3 -name 'torch-2.13.0+cpu-cp311-*.whl' \
        -print -quit 2>/dev/null || true)
    if [[ -n $wheel ]]; then wheel_dir=$(dirname "$wheel"); fi
fi
if [[ -n $wheel_dir ]]; then  # the CPU torch wheel from this disk instead of a 190 MB download
    log "torch wheel from $wheel_dir"
    build_args+=(-v "$wheel_dir:/run/wheels:ro" --build-arg PIP_FIND_LINKS=/run/wheels)
fi
if [[ -n ${TORCH_INDEX_URL:-} ]]; then
    build_args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
fi
log "building $IMAGE"
build_started=$(date +%s)
podman build --format docker --pull=never --layers -t "$IMAGE" --build-arg "BASE_IMAGE=$BASE_TAG" \
    "${build_args[@]}" -f Dockerfile .
build_seconds=$(($(date +%s) - build_started))

# --- run -------------------------------------------------------------------------------------
read -r inference_port management_port metrics_port < <(python3 - <<'PY'
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
)

cleanup() {
    local status=$?
    if ((status != 0)) && podman container exists "$NAME" 2>/dev/null; then
        log "container log (last 80 lines):"
        podman logs --tail 80 "$NAME" >&2 || true
    fi
    if [[ ${KEEP_CONTAINER:-0} != 1 ]]; then
        podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    fi
    rm -rf "${keys_dir:-/nonexistent}"
}
trap cleanup EXIT

# Like the Kubernetes pod: read-only root, writable tmpfs only where TorchServe writes
# (`U`: owned by the container's user; podman ignores mode= here, seen with podman 4.3),
# no capabilities, no privilege escalation, the memory limit of a pod.
# Token keys as Kubernetes mounts them from the Secret: one file per key, read-only.
keys_dir=$(mktemp -d "$PODMAN_DIR/tmp/token-keys.XXXXXX")
for key_name in inference management api; do
    python3 -c "import secrets; print(secrets.token_urlsafe(32))" > "$keys_dir/$key_name"
done
chmod 0755 "$keys_dir" && chmod 0444 "$keys_dir"/*
export EXPECTED_INFERENCE_KEY EXPECTED_MANAGEMENT_KEY
EXPECTED_INFERENCE_KEY=$(cat "$keys_dir/inference")
EXPECTED_MANAGEMENT_KEY=$(cat "$keys_dir/management")

log "starting $NAME (inference 127.0.0.1:$inference_port, management :$management_port, metrics :$metrics_port)"
run_started=$(date +%s.%N)
podman run -d --name "$NAME" --init --memory "$MEMORY" \
    --read-only --read-only-tmpfs=false \
    --tmpfs /tmp:rw,size=512m,mode=1777,U \
    --tmpfs /home/model-server/run:rw,size=8m,mode=1777,U \
    --tmpfs /home/model-server/logs:rw,size=64m,mode=1777,U \
    --cap-drop ALL --security-opt no-new-privileges \
    -v "$keys_dir:/etc/pd-segmenter/token-keys:ro" -e TS_TOKEN_KEYS_DIR=/etc/pd-segmenter/token-keys \
    -p "127.0.0.1:$inference_port:8080" \
    -p "127.0.0.1:$management_port:8081" \
    -p "127.0.0.1:$metrics_port:8082" \
    "$IMAGE" >/dev/null

# --- checks (HTTP from the host, keys read from inside the container) -------------------------
export INFERENCE="http://127.0.0.1:$inference_port" MANAGEMENT="http://127.0.0.1:$management_port"
export METRICS="http://127.0.0.1:$metrics_port" SAMPLES="$ROOT/data/sample_captures.npy"
keys() { podman exec "$NAME" cat /home/model-server/run/key_file.json; }

log "waiting for a READY worker (management API, management key)"
ready=""
for _ in $(seq 1 180); do
    podman container exists "$NAME" && [[ $(podman inspect --format '{{.State.Running}}' "$NAME") == true ]] \
        || die "the container stopped"
    if key_file=$(keys 2>/dev/null) && KEYS=$key_file python3 - <<'PY'
import json, os, sys, urllib.request
key = json.loads(os.environ["KEYS"])["management"]["key"]
request = urllib.request.Request(os.environ["MANAGEMENT"] + "/models/pd_segmenter",
                                 headers={"Authorization": f"Bearer {key}"})
try:
    workers = json.load(urllib.request.urlopen(request, timeout=5))[0]["workers"]
except Exception:
    sys.exit(1)
sys.exit(0 if any(w["status"] == "READY" for w in workers) else 1)
PY
    then
        ready=$(python3 -c "import time; print(round(time.time() - $run_started, 1))")
        break
    fi
    sleep 1
done
[[ -n $ready ]] || die "no READY worker after 180 s"
log "model READY ${ready}s after start"

podman healthcheck run "$NAME" >/dev/null || die "the image's HEALTHCHECK reports unhealthy"
podman exec "$NAME" python -I -S /opt/pd-serving/healthcheck.py --live >/dev/null || die "liveness probe failed"

uid=$(podman exec "$NAME" id -u)
[[ $uid != 0 ]] || die "TorchServe runs as root"
log "runs as uid $uid"

podman exec "$NAME" python -I -S -c '
import os
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        continue
    procs[int(pid)] = (cmdline, ppid)
[jvm] = [pid for pid, (cmdline, _) in procs.items()
         if "org.pytorch.serve.ModelServer" in cmdline and pid != os.getpid()]
parent = procs[procs[jvm][1]][0]
assert "tini" in parent, f"the JVM runs under {parent!r}, not tini"
' || die "the JVM is not tini's direct child"

KEYS=$(keys) python3 - <<'PY' || die "predictions or metrics"
import ast, io, json, os, struct, urllib.error, urllib.request

keys = json.loads(os.environ["KEYS"])
# The keys in force are the mounted Secret's (token-keys plugin), and key_file.json says so.
assert keys["inference"]["key"] == os.environ["EXPECTED_INFERENCE_KEY"], "inference key is not the Secret's"
assert keys["management"]["key"] == os.environ["EXPECTED_MANAGEMENT_KEY"], "management key is not the Secret's"
auth = {"Authorization": "Bearer " + os.environ["EXPECTED_INFERENCE_KEY"]}


def post(body: bytes, content_type: str, accept: str = "application/json"):
    request = urllib.request.Request(os.environ["INFERENCE"] + "/predictions/pd_segmenter", data=body,
                                     headers=auth | {"Content-Type": content_type, "Accept": accept})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


npy = open(os.environ["SAMPLES"], "rb").read()
# The first row of the .npy without numpy: header dict, then little-endian float32 or float64.
header_length = struct.unpack("<H", npy[8:10])[0]
header = ast.literal_eval(npy[10:10 + header_length].decode("latin1"))
rows, columns = header["shape"]
dtype = {"<f4": ("f", 4), "<f8": ("d", 8)}[header["descr"]]
data = npy[10 + header_length:]
first = list(struct.unpack(f"<{columns}{dtype[0]}", data[:columns * dtype[1]]))

status, _, body = post(json.dumps({"signal": first}).encode(), "application/json")
answer = json.loads(body)
assert status == 200 and len(answer["signals"]) == 1, answer
assert isinstance(answer["signals"][0]["regions"], list), answer
print(f"JSON: 200, {len(answer['signals'][0]['regions'])} regions")

status, _, body = post(npy, "application/x-npy")
answer = json.loads(body)
assert status == 200 and len(answer["signals"]) == rows, answer
assert all(isinstance(signal["regions"], list) for signal in answer["signals"])
print(f".npy: 200, {rows} signals, regions {[len(s['regions']) for s in answer['signals']]}")

status, content_type, body = post(json.dumps({"signal": first}).encode(), "application/json", "image/png")
assert status == 200 and content_type.startswith("image/png") and body[:4] == b"\x89PNG", content_type
print(f"PNG: 200, {len(body)} bytes")

try:  # no key, no answer
    urllib.request.urlopen(os.environ["INFERENCE"] + "/ping", timeout=10)
    raise AssertionError("/ping answered without a key")
except urllib.error.HTTPError as error:
    assert error.code in (400, 401, 403), error.code

metrics = urllib.request.urlopen(os.environ["METRICS"] + "/metrics", timeout=10).read().decode()
lines = [line for line in metrics.splitlines() if line.startswith("ts_inference_requests_total")]
assert lines and float(lines[0].rsplit(" ", 1)[1]) >= 3, metrics[:2000]
assert "PDSignalsProcessed" in metrics
print("metrics:", lines[0])
PY

# --- reliability: the worker killed under load, the worst accepted requests --------------------
# The same checks as `make reliability` runs against a local server (scripts/reliability.py),
# here against the container under its memory limit; figures go to docs/reliability.md.
if [[ ! -x .venv/bin/python ]]; then
    log "no .venv for the load generator: make setup"
    make setup
fi
log "reliability: worker kill under load, worst accepted requests"
MEMORY=$MEMORY PD_INFERENCE_KEY=$EXPECTED_INFERENCE_KEY PD_MANAGEMENT_KEY=$EXPECTED_MANAGEMENT_KEY \
    .venv/bin/python scripts/reliability.py --container "$NAME" --inference "$INFERENCE" \
    --management "$MANAGEMENT" --only kill,worst || die "reliability checks against the container"
[[ $(podman inspect --format '{{.State.OOMKilled}}' "$NAME") == false ]] || die "OOM-killed in the reliability checks"

# Read the log into a variable first: with pipefail, `grep -q` closing the pipe early would
# fail the pipeline through podman's SIGPIPE.
container_log=$(podman logs "$NAME" 2>&1)
grep -q "Torchserve version: 0.12.0" <<<"$container_log" || die "TorchServe's log is not on stdout"
memory_use=$(podman stats --no-stream --format '{{.MemUsage}}' "$NAME" 2>/dev/null || echo "n/a")
log "memory in use: $memory_use"
[[ $(podman inspect --format '{{.State.OOMKilled}}' "$NAME") == false ]] || die "OOM-killed"

# --- SIGTERM ---------------------------------------------------------------------------------
log "podman stop -t 30"
stop_started=$(date +%s.%N)
podman stop -t 30 "$NAME" >/dev/null
stop_seconds=$(python3 -c "print(round($(date +%s.%N) - $stop_started, 1))")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
log "stopped in ${stop_seconds}s, exit code $exit_code"
[[ $exit_code == 0 || $exit_code == 143 ]] || die "exit code $exit_code after SIGTERM"
python3 -c "import sys; sys.exit(0 if $stop_seconds < 20 else 1)" || die "stop took ${stop_seconds}s (SIGKILL at 30 s)"

# --- size report -----------------------------------------------------------------------------
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE_TAG")
base_note=$(podman image inspect --format '{{index .Labels "org.opencontainers.image.description"}}' \
    "$BASE_TAG" 2>/dev/null || true)
[[ $base_note == "$STAND_IN" ]] || base_note=$BASE_TAG
read -r size_mb size_gib base_mb < <(python3 -c \
    "print(f'{$size / 1e6:.0f}', f'{$size / 2**30:.2f}', f'{$base_size / 1e6:.0f}')")
cat > docs/image.md <<EOF
# Container image size

Written by \`scripts/image_test.sh\` (\`make image-test\`); do not edit by hand.

| | |
|---|---|
| image | \`$IMAGE\` |
| size (podman image inspect --format '{{.Size}}') | **$size bytes = $size_mb MB = $size_gib GiB** (goal: at most 1.0 GB; predecessor 1.61 GB) |
| base image in this build | $base_mb MB: $base_note |
| build time | ${build_seconds} s (podman layer cache under build/podman) |
| model READY after start | ${ready} s |
| memory in use after the test requests | $memory_use (limit $MEMORY) |
| SIGTERM stop | ${stop_seconds} s, exit code $exit_code |
| measured | $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(podman --version) |

Command: \`scripts/image_test.sh\` (as root), i.e.
\`podman build --format docker --pull=never --layers -t $IMAGE -f Dockerfile .\`
then \`podman image inspect --format '{{.Size}}' $IMAGE\`.
EOF
log "image size $size_mb MB ($size_gib GiB); wrote docs/image.md"
((size <= SIZE_LIMIT_BYTES)) || die "image is $size bytes, over the limit of $SIZE_LIMIT_BYTES"
log "all checks passed"

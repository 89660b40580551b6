#!/usr/bin/env bash
# Pull speed and memory, side by side in one run: rocker, `podman pull`
# (rootless, overlay driver) and the floor `curl BLOB | tar -xzf -`, each
# pulling from a local docker-registry into a fresh store on the same
# filesystem. Two images: a debootstrap'd Debian in one layer, and the same
# tree split into four layers (where parallel extraction should beat the
# sequential floor).
#
#   contrib/bench/pull.sh                # RUNS=5 by default
#   RUNS=9 ROCKER=target/release/rocker contrib/bench/pull.sh
#
# Needs: docker-registry skopeo debootstrap curl jq time (and podman for its
# column). Run as root: debootstrap needs it, and the pulls then run as the
# unprivileged user BENCH_USER (created, with a subordinate id range for
# podman, if missing). Only loopback traffic, plus Debian's mirror for
# debootstrap (cached in BENCH_CACHE between runs).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
ROCKER=${ROCKER:-target/release/rocker}
BENCH_USER=${BENCH_USER:-rockerbench}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/rocker-bench-cache}

die() { echo "pull.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it; the pulls run as $BENCH_USER)"
for tool in docker-registry skopeo debootstrap curl jq; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install $tool"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
[ -x "$ROCKER" ] || die "$ROCKER is missing: cargo build --release"
have_podman=$(command -v podman >/dev/null && echo yes || echo no)

if ! id "$BENCH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$BENCH_USER"
fi
if ! grep -q "^$BENCH_USER:" /etc/subuid 2>/dev/null; then
    echo "$BENCH_USER:300000:65536" >>/etc/subuid
    echo "$BENCH_USER:300000:65536" >>/etc/subgid
fi
bench_uid=$(id -u "$BENCH_USER")

work=$(mktemp -d /tmp/rocker-bench.XXXXXX)
chmod 0755 "$work"
registry_pid=
cleanup() {
    if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
as_user() { runuser -u "$BENCH_USER" -- env HOME="$work/home" XDG_RUNTIME_DIR="$work/run" "$@"; }
mkdir -p "$work/home" "$work/run"
chmod 0700 "$work/run"
chown "$BENCH_USER:" "$work/home" "$work/run"
cp "$ROCKER" "$work/rocker"
chmod 0755 "$work/rocker"

# --- the images --------------------------------------------------------------
rootfs=$BENCH_CACHE/debian
if [ ! -e "$rootfs/etc/debian_version" ]; then
    rm -rf "$rootfs"
    mkdir -p "$BENCH_CACHE"
    echo "debootstrap bookworm into $rootfs ..." >&2
    debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
fi

# oci_image LAYOUT TAG PATHS... : one gzip layer per argument (each a
# space-separated list of paths relative to the rootfs).
oci_image() {
    local layout=$1 tag=$2; shift 2
    mkdir -p "$layout/blobs/sha256"
    local layers='[]' diff_ids='[]' part=0
    for paths in "$@"; do
        part=$((part + 1))
        local tmp=$layout/layer.$part
        # shellcheck disable=SC2086 # the list is meant to split
        tar -C "$rootfs" --numeric-owner --exclude=./dev/* --exclude=dev/* -cf "$tmp.tar" $paths
        sha256sum "$tmp.tar" | cut -d' ' -f1 >"$tmp.diffid"
        gzip -6 -c "$tmp.tar" >"$tmp"
        rm "$tmp.tar"
        local digest size
        digest=$(sha256sum "$tmp" | cut -d' ' -f1)
        size=$(stat -c %s "$tmp")
        mv "$tmp" "$layout/blobs/sha256/$digest"
        layers=$(jq -c --arg d "sha256:$digest" --argjson s "$size" \
            '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<<"$layers")
        diff_ids=$(jq -c --arg d "sha256:$(cat "$tmp.diffid")" '. + [$d]' <<<"$diff_ids")
        rm "$tmp.diffid"
    done
    blob() { # writes stdin as a blob, prints "digest size"
        local t=$layout/blob.tmp d
        cat >"$t"
        d=$(sha256sum "$t" | cut -d' ' -f1)
        echo "sha256:$d $(stat -c %s "$t")"
        mv "$t" "$layout/blobs/sha256/$d"
    }
    local config manifest
    config=$(jq -nc --argjson ids "$diff_ids" \
        '{architecture: "amd64", os: "linux", config: {Cmd: ["/bin/sh"]}, rootfs: {type: "layers", diff_ids: $ids}}' | blob)
    manifest=$(jq -nc --arg cd "${config% *}" --argjson cs "${config#* }" --argjson layers "$layers" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
          layers: $layers}' | blob)
    jq -nc --arg md "${manifest% *}" --argjson ms "${manifest#* }" --arg tag "$tag" \
        '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: $md, size: $ms, annotations: {"org.opencontainers.image.ref.name": $tag}}]}' \
        >"$layout/index.json"
    echo '{"imageLayoutVersion": "1.0.0"}' >"$layout/oci-layout"
    jq -r '.[].digest | ltrimstr("sha256:")' <<<"$layers" >"$layout/layer-digests"
}

echo "building the images ..." >&2
oci_image "$work/debian1" 1 "."
# Four layers of comparable size: the biggest trees, then the rest.
rest=$(cd "$rootfs" && ls -A | grep -vx usr | grep -vx var | tr '\n' ' ')
rest_usr=$(cd "$rootfs/usr" && ls -A | grep -vx lib | grep -vx share | sed 's|^|usr/|' | tr '\n' ' ')
oci_image "$work/debian4" 1 "usr/lib" "usr/share" "var $rest_usr" "$rest"

# --- the registry ------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
registry=127.0.0.1:$port
for image in debian1 debian4; do
    skopeo copy -q --dest-tls-verify=false "oci:$work/$image:1" "docker://$registry/bench/$image:1"
done
mkdir -p "$work/config/containers"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry" \
    >"$work/config/containers/registries.conf"
chmod -R a+rX "$work/config"

# --- the contenders ----------------------------------------------------------
# Each prints "seconds peak-RSS-KiB" for one pull into a fresh store.
timed() { as_user /usr/bin/time -f '%e %M' -o "$work/home/time" "$@" >/dev/null && cat "$work/home/time"; }
fresh() { rm -rf "$work/store"; mkdir "$work/store"; chown "$BENCH_USER:" "$work/store"; }

pull_rocker() {
    fresh
    timed env XDG_DATA_HOME="$work/store" XDG_CONFIG_HOME="$work/config" \
        "$work/rocker" pull -q "$registry/bench/$1:1"
}
pull_podman() {
    fresh
    timed podman --root "$work/store/root" --runroot "$work/run/podman" --storage-driver overlay \
        pull -q --tls-verify=false "$registry/bench/$1:1"
    as_user podman --root "$work/store/root" --runroot "$work/run/podman" \
        --storage-driver overlay unshare rm -rf "$work/store/root" 2>/dev/null || true
}
# The floor: every layer fetched and unpacked one after another, with no
# verification, by curl and GNU tar.
pull_floor() {
    fresh
    local script="set -e"
    while read -r digest; do
        script="$script; mkdir -p $work/store/$digest; curl -fs http://$registry/v2/bench/$1/blobs/sha256:$digest | tar -xzf - -C $work/store/$digest"
    done <"$work/$1/layer-digests"
    timed sh -c "$script"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
measure() { # measure TOOL IMAGE -> "median-seconds max-RSS-MiB"
    local times=() rss=0 line
    for _ in $(seq "$RUNS"); do
        sync
        echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
        line=$("pull_$1" "$2")
        times+=("${line% *}")
        [ "${line#* }" -gt "$rss" ] && rss=${line#* }
    done
    echo "$(printf '%s\n' "${times[@]}" | median) $((rss / 1024))"
}

size_mb() { du -sm --apparent-size "$work/$1/blobs" | cut -f1; }
printf '\n%-26s %-8s %10s %12s\n' "image (compressed MB)" tool "median s" "peak RSS MB"
for image in debian1 debian4; do
    label="$image ($(size_mb "$image"))"
    tools="floor rocker"
    [ "$have_podman" = yes ] && tools="$tools podman"
    for tool in $tools; do
        read -r seconds rss < <(measure "$tool" "$image")
        printf '%-26s %-8s %10s %12s\n' "$label" "$tool" "$seconds" "$rss"
    done
done
[ "$have_podman" = yes ] || echo "(podman is not installed: apt-get install podman for its column)"
echo "$RUNS runs each, medians; $(nproc) cores; $(uname -r)"

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

NAME=pull.sh
# shellcheck source=contrib/bench/lib.sh
. contrib/bench/lib.sh
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"

echo "building the images ..." >&2
oci_image "$rootfs" "$work/debian1" 1 "."
# Four layers of comparable size: the biggest trees, then the rest.
rest=$(cd "$rootfs" && ls -A | grep -vx usr | grep -vx var | tr '\n' ' ')
rest_usr=$(cd "$rootfs/usr" && ls -A | grep -vx lib | grep -vx share | sed 's|^|usr/|' | tr '\n' ' ')
oci_image "$rootfs" "$work/debian4" 1 "usr/lib" "usr/share" "var $rest_usr" "$rest"

# --- the registry ------------------------------------------------------------
start_registry
push "$work/debian1" debian1
push "$work/debian4" debian4

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

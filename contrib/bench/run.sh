#!/usr/bin/env bash
# Start-up cost of a container, side by side in one run, image cached:
#
#   floor    unshare -Urmpfiun --mount-proc true   (the namespaces alone)
#   bwrap    bwrap --unshare-all on the image's tree
#   rocker   rocker run --rm --network none IMAGE true
#   nofilter the same without its seccomp filter (and root emulation):
#            what the filter costs a start
#   podman   podman run --rm --network none --runtime runc IMAGE true
#
# for a busybox image (our stand-in for alpine: no internet here) and a
# debootstrap'd Debian. Each runs RUNS times after two warm-up runs; the
# table shows the median and the 90th percentile in milliseconds.
#
#   contrib/bench/run.sh                 # RUNS=41 by default
#   RUNS=101 ROCKER=target/release/rocker contrib/bench/run.sh
#
# Needs: docker-registry skopeo debootstrap curl jq bubblewrap busybox-static
# (and podman with runc for its column). Run as root; the contenders run as
# the unprivileged user BENCH_USER (created if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-41}
NAME=run.sh
# shellcheck source=contrib/bench/lib.sh
. contrib/bench/lib.sh
need bwrap unshare

# --- the images --------------------------------------------------------------
echo "building the images ..." >&2
busybox_tree "$work/busybox-tree"
busybox=$work/busybox-tree
oci_image "$busybox" "$work/busybox" 1 "."
oci_image "$rootfs" "$work/debian" 1 "."
start_registry
push "$work/busybox" busybox
push "$work/debian" debian

for image in busybox debian; do
    rocker pull -q "$registry/bench/$image:1" >/dev/null
    if [ "$have_podman" = yes ]; then
        podman_ pull -q --tls-verify=false "$registry/bench/$image:1" >/dev/null
    fi
done
echo "rocker's rootfs: $(rocker info | grep -i 'containers use' || true)" >&2

# --- the contenders ----------------------------------------------------------
# contender TOOL IMAGE: the command line that starts `true` in a container.
contender() {
    local tree=$busybox
    [ "$2" = debian ] && tree=$rootfs
    case $1 in
    floor) echo "unshare -Urmpfiun --mount-proc true" ;;
    bwrap) echo "bwrap --unshare-all --ro-bind $tree / --proc /proc --dev /dev true" ;;
    rocker) echo "$rocker_cmd run --rm --network none $registry/bench/$2:1 true" ;;
    nofilter) echo "$rocker_cmd run --rm --network none --security-opt seccomp=unconfined --security-opt root-emulation=false $registry/bench/$2:1 true" ;;
    podman) echo "$podman_cmd run --rm --network none $registry/bench/$2:1 true" ;;
    esac
}

# measure TOOL IMAGE -> "median-ms p90-ms"
measure() { time_runs "$(contender "$1" "$2")"; }

printf '\n%-8s %-8s %10s %8s\n' image tool "median ms" "p90 ms"
tools="floor bwrap rocker nofilter"
[ "$have_podman" = yes ] && tools="$tools podman"
for image in busybox debian; do
    for tool in $tools; do
        read -r med p90 < <(measure "$tool" "$image")
        printf '%-8s %-8s %10s %8s\n' "$image" "$tool" "$med" "$p90"
    done
done
[ "$have_podman" = yes ] || echo "(podman is not installed: apt-get install podman runc for its column)"
echo "$RUNS runs each after 2 warm-ups; $(nproc) cores; $(uname -r)"

#!/usr/bin/env bash
# Start-up cost of a container, side by side in one run, image cached:
#
#   floor    unshare -Urmpfiun --mount-proc true   (the namespaces alone)
#   bwrap    bwrap --unshare-all on the image's tree
#   rootfs   rocker run --rm --network none --rootfs TREE true
#   rocker   rocker run --rm --network none IMAGE true
#   nofilter the same without its seccomp filter (and root emulation):
#            what the filter costs a start
#   slirp    rocker run --rm IMAGE true (the default network, slirp4netns)
#   podman   podman run --rm --network none --runtime runc IMAGE true
#
# Each line has its ratio to the floor; an image's contenders but podman
# take turns, run by run (see time_interleaved in lib.sh). Then the store's weight: the image
# run and `ps -a` with KEPT stopped containers (default 300) and IMAGES
# more images (default 200, each committed from a container of its own, so
# a layer and a config apiece) in the store.
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
# --rootfs runs on a tree of the user's own: rocker makes its mount points
# (/etc/hosts and the like) in it, as in a tree a user unpacked.
for image in busybox debian; do
    tree=$busybox
    [ "$image" = debian ] && tree=$rootfs
    cp -a "$tree" "$work/own-$image"
    chown -R "$BENCH_USER:" "$work/own-$image"
done

# --- the contenders ----------------------------------------------------------
# contender TOOL IMAGE: the command line that starts `true` in a container.
contender() {
    local tree=$busybox
    [ "$2" = debian ] && tree=$rootfs
    case $1 in
    floor) echo "unshare -Urmpfiun --mount-proc true" ;;
    bwrap) echo "bwrap --unshare-all --ro-bind $tree / --proc /proc --dev /dev true" ;;
    rootfs) echo "$rocker_cmd run --rm --network none --rootfs $work/own-$2 true" ;;
    rocker) echo "$rocker_cmd run --rm --network none $registry/bench/$2:1 true" ;;
    slirp) echo "$rocker_cmd run --rm $registry/bench/$2:1 true" ;;
    nofilter) echo "$rocker_cmd run --rm --network none --security-opt seccomp=unconfined --security-opt root-emulation=false $registry/bench/$2:1 true" ;;
    podman) echo "$podman_cmd run --rm --network none $registry/bench/$2:1 true" ;;
    esac
}

printf '\n%-8s %-8s %10s %8s %9s\n' image tool "median ms" "p90 ms" "x floor"
# What the set-up wrote (the pulls, the trees' copies) is on disk first, as
# a user's images are: writeback under way slows every new inode on a file
# system like this one's (an image run was 16 ms instead of 8 without).
sync
row() { # IMAGE TOOL MEDIAN P90 FLOOR
    printf '%-8s %-8s %10s %8s %9s\n' "$1" "$2" "$3" "$4" \
        "$(awk -v a="$3" -v b="$5" 'BEGIN { printf "%.2f", a / b }')"
}
for image in busybox debian; do
    # An image's contenders in one interleaved series; podman on its own
    # after it, since its cleanup goes on after each run returns and would
    # slow whichever run came next.
    series=()
    for tool in floor bwrap rootfs rocker nofilter slirp; do
        series+=("$tool" "$(contender "$tool" "$image")")
    done
    floor=
    while read -r tool med p90; do
        [ -n "$floor" ] || floor=$med
        row "$image" "$tool" "$med" "$p90" "$floor"
    done < <(time_interleaved "${series[@]}")
    if [ "$have_podman" = yes ]; then
        read -r med p90 < <(time_runs "$(contender podman "$image")")
        row "$image" podman "$med" "$p90" "$floor"
        sleep 2
    fi
done

# --- the store's weight -------------------------------------------------------
KEPT=${KEPT:-300}
IMAGES=${IMAGES:-200}
image=$registry/bench/busybox:1
read -r empty_run _ < <(time_runs "$rocker_cmd run --rm --network none $image true")
read -r empty_ps _ < <(time_runs "$rocker_cmd ps -a")
echo "keeping $KEPT stopped containers ..." >&2
as_user bash -c 'for ((i = 0; i < $2; i++)); do $1 >/dev/null || exit 1; done' bench \
    "$rocker_cmd run --network none $image true" "$KEPT"
echo "adding $IMAGES images ..." >&2
as_user bash -c 'for ((i = 0; i < $3; i++)); do
        $1 run --name bench-commit --network none $2 sh -c "echo $i >/n" >/dev/null &&
        $1 commit bench-commit bench/committed-$i:1 >/dev/null &&
        $1 rm bench-commit >/dev/null || exit 1
    done' bench "$rocker_cmd" "$image" "$IMAGES"
sync
read -r full_run _ < <(time_runs "$rocker_cmd run --rm --network none $image true")
read -r full_ps _ < <(time_runs "$rocker_cmd ps -a")
printf '\n%-34s %10s %14s %8s\n' "median ms" "empty" "+$KEPT ctr $IMAGES img" ratio
for row in "run --rm --network none:$empty_run:$full_run" "ps -a:$empty_ps:$full_ps"; do
    IFS=: read -r what a b <<<"$row"
    printf '%-34s %10s %14s %8s\n' "$what" "$a" "$b" \
        "$(awk -v a="$b" -v b="$a" 'BEGIN { printf "%.2f", a / b }')"
done
[ "$have_podman" = yes ] || echo "(podman is not installed: apt-get install podman runc for its column)"
echo "$RUNS runs each after 2 warm-ups; $(nproc) cores; $(uname -r)"

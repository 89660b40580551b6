#!/usr/bin/env bash
# Start-up cost of a container, side by side in one run, image cached:
#
#   floor    unshare -Urmpfiun --mount-proc true   (the namespaces alone)
#   bwrap    bwrap --unshare-all on the image's tree
#   rocker   rocker run --rm --network none IMAGE true
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
[ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
if [ "$have_podman" = yes ] && ! command -v runc >/dev/null; then
    die "podman needs runc on hybrid cgroups: apt-get install runc (or remove podman)"
fi

# --- the images --------------------------------------------------------------
echo "building the images ..." >&2
busybox=$work/busybox-tree
mkdir -p "$busybox"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$busybox/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$busybox/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$busybox/etc/passwd"
echo 'root:x:0:' >"$busybox/etc/group"
oci_image "$busybox" "$work/busybox" 1 "."
oci_image "$rootfs" "$work/debian" 1 "."
start_registry
push "$work/busybox" busybox
push "$work/debian" debian

mkdir -p "$work/store"
chown "$BENCH_USER:" "$work/store"
rocker() {
    as_user env XDG_DATA_HOME="$work/store" XDG_CONFIG_HOME="$work/config" "$work/rocker" "$@"
}
podman_() {
    as_user podman --root "$work/store/podman" --runroot "$work/run/podman" \
        --storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
        --runtime runc "$@"
}
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
    rocker)
        echo "env XDG_DATA_HOME=$work/store XDG_CONFIG_HOME=$work/config \
              $work/rocker run --rm --network none $registry/bench/$2:1 true"
        ;;
    podman)
        echo "podman --root $work/store/podman --runroot $work/run/podman \
              --storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
              --runtime runc run --rm --network none $registry/bench/$2:1 true"
        ;;
    esac
}

# measure TOOL IMAGE -> "median-ms p90-ms": the loop runs as the user in one
# bash, timed with $EPOCHREALTIME (no fork for the clock).
measure() {
    local command
    command=$(contender "$1" "$2")
    # shellcheck disable=SC2016 # expanded by the inner bash
    as_user bash -c '
        for i in 1 2; do $1 >/dev/null 2>&1 || { echo "failed: $1" >&2; $1; exit 1; }; done
        for ((i = 0; i < $2; i++)); do
            start=$EPOCHREALTIME
            $1 >/dev/null 2>&1 || { echo "failed: $1" >&2; exit 1; }
            echo "$start $EPOCHREALTIME"
        done' bench "$command" "$RUNS" |
        awk '{ printf "%.2f\n", ($2 - $1) * 1000 }' | sort -n |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)] }'
}

printf '\n%-8s %-8s %10s %8s\n' image tool "median ms" "p90 ms"
tools="floor bwrap rocker"
[ "$have_podman" = yes ] && tools="$tools podman"
for image in busybox debian; do
    for tool in $tools; do
        read -r med p90 < <(measure "$tool" "$image")
        printf '%-8s %-8s %10s %8s\n' "$image" "$tool" "$med" "$p90"
    done
done
[ "$have_podman" = yes ] || echo "(podman is not installed: apt-get install podman runc for its column)"
echo "$RUNS runs each after 2 warm-ups; $(nproc) cores; $(uname -r)"

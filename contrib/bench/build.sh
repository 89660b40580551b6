#!/usr/bin/env bash
# Build speed and memory, side by side in one run: `rocker build` and
# `podman build` of the same Containerfile over a debootstrap'd Debian from
# a local docker-registry, cold (every step runs: --no-cache, the base
# image already in each store) and cached (nothing changed since).
#
# The Containerfile does real work without the network: a COPY of a
# context of 2000 small files, two RUNs that write through the image
# (dpkg's database read, a tar of /usr/share/doc), ENV, WORKDIR, CMD.
#
#   contrib/bench/build.sh               # RUNS=5 by default
#   RUNS=9 ROCKER=target/release/rocker contrib/bench/build.sh
#
# Needs: docker-registry skopeo debootstrap curl jq time (and podman with
# runc for its rows). Run as root; the builds run as BENCH_USER. podman
# runs as that user too when it can build rootless on this host; else as
# root, and the table says so.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=build.sh
# shellcheck source=contrib/bench/lib.sh
. contrib/bench/lib.sh
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"

echo "building the base image and the context ..." >&2
oci_image "$rootfs" "$work/debian" 1 "."
start_registry
push "$work/debian" debian
base=$registry/bench/debian:1

context=$work/context
mkdir -p "$context/site"
for i in $(seq 2000); do echo "file $i" >"$context/site/f$i.txt"; done
printf '%s\n' \
    "FROM $base" \
    'ENV APP=/srv/app' \
    'WORKDIR $APP' \
    'COPY site/ site/' \
    'RUN dpkg -l > packages.txt && tar -czf share.tgz -C /usr share/doc' \
    'RUN wc -l packages.txt > count && ls site | wc -l >> count' \
    'CMD ["cat", "count"]' >"$context/Containerfile"
chmod -R a+rX "$context"

rocker pull -q "$base" >/dev/null
podman_as=none
podman_root="podman --root $work/podman-root --runroot $work/podman-run --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime runc"
if [ "$have_podman" = yes ]; then
    if podman_ pull -q --tls-verify=false "$base" >/dev/null 2>&1 &&
        podman_ build -q --tls-verify=false -t probe "$context" >/dev/null 2>&1; then
        podman_as=user
    else
        # shellcheck disable=SC2086
        $podman_root pull -q --tls-verify=false "$base" >/dev/null
        podman_as=root
    fi
fi

timed() { # timed user|root COMMAND... -> "seconds max-RSS-KiB"
    local who=$1
    shift
    if [ "$who" = root ]; then
        /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/errors" ||
            { echo "failed: $*" >&2; tail -5 "$work/errors" >&2; exit 1; }
        cat "$work/time"
    else
        as_user /usr/bin/time -f '%e %M' -o "$work/home/time" "$@" >/dev/null 2>"$work/errors" ||
            { echo "failed: $*" >&2; tail -5 "$work/errors" >&2; exit 1; }
        cat "$work/home/time"
    fi
}

build() { # build TOOL cold|cached
    local flags=""
    [ "$2" = cold ] && flags="--no-cache"
    case $1 in
    # shellcheck disable=SC2086 # the command lines are meant to split
    rocker) timed user $rocker_cmd build -q $flags -t bench "$context" ;;
    podman)
        if [ "$podman_as" = root ]; then
            # shellcheck disable=SC2086
            timed root $podman_root build -q $flags --tls-verify=false -t bench "$context"
        else
            # shellcheck disable=SC2086
            timed user $podman_cmd build -q $flags --tls-verify=false -t bench "$context"
        fi
        ;;
    esac
}

measure() { # measure TOOL cold|cached -> "median-seconds max-RSS-MiB"
    local times=() rss=0 line
    build "$1" cold >/dev/null # the first build fills the cache
    for _ in $(seq "$RUNS"); do
        line=$(build "$1" "$2")
        times+=("${line% *}")
        [ "${line#* }" -gt "$rss" ] && rss=${line#* }
    done
    printf '%s\n' "${times[@]}" | median | tr '\n' ' '
    echo $((rss / 1024))
}

printf '\n%-8s %-8s %10s %12s\n' tool build "median s" "max RSS MiB"
tools=rocker
[ "$podman_as" != none ] && tools="rocker podman"
for tool in $tools; do
    for kind in cold cached; do
        read -r med rss < <(measure "$tool" "$kind")
        label=$tool
        [ "$tool" = podman ] && [ "$podman_as" = root ] && label="podman*"
        printf '%-8s %-8s %10s %12s\n' "$label" "$kind" "$med" "$rss"
    done
done
[ "$podman_as" = root ] && echo "(* podman could not build rootless on this host: it ran as root)"
[ "$have_podman" = yes ] || echo "(podman is not installed: apt-get install podman runc for its rows)"
echo "$RUNS runs each; $(nproc) cores; $(uname -r)"

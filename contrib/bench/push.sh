#!/usr/bin/env bash
# Push speed and memory, side by side in one run: `rocker push` of an image
# from its store and `skopeo copy` of the same image from an OCI layout,
# both sending the same compressed blobs to a local docker-registry under a
# fresh repository each run (so every blob is uploaded), then again to the
# same repository (every blob already there). A debootstrap'd Debian, in one
# layer and in four.
#
#   contrib/bench/push.sh                # RUNS=5 by default
#   RUNS=9 ROCKER=target/release/rocker contrib/bench/push.sh
#
# Needs: docker-registry skopeo debootstrap curl jq time. Run as root (for
# debootstrap); the pushes run as the unprivileged BENCH_USER. Only loopback
# traffic, plus Debian's mirror for debootstrap (cached between runs).
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=push.sh
# shellcheck source=contrib/bench/lib.sh
. contrib/bench/lib.sh
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"

echo "building the images ..." >&2
oci_image "$rootfs" "$work/debian1" 1 "."
rest=$(cd "$rootfs" && ls -A | grep -vx usr | grep -vx var | tr '\n' ' ')
rest_usr=$(cd "$rootfs/usr" && ls -A | grep -vx lib | grep -vx share | sed 's|^|usr/|' | tr '\n' ' ')
oci_image "$rootfs" "$work/debian4" 1 "usr/lib" "usr/share" "var $rest_usr" "$rest"
chmod -R a+rX "$work/debian1" "$work/debian4"

# The source registry fills rocker's store; the pushes go to the other.
start_registry source
source_registry=$registry
push "$work/debian1" debian1
push "$work/debian4" debian4
start_registry target
for image in debian1 debian4; do
    rocker pull -q "$source_registry/bench/$image:1" >/dev/null
done

timed() { as_user /usr/bin/time -f '%e %M' -o "$work/home/time" "$@" >/dev/null 2>&1 && cat "$work/home/time"; }
run_number=0
push_rocker() { # push_rocker IMAGE REPOSITORY
    timed $rocker_cmd push -q "$source_registry/bench/$1:1" "$registry/$2/$1:1"
}
push_skopeo() {
    # skopeo remembers where it pushed a blob and mounts it from there
    # next time; a fresh push must not, to send the bytes as rocker does.
    case $2 in *-again) ;; *) rm -rf "$work/home/.local/share/containers/cache" ;; esac
    timed skopeo copy -q --dest-tls-verify=false "oci:$work/$1:1" "docker://$registry/$2/$1:1"
}

measure() { # measure TOOL IMAGE fresh|again -> "median-seconds max-RSS-MiB"
    local times=() rss=0 line repository
    for _ in $(seq "$RUNS"); do
        run_number=$((run_number + 1))
        repository="$1-$run_number"
        if [ "$3" = again ]; then
            repository="$1-again"
            "push_$1" "$2" "$repository" >/dev/null
        fi
        line=$("push_$1" "$2" "$repository")
        times+=("${line% *}")
        [ "${line#* }" -gt "$rss" ] && rss=${line#* }
    done
    echo "$(printf '%s\n' "${times[@]}" | median) $((rss / 1024))"
}

size_mb() { du -sm --apparent-size "$work/$1/blobs" | cut -f1; }
printf '\n%-26s %-7s %-8s %10s %12s\n' "image (compressed MB)" push tool "median s" "peak RSS MB"
for image in debian1 debian4; do
    label="$image ($(size_mb "$image"))"
    for kind in fresh again; do
        for tool in skopeo rocker; do
            read -r seconds rss < <(measure "$tool" "$image" "$kind")
            printf '%-26s %-7s %-8s %10s %12s\n' "$label" "$kind" "$tool" "$seconds" "$rss"
        done
    done
done
echo "$RUNS runs each, medians; $(nproc) cores; $(uname -r)"

# Shared by the benchmark scripts (sourced, not run): the unprivileged user
# the contenders run as, a scratch dir, the cached Debian tree, OCI images
# built from trees, and a local docker-registry. Only loopback traffic,
# plus Debian's mirror for debootstrap (cached in BENCH_CACHE between runs).
#
# The sourcing script sets NAME (for messages) before sourcing.

RUNS=${RUNS:-5}
# The install's build (static, see contrib/build/static.toml), else a
# plain release build.
host_tuple=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p' || true)
if [ -z "${ROCKER:-}" ] && [ -x "target/${host_tuple:-HOST}/release/rocker" ]; then
    ROCKER=target/$host_tuple/release/rocker
fi
ROCKER=${ROCKER:-target/release/rocker}
BENCH_USER=${BENCH_USER:-rockerbench}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/rocker-bench-cache}

die() { echo "$NAME: $*" >&2; exit 1; }

# need TOOL... : each must be on PATH (the Debian package of the same name).
need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing: apt-get install $tool"
    done
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it; the contenders run as $BENCH_USER)"
need docker-registry skopeo debootstrap curl jq
[ -x "$ROCKER" ] || die "$ROCKER is missing: cargo build --release --config contrib/build/static.toml"
have_podman=$(command -v podman >/dev/null && echo yes || echo no)
if [ "$have_podman" = yes ] && ! command -v runc >/dev/null; then
    die "podman needs runc on hybrid cgroups: apt-get install runc (or remove podman)"
fi

# The user, with a subordinate id range for podman.
if ! id "$BENCH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$BENCH_USER"
fi
if ! grep -q "^$BENCH_USER:" /etc/subuid 2>/dev/null; then
    echo "$BENCH_USER:300000:65536" >>/etc/subuid
    echo "$BENCH_USER:300000:65536" >>/etc/subgid
fi

# Short: podman puts 64-hex-named sockets under $XDG_RUNTIME_DIR, and a
# socket path must fit in 108 bytes.
work=$(mktemp -d /tmp/rbench.XXXXXX)
chmod 0755 "$work"
registry_pids=
cleanup() {
    for pid in $registry_pids; do kill "$pid" 2>/dev/null || true; done
    umount "$work/run" 2>/dev/null || true
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
as_user() { runuser -u "$BENCH_USER" -- env HOME="$work/home" XDG_RUNTIME_DIR="$work/run" "$@"; }
mkdir -p "$work/home" "$work/run"
# A user session's runtime dir is a tmpfs (/run/user/UID); so is this one.
mount -t tmpfs -o mode=0700,size=64m tmpfs "$work/run"
chown "$BENCH_USER:" "$work/home" "$work/run"
cp "$ROCKER" "$work/rocker"
chmod 0755 "$work/rocker"
mkdir -p "$work/store"
chown "$BENCH_USER:" "$work/store"

# The contenders' command lines (to run as the user) with their stores under
# $work, and shell functions running them as the user.
rocker_cmd="env XDG_DATA_HOME=$work/store XDG_CONFIG_HOME=$work/config $work/rocker"
podman_cmd="podman --root $work/store/podman --runroot $work/run/podman \
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime runc"
# shellcheck disable=SC2086 # the command lines are meant to split
rocker() { as_user $rocker_cmd "$@"; }
# shellcheck disable=SC2086
podman_() { as_user $podman_cmd "$@"; }

# The Debian tree, debootstrapped once and kept.
rootfs=$BENCH_CACHE/debian
if [ ! -e "$rootfs/etc/debian_version" ]; then
    rm -rf "$rootfs"
    mkdir -p "$BENCH_CACHE"
    echo "debootstrap bookworm into $rootfs ..." >&2
    debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
fi

# oci_image TREE LAYOUT TAG PATHS... : an OCI layout of TREE with one gzip
# layer per argument (each a space-separated list of paths relative to
# TREE); the layer digests go to LAYOUT/layer-digests.
oci_image() {
    local tree=$1 layout=$2 tag=$3; shift 3
    mkdir -p "$layout/blobs/sha256"
    local layers='[]' diff_ids='[]' part=0
    for paths in "$@"; do
        part=$((part + 1))
        local tmp=$layout/layer.$part
        # shellcheck disable=SC2086 # the list is meant to split
        tar -C "$tree" --numeric-owner --exclude=./dev/* --exclude=dev/* -cf "$tmp.tar" $paths
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
    # One history entry per layer: buildah refuses a base whose history
    # counts fewer layers than it has.
    config=$(jq -nc --argjson ids "$diff_ids" \
        '{architecture: "amd64", os: "linux", config: {Cmd: ["/bin/sh"]}, rootfs: {type: "layers", diff_ids: $ids},
          history: [$ids[] | {created_by: "contrib/bench"}]}' | blob)
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

# start_registry [NAME]: a docker-registry on a free loopback port; sets
# $registry and adds it, marked insecure, to the registries.conf under
# $work/config.
start_registry() {
    local port name=${1:-registry}
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$work/$name.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/$name
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$work/$name.yml" >/dev/null 2>&1 &
    registry_pids="$registry_pids $!"
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    registry=127.0.0.1:$port
    mkdir -p "$work/config/containers"
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n\n' "$registry" \
        >>"$work/config/containers/registries.conf"
    chmod -R a+rX "$work/config"
}

# push LAYOUT NAME : the layout's image as $registry/bench/NAME:1.
push() {
    skopeo copy -q --dest-tls-verify=false "oci:$1:1" "docker://$registry/bench/$2:1"
}

# busybox_tree DIR: a busybox root (our stand-in for alpine: no internet).
busybox_tree() {
    [ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
    mkdir -p "$1"/{bin,etc,proc,sys,dev,tmp,root}
    cp /bin/busybox "$1/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$1/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"
    echo 'root:x:0:' >"$1/etc/group"
}

# time_runs COMMAND -> "median-ms p90-ms" of RUNS runs of COMMAND after two
# warm-ups: the loop runs as the user in one bash, timed with
# $EPOCHREALTIME (no fork for the clock).
time_runs() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    as_user bash -c '
        for i in 1 2; do $1 >/dev/null 2>&1 || { echo "failed: $1" >&2; $1; exit 1; }; done
        for ((i = 0; i < $2; i++)); do
            start=$EPOCHREALTIME
            $1 >/dev/null 2>&1 || { echo "failed: $1" >&2; exit 1; }
            echo "$start $EPOCHREALTIME"
        done' bench "$1" "$RUNS" |
        awk '{ printf "%.2f\n", ($2 - $1) * 1000 }' | sort -n |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)] }'
}

# time_interleaved LABEL COMMAND [LABEL COMMAND ...] -> "LABEL median-ms
# p90-ms" per command, in the order given: two warm-ups each, then RUNS
# rounds in which every command runs once, one after the other, so that a
# host whose speed drifts (a VM's neighbours, a file system that slows as
# it fills) moves them all alike and their ratios hold.
time_interleaved() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    as_user bash -c '
        runs=$1; shift
        for i in 1 2; do
            for ((c = 2; c <= $#; c += 2)); do
                ${!c} >/dev/null 2>&1 || { echo "failed: ${!c}" >&2; ${!c}; exit 1; }
            done
        done
        for ((i = 0; i < runs; i++)); do
            for ((c = 2; c <= $#; c += 2)); do
                l=$((c - 1))
                start=$EPOCHREALTIME
                ${!c} >/dev/null 2>&1 || { echo "failed: ${!c}" >&2; exit 1; }
                echo "${!l} $start $EPOCHREALTIME"
            done
        done' bench "$RUNS" "$@" |
        awk '{ ms[$1] = ms[$1] " " sprintf("%.2f", ($3 - $2) * 1000) }
             END { for (l in ms) print l ms[l] }' |
        while read -r label times; do
            # shellcheck disable=SC2086 # one time per word
            printf '%s\n' $times | sort -n |
                awk -v l="$label" '{ v[NR] = $1 }
                    END { print l, v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)] }'
        done |
        awk -v order="$(for ((c = 1; c <= $#; c += 2)); do printf '%s ' "${!c}"; done)" '
            { line[$1] = $0 }
            END { n = split(order, o, " "); for (i = 1; i <= n; i++) print line[o[i]] }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

#!/usr/bin/env bash
# The cost of the default network, side by side in one run (busybox image,
# cached):
#
#   start     `run --rm IMAGE true` with no network and with the user-mode
#             network (rocker's default; podman's --network slirp4netns);
#             the difference is what setting up the network costs a run
#   upload    SIZE_MB sent from the host into the container through a
#             published port (-p 127.0.0.1:PORT:5000, nc listening inside)
#   download  the same the other way: the container serves, the host reads
#   c2c       SIZE_MB from one container to another: on a user-defined
#             network (by name, over its bridge), and for comparison with
#             the default network, where a container reaches another only
#             through the other's published port on the host
#             (allow_host_loopback, 10.0.2.2:PORT)
#
# A user-defined network is timed cold (the first container starts the
# keeper and its slirp4netns) and warm (another container holds it up).
#
# Podman runs with port_handler=slirp4netns (as rocker does) and, when its
# rootlessport helper is installed, also with its default rootlesskit
# handler.
#
#   contrib/bench/net.sh                       # RUNS=41, SIZE_MB=1024
#   RUNS=11 SIZE_MB=256 contrib/bench/net.sh
#
# Needs: docker-registry skopeo debootstrap curl jq busybox-static
# slirp4netns python3 (passt for the pasta rows, podman with runc for its
# rows). Run as root; the
# contenders run as the unprivileged user BENCH_USER. All traffic stays on
# loopback and in the containers' namespaces.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-41}
SIZE_MB=${SIZE_MB:-1024}
TRANSFERS=${TRANSFERS:-3}
NAME=net.sh
# shellcheck source=contrib/bench/lib.sh
. contrib/bench/lib.sh
need slirp4netns python3

echo "building the image ..." >&2
busybox_tree "$work/busybox-tree"
oci_image "$work/busybox-tree" "$work/busybox" 1 "."
start_registry
push "$work/busybox" busybox
image=$registry/bench/busybox:1
rocker pull -q "$image" >/dev/null
if [ "$have_podman" = yes ]; then
    podman_ pull -q --tls-verify=false "$image" >/dev/null
fi

# --- start latency -----------------------------------------------------------
printf '\n%-28s %10s %8s\n' "start (true)" "median ms" "p90 ms"
start_row() { # start_row LABEL COMMAND
    local med p90
    read -r med p90 < <(time_runs "$2")
    printf '%-28s %10s %8s\n' "$1" "$med" "$p90"
}
start_row "rocker --network none" "$rocker_cmd run --rm --network none $image true"
start_row "rocker (slirp4netns)" "$rocker_cmd run --rm $image true"
if command -v pasta >/dev/null; then
    start_row "rocker --network pasta" "$rocker_cmd run --rm --network pasta $image true"
fi
rocker network create bench >/dev/null
start_row "rocker --network bench (cold)" "$rocker_cmd run --rm --network bench $image true"
holder=$(rocker run -d --network bench "$image" sleep 3600)
start_row "rocker --network bench (warm)" "$rocker_cmd run --rm --network bench $image true"
rocker rm -f "$holder" >/dev/null
if [ "$have_podman" = yes ]; then
    start_row "podman --network none" "$podman_cmd run --rm --network none $image true"
    start_row "podman --network slirp4netns" "$podman_cmd run --rm --network slirp4netns $image true"
fi

# --- throughput --------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# transfer COMMAND NETWORK-FLAGS up|down -> "start end" of one transfer of
# SIZE_MB through a published port. The container says "up" just before nc
# listens; the host waits a moment after that (the host port is bound
# before the container's command starts, so a connect alone proves
# nothing), sends or reads, and checks the byte count.
transfer() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    as_user bash -c '
        set -e
        cmd=$1 net=$2 direction=$3 port=$4 mb=$5 image=$6 host=${7:-127.0.0.1}
        publish=$host
        case $host in *:*) publish="[$host]" ;; esac
        bytes=$((mb * 1048576))
        if [ "$direction" = up ]; then
            inner="echo up; nc -l -p 5000 | wc -c"
        else
            inner="echo up; dd if=/dev/zero bs=1M count=$mb 2>/dev/null | nc -l -p 5000"
        fi
        coproc container { exec $cmd run --rm $net -p $publish:$port:5000 $image sh -c "$inner" 2>&1; }
        read -r line <&"${container[0]}"
        [ "$line" = up ] || { echo "the container said: $line" >&2; exit 1; }
        sleep 0.5
        start=$EPOCHREALTIME
        if [ "$direction" = up ]; then
            dd if=/dev/zero bs=1M count="$mb" 2>/dev/null >/dev/tcp/"$host"/"$port"
            read -r got <&"${container[0]}"
        else
            got=$(cat </dev/tcp/"$host"/"$port" | wc -c)
        fi
        end=$EPOCHREALTIME
        wait "$container_PID"
        [ "$got" = "$bytes" ] || { echo "$got of $bytes bytes arrived" >&2; exit 1; }
        echo "$start $end"' bench "$1" "$2" "$3" "$(free_port)" "$SIZE_MB" "$image" "${4:-}"
}

# throughput COMMAND NETWORK-FLAGS DIRECTION [HOST] -> median MB/s of
# TRANSFERS (HOST: the published address, 127.0.0.1 by default).
throughput() {
    for _ in $(seq "$TRANSFERS"); do
        transfer "$1" "$2" "$3" "${4:-}" || die "a transfer failed: $1 run $2 ($3)"
    done | awk -v mb="$SIZE_MB" '{ printf "%.0f\n", mb / ($2 - $1) }' | median
}

printf '\n%-44s %12s %12s\n' "through -p ($SIZE_MB MB)" "upload MB/s" "download MB/s"
throughput_row() { # throughput_row LABEL COMMAND NETWORK-FLAGS [HOST]
    printf '%-44s %12s %12s\n' "$1" "$(throughput "$2" "$3" up "${4:-}")" \
        "$(throughput "$2" "$3" down "${4:-}")"
}
throughput_row "rocker (slirp4netns API)" "$rocker_cmd" ""
throughput_row "rocker --network bench" "$rocker_cmd" "--network bench"
throughput_row "rocker -p [::1] (rocker's forwarder)" "$rocker_cmd" "" ::1
if command -v pasta >/dev/null; then
    throughput_row "rocker --network pasta" "$rocker_cmd" "--network pasta"
else
    echo "(pasta is not installed: apt-get install passt for its rows)"
fi
if [ "$have_podman" = yes ]; then
    throughput_row "podman slirp4netns:port_handler=slirp4netns" "$podman_cmd" \
        "--network slirp4netns:port_handler=slirp4netns"
    if [ -x /usr/libexec/podman/rootlessport ]; then
        throughput_row "podman slirp4netns (rootlesskit ports)" "$podman_cmd" "--network slirp4netns"
    else
        echo "(podman's rootlessport helper is not installed: no rootlesskit row)"
    fi
else
    echo "(podman is not installed: apt-get install podman runc for its rows)"
fi
# c2c_transfer TOOL SERVER-FLAGS CLIENT-FLAGS ADDRESS PUBLISH -> "start end" of
# one download of SIZE_MB by a client container from a server container's
# busybox httpd (a file on its tmpfs), reached at ADDRESS:80 (with
# PUBLISH=yes, at ADDRESS:PORT, the server's port 80 published on the
# host); TOOL is rocker or podman_. Busybox nc is no sender for this: it
# stops reading a pipe early.
c2c_transfer() {
    local tool=$1 server port=80 published="" got start end
    shift
    if [ "$4" = yes ]; then
        port=$(free_port)
        published="-p 127.0.0.1:$port:80"
    fi
    # shellcheck disable=SC2086 # flags are meant to split
    server=$($tool run -d $1 $published --tmpfs /srv:size=$((SIZE_MB + 16))m "$image" \
        sh -c "dd if=/dev/zero of=/srv/big bs=1M count=$SIZE_MB 2>/dev/null && touch /srv/ready && exec httpd -f -p 80 -h /srv")
    for _ in $(seq 300); do
        $tool exec "$server" test -e /srv/ready 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.3
    local address=$3
    if [ "$address" = server-address ]; then
        # podman 4.3's CNI networks resolve no names without its dnsname
        # plugin: the server's address on the network then.
        address=$($tool inspect -f '{{(index .NetworkSettings.Networks "bench").IPAddress}}' "$server")
    fi
    start=$EPOCHREALTIME
    # shellcheck disable=SC2086
    got=$($tool run --rm $2 "$image" sh -c "wget -qO- http://$address:$port/big | wc -c") ||
        die "the c2c client failed ($2)"
    end=$EPOCHREALTIME
    $tool rm -f "$server" >/dev/null
    [ "$got" = "$((SIZE_MB * 1048576))" ] || die "c2c: $got of $SIZE_MB MB arrived ($2)"
    echo "$start $end"
}

c2c_row() { # c2c_row LABEL TOOL SERVER-FLAGS CLIENT-FLAGS ADDRESS PUBLISH
    local rate
    rate=$(for _ in $(seq "$TRANSFERS"); do c2c_transfer "$2" "$3" "$4" "$5" "$6"; done |
        awk -v mb="$SIZE_MB" '{ printf "%.0f\n", mb / ($2 - $1) }' | median)
    printf '%-44s %12s\n' "$1" "$rate"
}

printf '\n%-44s %12s\n' "container to container ($SIZE_MB MB)" "MB/s"
c2c_row "rocker --network bench (by name)" rocker "--network bench --name c2c-server" \
    "--network bench" c2c-server no
c2c_row "rocker default network (via -p on the host)" rocker "" \
    "--network slirp4netns:allow_host_loopback=true" 10.0.2.2 yes
if [ "$have_podman" = yes ]; then
    podman_ network create bench >/dev/null 2>&1 || true
    if podman_ run --rm --network bench "$image" true >/dev/null 2>"$work/podman-net.err"; then
        c2c_row "podman --network bench (by address)" podman_ \
            "--network bench" "--network bench" server-address no
    else
        echo "(podman's rootless user-defined network does not run here: $(tail -1 "$work/podman-net.err"))"
    fi
fi
echo "start: $RUNS runs each after 2 warm-ups; throughput: median of $TRANSFERS;" \
    "$(nproc) cores; $(uname -r)"

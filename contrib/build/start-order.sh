#!/usr/bin/env bash
# Regenerates contrib/build/start-order.txt: the functions of rocker that
# its everyday commands run, in the order they first run, which the build
# script (contrib/build/link.rs) hands to the linker so that they sit
# together in the binary. Why: a command's start touched nearly every
# 64 KB window of the 8 MB of code, one page fault each, in rocker, again
# in the container's child (a fork keeps no page table entries of a file
# mapping) and in the --rm sweeper.
#
#   cargo build --release --config contrib/build/static.toml &&
#       sudo contrib/build/start-order.sh
#
# (the release build as README.md's install makes it: static, in
# target/<host>/release; its names differ from a dynamic build's.)
#
# Regenerate it when tests/start_order.rs says the list is stale: the
# names carry hashes of the toolchain and of Cargo.lock, and new code on
# the start path is missing from an old list.
#
# How: a uprobe on every function of the binary (tracefs, hence root), the
# commands run as an unprivileged user (ORDER_USER, default nobody) on a
# busybox image of contrib/make-busybox-rootfs.sh, then each function's
# first hit from the trace. Needs busybox-static, slirp4netns, binutils.
set -euo pipefail
cd "$(dirname "$0")/../.."

# rustc names the host (under sudo it may be off the PATH: then name the
# binary as the first argument).
host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p' || true)
binary=${1:-target/${host:-HOST}/release/rocker}
out=contrib/build/start-order.txt
user=${ORDER_USER:-nobody}
tracing=/sys/kernel/tracing

die() { echo "start-order.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root: uprobes are set through tracefs"
[ -x "$binary" ] || die "$binary is missing: cargo build --release --config contrib/build/static.toml"
for tool in nm readelf setpriv slirp4netns; do
    command -v "$tool" >/dev/null || die "$tool is missing (binutils, util-linux, slirp4netns)"
done
if [ ! -e "$tracing/uprobe_events" ]; then
    mount -t tracefs nodev "$tracing" || die "cannot mount tracefs on $tracing"
fi
[ -e "$tracing/uprobe_events" ] || die "this kernel has no uprobe events (CONFIG_UPROBE_EVENTS)"
# The cleanup clears every uprobe, so none may be someone else's.
[ -z "$(cat "$tracing/uprobe_events")" ] || die "uprobes are defined already; clear $tracing/uprobe_events first"

work=$(mktemp -d)
buffer_kb=$(cat "$tracing/buffer_size_kb")
# Another tracer (perf, say) may have left the ring buffer off: then no
# probe records a hit, and the list comes out empty.
tracing_on=$(cat "$tracing/tracing_on")
cleanup() {
    echo 0 >"$tracing/events/order/enable" 2>/dev/null || true
    echo >"$tracing/uprobe_events"
    echo "$buffer_kb" >"$tracing/buffer_size_kb"
    echo "$tracing_on" >"$tracing/tracing_on"
    echo >"$tracing/trace"
    rm -rf "$work"
}
trap cleanup EXIT
chmod 0755 "$work"
uid=$(id -u "$user")
gid=$(id -g "$user")
install -m 0755 "$binary" "$work/rocker"
mkdir -p "$work/home" "$work/run"
chmod 0700 "$work/run"
chown "$uid:$gid" "$work/home" "$work/run"
as_user() {
    setpriv --reuid="$uid" --regid="$gid" --clear-groups \
        env -i HOME="$work/home" XDG_RUNTIME_DIR="$work/run" PATH=/usr/bin:/bin \
        "$work/rocker" "$@"
}
contrib/make-busybox-rootfs.sh "$work/root" >/dev/null
tar -C "$work/root" -cf "$work/busybox.tar" .
chmod 0644 "$work/busybox.tar"
as_user import "$work/busybox.tar" order:1 >/dev/null

# A probe per Rust function (and main): its file offset in the executable
# segment. Not the C library's, which a static build holds: with a probe
# on each of its functions too, an imported blob failed its digest (its
# hand-written string functions the likely victims; not pursued).
# readelf -lW: Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align, the
# executable segment's flags reading "R E".
read -r seg_offset seg_vaddr seg_size < <(readelf -lW "$work/rocker" |
    awk '$1 == "LOAD" && $8 == "E" { print $2, $3, $5; exit }')
echo "setting uprobes on every function (about half a minute) ..." >&2
declare -a names=()
declare -A seen=()
while read -r address size _ name; do
    address=$((16#$address)) size=$((16#$size))
    if ((size == 0 || address < seg_vaddr || address >= seg_vaddr + seg_size)); then
        continue
    fi
    [ -z "${seen[$address]:-}" ] || continue
    seen[$address]=1
    printf 'p:order/f%d %s:0x%x\n' "${#names[@]}" "$work/rocker" \
        $((address - seg_vaddr + seg_offset)) >>"$tracing/uprobe_events"
    names+=("$name")
done < <(nm -S --defined-only "$work/rocker" | awk 'NF == 4 && $3 ~ /^[tTwW]$/ && $4 ~ /^(_ZN|_R|main$)/')
echo "${#names[@]} probes" >&2

# The commands, the run path first: its functions lead the list.
echo 131072 >"$tracing/buffer_size_kb"
echo 1 >"$tracing/tracing_on"
echo >"$tracing/trace"
echo 1 >"$tracing/events/order/enable"
as_user run --rm --network none order:1 true
as_user run --rm order:1 true
as_user ps -a >/dev/null
as_user run -d --name order order:1 sleep 30 >/dev/null
as_user ps >/dev/null
as_user inspect order >/dev/null
as_user exec order true
as_user logs order
as_user stop -t 1 order >/dev/null
as_user start order >/dev/null
as_user kill order >/dev/null
as_user wait order >/dev/null || true
as_user rm -f order >/dev/null
as_user create --name order order:1 true >/dev/null
as_user start -a order
as_user rm order >/dev/null
# The --rm sweepers finish in the background.
sleep 1
echo 0 >"$tracing/events/order/enable"

echo "reading the trace ..." >&2
{
    echo "# The functions rocker's everyday commands run, in the order they first"
    echo "# ran; made by contrib/build/start-order.sh, used by contrib/build/link.rs."
    # A trace line ends "f123: (0xADDRESS)": the probe's index, first hits only.
    awk '$1 !~ /^#/ { probe = $(NF-1); sub(/^f/, "", probe); sub(/:$/, "", probe)
                      if (!seen[probe]++) print probe }' "$tracing/trace" |
        while read -r index; do echo "${names[$index]}"; done
} >"$out.tmp"
# An empty trace would silently unorder the next build.
[ "$(grep -vc "^#" "$out.tmp")" -gt 0 ] || { rm -f "$out.tmp"; die "no probe recorded a hit; nothing written"; }
mv "$out.tmp" "$out"
echo "$out: $(grep -vc '^#' "$out") functions" >&2

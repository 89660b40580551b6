#!/bin/sh
# Builds a minimal root file system from a static busybox, to try
# `rocker run --rootfs DIR` without an image:
#   contrib/make-busybox-rootfs.sh ~/rootfs && rocker run --rootfs ~/rootfs sh
# Needs a static busybox (Debian/Ubuntu: apt-get install busybox-static).
set -eu
dir=${1:?usage: $0 DIR}
busybox=${BUSYBOX:-/bin/busybox}
if ! "$busybox" --list >/dev/null 2>&1; then
    echo "$busybox not found or not runnable: install busybox-static" >&2
    exit 1
fi
mkdir -p "$dir/bin" "$dir/etc" "$dir/proc" "$dir/dev" "$dir/sys" "$dir/tmp" "$dir/root"
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$dir/etc/passwd"
printf 'root:x:0:\n' > "$dir/etc/group"
: > "$dir/etc/hosts"; : > "$dir/etc/hostname"; : > "$dir/etc/resolv.conf"
echo "made $dir"

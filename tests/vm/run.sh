#!/usr/bin/env bash
# rocker's test host with a real systemd: Debian bookworm booted under qemu
# (software emulation, no KVM needed), with cgroup v2 and a user whose
# systemd user manager starts at boot (linger), as on a typical laptop. The
# integration tests run there as that user, inside their user manager, so
# cgroup delegation (`systemd-run --user --scope -p Delegate=yes`) works as
# it does for a desktop user; this machine's own cgroups cannot show that.
#
#   sudo tests/vm/run.sh                 # build the tests, boot, run them
#   sudo tests/vm/run.sh -- CMD ARGS...  # any command, as the user, instead
#
# The image (debootstrap + a Debian cloud kernel, packed as an initramfs) is
# built once and kept in ROCKER_VM_CACHE (default /var/cache/rocker-vm);
# changing this script's recipe builds a new one. Each run adds the freshly
# built rocker and test binaries as a second initramfs archive. The tests'
# output comes back on the serial console; the exit status is the tests'.
#
# Needs (as root): debootstrap qemu-system-x86 cpio jq, and cargo.
# Environment: ROCKER_VM_TESTS (test targets, default below),
# ROCKER_VM_TIMEOUT (seconds, default 3000), ROCKER_VM_MEMORY (MiB, 4096).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
vm=$repo/tests/vm
cache=${ROCKER_VM_CACHE:-/var/cache/rocker-vm}
tests=${ROCKER_VM_TESTS:-cgroups run lifecycle network terminal security run_image info}
timeout_s=${ROCKER_VM_TIMEOUT:-3000}
memory=${ROCKER_VM_MEMORY:-4096}
mirror=${ROCKER_VM_MIRROR:-http://deb.debian.org/debian}

die() { echo "tests/vm/run.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is missing: apt-get install $2"; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it): sudo $0"
# The guest mounts a fresh tmpfs on /tmp, which would hide the binaries
# staged there under the host's paths.
case "$repo/" in /tmp/*) die "the clone is under /tmp ($repo), which the VM's own /tmp hides: clone elsewhere" ;; esac
need debootstrap debootstrap
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need jq jq
need mkfs.ext4 e2fsprogs
need cargo "a Rust toolchain (rustup)"

# --- the image: built once per recipe ---------------------------------------
# The recipe is this part of the script plus the files it puts in the image.
# debootstrap installs the system (it does not resolve virtual packages);
# apt in the new root adds what the tests use.
system=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,procps,kmod
tools="iproute2 util-linux coreutils busybox-static slirp4netns fuse-overlayfs
       docker-registry skopeo apache2-utils"
recipe=$(
    sed -n '/^# --- the image/,/^# --- end of the image/p' "$0"
    cat "$vm/init" "$vm/rocker-vm.service"
)
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
image=$cache/image-$key

build_image() {
    local build=$cache/build
    rm -rf "$build"
    mkdir -p "$build"
    local root=$build/root
    echo "building the VM image in $image (debootstrap: a few minutes) ..." >&2
    debootstrap --variant=minbase --include="$system" bookworm "$root" "$mirror" \
        >"$build/debootstrap.log" 2>&1 || {
        tail -20 "$build/debootstrap.log" >&2
        die "debootstrap failed (log: $build/debootstrap.log)"
    }
    # Services are not started in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2086 # one word per package
    chroot "$root" apt-get install -y -q --no-install-recommends $tools \
        >"$build/apt.log" 2>&1 || {
        tail -20 "$build/apt.log" >&2
        die "installing the test tools failed (log: $build/apt.log)"
    }
    rm "$root/usr/sbin/policy-rc.d"

    # The kernel Debian runs in clouds: small, and with overlay, fuse and
    # tun as modules. dpkg-deb -x would replace the merged-/usr /lib
    # symlink with a directory, so unpack it aside and move the modules.
    local kernel_package
    kernel_package=$(apt-cache depends linux-image-cloud-amd64 |
        awk '/Depends: linux-image-/ { print $2; exit }')
    [ -n "$kernel_package" ] || die "no linux-image-cloud-amd64 in the apt lists: apt-get update"
    (cd "$build" && apt-get download -q -o APT::Sandbox::User=root "$kernel_package" >/dev/null)
    dpkg-deb -x "$build"/linux-image-*.deb "$build/kernel"
    local version
    version=$(ls "$build/kernel/lib/modules")
    mkdir -p "$root/usr/lib/modules"
    mv "$build/kernel/lib/modules/$version" "$root/usr/lib/modules/"
    chroot "$root" depmod -a "$version"
    printf 'overlay\nfuse\ntun\nvirtio_blk\next4\n' >"$root/etc/modules-load.d/rocker.conf"

    # The user, whose user manager systemd starts at boot (linger).
    chroot "$root" useradd --create-home --uid 1000 --shell /bin/sh tester
    mkdir -p "$root/var/lib/systemd/linger"
    touch "$root/var/lib/systemd/linger/tester"
    # No udev in minbase: a getty on the serial port would wait 90 s for
    # its device. The console is the tests' output instead.
    chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service \
        systemd-networkd-wait-online.service >/dev/null 2>&1
    echo rocker-vm >"$root/etc/hostname"
    install -m 0755 "$vm/init" "$root/init"
    install -m 0644 "$vm/rocker-vm.service" "$root/etc/systemd/system/rocker-vm.service"
    ln -sf ../rocker-vm.service "$root/etc/systemd/system/multi-user.target.wants/rocker-vm.service"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc "$root"/usr/share/man \
        "$root"/usr/share/locale "$root"/var/lib/apt/lists/*

    mkdir -p "$image.tmp"
    cp "$build/kernel/boot/vmlinuz-$version" "$image.tmp/vmlinuz"
    (cd "$root" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet | gzip -1) \
        >"$image.tmp/root.cpio.gz"
    rm -rf "$image" && mv "$image.tmp" "$image"
    rm -rf "$build"
}
# --- end of the image --------------------------------------------------------

[ -f "$image/root.cpio.gz" ] || build_image

# --- this run: rocker, the tests and the command, as a second archive ------
run=$(mktemp -d /tmp/rocker-vm.XXXXXX)
trap 'rm -rf "$run"' EXIT
stage=$run/stage
mkdir -p "$stage/opt/rocker-vm/tests"
install -m 0755 "$vm/guest.sh" "$stage/opt/rocker-vm/guest.sh"

if [ "${1:-}" = -- ]; then
    shift
    printf '%q ' "$@" >"$stage/opt/rocker-vm/command"
else
    targets=()
    for t in $tests; do targets+=(--test "$t"); done
    echo "building rocker and the tests ($tests) ..." >&2
    (cd "$repo" && cargo build -q && cargo test -q --no-run "${targets[@]}" \
        --message-format=json) |
        jq -r 'select(.reason == "compiler-artifact" and .profile.test == true)
               | .target.name + " " + .executable' >"$run/executables"
    {
        echo 'status=0'
        # This host has delegated cgroups: the limits must be enforced.
        echo 'export ROCKER_TEST_CGROUPS=delegated'
        while read -r name executable; do
            cp "$executable" "$stage/opt/rocker-vm/tests/$name"
            echo "echo \"=== $name\""
            echo "/opt/rocker-vm/tests/$name --include-ignored --test-threads=2 --color=never || status=1"
        done <"$run/executables"
        echo 'exit $status'
    } >"$stage/opt/rocker-vm/command"
fi
# The test binaries name the rocker binary by its path here.
binary=$repo/target/debug/rocker
mkdir -p "$stage$(dirname "$binary")"
cp "$binary" "$stage$binary"
printf '%s\n' "$(dirname "$binary")" /opt/rocker-vm >"$stage/opt/rocker-vm/paths"

(cd "$stage" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet | gzip -1) \
    >"$run/payload.cpio.gz"
# The tests' files go on a disk file system, as a laptop's home is: the
# initramfs is tmpfs, which keeps no user.* xattrs before Linux 6.6.
truncate -s 16G "$run/scratch.img"
mkfs.ext4 -q -F "$run/scratch.img"
# The kernel unpacks concatenated archives in order.
cat "$image/root.cpio.gz" "$run/payload.cpio.gz" >"$run/initrd.gz"

echo "booting the VM (software emulation) ..." >&2
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -m "$memory" -smp 2 \
    -display none -monitor none -serial stdio -no-reboot -nic none \
    -drive file="$run/scratch.img",format=raw,if=virtio \
    -kernel "$image/vmlinuz" -initrd "$run/initrd.gz" \
    -append "console=ttyS0 rdinit=/init quiet systemd.show_status=0 panic=-1" \
    </dev/null | tee "$run/console.log"
qemu_status=${PIPESTATUS[0]}
set -e
status=$(grep -a -o 'ROCKER-VM-STATUS=[0-9]*' "$run/console.log" | tail -1 | cut -d= -f2)
if [ -z "$status" ]; then
    [ "$qemu_status" = 124 ] && die "the VM ran past ${timeout_s}s (ROCKER_VM_TIMEOUT)"
    die "the VM stopped without reporting a status (qemu exit $qemu_status)"
fi
exit "$status"

#!/bin/sh
# Runs in the VM, as root, from rocker-vm.service once the user manager of
# the lingering user is up. It sets the machine up as a desktop would
# (/dev/fuse and /dev/net/tun usable by users), runs the command the host
# put in /opt/rocker-vm/command as that user inside their systemd user
# manager (where a terminal of a desktop session runs), and reports its
# exit status on the console for the host to read.
user=tester
uid=$(id -u "$user")
chmod 666 /dev/fuse /dev/net/tun
# The tests' paths, as the host had them, must be reachable by the user.
for path in $(cat /opt/rocker-vm/paths); do
    d=$path
    while [ "$d" != / ]; do chmod a+rx "$d"; d=$(dirname "$d"); done
done
# The scratch disk (ext4) holds the tests' files.
for _ in $(seq 1 100); do
    [ -b /dev/vda ] && break
    sleep 0.1
done
mkdir -p /scratch
mount /dev/vda /scratch
chmod 1777 /scratch
for _ in $(seq 1 300); do
    [ -S "/run/user/$uid/bus" ] && break
    sleep 0.1
done
systemd-run --quiet --user --machine="$user@.host" --wait --pipe --collect \
    --working-directory=/home/$user --setenv=TMPDIR=/scratch \
    /bin/bash /opt/rocker-vm/command < /dev/null > /dev/ttyS0 2>&1
status=$?
echo "ROCKER-VM-STATUS=$status" > /dev/ttyS0
systemctl poweroff --no-block

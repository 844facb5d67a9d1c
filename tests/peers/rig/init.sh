#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: MIT
#
# /init of every rig initramfs (busybox sh, PID 1). Loads modules, sets up
# an optional read-only host root over 9p, runs one command, reports its
# exit status and powers the machine off. Knobs are dotted words on the
# kernel command line, which the kernel keeps from init's argv and
# environment, so they are read from /proc/cmdline:
#
#   rig.mods=a,b,c    .ko names under /lib/modules, insmod'ed in this order
#                     (default: the list make-initramfs.sh stored in
#                     /etc/rig/mods, same format; rig.mods= loads none)
#   rig.root9p=1      mount the 9p export "hostroot" read-only on /host,
#                     give it proc, sys, devtmpfs and a tmpfs /tmp, and run
#                     the command chrooted there
#   rig.keep=p,q      host paths under /tmp to keep visible in the chroot
#                     (the tmpfs would hide them): bind-mounted back
#   rig.run=cmd,arg   the command; commas separate arguments (no spaces,
#                     commas or globbing inside an argument)
#
# Console protocol (the host greps these lines): "rig: init start",
# "rig: run start", "run exit=N". N is 125 when the rig itself failed
# (module, mount, missing command), so it is never mistaken for the
# command's own status. Always ends in poweroff -f: PID 1 must not exit.

/bin/busybox --install -s /bin
export PATH=/bin
set -f
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

uptime_s() { read -r u _ </proc/uptime && echo "$u"; }
finish() {
	echo "run exit=$1"
	poweroff -f
	sleep 10  # poweroff -f returns only if it failed; never let PID 1 exit
}
rig_fail() {
	echo "rig: error: $*"
	finish 125
}

echo "rig: init start uptime=$(uptime_s)"
mods=$(cat /etc/rig/mods 2>/dev/null)
run='' root9p=0 keep=''
# shellcheck disable=SC2013 # the command line is one line of words
for w in $(cat /proc/cmdline); do
	case $w in
	rig.mods=*) mods=${w#rig.mods=} ;;
	rig.run=*) run=${w#rig.run=} ;;
	rig.root9p=*) root9p=${w#rig.root9p=} ;;
	rig.keep=*) keep=${w#rig.keep=} ;;
	esac
done

IFS=,
for m in $mods; do
	insmod "/lib/modules/$m.ko" || rig_fail "insmod $m failed"
done
unset IFS
echo "rig: modules loaded uptime=$(uptime_s)"
ip link set lo up 2>/dev/null

root=
if [ "$root9p" = 1 ]; then
	root=/host
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
		rig_fail "cannot mount the 9p host root"
	if ! mount -t proc proc /host/proc || ! mount -t sysfs sys /host/sys ||
		! mount -t devtmpfs dev /host/dev; then
		rig_fail "cannot mount proc/sys/dev in the host root"
	fi
	mkdir -p /host/dev/shm /host/dev/pts
	mount -t tmpfs shm /host/dev/shm
	mount -t devpts pts /host/dev/pts
	# Keep chosen /tmp paths of the host visible under the guest's tmpfs.
	i=0
	IFS=,
	for p in $keep; do
		mkdir -p "/keep/$i" || rig_fail "cannot keep $p"
		mount --bind "/host$p" "/keep/$i" || rig_fail "cannot keep $p"
		i=$((i + 1))
	done
	mount -t tmpfs tmp /host/tmp || rig_fail "cannot mount a tmpfs on /tmp"
	i=0
	for p in $keep; do
		mkdir -p "/host$p" || rig_fail "cannot keep $p"
		mount --bind "/keep/$i" "/host$p" || rig_fail "cannot keep $p"
		i=$((i + 1))
	done
	unset IFS
	echo "rig: host root mounted uptime=$(uptime_s)"
fi

[ -n "$run" ] || rig_fail "no rig.run= on the kernel command line"
IFS=,
# shellcheck disable=SC2086 # split on commas on purpose; set -f is on
set -- $run
unset IFS
echo "rig: run start uptime=$(uptime_s)"
if [ -n "$root" ]; then
	# The host's own PATH layout; init's /bin is busybox only.
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb LANG=C.UTF-8 chroot "$root" "$@"
else
	"$@"
fi
finish $?

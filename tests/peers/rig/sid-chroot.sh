#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The newest QEMU (Debian sid's qemu-system-x86, 11.1 at the time of
# writing) for the rigs, without touching the machine's own packages: a
# Debian sid chroot made with debootstrap at test time, cached under the rig
# cache, and a way to run its qemu-system-x86_64 on the host's files.
#
#   sid-chroot.sh ensure            make the chroot unless a working one is
#                                   cached; print its path (RIG_SID_ROOT)
#   sid-chroot.sh version           ensure, then print "QEMU emulator version ..."
#   sid-chroot.sh prepare DIR...    create mount points for DIR... in the
#                                   chroot (needed where the chroot is read-only,
#                                   e.g. seen through a guest's 9p root)
#   sid-chroot.sh qemu ARG...       exec qemu-system-x86_64 ARG... in the chroot
#                                   (never builds it: run ensure first)
#
# `qemu` runs QEMU in a private mount namespace (unshare -m) and chroots
# there, after these bind mounts, all gone with the namespace when QEMU
# exits however it ends (nothing to clean up, nothing left in the cache):
#   /proc /sys /dev               recursive binds of the host's
#   /tmp, VUV_CACHE, VUV_LOGS, the repo, and every directory in RIG_SID_BINDS
#                                 at the same paths (sockets, kernels, images)
#   /host (RIG_SID_HOSTROOT)      the host's / (recursive bind, top mount
#                                 read-only): a 9p export of the host root is
#                                 -virtfs local,path=/host,... inside the chroot
# So paths in QEMU's arguments are host paths, except a 9p export of /.
# The exec chain keeps the pid: a signal to this script's pid (timeout) is
# a signal to QEMU, and QEMU's exit status is the script's. Root only.
#
# Environment: VUV_CACHE (lib.sh); RIG_SID_ROOT, the chroot (default
# $VUV_CACHE/sid-chroot/root); RIG_SID_BINDS, more directories to bind,
# separated by colons; RIG_SID_MIRROR (default http://deb.debian.org/debian).
#
# ensure: a chroot is valid when its stamp file is there and its QEMU
# answers --version; otherwise it is rebuilt from scratch (debootstrap
# --variant=minbase, ~60 s and ~410 MB). debootstrap runs in a private
# mount namespace too, so an interrupted build leaves no mounts behind.
# Concurrent runs serialise on a lock next to the chroot.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

sid_root=${RIG_SID_ROOT:-$VUV_CACHE/sid-chroot/root}
sid_host=${RIG_SID_HOSTROOT:-/host}
mirror=${RIG_SID_MIRROR:-http://deb.debian.org/debian}
qemu=/usr/bin/qemu-system-x86_64
stamp=$sid_root/.rig-complete

usage() { rig_die "usage: sid-chroot.sh ensure | version | prepare DIR... | qemu ARG..."; }

# The directories bound at their own paths for `qemu` (and `prepare`).
bind_dirs() {
	local d list=() extra
	list=(/tmp "$VUV_CACHE" "$VUV_LOGS" "$rig_repo")
	if [ -n "${RIG_SID_BINDS:-}" ]; then
		IFS=: read -ra extra <<<"$RIG_SID_BINDS"
		list+=("${extra[@]}")
	fi
	for d in "${list[@]}"; do
		[ -n "$d" ] && [ -d "$d" ] && (cd "$d" && pwd -P)
	done | awk '!seen[$0]++'
}

valid() {
	[ -f "$stamp" ] && [ -x "$sid_root$qemu" ] &&
		chroot "$sid_root" "$qemu" --version 2>/dev/null | grep -q '^QEMU emulator version'
}

# Anything mounted at or below DIR (by this mount namespace)?
mounted_below() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}

build() {
	local dir partial t0
	dir=$(dirname "$sid_root")
	partial=$sid_root.partial
	command -v debootstrap >/dev/null || rig_die "debootstrap is not installed (scripts/install-deps.sh)"
	for d in "$sid_root" "$partial"; do
		! mounted_below "$d" || rig_die "$d has mounts below it; not removing it"
	done
	rm -rf "$partial" "$sid_root"
	mkdir -p "$dir"
	t0=$(rig_now)
	rig_log "debootstrap sid into $partial (qemu-system-x86; ~1 min, ~410 MB)"
	if ! unshare -m --propagation private -- debootstrap --variant=minbase \
		--include=qemu-system-x86,qemu-system-data,seabios,ipxe-qemu \
		sid "$partial" "$mirror" >"$dir/debootstrap.log" 2>&1; then
		tail -n 20 "$dir/debootstrap.log" >&2
		rm -rf "$partial"
		rig_die "debootstrap failed (log: $dir/debootstrap.log)"
	fi
	mkdir -p "$partial$sid_host"
	rm -rf "$partial/var/cache/apt/archives/"*.deb
	mv "$partial" "$sid_root"
	valid_version >"$stamp.tmp" || { rm -f "$stamp.tmp"; rig_die "the new chroot's QEMU does not run"; }
	mv "$stamp.tmp" "$stamp"
	rig_log "sid chroot ready in $(rig_elapsed "$t0") s, $(du -sm "$sid_root" | cut -f1) MB: $(cat "$stamp")"
}

valid_version() { chroot "$sid_root" "$qemu" --version | head -n 1; }

ensure() {
	mkdir -p "$(dirname "$sid_root")"
	exec 9>"$(dirname "$sid_root")/.lock"
	flock 9
	if valid; then
		rig_log "sid chroot cached: $(cat "$stamp")"
	else
		[ ! -e "$sid_root" ] || rig_log "sid chroot $sid_root is incomplete or broken; rebuilding"
		build
	fi
	exec 9>&-
}

prepare() {
	local d
	for d in "$@"; do
		d=$(cd "$d" && pwd -P) || rig_die "$d: no such directory"
		mkdir -p "$sid_root$d"
	done
}

# Runs in the private mount namespace (pid kept by exec all the way). A
# default directory without a mount point in a read-only chroot is left
# out (with a message); one named in RIG_SID_BINDS is an error.
inner() {
	local d dirs asked=":${RIG_SID_BINDS:-}:"
	# Not < <(...): a guest's devtmpfs /dev has no /dev/fd.
	dirs=$(bind_dirs)
	mount --rbind / "$sid_root$sid_host"
	mount -o remount,bind,ro "$sid_root$sid_host" 2>/dev/null || true
	for d in /proc /sys /dev; do mount --rbind "$d" "$sid_root$d"; done
	while IFS= read -r d; do
		if ! mkdir -p "$sid_root$d" 2>/dev/null; then
			[[ $asked == *":$d:"* ]] ||
				{ rig_log "no mount point for $d in $sid_root (read-only); not bound"; continue; }
			rig_die "cannot bind $d into $sid_root (read-only chroot? run 'sid-chroot.sh prepare $d' where it is writable)"
		fi
		mount --bind "$d" "$sid_root$d" || rig_die "cannot bind $d into $sid_root"
	done <<<"$dirs"
	exec chroot "$sid_root" "$qemu" "$@"
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
ensure) ensure && printf '%s\n' "$sid_root" ;;
version) ensure && cat "$stamp" ;;
prepare) prepare "$@" ;;
qemu)
	[ -f "$stamp" ] || rig_die "no sid chroot at $sid_root (run sid-chroot.sh ensure first)"
	exec unshare -m --propagation private -- "$rig_dir/sid-chroot.sh" __inner "$@"
	;;
__inner) inner "$@" ;;
*) usage ;;
esac

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds a rig initramfs: busybox-static, the rig /init (init.sh), the
# kernel modules asked for plus everything they depend on, and optional
# extra files. Prints the module load order (the value for rig.mods=) on
# stdout; the same list is stored as /etc/rig/mods, init's default.
#
#   make-initramfs.sh -k TREE -o OUT.cpio.gz [-m MOD[,MOD]]... [-f SRC[:DST]]...
#     -k TREE   an unpacked kernel (fetch-kernel.sh prints it)
#     -o OUT    the gzip'ed newc cpio to write (replaced atomically)
#     -m MOD    module names as modprobe knows them; dependencies are
#               resolved with modprobe --show-depends, order is kept
#               (e.g. virtio_pci before 9pnet_virtio, whose device it probes)
#     -f SRC    copy a file into the image at DST (default /bin/<name>);
#               files put in a bin directory are made executable
#
# Presets in lib.sh: RIG_MODS_L1 (9p host root + vhost_vsock, the L1 rig)
# and RIG_MODS_L2 (a virtio-vsock guest without 9p, NESTED.md §2).
# Modules may be .ko (Debian 12's 6.1) or .ko.xz (Debian 13's 6.12: they
# are decompressed into the image, busybox insmod wants plain .ko); modules
# built into the kernel (virtio_pci in 6.12) are left out of the load order.
# Checks the result is over 1 MB: without cpio the pipe yields ~20 bytes.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() { rig_die "usage: make-initramfs.sh -k TREE -o OUT [-m MOD]... [-f SRC[:DST]]..."; }

tree='' out='' mods=() files=()
while getopts k:o:m:f: opt; do
	case $opt in
	k) tree=$OPTARG ;;
	o) out=$OPTARG ;;
	m) IFS=, read -ra more <<<"$OPTARG" && mods+=("${more[@]}") ;;
	f) files+=("$OPTARG") ;;
	*) usage ;;
	esac
done
if [ -z "$tree" ] || [ -z "$out" ] || [ $OPTIND -le $# ]; then usage; fi
command -v cpio >/dev/null || rig_die "cpio is not installed (scripts/install-deps.sh)"
busybox=$(command -v busybox) || rig_die "busybox is not installed (busybox-static)"
# A dynamic busybox needs a loader and libc that the initramfs lacks.
LC_ALL=C readelf -lW "$busybox" 2>/dev/null | grep -q 'program interpreter' &&
	rig_die "$busybox is dynamically linked; install busybox-static"
rig_kernel_vars "$tree"

mkdir -p "$(dirname "$out")"
root=$(mktemp -d "$(dirname "$out")/.initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,host,keep,etc/rig,lib/modules}
cp "$busybox" "$root/bin/busybox"
cp "$rig_dir/init.sh" "$root/init"
chmod 755 "$root/init"

kos=()
if [ ${#mods[@]} -gt 0 ]; then
	list=$(rig_mod_order "$tree" "${mods[@]}") || rig_die "cannot resolve modules: ${mods[*]}"
	mapfile -t kos <<<"$list"
	[ -n "$list" ] || rig_die "no module file found for: ${mods[*]}"
	for ko in "${kos[@]}"; do
		[ -f "$ko" ] || rig_die "$ko: not found"
		case $ko in
		# Debian 13 (6.12) ships .ko.xz; busybox insmod wants them plain.
		*.ko.xz)
			xz -dc "$ko" >"$root/lib/modules/$(basename "$ko" .xz)" ||
				rig_die "$ko: cannot decompress (xz-utils)"
			;;
		*.ko) cp "$ko" "$root/lib/modules/" ;;
		*) rig_die "$ko: not a .ko or .ko.xz module" ;;
		esac
	done
fi
order=$(rig_mod_names "${kos[@]}")
printf '%s\n' "$order" >"$root/etc/rig/mods"

for f in "${files[@]}"; do
	src=${f%%:*}
	dst=/bin/$(basename "$src")
	[ "$src" = "$f" ] || dst=${f#*:}
	[ -f "$src" ] || rig_die "$src: no such file"
	mkdir -p "$root$(dirname "$dst")"
	cp "$src" "$root$dst"
	case $dst in */bin/*) chmod 755 "$root$dst" ;; esac
done

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$out.tmp"
size=$(stat -c %s "$out.tmp")
if [ "$size" -lt 1048576 ]; then
	rm -f "$out.tmp"
	rig_die "initramfs is only $size bytes (is cpio working?)"
fi
mv "$out.tmp" "$out"
rig_log "initramfs $out: $((size / 1024)) KiB, ${#kos[@]} modules"
printf '%s\n' "$order"

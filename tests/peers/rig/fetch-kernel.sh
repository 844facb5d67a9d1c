#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Puts a Debian guest kernel into the rig cache, unpacked and depmod'ed, and
# prints the tree's path on stdout (everything else goes to stderr):
# Debian 12's current 6.1 (linux-image-6.1.0-N-amd64-unsigned) or Debian
# 13's current 6.12 (linux-image-6.12.N+deb13-amd64-unsigned). Idempotent: a
# tree already complete for the package version apt offers is reused
# without network.
#
#   fetch-kernel.sh [--vmlinux] [--linux-source]
#     --vmlinux       also cut the uncompressed vmlinux (PVH boot) out of the
#                     bzImage into boot/vmlinux-<kver> (~66 MB, ~2 s once).
#     --linux-source  instead print the path of the series' kernel source
#                     tarball (for vsock_test): 6.1's comes from the
#                     installed linux-source-6.1; 6.12's linux-source-6.12
#                     is downloaded and unpacked into the cache.
#
# Environment: VUV_CACHE (see lib.sh); VUV_KERNEL, the series: 6.1 (default)
# or 6.12; VUV_KERNEL_PKG to pin a package name.
#
# 6.1 comes from the machine's own apt lists (Debian 12). 6.12 comes from
# trixie through apt's own files under $VUV_CACHE/apt-trixie (sources.list,
# lists, package cache, archives; rig_apt_trixie in lib.sh), so the
# machine's apt sources and state are never touched. A 6.12 tree keeps its
# modules in usr/lib/modules as .ko.xz: the tree gets a lib -> usr/lib link
# for depmod/modprobe, and make-initramfs.sh decompresses the modules.
# The package is only downloaded and unpacked, never installed. The ABI
# number moves with Debian point releases, so the name is looked up: the
# one linux-image-amd64 depends on, else the highest listed. When apt has
# no answer (offline, no lists) a complete cached tree is used instead.
# Concurrent runs serialise on a lock in the cache.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

want_vmlinux=0 want_source=0
for a in "$@"; do
	case $a in
	--vmlinux) want_vmlinux=1 ;;
	--linux-source) want_source=1 ;;
	*) rig_die "usage: fetch-kernel.sh [--vmlinux] [--linux-source]" ;;
	esac
done

series=${VUV_KERNEL:-6.1}
apt_opts=()
case $series in
6.1)
	name_re='^linux-image-6\.1\.0-[0-9]+-amd64$'
	current=current
	;;
6.12)
	name_re='^linux-image-6\.12\.[0-9]+\+deb13-amd64$'
	current="current-6.12"
	rig_apt_trixie
	apt_opts=("${RIG_APT_TRIXIE[@]}")
	;;
*) rig_die "VUV_KERNEL=$series: 6.1 or 6.12" ;;
esac
kroot=$VUV_CACHE/kernel
mkdir -p "$kroot"

# apt-cache and apt-get on the series' lists (the machine's for 6.1).
acache() { apt-cache "${apt_opts[@]}" "$@"; }
aget() { apt-get "${apt_opts[@]}" "$@"; }

# "package version" of the kernel to use, e.g.
# "linux-image-6.1.0-56-amd64-unsigned 6.1.192-2", or nothing. The
# unsigned image carries the same version as the signed one the metapackage
# pins, which saves a slow apt-cache call per run; ask_apt=1 checks the
# highest listed name with apt instead (after a failed download).
find_pkg() {
	local ask_apt=${1:-0} name ver
	if [ -n "${VUV_KERNEL_PKG:-}" ]; then
		name=$VUV_KERNEL_PKG
	elif [ "$ask_apt" = 0 ]; then
		acache show --no-all-versions linux-image-amd64 2>/dev/null | awk -v re="$name_re" '
			$1 == "Depends:" && $2 ~ re && $3 == "(=" {
				sub(/\)$/, "", $4); print $2 "-unsigned", $4; found = 1; exit }
			END { exit !found }' && return
	fi
	[ -n "${name:-}" ] || name=$(acache pkgnames "linux-image-$series" 2>/dev/null |
		grep -E "${name_re%\$}-unsigned\$" | sort -V | tail -n 1)
	[ -n "$name" ] || return 1
	ver=$(acache show --no-all-versions "$name" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
	[ -n "$ver" ] || return 1
	printf '%s %s\n' "$name" "$ver"
}

# The newest complete tree in the cache, for when apt cannot say.
newest_cached() {
	local d best=
	for d in "$kroot"/*/; do
		[ -f "$d/.rig-complete" ] && grep -qE "${name_re%\$}-unsigned " "$d/.rig-complete" &&
			best=${d%/}
	done
	[ -n "$best" ] || return 1
	printf '%s\n' "$best"
}

# download PKG VERSION DEST: fetch the .deb, unpack, depmod, mark complete.
download() {
	local pkg=$1 ver=$2 dest=$3 kv deb tmp
	kv=${pkg#linux-image-}
	kv=${kv%-unsigned}
	tmp=$kroot/.partial-$kv
	rm -rf "$tmp" "$dest"
	mkdir -p "$tmp/deb"
	rig_log "downloading $pkg $ver"
	(cd "$tmp/deb" && aget download -q "$pkg=$ver" >&2) ||
		{ rm -rf "$tmp"; return 1; }
	deb=("$tmp"/deb/*.deb)
	# Called as a condition, so set -e is off here: check each step.
	if ! dpkg-deb -x "${deb[0]}" "$tmp/tree"; then
		rm -rf "$tmp"
		rig_log "$pkg: cannot unpack"
		return 1
	fi
	# Merged /usr (6.12): host depmod/modprobe look in TREE/lib/modules.
	[ -e "$tmp/tree/lib" ] || [ ! -d "$tmp/tree/usr/lib/modules" ] || ln -s usr/lib "$tmp/tree/lib"
	if [ ! -f "$tmp/tree/boot/vmlinuz-$kv" ] ||
		[ ! -d "$tmp/tree/lib/modules/$kv" ] || ! depmod -b "$tmp/tree" "$kv"; then
		rm -rf "$tmp"
		rig_log "$pkg: cannot unpack, or unexpected package layout"
		return 1
	fi
	printf '%s %s\n' "$pkg" "$ver" >"$tmp/tree/.rig-complete"
	mv "$tmp/tree" "$dest" && rm -rf "$tmp"
}

# Cut the XZ stream out of the bzImage: the Debian kernel is built with
# CONFIG_KERNEL_XZ and CONFIG_PVH, so the result boots with QEMU's PVH loader.
extract_vmlinux() {
	local tree=$1
	rig_kernel_vars "$tree"
	[ -s "$VMLINUX" ] && return 0
	rig_log "extracting vmlinux from $(basename "$VMLINUZ")"
	python3 "$rig_dir/extract-vmlinux.py" "$VMLINUZ" "$VMLINUX.tmp" >&2
	mv "$VMLINUX.tmp" "$VMLINUX"
}

exec 9>"$kroot/.lock"
flock 9

# linux_source - print the series' source tarball, downloading 6.12's.
linux_source() {
	local d pkg ver tb tmp deb
	if [ "$series" = 6.1 ]; then
		printf '%s\n' "${VUV_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}"
		return
	fi
	d=$VUV_CACHE/linux-source-$series
	pkg=linux-source-$series
	ver=$(acache show --no-all-versions "$pkg" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
	if [ -z "$ver" ]; then
		aget update -q >&2 || true
		ver=$(acache show --no-all-versions "$pkg" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
	fi
	tb=$d/usr/src/linux-source-$series.tar.xz
	if [ -f "$d/.rig-complete" ] && { [ -z "$ver" ] || [ "$(cat "$d/.rig-complete")" = "$pkg $ver" ]; }; then
		rig_log "kernel source cached: $(cat "$d/.rig-complete")"
		printf '%s\n' "$tb"
		return
	fi
	[ -n "$ver" ] || rig_die "apt knows no $pkg"
	tmp=$d.partial
	rm -rf "$tmp" "$d"
	mkdir -p "$tmp/deb"
	rig_log "downloading $pkg $ver (~150 MB)"
	(cd "$tmp/deb" && aget download -q "$pkg=$ver" >&2) || rig_die "cannot download $pkg"
	deb=("$tmp"/deb/*.deb)
	dpkg-deb -x "${deb[0]}" "$tmp/tree" || rig_die "cannot unpack ${deb[0]}"
	[ -f "$tmp/tree/usr/src/linux-source-$series.tar.xz" ] || rig_die "$pkg: no tarball in it"
	printf '%s %s\n' "$pkg" "$ver" >"$tmp/tree/.rig-complete"
	mv "$tmp/tree" "$d" && rm -rf "$tmp"
	printf '%s\n' "$tb"
}

if [ "$want_source" = 1 ]; then
	exec 9>"$kroot/.lock-src-$series"
	flock 9
	linux_source
	exit
fi

want=$(find_pkg || true)
if [ -z "$want" ]; then
	# Lists may be missing or stale on a fresh machine: refresh once.
	rig_log "apt-cache knows no linux-image-$series package; running apt-get update"
	aget update -q >&2 || true
	want=$(find_pkg 1 || true)
fi

if [ -z "$want" ]; then
	tree=$(newest_cached) || rig_die "no linux-image-$series amd64-unsigned package and no cached kernel"
	rig_log "apt offers no kernel; using cached $(cat "$tree/.rig-complete")"
else
	read -r pkg ver <<<"$want"
	kv=${pkg#linux-image-}
	tree=$kroot/${kv%-unsigned}
	if [ "$(cat "$tree/.rig-complete" 2>/dev/null)" = "$want" ]; then
		rig_log "kernel cached: $want"
	elif ! download "$pkg" "$ver" "$tree"; then
		# A stale list can name a .deb the mirror no longer has.
		rig_log "download failed; running apt-get update and retrying"
		aget update -q >&2 || true
		want=$(find_pkg 1) || rig_die "no linux-image-$series amd64-unsigned package"
		read -r pkg ver <<<"$want"
		kv=${pkg#linux-image-}
		tree=$kroot/${kv%-unsigned}
		download "$pkg" "$ver" "$tree" || rig_die "cannot download $want"
	fi
fi

[ "$want_vmlinux" = 0 ] || extract_vmlinux "$tree"
ln -sfn "$(basename "$tree")" "$kroot/$current"
printf '%s\n' "$tree"

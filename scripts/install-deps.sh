#!/usr/bin/env bash
# Installs, from Debian 12's packages, everything the build and the whole test
# suite need. Safe to run again: packages already present are skipped.
#   scripts/install-deps.sh          build + tests (QEMU, guest kernel tools)
#   scripts/install-deps.sh --build  only what building the daemon needs
set -euo pipefail

build_pkgs=(gcc libc6-dev meson ninja-build pkg-config scdoc libyaml-dev libsystemd-dev libseccomp-dev)
# linux-source-6.1: the nested test builds the kernel's vsock_test from its
# tarball (tests/peers/nested/build-vsock-test.sh); nothing else is used.
# dpkg-dev ... man-db: tests/peers/run-debian-package.sh builds the Debian
# package, checks it with lintian, installs it and checks the units
# (systemd-analyze; systemd.pc, which debian/rules reads) and the man page.
# debootstrap: the newest QEMU (sid's) runs from a chroot made at test time
# (tests/peers/rig/sid-chroot.sh); zstd: Debian 13's 6.12 guest kernel is
# ZSTD-compressed (rig/extract-vmlinux.py).
test_pkgs=(clang lld libclang-rt-14-dev libcmocka-dev qemu-system-x86 busybox-static cpio kmod
	valgrind python3 xz-utils linux-source-6.1
	dpkg-dev debhelper lintian fakeroot systemd man-db
	debootstrap zstd util-linux)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--build" ] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

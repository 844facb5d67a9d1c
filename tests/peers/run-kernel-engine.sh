#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real-peer test of the kernel engine: boots Debian's 6.1 (or 6.12) kernel under
# QEMU/TCG, loads vhost_vsock there, and runs the host-built
#   $VUV_BUILD/tests/peers/kernel_engine_check --daemon $VUV_BUILD/vhost-user-vsock --workdir /tmp
# in the guest, with the host's root shared read-only over 9p so the
# binaries run unchanged. No /dev/vhost-vsock or KVM is needed on the host.
#
#   run-kernel-engine.sh [--probe] [--bzimage]
#     --probe     run the rig's interim probe (rig/probe-kernel-engine.py:
#                 device + daemon start/stop, no vhost-user) instead of the
#                 check program; for developing the rig only
#     --bzimage   boot the compressed kernel instead of the PVH vmlinux
#
# Environment: VUV_BUILD (default <repo>/build/gcc), VUV_CACHE and VUV_LOGS
# (rig/lib.sh), VUV_PEER_TIMEOUT (host limit for QEMU, s, default 240),
# VUV_GUEST_TIMEOUT (in-guest limit for the test, s, default 150),
# VUV_PEER_VERBOSE=1 (echo the console live), VUV_QEMU (host: the
# machine's QEMU 7.2, default; sid: QEMU 11.1 from rig/sid-chroot.sh, the
# 9p root then exported from the chroot's /host) and VUV_KERNEL (6.1,
# default, or 6.12: the guest kernel, whose vhost_vsock is the peer);
# other than host + 6.1, logs carry the combination in their names.
#
# Verdict: the markers the test prints (PASS:/FAIL: lines and the final
# "kernel-engine: N passed, M failed"), plus init's "run exit=0"; never
# QEMU's exit status. Exit 0 only on a clean pass; a missing check program
# is a FAIL, not a skip. Installs nothing: scripts/install-deps.sh does.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
mode=check kernel_kind=vmlinux
for a in "$@"; do
	case $a in
	--probe) mode=probe ;;
	--bzimage) kernel_kind=bzimage ;;
	*) rig_die "usage: run-kernel-engine.sh [--probe] [--bzimage]" ;;
	esac
done
host_limit=${VUV_PEER_TIMEOUT:-240}
guest_limit=${VUV_GUEST_TIMEOUT:-150}
name='kernel-engine'
[ "$mode" = check ] || name='kernel-engine-probe'

fail() {
	echo "FAIL: $*"
	echo "$name${RIG_PEER_TAG:-}: FAIL"
	exit 1
}
rig_peers || fail "peers (VUV_QEMU/VUV_KERNEL)"
# Log and image names: the plain ones for the default peers.
base=$name
[ "$VUV_QEMU,$VUV_KERNEL" = host,6.1 ] || base=$name-$RIG_PEER_ID

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=$build/vhost-user-vsock
check=$build/tests/peers/kernel_engine_check
[ -x "$daemon" ] || fail "daemon not built: $daemon"
if [ "$mode" = check ]; then
	[ -x "$check" ] || fail "check program not built: $check (ninja -C $build; --probe runs the rig's interim probe)"
	label='kernel-engine'
	test_cmd=("$check" --daemon "$daemon" --workdir /tmp)
else
	label=rig-probe
	test_cmd=(python3 "$rig_dir/probe-kernel-engine.py" --daemon "$daemon" --workdir /tmp)
fi
for tool in qemu-system-x86_64 timeout awk; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done

rig_guest_check "$name" "$base" "$label" "$kernel_kind" "$RIG_MODS_L1" '' -- "${test_cmd[@]}"

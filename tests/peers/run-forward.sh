#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real-peer test of forwarding to host AF_VSOCK (--forward-cid,
# --forward-listen; userspace engine): boots Debian's 6.1 kernel under
# QEMU/TCG with vsock_loopback loaded (CID 1 is then the guest's own
# loopback, so "the host" of the forwarding is that guest) and runs the
# host-built
#   $VUV_BUILD/tests/peers/forward_check --daemon $VUV_BUILD/vhost-user-vsock --workdir /tmp
# in the guest, with the host's root shared read-only over 9p. Every
# AF_VSOCK socket of the test is opened inside that guest; the kernel
# command line carries vuv.forward=1, without which forward_check refuses
# to run. Needs no vsock or KVM on the host.
#
#   run-forward.sh
#
# Environment: VUV_BUILD (default <repo>/build/gcc), VUV_CACHE and VUV_LOGS
# (rig/lib.sh), VUV_PEER_TIMEOUT (host limit for QEMU, s, default 240),
# VUV_GUEST_TIMEOUT (in-guest limit for the test, s, default 150),
# VUV_PEER_VERBOSE=1 (echo the console live).
#
# Verdict: the markers the test prints (PASS:/FAIL: lines and the final
# "forward: N passed, M failed"), plus init's "run exit=0"; never QEMU's
# exit status. Exit 0 only on a clean pass; a missing check program is a
# FAIL, not a skip.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
kernel_kind=vmlinux
[ $# -eq 0 ] || rig_die "usage: run-forward.sh"
host_limit=${VUV_PEER_TIMEOUT:-240}
guest_limit=${VUV_GUEST_TIMEOUT:-150}
name='forward'

fail() {
	echo "FAIL: $*"
	echo "$name: FAIL"
	exit 1
}

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=$build/vhost-user-vsock
check=$build/tests/peers/forward_check
[ -x "$daemon" ] || fail "daemon not built: $daemon"
[ -x "$check" ] || fail "check program not built: $check (ninja -C $build)"
label='forward'
test_cmd=("$check" --daemon "$daemon" --workdir /tmp)
for tool in qemu-system-x86_64 timeout awk; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done

rig_guest_check "$name" "$name" "$label" "$kernel_kind" virtio_pci,9pnet_virtio,9p,vsock_loopback \
	vuv.forward=1 -- "${test_cmd[@]}"

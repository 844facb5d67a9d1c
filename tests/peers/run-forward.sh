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

# The guest mounts its own tmpfs over /tmp; keep our trees visible if they
# live there (a CI clone might).
keep=()
for p in "$(cd "$rig_repo" && pwd -P)" "$build"; do
	case $p in
	/tmp/*) [[ " ${keep[*]} " == *" ${p%/} "* ]] || keep+=("$p") ;;
	esac
done

t0=$(rig_now)
fetch_args=()
[ "$kernel_kind" = bzimage ] || fetch_args=(--vmlinux)
tree=$("$rig_dir/fetch-kernel.sh" "${fetch_args[@]}") || fail "cannot fetch the guest kernel"
rig_kernel_vars "$tree" || fail "bad kernel tree $tree"
kernel=$VMLINUZ
[ "$kernel_kind" = bzimage ] || kernel=$VMLINUX
t_kernel=$(rig_elapsed "$t0")

t0=$(rig_now)
initrd=$VUV_CACHE/initrd/$name.cpio.gz
mod_order=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$initrd" -m virtio_pci,9pnet_virtio,9p,vsock_loopback) ||
	fail "cannot build the initramfs"
t_initrd=$(rig_elapsed "$t0")

run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout "$guest_limit" \
	--dump /tmp -- "${test_cmd[@]}") ||
	fail "a path cannot be passed to the guest"
append="console=ttyS0 quiet panic=-1 no_timer_check vuv.forward=1 rig.root9p=1 rig.mods=$mod_order rig.run=$run"
if [ ${#keep[@]} -gt 0 ]; then
	append+=" rig.keep=$(rig_join_commas "${keep[@]}")" || fail "a path cannot be passed to the guest"
fi

mkdir -p "$VUV_LOGS"
log=$VUV_LOGS/$name.log
rm -f "$VUV_LOGS/$name".dump.*
echo "$name: booting $(basename "$kernel") under TCG (limit ${host_limit}s), console in $log"
rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${RIG_QEMU_9P[@]}" -m 1G -smp 2 \
	-kernel "$kernel" -initrd "$initrd" -append "$append"

verdict=0
rig_verdict "$log" "$label" || verdict=1
case $RIG_QEMU_RC in
0) ;;
124 | 137)
	echo "verdict: QEMU killed after ${host_limit}s (VUV_PEER_TIMEOUT)"
	verdict=1
	;;
*) echo "note: QEMU exited with status $RIG_QEMU_RC" ;;
esac
dumps=$(rig_split_dumps "$log" "$VUV_LOGS/$name.dump.")

boot=- run_s=-
[ -z "$RIG_T_RUN" ] || boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
echo "$name: timings: kernel fetch ${t_kernel}s, initramfs ${t_initrd}s, boot ${boot}s," \
	"run ${run_s}s, QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s, total $(rig_elapsed "$t_start")s"
echo "$name: console log $log"
[ -z "$dumps" ] || echo "$name: guest files: ${dumps//$'\n'/ }"
if [ "$verdict" != 0 ]; then
	echo "--- last console lines (without dumped files):"
	rig_console "$log" | tail -n 25
	echo "$name: FAIL"
	exit 1
fi
echo "$name: PASS"

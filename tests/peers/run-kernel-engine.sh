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
initrd=$VUV_CACHE/initrd/$base.cpio.gz
mod_order=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$initrd" -m "$RIG_MODS_L1") ||
	fail "cannot build the initramfs"
t_initrd=$(rig_elapsed "$t0")

run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout "$guest_limit" \
	--dump /tmp -- "${test_cmd[@]}") ||
	fail "a path cannot be passed to the guest"
append="console=ttyS0 quiet panic=-1 no_timer_check rig.root9p=1 rig.mods=$mod_order rig.run=$run"
if [ ${#keep[@]} -gt 0 ]; then
	append+=" rig.keep=$(rig_join_commas "${keep[@]}")" || fail "a path cannot be passed to the guest"
fi

mkdir -p "$VUV_LOGS"
log=$VUV_LOGS/$base.log
rm -f "$VUV_LOGS/$base".dump.*
echo "$name$RIG_PEER_TAG: QEMU $RIG_QEMU_VERSION booting $(basename "$kernel") under TCG (limit ${host_limit}s), console in $log"
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
dumps=$(rig_split_dumps "$log" "$VUV_LOGS/$base.dump.")

boot=- run_s=-
[ -z "$RIG_T_RUN" ] || boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
echo "$name$RIG_PEER_TAG: timings: kernel fetch ${t_kernel}s, initramfs ${t_initrd}s, boot ${boot}s," \
	"run ${run_s}s, QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s, total $(rig_elapsed "$t_start")s"
echo "$name$RIG_PEER_TAG: console log $log"
[ -z "$dumps" ] || echo "$name$RIG_PEER_TAG: guest files: ${dumps//$'\n'/ }"
if [ "$verdict" != 0 ]; then
	echo "--- last console lines (without dumped files):"
	rig_console "$log" | tail -n 25
	echo "$name$RIG_PEER_TAG: FAIL"
	exit 1
fi
echo "$name$RIG_PEER_TAG: PASS"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The kernel engine against QEMU's own vhost-vsock (issue 15, item 7): in
# the nested rig's L1 (run-nested.sh's topology), the same L2 guest moves
# the same data through QEMU's built-in -device vhost-vsock-pci and through
# our daemon (vhost-user-vsock-pci -> kernel engine -> the same vhost_vsock
# module): throughput both ways and the 1-byte round trip, as ratios of
# medians in one run (nested/compare-l1.sh does the L1 side).
#
#   tests/peers/nested/compare.sh
#
# Not part of CI (scripts/test.sh runs tests/peers/run-*.sh only): it
# boots two L2 guests under TCG-in-TCG and measures; the figures go to
# README "Performance".
#
# Environment: VUV_BUILD (default <repo>/build/gcc; a non-sanitizer build,
# tests/peers/nested_perf must be static), VUV_CACHE and VUV_LOGS
# (rig/lib.sh), VUV_QEMU / VUV_KERNEL (as run-nested.sh; host + 6.1 by
# default), VUV_COMPARE_ROUNDS (default 15: one device's rounds spread 2x
# even on a quiet machine, and two 7-round runs there gave host -> guest
# ratios of 1.17 and 0.75), VUV_COMPARE_BYTES (each way per round, default
# 4 MiB), VUV_COMPARE_TRIPS (round trips per round, default
# 200), VUV_COMPARE_TIMEOUT (host limit for L1, s, default 2400),
# VUV_COMPARE_BOOT_WAIT (for the two L2s to serve, s, default 900).
#
# Verdict: compare-l1.sh's checks (both guests booted, every round measured
# with every byte checked, the daemon's clean exit) and its summary
# "compare: N passed, M failed"; the RESULT lines are the measurement.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../rig/lib.sh
. "$(dirname "$0")/../rig/lib.sh"

t_start=$(rig_now)
[ $# -eq 0 ] || rig_die "usage: compare.sh (no arguments; see the header)"
name=compare
nested_dir=$(cd "$(dirname "$0")" && pwd)
fail() {
	echo "FAIL: $*"
	echo "$name${RIG_PEER_TAG:-}: FAIL"
	exit 1
}
rig_peers || fail "peers (VUV_QEMU/VUV_KERNEL)"
host_limit=${VUV_COMPARE_TIMEOUT:-2400}
boot_wait=${VUV_COMPARE_BOOT_WAIT:-900}
l2_extra=''
[ "$VUV_KERNEL" != 6.12 ] || l2_extra=cryptomgr.notests
build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=$build/vhost-user-vsock
perf=$build/tests/peers/nested_perf
[ -x "$daemon" ] && [ -x "$perf" ] || fail "not built: $daemon, $perf (ninja -C $build)"
LC_ALL=C readelf -lW "$perf" | grep -q 'program interpreter' &&
	fail "$perf is dynamically linked; L2 has no libc (use a non-sanitizer build)"
"$perf" selftest >/dev/null || fail "$perf selftest fails: run it for details"

tree=$("$rig_dir/fetch-kernel.sh" --vmlinux) || fail "cannot fetch the guest kernel"
rig_kernel_vars "$tree" || fail "bad kernel tree $tree"
# The images are this run's own (in the build tree, which L1 sees over 9p).
img=$build/peers-compare
mkdir -p "$img"
l1_initrd=$img/$name-$RIG_PEER_ID-l1.cpio.gz
l2_initrd=$img/$name-$RIG_PEER_ID-l2.cpio.gz
l1_mods=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$l1_initrd" -m "$RIG_MODS_L1") ||
	fail "cannot build the L1 initramfs"
"$rig_dir/make-initramfs.sh" -k "$tree" -o "$l2_initrd" -m "$RIG_MODS_L2" -f "$perf" >/dev/null ||
	fail "cannot build the L2 initramfs"

run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout $((host_limit - 60)) --dump /tmp/daemon.log -- \
	"$nested_dir/compare-l1.sh" --daemon "$daemon" --perf "$perf" --kernel "$VMLINUX" \
	--initrd "$l2_initrd" --rounds "${VUV_COMPARE_ROUNDS:-15}" \
	--bytes "${VUV_COMPARE_BYTES:-4194304}" --trips "${VUV_COMPARE_TRIPS:-200}" \
	--boot-wait "$boot_wait" ${l2_extra:+--l2-extra "$l2_extra"} \
	${RIG_SID_ROOT:+--sid-root "$RIG_SID_ROOT"}) || fail "a path cannot be passed to the guest"
[ -z "$RIG_SID_ROOT" ] || "$rig_dir/sid-chroot.sh" prepare "$(dirname "$VMLINUX")" "$img" ||
	fail "cannot prepare the sid chroot for L1"
append="console=ttyS0 quiet panic=-1 rig.root9p=1 rig.mods=$l1_mods rig.run=$run"
keeps=$(rig_tmp_keeps "$rig_repo" "$build" "$VUV_CACHE") || fail "a path cannot be passed to the guest"
[ -z "$keeps" ] || append+=" rig.keep=$keeps"

mkdir -p "$VUV_LOGS"
log=$VUV_LOGS/$name-$RIG_PEER_ID.log
echo "$name$RIG_PEER_TAG: booting L1 ($(basename "$VMLINUX")) under TCG (limit ${host_limit}s), console in $log"
rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${RIG_QEMU_9P[@]}" -m 1536M -smp 2 \
	-kernel "$VMLINUX" -initrd "$l1_initrd" -append "$append"
rig_console "$log" | grep -E '^(INFO|RESULT):' || true
verdict=0
rig_judge "$log" "$name" "VUV_COMPARE_TIMEOUT=$host_limit" || verdict=1
echo "$name$RIG_PEER_TAG: total $(rig_elapsed "$t_start")s"
if [ "$verdict" != 0 ]; then
	rig_console "$log" | tail -n 30
	echo "$name$RIG_PEER_TAG: FAIL"
	exit 1
fi
echo "$name$RIG_PEER_TAG: PASS"

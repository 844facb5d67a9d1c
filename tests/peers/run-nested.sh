#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Nested full-stack test of the kernel engine: QEMU's vhost-user-vsock-pci
# and a real Linux guest driver, through our daemon, into the kernel's
# vhost_vsock, plus the kernel's own vsock_test suite over that stack.
#
#   L0 (this host): qemu-system-x86_64 -accel tcg boots L1
#    L1: Debian 6.1, vhost_vsock, host root read-only over 9p, chrooted;
#        nested/l1.sh starts $VUV_BUILD/vhost-user-vsock --socket ... --cid 3
#        and boots L2 guests with QEMU (TCG, memfd RAM, vhost-user-vsock-pci)
#     L2: the same kernel (PVH vmlinux), busybox initramfs with the
#         virtio-vsock driver, virtio_net, nested_xfer, vsock_test, l2.sh
#
#   run-nested.sh [--forward]
#
# --forward (run-nested-forward.sh): the userspace engine instead, with
# vsock_loopback in L1 instead of vhost_vsock: the daemon forwards L2's
# connections to L1's own AF_VSOCK (--forward-cid 1, --forward-listen),
# and the kernel's vsock_test runs through it both ways, one L2 boot
# each, one line per suite case, the cases that cannot pass through a
# forwarding daemon skipped with their reason (nested/l1.sh fwd_skips).
# Verdict line "nested-forward: N passed, M failed".
#
# Cases (judged in L1 by nested/l1.sh, one PASS:/FAIL: line each): daemon
# start; L2's local CID; 16 MiB each way L2 -> L1 and L1 -> L2, checked
# byte by byte and by CRC across levels; the daemon's CPU time and context
# switches flat across a transfer; vsock_test with L1 as server and as
# client; QEMU stopped with SIGTERM and a new L2 connecting both ways on the
# same daemon; the second guest's poweroff; the daemon's clean exit.
#
# Set-up on L0 (all cached under VUV_CACHE except the initramfs images,
# rebuilt each run): the kernel (rig/fetch-kernel.sh), vsock_test built
# statically from linux-source-6.1 (nested/build-vsock-test.sh), the L1 and
# L2 initramfs images (rig/make-initramfs.sh).
#
# Environment: VUV_BUILD (default <repo>/build/gcc; must hold a static
# tests/peers/nested_xfer), VUV_CACHE, VUV_LOGS (rig/lib.sh),
# VUV_NESTED_TIMEOUT (host limit for L1, s, default 2400; 2700 with 6.12),
# VUV_NESTED_GUEST_TIMEOUT (in-L1 limit for l1.sh, s, default 2340; 2640),
# VUV_NESTED_BOOT_WAIT (how long L1 waits for an L2 to boot, s, default
# 900),
# VUV_NESTED_BYTES (bytes each way in the big transfers, default 16 MiB),
# VUV_NESTED_L2_QUIET=0 (L2's kernel log on the console, for diagnosis),
# VUV_NESTED_FWD_SKIP_IDS (--forward, diagnosis: more vsock_test case ids
# to skip in both directions, '+'-joined, e.g. 6+11: to see the cases after
# a failing one; such a skip counts as not ok, so the run still fails),
# VUV_PEER_VERBOSE=1 (echo the console live), VUV_QEMU (host: QEMU 7.2 at
# both levels, default; sid: QEMU 11.1 from rig/sid-chroot.sh at both
# levels, L1 running the chroot it sees through 9p) and VUV_KERNEL (6.1,
# default, or 6.12: L1 and L2 kernel, and vsock_test from that kernel's
# source; VUV_LINUX_SOURCE overrides the tarball); other than host + 6.1,
# logs carry the combination in their names. VUV_NESTED_L0_QEMU (host or
# sid; default VUV_QEMU, but sid with 6.12): the QEMU that runs L1 only
# (L1's QEMU, the daemon's front end, stays the one VUV_QEMU names).
#
# Verdict: the markers and the final "nested: N passed, M failed" from L1's
# console, init's "run exit=0", no kernel oops at either level (L2's
# console is on L1's, prefixed "l2-N| "); never QEMU's exit status.
# Logs in VUV_LOGS: nested.log (everything), nested.l2-N.log (each L2's
# console), nested.dump.tmp_*.log (the daemon's and L1 programs' logs).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
mode=kernel name=nested l1_mods_want=$RIG_MODS_L1
case $# in
0) ;;
1) [ "$1" = --forward ] || rig_die "usage: run-nested.sh [--forward]" ;;
*) rig_die "usage: run-nested.sh [--forward]" ;;
esac
if [ $# -eq 1 ]; then
	# CID 1 is then L1's own loopback, the "host" the daemon forwards to.
	mode=forward name=nested-forward l1_mods_want=virtio_pci,9pnet_virtio,9p,vsock_loopback
fi
bytes=${VUV_NESTED_BYTES:-16777216}
nested_dir=$(cd "$(dirname "$0")/nested" && pwd)

fail() {
	echo "FAIL: $*"
	echo "$name${RIG_PEER_TAG:-}: FAIL"
	exit 1
}
rig_peers || fail "peers (VUV_QEMU/VUV_KERNEL)"
# L1's QEMU, the front end of the daemon, is the peer VUV_QEMU names; L0's
# only runs L1 and is the same unless VUV_NESTED_L0_QEMU says otherwise,
# except under a 6.12 L1, which QEMU 7.2 at L0 did not run faithfully: in
# 2 of the 4 L2 6.12 boots seen inside it (both of one run) L2 oopsed early
# in text_poke_early (general protection fault on the iretq of sync_core,
# EFLAGS 0x04046086 and 0x041ce086: NT and reserved bits set, i.e. L2's
# flags corrupted in L1's QEMU); in the 6 seen under QEMU 11.1 at L0 none
# did. So 6.12 runs L1 on 11.1 unless told otherwise.
l1_sid_root=$RIG_SID_ROOT
l0_default=$VUV_QEMU
[ "$VUV_KERNEL" != 6.12 ] || l0_default=sid
l0_qemu=${VUV_NESTED_L0_QEMU:-$l0_default}
if [ "$l0_qemu" != "$VUV_QEMU" ]; then
	peer_qemu=$VUV_QEMU peer_tag=$RIG_PEER_TAG peer_id=$RIG_PEER_ID peer_version=$RIG_QEMU_VERSION
	VUV_QEMU=$l0_qemu
	rig_peers || fail "L0's QEMU (VUV_NESTED_L0_QEMU=$l0_qemu)"
	l0_version=$RIG_QEMU_VERSION
	VUV_QEMU=$peer_qemu RIG_PEER_TAG=$peer_tag RIG_PEER_ID=$peer_id RIG_QEMU_VERSION=$peer_version
fi
l0_version=${l0_version:-$RIG_QEMU_VERSION}
# An L2 6.12 boots several times slower than 6.1 under TCG-in-TCG (its
# kernel init alone took 160+ s of guest time at load average 10), so its
# waits and limits are longer; and its crypto self-tests, ~20% of that
# init and nothing to do with vsock, are skipped (cryptomgr.notests).
if [ "$VUV_KERNEL" = 6.12 ]; then
	boot_wait=${VUV_NESTED_BOOT_WAIT:-900}
	host_limit=${VUV_NESTED_TIMEOUT:-2700}
	guest_limit=${VUV_NESTED_GUEST_TIMEOUT:-2640}
	l2_extra=cryptomgr.notests
else
	# At load average 17-30 an L2 6.1 took 757 s to boot (its kernel 370 s
	# of guest time to reach init), and under QEMU 11.1 over 600 s at
	# 12-16 (7.2 + 6.1: 110-156 s at 4-8); each run boots two L2s.
	boot_wait=${VUV_NESTED_BOOT_WAIT:-900}
	host_limit=${VUV_NESTED_TIMEOUT:-2400}
	guest_limit=${VUV_NESTED_GUEST_TIMEOUT:-2340}
	l2_extra=''
fi
# Log and image names: the plain ones for the default peers.
base=$name
[ "$VUV_QEMU,$VUV_KERNEL" = host,6.1 ] || base=$name-$RIG_PEER_ID

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=$build/vhost-user-vsock
xfer=$build/tests/peers/nested_xfer
[ -x "$daemon" ] || fail "daemon not built: $daemon"
[ -x "$xfer" ] || fail "checker not built: $xfer (ninja -C $build)"
for tool in qemu-system-x86_64 timeout awk readelf; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done
LC_ALL=C readelf -lW "$xfer" | grep -q 'program interpreter' &&
	fail "$xfer is dynamically linked; L2 has no libc (use a non-sanitizer build)"
# The checker must be able to fail before its passes mean anything.
"$xfer" selftest >/dev/null || fail "$xfer selftest fails: run it for details"

t0=$(rig_now)
tree=$("$rig_dir/fetch-kernel.sh" --vmlinux) || fail "cannot fetch the guest kernel"
rig_kernel_vars "$tree" || fail "bad kernel tree $tree"
t_kernel=$(rig_elapsed "$t0")
t0=$(rig_now)
if [ -z "${VUV_LINUX_SOURCE:-}" ]; then
	VUV_LINUX_SOURCE=$("$rig_dir/fetch-kernel.sh" --linux-source) ||
		fail "no linux-source-$VUV_KERNEL"
	export VUV_LINUX_SOURCE
fi
vt=$("$nested_dir/build-vsock-test.sh") || fail "cannot build the kernel's vsock_test"
t_vt=$(rig_elapsed "$t0")

t0=$(rig_now)
l1_initrd=$VUV_CACHE/initrd/$base-l1.cpio.gz
l2_initrd=$VUV_CACHE/initrd/$base-l2.cpio.gz
l1_mods=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$l1_initrd" -m "$l1_mods_want") ||
	fail "cannot build the L1 initramfs"
"$rig_dir/make-initramfs.sh" -k "$tree" -o "$l2_initrd" -m "$RIG_MODS_L2,virtio_net" \
	-f "$xfer" -f "$vt" -f "$nested_dir/l2.sh" >/dev/null || fail "cannot build the L2 initramfs"
t_initrd=$(rig_elapsed "$t0")

run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout "$guest_limit" --dump /tmp -- \
	"$nested_dir/l1.sh" --daemon "$daemon" --xfer "$xfer" --vsock-test "$vt" \
	--kernel "$VMLINUX" --initrd "$l2_initrd" --cid 3 --bytes "$bytes" \
	--l2-quiet "${VUV_NESTED_L2_QUIET:-1}" --boot-wait "$boot_wait" ${l2_extra:+--l2-extra "$l2_extra"} --mode "$mode" \
	--fwd-extra-skips "${VUV_NESTED_FWD_SKIP_IDS:--}" \
	${l1_sid_root:+--sid-root "$l1_sid_root"}) ||
	fail "a path cannot be passed to the guest"
# L1 sees the chroot read-only: its mount points must exist already.
[ -z "$l1_sid_root" ] || RIG_SID_ROOT=$l1_sid_root "$rig_dir/sid-chroot.sh" prepare "$(dirname "$VMLINUX")" \
	"$(dirname "$l2_initrd")" || fail "cannot prepare the sid chroot for L1"
append="console=ttyS0 quiet panic=-1 no_timer_check rig.root9p=1 rig.mods=$l1_mods rig.run=$run"
keeps=$(rig_tmp_keeps "$rig_repo" "$build" "$VUV_CACHE" "$vt") ||
	fail "a path cannot be passed to the guest"
[ -z "$keeps" ] || append+=" rig.keep=$keeps"

mkdir -p "$VUV_LOGS"
log=$VUV_LOGS/$base.log
rm -f "$VUV_LOGS/$base".dump.* "$VUV_LOGS/$base".l2-*.log
echo "$name$RIG_PEER_TAG: L0 QEMU $l0_version, L1 QEMU $RIG_QEMU_VERSION; booting L1 ($(basename "$VMLINUX")) under TCG (limit ${host_limit}s), console in $log"
rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${RIG_QEMU_9P[@]}" -m 1536M -smp 2 \
	-kernel "$VMLINUX" -initrd "$l1_initrd" -append "$append"

rig_console "$log" | grep -E '^(INFO|SKIP):' || true
verdict=0
rig_judge "$log" "$name" "VUV_NESTED_TIMEOUT=$host_limit" || verdict=1
dumps=$(rig_split_dumps "$log" "$VUV_LOGS/$base.dump.")
l2logs=$(awk -v pre="$VUV_LOGS/$base." '
	match($0, /^l2-[0-9]+\| /) {
		f = pre substr($0, 1, RLENGTH - 2) ".log"
		if (!(f in seen)) { seen[f] = 1; print f; printf "" >f }
		print substr($0, RLENGTH + 1) >f }' "$log")

l1_boot=- run_s=-
[ -z "$RIG_T_RUN" ] || l1_boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
echo "$name$RIG_PEER_TAG: timings: kernel fetch ${t_kernel}s, vsock_test ${t_vt}s, initramfs ${t_initrd}s," \
	"L1 boot ${l1_boot}s, L1 run ${run_s}s, QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s," \
	"total $(rig_elapsed "$t_start")s"
echo "$name$RIG_PEER_TAG: console log (both levels) $log"
[ -z "$l2logs" ] || echo "$name$RIG_PEER_TAG: L2 consoles: ${l2logs//$'\n'/ }"
[ -z "$dumps" ] || echo "$name$RIG_PEER_TAG: L1 files (daemon log, programs): ${dumps//$'\n'/ }"
if [ "$verdict" != 0 ]; then
	echo "--- last console lines (without dumped files):"
	rig_console "$log" | tail -n 30
	echo "$name$RIG_PEER_TAG: FAIL"
	exit 1
fi
echo "$name$RIG_PEER_TAG: PASS"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# VVU end to end with real VMs on both sides (issue 13), all on this host
# under TCG, no nesting:
#
#   sibling VM (host QEMU 7.2, Debian 6.1 guest, -device vhost-user-vsock-pci,
#               all RAM in the proxy's BAR 4 file)
#     --vhost-user socket--> vvu_proxy (ours: tests/peers/vvu_proxy)
#     --vfio-user socket--> device VM (QEMU 11.1 from the sid chroot, q35 +
#               intel-iommu caching-mode=on, -device vfio-user-pci; Debian
#               6.1 with vfio-pci and vhost_vsock)
#        └─ vhost-user-vsock --vfio 0000:00:10.0 --cid 3         (kernel engine)
#        └─ vhost-user-vsock --vfio 0000:00:10.0 --uds-path ...  (userspace engine)
#
# The device VM runs tests/peers/vvu/device.sh, which drives and judges
# every case; it asks this script (console lines "vvu-req: ...") to boot
# and stop sibling VMs and to arm proxy faults, and reads each sibling's
# console live through 9p. Sibling guests: the nested test's L2 initramfs
# (nested_xfer, vsock_test, nested/l2.sh) for the kernel engine, the
# userspace-engine test's (user/guest_vsock_check, with host_peer in the
# device VM) for the userspace engine. vsock_test's TCP control channel
# goes guest -> slirp -> this host's loopback -> the other VM's hostfwd.
#
#   run-vvu.sh
#
# Environment: VUV_BUILD (default <repo>/build/gcc; static nested_xfer and
# guest_vsock_check, so no sanitizer build), VUV_CACHE, VUV_LOGS
# (rig/lib.sh), VUV_VVU_LONG=1 (the longer mode: 64 MiB each way and seven
# proxy faults; default, what CI runs: 16 MiB each way and the four faults
# the issue names), VUV_VVU_TIMEOUT (host limit for the device VM, s,
# default 1500), VUV_PEER_VERBOSE=1.
#
# Order inside the device VM (device.sh): kernel engine with sibling 1
# (16 MiB each way both directions, absent port, daemon's wake-ups during a
# transfer, vsock_test both ways); sibling 1's QEMU stopped (disconnect,
# device reset); one sibling per proxy fault (error, reset); sibling 2, a
# new QEMU, both directions again (the next session works); the daemon's
# exit; then the userspace engine with sibling 20 (guest_vsock_check
# against host_peer in the device VM: bulk 16 MiB, half-close, seqpacket,
# absent ports). Wall time on the shared 2-core machine: 327 s at load
# average 12-17 (set-up 52 s, device VM boot 28 s, device.sh 223 s; faults
# 132 s of it), 457 s at load 20-27, 930 s at load ~33; most of it is
# sibling boots.
#
# Verdict: device.sh's markers and "vvu-device: N passed, M failed", init's
# "run exit=0", no oops (rig_judge), plus the proxy's own checks (it served
# a session, no vfio-user protocol error); prints "vvu: N passed, M failed".
# Logs in VUV_LOGS: vvu.log (device VM console with the dumped daemon and
# program logs), vvu.proxy.log, vvu.sib-N.log (each sibling's console).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
[ $# -eq 0 ] || rig_die "usage: run-vvu.sh (no arguments; see the header)"
name=vvu
peers=$(cd "$(dirname "$0")" && pwd -P)
host_limit=${VUV_VVU_TIMEOUT:-1500}
bdf=0000:00:10.0
bar4_size=$((256 << 20))
if [ "${VUV_VVU_LONG:-0}" = 1 ]; then
	bytes=$((64 << 20)) faults='oversize:3+bad-layout:0+vring-index:0+reset:5+truncated:4+size-mismatch:2+unknown-req:6'
else
	bytes=$((16 << 20)) faults='oversize:3+bad-layout:0+vring-index:0+reset:5'
fi

fail() {
	echo "FAIL: $*"
	echo "$name: 0 passed, 1 failed"
	exit 1
}

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "setup: VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=$build/vhost-user-vsock
proxy=$build/tests/peers/vvu_proxy
xfer=$build/tests/peers/nested_xfer
guest=$build/tests/peers/user/guest_vsock_check
peer=$build/tests/peers/user/host_peer
for f in "$daemon" "$proxy" "$xfer" "$guest" "$peer"; do
	[ -x "$f" ] || fail "setup: not built: $f (ninja -C $build)"
done
for f in "$xfer" "$guest"; do
	LC_ALL=C readelf -lW "$f" | grep -q 'program interpreter' &&
		fail "setup: $f is dynamically linked; the sibling has no libc (use a non-sanitizer build)"
done
for tool in qemu-system-x86_64 timeout awk readelf python3; do
	command -v "$tool" >/dev/null || fail "setup: $tool is not installed (scripts/install-deps.sh)"
done

# The device VM's QEMU is sid's (vfio-user-pci needs >= 10.1); the sibling's the host's.
VUV_KERNEL=6.1 VUV_QEMU=sid rig_peers || fail "setup: the sid chroot's QEMU (rig/sid-chroot.sh)"
dev_qemu=("${RIG_QEMU[@]}") dev_9p=("${RIG_QEMU_9P[@]}") dev_version=$RIG_QEMU_VERSION
sib_version=$(qemu-system-x86_64 --version | sed -n '1s/^QEMU emulator version \([0-9.]*\).*/\1/p')

t0=$(rig_now)
tree=$("$rig_dir/fetch-kernel.sh" --vmlinux) || fail "setup: cannot fetch the guest kernel"
rig_kernel_vars "$tree" || fail "setup: bad kernel tree $tree"
if [ -z "${VUV_LINUX_SOURCE:-}" ]; then
	VUV_LINUX_SOURCE=$("$rig_dir/fetch-kernel.sh" --linux-source) || fail "setup: no linux-source-6.1"
	export VUV_LINUX_SOURCE
fi
vt=$("$peers/nested/build-vsock-test.sh") || fail "setup: cannot build the kernel's vsock_test"
dev_initrd=$VUV_CACHE/initrd/$name-device.cpio.gz
sibk_initrd=$VUV_CACHE/initrd/$name-sibling-kernel.cpio.gz
sibu_initrd=$VUV_CACHE/initrd/$name-sibling-user.cpio.gz
# vfio_iommu_type1 is only a soft dependency of vfio: name it (VFIO.md)
dev_mods=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$dev_initrd" \
	-m "virtio_pci,9pnet_virtio,9p,virtio_net,vfio_iommu_type1,vfio-pci,vhost_vsock") ||
	fail "setup: cannot build the device VM's initramfs"
sibk_mods=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$sibk_initrd" -m "$RIG_MODS_L2,virtio_net" \
	-f "$xfer" -f "$vt" -f "$peers/nested/l2.sh") || fail "setup: cannot build the kernel-engine sibling's initramfs"
sibu_mods=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$sibu_initrd" -m "$RIG_MODS_L2" \
	-f "$guest:/bin/guest_vsock_check") || fail "setup: cannot build the userspace-engine sibling's initramfs"
t_setup=$(rig_elapsed "$t0")

# Two free loopback ports for vsock_test's control channel (one each way).
read -r port_fwd port_rev < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

work=$(mktemp -d /tmp/vuv-vvu.XXXXXX)
chmod 755 "$work"
bar4=/dev/shm/$(basename "$work").bar4
mkdir -p "$VUV_LOGS"
rm -f "$VUV_LOGS/$name".*
plog=$VUV_LOGS/$name.proxy.log
proxy_pid='' conductor_pid=''
cleanup() {
	local p
	[ -z "$conductor_pid" ] || kill "$conductor_pid" 2>/dev/null || true
	for p in "$work"/sib-*.qpid; do
		[ ! -e "$p" ] || kill "$(cat "$p")" 2>/dev/null || true
	done
	[ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null || true
	rm -rf "$work" "$bar4"
}
trap cleanup EXIT

mkfifo "$work/control"
"$proxy" --vfio-user "$work/vu.sock" --vhost-user "$work/sib.sock" --bar4 "$bar4" \
	--bar4-size "$bar4_size" --control "$work/control" 2>"$plog" &
proxy_pid=$!
rig_wait_listening "$work/vu.sock" 10 "$proxy_pid" || fail "proxy: did not start: $(tail -n 2 "$plog")"

# sibling N KIND RUN [HOSTFWD] - boot a sibling VM in the background; its
# console goes to $work/sib-N.console (device.sh reads it through 9p),
# its exit status to $work/sib-N.exit.
sibling() {
	local n=$1 kind=$2 run=$3 fwd=${4:-} initrd=$sibk_initrd smods=$sibk_mods nic=(-nic none)
	[ "$kind" = kernel ] || { initrd=$sibu_initrd smods=$sibu_mods; }
	[ -z "$fwd" ] || nic=(-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$fwd-:5001")
	: >"$work/sib-$n.console"
	(
		rc=0
		timeout -k 5 900 qemu-system-x86_64 -accel tcg -m 256M -smp 1 -display none -serial stdio \
			-monitor none -no-reboot -pidfile "$work/sib-$n.qpid" "${nic[@]}" \
			-object "memory-backend-file,id=mem,size=256M,mem-path=$bar4,share=on" \
			-machine memory-backend=mem \
			-chardev "socket,id=vu,path=$work/sib.sock" -device vhost-user-vsock-pci,chardev=vu \
			-kernel "$VMLINUX" -initrd "$initrd" \
			-append "console=ttyS0 quiet panic=-1 no_timer_check rig.mods=$smods rig.run=$run" \
			</dev/null 2>&1 | sed -u 's/\r$//' >>"$work/sib-$n.console" || rc=$?
		echo "$rc" >"$work/sib-$n.exit"
	) &
}

# stop_sibling N - SIGTERM to its QEMU (by its -pidfile).
stop_sibling() {
	local pid
	pid=$(cat "$work/sib-$1.qpid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || true
}

# conduct - follow the device VM's console and do what device.sh asks
# (tail ends with this script: --pid).
conduct() {
	local line
	tail -n +1 -F --pid=$$ "$1" 2>/dev/null | while IFS= read -r line; do
		case $line in
		"vvu-req: sibling "*)
			# shellcheck disable=SC2086 # the words of the request
			sibling ${line#vvu-req: sibling } ;;
		"vvu-req: stop "*) stop_sibling "${line#vvu-req: stop }" ;;
		"vvu-req: fault "*) echo "${line#vvu-req: }" >"$work/control" ;;
		esac
	done
}
log=$VUV_LOGS/$name.log
: >"$log"
conduct "$log" &
conductor_pid=$!

run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout $((host_limit - 60)) --dump /tmp -- \
	"$peers/vvu/device.sh" --daemon "$daemon" --xfer "$xfer" --vsock-test "$vt" --peer "$peer" \
	--bdf "$bdf" --ctl-fwd "$port_fwd" --ctl-rev "$port_rev" --bytes "$bytes" \
	--faults "$faults") || fail "setup: a path cannot be passed to the guest"
append="console=ttyS0 quiet panic=-1 intel_iommu=on iommu=pt no_timer_check"
append+=" rig.root9p=1 rig.mods=$dev_mods rig.run=$run"
keeps=$(rig_tmp_keeps "$rig_repo" "$build" "$VUV_CACHE" "$vt") || fail "setup: a path cannot be passed to the guest"
[ -z "$keeps" ] || append+=" rig.keep=$keeps"

echo "$name: device VM QEMU $dev_version (sid chroot) + vvu_proxy, sibling VMs QEMU $sib_version; $(basename "$VMLINUX") under TCG (limit ${host_limit}s), console in $log"
RIG_QEMU=("${dev_qemu[@]}")
# shellcheck disable=SC2054 # commas belong to QEMU option values
rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${dev_9p[@]}" \
	-virtfs "local,path=$work,mount_tag=vvushare,security_model=none,readonly=on,multidevs=remap" \
	-machine q35,memory-backend=ram0 -m 1G -smp 1 \
	-object memory-backend-memfd,id=ram0,size=1G,share=on \
	-device intel-iommu,intremap=on,caching-mode=on \
	-device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$work/vu.sock\"},\"addr\":\"0x10\"}" \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port_fwd-:5000" -device virtio-net-pci,netdev=n0,addr=0x11 \
	-kernel "$VMLINUX" -initrd "$dev_initrd" -append "$append"

# The proxy ends with the device VM's QEMU and prints its counters.
for _ in $(seq 50); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
kill "$proxy_pid" 2>/dev/null || true
wait "$proxy_pid" 2>/dev/null || true
proxy_pid=''
kill "$conductor_pid" 2>/dev/null || true
conductor_pid=''
for c in "$work"/sib-*.console; do
	[ -e "$c" ] || continue
	n=${c##*/sib-}
	cp "$c" "$VUV_LOGS/$name.sib-${n%.console}.log"
done

verdict=0
rig_judge "$log" vvu-device VUV_VVU_TIMEOUT >"$work/judge" || verdict=1
grep -vE '^vvu-device' "$work/judge" || true
npass=$(rig_console "$log" | grep -c '^PASS:' || true)
nfail=$(rig_console "$log" | grep -c '^FAIL:' || true)
if [ "$verdict" = 1 ] && [ "$nfail" = 0 ]; then
	echo "FAIL: device VM: the run did not end cleanly (see above)"
	nfail=$((nfail + 1))
fi
stats=$(grep -m 1 'vvu proxy: stats:' "$plog" || true)
if [[ $stats == *" bad 0,"* ]] && [[ $stats != *"sessions 0,"* ]]; then
	echo "PASS: proxy/served (${stats#*stats: })"
	npass=$((npass + 1))
else
	echo "FAIL: proxy/served: ${stats:-no counters (crashed?)}; see $plog"
	nfail=$((nfail + 1))
fi
rig_split_dumps "$log" "$VUV_LOGS/$name.dump." >/dev/null
boot=- run_s=-
[ -z "$RIG_T_RUN" ] || boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
echo "$name: timings: set-up ${t_setup}s, device VM boot ${boot}s, run ${run_s}s, total $(rig_elapsed "$t_start")s"
echo "$name: logs $log, $plog, $VUV_LOGS/$name.sib-*.log, $VUV_LOGS/$name.dump.*"
if [ "$nfail" != 0 ]; then
	echo "--- last device VM console lines:"
	rig_console "$log" | tail -n 25
fi
echo "$name: $npass passed, $nfail failed"
[ "$nfail" = 0 ]

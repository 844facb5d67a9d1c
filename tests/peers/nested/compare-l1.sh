#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The L1 side of compare.sh: inside L1 (vhost_vsock loaded), the same L2
# guest (kernel, initramfs, 256 MiB memfd RAM, one vCPU) boots twice at
# once, once on QEMU's own vhost-vsock-pci (guest CID 4) and once on our
# daemon's kernel engine through vhost-user-vsock-pci (guest CID 3); both
# serve nested_perf on PORT. L1 then measures each in turn, the order
# alternating per round: BYTES host -> guest, BYTES guest -> host, TRIPS
# 1-byte round trips (nested_perf run). Both data paths are the kernel's
# vhost_vsock; only the set-up differs, and before measuring, the feature
# bits each guest's driver negotiated must be the same (setup_same).
#
#   compare-l1.sh --daemon PATH --perf PATH --kernel VMLINUX --initrd L2.cpio.gz
#                 [--rounds N] [--bytes N] [--trips N] [--boot-wait S]
#                 [--sid-root DIR] [--l2-extra WORD[+WORD]...]
#
# Output: "PASS: case" / "FAIL: case: reason", "INFO: ..." lines with each
# round's figures, "RESULT: metric ours=X qemu=Y ratio=R target ... met|MISSED"
# (medians; ratio is ours/qemu for throughput, qemu/ours for the round
# trip, so higher is better for all three), and "compare: N passed, M
# failed". The checks are that both guests booted, every measurement
# completed with every byte checked, and the daemon exited 0; the ratios
# are reported, not judged (TCG-in-TCG timing is noisy).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../rig/lib.sh
. "$(dirname "$0")/../rig/lib.sh"

W=/tmp
PORT=6000 CID_OURS=3 CID_QEMU=4 TARGET=0.95
rounds=5 bytes=$((4 << 20)) trips=200 boot_wait=600
daemon='' perf='' kernel='' initrd='' sid_root='' l2_extra=''
while [ $# -gt 0 ]; do
	case $1 in
	--daemon) daemon=$2 ;;
	--perf) perf=$2 ;;
	--kernel) kernel=$2 ;;
	--initrd) initrd=$2 ;;
	--rounds) rounds=$2 ;;
	--bytes) bytes=$2 ;;
	--trips) trips=$2 ;;
	--boot-wait) boot_wait=$2 ;;
	--sid-root) sid_root=$2 ;;
	--l2-extra) l2_extra=" ${2//+/ }" ;;
	*) echo "compare-l1: unknown argument $1" && exit 2 ;;
	esac
	shift 2 || { echo "compare-l1: $1 needs a value" && exit 2; }
done

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS: $1${2:+ ($2)}"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1: $2"; }
info() { echo "INFO: $*"; }

pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
}
trap cleanup EXIT

finish() {
	echo "compare: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

# boot_l2 NAME DEVICE_ARG... - the L2 guest on that vsock device, in the background.
boot_l2() {
	local name=$1
	shift
	timeout -k 5 $((boot_wait + 1800)) "${l2_qemu[@]}" -accel tcg -m 256M -smp 1 \
		-display none -serial stdio -monitor none -no-reboot -nic none \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem "$@" \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 no_timer_check$l2_extra rig.run=/bin/nested_perf,serve,$PORT" \
		</dev/null >"$W/l2-$name.log" 2>&1 &
	pids+=($!)
}

# serving NAME - wait until that L2's nested_perf listens. Return: 0 or 1.
serving() {
	local end=$((SECONDS + boot_wait))
	while [ $SECONDS -lt $end ]; do
		grep -q '^perf-serving' "$W/l2-$1.log" 2>/dev/null && return 0
		sleep 1
	done
	return 1
}

# measure CID ROUND - one nested_perf run, its line kept in perf-CID.txt.
measure() {
	local line
	line=$("$perf" run "$1" "$PORT" "$bytes" "$trips" --wait 60 2>&1 | tail -n 1)
	info "round $2 cid $1: $line"
	case $line in
	perf-ok:*) echo "$line" >>"$W/perf-$1.txt" ;;
	*) echo "$line" >>"$W/perf-fail-$1.txt" ;;
	esac
}

# median CID FIELD - the median of FIELD over perf-CID.txt's lines.
median() {
	sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$W/perf-$1.txt" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
		      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# result METRIC HIGHER_IS_BETTER(1|0) - the medians and their ratio (ours relative to QEMU).
result() {
	local o q
	o=$(median "$CID_OURS" "$1")
	q=$(median "$CID_QEMU" "$1")
	awk -v m="$1" -v o="$o" -v q="$q" -v hi="$2" -v t="$TARGET" 'BEGIN {
		r = hi ? o / q : q / o
		printf "RESULT: %s ours=%s qemu=%s ratio=%.3f target>=%s %s\n", m, o, q, r, t,
		       (r >= t ? "met" : "MISSED") }'
}

cd "$W" || exit 1
for f in "$daemon" "$perf" "$kernel" "$initrd"; do
	[ -n "$f" ] && [ -r "$f" ] || { fail setup "missing input '$f'"; finish; }
done
l2_qemu=(qemu-system-x86_64)
if [ -n "$sid_root" ]; then
	l2_qemu=(env "RIG_SID_ROOT=$sid_root" "RIG_SID_BINDS=$(dirname "$kernel"):$(dirname "$initrd")"
		"$rig_dir/sid-chroot.sh" qemu)
fi
info "L1 $(uname -r), $(nproc) CPUs; L2's QEMU: $("${l2_qemu[@]}" --version 2>&1 | head -n 1);" \
	"$rounds rounds of $bytes bytes each way and $trips round trips"

"$daemon" --socket "$W/vu.sock" --cid "$CID_OURS" --log-level info >"$W/daemon.log" 2>&1 &
dpid=$!
pids+=("$dpid")
if rig_wait_listening "$W/vu.sock" 10 "$dpid"; then
	pass daemon-start "kernel engine, guest CID $CID_OURS"
else
	fail daemon-start "no socket $W/vu.sock: $(tail -n 1 "$W/daemon.log")"
	finish
fi

t=$(rig_now)
boot_l2 ours -chardev socket,id=vu,path="$W/vu.sock" -device vhost-user-vsock-pci,chardev=vu
boot_l2 qemu -device vhost-vsock-pci,guest-cid="$CID_QEMU"
for name in ours qemu; do
	if serving "$name"; then
		pass "l2-boot-$name" "serving after $(rig_elapsed "$t") s"
	else
		fail "l2-boot-$name" "nested_perf not serving within ${boot_wait}s: $(tail -n 2 "$W/l2-$name.log" | tr '\n' ' ')"
	fi
done
[ "$failed" -eq 0 ] || finish

# setup_same - both guests' drivers negotiated the same features with
# their vsock devices (nested_perf serve prints them from sysfs): otherwise
# the ratios would compare set-ups, not back ends. (Not asked of QEMU over
# QMP: x-query-virtio-queue-status stops a vhost-user back end's ring, as it
# sends GET_VRING_BASE, and QEMU 11.1.3 aborts on x-query-virtio-status.)
setup_same() {
	local name
	declare -A seen
	for name in ours qemu; do
		seen[$name]=$(sed -n 's/^perf-features: //p' "$W/l2-$name.log" | tr -d '\r' | head -n 1)
		info "$name: guest's negotiated vsock feature bits: ${seen[$name]:-none printed}"
	done
	case ${seen[ours]} in
	'' | unknown*) fail setup-same "ours: ${seen[ours]:-no perf-features line}" ;;
	"${seen[qemu]}") pass setup-same "feature bits ${seen[ours]} on both" ;;
	*) fail setup-same "ours: ${seen[ours]}; QEMU's: ${seen[qemu]}" ;;
	esac
}
setup_same

for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then
		measure "$CID_OURS" "$r"
		measure "$CID_QEMU" "$r"
	else
		measure "$CID_QEMU" "$r"
		measure "$CID_OURS" "$r"
	fi
done
for c in "$CID_OURS" "$CID_QEMU"; do
	n=$(grep -c '^perf-ok' "$W/perf-$c.txt" 2>/dev/null)
	if [ "${n:-0}" -eq "$rounds" ]; then
		pass "measure-cid$c" "$rounds rounds, every byte checked"
	else
		fail "measure-cid$c" "${n:-0} of $rounds rounds: $(head -n 1 "$W/perf-fail-$c.txt" 2>/dev/null)"
	fi
done
if [ "$failed" -eq 0 ]; then
	result h2g_mib_s 1
	result g2h_mib_s 1
	result rtt_us 0
fi

# the guests first: then the daemon has no front end left
for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null; done
kill -TERM "$dpid" 2>/dev/null
rc=0
wait "$dpid" || rc=$?
if [ "$rc" = 0 ]; then
	pass daemon-exit "exit 0 after SIGTERM"
else
	fail daemon-exit "exit status $rc"
fi
finish

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The device VM's side of run-vvu.sh: runs inside the device VM (QEMU 11.1
# from the sid chroot, Debian 6.1, vfio-pci + vhost_vsock loaded, the host
# root over 9p, chrooted), where the proxy's VVU device is PCI BDF. It binds
# the device to vfio-pci, runs our daemon on it (--vfio) and drives every
# case; the sibling VMs (QEMU 7.2 on the host, their RAM in the proxy's
# BAR 4 file) are started and stopped by run-vvu.sh on request:
#   "vvu-req: sibling N KIND RUN [HOSTFWD]"   boot sibling N (KIND kernel or
#                                            user: its initramfs; RUN: its
#                                            rig.run=; HOSTFWD: L0 port of
#                                            its control port 5001)
#   "vvu-req: stop N"                        SIGTERM to sibling N's QEMU
#   "vvu-req: fault NAME AT"                 arm a proxy fault (its FIFO)
# and sibling N's console is SHARE/sib-N.console: run-vvu.sh's work
# directory, a second 9p export (tag vvushare) that this script mounts with
# cache=none, so it sees the file grow (the rig's host root is cache=loose).
#
#   device.sh --daemon PATH --xfer PATH --vsock-test PATH --peer PATH
#             --bdf BDF --ctl-fwd PORT --ctl-rev PORT
#             [--bytes N] [--bulk N] [--faults LIST] [--boot-wait S]
#
# Output: "PASS: ENGINE/case (...)" / "FAIL: ENGINE/case: reason" (ENGINE:
# kernel-engine, user-engine, faults), INFO lines, and "vvu-device: N
# passed, M failed"; exit 0 iff nothing failed. Logs in /tmp (dumped by
# guest-run.sh). Every wait is bounded.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../rig/lib.sh
. "$(dirname "$0")/../rig/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../rig/guest-verdict.sh
. "$(dirname "$0")/../rig/guest-verdict.sh"

W=/tmp
cid=3 bytes=$((16 << 20)) bulk=$((16 << 20)) boot_wait=240 faults='oversize:3 bad-layout:0 vring-index:0 reset:5'
daemon='' xfer='' vt='' peer='' bdf='' share=$W/share ctl_fwd='' ctl_rev=''
P1=5101 Q1=5102 P2=5201 Q2=5202 P3=5301 Q3=5302 VT_PORT=5000
# The kernel engine keeps the daemon off the data path but for the calls:
# VVU turns each used-ring interrupt into a doorbell the daemon writes.
while [ $# -gt 0 ]; do
	case $1 in
	--daemon) daemon=$2 ;;
	--xfer) xfer=$2 ;;
	--vsock-test) vt=$2 ;;
	--peer) peer=$2 ;;
	--bdf) bdf=$2 ;;
	--ctl-fwd) ctl_fwd=$2 ;;
	--ctl-rev) ctl_rev=$2 ;;
	--bytes) bytes=$2 ;;
	--bulk) bulk=$2 ;;
	--faults) faults=${2//+/ } ;;
	--boot-wait) boot_wait=$2 ;;
	*) echo "device: unknown argument $1" && exit 2 ;;
	esac
	shift 2 || { echo "device: $1 needs a value" && exit 2; }
done

verdict_prefix='setup/'

finish() {
	echo "vvu-device: $passed passed, $failed failed"
	info "device VM script total $(rig_elapsed "$t_start") s"
	[ "$failed" -eq 0 ]
	exit
}

# wait_file FILE REGEX SECS [FROM] - a line matching REGEX in FILE (after
# its first FROM lines). Return: 0 when seen in time.
wait_file() {
	local end=$((SECONDS + $3)) from=${4:-0}
	while [ $SECONDS -lt $end ]; do
		tail -n +$((from + 1)) "$1" 2>/dev/null | grep -qE "$2" && return 0
		sleep 0.5
	done
	return 1
}

lines() { wc -l <"$1" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------------
# The sibling VMs (run-vvu.sh boots them on request)

sib_console() { echo "$share/sib-$1.console"; }
sib_start() { # N KIND RUN [HOSTFWD]
	echo "vvu-req: sibling $*"
	# run-vvu.sh creates the console file before it launches QEMU
	wait_file "$(sib_console "$1")" '' 30 || true
}
sib_wait() { wait_file "$(sib_console "$1")" "$2" "$3"; }
sib_step() {
	local rc
	rc=$(sed -n "s/^l2-step: $2 exit=\([0-9]*\)\$/\1/p" "$(sib_console "$1")" 2>/dev/null | tail -n 1)
	echo "${rc:-none}"
}
sib_line() { grep -E "^xfer-(ok|fail): role=$2" "$(sib_console "$1")" | tail -n 1; }
sib_gone() { wait_file "$share/sib-$1.exit" '' "$2"; }
sib_stop() {
	echo "vvu-req: stop $1"
	sib_gone "$1" 60
}

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# judge_xfer CASE LOG RC N STEP ROLE - both ends checked every byte and the CRCs cross-match.
judge_xfer() {
	local name=$1 log=$2 lrc=$3 n=$4 step=$5 role=$6 a b rc
	a=$(grep -E '^xfer-(ok|fail)' "$log" | tail -n 1)
	rc=$(sib_step "$n" "$step")
	b=$(sib_line "$n" "$role")
	if [ "$lrc" != 0 ]; then
		fail "$name" "device VM side (exit $lrc): ${a:-no result line}"
	elif [ "$rc" != 0 ]; then
		fail "$name" "sibling side (step $step exit=$rc): ${b:-no result line}"
	elif [ -z "$(field "$a" in_crc)" ] || [ "$(field "$a" in_crc)" != "$(field "$b" out_crc)" ] ||
		[ "$(field "$a" out_crc)" != "$(field "$b" in_crc)" ]; then
		fail "$name" "CRCs do not match: device VM '$a', sibling '$b'"
	else
		pass "$name" "$(field "$a" bytes) bytes each way, CRC-32 $(field "$a" in_crc)/$(field "$a" out_crc), $(field "$a" mib_s) MiB/s"
		return 0
	fi
	return 1
}

judge_vt() { # CASE LOG RC N STEP
	local name=$1 log=$2 rc=$3 n=$4 step=$5 srl ok
	srl=$(sib_step "$n" "$step")
	ok=$(grep -cE '^[0-9]+ - .*\.\.\.ok$' "$log")
	grep -E '^[0-9]+ - ' "$log" | sed "s/^/INFO: $name: /"
	if [ "$vt_cases" -le 0 ]; then
		fail "$name" "vsock_test --list names no cases"
	elif [ "$rc" != 0 ]; then
		fail "$name" "device VM vsock_test exit $rc: $(grep -v '^$' "$log" | tail -n 2 | tr '\n' ' ')"
	elif [ "$srl" != 0 ]; then
		fail "$name" "sibling vsock_test step $step exit=$srl"
	elif [ "$ok" != "$vt_cases" ]; then
		fail "$name" "$ok of $vt_cases cases ok"
	else
		pass "$name" "$ok/$vt_cases cases ok"
	fi
}

# ------------------------------------------------------------------------
# The device and the daemon

bind_vfio() {
	local dev=/sys/bus/pci/devices/$bdf group
	if [ ! -e "$dev" ]; then
		fail bind "no PCI device $bdf in the device VM"
		return 1
	fi
	info "$bdf is $(cat "$dev/vendor" "$dev/device" | tr '\n' ' ')(the proxy's VVU device)"
	echo vfio-pci >"$dev/driver_override"
	[ ! -e "$dev/driver" ] || echo "$bdf" >"$dev/driver/unbind"
	echo "$bdf" >/sys/bus/pci/drivers/vfio-pci/bind 2>/dev/null
	group=$(basename "$(readlink "$dev/iommu_group")")
	if [ "$(basename "$(readlink "$dev/driver")")" = vfio-pci ] && [ -c "/dev/vfio/$group" ]; then
		pass bind "$bdf bound to vfio-pci, /dev/vfio/$group"
		return 0
	fi
	fail bind "not bound to vfio-pci (driver: $(readlink "$dev/driver"))"
	return 1
}

# daemon_start LOG ARG... - the daemon on the device; waits for its "ready".
daemon_start() {
	local log=$1
	shift
	"$daemon" --vfio "$bdf" "$@" --log-level debug >"$log" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	if wait_file "$log" "waiting for a front end through" 60; then
		pass daemon-up "$(grep -m 1 'vvu: .*: ready' "$log" | sed 's/^.*info: //')"
		return 0
	fi
	fail daemon-up "no 'waiting for a front end' in 60 s: $(grep -m 1 -E 'error|fatal' "$log")"
	return 1
}

daemon_stop() {
	kill -TERM "$dpid" 2>/dev/null
	if ! wait_gone "$dpid" 15; then
		fail daemon-exit "still running 15 s after SIGTERM"
		kill -KILL "$dpid" 2>/dev/null
		return
	fi
	reap "$dpid"
	if [ "$rc" = 0 ]; then pass daemon-exit "exit 0 after SIGTERM"; else fail daemon-exit "exit status $rc"; fi
}

# ------------------------------------------------------------------------
# Kernel engine: the device VM's vhost_vsock behind the VVU device

kernel_data() {
	local lpid vtpid lrc xrc s0 s1 vrev t
	"$xfer" listen "$P1" "$bytes" --wait "$boot_wait" --timeout 300 --peer "$cid" \
		>"$W/xfer-listen-1.log" 2>&1 &
	lpid=$!
	timeout -k 5 $((boot_wait + 900)) "$vt" --mode=server --control-port="$VT_PORT" \
		--peer-cid="$cid" >"$W/vt-server.log" 2>&1 &
	vtpid=$!
	pids+=("$lpid" "$vtpid")
	sib_start 1 kernel "/bin/l2.sh,data,$cid,$P1,$Q1,$bytes,$ctl_fwd,5001" "$ctl_rev"
	if ! sib_wait 1 '^rig: run start' "$boot_wait"; then
		fail sibling-boot "sibling 1 did not start its script within ${boot_wait}s"
		return 1
	fi
	pass session "sibling 1's QEMU 7.2 served through the proxy: $(grep -c 'vhost-user' "$W/daemon-kernel.log") daemon log lines on vhost-user"
	reap "$lpid"
	lrc=$rc
	sib_wait 1 '^l2-step: connect exit=' 30
	if [ "$(sib_step 1 cid)" = 0 ]; then pass sibling-cid "$(sib_line 1 cid)"; else fail sibling-cid "$(sib_line 1 cid)"; fi
	judge_xfer sibling-to-device "$W/xfer-listen-1.log" "$lrc" 1 connect connect
	s0=$(daemon_sample)
	"$xfer" connect "$cid" "$Q1" "$bytes" --wait 60 --timeout 300 >"$W/xfer-connect-1.log" 2>&1
	xrc=$?
	s1=$(daemon_sample)
	sib_wait 1 '^l2-step: listen exit=' 30
	judge_xfer device-to-sibling "$W/xfer-connect-1.log" "$xrc" 1 listen listen && judge_path "$s0" "$s1"
	# one try (--wait 0): the sibling's kernel resets it, the answer crosses the VVU path once
	t=$(rig_now)
	"$xfer" connect "$cid" 5999 1 --wait 0 --timeout 10 >"$W/xfer-absent.log" 2>&1
	t=$(rig_elapsed "$t")
	if grep -qiE '(refused|reset by peer) \(1 tries' "$W/xfer-absent.log" &&
		awk -v t="$t" 'BEGIN { exit !(t < 10) }'; then
		pass absent-port "refused in ${t}s: $(tail -n 1 "$W/xfer-absent.log" | sed 's/^.*: //')"
	else
		fail absent-port "a connection to an unbound sibling port: $(tail -n 1 "$W/xfer-absent.log")"
	fi
	reap "$vtpid"
	sib_wait 1 '^l2-step: vt-client exit=' 30
	judge_vt vsock_test-device-server "$W/vt-server.log" "$rc" 1 vt-client
	if sib_wait 1 'Control socket listening' 60; then
		timeout -k 5 600 "$vt" --mode=client --control-host=10.0.2.2 --control-port="$ctl_rev" \
			--peer-cid="$cid" >"$W/vt-client.log" 2>&1
		vrev=$?
	else
		echo "the sibling's vsock_test server never listened" >"$W/vt-client.log"
		vrev=125
	fi
	sib_wait 1 '^l2: done' 60
	judge_vt vsock_test-sibling-server "$W/vt-client.log" "$vrev" 1 vt-server
}

# judge_path S0 S1 - the daemon's share of BYTES each way. Kicks never
# reach it (the proxy's MSI-X eventfd is vhost's kick fd), but with VVU it
# relays each call: vhost signals an eventfd, the daemon writes the
# doorbell (the kernel cannot write MMIO). Calls coalesce; a daemon on the
# data path would wake at least once per packet (the guests' 4 KiB rx
# buffers: 2 * BYTES / 4 KiB packets), so it must stay well under that.
# Measured 268-524 per 8192 packets at load 12-35; how calls coalesce on a
# quiet machine was not measured, hence a bound of one per 2 packets.
judge_path() {
	local dt dc pkts
	if [ -z "$1" ] || [ -z "$2" ]; then
		fail daemon-off-data-path "no samples ('$1' '$2')"
		return
	fi
	dt=$((${2% *} - ${1% *}))
	dc=$((${2#* } - ${1#* }))
	pkts=$((2 * bytes / 4096))
	info "daemon during $bytes bytes each way: CPU +$dt ticks, context switches +$dc (CLK_TCK $(getconf CLK_TCK)), $pkts packets of 4 KiB"
	if [ "$dc" -lt $((pkts / 2)) ]; then
		pass daemon-off-data-path "switches +$dc < $((pkts / 2)) (1 per 2 packets), CPU +$dt ticks: the calls it relays"
	else
		fail daemon-off-data-path "switches +$dc >= $((pkts / 2)) (1 per 2 of $pkts packets), CPU +$dt ticks"
	fi
}

# The sibling's QEMU quits: the daemon sees the disconnect and resets the device.
kernel_stop() {
	local mark
	mark=$(lines "$W/daemon-kernel.log")
	sib_stop 1 || fail vmm-stop "sibling 1's QEMU still running 60 s after SIGTERM"
	if wait_file "$W/daemon-kernel.log" 'waiting for a front end through' 60 "$mark"; then
		pass vmm-stop "disconnect seen, device reset, daemon waiting again: $(tail -n +$((mark + 1)) "$W/daemon-kernel.log" | grep -m 1 -iE 'disconnect|front end (left|gone)|hung up' | sed 's/^.*: //')"
		return 0
	fi
	fail vmm-stop "the daemon did not get back to waiting for a front end"
	return 1
}

# A new sibling QEMU connects to the proxy and is served (after the faults:
# so it is also the fault cases' "next session works").
kernel_restart() {
	local lpid lrc xrc
	verdict_prefix='kernel-engine/'
	"$xfer" listen "$P2" $((1 << 20)) --wait "$boot_wait" --timeout 120 --peer "$cid" \
		>"$W/xfer-listen-2.log" 2>&1 &
	lpid=$!
	pids+=("$lpid")
	sib_start 2 kernel "/bin/l2.sh,restart,$cid,$P2,$Q2,$((1 << 20))"
	reap "$lpid"
	lrc=$rc
	sib_wait 2 '^l2-step: connect exit=' 60
	judge_xfer restart-sibling-to-device "$W/xfer-listen-2.log" "$lrc" 2 connect connect
	"$xfer" connect "$cid" "$Q2" $((1 << 20)) --wait 60 --timeout 120 >"$W/xfer-connect-2.log" 2>&1
	xrc=$?
	sib_wait 2 '^l2: done' 60
	judge_xfer restart-device-to-sibling "$W/xfer-connect-2.log" "$xrc" 2 listen listen
	sib_gone 2 60 || sib_stop 2
}

# ------------------------------------------------------------------------
# Faults from the proxy: clear error, device reset, next session works

fault_case() { # NAME AT N
	local name=$1 at=$2 n=$3 mark err
	mark=$(lines "$W/daemon-kernel.log")
	echo "vvu-req: fault $name $at"
	sleep 1
	sib_start "$n" kernel "/bin/l2.sh,restart,$cid,$P3,$Q3,4096"
	if ! wait_file "$W/daemon-kernel.log" '(error|warn):' 180 "$mark"; then
		fail "fault-$name" "no error in the daemon's log within 180 s"
		sib_stop "$n" >/dev/null
		return
	fi
	err=$(tail -n +$((mark + 1)) "$W/daemon-kernel.log" | grep -m 1 -E '(error|warn):' | sed 's/^.*\] //')
	sib_stop "$n" >/dev/null || true
	if ! wait_file "$W/daemon-kernel.log" 'waiting for a front end through' 60 "$mark"; then
		fail "fault-$name" "error '$err' but the daemon is not waiting for a front end again"
	elif ! kill -0 "$dpid" 2>/dev/null; then
		fail "fault-$name" "the daemon exited"
	else
		pass "fault-$name" "$err; device reset, daemon waiting again"
	fi
}

# Fault sessions use fresh ports (P3/Q3): a faulted sibling's own steps
# must never meet the restart check's listeners.
fault_sessions() {
	local n=10 f
	verdict_prefix='faults/'
	for f in $faults; do
		fault_case "${f%%:*}" "${f#*:}" "$n"
		n=$((n + 1))
	done
}

# ------------------------------------------------------------------------
# Userspace engine: sibling guest <-> Unix sockets in the device VM

user_engine() {
	local hpid n=20 c line
	verdict_prefix='user-engine/'
	daemon_start "$W/daemon-user.log" --cid "$cid" --uds-path "$W/vvu.vsock" || return
	"$peer" --uds "$W/vvu.vsock" --timeout 600 >"$W/host-peer.log" 2>&1 &
	hpid=$!
	pids+=("$hpid")
	rig_wait_listening "$W/vvu.vsock_5000" 10 "$hpid" || fail host-peer "did not listen"
	sib_start "$n" user "/bin/guest_vsock_check,--cid,$cid,--bulk,$bulk,--budget,400"
	c=$(sib_console "$n")
	if ! sib_wait "$n" '^run exit=' 600; then
		fail sibling "sibling $n did not finish within 600 s"
	fi
	# the guest program's own verdicts, one per case, under this engine's name
	# (a file, not <(...): the chroot has no /dev/fd)
	grep -E '^(PASS|FAIL):' "$c" >"$W/sibling-user.verdicts"
	while IFS= read -r line; do
		case $line in
		PASS:*) pass "${line#PASS: }" ;;
		FAIL:*) failed=$((failed + 1)); echo "FAIL: $verdict_prefix${line#FAIL: }" ;;
		esac
	done <"$W/sibling-user.verdicts"
	[ -s "$W/sibling-user.verdicts" ] || fail sibling "no verdicts from the guest program"
	grep -qE '^run exit=0$' "$c" || fail sibling "guest program: $(grep -m 1 '^run exit=' "$c")"
	wait_gone "$hpid" 20 || kill "$hpid" 2>/dev/null
	reap "$hpid"
	[ "$rc" = 0 ] || fail host-peer "exit status $rc"
	sib_gone "$n" 60 || sib_stop "$n"
	daemon_stop
}

# ------------------------------------------------------------------------

t_start=$(rig_now)
cd "$W" || exit 1
for f in "$daemon" "$xfer" "$vt" "$peer"; do
	[ -x "$f" ] || { fail setup "missing program '$f'"; finish; }
done
mkdir -p "$share"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none vvushare "$share"; then
	fail setup "cannot mount the 9p export vvushare (run-vvu.sh's work directory)"
	finish
fi
vt_cases=$("$vt" --list 2>/dev/null | grep -cE '^[0-9]+'$'\t')
if ! { ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2; }; then
	fail setup "eth0 (vsock_test's control channel)"
fi
info "device VM $(uname -r); daemon $daemon --vfio $bdf; vsock_test lists $vt_cases cases"
bind_vfio || finish
verdict_prefix='kernel-engine/'
daemon_start "$W/daemon-kernel.log" --cid "$cid" || finish
t=$(rig_now)
kernel_data
info "phase: sibling 1 (data, vsock_test) $(rig_elapsed "$t") s"
t=$(rig_now)
if kernel_stop; then
	fault_sessions
	info "phase: faults $(rig_elapsed "$t") s"
	t=$(rig_now)
	kernel_restart
	info "phase: restart $(rig_elapsed "$t") s"
fi
verdict_prefix='kernel-engine/'
daemon_stop
t=$(rig_now)
user_engine
info "phase: userspace engine $(rig_elapsed "$t") s"
finish

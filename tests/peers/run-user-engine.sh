#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real-peer test of the userspace engine (hybrid vsock), no nesting: on
# this host,
#   host_peer --uds $W/vm.vsock                        (host helper, listens first)
#   vhost-user-vsock --socket $W/vu.sock --guest-cid 3 --uds-path $W/vm.vsock
#   qemu-system-x86_64 -accel tcg ... memfd share=on -device vhost-user-vsock-pci
# and QEMU boots Debian's 6.1 (or 6.12) kernel with a busybox initramfs (virtio_pci +
# vmw_vsock_virtio_transport, no 9p) whose /init runs the static
# tests/peers/user/guest_vsock_check. The guest drives the cases over a
# vsock control connection to the host helper (tests/peers/user/peer_io.h).
#
#   run-user-engine.sh [--demo]
#     --demo   tell the story in plain words (scripts/demo.sh) instead of
#              the CI report; same checks, same exit status
#
# Environment: VUV_BUILD (default <repo>/build/gcc; must hold a static
# guest program, so not a sanitizer build), VUV_CACHE and VUV_LOGS
# (rig/lib.sh), VUV_PEER_TIMEOUT (host limit for QEMU, s, default 150),
# VUV_GUEST_TIMEOUT (the guest program's own budget, s, default 110),
# VUV_USER_BULK (bytes each way in the bulk cases, default 4 MiB),
# VUV_USER_BOOTS (front ends served one after the other, default 2; the
# demo boots once),
# VUV_DAEMON (the daemon to run, default $VUV_BUILD/vhost-user-vsock; e.g.
# an ASan build's, which the host can run while the guest program cannot),
# VUV_PEER_VERBOSE=1 (echo the console live),
# VUV_QEMU (host: the machine's QEMU 7.2, default; sid: QEMU 11.1 from the
# sid chroot, rig/sid-chroot.sh) and VUV_KERNEL (6.1, default, or 6.12: the
# guest kernel, rig/fetch-kernel.sh); other than host + 6.1, logs carry the
# combination in their names (user-engine-qemu-11.1-linux-6.12.log).
#
# Verdict, for each of the QEMU front ends booted one after the other
# against the same daemon: the guest's markers (PASS:/FAIL:, "user-engine:
# N passed, M failed", init's "run exit=0") and the host helper's exit
# status; then the daemon: still running after QEMU left, exiting 0 on
# SIGTERM, no sanitizer report in its log.
# Never QEMU's exit status. Exit 0 only on a clean pass.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
demo=0
for a in "$@"; do
	case $a in
	--demo) demo=1 ;;
	*) rig_die "usage: run-user-engine.sh [--demo]" ;;
	esac
done
name=user-engine
rig_peers || { echo "FAIL: peers (VUV_QEMU/VUV_KERNEL)"; echo "$name: FAIL"; exit 1; }
# Log and image names: the plain ones for the default peers.
base=$name
[ "$VUV_QEMU,$VUV_KERNEL" = host,6.1 ] || base=$name-$RIG_PEER_ID
host_limit=${VUV_PEER_TIMEOUT:-150}
guest_budget=${VUV_GUEST_TIMEOUT:-110}
bulk=${VUV_USER_BULK:-4194304}
cid=3

fail() {
	echo "FAIL: $*"
	echo "$name$RIG_PEER_TAG: FAIL"
	exit 1
}
# say TEXT - a progress line (plain words in --demo, terse otherwise).
say() { if [ "$demo" = 1 ]; then echo "$*"; fi; }

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
# The daemon runs on the host, so it may come from a sanitizer build.
daemon=${VUV_DAEMON:-$build/vhost-user-vsock}
guest=$build/tests/peers/user/guest_vsock_check
helper=$build/tests/peers/user/host_peer
for f in "$daemon" "$guest" "$helper"; do
	[ -x "$f" ] || fail "not built: $f (ninja -C $build)"
done
# The initramfs has no libc: a dynamic guest program (a sanitizer build)
# could not even start there.
LC_ALL=C readelf -lW "$guest" 2>/dev/null | grep -q 'program interpreter' &&
	fail "$guest is dynamically linked (sanitizer build?); use a plain build such as build/gcc"
for tool in qemu-system-x86_64 timeout awk readelf; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps.sh)"
done

t0=$(rig_now)
say "Fetching Debian's $VUV_KERNEL guest kernel (cached after the first run) ..."
tree=$("$rig_dir/fetch-kernel.sh" --vmlinux) || fail "cannot fetch the guest kernel"
rig_kernel_vars "$tree" || fail "bad kernel tree $tree"
t_kernel=$(rig_elapsed "$t0")
t0=$(rig_now)
initrd=$VUV_CACHE/initrd/$base.cpio.gz
mod_order=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$initrd" -m "$RIG_MODS_L2" \
	-f "$guest:/bin/guest_vsock_check") || fail "cannot build the initramfs"
t_initrd=$(rig_elapsed "$t0")

# Short paths: sockaddr_un holds 107 bytes, and "<uds>_seqpacket" must fit.
work=$(mktemp -d /tmp/vuv-user.XXXXXX)
uds=$work/vm.vsock
sock=$work/vu.sock
mkdir -p "$VUV_LOGS"
rm -f "$VUV_LOGS/$base.log" "$VUV_LOGS/$base".*.log
dlog=$VUV_LOGS/$base.daemon.log
helper_pid='' daemon_pid=''
cleanup() {
	[ -z "$helper_pid" ] || kill "$helper_pid" 2>/dev/null || true
	[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# QEMU is the vhost-user client: it exits at once if nobody listens yet.
"$daemon" --socket "$sock" --guest-cid "$cid" --uds-path "$uds" >"$dlog" 2>&1 &
daemon_pid=$!
if ! rig_wait_listening "$sock" 10 "$daemon_pid"; then
	wait "$daemon_pid" 2>/dev/null && rc=0 || rc=$?
	daemon_pid=''
	fail "the daemon did not start (exit status $rc): $(tail -n 2 "$dlog" | tr '\n' ' ')"
fi
say "Daemon started: vhost-user-vsock --socket $sock --guest-cid $cid --uds-path $uds"

run=$(rig_join_commas /bin/guest_vsock_check --cid "$cid" --bulk "$bulk" --budget "$guest_budget") ||
	fail "a guest argument cannot be passed"
# The hot-plug boot streams at least 32 MiB each way, so that the DIMM comes
# and goes while data flows, not after.
run_hotplug=$(rig_join_commas /bin/guest_vsock_check --cid "$cid" \
	--bulk $((bulk > 33554432 ? bulk : 33554432)) --budget "$guest_budget") ||
	fail "a guest argument cannot be passed"

# boot_guest N - one QEMU front end and its guest against the running
# daemon, with a fresh host helper; judges the console (into $work/verdict
# in --demo), QEMU's end and the helper. Sets log, hlog and timings.
# Return: 0 on a clean pass.
boot_guest() {
	local n=$1 sfx='' rc=0 hrc boot=- run_s=-
	[ "$n" = 1 ] || sfx=.$n
	log=$VUV_LOGS/$base$sfx.log
	hlog=$VUV_LOGS/$base$sfx.host.log
	# The host helper listens before the guest starts: guest connections to
	# host ports must find their Unix listeners.
	"$helper" --uds "$uds" --timeout "$((host_limit + 10))" >"$hlog" 2>&1 &
	helper_pid=$!
	if ! rig_wait_listening "${uds}_5000" 5 "$helper_pid"; then
		echo "verdict: host helper did not start: $(tail -n 2 "$hlog")"
		return 1
	fi
	say "Host helper listening on ${uds}_5000 (guest connections to host port P go to ${uds}_P)."
	say "Booting a Linux guest under QEMU (TCG) with -device vhost-user-vsock-pci ..."
	[ "$demo" = 1 ] || echo "$name$RIG_PEER_TAG: front end $n: QEMU $RIG_QEMU_VERSION booting $(basename "$VMLINUX") under TCG" \
		"(limit ${host_limit}s), console in $log"
	# The second front end has DIMM slots: a DIMM is plugged while the bulk
	# cases stream and unplugged before the guest finishes (memory slots,
	# ADD_MEM_REG / REM_MEM_REG); the guest onlines it movable, so it can let go.
	local mem=(-m 256M) append='' hp_pid='' boot_run=$run
	if [ "$n" = 2 ] && [ "$hotplug" = 1 ]; then
		mem=(-m 256M,slots=4,maxmem=1G -qmp "unix:$work/qmp.sock,server=on,wait=off")
		append=' memhp_default_state=online_movable'
		boot_run=$run_hotplug
		"$rig_dir/qmp-hotplug.py" "$work/qmp.sock" "$log" --after 'PASS: garbage-line-closed' \
			--unplug-after 'PASS: stream-bulk-guest-initiated' --timeout "$host_limit" \
			>"$work/hotplug.out" 2>&1 &
		hp_pid=$!
	fi
	# shellcheck disable=SC2054 # commas belong to QEMU option values
	rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${mem[@]}" -smp 1 \
		-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
		-chardev "socket,id=vu0,path=$sock" -device vhost-user-vsock-pci,chardev=vu0 \
		-kernel "$VMLINUX" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 no_timer_check rig.mods=$mod_order rig.run=$boot_run$append"
	if [ -n "$hp_pid" ]; then
		wait "$hp_pid" || rc=1
		cat "$work/hotplug.out"
		grep -q 'hotplug: unplugged' "$work/hotplug.out" || rc=1
		check_mem_slots || rc=1
	fi
	if [ "$demo" = 1 ]; then
		rig_judge "$log" "$name" VUV_PEER_TIMEOUT >"$work/verdict" || rc=1
	else
		rig_judge "$log" "$name" VUV_PEER_TIMEOUT || rc=1
	fi
	# QEMU's own complaints (e.g. the vhost-user socket refused) say why.
	[ "$RIG_QEMU_RC" = 0 ] || grep -m 3 '^qemu-system' "$log" || true
	# The helper ends after the guest's BYE; give it a moment, not forever.
	for _ in $(seq 50); do kill -0 "$helper_pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$helper_pid" 2>/dev/null; then
		echo "verdict: host helper still waiting after the guest finished (see $hlog)"
		kill "$helper_pid"
		rc=1
	fi
	wait "$helper_pid" && hrc=0 || hrc=$?
	helper_pid=''
	[ "$hrc" = 0 ] || [ "$hrc" = 143 ] || { echo "verdict: host helper exit status $hrc (see $hlog)"; rc=1; }
	[ -z "$RIG_T_RUN" ] || boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
	[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
	timings+=" front end $n: boot ${boot}s, run ${run_s}s, QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s;"
	return "$rc"
}

# check_mem_slots - the daemon mapped the plugged DIMM and unmapped it again:
# a region added while the first front end's table was in place, then removed.
check_mem_slots() {
	local added removed
	added=$(grep -c 'ADD_MEM_REG: gpa 0x1[0-9a-f]\{8\} ' "$dlog" || true)
	removed=$(grep -c 'REM_MEM_REG: gpa 0x1[0-9a-f]\{8\} ' "$dlog" || true)
	if [ "$added" -ge 1 ] && [ "$removed" -ge 1 ]; then
		echo "PASS: memory-hotplug (the DIMM above 4 GiB mapped and unmapped by the daemon while streaming)"
		return 0
	fi
	echo "FAIL: memory-hotplug: daemon log has $added ADD_MEM_REG and $removed REM_MEM_REG above 4 GiB ($dlog)"
	return 1
}

# check_front_end_protocol - what the front end sent beyond the basics, from
# the daemon's log. QEMU >= 8 takes RESET_DEVICE and STATUS when offered:
# it resets the device around each start and sets FEATURES_OK after the
# features (11.1 sends no DRIVER_OK for vsock), and every session above
# still had to pass after those resets.
check_front_end_protocol() {
	local resets ready major=${RIG_QEMU_VERSION%%.*}
	resets=$(grep -c 'RESET_DEVICE: resetting the device' "$dlog" || true)
	ready=$(grep -c 'SET_STATUS: 0x[0-9a-f]* (.*FEATURES_OK' "$dlog" || true)
	echo "INFO: QEMU ${RIG_QEMU_VERSION:-?} sent RESET_DEVICE $resets times, a FEATURES_OK status $ready times"
	[ "${major:-0}" -ge 8 ] 2>/dev/null || return 0
	if [ "$resets" -ge 1 ] && [ "$ready" -ge "$1" ]; then
		echo "PASS: reset-device-and-status (device reset and reconfigured, the driver's FEATURES_OK status in every session)"
		return 0
	fi
	echo "FAIL: reset-device-and-status: $resets RESET_DEVICE and $ready FEATURES_OK status lines for $1 sessions ($dlog)"
	return 1
}

# Two front ends one after the other: the daemon must serve the next VMM
# with a fresh guest after the first one left (issue 5, item 5).
boots=${VUV_USER_BOOTS:-2}
hotplug=${VUV_USER_HOTPLUG:-1}
[ "$demo" = 0 ] || boots=1
timings="kernel fetch ${t_kernel}s, initramfs ${t_initrd}s;"
verdict=0
for n in $(seq "$boots"); do
	# On a failure, stop: $log and $hlog then name the failed run.
	boot_guest "$n" || { verdict=1; break; }
	kill -0 "$daemon_pid" 2>/dev/null || break
done
[ "$verdict" != 0 ] || check_front_end_protocol "$boots" || verdict=1

# After its last front end left, the daemon is still serving, and it stops
# cleanly on SIGTERM.
if ! kill -0 "$daemon_pid" 2>/dev/null; then
	wait "$daemon_pid" && drc=0 || drc=$?
	echo "verdict: the daemon exited (status $drc) when QEMU left; see $dlog"
	verdict=1
else
	kill -TERM "$daemon_pid"
	for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$daemon_pid" 2>/dev/null; then
		echo "verdict: the daemon ignored SIGTERM for 5 s"
		kill -KILL "$daemon_pid"
		verdict=1
	fi
	wait "$daemon_pid" && drc=0 || drc=$?
	[ "$drc" = 0 ] || [ "$drc" = 137 ] || { echo "verdict: daemon exit status $drc on SIGTERM"; verdict=1; }
fi
daemon_pid=''
if grep -m 1 -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$dlog"; then
	echo "verdict: sanitizer report in the daemon log"
	verdict=1
fi

timings+=" total $(rig_elapsed "$t_start")s"

if [ "$demo" = 1 ]; then
	echo
	echo "What happened (as the guest program reports it):"
	grep -E '^(INFO|FAIL):' "$log" | sed -e 's/^INFO: /  - /' -e 's/^FAIL: /  - PROBLEM: /' || true
	echo
	if [ "$verdict" = 0 ]; then
		echo "Result: host and guest exchanged data through the daemon's userspace engine;" \
			"all $(grep -c '^PASS:' "$log") checks passed."
	else
		echo "Result: something went wrong:"
		grep '^verdict:' "$work/verdict" || true
		echo "The host helper's side:"
		sed 's/^host: /  /' "$hlog"
	fi
	echo "Logs: console $log, daemon $dlog, host helper $hlog"
	echo "Time: $timings"
	exit "$verdict"
fi
grep -E '^INFO: guest negotiated' "$log" | head -n 1 || true
echo "$name$RIG_PEER_TAG: timings: $timings"
echo "$name$RIG_PEER_TAG: logs in $VUV_LOGS: $(cd "$VUV_LOGS" && printf '%s ' "$base".log "$base".*.log)"
if [ "$verdict" != 0 ]; then
	echo "--- failed run: console $log, host helper $hlog"
	echo "--- last console lines:"
	tail -n 25 "$log"
	echo "--- last daemon log lines:"
	tail -n 15 "$dlog"
	echo "--- host helper:"
	tail -n 15 "$hlog"
	echo "$name$RIG_PEER_TAG: FAIL"
	exit 1
fi
echo "$name$RIG_PEER_TAG: PASS"

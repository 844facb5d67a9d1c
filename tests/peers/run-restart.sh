#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real-peer test: the daemon restarted under a running guest (issue 16,
# item 2). On this host, per QEMU/kernel pair:
#   host_peer ...                         (host helpers, listening first)
#   vhost-user-vsock --socket $W/vu.sock --guest-cid 3 --uds-path $W/vm.vsock
#   qemu-system-x86_64 ... -chardev socket,path=$W/vu.sock
#                          -device vhost-user-vsock-pci
# The guest (tests/peers/restart/restart-guest.sh) holds two connections
# to the host, one busy (data both ways, checked), one idle; this script
# restarts the daemon under it (SIGTERM or SIGKILL, then at once a new
# daemon on the same socket, as an upgrade would); the guest reports what
# its old connections saw and whether the device answers again, and when
# it does checks new connections both ways with checksummed data
# (guest_vsock_check against host_peer).
#
#   run-restart.sh
#
# Modes (VUV_RESTART_MODES, default "reconnect term kill replug" for
# host:6.1 and "reconnect term replug" for other pairs, all four with
# VUV_RESTART_FULL=1), each checking
# what README.md ("Restarting the daemon") says, as measured:
#   reconnect  the chardev with reconnect=1 (7.2) / reconnect-ms=1000
#              (11.1): QEMU refuses to start the device ("Failed to set
#              msg fds"), so no boot.
#   term       SIGTERM + new daemon: the old daemon resets every guest
#              connection on its way out, so both old connections end
#              (EOF) within VUV_RESTART_BOUND s; QEMU stays up; it never
#              talks to the new daemon, so new connections time out.
#   kill       SIGKILL + new daemon: QEMU stays up; nothing tells the guest,
#              so both old connections hear nothing for VUV_RESTART_HANG s;
#              new connections time out.
#   replug     SIGKILL + new daemon, then the operator's way back without
#              restarting the VM (restart/replug.py over QMP): the device is
#              replaced by one on the new daemon; the guest resets its old
#              connections when the old device goes, and new connections
#              work both ways.
#
# Environment: VUV_BUILD (default <repo>/build/gcc; a static guest program,
# so no sanitizer build), VUV_DAEMON (default $VUV_BUILD/vhost-user-vsock),
# VUV_CACHE and VUV_LOGS (rig/lib.sh), VUV_PEER_VERBOSE=1 (echo consoles),
# VUV_RESTART_PEERS (QEMU:kernel pairs, default "host:6.1 sid:6.12": QEMU
# 7.2 with Debian 12's kernel, QEMU 11.1 from the sid chroot with Debian
# 13's; "host:6.1" alone is the short run), VUV_RESTART_BOUND (default 10),
# VUV_RESTART_HANG (default 10).
#
# Output: "PASS|FAIL: <check>[qemu-X,linux-Y,user] <mode> SIG<sig>: ...",
# INFO lines with what the guest saw, then "restart: N passed, M failed".
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
name=restart
bound=${VUV_RESTART_BOUND:-10}
hang=${VUV_RESTART_HANG:-10}
probe=6 # how long the guest waits for the device to answer again
replug_s=30 # what replugging the device may add to both
cid=3
passed=0 failed=0

check() { # check OK TEXT... - one verdict line
	local ok=$1
	shift
	if [ "$ok" = 1 ]; then
		echo "PASS: $*"
		passed=$((passed + 1))
	else
		echo "FAIL: $*"
		failed=$((failed + 1))
	fi
}
die() {
	echo "FAIL: $*"
	echo "$name: $passed passed, $((failed + 1)) failed"
	exit 1
}

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	die "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=${VUV_DAEMON:-$build/vhost-user-vsock}
rguest=$build/tests/peers/restart/restart_guest
vguest=$build/tests/peers/user/guest_vsock_check
helper=$build/tests/peers/user/host_peer
for f in "$daemon" "$rguest" "$vguest" "$helper"; do
	[ -x "$f" ] || die "not built: $f (ninja -C $build)"
done
for f in "$rguest" "$vguest"; do
	LC_ALL=C readelf -lW "$f" 2>/dev/null | grep -q 'program interpreter' &&
		die "$f is dynamically linked (sanitizer build?); use a plain build such as build/gcc"
done
for tool in qemu-system-x86_64 timeout awk readelf; do
	command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done

work=$(mktemp -d /tmp/vuv-rst.XXXXXX)
uds=$work/vm.vsock
sock=$work/vu.sock
mkdir -p "$VUV_LOGS"
helpers=()
cleanup() {
	local p
	for p in "${helpers[@]}"; do kill "$p" 2>/dev/null || true; done
	[ ! -s "$work/daemon.pid" ] || kill -KILL "$(cat "$work/daemon.pid")" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# ---- the daemon, started and restarted by the conductor -------------------

# start_daemon N - daemon number N on $sock, its pid in $work/daemon.pid.
start_daemon() {
	local n=$1
	"$daemon" --socket "$sock" --guest-cid "$cid" --uds-path "$uds" \
		>"$VUV_LOGS/$base.daemon$n.log" 2>&1 &
	echo $! >"$work/daemon.pid"
	rig_wait_listening "$sock" 10 "$!"
}

# stop_daemon - SIGTERM to the running daemon (SIGKILL after 5 s).
stop_daemon() {
	local p
	p=$(cat "$work/daemon.pid" 2>/dev/null) || return 0
	kill -TERM "$p" 2>/dev/null || true
	gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true
	rm -f "$work/daemon.pid"
}

# gone PID SECONDS - wait until PID has exited. Return: 1 if it has not.
gone() {

	for _ in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# wait_line PATTERN SECONDS - wait until the console has a line matching
# PATTERN (grep -E); print the stamp when it was first seen.
wait_line() {
	local end
	end=$(awk -v t="$(rig_now)" -v l="$2" 'BEGIN { printf "%.3f", t + l }')
	while ! grep -qE "$1" "$log" 2>/dev/null; do
		[ ! -e "$work/qemu-done" ] || return 1
		awk -v t="$(rig_now)" -v e="$end" 'BEGIN { exit !(t > e) }' && return 1
		sleep 0.1
	done
	rig_now
}

# restart ROUND SIGNAL N - stop the running daemon with SIGNAL and start
# daemon N on the same socket at once (an upgrade); write what happened
# to $work/facts.
restart() {
	local r=$1 sig=$2 n=$3 pid t_kill rc=0 q
	pid=$(cat "$work/daemon.pid")
	t_kill=$(rig_now)
	kill "-$sig" "$pid"
	gone "$pid" 10 || { echo "r$r.daemon=still-running" >>"$work/facts"; kill -KILL "$pid"; }
	wait "$pid" 2>/dev/null || rc=$?
	echo "r$r.old_status=$rc" >>"$work/facts"
	start_daemon "$n" || echo "r$r.daemon=no-start" >>"$work/facts"
	echo "r$r.t_kill=$t_kill" >>"$work/facts"
	sleep 3
	q=dead
	! kill -0 "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null || q=alive
	echo "r$r.qemu=$q" >>"$work/facts"
}

# conductor SIGNAL... - runs beside QEMU: starts daemon 0, then for each
# round waits for the guest's "ready", lets data flow a second, restarts
# the daemon with that round's signal and, in replug mode, gives the guest
# a new device on the new daemon (restart/replug.py).
conductor() {
	local r=0 sig t
	start_daemon 0 || { echo "daemon0=no-start" >>"$work/facts"; return 1; }
	: >"$work/started"
	for sig in "$@"; do
		t=$(wait_line "^restart: round $r ready" "$host_limit") || return 0
		echo "r$r.t_ready=$t" >>"$work/facts"
		sleep 1
		restart "$r" "$sig" $((r + 1))
		if [ "$mode" = replug ]; then
			"$rig_dir/../restart/replug.py" "$work/qmp.sock" vsock0 vu0 "$sock" --timeout 120 \
				>"$work/replug.out" 2>&1 && echo "r$r.replug=ok" >>"$work/facts"
		fi
		r=$((r + 1))
	done
}

# fact KEY - a value the conductor wrote, or empty.
fact() { sed -n "s/^$1=//p" "$work/facts" | tail -n 1; }
# guest_says ROUND WHAT - the rest of the guest's "restart: round R WHAT: " line.
guest_says() { sed -n "s/^restart: round $1 $2:\{0,1\} //p" "$log" | head -n 1; }
# after_signal ROUND GUEST_LINE - seconds from the signal to what the guest
# reported: it counts from its "ready", which the conductor saw (polling,
# console lag: ~0.1 s early at most) before waiting 1 s and signalling.
# "?" when a stamp is missing.
after_signal() {
	local ms t_ready t_kill
	# not anchored at the end: QEMU's stderr shares the console and may land
	# inside a guest line
	ms=$(sed -n 's/.* after \([0-9]*\) ms.*/\1/p' <<<"$2")
	t_ready=$(fact "r$1.t_ready") t_kill=$(fact "r$1.t_kill")
	if [ -z "$ms" ] || [ -z "$t_ready" ] || [ -z "$t_kill" ]; then
		echo '?'
		return
	fi
	awk -v ms="$ms" -v r="$t_ready" -v k="$t_kill" \
		'BEGIN { s = ms / 1000 - (k - r); printf "%.1f", s < 0 ? 0 : s }'
}

# ---- one QEMU run -----------------------------------------------------------

# chardev_opt - QEMU's chardev reconnect option: 7.2 knows only reconnect=
# (seconds), 11.1 only reconnect-ms= (each says "Invalid parameter" to the
# other; reconnect-ms= came with 9.2).
chardev_opt() {
	if [ "${RIG_QEMU_VERSION%%.*}" -ge 9 ]; then echo ",reconnect-ms=1000"; else echo ",reconnect=1"; fi
}

# run_mode MODE SIGNAL... - one boot; rounds = signals.
run_mode() {
	local mode=$1 rounds
	shift
	rounds=$#
	base=$base0-$mode
	log=$VUV_LOGS/$base.log
	rm -f "$work/facts" "$work/started" "$work/qemu.pid" "$work/qemu-done" "$log" "$VUV_LOGS/$base".*.log
	: >"$work/facts"
	local r p
	for r in $(seq 0 $((rounds - 1))); do
		for p in $((5100 + r)) $((5200 + r)); do
			"$helper" --uds "$uds" --ctrl-port "$p" --timeout "$((host_limit + 30))" \
				>"$VUV_LOGS/$base.host$p.log" 2>&1 &
			helpers+=($!)
			rig_wait_listening "${uds}_$p" 5 "$!" || die "host helper on port $p did not start"
		done
	done
	conductor "$@" &
	local cpid=$!
	for _ in $(seq 100); do [ -e "$work/started" ] || sleep 0.1; done
	[ -e "$work/started" ] || die "$mode: the daemon did not start: $(tail -n 2 "$VUV_LOGS/$base.daemon0.log")"
	local run
	# Replugging takes the guest's ACPI eject: give it time before "hung".
	local ghang=$hang gprobe=$probe qmp=()
	if [ "$mode" = replug ]; then
		ghang=$((hang + replug_s)) gprobe=$((probe + replug_s))
		qmp=(-qmp "unix:$work/qmp.sock,server=on,wait=off")
	fi
	run=$(rig_join_commas /bin/restart-guest.sh "$rounds" "$ghang" "$gprobe" "$cid" 262144) ||
		die "guest arguments"
	echo "$name$tag: $mode: QEMU $RIG_QEMU_VERSION, chardev without reconnect, restart with SIG$*; console in $log"
	# shellcheck disable=SC2054 # commas belong to QEMU option values
	rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" -m 256M -smp 1 -pidfile "$work/qemu.pid" "${qmp[@]}" \
		-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
		-chardev "socket,id=vu0,path=$sock" -device vhost-user-vsock-pci,chardev=vu0,id=vsock0 \
		-kernel "$VMLINUX" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 no_timer_check rig.mods=$mod_order rig.run=$run"
	# (no_timer_check: a loaded host can make TCG's early timer look broken.)
	[ ! -s "$work/replug.out" ] || cat "$work/replug.out"
	# Once QEMU is gone there is nothing left to restart under.
	: >"$work/qemu-done"
	wait "$cpid" 2>/dev/null || true
	for p in "${helpers[@]}"; do kill "$p" 2>/dev/null || true; done
	helpers=()
	stop_daemon
	judge "$mode" "$@"
	base=$base0
}

# ---- verdicts ---------------------------------------------------------------

# yes_if COMMAND... - 1 if COMMAND succeeds, else 0 (for check).
yes_if() { if "$@"; then echo 1; else echo 0; fi; }
# within SECONDS LIMIT - at most LIMIT ("?" never is).
within() { [ "$1" != '?' ] && awk -v s="$1" -v b="$2" 'BEGIN { exit !(s <= b) }'; }

# judge MODE SIGNAL... - the verdict lines of one run; README.md
# ("Restarting the daemon") says the same, as measured.
judge() {
	local mode=$1 r=0 sig busy idle dev t_kill q new st at sb si ok
	shift
	grep -q '^restart: guest done' "$log" || echo "note: the guest did not finish (see $log)"
	for sig in "$@"; do
		at="$tag $mode SIG$sig:"
		t_kill=$(fact "r$r.t_kill")
		busy=$(guest_says "$r" busy) idle=$(guest_says "$r" idle) dev=$(guest_says "$r" device)
		q=$(fact "r$r.qemu") st=$(fact "r$r.old_status")
		new=$(sed -n "s/^restart: round $r new exit=//p" "$log" | head -n 1)
		if [ -z "$t_kill" ]; then
			check 0 "restart$at the guest never got its connections busy ($(guest_says "$r" 'setup failed'))"
			r=$((r + 1))
			continue
		fi
		sb=$(after_signal "$r" "$busy") si=$(after_signal "$r" "$idle")
		echo "INFO:$at old busy connection: ${busy:-nothing reported} (seen ${sb} s after the signal);" \
			"old idle connection: ${idle:-nothing reported} (seen ${si} s after); device: ${dev:-not probed}"
		[ "$sig" != TERM ] || check "$(yes_if [ "$st" = 0 ])" \
			"daemon-exit$at the old daemon exited with status ${st:-?} on SIGTERM"
		check "$(yes_if [ "$q" = alive ])" "qemu-alive$at QEMU ${q:-?} 3 s after the new daemon started"
		case $mode in
		term) judge_ends "$at" SIGTERM "$busy" "$sb" "$idle" "$si" ;;
		replug) judge_ends "$at" "SIGKILL and the re-plug" "$busy" "$sb" "$idle" "$si" ;;
		kill)
			ok=0
			if [[ $busy == hung* && $idle == hung* ]]; then ok=1; fi
			check "$ok" \
				"old-connections-hang$at as README says, nothing can tell the guest: busy ${busy:-?}, idle ${idle:-?}"
			;;
		esac
		if [ "$mode" = replug ]; then
			check "$(yes_if [ "$(fact "r$r.replug")" = ok ])" \
				"replug$at device_del, chardev-remove/-add, device_add on the new daemon ($(grep -c '^replug: [on]' "$work/replug.out" 2>/dev/null || echo 0) of 2 steps)"
			ok=0
			if [ "$new" = 0 ] && [[ $dev == back* ]]; then ok=1; fi
			check "$ok" \
				"new-connections$at guest->host and host->guest, checksummed, on the new device: ${dev:-?}; guest_vsock_check exit ${new:-?}"
		else
			ok=0
			if [ "$new" = skipped ] && [[ $dev == "not back"* ]]; then ok=1; fi
			check "$ok" \
				"device-stays-dead$at as README says, QEMU never talks to the new daemon; new connections time out: ${dev:-?}"
		fi
		r=$((r + 1))
	done
	if grep -m 1 -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$VUV_LOGS/$base0-$mode".daemon*.log; then
		check 0 "sanitizer$tag $mode: a sanitizer report in a daemon log"
	fi
}

# ended GUEST_LINE - the connection was ended for the guest: end of stream
# (an RST on an established socket) or an error (the guest's driver resets
# every socket of a device that goes away: ENOTCONN; a send racing the
# removal has seen ENOMEM), not "hung" nor wrong bytes.
ended() { [ -n "$1" ] && [[ $1 != hung* && $1 != "wrong bytes"* ]]; }

# judge_ends AT WHAT BUSY SB IDLE SI - both old connections ended within
# the bound after WHAT.
judge_ends() {
	local ok=0 lim=$bound
	[ "$2" = SIGTERM ] || lim=$((bound + replug_s))
	if ended "$3" && within "$4" "$lim"; then ok=1; fi
	check "$ok" "busy-old-connection-ends$1 ${3:-?}, seen $4 s after $2 (bound $lim s)"
	ok=0
	if ended "$5" && within "$6" "$lim"; then ok=1; fi
	check "$ok" "idle-old-connection-ends$1 ${5:-?}, seen $6 s after $2 (bound $lim s)"
}

# refused - the chardev's reconnect option: QEMU refuses to start the
# device (it realizes it before the chardev has connected in the background).
refused() {
	local opt=$1 err ok
	base=$base0-reconnect
	log=$VUV_LOGS/$base.log
	rm -f "$work/qemu-done" "$log" "$VUV_LOGS/$base".*.log
	start_daemon 0 || die "the daemon did not start: $(tail -n 2 "$VUV_LOGS/$base.daemon0.log")"
	# shellcheck disable=SC2054 # commas belong to QEMU option values
	rig_boot "$log" 120 "${RIG_QEMU_BASE[@]}" -m 256M -smp 1 \
		-object memory-backend-memfd,id=mem,size=256M,share=on -machine memory-backend=mem \
		-chardev "socket,id=vu0,path=$sock$opt" -device vhost-user-vsock-pci,chardev=vu0 \
		-kernel "$VMLINUX" -initrd "$initrd" -append "console=ttyS0 quiet panic=-1 rig.run=/bin/true"
	stop_daemon
	err=$(grep -m 1 'vhost_backend_init failed\|Failed to set msg fds' "$log" || true)
	ok=0
	if [ "$RIG_QEMU_RC" != 0 ] && [ -n "$err" ] && ! grep -q "rig: init start" "$log"; then ok=1; fi
	check "$ok" \
		"reconnect-refused$tag chardev socket$opt: as README says, QEMU will not start the device: exit ${RIG_QEMU_RC}, '${err:-no such error}'"
	base=$base0
}

# ---- all pairs --------------------------------------------------------------

# shellcheck disable=SC2206 # words wanted
peers=(${VUV_RESTART_PEERS:-host:6.1 sid:6.12})
host_limit=300
timings=''
for pair in "${peers[@]}"; do
	t0=$(rig_now)
	export VUV_QEMU=${pair%%:*} VUV_KERNEL=${pair#*:}
	rig_peers || die "peers $pair (VUV_RESTART_PEERS)"
	tag="[qemu-$(cut -d. -f1,2 <<<"$RIG_QEMU_VERSION"),linux-$VUV_KERNEL,user]"
	base0=$name-$RIG_PEER_ID
	base=$base0
	tree=$("$rig_dir/fetch-kernel.sh" --vmlinux) || die "cannot fetch the $VUV_KERNEL guest kernel"
	rig_kernel_vars "$tree" || die "bad kernel tree $tree"
	initrd=$VUV_CACHE/initrd/$base0.cpio.gz
	mod_order=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$initrd" -m "$RIG_MODS_L2" \
		-f "$rguest:/bin/restart_guest" -f "$vguest:/bin/guest_vsock_check" \
		-f "$rig_dir/../restart/restart-guest.sh:/bin/restart-guest.sh") ||
		die "cannot build the initramfs"
	# CI's bound: the newer pair skips kill (the same as 7.2's, 10 s of waiting).
	all="reconnect term kill replug"
	[ "$pair" = host:6.1 ] || [ "${VUV_RESTART_FULL:-0}" = 1 ] || all="reconnect term replug"
	# shellcheck disable=SC2206 # words wanted
	modes=(${VUV_RESTART_MODES:-$all})
	for mode in "${modes[@]}"; do
		case $mode in
		reconnect) refused "$(chardev_opt)" ;;
		term) run_mode term TERM ;;
		kill) run_mode kill KILL ;;
		replug) run_mode replug KILL ;;
		*) die "VUV_RESTART_MODES: reconnect, term, kill or replug, not $mode" ;;
		esac
	done
	timings+=" $pair $(rig_elapsed "$t0")s;"
done
echo "$name: timings:$timings total $(rig_elapsed "$t_start")s; logs in $VUV_LOGS ($name-*.log)"
echo "$name: $passed passed, $failed failed"
[ "$failed" = 0 ]

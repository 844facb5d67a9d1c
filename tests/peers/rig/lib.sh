# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # sets variables for its callers
#
# Helpers shared by the real-peer rig scripts (sourced, never run). They
# know where the rig keeps things and how to name a kernel and its
# modules; they never download or install anything themselves.
#
# Layout (all outside the tracked tree; <repo>/build/ is git-ignored):
#   $VUV_CACHE                 default <repo>/build/peers-cache
#     kernel/<kver>/           an unpacked linux-image .deb + modules.dep
#       .rig-complete          "package version", written last
#     kernel/current           symlink to the 6.1 kernel in use
#     kernel/current-6.12      symlink to the 6.12 kernel in use
#     apt-trixie/              apt's own sources.list, lists, caches for trixie
#     linux-source-6.12/       the unpacked linux-source-6.12 .deb (vsock_test)
#     sid-chroot/root          Debian sid chroot with QEMU 11.1 (sid-chroot.sh)
#     initrd/<name>.cpio.gz    initramfs images (rebuilt every run, ~0.2 s)
#   $VUV_LOGS                  default <repo>/build/peers-logs
#
# Invariants: every function returns non-zero and says why on stderr
# rather than exiting, except rig_die, so callers decide what a failure
# means. Paths handed to the guest must not contain spaces or commas (the
# kernel command line carries them as comma-separated words).

rig_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rig_repo=$(cd "$rig_dir/../../.." && pwd)
: "${VUV_CACHE:=$rig_repo/build/peers-cache}"
: "${VUV_LOGS:=$rig_repo/build/peers-logs}"

rig_log() { printf 'rig: %s\n' "$*" >&2; }
rig_die() {
	printf 'rig: error: %s\n' "$*" >&2
	exit 1
}

# rig_now - seconds since the epoch with microseconds, without a fork.
rig_now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

# rig_elapsed START [END] - "12.3" seconds between two rig_now stamps.
rig_elapsed() {
	awk -v a="$1" -v b="${2:-$(rig_now)}" 'BEGIN { printf "%.1f", b - a }'
}

# rig_kernel_vars TREE - set KV, VMLINUZ and VMLINUX (may not exist) for an
# unpacked kernel tree. Return: 0, or 1 when TREE holds no single kernel.
rig_kernel_vars() {
	local tree=$1 mods
	mods=("$tree"/lib/modules/*/modules.dep)
	if [ ${#mods[@]} -ne 1 ] || [ ! -f "${mods[0]}" ]; then
		rig_log "no kernel with modules.dep in $tree (run fetch-kernel.sh)"
		return 1
	fi
	KV=$(basename "$(dirname "${mods[0]}")")
	VMLINUZ=$tree/boot/vmlinuz-$KV
	VMLINUX=$tree/boot/vmlinux-$KV
	[ -f "$VMLINUZ" ] || { rig_log "missing $VMLINUZ"; return 1; }
}

# rig_mod_order TREE MODULE... - print, one per line and without repeats,
# the .ko files that load MODULE... in dependency order (what modprobe
# would insmod). Modules built into the kernel print nothing.
# Return: 0, or 1 when a module is unknown to the tree.
rig_mod_order() {
	local tree=$1 m out
	shift
	for m in "$@"; do
		if ! out=$(modprobe -d "$tree" -S "$KV" --show-depends "$m" 2>&1); then
			rig_log "module $m: $out"
			return 1
		fi
		printf '%s\n' "$out" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++'
}

# rig_mod_names FILE... - the comma list of module file names (no .ko or
# .ko.xz) for rig.mods=, in the given order.
rig_mod_names() {
	local f names=()
	for f in "$@"; do
		f=$(basename "$f")
		f=${f%.xz}
		names+=("${f%.ko}")
	done
	local IFS=,
	printf '%s\n' "${names[*]}"
}

# rig_guest_word TEXT - check TEXT can travel as one comma-separated word on
# the kernel command line. Return: 0, or 1 with a message.
rig_guest_word() {
	case $1 in
	*[[:space:],\"]*)
		rig_log "'$1' contains a space, comma or quote; the guest cannot be given it"
		return 1
		;;
	esac
}

# rig_join_commas WORD... - WORD,WORD,... after checking each word.
rig_join_commas() {
	local w
	for w in "$@"; do rig_guest_word "$w" || return 1; done
	local IFS=,
	printf '%s\n' "$*"
}

# rig_apt_trixie - set RIG_APT_TRIXIE, the apt-get/apt-cache options that
# use Debian 13 (trixie) through files of the rig's own under
# $VUV_CACHE/apt-trixie (created here): the machine's apt sources, lists
# and caches are never read for packages nor written.
rig_apt_trixie() {
	local d=$VUV_CACHE/apt-trixie
	mkdir -p "$d/lists/partial" "$d/archives/partial" "$d/cache"
	[ -s "$d/sources.list" ] ||
		echo 'deb http://deb.debian.org/debian trixie main' >"$d/sources.list"
	RIG_APT_TRIXIE=(-o "Dir::Etc::sourcelist=$d/sources.list" -o Dir::Etc::sourceparts=-
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache"
		-o "Dir::Cache::Archives=$d/archives")
}

# The QEMU command rig_boot runs (before its arguments): the host's by
# default; rig_peers sets the sid chroot's for VUV_QEMU=sid.
RIG_QEMU=(qemu-system-x86_64)

# QEMU arguments every rig guest uses: TCG, serial console on stdout (for
# rig_boot), no monitor, no network, and exit instead of reboot. Add -m,
# -smp, -kernel, -initrd, -append and devices.
RIG_QEMU_BASE=(-accel tcg -display none -serial stdio -monitor none -no-reboot -nic none)
# The host's root, read-only over 9p, for init.sh's rig.root9p=1.
# shellcheck disable=SC2054 # one -virtfs value with commas
RIG_QEMU_9P=(-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap)

# rig_peers - the peers a run uses, from VUV_QEMU (host: the machine's
# qemu-system-x86_64, Debian 12's 7.2; sid: the sid chroot's, 11.1, built
# or checked here by sid-chroot.sh ensure) and VUV_KERNEL (6.1: Debian 12's
# guest kernel; 6.12: Debian 13's; fetch-kernel.sh reads it). Sets
# RIG_QEMU and RIG_QEMU_9P for that QEMU, RIG_QEMU_VERSION (e.g. 11.1.3),
# RIG_PEER_TAG (e.g. "[qemu-11.1,linux-6.12]", for verdict lines),
# RIG_PEER_ID (e.g. qemu-11.1-linux-6.12, for file names) and
# RIG_SID_ROOT (the chroot, empty for the host's QEMU).
# Return: 0, or 1 with a message (unknown value, no chroot, no QEMU).
rig_peers() {
	local v
	case ${VUV_KERNEL:=6.1} in
	6.1 | 6.12) ;;
	*) rig_log "VUV_KERNEL=$VUV_KERNEL: 6.1 or 6.12"; return 1 ;;
	esac
	export VUV_KERNEL
	case ${VUV_QEMU:=host} in
	host)
		RIG_QEMU=(qemu-system-x86_64)
		# shellcheck disable=SC2054 # one -virtfs value with commas
		RIG_QEMU_9P=(-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap)
		RIG_SID_ROOT=''
		;;
	sid)
		RIG_SID_ROOT=$("$rig_dir/sid-chroot.sh" ensure) || return 1
		RIG_QEMU=("$rig_dir/sid-chroot.sh" qemu)
		# Inside the chroot the host's / is at /host (sid-chroot.sh).
		# shellcheck disable=SC2054 # one -virtfs value with commas
		RIG_QEMU_9P=(-virtfs local,path=/host,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap)
		;;
	*) rig_log "VUV_QEMU=$VUV_QEMU: host or sid"; return 1 ;;
	esac
	export VUV_QEMU
	v=$("${RIG_QEMU[@]}" --version 2>/dev/null | sed -n '1s/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p')
	[ -n "$v" ] || { rig_log "${RIG_QEMU[*]}: no version"; return 1; }
	RIG_QEMU_VERSION=$v
	RIG_PEER_ID=qemu-$(cut -d. -f1,2 <<<"$v")-linux-$VUV_KERNEL
	RIG_PEER_TAG="[qemu-$(cut -d. -f1,2 <<<"$v"),linux-$VUV_KERNEL]"
}

# Module presets (modprobe names; make-initramfs.sh adds dependencies).
# virtio_pci comes first: 9pnet_virtio and the vsock driver probe its devices.
RIG_MODS_L1=virtio_pci,9pnet_virtio,9p,vhost_vsock
RIG_MODS_L2=virtio_pci,vmw_vsock_virtio_transport

# rig_boot LOG TIMEOUT QEMU_ARG... - run RIG_QEMU (qemu-system-x86_64) under timeout
# with the serial console on stdout, write it to LOG without \r, and stamp
# the console protocol lines of init.sh as they arrive. Sets RIG_T_LAUNCH,
# RIG_T_INIT (first "rig: init start"), RIG_T_RUN ("rig: run start"),
# RIG_T_EXIT ("run exit="), RIG_T_END (QEMU gone; rig_now stamps, empty
# when not seen) and RIG_QEMU_RC (124: timeout). QEMU's status is no
# verdict (a guest panic exits 0 too): read LOG, e.g. with rig_verdict.
# VUV_PEER_VERBOSE=1 echoes the console to stderr as it comes.
rig_boot() {
	local log=$1 limit=$2 line
	shift 2
	RIG_T_INIT='' RIG_T_RUN='' RIG_T_EXIT='' RIG_QEMU_RC=0
	RIG_T_LAUNCH=$(rig_now)
	: >"$log"
	# lastpipe keeps the reader in this shell so its stamps survive; errexit
	# would end the caller on a timeout before it could judge the run.
	local had_lastpipe=0 had_errexit=0
	shopt -q lastpipe && had_lastpipe=1
	[[ $- != *e* ]] || had_errexit=1
	shopt -s lastpipe
	set +e
	timeout -k 10 "$limit" "${RIG_QEMU[@]}" "$@" </dev/null 2>&1 |
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line%$'\r'}
			case $line in
			"rig: init start"*) [ -n "$RIG_T_INIT" ] || RIG_T_INIT=$(rig_now) ;;
			"rig: run start"*) RIG_T_RUN=$(rig_now) ;;
			"run exit="*) RIG_T_EXIT=$(rig_now) ;;
			esac
			printf '%s\n' "$line" >>"$log"
			[ "${VUV_PEER_VERBOSE:-0}" != 1 ] || printf '%s\n' "$line" >&2
		done
	RIG_QEMU_RC=${PIPESTATUS[0]}
	[ "$had_lastpipe" = 1 ] || shopt -u lastpipe
	[ "$had_errexit" = 0 ] || set -e
	RIG_T_END=$(rig_now)
	return 0
}

# rig_console LOG - the console without the files guest-run.sh dumped, so
# a marker inside a dumped log never counts as the test's own.
rig_console() {
	awk '/^----- begin .* -----$/ { skip = 1; next }
	     /^----- end .* -----$/ { skip = 0; next }
	     !skip' "$1"
}

# rig_split_dumps LOG PREFIX - write each file guest-run.sh dumped into LOG
# to PREFIX<path with / as _> (/tmp/daemon.log: PREFIXtmp_daemon.log), and
# print the names written.
rig_split_dumps() {
	awk -v pre="$2" '
		/^----- begin .* -----$/ {
			f = $3; sub(/^\//, "", f); gsub(/\//, "_", f)
			out = pre f; printf "" >out; print out; next }
		/^----- end .* -----$/ { if (out != "") close(out); out = ""; next }
		out != "" { print >out }' "$1"
}

# rig_verdict LOG LABEL - judge a run from the console protocol and the
# test program's markers: "PASS: ..."/"FAIL: ..." lines and a final
# "LABEL: N passed, M failed". Prints the markers, the summary and each
# reason for failing. Return: 0 when the run passed, else 1. Failing:
# no "run exit=" (guest died or timed out), a non-zero exit, any FAIL
# line, no summary, M > 0, N = 0 (a run that tested nothing), or a guest
# kernel panic/oops.
rig_verdict() {
	local log=$1 label=$2 console summary rc=0 n m npass nfail exit_line oops
	console=$(rig_console "$log")
	printf '%s\n' "$console" | grep -E '^(PASS|FAIL):' || true
	npass=$(printf '%s\n' "$console" | grep -c '^PASS:' || true)
	nfail=$(printf '%s\n' "$console" | grep -c '^FAIL:' || true)
	summary=$(printf '%s\n' "$console" | grep -E "^$label: [0-9]+ passed, [0-9]+ failed\$" | tail -n 1)
	exit_line=$(printf '%s\n' "$console" | grep -E '^run exit=[0-9]+$' | tail -n 1)
	if [ -z "$summary" ]; then
		echo "verdict: no '$label: N passed, M failed' line"
		rc=1
	else
		# With the peers named (rig_peers): "label[qemu-X,linux-Y]: ...".
		echo "$label${RIG_PEER_TAG:-}:${summary#"$label:"}"
		n=${summary#*: }
		n=${n%% passed*}
		m=${summary##*, }
		m=${m%% failed}
		[ "$m" -eq 0 ] || { echo "verdict: $m checks failed"; rc=1; }
		[ "$n" -gt 0 ] || { echo "verdict: nothing passed"; rc=1; }
		[ "$n" -eq "$npass" ] && [ "$m" -eq "$nfail" ] ||
			echo "note: summary says $n/$m, markers counted $npass/$nfail"
	fi
	[ "$nfail" -eq 0 ] || { echo "verdict: $nfail FAIL lines"; rc=1; }
	# A kernel crash in the guest fails the run even if the test passed:
	# it may be the vhost module reacting to what we fed it.
	oops=$(printf '%s\n' "$console" |
		grep -m 1 -E 'Kernel panic|Oops|BUG: (kernel|unable)|general protection fault' || true)
	[ -z "$oops" ] || { echo "verdict: guest kernel: $oops"; rc=1; }
	if [ -z "$exit_line" ]; then
		echo "verdict: no 'run exit=' line: the guest died or was cut off"
		rc=1
	elif [ "$exit_line" != "run exit=0" ]; then
		echo "verdict: in-guest $exit_line"
		rc=1
	fi
	return "$rc"
}

# rig_wait_listening PATH SECONDS [PID] - wait until a Unix socket listens
# at PATH (seen in /proc/net/unix with the accepting flag, so no probe
# connection disturbs the server). Gives up early when PID has exited.
# Return: 0 once listening; 1 on timeout or a dead PID (with a message).
rig_wait_listening() {
	local path=$1 limit=$2 pid=${3:-} end
	end=$(awk -v t="$(rig_now)" -v l="$limit" 'BEGIN { printf "%.3f", t + l }')
	while :; do
		awk -v p="$path" '$NF == p && $4 == "00010000" { found = 1 } END { exit !found }' \
			/proc/net/unix && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			rig_log "$path: the process meant to listen there ($pid) has exited"
			return 1
		fi
		if awk -v t="$(rig_now)" -v e="$end" 'BEGIN { exit !(t > e) }'; then
			rig_log "$path: nothing listening after ${limit}s"
			return 1
		fi
		sleep 0.05
	done
}

# rig_tmp_keeps PATH... - the value for rig.keep=: those PATHs (resolved,
# existing) under /tmp, without repeats, comma-joined; empty when none.
# The guest's tmpfs on /tmp would hide them otherwise.
# Return: 0, or 1 when a path cannot travel on the command line.
rig_tmp_keeps() {
	local p r keep=()
	for p in "$@"; do
		r=$(cd "$p" 2>/dev/null && pwd -P) || r=$(cd "$(dirname "$p")" 2>/dev/null && pwd -P) || continue
		case $r in
		/tmp/*) [[ " ${keep[*]} " == *" ${r%/} "* ]] || keep+=("${r%/}") ;;
		esac
	done
	[ ${#keep[@]} -eq 0 ] || rig_join_commas "${keep[@]}"
}

# rig_judge LOG LABEL KNOB - rig_verdict, plus the fate of QEMU in the last
# rig_boot: killed by its time limit fails (KNOB names the variable that
# sets the limit, for the message); any other status is only noted (a
# guest panic exits 0 too, so the status is never a verdict).
# Return: 0 when the run passed, else 1.
rig_judge() {
	local rc=0
	rig_verdict "$1" "$2" || rc=1
	case $RIG_QEMU_RC in
	0) ;;
	124 | 137)
		echo "verdict: QEMU killed by its time limit ($3)"
		rc=1
		;;
	*) echo "note: QEMU exited with status $RIG_QEMU_RC" ;;
	esac
	return "$rc"
}

# ------------------------------------------------------------------------
# Helpers for in-guest scripts that judge a daemon (nested/l1.sh, vvu/device.sh)

# wait_gone PID SECS - wait for a process that is not our child to end.
wait_gone() {
	local end=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

# reap PID - wait for our background child and set rc to its exit status
# (not in a command substitution: a subshell cannot wait for our children).
reap() {
	rc=0
	wait "$1" || rc=$?
}

# daemon_sample - "TICKS SWITCHES": utime+stime (/proc/PID/task/TID/stat
# fields 14 and 15, after the comm in parentheses) and voluntary +
# involuntary context switches, summed over the daemon's own threads.
# Since Linux 6.4 the kernel's vhost worker is a thread of the process that
# called VHOST_SET_OWNER (a vhost_task, comm "vhost-PID"): it is the data
# path itself, so it is left out (with 6.12 it did ~750 switches and ~0.7 s
# per 16 MiB each way; 6.1's worker is a kernel thread, outside the process).
# Uses the caller's $dpid.
# shellcheck disable=SC2154 # dpid is the caller's
daemon_sample() {
	local t stat comm k v cs=0 ticks=0 fields
	[ -d "/proc/$dpid/task" ] || return 1
	for t in /proc/"$dpid"/task/*; do
		comm=$(cat "$t/comm" 2>/dev/null) || continue
		# Not vhost-*: the daemon's own comm is "vhost-user-vsoc".
		[[ ! $comm =~ ^vhost-[0-9]+$ ]] || continue
		stat=$(cat "$t/stat" 2>/dev/null) || continue
		read -r -a fields <<<"${stat##*) }"
		ticks=$((ticks + fields[11] + fields[12]))
		while read -r k v; do
			case $k in
			voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) cs=$((cs + v)) ;;
			esac
		done <"$t/status"
	done
	echo "$ticks $cs"
}

# rig_guest_check NAME BASE LABEL KIND MODS WORDS -- CMD... - the whole
# run of a rig whose test is one program in a guest chrooted into the 9p
# host root (run-kernel-engine.sh, run-forward.sh): fetch the kernel (KIND
# vmlinux or bzimage), build the initramfs BASE.cpio.gz with the modules
# MODS, boot it under RIG_QEMU with WORDS added to the kernel command line,
# run CMD there through guest-run.sh, and judge the console with
# rig_judge on LABEL. NAME (with RIG_PEER_TAG) starts every line printed;
# logs are $VUV_LOGS/BASE.*. Reads host_limit, guest_limit (s), t_start
# (rig_now) and build (kept visible in the guest when under /tmp).
# Return: 0 after "NAME: PASS", 1 after "NAME: FAIL".
# A guest whose own kernel wedged under TCG (a CPU stuck with its timer
# silent: soft lockup, RCU stall; or the boot-time timer check failing on
# a loaded machine) says nothing about the daemon: such a run is said so
# and booted once more. Seen once in 20+ kernel-engine runs here, at load 5.
rig_guest_check() {
	local log=$VUV_LOGS/$2.log
	rig_guest_check_once "$@" && return 0
	grep -qE 'soft lockup - CPU|rcu_preempt self-detected stall|IO-APIC \+ timer doesn.t work' \
		"$log" 2>/dev/null || return 1
	echo "$1${RIG_PEER_TAG:-}: NOTE: the guest's kernel stalled under TCG (console: $log); booting once more"
	cp "$log" "$log.stalled" 2>/dev/null || true
	rig_guest_check_once "$@"
}

rig_guest_check_once() {
	local name=$1 base=$2 label=$3 kind=$4 mods=$5 words=$6 tag=${RIG_PEER_TAG:-}
	local t0 t_kernel t_initrd tree kernel initrd mod_order run append keeps log dumps boot=- run_s=-
	shift 7
	t0=$(rig_now)
	local fetch_args=(--vmlinux)
	[ "$kind" = vmlinux ] || fetch_args=()
	tree=$("$rig_dir/fetch-kernel.sh" "${fetch_args[@]}") && rig_kernel_vars "$tree" ||
		{ echo "FAIL: cannot fetch the guest kernel"; echo "$name$tag: FAIL"; return 1; }
	kernel=$VMLINUX
	[ "$kind" = vmlinux ] || kernel=$VMLINUZ
	t_kernel=$(rig_elapsed "$t0")
	t0=$(rig_now)
	initrd=$VUV_CACHE/initrd/$base.cpio.gz
	mod_order=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$initrd" -m "$mods") ||
		{ echo "FAIL: cannot build the initramfs"; echo "$name$tag: FAIL"; return 1; }
	t_initrd=$(rig_elapsed "$t0")
	# The guest mounts its own tmpfs over /tmp: keep our trees visible.
	run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout "$guest_limit" --dump /tmp -- "$@") &&
		keeps=$(rig_tmp_keeps "$rig_repo" "$build") ||
		{ echo "FAIL: a path cannot be passed to the guest"; echo "$name$tag: FAIL"; return 1; }
	append="console=ttyS0 quiet panic=-1 no_timer_check${words:+ $words} rig.root9p=1 rig.mods=$mod_order rig.run=$run"
	[ -z "$keeps" ] || append+=" rig.keep=$keeps"

	mkdir -p "$VUV_LOGS"
	log=$VUV_LOGS/$base.log
	rm -f "$VUV_LOGS/$base".dump.*
	echo "$name$tag: ${RIG_QEMU_VERSION:+QEMU $RIG_QEMU_VERSION }booting $(basename "$kernel")" \
		"under TCG (limit ${host_limit}s), console in $log"
	rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${RIG_QEMU_9P[@]}" -m 1G -smp 2 \
		-kernel "$kernel" -initrd "$initrd" -append "$append"
	local verdict=0
	rig_judge "$log" "$label" "VUV_PEER_TIMEOUT=$host_limit" || verdict=1
	dumps=$(rig_split_dumps "$log" "$VUV_LOGS/$base.dump.")

	[ -z "$RIG_T_RUN" ] || boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
	[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
	echo "$name$tag: timings: kernel fetch ${t_kernel}s, initramfs ${t_initrd}s, boot ${boot}s," \
		"run ${run_s}s, QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s, total $(rig_elapsed "$t_start")s"
	echo "$name$tag: console log $log"
	[ -z "$dumps" ] || echo "$name$tag: guest files: ${dumps//$'\n'/ }"
	if [ "$verdict" != 0 ]; then
		echo "--- last console lines (without dumped files):"
		rig_console "$log" | tail -n 25
		echo "$name$tag: FAIL"
		return 1
	fi
	echo "$name$tag: PASS"
}

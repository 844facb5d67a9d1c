#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Self-test of the real-peer rig (tests/peers/rig/): the code that turns a
# guest's console into a verdict must itself fail when it should. Feeds
# rig_verdict hand-made consoles (markers hidden in dumped files, a missing
# or lying summary, a panic, a cut-off guest), runs guest-run.sh on the
# host, checks the comma encoding refuses what the guest cannot receive,
# and boots one L2-style initramfs (no 9p) to check init's module loading
# and exit-status report end to end (~3 s under TCG; VUV_RIG_NO_BOOT=1
# skips it). Prints "rig-selftest: N passed, M failed"; exit 1 on any
# failure.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

passed=0 failed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ok() {
	passed=$((passed + 1))
	echo "PASS: $1"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL: $1${2:+: $2}"
}
# expect NAME WANT(0|1) CMD...: the command's success must match WANT.
expect() {
	local name=$1 want=$2 got=0
	shift 2
	"$@" >"$work/out" 2>&1 || got=1
	if [ "$got" = "$want" ]; then ok "$name"; else bad "$name" "$(tail -n 3 "$work/out" | tr '\n' ' ')"; fi
}

# A console in the form init.sh and guest-run.sh produce; $1 is the body.
console() {
	printf 'rig: init start uptime=1.0\nrig: run start uptime=2.0\n%s\n' "$1" >"$work/console.log"
}
verdict() { rig_verdict "$work/console.log" t; }

console $'PASS: a\nPASS: b\nt: 2 passed, 0 failed\nrun exit=0'
expect "clean pass is a pass" 0 verdict
console $'PASS: a\nFAIL: b: x\nt: 1 passed, 1 failed\nrun exit=1'
expect "a failed check fails" 1 verdict
console $'PASS: a\nFAIL: b: x\nt: 2 passed, 0 failed\nrun exit=0'
expect "a FAIL line beats a lying summary" 1 verdict
console $'PASS: a\nrun exit=0'
expect "no summary fails" 1 verdict
console $'t: 0 passed, 0 failed\nrun exit=0'
expect "nothing tested fails" 1 verdict
console $'PASS: a\nt: 1 passed, 0 failed'
expect "no run exit (guest cut off) fails" 1 verdict
console $'PASS: a\nt: 1 passed, 0 failed\nrun exit=124'
expect "in-guest timeout fails" 1 verdict
console $'PASS: a\nt: 1 passed, 0 failed\n[ 3.0] Kernel panic - not syncing: x\nrun exit=0'
expect "guest kernel panic fails" 1 verdict
console $'PASS: a\nx t: 1 passed, 0 failed\nrun exit=0'
expect "summary must start its line" 1 verdict
console $'----- begin /tmp/d.log -----\nPASS: a\nt: 1 passed, 0 failed\n----- end /tmp/d.log -----\nrun exit=0'
expect "markers inside a dumped file do not count" 1 verdict
console $'PASS: a\nt: 1 passed, 0 failed\n----- begin /tmp/d.log -----\nFAIL: not ours\n----- end /tmp/d.log -----\nrun exit=0'
expect "a FAIL inside a dumped file does not count" 0 verdict

console $'----- begin /tmp/d.log -----\nline 1\n----- end /tmp/d.log -----\n----- begin /tmp/sub/e.log -----\nline 2\n----- end /tmp/sub/e.log -----'
split_ok() {
	rig_split_dumps "$work/console.log" "$work/dump." >/dev/null &&
		[ "$(cat "$work/dump.tmp_d.log")" = "line 1" ] &&
		[ "$(cat "$work/dump.tmp_sub_e.log")" = "line 2" ]
}
expect "dumped files are split out" 0 split_ok

expect "comma in a guest argument is refused" 1 rig_join_commas /bin/x a,b
expect "space in a guest argument is refused" 1 rig_join_commas /bin/x 'a b'
expect "plain guest arguments pass" 0 rig_join_commas /bin/x --opt /tmp/y

# guest-run.sh on the host: status, in-guest timeout, dumps after the run.
gr=$rig_dir/guest-run.sh
expect "guest-run keeps the command's status" 1 "$gr" -- sh -c 'exit 3'
expect "guest-run enforces its timeout" 1 "$gr" --timeout 1 -- sleep 20
dump_ok() {
	mkdir -p "$work/g/sub"
	"$gr" --dump "$work/g" -- sh -c "printf 'no newline' >$work/g/sub/a.log; echo x >$work/g/b.txt" \
		>"$work/gr.out" &&
		grep -qx "no newline" "$work/gr.out" &&
		grep -qx -- "----- end $work/g/sub/a.log -----" "$work/gr.out" &&
		! grep -q b.txt "$work/gr.out"
}
expect "guest-run dumps *.log written by the command" 0 dump_ok

# One real boot: L2-style image (virtio-pci + guest vsock driver, no 9p).
boot_ok() {
	local tree guest log=$work/boot.log
	tree=$("$rig_dir/fetch-kernel.sh" --vmlinux 2>"$work/fetch.err") || return 1
	rig_kernel_vars "$tree" || return 1
	guest=$work/guest.sh
	cat >"$guest" <<-'EOF'
		#!/bin/sh
		[ -e /sys/bus/virtio/drivers/vmw_vsock_virtio_transport ] && echo "guest: driver registered"
		exit 3
	EOF
	"$rig_dir/make-initramfs.sh" -k "$tree" -o "$work/l2.cpio.gz" -m "$RIG_MODS_L2" \
		-f "$guest:/bin/guest" >/dev/null 2>&1 || return 1
	rig_boot "$log" 90 "${RIG_QEMU_BASE[@]}" -m 256M -smp 1 -kernel "$VMLINUX" \
		-initrd "$work/l2.cpio.gz" -append "console=ttyS0 quiet panic=-1 no_timer_check rig.run=/bin/guest"
	echo "boot: QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s"
	if ! grep -qx "guest: driver registered" "$log" || ! grep -qx "run exit=3" "$log"; then
		cat "$log"
		return 1
	fi
}
if [ "${VUV_RIG_NO_BOOT:-0}" != 1 ]; then
	expect "L2 initramfs boots, loads the vsock driver, reports exit 3" 0 boot_ok
	cat "$work/out"
fi

echo "rig-selftest: $passed passed, $failed failed"
[ "$failed" = 0 ]

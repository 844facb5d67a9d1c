#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The newer peers: runs run-user-engine.sh, run-kernel-engine.sh and
# run-nested.sh again with other QEMU and guest kernel versions than the
# default Debian 12 pair (QEMU 7.2, Linux 6.1), which scripts/test.sh
# already runs through those scripts themselves, so this runner never
# repeats it. Combinations (VUV_QEMU,VUV_KERNEL; rig/lib.sh rig_peers):
#
#   sid,6.12   QEMU 11.1 + Linux 6.12   every test, every run
#   host,6.12  QEMU 7.2  + Linux 6.12   user-engine, kernel-engine every run;
#   sid,6.1    QEMU 11.1 + Linux 6.1    nested: one of the two per run when
#                                       rotating (by the UTC day of the
#                                       year: even host,6.12, odd sid,6.1)
#
# and run-nested-forward.sh (vsock_test through the forwarding userspace
# engine, which scripts/test.sh runs with 7.2 + 6.1) with Linux 6.12 in the
# rotate and full modes (rotate: QEMU 7.2 on even days, 11.1 on odd ones).
#
#   run-peers-matrix.sh
#
# The nested tests are the only costly ones (minutes per combination under
# TCG-in-TCG), so CI's default run adds one of the two mixed nested pairs
# a day (VUV_MATRIX_ROTATE, default 1; 0 leaves them to VUV_MATRIX=rotate
# or full). Measured on a quiet machine (load 1-2), 2026-12-07: nested
# QEMU 7.2 + Linux 6.12 436 s, QEMU 11.1 + Linux 6.1 332 s, each 12
# passed; with 3-4 nested rigs sharing the 2 cores (load 12-22) one mixed
# run took 20-40 minutes. The 6.12 forwarding run took 1051-1892 s (18-32
# min) at load 8-16, hence rotate and full only. Which combinations ran,
# and why, is printed first.
#
# Environment: VUV_MATRIX unset (what CI runs: the quick tests in all
# three newer combinations, nested with sid,6.12, and the rotated mixed
# nested pair when VUV_MATRIX_ROTATE is not 0), rotate (the default plus
# the rotated nested pair and the 6.12 forwarding run), full (every
# combination of every test, forwarding with 6.12 on both QEMUs), newest
# (only sid,6.12), quick (no nested runs); VUV_MATRIX_ROTATE (0 or 1, the
# default mode only); VUV_MATRIX_DAY (a day number instead of today's, to
# choose the rotation); VUV_MATRIX_LIST=1 (print the choice, run
# nothing); everything the scripts read (VUV_BUILD,
# VUV_CACHE, ...).
#
# Output: each script's own output, then one verdict line per combination
# ("user-engine[qemu-11.1,linux-6.12]: 15 passed, 0 failed", a FAIL line
# when a run gave no summary) with its wall time, and last
# "peers-matrix: N passed, M failed" over all cases (a run that failed
# without a summary counts as one failed case). Exit 0 only when every
# combination passed.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

[ $# -eq 0 ] || rig_die "usage: run-peers-matrix.sh (no arguments; see the header)"
here=$(cd "$(dirname "$0")" && pwd)
day=${VUV_MATRIX_DAY:-$(date -u +%j)}
day=$((10#$day))

# CI's default: 1 runs the day's mixed nested pair in every default run
# (cost: the header), 0 leaves them to VUV_MATRIX=rotate|full.
rotate_default=${VUV_MATRIX_ROTATE:-1}
if [ $((day % 2)) -eq 0 ]; then
	rot="host 6.12" fwd_q=host parity=even
else
	rot="sid 6.1" fwd_q=sid parity=odd
fi
quick=("user-engine sid 6.12" "user-engine host 6.12" "user-engine sid 6.1"
	"kernel-engine sid 6.12" "kernel-engine host 6.12" "kernel-engine sid 6.1")
runs=()
case ${VUV_MATRIX:-default} in
full)
	for t in user-engine kernel-engine nested; do
		runs+=("$t sid 6.12" "$t host 6.12" "$t sid 6.1")
	done
	runs+=("nested-forward sid 6.12" "nested-forward host 6.12")
	why="VUV_MATRIX=full: every combination, and forwarding with Linux 6.12"
	;;
newest)
	runs=("user-engine sid 6.12" "kernel-engine sid 6.12" "nested sid 6.12")
	why="VUV_MATRIX=newest: QEMU 11.1 + Linux 6.12 only"
	;;
quick)
	runs=("${quick[@]}")
	why="VUV_MATRIX=quick: no nested runs"
	;;
rotate)
	runs=("${quick[@]}" "nested sid 6.12" "nested $rot" "nested-forward $fwd_q 6.12")
	why="VUV_MATRIX=rotate: UTC day $day is $parity, so nested runs with ${rot/ /,} besides sid,6.12, and forwarding with $fwd_q,6.12 (VUV_MATRIX=full runs all)"
	;;
default)
	runs=("${quick[@]}" "nested sid 6.12")
	if [ "$rotate_default" != 0 ]; then
		runs+=("nested $rot")
		why="default: the quick tests in every newer combination, nested with QEMU 11.1 + Linux 6.12 and, UTC day $day being $parity, with ${rot/ /,} (VUV_MATRIX_ROTATE=0: without)"
	else
		why="default: the quick tests in every newer combination, nested only with QEMU 11.1 + Linux 6.12 (VUV_MATRIX_ROTATE=0; the mixed nested ones: VUV_MATRIX_ROTATE=1, the default, VUV_MATRIX=rotate or full)"
	fi
	;;
*)
	rig_die "VUV_MATRIX=${VUV_MATRIX}: one of default, rotate, quick, newest, full"
	;;
esac
echo "peers-matrix: $why"
list=''
for r in "${runs[@]}"; do
	read -r t q k <<<"$r"
	list+=" ${t}[$q,$k]"
done
echo "peers-matrix: will run:$list"
[ "${VUV_MATRIX_LIST:-0}" = 0 ] || exit 0

passed=0 failed=0 verdicts=() rc=0
for r in "${runs[@]}"; do
	read -r t q k <<<"$r"
	echo "=== $t with VUV_QEMU=$q VUV_KERNEL=$k"
	out=$(mktemp)
	t0=$(rig_now)
	set +e
	VUV_QEMU=$q VUV_KERNEL=$k bash "$here/run-$t.sh" 2>&1 | tee "$out"
	src=${PIPESTATUS[0]}
	set -e
	wall=$(rig_elapsed "$t0")
	# The script's verdict lines name the peers: "t[qemu-X,linux-Y]: N passed, M failed".
	lines=$(grep -E "^$t\[qemu-[0-9.]+,linux-$k\]: [0-9]+ passed, [0-9]+ failed\$" "$out" || true)
	rm -f "$out"
	if [ -z "$lines" ]; then
		verdicts+=("FAIL: ${t}[$q,$k]: no verdict line (exit $src), ${wall}s")
		failed=$((failed + 1))
	else
		while IFS= read -r l; do
			n=${l#*]: }
			n=${n%% passed*}
			m=${l##*, }
			m=${m%% failed}
			passed=$((passed + n))
			failed=$((failed + m))
			verdicts+=("$l  (${wall}s)")
		done <<<"$lines"
		if [ "$src" != 0 ]; then
			# Passing cases but a failed run (e.g. the daemon's exit): count it.
			verdicts+=("FAIL: ${t}[$q,$k]: exit status $src (see above)")
			failed=$((failed + 1))
		fi
	fi
	[ "$src" = 0 ] || rc=1
done

echo "=== peers-matrix verdicts"
printf '%s\n' "${verdicts[@]}"
echo "peers-matrix: $passed passed, $failed failed"
exit "$rc"

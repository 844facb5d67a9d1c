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
#   sid,6.1    QEMU 11.1 + Linux 6.1    nested only with VUV_MATRIX=rotate
#                                       (one of the two per run, by the UTC
#                                       day of the year: even host,6.12,
#                                       odd sid,6.1) or full
#
#   run-peers-matrix.sh
#
# The nested test is the only costly one (minutes per combination under
# TCG-in-TCG), so CI runs one: the whole suite stays well under an hour
# (timings in tests/peers/README.md). Which combinations ran, and why, is
# printed first.
#
# Environment: VUV_MATRIX unset (what CI runs: the quick tests in all
# three newer combinations, nested with sid,6.12 only), rotate (adds the
# rotated nested one), full (every combination of every test), newest
# (only sid,6.12), quick (no nested runs);
# VUV_MATRIX_DAY (a day number instead of today's, to choose the
# rotation); everything the three scripts read (VUV_BUILD, VUV_CACHE, ...).
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

runs=()
case ${VUV_MATRIX:-default} in
full)
	for t in user-engine kernel-engine nested; do
		runs+=("$t sid 6.12" "$t host 6.12" "$t sid 6.1")
	done
	why="VUV_MATRIX=full: every combination"
	;;
newest)
	runs=("user-engine sid 6.12" "kernel-engine sid 6.12" "nested sid 6.12")
	why="VUV_MATRIX=newest: QEMU 11.1 + Linux 6.12 only"
	;;
quick)
	for t in user-engine kernel-engine; do
		runs+=("$t sid 6.12" "$t host 6.12" "$t sid 6.1")
	done
	why="VUV_MATRIX=quick: no nested runs"
	;;
rotate)
	if [ $((day % 2)) -eq 0 ]; then rot="host 6.12"; else rot="sid 6.1"; fi
	runs=("user-engine sid 6.12" "user-engine host 6.12" "user-engine sid 6.1"
		"kernel-engine sid 6.12" "kernel-engine host 6.12" "kernel-engine sid 6.1"
		"nested sid 6.12" "nested $rot")
	why="VUV_MATRIX=rotate: UTC day $day is $([ $((day % 2)) -eq 0 ] && echo even || echo odd), so nested runs with ${rot/ /,} besides sid,6.12 (VUV_MATRIX=full runs all)"
	;;
default)
	runs=("user-engine sid 6.12" "user-engine host 6.12" "user-engine sid 6.1"
		"kernel-engine sid 6.12" "kernel-engine host 6.12" "kernel-engine sid 6.1"
		"nested sid 6.12")
	why="default: the quick tests in every newer combination, nested only with QEMU 11.1 + Linux 6.12 (the mixed nested ones: VUV_MATRIX=rotate or full)"
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

#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. install what the tests need (Debian packages only);
#   2. build with gcc and with clang, warnings as errors, and run the
#      whole Meson suite on the gcc build;
#   3. run it again built by clang under AddressSanitizer +
#      UndefinedBehaviorSanitizer and under ThreadSanitizer, the integration
#      tests once more with the daemon under valgrind, then each fuzz
#      target for a bounded time under libFuzzer;
#   4. run the real-peer tests (QEMU/TCG guests with Debian's kernel).
# Set VUV_SKIP_PEERS=1 to skip step 4 while iterating.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/install-deps.sh

build() { # dir, compiler, extra meson args...
	local dir=$1 cc=$2
	shift 2
	if [ ! -d "$dir" ]; then
		CC=$cc meson setup "$dir" -Dwerror=true "$@"
	else
		meson configure "$dir" -Dwerror=true "$@" >/dev/null
	fi
	ninja -C "$dir"
}

echo "=== build: gcc"
build build/gcc gcc
echo "=== build: clang"
build build/clang clang
echo "=== tests: gcc"
meson test -C build/gcc --print-errorlogs --num-processes 2
echo "=== tests: clang + AddressSanitizer + UndefinedBehaviorSanitizer"
build build/asan clang -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build/asan --print-errorlogs --num-processes 2

# ThreadSanitizer: the userspace engine runs a thread per VM, hands packets
# between VMs' threads (sibling routing) and answers control requests with
# snapshots taken by each VM's thread; the integration tests and the
# benchmark's smoke run exercise all three with the daemon built for TSan.
# A race report ends the daemon (halt_on_error), which fails its test.
echo "=== tests: clang + ThreadSanitizer"
build build/tsan clang -Db_sanitize=thread -Db_lundef=false
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	meson test -C build/tsan --print-errorlogs --num-processes 2

# The integration suite once more with the daemon under valgrind memcheck:
# the harness runs it through VUV_DAEMON_WRAPPER, with --sandbox none
# (valgrind cannot run a seccomp filter). Any memory error, and any leak
# definite, indirect or possible, makes the daemon exit 1, which fails the
# test (each daemon's report is also kept in $vgdir and checked below). No
# suppression file: none is needed, the runs are clean. Loop counts are
# smaller (the daemon runs ~20x slower); user_stream's timing assertions
# (CPU idle within 500 ms, a ring drained within 5 s) cannot hold at that
# speed, so only its valgrind reports count.
echo "=== integration tests: the daemon under valgrind"
vgdir=$(mktemp -d)
export VUV_DAEMON_WRAPPER="$(command -v valgrind) --error-exitcode=1 --leak-check=full \
--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
--log-file=$vgdir/vg.%p"
export VUV_DAEMON_ARGS="--sandbox none" VUV_HOSTILE_REPEAT=2000 VUV_ENDURANCE_CYCLES=100 \
	VUV_ENDURANCE_CONNS=1000
meson test -C build/gcc --print-errorlogs --num-processes 1 --timeout-multiplier 5 \
	user_vms hostile_frontend hostile_guest bounds access endurance vvu_faults
meson test -C build/gcc --num-processes 1 --timeout-multiplier 5 user_stream user_stream_vvu >/dev/null ||
	echo "(user_stream: timing assertions failed under valgrind, as expected)"
unset VUV_DAEMON_WRAPPER VUV_DAEMON_ARGS VUV_HOSTILE_REPEAT VUV_ENDURANCE_CYCLES VUV_ENDURANCE_CONNS
vgruns=$(find "$vgdir" -name 'vg.*' | wc -l)
vgbad=$(grep -L "ERROR SUMMARY: 0 errors" "$vgdir"/vg.* 2>/dev/null || true)
if [ "$vgruns" -eq 0 ] || [ -n "$vgbad" ]; then
	echo "valgrind: $vgruns daemon runs; errors (or no summary) in: ${vgbad:-none ran}"
	exit 1
fi
echo "valgrind: $vgruns daemon runs, 0 errors"
rm -rf "$vgdir"

# Fuzz smoke runs: every target under libFuzzer + ASan + UBSan for
# VUV_FUZZ_SECONDS (25) each, from its committed corpus (README.md,
# "Fuzzing"). The corpus replays already ran as tests in every build above.
echo "=== fuzz: clang + libFuzzer smoke runs"
build build/fuzz clang -Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false
FUZZ_SECONDS=${VUV_FUZZ_SECONDS:-25} fuzz/run-fuzz.sh build/fuzz

if [ "${VUV_SKIP_PEERS:-0}" != 1 ]; then
	echo "=== real peers"
	for t in tests/peers/run-*.sh; do
		[ -e "$t" ] || continue
		echo "--- $t"
		VUV_BUILD="$top/build/gcc" bash "$t"
	done
fi
echo "=== all tests passed"

#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. install what the tests need (Debian packages only);
#   2. build with gcc and with clang, warnings as errors, and run the unit
#      and integration tests with both;
#   3. run them again under AddressSanitizer + UndefinedBehaviorSanitizer;
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

if [ "${VUV_SKIP_PEERS:-0}" != 1 ]; then
	echo "=== real peers"
	for t in tests/peers/run-*.sh; do
		[ -e "$t" ] || continue
		echo "--- $t"
		VUV_BUILD="$top/build/gcc" bash "$t"
	done
fi
echo "=== all tests passed"

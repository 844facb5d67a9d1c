# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Sourced by the scripts that drive and judge a test inside a guest
# (nested/l1.sh, vvu/device.sh): one "PASS: CASE (detail)" or "FAIL: CASE:
# reason" line per case, counted for the script's summary line, "INFO:"
# lines, and the background processes to stop when the script exits.
#
# verdict_prefix (default empty) goes before every case name, e.g.
# "user-engine/" while device.sh judges the userspace engine; pids holds
# the processes cleanup sends SIGTERM on exit.

passed=0 failed=0 verdict_prefix=''
pids=()

pass() {
	passed=$((passed + 1))
	echo "PASS: $verdict_prefix$1${2:+ ($2)}"
}

fail() {
	failed=$((failed + 1))
	echo "FAIL: $verdict_prefix$1: $2"
}

info() { echo "INFO: $*"; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
}
trap cleanup EXIT

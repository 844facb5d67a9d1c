#!/usr/bin/env bash
# Run the libFuzzer targets of a build made with -Dfuzz=enabled (clang).
#
#   fuzz/run-fuzz.sh BUILD_DIR [TARGET...]          smoke run: FUZZ_SECONDS each (25)
#   fuzz/run-fuzz.sh --long BUILD_DIR [TARGET...]   long run: FUZZ_RUNS each (10000000)
#
# Each target starts from a copy of its committed corpus (fuzz/corpus/<t>/)
# in a work directory (FUZZ_WORK, default a fresh temporary one), so runs
# never write into the source tree; what they find stays in
# $FUZZ_WORK/<t>/ and crashes in $FUZZ_WORK/artifacts/<t>/. One process
# per target, in turn, fuzzing in-process (no -jobs/-workers, which would
# fork helpers and write fuzz-N.log into the current directory): the
# machines this runs on are shared.
# stderr of the target is closed (-close_fd_mask=2) so the daemon's log lines
# for every refused input do not drown the run; libFuzzer's and the
# sanitizers' reports still come through.
#
# Prints one line per target (executions, executions/s, coverage, features,
# corpus size) and exits 1 if any target crashed, leaked or timed out.
set -euo pipefail

long=0
if [ "${1:-}" = --long ]; then
	long=1
	shift
fi
if [ $# -lt 1 ]; then
	sed -n '2,19p' "$0"
	exit 2
fi
build=$(cd "$1" && pwd)
shift
src=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-25}
runs=${FUZZ_RUNS:-10000000}
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/vuv-fuzz.XXXXXX")}

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in "$src"/fuzz_*.c; do
		t=${f##*/fuzz_}
		targets+=("${t%.c}")
	done
fi

# The last status line libFuzzer printed, as "runs exec/s cov ft corpus".
summary() { # logfile
	local line runs eps
	line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$1" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$1" | tail -n 1)
	printf '%s %s %s %s %s\n' "${runs:-?}" "${eps:-?}" \
		"$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")" \
		"$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")" \
		"$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$line")"
}

failed=0
results=()
echo "fuzz: work directory $work"
for t in "${targets[@]}"; do
	bin="$build/fuzz/fuzz_$t-libfuzzer"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin is missing (configure with CC=clang -Dfuzz=enabled)" >&2
		failed=1
		continue
	fi
	mkdir -p "$work/$t" "$work/artifacts/$t"
	cp -n "$src/corpus/$t"/* "$work/$t/" 2>/dev/null || true
	if [ $long = 1 ]; then
		limit=(-runs="$runs")
	else
		limit=(-max_total_time="$seconds")
	fi
	log="$work/$t.log"
	echo "--- fuzz_$t (${limit[*]})"
	rc=0
	"$bin" -close_fd_mask=2 -timeout=25 -rss_limit_mb=2560 \
		-print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" "${limit[@]}" \
		"$work/$t" >"$log" 2>&1 || rc=$?
	read -r n eps cov ft corp <<<"$(summary "$log")"
	results+=("$(printf '%-12s %12s %10s %6s %7s %10s' "$t" "$n" "$eps" "$cov" "$ft" "$corp")")
	if [ $rc != 0 ]; then
		failed=1
		echo "fuzz_$t FAILED (exit $rc); report and input:" >&2
		grep -v '^#' "$log" | tail -n 40 >&2
		ls -l "$work/artifacts/$t" >&2
	fi
done

printf '%-12s %12s %10s %6s %7s %10s\n' target executions exec/s cov ft corpus
printf '%s\n' "${results[@]}"
exit $failed

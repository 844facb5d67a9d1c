#!/bin/sh
# The benchmark in one command: build the daemon and vsock-bench optimised,
# then measure (README "Performance").
#
#   bench/run.sh [--build DIR] [vsock-bench options]
#
# DIR defaults to build-bench (created with --buildtype=release). Results:
# the table on stdout and DIR/bench-results.json, unless --json is given.
# The machine's load matters: the load average is printed before and after;
# compare runs made at low load, and use --repeats for more repetitions.
# Any vsock-bench option passes through (vsock-bench --help), e.g.
#   bench/run.sh --repeats 9 --only h2g       host -> guest streams only
#   bench/run.sh --cpus 0                     every process on CPU 0 (less spread)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build-bench
if [ "${1:-}" = "--build" ]; then
	[ $# -ge 2 ] || { echo "usage: $0 [--build DIR] [vsock-bench options]" >&2; exit 2; }
	build=$2
	shift 2
fi
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dbench=enabled
fi
ninja -C "$build" vhost-user-vsock bench/vsock-bench
json=$build/bench-results.json
for a in "$@"; do
	case $a in --json|--json=*) json= ;; esac
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
if [ -n "$json" ]; then
	exec "$build/bench/vsock-bench" --daemon "$build/vhost-user-vsock" --json "$json" "$@"
fi
exec "$build/bench/vsock-bench" --daemon "$build/vhost-user-vsock" "$@"

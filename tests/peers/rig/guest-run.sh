#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs inside a rig guest (usually chrooted in the 9p host root) around the
# real test command: bounds it with an in-guest timeout, then prints the
# files it left (logs) onto the console between delimiter lines, so one
# serial log carries everything and the host can split them out again.
#
#   guest-run.sh [--timeout SECS] [--dump PATH]... -- CMD [ARG]...
#
# PATH is a file, a glob, or a directory: every *.log below it on the same
# file system (so host trees bind-mounted under the guest's /tmp are not
# walked). Delimiters: "----- begin FILE -----" / "----- end FILE -----".
# Globs and directories may yield nothing; a missing plain file prints
# "rig: no file FILE". Exit status is
# CMD's (124 when the in-guest timeout ended it), after the dumps. The
# in-guest timeout should be shorter than the host's, so that a hung test
# still yields its logs rather than a killed guest.
set -u
limit=0
dumps=
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) limit=$2; shift 2 ;;
	--dump) dumps="$dumps $2"; shift 2 ;;
	--) shift; break ;;
	*) echo "guest-run: unknown option $1" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "guest-run: no command" >&2; exit 2; }

if [ "$limit" -gt 0 ]; then
	timeout -k 5 "$limit" "$@"
else
	"$@"
fi
rc=$?
[ "$rc" -ne 124 ] || echo "rig: in-guest timeout after ${limit}s: $1"

dump() {
	echo "----- begin $1 -----"
	cat "$1"
	# Keep the end marker on its own line.
	[ -z "$(tail -c 1 "$1")" ] || echo
	echo "----- end $1 -----"
}

# Globs are expanded here, after the command created the files.
for pattern in $dumps; do
	if [ -d "$pattern" ]; then
		find "$pattern" -xdev -type f -name '*.log' | sort | while read -r f; do dump "$f"; done
		continue
	fi
	found=0
	for f in $pattern; do
		[ -f "$f" ] || continue
		found=1
		dump "$f"
	done
	# An unmatched glob is normal (optional logs); a named file is expected.
	case $pattern in
	*[*?[]*) ;;
	*) [ "$found" = 1 ] || echo "rig: no file $pattern" ;;
	esac
done
exit "$rc"

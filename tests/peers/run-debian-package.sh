#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The Debian package as an operator gets it (debian/, README.md "Debian
# package"): build it from the tracked sources, check it with lintian,
# install it on this machine with apt-get, check what it installed, run
# the real-peer test against the installed daemon, and purge it again.
#
#   run-debian-package.sh
#
# Checks, one verdict line each (PASS: name / FAIL: name: why), in order:
#   deps             Debian 12 packages (scripts/install-deps.sh), and
#                    dpkg-checkbuilddeps content with debian/control
#   source-copy      the tracked files (git ls-files) copied to a temporary
#                    directory; nothing is built in the work tree
#   build            dpkg-buildpackage -us -uc there (source and binary, so
#                    lintian sees debian/ as well as the .deb)
#   deb-contents     the .deb holds the binary, man page, QEMU descriptor,
#                    units (in pkg-config's systemdsystemunitdir), copyright
#   lintian          lintian -I -E --pedantic on the .changes (source, .deb,
#                    .buildinfo): fails on any E: line, prints the rest
#   install          apt-get install -y ./vhost-user-vsock_*.deb
#   no-instance      no maintainer script enables or starts a unit, and no
#                    vhost-user-vsock unit is linked under /etc/systemd
#   version          /usr/bin/vhost-user-vsock --version is debian/changelog's
#   man-page         man -w finds the installed page; man -l renders it
#   qemu-descriptor  the JSON parses, names /usr/bin/vhost-user-vsock, and
#                    its type is what --print-capabilities says
#   units            systemd-analyze verify on instances (@test) of the
#                    installed templates: no complaint about them
#   user-engine      tests/peers/run-user-engine.sh with
#                    VUV_DAEMON=/usr/bin/vhost-user-vsock (QEMU/TCG guest)
#   purge            apt-get purge -y vhost-user-vsock; none of its files left
# A check whose input is missing (no .deb after a failed build) fails as
# "not run". The package is purged on every exit once installed, also
# after a failure; a version installed before the run is replaced, and so
# also gone afterwards (said on a "note:" line).
#
# Environment: VUV_BUILD (default <repo>/build/gcc: host_peer and the
# static guest program for the peer test), VUV_LOGS and VUV_CACHE
# (rig/lib.sh). Needs root, or sudo, for apt-get.
#
# Logs in $VUV_LOGS: debian-package.build.log, .lintian.log, .install.log,
# .files.log (dpkg -L), .purge.log, and the peer test's own logs under
# debian-package.user-engine/. On failure the build directory is kept too.
# Ends with "debian-package: N passed, M failed"; exit 1 on any failure.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

name=debian-package
pkg=vhost-user-vsock
bin=/usr/bin/vhost-user-vsock
t_start=$(rig_now)
passed=0 failed=0 timings=''
ok() {
	passed=$((passed + 1))
	echo "PASS: $1"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL: $1: $2"
}
skip() { bad "$1" "not run ($2)"; }
timed() { timings+=" $1 $(rig_elapsed "$2")s;"; }

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
apt_get() {
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get -y -q -o DPkg::Lock::Timeout=300 "$@"
}
installed_version() { dpkg-query -W -f='${Status} ${Version}\n' "$pkg" 2>/dev/null |
	awk '$3 == "installed" { print $4 }'; }

build_dir=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) || build_dir=''
mkdir -p "$VUV_LOGS"
log=$VUV_LOGS/$name
rm -rf "$log".*.log "$log.user-engine"

# One run at a time on a machine: two would install and purge the same
# package under each other.
exec 9>"${TMPDIR:-/tmp}/vuv-$name.lock"
if ! flock -w 900 9; then
	echo "$name: another run holds ${TMPDIR:-/tmp}/vuv-$name.lock"
	echo "$name: 0 passed, 1 failed"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vuv-deb.XXXXXX")
# apt-get fetches a local .deb as _apt, and lintian may run as nobody.
chmod 755 "$work"
we_installed=0 purged=0 keep_work=0
cleanup() {
	if [ "$we_installed" = 1 ] && [ "$purged" = 0 ]; then
		echo "note: purging $pkg after an early exit"
		apt_get purge "$pkg" >>"$log.purge.log" 2>&1 || echo "note: purge failed, see $log.purge.log"
	fi
	[ "$keep_work" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
# a signal ends the run through the EXIT trap too, so the package goes
trap 'exit 130' INT
trap 'exit 143' TERM

# --- deps
t0=$(rig_now)
if ! "$rig_repo/scripts/install-deps.sh" >"$log.deps.log" 2>&1; then
	bad deps "scripts/install-deps.sh failed: $(tail -n 2 "$log.deps.log" | tr '\n' ' ')"
elif ! (cd "$rig_repo" && dpkg-checkbuilddeps) >>"$log.deps.log" 2>&1; then
	# debian/control is the authority; a Build-Depends the list lacks
	# is installed here and reported, so install-deps.sh gets fixed.
	if (cd "$rig_repo" && apt_get build-dep ./) >>"$log.deps.log" 2>&1; then
		bad deps "debian/control needs packages scripts/install-deps.sh lacks (installed now): see $log.deps.log"
	else
		bad deps "build dependencies cannot be installed: $(tail -n 2 "$log.deps.log" | tr '\n' ' ')"
	fi
else
	ok deps
fi
timed deps "$t0"

# --- source-copy: what a fresh clone holds, edits to tracked files
# included; never build in the work tree.
t0=$(rig_now)
src=$work/$pkg
mkdir "$src"
if ! git -C "$rig_repo" rev-parse --git-dir >/dev/null 2>&1; then
	bad source-copy "$rig_repo is not a git checkout"
elif ! (cd "$rig_repo" && git ls-files -z | xargs -0 cp -P --preserve=mode --parents -t "$src"); then
	bad source-copy "copying the tracked files failed"
elif [ ! -x "$src/debian/rules" ]; then
	bad source-copy "debian/rules is not tracked or not executable"
else
	ok source-copy
fi
timed copy "$t0"

# --- build
t0=$(rig_now)
deb='' changes='' version=''
if [ ! -x "$src/debian/rules" ]; then
	skip build "no source copy"
elif ! (cd "$src" && dpkg-buildpackage -us -uc -j2) >"$log.build.log" 2>&1; then
	bad build "dpkg-buildpackage failed: $(tail -n 3 "$log.build.log" | tr '\n' ' ') (see $log.build.log)"
else
	version=$(cd "$src" && dpkg-parsechangelog -SVersion)
	debs=("$work/${pkg}_${version}"_*.deb)
	changes_all=("$work/${pkg}_${version}"_*.changes)
	if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ] || [ ! -f "${changes_all[0]}" ]; then
		bad build "no single ${pkg}_${version}_*.deb and .changes in $work"
	else
		deb=${debs[0]} changes=${changes_all[0]}
		ok build
	fi
fi
timed build "$t0"

# --- deb-contents
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
want=("$bin" "/usr/share/man/man1/$pkg.1.gz" "/usr/share/qemu/vhost-user/50-$pkg.json"
	"$unitdir/$pkg@.service" "$unitdir/$pkg@.socket" "/usr/share/doc/$pkg/copyright"
	"/usr/share/doc/$pkg/examples/example.conf")
if [ -z "$deb" ]; then
	skip deb-contents "no .deb"
elif [ -z "$unitdir" ]; then
	bad deb-contents "pkg-config knows no systemdsystemunitdir (package systemd)"
else
	listing=$(dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print $6 }')
	missing=()
	for f in "${want[@]}"; do
		grep -qxF "$f" <<<"$listing" || missing+=("$f")
	done
	if [ ${#missing[@]} -ne 0 ]; then
		bad deb-contents "missing ${missing[*]}"
	else
		ok deb-contents
	fi
fi

# --- lintian: as nobody when run as root (lintian advises against root)
t0=$(rig_now)
if [ -z "$changes" ]; then
	skip lintian "no .changes"
else
	as_user=()
	if [ "$(id -u)" -eq 0 ]; then
		install -d -o nobody "$work/lintian-home"
		as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups
			env HOME="$work/lintian-home" TMPDIR="$work/lintian-home")
	fi
	lrc=0
	"${as_user[@]}" lintian -I -E --pedantic --show-overrides --tag-display-limit 0 \
		"$changes" >"$log.lintian.log" 2>&1 || lrc=$?
	# without the overrides' comments (N:), which are in debian/
	grep -v '^N:' "$log.lintian.log" | sed 's/^/  lintian| /' || true
	nerr=$(grep -c '^E: ' "$log.lintian.log" || true)
	nwarn=$(grep -c '^W: ' "$log.lintian.log" || true)
	if [ "$nerr" -ne 0 ]; then
		bad lintian "$nerr errors, $nwarn warnings (see $log.lintian.log)"
	elif [ "$lrc" -ne 0 ]; then
		bad lintian "lintian exit status $lrc (see $log.lintian.log)"
	else
		ok lintian
		echo "note: lintian: $nwarn warnings, $(grep -c '^[IPX]: ' "$log.lintian.log" || true) info/pedantic/experimental, $(grep -c '^O: ' "$log.lintian.log" || true) overridden"
	fi
fi
timed lintian "$t0"

# --- install
t0=$(rig_now)
before=$(installed_version || true)
if [ -z "$deb" ]; then
	skip install "no .deb"
else
	[ -z "$before" ] || echo "note: $pkg $before was installed before this run; it is replaced, and purged at the end"
	we_installed=1
	if ! (cd "$work" && apt_get install "./$(basename "$deb")") >"$log.install.log" 2>&1; then
		bad install "apt-get install failed: $(tail -n 3 "$log.install.log" | tr '\n' ' ')"
	elif [ "$(installed_version)" != "$version" ]; then
		bad install "dpkg reports '$(installed_version)' installed, not $version"
	else
		ok install
		dpkg -L "$pkg" >"$log.files.log"
		sed 's/^/  dpkg -L| /' "$log.files.log"
	fi
fi
timed install "$t0"
is_installed=0
[ -z "$version" ] || [ "$(installed_version)" != "$version" ] || is_installed=1

# --- no-instance: templates are never enabled or started by the package
if [ "$is_installed" = 0 ]; then
	skip no-instance "not installed"
else
	why=''
	for s in preinst postinst prerm postrm; do
		f=/var/lib/dpkg/info/$pkg.$s
		[ -f "$f" ] || continue
		if grep -qE 'deb-systemd-(helper|invoke).*(enable|start|restart)|systemctl.*(enable|start)' "$f"; then
			why+=" $s enables or starts a unit;"
		fi
	done
	links=$(find /etc/systemd/system -name "$pkg@*" 2>/dev/null | head -n 3)
	[ -z "$links" ] || why+=" unit links present: $(echo "$links" | tr '\n' ' ')"
	if [ -n "$why" ]; then bad no-instance "$why"; else ok no-instance; fi
fi

# --- version
if [ "$is_installed" = 0 ]; then
	skip version "not installed"
else
	got=$("$bin" --version 2>&1 || true)
	if [ "$got" = "$pkg ${version%-*}" ]; then
		ok version
	else
		bad version "'$got', expected '$pkg ${version%-*}' (debian/changelog; meson.build must agree)"
	fi
fi

# --- man-page
if [ "$is_installed" = 0 ]; then
	skip man-page "not installed"
elif ! page=$(man -w "$pkg" 2>&1) || [ "$page" != /usr/share/man/man1/$pkg.1.gz ]; then
	bad man-page "man -w $pkg: $page"
elif ! text=$(MANWIDTH=80 man -l "$page" 2>"$work/man.err") || [ -s "$work/man.err" ]; then
	bad man-page "man -l $page: $(head -n 3 "$work/man.err" | tr '\n' ' ')"
elif ! grep -q "^NAME" <<<"$text" || ! grep -q -- "--socket-path" <<<"$text"; then
	bad man-page "rendered page lacks NAME or --socket-path"
else
	ok man-page
fi

# --- qemu-descriptor
desc=/usr/share/qemu/vhost-user/50-$pkg.json
if [ "$is_installed" = 0 ]; then
	skip qemu-descriptor "not installed"
elif ! why=$(python3 - "$desc" "$bin" 2>&1 <<'EOF'
import json, subprocess, sys
path, binary = sys.argv[1:]
with open(path) as f:
    desc = json.load(f)
assert isinstance(desc, dict), "not a JSON object"
assert desc.get("binary") == binary, "binary is %r" % desc.get("binary")
caps = json.loads(subprocess.run([binary, "--print-capabilities"], check=True,
                                 capture_output=True, text=True).stdout)
assert desc.get("type") == caps["type"], "type %r, --print-capabilities %r" % (desc.get("type"), caps["type"])
EOF
); then
	bad qemu-descriptor "$(tail -n 1 <<<"$why")"
else
	ok qemu-descriptor
fi

# --- units: instances of the installed templates, as operability.py does
# with the build's units (an unknown directive is only a message to
# systemd, so any message naming our units fails the check).
if [ "$is_installed" = 0 ]; then
	skip units "not installed"
else
	udir=$work/units
	mkdir "$udir"
	for kind in service socket; do
		cp "$unitdir/$pkg@.$kind" "$udir/"
		ln -s "$pkg@.$kind" "$udir/$pkg@test.$kind"
	done
	urc=0
	out=$(systemd-analyze verify --man=no "$udir/$pkg@test.service" "$udir/$pkg@test.socket" 2>&1) || urc=$?
	ours=$(grep "$pkg" <<<"$out" || true)
	if [ "$urc" -ne 0 ] || [ -n "$ours" ]; then
		bad units "systemd-analyze verify (status $urc): $(tr '\n' ' ' <<<"$out")"
	else
		ok units
	fi
fi

# --- user-engine: the installed daemon against a QEMU guest
t0=$(rig_now)
if [ "$is_installed" = 0 ]; then
	skip user-engine "not installed"
elif [ -z "$build_dir" ]; then
	skip user-engine "VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
else
	urc=0
	VUV_BUILD=$build_dir VUV_DAEMON=$bin VUV_LOGS=$log.user-engine \
		bash "$rig_dir/../run-user-engine.sh" 2>&1 | sed 's/^/  user-engine| /' || urc=$?
	if [ "$urc" = 0 ]; then
		ok user-engine
	else
		bad user-engine "run-user-engine.sh failed (logs in $log.user-engine)"
	fi
fi
timed peer-test "$t0"

# --- purge
t0=$(rig_now)
if [ "$we_installed" = 0 ]; then
	skip purge "not installed"
else
	files=$(cat "$log.files.log" 2>/dev/null || true)
	prc=0
	apt_get purge "$pkg" >"$log.purge.log" 2>&1 || prc=$?
	purged=1
	left=$(while IFS= read -r f; do
		case $f in /usr/bin/* | */$pkg* | */50-$pkg.json) [ ! -e "$f" ] || echo "$f" ;; esac
	done <<<"$files")
	if [ "$prc" -ne 0 ]; then
		bad purge "apt-get purge failed: $(tail -n 2 "$log.purge.log" | tr '\n' ' ')"
	elif [ -n "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -v 'not-installed' || true)" ]; then
		bad purge "dpkg still knows $pkg: $(dpkg-query -W -f='${Status}' "$pkg")"
	elif [ -n "$left" ]; then
		bad purge "files left: $(tr '\n' ' ' <<<"$left")"
	else
		ok purge
	fi
fi
timed purge "$t0"

if [ "$failed" != 0 ]; then
	keep_work=1
	echo "$name: build directory kept: $work"
fi
echo "$name: timings:$timings total $(rig_elapsed "$t_start")s"
echo "$name: logs in $VUV_LOGS: $(cd "$VUV_LOGS" && printf '%s ' "$name".*.log)"
echo "$name: $passed passed, $failed failed"
[ "$failed" = 0 ]

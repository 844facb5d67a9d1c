#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds the kernel's own vsock test suite (tools/testing/vsock/vsock_test)
# statically from Debian's linux-source-6.1 (or 6.12) tarball, into the rig cache,
# and prints the binary's path on stdout (messages go to stderr). Never part
# of the tracked tree: the source is GPL-2.0 and only used as a test peer.
#
#   build-vsock-test.sh
#
# Environment: VUV_CACHE (rig/lib.sh); VUV_LINUX_SOURCE, the tarball
# (default /usr/src/linux-source-6.1.tar.xz, from the package
# linux-source-6.1 that scripts/install-deps.sh installs; for 6.12,
# VUV_KERNEL=6.12 rig/fetch-kernel.sh --linux-source prints the one it
# downloads). 6.1's suite has 11 cases in 4 source files, 6.12's 26 in 6
# (MSG_ZEROCOPY cases in their own files); Debian 12's headers suffice for both.
#
# Idempotent: the result is keyed by the tarball's size and mtime, so a new
# package version rebuilds and an unchanged one costs nothing. Only
# tools/testing/vsock and tools/include are unpacked (~10 s: xz must still
# read the whole 139 MB). The build follows the suite's Makefile without
# -Werror and without headers_install: the distro's headers suffice.
# Concurrent runs serialise on a lock in the cache.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../rig/lib.sh
. "$(dirname "$0")/../rig/lib.sh"

[ $# -eq 0 ] || rig_die "usage: build-vsock-test.sh"
tarball=${VUV_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
[ -f "$tarball" ] ||
	rig_die "$tarball: not found (install linux-source-6.1: scripts/install-deps.sh)"
command -v gcc >/dev/null || rig_die "gcc is not installed"

root=$VUV_CACHE/vsock_test
key=$(stat -c '%s-%Y' "$tarball")-ct8-t60-ro2-shr-pl60-zc2
out=$root/$key/vsock_test
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9

if [ -x "$out" ] && [ -f "$root/$key/.complete" ]; then
	rig_log "vsock_test cached: $out"
	printf '%s\n' "$out"
	exit 0
fi

tmp=$root/.partial
rm -rf "$tmp" "${root:?}/$key"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
rig_log "unpacking tools/testing/vsock from $tarball"
top=$(tar -tJf "$tarball" 2>/dev/null | head -n 1 | cut -d/ -f1) || true
[ -n "$top" ] || rig_die "$tarball: cannot list it"
tar -xJf "$tarball" -C "$tmp" --wildcards \
	"$top/tools/testing/vsock/*" "$top/tools/include/*" ||
	rig_die "$tarball: no tools/testing/vsock in it"
src=$tmp/$top/tools/testing/vsock
[ -f "$src/vsock_test.c" ] || rig_die "$tarball: no vsock_test.c"

# Changes to the kernel's suite. First, its connect() helper gets 8 s instead of
# the kernel's 2 s default (SO_VM_SOCKETS_CONNECT_TIMEOUT). When L1 connects
# into L2, L2 runs under TCG inside TCG and a loaded host can leave it
# unscheduled past 2 s (seen at load average 9); the suite's own alarm
# around connect() is 10 s upstream (60 s here, below), so 8 s still ends
# before it. No test case's verdict depends on the timeout: the reset cases
# get their RST at once.
grep -q '^	fd = socket(AF_VSOCK, type, 0);$' "$src/util.c" ||
	rig_die "$src/util.c: vsock_connect() is not as expected; cannot set its timeout"
# 6.12 also connects from vsock_bind_connect(), with its own client_fd.
awk '{ print }
!done && $0 == "\tfd = socket(AF_VSOCK, type, 0);" {
	print "\tif (fd >= 0) {"
	print "\t\tstruct timeval ct = { .tv_sec = 8 };"
	print ""
	print "\t\tsetsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &ct, sizeof(ct));"
	print "\t}"
	done = 1
}
!done2 && $0 == "\tclient_fd = socket(AF_VSOCK, type, 0);" {
	print "\tif (client_fd >= 0) {"
	print "\t\tstruct timeval ct = { .tv_sec = 8 };"
	print ""
	print "\t\tsetsockopt(client_fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &ct, sizeof(ct));"
	print "\t}"
	done2 = 1
}' "$src/util.c" >"$src/util.c.new" && mv "$src/util.c.new" "$src/util.c"

# Second, the suite's own deadline for each control-channel read and each
# connect() (TIMEOUT, 10 s) becomes 60 s: an L2 running 6.12 under
# TCG-in-TCG once took longer than 10 s between two control lines at load
# average 10 (6.12's suite, L2 client: "0 - SOCK_STREAM connection
# reset...recv timed out" in L1). It only bounds hangs; no case's verdict
# depends on it.
grep -q '^	TIMEOUT = 10 /\* seconds \*/$' "$src/timeout.h" ||
	rig_die "$src/timeout.h: TIMEOUT is not as expected; cannot raise it"
sed -i 's|^	TIMEOUT = 10 /\* seconds \*/$|	TIMEOUT = 60 /* seconds; 10 upstream */|' "$src/timeout.h"

# Third, "SOCK_SEQPACKET timeout" allows a read with SO_RCVTIMEO 1 s to
# return up to 2 s late instead of 0.25 s (READ_OVERHEAD_NSEC): a 6.12 L2
# client at load average 15 returned after 1.68 s ("too much time in
# read(2), 678518535 > 250000000 ns"). That read involves no packet at all
# (the guest kernel's own timer, in a guest running TCG-in-TCG); the case
# still fails unless it times out with EAGAIN.
grep -q '^#define READ_OVERHEAD_NSEC 250000000 /\* 0.25 sec \*/$' "$src/vsock_test.c" ||
	rig_die "$src/vsock_test.c: READ_OVERHEAD_NSEC is not as expected; cannot raise it"
sed -i 's|^#define READ_OVERHEAD_NSEC 250000000 /\* 0.25 sec \*/$|#define READ_OVERHEAD_NSEC 2000000000 /* 2 s here; 0.25 s upstream */|' \
	"$src/vsock_test.c"

# Fourth (6.12's suite only), "SOCK_STREAM SHUT_RD": the client waits 2 s
# after the server's "SHUTRDDONE" before its send(2) must fail with EPIPE.
# The server's shutdown(SHUT_RD) reaches the client as a vsock SHUTDOWN
# packet, the "SHUTRDDONE" as TCP over virtio-net; nothing orders the two,
# and a 6.12 L2 client (L1 server) got the control line first: "expected
# send(2) failure, got 1". In L2 the vsock packet is handled by a workqueue,
# the TCP one in softirq. With the kernel engine the packet never passes
# through the daemon (L1's vhost_vsock puts it on L2's rx ring).
if grep -q '^static void test_stream_shutrd_client' "$src/vsock_test.c"; then
	awk '{ print }
	/^static void test_stream_shutrd_client/ { in_fn = 1 }
	in_fn && $0 == "\tcontrol_expectln(\"SHUTRDDONE\");" {
		print "\tsleep(2); /* the SHUTDOWN packet may come after the control line */"
		in_fn = 0; done = 1
	}
	END { exit !done }' "$src/vsock_test.c" >"$src/vsock_test.c.new" ||
		rig_die "$src/vsock_test.c: test_stream_shutrd_client is not as expected"
	mv "$src/vsock_test.c.new" "$src/vsock_test.c"
fi

# Fifth, "SOCK_STREAM poll() + SO_RCVLOWAT": the client's poll() for the
# rest of the data waits 60 s instead of 10: the peer sends 127 bytes one
# send(2) each, and a 6.12 L2 under QEMU 7.2 in TCG-in-TCG at load average
# 12-16 had not sent them all within 10 s ("Unexpected poll result 0", with
# the kernel engine: the daemon is not on that data path). The poll before
# it, which must see nothing for 1 s, is left alone.
if grep -q '^static void test_stream_poll_rcvlowat_client' "$src/vsock_test.c"; then
	awk '{ print_line = $0 }
	/^static void test_stream_poll_rcvlowat_client/ { in_fn = 1 }
	in_fn && $0 == "\tif (poll(&fds, 1, 10000) < 0) {" {
		print_line = "\tif (poll(&fds, 1, 60000) < 0) { /* 10000 upstream */"
		in_fn = 0; done = 1
	}
	{ print print_line }
	END { exit !done }' "$src/vsock_test.c" >"$src/vsock_test.c.new" ||
		rig_die "$src/vsock_test.c: test_stream_poll_rcvlowat_client is not as expected"
	mv "$src/vsock_test.c.new" "$src/vsock_test.c"
fi

# Sixth (6.12's suite only), the MSG_ZEROCOPY cases wait 2 s instead of
# 100 ms for the completion (POLL_TIMEOUT_MS): it comes when the receiver
# has taken the data, and through the forwarding daemon in L1 (L1's
# client, vsock_loopback) that is the daemon's read, which at load average
# 12-16 under TCG missed 100 ms ("SOCK_STREAM MSG_ZEROCOPY...POLLERR
# expected"). The cases that expect no completion wait the whole 2 s.
if [ -f "$src/vsock_test_zerocopy.c" ]; then
	grep -q '^#define POLL_TIMEOUT_MS		100$' "$src/vsock_test_zerocopy.c" ||
		rig_die "$src/vsock_test_zerocopy.c: POLL_TIMEOUT_MS is not as expected; cannot raise it"
	sed -i 's|^#define POLL_TIMEOUT_MS		100$|#define POLL_TIMEOUT_MS		2000 /* 100 upstream */|' \
		"$src/vsock_test_zerocopy.c"
fi

# The static getaddrinfo warning is expected: the control host is numeric.
rig_log "building vsock_test (static)"
srcs=()
for f in vsock_test.c vsock_test_zerocopy.c timeout.c control.c util.c msg_zerocopy_common.c; do
	[ ! -f "$src/$f" ] || srcs+=("$f")
done
(cd "$src" && gcc -static -O2 -g0 -D_GNU_SOURCE -include sys/time.h -I. -I../../include \
	-Wno-pointer-sign -fno-strict-overflow -fno-strict-aliasing -fno-common \
	-o vsock_test "${srcs[@]}") >"$tmp/build.out" 2>&1 || {
	cat "$tmp/build.out" >&2
	rig_die "vsock_test does not build"
}
LC_ALL=C readelf -lW "$src/vsock_test" | grep -q 'program interpreter' &&
	rig_die "vsock_test came out dynamically linked"
mkdir -p "$root/$key"
cp "$src/vsock_test" "$out"
printf '%s\n' "$tarball" >"$root/$key/.complete"
rig_log "vsock_test built: $out"
printf '%s\n' "$out"

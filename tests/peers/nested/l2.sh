#!/bin/sh
# shellcheck shell=dash
# SPDX-License-Identifier: MIT
#
# The L2 guest's side of the nested test (busybox sh, from the L2
# initramfs as /bin/l2.sh; run by the rig's /init through rig.run=). L1's
# l1.sh drives the other side and judges; this script only runs its steps
# in the order l1.sh expects and reports each one on the console:
#   "l2-step: NAME exit=N", then "l2: done" when all steps ran.
#
#   l2.sh data CID P Q BYTES CTL_FWD CTL_REV
#     net        eth0 up as 10.0.2.15/24 (QEMU user networking in L1)
#     cid        /dev/vsock's local CID must be CID
#     connect    to (2, P): BYTES each way, checked (L1 listens)
#     listen     on Q: BYTES each way, checked (L1 connects)
#     vt-client  vsock_test client; its TCP control server is L1 on CTL_FWD
#     vt-server  vsock_test server on CTL_REV (L1's QEMU forwards to it)
#     then holds: l1.sh stops this QEMU with SIGTERM (the restart case)
#   l2.sh restart CID P Q BYTES
#     cid, connect, listen as above (fresh ports), then exits: init powers
#     the guest off.
#   l2.sh vt MODE CTL SKIPS
#     net, then vt-MODE: vsock_test --mode=MODE (client: its control server
#     is L1 on CTL; server: on CTL, forwarded by L1's QEMU), --peer-cid=2,
#     --skip for each id of SKIPS ("3+7", or "-" for none); then exits.
#
# Every step is bounded (nested_xfer's own limits, timeout for vsock_test),
# and a failed step does not stop the next: l1.sh is waiting on each.
# Exit status: 0 when every step exited 0.
set -u
PATH=/bin
failed=0

step() {
	name=$1
	shift
	"$@"
	rc=$?
	echo "l2-step: $name exit=$rc"
	[ "$rc" -eq 0 ] || failed=$((failed + 1))
}

net_up() {
	ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
}

# vt_client ARG... - vsock_test as the client, tried again (3 times at
# most, 5 s apart) while it cannot open its TCP control connection: in
# the vt mode it connects right after eth0 came up, and once (at load
# average 20-30) that failed, "Control socket initialization failed"; a
# retry costs the L1 server nothing, its accept() is still waiting.
vt_client() {
	for _ in 1 2 3; do
		vsock_test --mode=client "$@" >/tmp/vt.out 2>&1
		rc=$?
		cat /tmp/vt.out
		grep -q '^Control socket initialization failed' /tmp/vt.out || return "$rc"
		sleep 5
	done
	return "$rc"
}

xfer_steps() { # CID P Q BYTES
	step cid nested_xfer cid "$1"
	step connect nested_xfer connect 2 "$2" "$4" --wait 30 --timeout 300
	step listen nested_xfer listen "$3" "$4" --wait 60 --timeout 300 --peer 2
}

mode=${1:-}
case $mode in
data)
	[ $# -eq 7 ] || { echo "l2: usage: l2.sh data CID P Q BYTES CTL_FWD CTL_REV"; exit 2; }
	step net net_up
	xfer_steps "$2" "$3" "$4" "$5"
	step vt-client timeout 600 vsock_test --mode=client --control-host=10.0.2.2 \
		--control-port="$6" --peer-cid=2
	step vt-server timeout 600 vsock_test --mode=server --control-port="$7" --peer-cid=2
	echo "l2: done failed=$failed"
	# l1.sh stops QEMU now; init must not power off first.
	sleep 600
	;;
restart)
	[ $# -eq 5 ] || { echo "l2: usage: l2.sh restart CID P Q BYTES"; exit 2; }
	xfer_steps "$2" "$3" "$4" "$5"
	echo "l2: done failed=$failed"
	;;
vt-client)
	shift
	vt_client "$@"
	exit
	;;
vt)
	[ $# -eq 4 ] || { echo "l2: usage: l2.sh vt client|server CTL SKIPS"; exit 2; }
	skips=''
	if [ "$4" != - ]; then
		IFS=+
		for id in $4; do skips="$skips --skip=$id"; done
		unset IFS
	fi
	step net net_up
	# shellcheck disable=SC2086 # $skips: zero or more words
	if [ "$2" = server ]; then
		step vt-server timeout 900 vsock_test --mode=server --control-port="$3" --peer-cid=2 $skips
	else
		step vt-client timeout 900 sh /bin/l2.sh vt-client --control-host=10.0.2.2 \
			--control-port="$3" --peer-cid=2 $skips
	fi
	echo "l2: done failed=$failed"
	;;
*)
	echo "l2: unknown mode '$mode'"
	exit 2
	;;
esac
[ "$failed" -eq 0 ]

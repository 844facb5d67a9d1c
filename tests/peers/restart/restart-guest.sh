#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The guest's side of run-restart.sh (busybox sh in the rig initramfs):
#   restart-guest.sh ROUNDS HANG LIMIT CID BULK
# For each round R: hold the old connections (restart_guest old, host_peer
# on control port 5100+R, busy stream on host port 5300+R) while the run
# script restarts the daemon; wait for the device to answer again
# (restart_guest probe, up to LIMIT s); then check new connections both
# ways with checksummed data: one guest_vsock_check run against host_peer
# on control port 5200+R. Every step prints its "restart:" line; the run
# script judges them.
rounds=$1 hang=$2 limit=$3 cid=$4 bulk=$5
r=0
while [ "$r" -lt "$rounds" ]; do
	restart_guest old --round "$r" --ctrl-port $((5100 + r)) --port $((5300 + r)) --hang "$hang"
	echo "restart: round $r old exit=$?"
	if restart_guest probe --round "$r" --limit "$limit"; then
		guest_vsock_check --cid "$cid" --ctrl-port $((5200 + r)) --bulk "$bulk" --budget 100
		echo "restart: round $r new exit=$?"
	else
		echo "restart: round $r new exit=skipped"
	fi
	r=$((r + 1))
done
echo "restart: guest done"

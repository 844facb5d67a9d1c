#!/usr/bin/env bash
# Build the daemon and start it on a sensible default:
#   - the kernel engine (guest CID 3, socket /tmp/vhost-user-vsock.sock) when
#     the host has /dev/vhost-vsock;
#   - otherwise, after saying so, the userspace engine (same socket and CID,
#     hybrid vsock socket /tmp/vhost-user-vsock.vsock), which needs no
#     privilege or kernel module.
# Any arguments replace the defaults, e.g.
#   scripts/run.sh --socket /run/vm7.sock --cid 7
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --build
[ -d build/release ] || meson setup build/release --buildtype=release >/dev/null
ninja -C build/release >/dev/null

if [ $# -eq 0 ]; then
	if [ -r /dev/vhost-vsock ] && [ -w /dev/vhost-vsock ]; then
		set -- --socket /tmp/vhost-user-vsock.sock --cid 3
	else
		if [ -e /dev/vhost-vsock ]; then
			echo "No read/write access to /dev/vhost-vsock, which the kernel engine needs:" >&2
			echo "  run as a user who can open it (ls -l /dev/vhost-vsock)." >&2
		else
			echo "This host has no /dev/vhost-vsock, which the kernel engine needs:" >&2
			echo "  load it with 'sudo modprobe vhost_vsock'." >&2
		fi
		echo "Starting the userspace engine instead (hybrid vsock, no privilege needed)." >&2
		set -- --socket /tmp/vhost-user-vsock.sock --guest-cid 3 \
			--uds-path /tmp/vhost-user-vsock.vsock
	fi
fi
echo "+ build/release/vhost-user-vsock $*" >&2
exec build/release/vhost-user-vsock "$@"

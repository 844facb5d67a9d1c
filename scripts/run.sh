#!/usr/bin/env bash
# Build the daemon and start it on a sensible default:
#   kernel engine, guest CID 3, socket /tmp/vhost-user-vsock.sock
# Any arguments replace the defaults, e.g.
#   scripts/run.sh --socket /run/vm7.sock --cid 7
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --build
[ -d build/release ] || meson setup build/release --buildtype=release >/dev/null
ninja -C build/release >/dev/null

if [ $# -eq 0 ]; then
	set -- --socket /tmp/vhost-user-vsock.sock --cid 3
	if [ ! -e /dev/vhost-vsock ]; then
		cat >&2 <<'MSG'
This host has no /dev/vhost-vsock, which the kernel engine needs.
  - Load the module:   sudo modprobe vhost_vsock
  - Check access:      ls -l /dev/vhost-vsock  (the daemon needs read/write)
MSG
	fi
fi
echo "+ build/release/vhost-user-vsock $*" >&2
exec build/release/vhost-user-vsock "$@"

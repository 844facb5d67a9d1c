#!/usr/bin/env bash
# First contact: shows vhost-user-vsock working on this machine, with no
# privilege, no /dev/vhost-vsock and no KVM.
#   1. installs what it needs from Debian 12's packages (scripts/install-deps.sh);
#   2. builds the daemon and the two small test programs into build/release;
#   3. starts the daemon with the userspace engine (hybrid vsock),
#        vhost-user-vsock --socket $W/vu.sock --guest-cid 3 --uds-path $W/vm.vsock
#      and a host program beside it, boots Debian's Linux kernel in QEMU
#      (TCG) with -device vhost-user-vsock-pci (the kernel is downloaded
#      once with apt-get download, never installed), and exchanges data
#      host <-> guest both ways: streams of 4 MiB with checksums, SEQPACKET
#      messages, refused connections;
#   4. says what happened in plain words. Exit status 0 when it all worked.
# Takes ~30 s once the packages and the kernel are there. Logs stay in
# build/peers-logs/. The work is done by tests/peers/run-user-engine.sh,
# the same test CI runs. VUV_DEMO_BUILD picks another build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bdir=${VUV_DEMO_BUILD:-build/release}

echo "== Installing what the demo needs (Debian packages; skipped when present)"
scripts/install-deps.sh

echo "== Building the daemon and the demo programs into $bdir"
targets=(vhost-user-vsock tests/peers/user/guest_vsock_check tests/peers/user/host_peer)
[ -d "$bdir" ] || meson setup "$bdir" --buildtype=release >/dev/null
if ! ninja -C "$bdir" "${targets[@]}" >/dev/null 2>&1; then
	# A build dir configured before cmocka was installed lacks tests/.
	meson setup --reconfigure "$bdir" >/dev/null
	ninja -C "$bdir" "${targets[@]}" >/dev/null
fi

echo "== Running the daemon with a QEMU guest"
VUV_BUILD=$PWD/$bdir exec tests/peers/run-user-engine.sh --demo

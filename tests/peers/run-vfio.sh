#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real-kernel VFIO test of the --vfio transport's lower half: boots Debian's
# 6.1 kernel under QEMU/TCG on q35 with an emulated Intel IOMMU (interrupt
# remapping on), binds QEMU's virtio-serial-pci (modern, iommu_platform=on)
# and ivshmem-plain to vfio-pci inside, and runs the daemon's own
# vfio_sys.c + virtio_pci.c through $VUV_BUILD/tests/peers/vfio_check
# against them (tests/peers/vfio-guest.sh), plus the daemon binary on
# both an unbound and a bound non-VVU device. The recipe is
# /work/shared/design/VFIO.md's.
#
# L0 side: vfio-host.py listens on the virtconsole's chardev socket and
# answers each frame; the ivshmem BAR is a file filled with a pattern
# before boot and checked for the guest's pattern after QEMU exits.
#
# Environment: VUV_BUILD (default <repo>/build/gcc), VUV_CACHE and VUV_LOGS
# (rig/lib.sh), VUV_PEER_TIMEOUT (host limit for QEMU, s, default 180),
# VUV_GUEST_TIMEOUT (in-guest limit, s, default 120), VUV_PEER_VERBOSE=1.
#
# Prints one PASS:/FAIL: line per check (the guest's, then the host's) and
# "vfio: N passed, M failed"; exit 0 only on a clean pass.
set -euo pipefail
# shellcheck source=rig/lib.sh
. "$(dirname "$0")/rig/lib.sh"

t_start=$(rig_now)
[ $# -eq 0 ] || rig_die "usage: run-vfio.sh"
host_limit=${VUV_PEER_TIMEOUT:-180}
guest_limit=${VUV_GUEST_TIMEOUT:-120}
name=vfio
serial_bdf=0000:00:10.0
shm_bdf=0000:00:11.0
nmsg_total=80   # vfio_check: 2 sessions x NMSG
shm_size=1048576
peers=$(cd "$(dirname "$0")" && pwd -P)

fail() {
	echo "FAIL: $*"
	echo "$name: 0 passed, 1 failed"
	exit 1
}

build=$(cd "${VUV_BUILD:-$rig_repo/build/gcc}" 2>/dev/null && pwd -P) ||
	fail "setup: VUV_BUILD=${VUV_BUILD:-$rig_repo/build/gcc} is not a build directory"
daemon=$build/vhost-user-vsock
check=$build/tests/peers/vfio_check
[ -x "$daemon" ] || fail "setup: daemon not built: $daemon"
[ -x "$check" ] || fail "setup: check program not built: $check"
for tool in qemu-system-x86_64 timeout awk python3; do
	command -v "$tool" >/dev/null || fail "setup: $tool is not installed (scripts/install-deps.sh)"
done

work=$(mktemp -d /tmp/vuv-vfio.XXXXXX)
helper=
cleanup() {
	[ -z "$helper" ] || kill "$helper" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

t0=$(rig_now)
tree=$("$rig_dir/fetch-kernel.sh" --vmlinux) || fail "setup: cannot fetch the guest kernel"
rig_kernel_vars "$tree" || fail "setup: bad kernel tree $tree"
t_kernel=$(rig_elapsed "$t0")

t0=$(rig_now)
initrd=$VUV_CACHE/initrd/$name.cpio.gz
# vfio_iommu_type1 is only a soft dependency of vfio: name it (VFIO.md)
mod_order=$("$rig_dir/make-initramfs.sh" -k "$tree" -o "$initrd" \
	-m "virtio_pci,9pnet_virtio,9p,vfio_iommu_type1,vfio-pci") || fail "setup: cannot build the initramfs"
t_initrd=$(rig_elapsed "$t0")

# The guest mounts a tmpfs over /tmp: keep our trees visible if they live there.
tmp_keep=$(rig_tmp_keeps "$rig_repo" "$build") || fail "setup: a path cannot be passed to the guest"
run=$(rig_join_commas "$rig_dir/guest-run.sh" --timeout "$guest_limit" --dump /tmp -- \
	"$peers/vfio-guest.sh" "$daemon" "$check" "$serial_bdf" "$shm_bdf") ||
	fail "setup: a path cannot be passed to the guest"
append="console=ttyS0 quiet panic=-1 intel_iommu=on iommu=pt no_timer_check"
append+=" rig.root9p=1 rig.mods=$mod_order rig.run=$run"
[ -z "$tmp_keep" ] || append+=" rig.keep=$tmp_keep"

# The BAR's contents before boot: what vfio_check's shm_in_byte() expects.
python3 - "$work/shm" "$shm_size" <<'PY'
import sys
n = int(sys.argv[2])
with open(sys.argv[1], "wb") as f:
    f.write(bytes((i * 13 + 7 + (i >> 12)) & 0xFF for i in range(n)))
PY
python3 "$peers/vfio-host.py" "$work/vc0.sock" "$work/host.result" "$host_limit" \
	2>"$work/host.err" &
helper=$!
rig_wait_listening "$work/vc0.sock" 10 "$helper" || fail "setup: the host helper does not listen"

mkdir -p "$VUV_LOGS"
log=$VUV_LOGS/$name.log
rm -f "$VUV_LOGS/$name".dump.*
echo "$name: booting $(basename "$VMLINUX") under TCG (limit ${host_limit}s), console in $log"
rig_boot "$log" "$host_limit" "${RIG_QEMU_BASE[@]}" "${RIG_QEMU_9P[@]}" \
	-machine q35 -m 1G -smp 1 \
	-device intel-iommu,intremap=on \
	-chardev "socket,id=vc0,path=$work/vc0.sock" \
	-device virtio-serial-pci,id=vser0,addr=0x10,disable-legacy=on,iommu_platform=on,max_ports=1 \
	-device virtconsole,bus=vser0.0,nr=0,chardev=vc0 \
	-object "memory-backend-file,id=shm0,share=on,mem-path=$work/shm,size=1M" \
	-device ivshmem-plain,memdev=shm0,addr=0x11 \
	-kernel "$VMLINUX" -initrd "$initrd" -append "$append"

# The guest's own verdict: its markers, its summary, init's exit line.
guest_ok=1
guest_out=$(rig_judge "$log" vfio-guest VUV_PEER_TIMEOUT) || guest_ok=0
printf '%s\n' "$guest_out" | grep -vE '^vfio-guest: ' || true
npass=$(rig_console "$log" | grep -c '^PASS:' || true)
nfail=$(rig_console "$log" | grep -c '^FAIL:' || true)
if [ "$guest_ok" = 0 ] && [ "$nfail" = 0 ]; then
	echo "FAIL: guest: the run did not end cleanly (see above)"
	nfail=$((nfail + 1))
fi
dumps=$(rig_split_dumps "$log" "$VUV_LOGS/$name.dump.")

# L0's side of the messages: QEMU is gone, so the helper has its EOF.
for _ in $(seq 50); do kill -0 "$helper" 2>/dev/null || break; sleep 0.1; done
wait "$helper" 2>/dev/null || true
helper=
result=$(cat "$work/host.result" 2>/dev/null || echo none)
cp "$work/host.err" "$VUV_LOGS/$name.host.log" 2>/dev/null || true
if [[ $result == "frames=$nmsg_total bad=0 "* ]]; then
	echo "PASS: host-frames"
	npass=$((npass + 1))
else
	echo "FAIL: host-frames: the host helper saw '$result' (want frames=$nmsg_total bad=0)"
	nfail=$((nfail + 1))
fi

# What the guest wrote through its mapping of BAR 2: vfio_check's shm_out_byte().
if python3 - "$work/shm" "$shm_size" <<'PY'; then
import sys
n = int(sys.argv[2])
data = open(sys.argv[1], "rb").read()
want = bytes((((i * 29 + 3) & 0xFF) ^ 0x5A ^ (i >> 10)) & 0xFF for i in range(n))
if len(data) != n or data != want:
    bad = next((i for i in range(min(len(data), n)) if data[i] != want[i]), n)
    print(f"first difference at 0x{bad:x}")
    sys.exit(1)
PY
	echo "PASS: shm-write"
	npass=$((npass + 1))
else
	echo "FAIL: shm-write: the host file does not hold what the guest wrote"
	nfail=$((nfail + 1))
fi

boot=- run_s=-
[ -z "$RIG_T_RUN" ] || boot=$(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_RUN")
[ -z "$RIG_T_RUN" ] || [ -z "$RIG_T_EXIT" ] || run_s=$(rig_elapsed "$RIG_T_RUN" "$RIG_T_EXIT")
echo "$name: timings: kernel fetch ${t_kernel}s, initramfs ${t_initrd}s, boot ${boot}s," \
	"run ${run_s}s, QEMU $(rig_elapsed "$RIG_T_LAUNCH" "$RIG_T_END")s, total $(rig_elapsed "$t_start")s"
echo "$name: console log $log"
[ -z "$dumps" ] || echo "$name: guest files: ${dumps//$'\n'/ }"
if [ "$nfail" != 0 ]; then
	echo "--- last console lines (without dumped files):"
	rig_console "$log" | tail -n 25
fi
echo "$name: $npass passed, $nfail failed"
[ "$nfail" = 0 ]

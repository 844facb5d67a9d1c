#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The guest half of run-vfio.sh, run by init.sh (through guest-run.sh) in
# the 9p host root as root: checks that a device not bound to vfio-pci is
# refused with its cause (by the daemon and by vfio_sys), binds the
# virtio-serial and ivshmem devices to vfio-pci as VFIO.md says, runs
# vfio_check on them, and runs the daemon on the bound virtio-serial,
# which is no virtio-vhost-user device and must be refused by name.
#
#   vfio-guest.sh DAEMON VFIO_CHECK SERIAL_BDF SHM_BDF
#
# Prints PASS:/FAIL:/SKIP:/INFO: lines (vfio_check's among them) and
# "vfio-guest: N passed, M failed"; exits 0 iff nothing failed.
set -u
daemon=$1 check=$2 ser=$3 shm=$4
npass=0 nfail=0

pass() { echo "PASS: $1"; npass=$((npass + 1)); }
fail() { echo "FAIL: $1: $2"; nfail=$((nfail + 1)); }
up() { local u _; read -r u _ </proc/uptime; echo "INFO: uptime $u: $*"; }
first_error() { grep -m 1 -E 'error|fatal' "$1" || tail -n 1 "$1"; }

# The daemon on a device bound to virtio-pci: refused, naming the cause.
check_daemon_unbound() {
	local log=/tmp/daemon-unbound.log rc=0
	# the userspace engine: this guest has no vhost_vsock, the transport is the same
	timeout 20 "$daemon" --vfio "$ser" --uds-path /tmp/vvu-unbound.vsock >"$log" 2>&1 || rc=$?
	echo "INFO: daemon on the unbound device (exit $rc): $(first_error "$log")"
	if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
		fail daemon-unbound "exit status $rc"
	elif grep -q 'not vfio-pci' "$log"; then
		pass daemon-unbound
	else
		fail daemon-unbound "the log does not say the device is not bound to vfio-pci"
	fi
}

# vfio_check's lines into ours: count them and show them.
take_check_output() {
	printf '%s\n' "$1" | grep -E '^(PASS|FAIL|INFO):'
	npass=$((npass + $(printf '%s\n' "$1" | grep -c '^PASS:')))
	nfail=$((nfail + $(printf '%s\n' "$1" | grep -c '^FAIL:')))
}

# The same refusal from vfio_sys itself, with its words.
check_sys_unbound() {
	local log=/tmp/vfio-unbound.log
	take_check_output "$("$check" --unbound "$ser" 2>"$log")"
	echo "INFO: vfio_sys: $(first_error "$log")"
	if grep -q "bound to virtio-pci, not vfio-pci: echo vfio-pci > /sys/bus/pci/devices/$ser/driver_override" "$log"; then
		pass unbound-message
	else
		fail unbound-message "no 'bound to virtio-pci, not vfio-pci' advice"
	fi
}

# A user without access to /dev/vfio/<group> is told which file it needs.
check_sys_denied() {
	local log=/tmp/vfio-denied.log group
	group=$(basename "$(readlink "/sys/bus/pci/devices/$ser/iommu_group")")
	take_check_output "$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$check" --denied "$ser" 2>"$log")"
	echo "INFO: vfio_sys as uid 65534: $(first_error "$log")"
	if grep -q "permission denied on /dev/vfio/$group" "$log"; then
		pass denied-message
	else
		fail denied-message "no 'permission denied on /dev/vfio/$group'"
	fi
}

bind_vfio() {
	local bdf=$1 name=$2 dev=/sys/bus/pci/devices/$1 group
	echo vfio-pci >"$dev/driver_override" || { fail "bind-$name" "driver_override"; return; }
	[ ! -e "$dev/driver" ] || echo "$bdf" >"$dev/driver/unbind"
	echo "$bdf" >/sys/bus/pci/drivers/vfio-pci/bind 2>/dev/null
	group=$(basename "$(readlink "$dev/iommu_group")")
	if [ "$(basename "$(readlink "$dev/driver")")" = vfio-pci ] && [ -c "/dev/vfio/$group" ]; then
		pass "bind-$name"
	else
		fail "bind-$name" "not bound to vfio-pci (driver: $(readlink "$dev/driver"))"
	fi
}

run_check() {
	local out t0 t1
	t0=$(date +%s.%N)
	out=$("$check" --serial "$ser" --shm "$shm" 2>/tmp/vfio-check.log)
	t1=$(date +%s.%N)
	take_check_output "$out"
	printf '%s\n' "$out" | grep -q '^vfio_check: ' || fail vfio-check "no summary (crashed?)"
	echo "INFO: vfio_check took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
}

# The daemon on a bound device that is not virtio-vhost-user: refused by name.
check_daemon_bound() {
	local log=/tmp/daemon-bound.log rc=0
	timeout 20 "$daemon" --vfio "$ser" --uds-path /tmp/vvu-bound.vsock >"$log" 2>&1 || rc=$?
	echo "INFO: daemon on virtio-serial (exit $rc): $(first_error "$log")"
	if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
		fail daemon-not-vvu "exit status $rc"
	elif grep -q -e "$ser" -e "${ser#0000:}" "$log" && grep -qi 'virtio-vhost-user' "$log"; then
		pass daemon-not-vvu
	else
		fail daemon-not-vvu "the log does not name $ser as not a virtio-vhost-user device"
	fi
}

for b in "$ser" "$shm"; do
	[ -e "/sys/bus/pci/devices/$b" ] || fail devices "no PCI device $b in the guest"
done
lspci_line() { cat "/sys/bus/pci/devices/$1/vendor" "/sys/bus/pci/devices/$1/device" | tr '\n' ' '; }
echo "INFO: $ser is $(lspci_line "$ser"), $shm is $(lspci_line "$shm")"
up "start"
check_daemon_unbound
check_sys_unbound
up "unbound checks done"
bind_vfio "$ser" serial
bind_vfio "$shm" shm
up "bound"
check_sys_denied
run_check
check_daemon_bound
up "done"
echo "vfio-guest: $npass passed, $nfail failed"
[ "$nfail" = 0 ]

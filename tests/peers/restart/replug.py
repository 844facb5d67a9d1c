#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Give a running QEMU guest a new vhost-user-vsock device on a new daemon.

    replug.py QMP_SOCKET DEVICE CHARDEV SOCKET_PATH [--timeout S]

QEMU's vhost-user-vsock never reconnects to a restarted back end, so the
operator's way back without restarting the VM is to replace the device:
device_del DEVICE (waiting for DEVICE_DELETED, i.e. the guest's ACPI
eject: its vsock driver resets every connection of the old device),
chardev-remove CHARDEV, chardev-add CHARDEV again on SOCKET_PATH (the new
daemon must listen there), device_add vhost-user-vsock-pci on it with the
same id. Prints one "replug: ..." line per step; exit 0 only when all
succeeded. The QMP client is rig/qmp-hotplug.py's.
"""
import argparse
import importlib.util
import os
import sys
import time

_spec = importlib.util.spec_from_file_location(
    "qmp_hotplug", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rig", "qmp-hotplug.py"))
qmp_hotplug = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qmp_hotplug)


def replug(q, a, deadline):
    t0 = time.monotonic()
    q.cmd("device_del", id=a.device)
    if q.wait_event("DEVICE_DELETED", deadline) is None:
        print("replug: FAIL: the guest never released the device (no DEVICE_DELETED)")
        return 1
    print(f"replug: old device removed in {time.monotonic() - t0:.2f}s")
    q.cmd("chardev-remove", id=a.chardev)
    q.cmd("chardev-add", id=a.chardev, backend={
        "type": "socket",
        "data": {"addr": {"type": "unix", "data": {"path": a.path}}, "server": False}})
    q.cmd("device_add", driver="vhost-user-vsock-pci", id=a.device, chardev=a.chardev)
    print(f"replug: new device on {a.path} added in {time.monotonic() - t0:.2f}s")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("qmp")
    ap.add_argument("device")
    ap.add_argument("chardev")
    ap.add_argument("path")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    try:
        return replug(qmp_hotplug.Qmp(a.qmp, deadline), a, deadline)
    except (RuntimeError, OSError, ValueError) as e:
        print(f"replug: FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Memory hot-plug and unplug of a running QEMU guest over QMP.

    qmp-hotplug.py QMP_SOCKET CONSOLE_LOG [--after TEXT] [--size MIB]
                   [--unplug-after TEXT] [--timeout S]

Waits until the console log holds --after (the guest is busy moving data),
plugs a memfd-backed (share=on, so a vhost-user back end can map it) DIMM
of --size MiB with object-add + device_add pc-dimm, waits until the console
holds --unplug-after, then unplugs it (device_del, DEVICE_DELETED from the
guest's ACPI eject, object-del). Prints one "hotplug: ..." line per step
and exits 0 only when every step QEMU was asked for succeeded.

QEMU refuses device_add when a vhost back end has no free memory slot
("no free memory slots left"), so a successful plug also says the back end
offered enough slots; whether the back end mapped the region is for the
caller to judge from the back end's log.
"""
import argparse
import json
import os
import socket
import sys
import time


class Qmp:
    def __init__(self, path, deadline):
        self.sock = None
        while self.sock is None:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self.sock = s
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no QMP socket at {path}")
                time.sleep(0.2)
        self.buf = b""
        self.events = []
        self.recv()  # greeting
        self.cmd("qmp_capabilities")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed (QEMU exited?)")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.sock.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
                continue
            if "error" in msg:
                raise RuntimeError(f"{name}: {msg['error'].get('desc', msg['error'])}")
            return msg.get("return")

    def wait_event(self, name, deadline):
        self.sock.settimeout(0.5)
        try:
            while True:
                for i, ev in enumerate(self.events):
                    if ev["event"] == name:
                        return self.events.pop(i)
                if time.monotonic() > deadline:
                    return None
                try:
                    self.events.append(self.recv())
                except socket.timeout:
                    pass
        finally:
            self.sock.settimeout(None)


def wait_console(path, text, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("qmp")
    ap.add_argument("console")
    ap.add_argument("--after", default="")
    ap.add_argument("--unplug-after", default="")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    try:
        q = Qmp(a.qmp, deadline)
        if a.after and not wait_console(a.console, a.after, deadline):
            print(f"hotplug: FAIL: the console never showed {a.after!r}")
            return 1
        t0 = time.monotonic()
        q.cmd("object-add", **{"qom-type": "memory-backend-memfd", "id": "hp0",
                                "size": a.size << 20, "share": True})
        q.cmd("device_add", driver="pc-dimm", id="dimm0", memdev="hp0")
        print(f"hotplug: plugged a {a.size} MiB DIMM in {time.monotonic() - t0:.2f}s")
        if not a.unplug_after:
            return 0
        if not wait_console(a.console, a.unplug_after, deadline):
            print(f"hotplug: FAIL: the console never showed {a.unplug_after!r}")
            return 1
        t0 = time.monotonic()
        q.cmd("device_del", id="dimm0")
        if q.wait_event("DEVICE_DELETED", deadline) is None:
            print("hotplug: FAIL: the guest never released the DIMM (no DEVICE_DELETED)")
            return 1
        q.cmd("object-del", id="hp0")
        print(f"hotplug: unplugged the DIMM in {time.monotonic() - t0:.2f}s")
        return 0
    except (RuntimeError, OSError, ValueError) as e:
        print(f"hotplug: FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

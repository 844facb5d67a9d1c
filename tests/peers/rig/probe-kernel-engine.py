#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Interim in-guest probe for the kernel-engine rig.

usage: probe-kernel-engine.py --daemon PATH [--workdir DIR]

Runs inside the rig guest (vhost_vsock loaded) and checks what the rig can
check without the real test program (tests/peers/kernel_engine_check):
the host kernel's /dev/vhost-vsock answers VHOST_GET_FEATURES, and the
daemon starts with --socket DIR/vu.sock --cid 3, creates and accepts on its
socket, stays up, and exits 0 on SIGTERM. It proves the rig works, not the
engine: it speaks no vhost-user. run-kernel-engine.sh uses it only when
asked (--probe), never as a silent stand-in.

Output: one "PASS: name" or "FAIL: name: why" line per check, then
"rig-probe: N passed, M failed". Exit 0 only when nothing failed. The
daemon's output goes to DIR/daemon.log.
"""
import argparse
import fcntl
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

VHOST_GET_FEATURES = 0x8008AF00  # _IOR(0xaf, 0x00, __u64)
VIRTIO_F_VERSION_1 = 1 << 32


class Checks:
    """Counts and prints check results in the rig's marker format."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def result(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print(f"PASS: {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL: {name}: {why}", flush=True)
        return ok


def check_device(c, path):
    try:
        st = os.stat(path)
    except OSError as e:
        return c.result("vhost-vsock device node", False, f"{path}: {e.strerror}")
    if not c.result("vhost-vsock device node", stat.S_ISCHR(st.st_mode), f"{path} is not a character device"):
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        return c.result("VHOST_GET_FEATURES", False, f"open: {e.strerror}")
    try:
        buf = fcntl.ioctl(fd, VHOST_GET_FEATURES, bytes(8))
        feats, = struct.unpack("<Q", buf)
    except OSError as e:
        return c.result("VHOST_GET_FEATURES", False, e.strerror)
    finally:
        os.close(fd)
    print(f"rig-probe: kernel vhost-vsock features {feats:#018x}", flush=True)
    return c.result("VHOST_GET_FEATURES", feats & VIRTIO_F_VERSION_1 != 0,
                    f"{feats:#x} lacks VERSION_1")


def wait_socket(proc, sock_path, limit):
    """Return None once sock_path accepts a connection, else the reason."""
    deadline = time.monotonic() + limit
    last = "not created"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"daemon exited with status {proc.returncode} before listening"
        if os.path.exists(sock_path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock_path)
                return None
            except OSError as e:
                last = e.strerror
            finally:
                s.close()
        time.sleep(0.05)
    return f"no connectable socket at {sock_path} after {limit}s ({last})"


def check_daemon(c, daemon, workdir):
    sock_path = os.path.join(workdir, "vu.sock")
    log_path = os.path.join(workdir, "daemon.log")
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([daemon, "--socket", sock_path, "--cid", "3"],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    except OSError as e:
        return c.result("daemon starts", False, f"{e.filename}: {e.strerror}")
    why = wait_socket(proc, sock_path, 10)
    c.result("daemon listens on its socket", why is None, why)
    if proc.poll() is not None:
        return False  # the reason is in the line above
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return c.result("daemon exits 0 on SIGTERM", False, "still running 5 s after SIGTERM")
    return c.result("daemon exits 0 on SIGTERM", rc == 0, f"exit status {rc}")


def main():
    ap = argparse.ArgumentParser(description="interim kernel-engine rig probe")
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--workdir", default="/tmp")
    ap.add_argument("--vhost", default="/dev/vhost-vsock")
    args = ap.parse_args()
    c = Checks()
    check_device(c, args.vhost)
    check_daemon(c, args.daemon, args.workdir)
    print(f"rig-probe: {c.passed} passed, {c.failed} failed", flush=True)
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

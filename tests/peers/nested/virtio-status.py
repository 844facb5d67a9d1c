#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What a QEMU's vsock device negotiated with its guest, over QMP.

    virtio-status.py QMP_SOCKET [--timeout S]

Finds the one vsock device of that QEMU (x-query-virtio: vhost-vsock or
vhost-user-vsock) and prints one line:

    virtio-status: name=N guest-features=F,... vhost-acked=0x.. queues=128/128 \
        vhost-started=true

guest-features is what the guest driver acked (transport and device
feature names as QEMU decodes them, sorted), vhost-acked the feature bits
the vhost back end was given, queues the size of each virtqueue the vhost
back end runs (rx/tx; only read from QEMU's own state). compare-l1.sh
compares these between QEMU's own device and ours, so that a difference in
the measurements can be told from a difference in the set-up. Needs QEMU
7.2 or newer (the x-query-virtio commands). Exit 0 when the line was
printed, 1 with a message otherwise.
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


def feature_names(f):
    """A VirtioDeviceFeatures as one sorted comma list (unknown bits as hex)."""
    names = list(f.get("transports", [])) + list(f.get("dev-features", []))
    unknown = f.get("unknown-dev-features")
    if unknown:
        names.append(f"unknown-0x{unknown:x}")
    return ",".join(sorted(n.split(":")[0] for n in names))


def status_line(q):
    devs = [d for d in q.cmd("x-query-virtio") if "vsock" in d.get("name", "")]
    if len(devs) != 1:
        raise RuntimeError(f"expected one vsock device, x-query-virtio lists {devs}")
    path = devs[0]["path"]
    st = q.cmd("x-query-virtio-status", path=path)
    vhost = st.get("vhost-dev") or {}
    # Not x-query-virtio-queue-status: with vhost running it asks the back
    # end for the ring's base (GET_VRING_BASE), which stops a vhost-user
    # back end's ring while QEMU carries on as if it ran (seen with 7.2).
    sizes = []
    for i in range(vhost.get("nvqs", 0)):
        sizes.append(str(q.cmd("x-query-virtio-vhost-queue-status", path=path, queue=i)["num"]))
    acked = vhost.get("acked-features")
    acked_s = feature_names(acked) if isinstance(acked, dict) else str(acked)
    return (f"virtio-status: name={st['name']} guest-features={feature_names(st['guest-features'])}"
            f" vhost-acked={acked_s} queues={'/'.join(sizes)}"
            f" vhost-started={str(st.get('vhost-started')).lower()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("qmp")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    try:
        q = qmp_hotplug.Qmp(a.qmp, time.monotonic() + a.timeout)
        print(status_line(q))
    except (OSError, RuntimeError, KeyError, TypeError) as e:
        print(f"virtio-status: {a.qmp}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

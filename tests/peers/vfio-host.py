#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Host end of run-vfio.sh's virtio-serial chardev (L0).

Listens on a Unix socket that QEMU connects to, and answers every frame
the guest's vfio_check sends (le16 seq, le16 len, len payload bytes) with
the same header and the payload XOR 0xa5, after checking the payload is
the pattern vfio_check writes. When QEMU goes away it writes one line
"frames=N bad=M bytes=B" to the result file and exits; a bad frame ends
the run early (the rest of the stream cannot be trusted).

    vfio-host.py SOCKET RESULT [TIMEOUT_S]
"""
import os
import socket
import struct
import sys


def frame_byte(seq, j):
    return (seq * 31 + j * 7 + (seq >> 8)) & 0xFF


def serve(conn):
    buf = b""
    frames = bad = total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        total += len(data)
        buf += data
        while len(buf) >= 4:
            seq, length = struct.unpack_from("<HH", buf)
            if len(buf) < 4 + length:
                break
            payload = buf[4:4 + length]
            buf = buf[4 + length:]
            want = bytes(frame_byte(seq, j) for j in range(length))
            if payload != want:
                bad += 1
                print(f"vfio-host: frame seq 0x{seq:x} len {length}: wrong payload",
                      file=sys.stderr)
                return frames, bad, total
            frames += 1
            conn.sendall(buf_reply(seq, length, payload))
    if buf:
        print(f"vfio-host: {len(buf)} bytes of a partial frame left", file=sys.stderr)
        bad += 1
    return frames, bad, total


def buf_reply(seq, length, payload):
    return struct.pack("<HH", seq, length) + bytes(b ^ 0xA5 for b in payload)


def main():
    path, result = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(timeout)
    frames = bad = total = 0
    try:
        conn, _ = srv.accept()
        conn.settimeout(timeout)
        with conn:
            frames, bad, total = serve(conn)
    except (socket.timeout, OSError) as e:
        print(f"vfio-host: {e}", file=sys.stderr)
        bad += 1
    with open(result, "w", encoding="ascii") as f:
        f.write(f"frames={frames} bad={bad} bytes={total}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cut the uncompressed kernel ELF out of an XZ- or ZSTD-compressed x86 bzImage.

usage: extract-vmlinux.py BZIMAGE OUT

Debian's kernel is built with CONFIG_KERNEL_XZ and CONFIG_PVH; the ELF
found here boots with QEMU's PVH loader (-kernel vmlinux), which skips the
in-guest decompression that dominates boot time under TCG (NESTED.md §2).

Debian 13's 6.12 uses CONFIG_KERNEL_ZSTD instead: its payload is found
through the setup header (payload_offset/payload_length) and decompressed
with the zstd program (package zstd; Python 3.11 has no zstd module).

Limits: only XZ and ZSTD payloads are handled. The first XZ stream, or the
ZSTD payload, whose output is an ELF file carrying a PVH entry note (Xen
ELF note type 18) is taken; anything else is an error (exit 1), never a
half-written OUT.
"""
import lzma
import shutil
import struct
import subprocess
import sys

XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XEN_ELFNOTE_PHYS32_ENTRY = 18


def has_pvh_note(elf: bytes) -> bool:
    """True when a 64-bit little-endian ELF has a Xen PHYS32_ENTRY note."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        base = phoff + i * phentsize
        if base + 56 > len(elf):
            return False
        p_type, = struct.unpack_from("<I", elf, base)
        p_offset, = struct.unpack_from("<Q", elf, base + 8)
        p_filesz, = struct.unpack_from("<Q", elf, base + 32)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = p_offset, min(p_offset + p_filesz, len(elf))
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def zstd_payload(image: bytes) -> bytes:
    """The setup header's payload when it is a ZSTD frame, else b""."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return b""
    setup_sects = image[0x1F1] or 4
    off, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + off
    payload = image[start:start + length]
    return payload if payload[:4] == ZSTD_MAGIC else b""


def unzstd(data: bytes) -> bytes:
    if shutil.which("zstd") is None:
        raise ValueError("ZSTD payload, but no zstd program (install zstd)")
    r = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=False)
    return r.stdout if r.returncode == 0 else b""


def extract(image: bytes) -> bytes:
    """Return the ZSTD payload or the first XZ stream in image that
    decompresses to a PVH ELF."""
    payload = zstd_payload(image)
    if payload:
        # The kernel build appends the decompressed size (le32) to the frame.
        for data in (payload[:-4], payload):
            out = unzstd(data)
            if has_pvh_note(out):
                return out
    start = image.find(XZ_MAGIC)
    while start >= 0:
        try:
            # Trailing bytes after the stream (the bzImage tail) are ignored.
            out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[start:])
        except lzma.LZMAError:
            out = b""
        if has_pvh_note(out):
            return out
        start = image.find(XZ_MAGIC, start + 1)
    raise ValueError("no XZ stream or ZSTD payload holding a PVH-capable ELF kernel")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        image = f.read()
    try:
        elf = extract(image)
    except ValueError as e:
        print(f"extract-vmlinux: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    with open(sys.argv[2], "wb") as f:
        f.write(elf)
    print(f"extract-vmlinux: {len(elf)} bytes, PVH entry note present", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cut the uncompressed kernel ELF out of an XZ-compressed x86 bzImage.

usage: extract-vmlinux.py BZIMAGE OUT

Debian's kernel is built with CONFIG_KERNEL_XZ and CONFIG_PVH; the ELF
found here boots with QEMU's PVH loader (-kernel vmlinux), which skips the
in-guest decompression that dominates boot time under TCG (NESTED.md §2).

Limits: only XZ payloads are looked for. The first XZ stream whose output
is an ELF file carrying a PVH entry note (Xen ELF note type 18) is taken;
anything else is an error (exit 1), never a half-written OUT.
"""
import lzma
import struct
import sys

XZ_MAGIC = b"\xfd7zXZ\x00"
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


def extract(image: bytes) -> bytes:
    """Return the first XZ stream in image that decompresses to a PVH ELF."""
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
    raise ValueError("no XZ stream holding a PVH-capable ELF kernel")


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

#!/usr/bin/env python3
"""Generate test and benchmark memory images.

usage: mkimage.py KIND SIZE PATH
  random       random bytes
  binary       system libraries and programs concatenated (code-like data)
  binary-zero  like binary, with a quarter of the pages zero in runs
  half-zero    like binary, with every other 64 KiB run of pages zero
"""
import glob
import os
import sys

PAGE = 4096


def binary_pool(limit):
    """Up to limit bytes of executable content from the system."""
    pool = bytearray()
    for pat in ("/usr/lib/x86_64-linux-gnu/*.so*", "/usr/bin/*", "/usr/lib/gcc/*/*/*"):
        for f in sorted(glob.glob(pat)):
            if len(pool) >= limit:
                return pool
            if not os.path.isfile(f) or os.path.islink(f):
                continue
            try:
                with open(f, "rb") as fh:
                    pool += fh.read(limit - len(pool))
            except OSError:
                continue
    if not pool:
        sys.exit("mkimage: no system binaries found")
    return pool


def write_image(kind, size, path):
    chunk = 64 * 1024
    zero = bytes(chunk)
    with open(path, "wb") as out:
        if kind == "random":
            left = size
            while left:
                n = min(left, 1 << 24)
                out.write(os.urandom(n))
                left -= n
            return
        # Page-level codecs see no repetition across pages, so cycling
        # through a large pool keeps the data as compressible as the source.
        pool = memoryview(binary_pool(256 << 20))
        pos = 0
        off = 0
        while off < size:
            n = min(chunk, size - off)
            idx = off // chunk
            if (kind == "half-zero" and idx % 2 == 1) or (kind == "binary-zero" and idx % 4 == 3):
                out.write(zero[:n])
            else:
                if pos + n > len(pool):
                    pos = 0
                out.write(pool[pos:pos + n])
                pos += n
            off += n


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("random", "binary", "binary-zero", "half-zero"):
        sys.exit(__doc__)
    write_image(sys.argv[1], int(sys.argv[2]), sys.argv[3])


if __name__ == "__main__":
    main()

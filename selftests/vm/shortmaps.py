#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""A writer whose every write goes through a mapping made for it alone.

Creates a 32 MiB memfd with a distinct content in every page, names it
(/proc/PID/fd/N) on file descriptor 3, then until SIGTERM: maps 32 pages
at a random page offset, writes all of them, unmaps them and sleeps 5 ms.
Each mapping lives for well under a harvest interval, so a tracker that
only watches mappings present at harvest time loses these writes.  At the
end prints {"pages_written": N, "mappings": M} on stdout.

Used by vm/live.sh's kmod-shortmaps case.
"""
import json
import mmap
import os
import random
import signal
import time

PAGE = 4096
SIZE = 32 << 20
CHUNK = 32

stop = False


def on_term(signum, frame):
    global stop
    stop = True


def main():
    signal.signal(signal.SIGTERM, on_term)
    fd = os.memfd_create("lmig-shortmaps")
    os.ftruncate(fd, SIZE)
    npages = SIZE // PAGE
    for p in range(0, npages, 256):
        buf = b"".join(p.to_bytes(8, "little") * (PAGE // 8) for p in range(p, p + 256))
        os.pwrite(fd, buf, p * PAGE)
    os.write(3, ("/proc/%d/fd/%d\n" % (os.getpid(), fd)).encode())
    os.close(3)
    rng = random.Random(1)
    gen = 1 << 40
    written = 0
    maps = 0
    while not stop:
        first = rng.randrange(0, npages - CHUNK + 1)
        m = mmap.mmap(fd, CHUNK * PAGE, mmap.MAP_SHARED,
                      mmap.PROT_READ | mmap.PROT_WRITE, offset=first * PAGE)
        gen += 1
        m[:] = gen.to_bytes(8, "little") * (CHUNK * PAGE // 8)
        m.close()
        maps += 1
        written += CHUNK
        time.sleep(0.005)
    print(json.dumps({"pages_written": written, "mappings": maps}))


main()

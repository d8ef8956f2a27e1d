#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""fuzz_tls seeds from a captured stream (mkcorpus.sh).

    tlsseed.py CAPTURE OUT [--inplace]

The plaintext is channel 0 of CAPTURE (fuzz/loop.h layout), sealed in the
pieces the sender sent it in (at most 8 KiB of it, to keep seeds small),
and fed to the receiver in uneven cuts, as TCP would deliver it; see
fuzz_tls.c for the program format.
"""
import struct
import sys

cap = open(sys.argv[1], "rb").read()
pieces, i = [], 1
while i + 3 <= len(cap):
    n = cap[i + 1] | cap[i + 2] << 8
    if cap[i] == 0:
        pieces.append(cap[i + 3:i + 3 + n])
    i += 3 + n

out = bytearray([2 if "--inplace" in sys.argv else 0])
total = 0
for k, p in enumerate(pieces):
    p = p[:8192 - total]
    if not p:
        break
    out += struct.pack("<BH", 0, len(p)) + p          # SEAL
    total += len(p)
    if k % 2:
        out += struct.pack("<BHH", 2, 1000 + 37 * k, 4095)   # FEED part, open 4 KiB at a time
out += struct.pack("<BHH", 2, 0, 65535)                  # FEED the rest
open(sys.argv[2], "wb").write(out)

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A capturing TCP relay for the seed corpus (mkcorpus.sh).

    capture.py UPSTREAM_PORT OUT PORTFILE [FLAGS]

Listens on 127.0.0.1 (a free port, written to PORTFILE), relays every
connection to 127.0.0.1:UPSTREAM_PORT in both directions, and records what
the connecting side sent.  Once every connection has ended and none came
for a second, it writes OUT in the harnesses' input layout (fuzz/loop.h):
a flags byte (FLAGS, default 0: fix up everything), then one segment per chunk received,
in arrival order, tagged with the connection's number (accept order).
"""
import selectors
import socket
import struct
import sys
import time

upstream, out, portfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
flags = int(sys.argv[4]) if len(sys.argv) > 4 else 0
sel = selectors.DefaultSelector()
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % lsock.getsockname()[1])
import os
os.rename(portfile + ".tmp", portfile)
sel.register(lsock, selectors.EVENT_READ, None)

segs = []          # (connection number, bytes)
open_socks = 0
nconn = 0
last = time.time()


def close_pair(a, b):
    global open_socks
    for s in (a, b):
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
    open_socks -= 1


while True:
    events = sel.select(timeout=0.1)
    for key, _ in events:
        if key.data is None:
            c, _ = lsock.accept()
            u = socket.create_connection(("127.0.0.1", upstream))
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            state = {"n": nconn, "ends": 0}
            sel.register(c, selectors.EVENT_READ, (c, u, True, state))
            sel.register(u, selectors.EVENT_READ, (u, c, False, state))
            nconn += 1
            open_socks += 1
            continue
        src, dst, from_client, state = key.data
        try:
            d = src.recv(1 << 20)
        except OSError:
            d = b""
        if d:
            if from_client:
                segs.append((state["n"], d))
            try:
                dst.sendall(d)
            except OSError:
                pass
        else:
            sel.unregister(src)
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            state["ends"] += 1
            if state["ends"] == 2:
                close_pair(src, dst)
        last = time.time()
    if nconn and not open_socks and time.time() - last > 1.0:
        break

with open(out, "wb") as f:
    f.write(bytes([flags]))
    for n, d in segs:
        for i in range(0, len(d), 65535):
            part = d[i:i + 65535]
            f.write(struct.pack("<BH", n, len(part)) + part)

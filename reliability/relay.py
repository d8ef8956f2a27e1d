# SPDX-License-Identifier: GPL-2.0-only
"""
A TCP relay on 127.0.0.1 between two lmig processes (send -> recv, pipe
send -> pipe recv, proxy send -> proxy recv) that forwards every
connection to a target port and can damage one direction of one
connection the way a bad link or a broken middlebox would:

  flip     XOR one byte at stream offset `off` with `val` (never 0)
  cut      forward `off` bytes, then close every connection (a dead link)
  drop     remove `n` bytes at `off` and carry on (a lost segment)
  reorder  swap the `n` bytes at `off` with the `m` bytes after them

and delay a direction (the first chunk, or everything while a delay is
set) so that a kill can land in a phase that is otherwise too short to
hit.  Connections are numbered in accept order (lmig's channel 0 connects
first); direction 0 is sender -> receiver, 1 the replies.

`injected` says whether the fault really changed the stream: a flip past
the end of the stream, a cut exactly at its end, a reorder of equal bytes
did not, and such runs are not counted.
"""
import select
import socket
import threading
import time


class Fault:
    def __init__(self, kind, conn=0, d=0, off=0, val=0xff, n=0, m=0):
        self.kind, self.conn, self.d, self.off = kind, conn, d, off
        self.val, self.n, self.m = val, n, m

    def __repr__(self):
        s = f"{self.kind} conn {self.conn} dir {'s->r' if self.d == 0 else 'r->s'} off {self.off}"
        if self.kind == "flip":
            s += f" xor 0x{self.val:02x}"
        if self.kind in ("drop", "reorder"):
            s += f" len {self.n}"
        if self.kind == "reorder":
            s += f"+{self.m}"
        return s


class Relay:
    HOLD_S = 0.05   # a reorder waits this long for the bytes to swap with

    def __init__(self, target_port, fault=None, first_delay=(0.0, 0.0)):
        self.target = target_port
        self.fault = fault
        self.first_delay = list(first_delay)
        self.delay = [0.0, 0.0]         # set by the caller while running
        self.injected = False
        self.cut = False
        self.first_seen = threading.Event()   # a byte from the sender arrived
        self.bytes = {}                 # (conn, dir) -> bytes seen
        self.eof = {}                   # (conn, dir) -> ended by FIN (not reset/cut)
        self.lock = threading.Lock()
        self.socks = []
        self.pumps = []
        self.stopped = False
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.nconn = 0
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stopped:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            with self.lock:
                if self.cut or self.stopped:
                    a.close()
                    b.close()
                    continue
                k = self.nconn
                self.nconn += 1
                self.socks += [a, b]
            for d, (src, dst) in enumerate(((a, b), (b, a))):
                t = threading.Thread(target=self._pump, args=(k, d, src, dst), daemon=True)
                t.start()
                self.pumps.append(t)

    def _kill_all(self):
        with self.lock:
            self.cut = True
            for s in self.socks + [self.ls]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _pump(self, k, d, src, dst):
        f = self.fault if self.fault and self.fault.conn == k and self.fault.d == d else None
        pos = 0                 # bytes of this direction received so far
        held = b""              # reorder: the bytes held back
        hold_until = None
        first = True
        done = False            # reorder: the swap is behind us
        key = (k, d)
        self.bytes[key] = 0
        while True:
            buf = None
            try:
                if hold_until is None or self._readable(src, hold_until - time.monotonic()):
                    buf = src.recv(65536)
            except OSError:
                self._abort(src, dst)
                break
            if buf is None:
                # Nothing more to swap with in time: what came after goes first.
                out = self._reorder_flush(f, held)
                held, hold_until, done = b"", None, True
                if not self._send(dst, out):
                    self._abort(src, dst)
                    break
                continue
            if not buf:
                if held:
                    self._send(dst, self._reorder_flush(f, held))
                    held = b""
                self.eof[key] = True
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                break
            if d == 0 and k == 0:
                self.first_seen.set()
            if first and self.first_delay[d] > 0:
                time.sleep(self.first_delay[d])
            first = False
            if self.delay[d] > 0:
                time.sleep(self.delay[d])
            start = pos
            pos += len(buf)
            self.bytes[key] = pos
            if f is None or (self.injected and f.kind != "reorder"):
                if not self._send(dst, buf):
                    self._abort(src, dst)
                    break
                continue
            if f.kind == "flip":
                if start <= f.off < pos:
                    b = bytearray(buf)
                    b[f.off - start] ^= f.val
                    buf = bytes(b)
                    self.injected = True
                if not self._send(dst, buf):
                    self._abort(src, dst)
                    break
            elif f.kind == "cut":
                if pos > f.off:
                    self._send(dst, buf[:max(0, f.off - start)])
                    self.injected = True
                    self._kill_all()
                    break
                if not self._send(dst, buf):
                    self._abort(src, dst)
                    break
            elif f.kind == "drop":
                lo, hi = max(f.off, start), min(f.off + f.n, pos)
                if lo < hi:
                    buf = buf[:lo - start] + buf[hi - start:]
                    self.injected = True
                if not self._send(dst, buf):
                    self._abort(src, dst)
                    break
            elif f.kind == "reorder":
                end = f.off + f.n + f.m
                if done:
                    if not self._send(dst, buf):
                        self._abort(src, dst)
                        break
                    continue
                c1 = min(max(f.off - start, 0), len(buf))
                c2 = min(max(end - start, 0), len(buf))
                out = buf[:c1]
                held += buf[c1:c2]
                if len(held) == f.n + f.m:
                    out += self._reorder_flush(f, held) + buf[c2:]
                    held, hold_until, done = b"", None, True
                elif held and hold_until is None:
                    hold_until = time.monotonic() + self.HOLD_S
                if out and not self._send(dst, out):
                    self._abort(src, dst)
                    break
        try:
            src.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    @staticmethod
    def _readable(s, timeout):
        p = select.poll()
        p.register(s, select.POLLIN)
        return bool(p.poll(max(0, int(timeout * 1000))))

    @staticmethod
    def _abort(src, dst):
        # A peer that died (reset) or a write that failed: end both ways.
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _reorder_flush(self, f, held):
        a, b = held[:f.n], held[f.n:]
        if not b:
            return a
        out = b + a
        if out != held:
            self.injected = True
        return out

    @staticmethod
    def _send(dst, buf):
        try:
            dst.sendall(buf)
            return True
        except OSError:
            return False

    def stop(self):
        """End every connection and thread: a close alone would not wake a
        blocked accept() or recv(), and a thread left blocked on a descriptor
        number could serve the next run's socket that reuses it."""
        self.stopped = True
        with self.lock:
            for s in self.socks + [self.ls]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.t.join(5)
        for t in self.pumps:
            t.join(5)
        with self.lock:
            for s in self.socks + [self.ls]:
                s.close()


def main():
    """Stand-alone, to reproduce one run by hand:
    relay.py TARGET_PORT [KIND CONN DIR OFF [VAL|LEN [LEN2]]] prints its port and
    relays until interrupted; DIR is 0 (sender -> receiver) or 1 (replies)."""
    import sys
    a = sys.argv[1:]
    if not a or a[0] in ("-h", "--help"):
        print(main.__doc__)
        return 2
    f = None
    if len(a) >= 5:
        kind, conn, d, off = a[1], int(a[2]), int(a[3]), int(a[4])
        x = [int(v, 0) for v in a[5:]]
        if kind == "flip":
            f = Fault(kind, conn, d, off, val=x[0] if x else 0xff)
        else:
            f = Fault(kind, conn, d, off, n=x[0] if x else 0, m=x[1] if len(x) > 1 else 0)
    r = Relay(int(a[0]), f)
    print(r.port, flush=True)
    try:
        while True:
            time.sleep(0.2)
            if r.injected:
                print(f"injected: {f}", flush=True)
                f = r.fault = None
                r.injected = False
    except KeyboardInterrupt:
        r.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# SPDX-License-Identifier: GPL-2.0-only
"""
Faults on the wire: single-byte corruptions, truncations, dropped and
reordered bytes, injected by relay.Relay between the two lmig ends, in
either direction of any connection (the hello, the data, the acks and
the verdict going back).  Every run must fail on both ends (the sender
with one line, non-zero; the receiver non-zero) and commit nothing; a
fault that lands in bytes the protocol does not read and still commits
an image equal to the source byte for byte is counted apart.
"""
import os
import select
import signal
import socket
import threading
import time

from common import Proc, proc_state, rm, scratch, one_line_error, leftovers, stays_paused
from relay import Fault, Relay

IMAGE = 256 * 1024
DEADLINE_S = 12.0       # a run still going after this is a hang (handshake limits are 10 s)
SLOW_S = 3.0            # ... and one that took longer than this is slow (stall limits are 1 s)

OUTCOMES = ["detected", "identical", "unknown-committed", "unknown-no-image", "committed-wrong",
            "delivered-wrong", "committed-sender-failed", "delivered-sender-failed",
            "sender-ok-no-image", "not-one-line", "recv-exit-0", "slow", "hung",
            "workload-not-resumed", "unknown-resumed", "leftover-partial"]


def hung_who(txc, rxc):
    if txc is None or rxc is None:
        return ("still running after %.0f s: %s; " %
                (DEADLINE_S, " and ".join(w for w, c in (("send", txc), ("recv", rxc)) if c is None)))
    return ""


def pick_fault(rng, kind, lens):
    """A fault of `kind` somewhere in the streams whose lengths a clean run measured."""
    keys = sorted(lens)
    # The replies are short: aim a third of the faults at them, and a fifth at the
    # first 512 bytes of a direction (the hello, its reply, the first frames).
    d = 1 if rng.random() < 0.33 else 0
    conns = [k for (k, dd) in keys if dd == d and lens[(k, dd)] > 0]
    conn = rng.choice(conns)
    n = lens[(conn, d)]
    if rng.random() < 0.2:
        off = rng.randrange(min(n, 512))
    else:
        off = rng.randrange(n)
    if kind == "flip":
        return Fault("flip", conn, d, off, val=rng.randrange(1, 256))
    if kind == "cut":
        return Fault("cut", conn, d, off)
    if kind == "drop":
        return Fault("drop", conn, d, off, n=rng.choice([1, 2, 4, 7, 64, 1000, 4096]))
    return Fault("reorder", conn, d, off, n=rng.choice([1, 4, 16, 100, 4096]),
                 m=rng.choice([1, 8, 64, 4096]))


def region(f, mode, relay):
    """Which part of the protocol the fault hit, from the stream as the run saw it."""
    stream = mode in ("pipe", "proxy")
    if f.d == 0:
        # lmig send's channel 0 ends with its CONFIRM (struct lmig_result, 120 bytes).
        if not stream and f.conn == 0 and f.off >= relay.bytes.get((0, 0), 0) - 120:
            return "s->r confirm"
        return "s->r hello" if f.off < 72 else "s->r data"
    if f.off < 120:
        return "r->s hello reply"
    # Channel 0 ends with the verdict (lmig_sreply, 128 bytes) on the stream path,
    # with the verdict and the FINAL (lmig_result, 120 bytes each) on the image path.
    end = relay.bytes.get((0, 1), 0)
    if f.conn == 0 and not stream and f.off >= end - 120:
        return "r->s final"
    if f.conn == 0 and f.off >= end - (128 if stream else 240):
        return "r->s verdict"
    return "r->s acks"


class Env:
    """One worker's files and, for live runs, its workload."""

    def __init__(self, wid, rng):
        self.wid = wid
        self.rng = rng
        self.src = scratch(f"src-{wid}")
        self.out = scratch(f"out-{wid}")
        with open(self.src, "wb") as f:
            # Half random, half repeating text: lz4 has something to do.
            f.write(rng.randbytes(IMAGE // 2) + (b"lmig reliability " * (IMAGE // 34 + 1))[:IMAGE // 2])
        self.data = open(self.src, "rb").read()
        self.streams = [rng.randbytes(IMAGE // 2), rng.randbytes(IMAGE // 2)]
        self.dirty = None
        self.lens = {}

    def workload(self):
        if self.dirty and self.dirty.alive():
            return self.dirty
        mem = scratch(f"live-{self.wid}")
        self.dirty = Proc(["dirty", "--mem", mem, "--size", f"{IMAGE // 1024}Ki", "--rate", "1M",
                           "--no-progress", "--ready-fd", "3"], ready=True)
        self.live_mem = self.dirty.port()
        return self.dirty

    def close(self):
        if self.dirty:
            self.dirty.reap()
        for p in (self.src, self.out, scratch(f"live-{self.wid}")) + tuple(
                os.path.join(os.path.dirname(self.out), n) for n in leftovers(self.out)):
            rm(p)


def run_image(env, mode, fault, chans):
    """lmig send -> relay -> lmig recv with one fault; returns (outcome list, note)."""
    rm(env.out)
    for n in leftovers(env.out):
        rm(os.path.join(os.path.dirname(env.out), n))
    rx = Proc(["recv", "--listen", "127.0.0.1:0", "--out", env.out, "--no-sync", "--timeout", "1",
               "--accept-timeout", "5", "--no-progress", "--ready-fd", "3"], ready=True)
    port = rx.port()
    relay = env.relay = Relay(int(port), fault)
    src = env.src
    args = ["send", "--to", f"127.0.0.1:{relay.port}", "--channels", chans, "--timeout", "1",
            "--no-progress", "--compress", env.rng.choice(["none", "lz4", "auto"])]
    dp = None
    if mode == "live":
        dp = env.workload()
        src = env.live_mem
        args += ["--pid", dp.pid, "--freeze", "signal", "--tracker", "scan", "--throttle", "off",
                 "--bandwidth", "4M", "--downtime-ms", "100"]
    tx = Proc(args + ["--mem", src])
    res = finish(env, tx, rx, relay, fault)
    if mode == "live":
        st = proc_state(dp.pid)
        txc = tx.p.returncode
        if txc == 3:
            # Outcome unknown: the source stays paused (operations.md), for 1 s at least.
            if not stays_paused(dp.pid, 1.0):
                res.insert(len(res) - 1, "unknown-resumed")
            os.kill(dp.pid, signal.SIGCONT)
        elif txc == 0:
            os.kill(dp.pid, signal.SIGCONT)   # paused after the commit, as asked
        elif st == "T":
            t0 = time.monotonic()
            while proc_state(dp.pid) == "T" and time.monotonic() - t0 < 1:
                time.sleep(0.01)
            if proc_state(dp.pid) == "T":
                res.insert(len(res) - 1, "workload-not-resumed")
                os.kill(dp.pid, signal.SIGCONT)
    return res


def finish(env, tx, rx, relay, fault, image=True):
    t0 = time.monotonic()
    txc = tx.wait(DEADLINE_S)
    rxc = rx.wait(max(0.1, DEADLINE_S - (time.monotonic() - t0)))
    res = []
    if txc is None or rxc is None:
        res.append("hung")
    hung_note = hung_who(txc, rxc)
    took = max(p.t_exit or time.monotonic() for p in (tx, rx)) - t0
    tx.reap()
    rx.reap()
    relay.stop()
    if not relay.injected:
        return ["not-injected"]
    out_exists = os.path.exists(env.out)
    src_now = (env.data if tx.args[-1] == env.src else open(env.live_mem, "rb").read())
    if txc == 3:
        # Outcome unknown (operations.md): the FINAL was lost; an image, if the
        # receiver committed, must be the (paused) source.
        if out_exists and open(env.out, "rb").read() != src_now:
            res.insert(0, "committed-wrong")
        else:
            res.insert(0, "unknown-committed" if out_exists else "unknown-no-image")
        if not any("outcome unknown" in l for l in tx.err):
            res.append("not-one-line")
    elif out_exists and txc != 0:
        # (A live source runs on after a failure: nothing to compare with.)
        wrong = tx.args[-1] == env.src and open(env.out, "rb").read() != env.data
        res.insert(0, "committed-wrong" if wrong else "committed-sender-failed")
    elif out_exists:
        # The source as the commit left it (a live one stays paused until the caller resumes it).
        same = open(env.out, "rb").read() == (env.data if tx.args[-1] == env.src else
                                              open(env.live_mem, "rb").read())
        if same:
            res.insert(0, "identical")
        elif not same:
            res.insert(0, "committed-wrong")
        else:
            res.insert(0, "committed-sender-failed")
    elif txc == 0:
        res.insert(0, "sender-ok-no-image")
    elif "hung" not in res:
        res.insert(0, "detected")
    if txc not in (0, None) and not one_line_error(tx.err, "send"):
        res.append("not-one-line")
    if rxc == 0 and not out_exists:
        res.append("recv-exit-0")
    if leftovers(env.out):
        res.append("leftover-partial")
    if res and res[0] == "detected" and len(res) > 1:
        res[0] = res[1]
        del res[1]
    if "hung" not in res and took > SLOW_S:
        res.append("slow")
        hung_note = f"took {took:.1f} s; "
    res.append(hung_note + ("|".join(tx.err[-1:]) if tx.err else ""))
    return res


def qemu_like_source(sock_or_fd, data, state):
    """Write data to a pipe fd or socket like QEMU would; note when writes fail."""
    try:
        if isinstance(sock_or_fd, int):
            view = memoryview(data)
            while view:
                n = os.write(sock_or_fd, view)
                view = view[n:]
            os.close(sock_or_fd)
            state["sent"] = True
        else:
            sock_or_fd.sendall(data)
            sock_or_fd.shutdown(socket.SHUT_WR)
            state["sent"] = True
            # QEMU reads the return path until the end: wait for the close.
            sock_or_fd.settimeout(DEADLINE_S)
            while sock_or_fd.recv(4096):
                pass
        state["wrote"] = True
    except OSError as e:
        state["error"] = e.errno
        if isinstance(sock_or_fd, int):
            try:
                os.close(sock_or_fd)
            except OSError:
                pass


def run_pipe(env, fault, chans):
    data = env.data
    rx = Proc(["pipe", "recv", "--listen", "127.0.0.1:0", "--ready-fd", "3", "--timeout", "1",
               "--accept-timeout", "5"], ready=True, collect_stdout=True)
    port = rx.port()
    relay = env.relay = Relay(int(port), fault)
    r, w = os.pipe()
    tx = Proc(["pipe", "send", "--to", f"127.0.0.1:{relay.port}", "--channels", chans,
               "--timeout", "1", "--compress", env.rng.choice(["none", "lz4"])], stdin=r)
    os.close(r)
    st = {}
    wt = threading.Thread(target=qemu_like_source, args=(w, data, st), daemon=True)
    wt.start()
    t0 = time.monotonic()
    txc = tx.wait(DEADLINE_S)
    rxc = rx.wait(max(0.1, DEADLINE_S - (time.monotonic() - t0)))
    res = ["hung"] if txc is None or rxc is None else []
    hung_note = hung_who(txc, rxc)
    took = max(p.t_exit or time.monotonic() for p in (tx, rx)) - t0
    tx.reap()
    rx.reap()
    relay.stop()
    wt.join(2)
    if not relay.injected:
        return ["not-injected"]
    got = rx.out
    if got != data[:len(got)]:
        res.insert(0, "delivered-wrong")
    if rxc == 0 and got == data:
        res.insert(0, "identical" if txc == 0 else "delivered-sender-failed")
    elif rxc == 0:
        res.append("recv-exit-0")
    elif txc == 0:
        res.insert(0, "sender-ok-no-image")
    if not res:
        res = ["detected"]
    elif "hung" in res and res[0] == "hung":
        pass
    if txc not in (0, None) and not one_line_error(tx.err, "pipe send"):
        res.append("not-one-line")
    if "hung" not in res and took > SLOW_S:
        res.append("slow")
        hung_note = f"took {took:.1f} s; "
    res.append(hung_note + ("|".join(tx.err[-1:]) if tx.err else ""))
    return res


class Dest:
    """Stands in for the destination QEMU: accepts connections, reads each to its end."""

    def __init__(self, n):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.got = {}          # accept order -> bytes
        self.clean = {}        # accept order -> ended by FIN (True) or reset (False)
        self.threads = []
        self.t = threading.Thread(target=self._accept, args=(n,), daemon=True)
        self.t.start()

    def _accept(self, n):
        for i in range(n):
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            t = threading.Thread(target=self._read, args=(i, c), daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, i, c):
        buf = []
        clean = False
        c.settimeout(DEADLINE_S + 2)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    clean = True
                    break
                buf.append(b)
        except OSError:
            pass
        self.got[i] = b"".join(buf)
        self.clean[i] = clean
        c.close()

    def close(self):
        # A connection the receiver opened and wrote to may still wait in the
        # backlog: take it before shutting the listener.
        p = select.poll()
        p.register(self.ls, select.POLLIN)
        t_end = time.monotonic() + 3
        while self.t.is_alive() and p.poll(100) and time.monotonic() < t_end:
            time.sleep(0.01)
        # shutdown() wakes the accept() still waiting for a connection; close() would not.
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.t.join(5)
        self.ls.close()
        for t in self.threads:
            t.join(DEADLINE_S + 3)


def run_proxy(env, fault, chans):
    streams = env.streams
    dest = Dest(len(streams))
    rx = Proc(["proxy", "recv", "--listen", "127.0.0.1:0", "--to", f"tcp:127.0.0.1:{dest.port}",
               "--ready-fd", "3", "--timeout", "1", "--accept-timeout", "5"], ready=True)
    port = rx.port()
    relay = env.relay = Relay(int(port), fault)
    tx = Proc(["proxy", "send", "--listen", "tcp:127.0.0.1:0", "--to", f"127.0.0.1:{relay.port}",
               "--channels", chans, "--streams", len(streams), "--timeout", "1",
               "--accept-timeout", "5", "--compress", env.rng.choice(["none", "lz4"]),
               "--ready-fd", "3"], ready=True)
    lport = tx.port()
    sts, wts = [], []
    if lport:
        for s in streams:
            try:
                c = socket.create_connection(("127.0.0.1", int(lport)))
            except OSError:
                break           # proxy send already failed (a fault in its handshake)
            st = {}
            t = threading.Thread(target=qemu_like_source, args=(c, s, st), daemon=True)
            t.start()
            sts.append(st)
            wts.append((t, c))
    t0 = time.monotonic()
    txc = tx.wait(DEADLINE_S)
    rxc = rx.wait(max(0.1, DEADLINE_S - (time.monotonic() - t0)))
    res = ["hung"] if txc is None or rxc is None else []
    hung_note = hung_who(txc, rxc)
    took = max(p.t_exit or time.monotonic() for p in (tx, rx)) - t0
    tx.reap()
    rx.reap()
    relay.stop()
    for t, c in wts:
        t.join(2)
        c.close()
    dest.close()
    if not relay.injected:
        return ["not-injected"]
    whole = 0
    for i, s in enumerate(streams):
        got = dest.got.get(i, b"")
        if not any(got == x[:len(got)] for x in streams):
            res.insert(0, "delivered-wrong")
        if dest.clean.get(i) and got in streams:
            whole += 1
    if whole == len(streams):
        res.insert(0, "identical" if txc == 0 and rxc == 0 else "delivered-sender-failed")
    elif txc == 0:
        res.insert(0, "sender-ok-no-image")
    elif rxc == 0:
        res.append("recv-exit-0")
        hung_note += "destination got " + ", ".join(
            f"stream {i}: {len(dest.got.get(i, b''))} bytes{' whole' if dest.got.get(i) in streams else ''}"
            f", {'FIN' if dest.clean.get(i) else 'reset/none'}" for i in range(len(streams))) + "; "
    if not res:
        res = ["detected"]
    if txc not in (0, None) and not one_line_error(tx.err, "proxy send"):
        res.append("not-one-line")
    if "hung" not in res and took > SLOW_S:
        res.append("slow")
        hung_note = f"took {took:.1f} s; "
    res.append(hung_note + ("|".join(tx.err[-1:]) if tx.err else ""))
    return res


RUNNERS = {"cold": lambda e, f, c: run_image(e, "cold", f, c),
           "live": lambda e, f, c: run_image(e, "live", f, c),
           "pipe": run_pipe, "proxy": run_proxy}


def calibrate(env, mode, chans):
    """Stream lengths per (connection, direction) of a clean run."""
    relay_lens = {}
    orig = Relay.stop

    def grab(self):
        relay_lens.update(self.bytes)
        orig(self)
    Relay.stop = grab
    try:
        res = RUNNERS[mode](env, Fault("flip", 99, 0, 0), chans)
    finally:
        Relay.stop = orig
    return relay_lens, res

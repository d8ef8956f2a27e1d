# SPDX-License-Identifier: GPL-2.0-only
"""
kill -9 of one end of a migration at a chosen phase, and what must hold
afterwards:

  live   lmig send --pid P --freeze signal --throttle auto, the workload
         `lmig dirty --pace cpu` writing faster than --bandwidth, so pre-copy
         runs several rounds and the throttle engages; lmig recv on /dev/shm
  pipe   lmig pipe send (stdin from the campaign) / lmig pipe recv (stdout
         to it), as QEMU's exec: migration would run them
  proxy  lmig proxy send / lmig proxy recv carrying two connections of a
         stand-in QEMU client to a stand-in QEMU server

The relay between the ends holds the first bytes (so a kill can land in
the handshake) and, for the commit phase, delays the replies (so a kill
can land between the receiver's commit and the sender learning of it).
The phase is recorded as observed at the moment of the kill, from the
sender's progress lines, the workload's state and the receiver's files.
"""
import os
import signal
import socket
import threading
import time

from common import (Proc, proc_state, rm, scratch, one_line_error, receiving, leftovers,
                    same_file, stays_paused, CPU_V1, BLKIO_V1, STATE_DIR, TAG)
from corrupt import Dest, qemu_like_source
from relay import Relay

LIVE_PHASES = ["handshake", "round 0", "later rounds", "frozen", "commit"]
STREAM_PHASES = ["handshake", "streaming", "end"]


def cg_line(pid, tid, ctrl):
    try:
        with open(f"/proc/{pid}/task/{tid}/cgroup") as f:
            for line in f:
                n, ctrls, path = line.rstrip("\n").split(":", 2)
                if ctrl in ctrls.split(","):
                    return path
    except OSError:
        return None
    return None


def read1(path):
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return None


def placement(pid):
    """Where the workload's threads are, and the limits of its cpu cgroup."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None
    cg = {t: (cg_line(pid, t, "cpu"), cg_line(pid, t, "blkio")) for t in tids}
    home = CPU_V1 + (cg[pid][0] if cg[pid][0] != "/" else "")
    return {"cg": cg, "quota": read1(home + "/cpu.cfs_quota_us"),
            "period": read1(home + "/cpu.cfs_period_us"), "home": home}


def throttled_now(pid, before):
    """A CPU limit on the workload's main thread other than the one it had."""
    line = cg_line(pid, pid, "cpu")
    if line is None:
        return False
    d = CPU_V1 + (line if line != "/" else "")
    q = read1(d + "/cpu.cfs_quota_us")
    return (q not in (None, "-1") and (q != before["quota"] or d != before["home"]) or
            os.path.exists(f"{BLKIO_V1}/lmig-throttle-{pid}"))


def restored(pid, before):
    now = placement(pid)
    left = [p for p in (f"{STATE_DIR}/throttle-{pid}", f"{CPU_V1}/lmig-throttle-{pid}",
                        f"{BLKIO_V1}/lmig-throttle-{pid}", f"{before['home']}/lmig-throttle-{pid}")
            if os.path.exists(p)]
    if now is None:
        return False, "workload gone"
    if left:
        return False, "left behind: " + " ".join(left)
    if (now["quota"], now["period"]) != (before["quota"], before["period"]):
        return False, f"quota {now['quota']}/{now['period']}, was {before['quota']}/{before['period']}"
    if now["cg"] != before["cg"]:
        return False, f"threads in {now['cg']}, were in {before['cg']}"
    return True, ""


class Samples:
    """The workload's --sample-fd lines: pages written so far, as they come."""

    def __init__(self, fd):
        self.pages = 0
        self.t = 0.0
        self.f = os.fdopen(fd, "r")
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        for line in self.f:
            try:
                self.pages = int(line.split()[1])
                self.t = time.monotonic()
            except (IndexError, ValueError):
                pass


def wait_resumed(pid, samples, t_kill, limit=1.0):
    """Seconds from the kill until the workload runs and writes again, or None."""
    t_end = t_kill + limit + 0.5
    while time.monotonic() < t_end:
        if proc_state(pid) not in ("T", "t", None):
            p0 = samples.pages
            while time.monotonic() < t_end:
                if samples.pages > p0 and proc_state(pid) not in ("T", "t"):
                    return samples.t - t_kill
                time.sleep(0.005)
            return None
        time.sleep(0.002)
    return None


def make_cgroup(pid, rng):
    """Half the workloads run alone in a cpu cgroup of their own with a preset quota."""
    d = f"{CPU_V1}/{TAG}-{pid}"
    try:
        os.mkdir(d)
        with open(d + "/cpu.cfs_period_us", "w") as f:
            f.write("100000")
        with open(d + "/cpu.cfs_quota_us", "w") as f:
            f.write(str(rng.choice([150000, 190000])))
        with open(d + "/cgroup.procs", "w") as f:
            f.write(str(pid))
        return d
    except OSError:
        return None


def drop_cgroup(d):
    if not d:
        return
    for _ in range(50):
        try:
            os.rmdir(d)
            return
        except OSError:
            time.sleep(0.02)


def live_run(rng, idx, side, phase, res):
    mem = scratch(f"k{idx}")
    out = scratch(f"k{idx}.out")
    sync = side == "recv" and phase == "commit"
    if sync:
        # On a disk, with the flushes: the commit takes long enough to be hit.
        out = f"/var/tmp/{TAG}-k{idx}.out"
    rs, ws = os.pipe()
    # A third of the workloads also write to a disk file: their throttle has a blkio part.
    disk = f"/var/tmp/{TAG}-k{idx}.dat" if rng.random() < 0.33 else None
    dp = Proc(["dirty", "--mem", mem, "--size", "8Mi", "--rate", "40M", "--pace", "cpu",
               "--no-progress", "--sample-fd", ws, "--sample-ms", "20", "--ready-fd", "3"] +
              (["--disk-write", disk, "--disk-rate", "16M"] if disk else []),
              ready=True, pass_fds=(ws,))
    os.close(ws)
    samples = Samples(rs)
    dp.port()
    own = make_cgroup(dp.pid, rng) if rng.random() < 0.5 else None
    before = placement(dp.pid)
    rx = Proc(["recv", "--listen", "127.0.0.1:0", "--out", out] + ([] if sync else ["--no-sync"]) +
              ["--timeout", "2", "--accept-timeout", "10", "--no-progress", "--ready-fd", "3"],
              ready=True)
    port = int(rx.port())
    fd = (0.4, 0) if rng.random() < 0.5 else (0, 0.4)
    relay = Relay(port, None, first_delay=fd if phase == "handshake" else (0, 0))
    st = {"round": None, "done": False}

    def on_line(s):
        if " round " in s:
            try:
                st["round"] = int(s.split(" round ")[1].split()[0])
            except ValueError:
                pass
        if s.rstrip().endswith("done"):
            st["done"] = True
    tx = Proc(["send", "--mem", mem, "--pid", dp.pid, "--freeze", "signal", "--tracker", "scan",
               "--throttle", "auto", "--bandwidth", "8M", "--to", f"127.0.0.1:{relay.port}",
               "--progress"], line_cb=on_line)
    cmd = " ".join(tx.args[1:])
    victim = tx if side == "send" else rx
    deadline = time.monotonic() + 30
    frozen = lambda: proc_state(dp.pid) in ("T", "t")

    def until(cond):
        while not cond() and time.monotonic() < deadline and tx.alive() and rx.alive():
            time.sleep(0.001)
    delay_replies = False
    if phase == "handshake":
        relay.first_seen.wait(10)
        time.sleep(rng.uniform(0, 0.3))
    elif phase == "round 0":
        until(lambda: st["round"] is not None)
        time.sleep(rng.uniform(0, 0.8))
    elif phase == "later rounds":
        # Mostly once the throttle is in force (it takes a few rounds to engage).
        until(lambda: (st["round"] or 0) >= 1)
        if rng.random() < 0.7:
            until(lambda: frozen() or throttled_now(dp.pid, before))
            t_end = time.monotonic() + rng.uniform(0, 0.5)
        else:
            t_end = time.monotonic() + rng.uniform(0, 3.0)
        until(lambda: frozen() or time.monotonic() > t_end)
    elif phase == "frozen":
        until(frozen)
        time.sleep(rng.uniform(0, 0.04))
    else:
        # The commit: verdict, CONFIRM, the receiver links OUT, FINAL on its way back.
        delay_replies = rng.random() < 0.5
        until(frozen)
        if delay_replies:
            relay.delay[1] = 0.3
        if side == "send" and rng.random() < 0.35:
            # Killed as soon as it printed its last line: it has the FINAL.
            until(lambda: st["done"])
        elif side == "recv":
            # Killed as soon as OUT is there: between the link and the FINAL.
            while (not os.path.exists(out) and receiving(rx.pid, out) and rx.alive()
                   and time.monotonic() < deadline):
                pass
        else:
            until(lambda: os.path.exists(out) or not receiving(rx.pid, out))
            time.sleep(rng.uniform(0, 0.002))
    # What phase the kill really lands in.
    if not victim.alive():
        res["phase"] = "over before the kill"
    elif st["done"]:
        res["phase"] = "commit (FINAL received)"
    elif os.path.exists(out):
        res["phase"] = "commit (FINAL in flight)"
    elif frozen():
        res["phase"] = "frozen"
    elif st["round"] is None or not receiving(rx.pid, out):
        res["phase"] = "handshake"
    elif st["round"] == 0:
        res["phase"] = "round 0"
    else:
        res["phase"] = "later rounds"
    if throttled_now(dp.pid, before):
        res["throttled-at-kill"] = 1
    t_kill = time.monotonic()
    victim.kill()
    res["killed"] = 1
    dt = wait_resumed(dp.pid, samples, t_kill)
    other = rx if victim is tx else tx
    oc = other.wait(12)
    took = (other.t_exit or time.monotonic()) - t_kill
    victim.wait(5)
    if oc is None:
        res["survivor-hung"] = 1
        res["note"] = f"{side} killed in {res['phase']}: the other end still runs 12 s later"
    elif took > 3.0:
        # The receiver's stall limit is --timeout 2.
        res["survivor-slow"] = 1
        res["note"] = (f"{side} killed in {res['phase']}: the other end exited {oc} only "
                       f"{took:.1f} s later: {' / '.join(other.err[-1:])}")
    relay.stop()
    tx.reap()
    rx.reap()
    txc = tx.p.returncode
    # Past the commit point (operations.md, "Guarantees"): the sender exited 0
    # (committed) or 3 (outcome unknown), or was itself killed after the
    # receiver's verdict -- then nothing resumes the source on its own.
    rx_verdict = any("confirm" in l for l in rx.err)
    past_point = txc in (0, 3) or (side == "send" and (st["done"] or rx_verdict
                                                         or os.path.exists(out)))
    if other is tx and oc not in (0, None) and not one_line_error(tx.err, "send"):
        res["not-one-line"] = 1
        res.setdefault("note", "send: " + " / ".join(tx.err[-3:]))
    if txc == 0 and not os.path.exists(out):
        res["sender-ok-no-image"] = 1
        res.setdefault("note", f"{side} killed in {res['phase']}: send exit 0, no {out}")
    if txc == 3 and not any("outcome unknown" in l for l in tx.err):
        res["not-one-line"] = 1
        res.setdefault("note", f"send exit 3 without 'outcome unknown': {' / '.join(tx.err[-2:])}")
    # The source: runs again unless the sender passed the commit point; never
    # next to a committed copy, and a paused one stays paused (>= 1 s).
    paused = frozen() and stays_paused(dp.pid, 1.0)
    if os.path.exists(out):
        if paused and not same_file(out, mem):      # (a running source has moved on)
            res["image-differs"] = 1
            res.setdefault("note", f"{side} killed in {res['phase']}: {out} committed and differs "
                           f"from the paused source; send exit {txc}")
        if not paused:
            res["resumed-next-to-copy"] = 1
            res.setdefault("note", f"{side} killed in {res['phase']}: {out} committed and the "
                           f"workload runs again ({dt and round(dt * 1000)} ms after the kill); "
                           f"send exit {txc}: {' / '.join(tx.err[-1:])}")
        elif txc == 3:
            res["unknown-paused"] = 1
        else:
            res["paused-after-commit"] = 1
    elif txc == 3 and not paused:
        res["unknown-resumed"] = 1
        res.setdefault("note", f"{side} killed in {res['phase']}: send exit 3 (outcome unknown) "
                       f"and the workload runs again")
        if frozen():
            os.kill(dp.pid, signal.SIGCONT)
    elif past_point and frozen():
        if not paused:
            res["workload-not-resumed"] = 1     # resumed later than 1 s: neither promise
            res.setdefault("note", f"{side} killed in {res['phase']}: no {out}, the workload "
                           f"resumed more than 1 s after the kill; send exit {txc}")
        else:
            # The commit point passed and no image: the operator resumes (exit 3,
            # or a sender killed after the verdict).
            res["paused-no-image"] = 1
    elif dt is None or dt > 1.0:
        res["workload-not-resumed"] = 1
        res.setdefault("note", f"{side} killed in {res['phase']}: workload state "
                       f"{proc_state(dp.pid)} 1 s later; send: {' / '.join(tx.err[-2:])}")
        os.kill(dp.pid, signal.SIGCONT)
    else:
        res["resume-ms-max"] = round(dt * 1000)
    if os.path.exists(out) and not past_point:
        res["committed-without-sender"] = 1
        res.setdefault("note", f"{side} killed in {res['phase']}: {out} committed, "
                       f"send exit {txc}, workload {proc_state(dp.pid)}: {' / '.join(tx.err[-1:])}")
    left = leftovers(out)
    if left:
        if side == "recv":
            res["partial-after-recv-kill"] = 1
        else:
            res["leftover-partial"] = 1
            res.setdefault("note", f"{' '.join(left)} left after the receiver exited {rx.p.returncode}")
    t0 = time.monotonic()
    ok, why = restored(dp.pid, before)
    while not ok and time.monotonic() - t0 < 1.0:
        time.sleep(0.01)
        ok, why = restored(dp.pid, before)
    if not ok:
        res["throttle-not-restored"] = 1
        res.setdefault("note", f"{side} killed in {res['phase']}: {why}")
        r = Proc(["throttle", "--restore"])
        r.wait(10)
        r.reap()
    res["cmd"] = cmd
    os.kill(dp.pid, signal.SIGCONT)
    dp.reap()
    drop_cgroup(own)
    for p in (mem, out) + tuple(os.path.join(os.path.dirname(out), n) for n in left) + \
            ((disk,) if disk else ()):
        rm(p)
    if disk:
        res["disk-writer"] = 1


def handshake_kill(rng, relay, tx, rx, side, res):
    """Kill one end while the relay holds the first bytes of the handshake."""
    victim = tx if side == "send" else rx
    relay.first_seen.wait(10)
    time.sleep(rng.uniform(0, 0.3))
    replied = any(relay.bytes.get((k, 1)) for k in range(8))
    if not victim.alive():
        res["phase"] = "over before the kill"
    else:
        res["phase"] = "handshake" if not replied or relay.first_delay[1] else "streaming"
    res["t_kill"] = time.monotonic()
    victim.kill()
    res["killed"] = 1


def stream_run(rng, idx, kind, side, phase, res):
    size = 12 << 20
    nstreams = 1 if kind == "pipe" else 2
    data = [rng.randbytes(size // nstreams) for _ in range(nstreams)]
    dest = None
    if kind == "pipe":
        rx = Proc(["pipe", "recv", "--listen", "127.0.0.1:0", "--ready-fd", "3",
                   "--accept-timeout", "10"], ready=True, collect_stdout=True)
    else:
        dest = Dest(nstreams)
        rx = Proc(["proxy", "recv", "--listen", "127.0.0.1:0", "--to", f"tcp:127.0.0.1:{dest.port}",
                   "--ready-fd", "3", "--accept-timeout", "10"], ready=True)
    port = int(rx.port())
    fd = (0.4, 0) if rng.random() < 0.5 else (0, 0.4)
    relay = Relay(port, None, first_delay=fd if phase == "handshake" else (0, 0))
    sts, conns, wts = [], [], []
    if kind == "pipe":
        r, w = os.pipe()
        tx = Proc(["pipe", "send", "--to", f"127.0.0.1:{relay.port}", "--bandwidth", "4M"], stdin=r)
        os.close(r)
        sts.append({})
        wts.append(threading.Thread(target=qemu_like_source, args=(w, data[0], sts[0]), daemon=True))
    else:
        tx = Proc(["proxy", "send", "--listen", "tcp:127.0.0.1:0", "--to", f"127.0.0.1:{relay.port}",
                   "--bandwidth", "4M", "--streams", nstreams, "--ready-fd", "3",
                   "--accept-timeout", "10"], ready=True)
        if phase == "handshake":
            # proxy send reports its port only after its handshake: kill from aside.
            early = threading.Thread(target=handshake_kill, args=(rng, relay, tx, rx, side, res))
            early.start()
        lport = tx.port()
        if phase == "handshake":
            early.join()
            lport = None        # no source connects to a proxy killed before it was ready
        for d in (data if lport else []):
            c = socket.create_connection(("127.0.0.1", int(lport)))
            conns.append(c)
            sts.append({})
            wts.append(threading.Thread(target=qemu_like_source, args=(c, d, sts[-1]), daemon=True))
    for t in wts:
        t.start()
    cmd = " ".join(tx.args[1:])
    victim = tx if side == "send" else rx
    deadline = time.monotonic() + 20
    src_done = lambda: all("sent" in s or "error" in s for s in sts)
    if "phase" in res:
        pass                    # killed already, in its handshake
    elif phase == "handshake":
        relay.first_seen.wait(10)
        time.sleep(rng.uniform(0, 0.3))
    elif phase == "streaming":
        relay.first_seen.wait(10)
        # proxy send takes the source's bytes into its buffers faster than pipe send.
        time.sleep(rng.uniform(0.3, 1.2) if kind == "proxy" else rng.uniform(0.5, 2.5))
    else:
        # The source wrote everything; the last blocks and the confirmation are under way.
        delay = rng.random() < 0.5
        while not src_done() and time.monotonic() < deadline and victim.alive():
            time.sleep(0.002)
        if delay:
            relay.delay[1] = 0.3
        time.sleep(rng.uniform(0, 0.05))
    s2r = sum(v for (k, d), v in relay.bytes.items() if d == 0)
    if "phase" in res:
        pass
    elif not victim.alive():
        res["phase"] = "over before the kill"
    elif phase == "handshake" and s2r < 4096 and not any(relay.bytes.get((k, 1)) for k in range(8)):
        res["phase"] = "handshake"
    elif phase == "handshake":
        res["phase"] = "streaming"
    elif not src_done():
        res["phase"] = "streaming"
    else:
        res["phase"] = "end"
    if "t_kill" not in res:
        res["t_kill"] = time.monotonic()
        victim.kill()
        res["killed"] = 1
    t_kill = res.pop("t_kill")
    other = rx if victim is tx else tx
    oc = other.wait(12)
    took = (other.t_exit or time.monotonic()) - t_kill
    if oc is None:
        res["survivor-hung"] = 1
        res["note"] = f"{kind} {side} killed in {res['phase']}: the other end still runs 12 s later"
    elif took > 2.0:
        res["survivor-slow"] = 1
        res["note"] = (f"{kind} {side} killed in {res['phase']}: the other end exited {oc} only "
                       f"{took:.1f} s later: {' / '.join(other.err[-1:])}")
    # The source (QEMU) must be let go: its writes fail or it finished, within 2 s.
    for t in wts:
        t.join(max(0.0, t_kill + 2.0 - time.monotonic()))
    if any(t.is_alive() for t in wts):
        res["source-not-released"] = 1
        res.setdefault("note", f"{kind} {side} killed in {res['phase']}: the source's writes "
                       "still block 2 s later")
    other.wait(10)
    relay.stop()
    tx.reap()
    rx.reap()
    for c in conns:
        c.close()
    txc = tx.p.returncode
    if other is tx and txc not in (0, None) and not one_line_error(tx.err, f"{kind} send"):
        res["not-one-line"] = 1
        res.setdefault("note", f"{kind} send: " + " / ".join(tx.err[-3:]))
    if kind == "pipe":
        got = [rx.out]
        clean = [True]          # stdout of a dead or failed receiver ends like any pipe
    else:
        dest.close()
        got = [dest.got.get(i, b"") for i in range(nstreams)]
        clean = [dest.clean.get(i, False) for i in range(nstreams)]
    if any(g != d[:len(g)] for g, d in zip(got, data)):
        res["delivered-wrong"] = 1
    whole = all(g == d and c for g, d, c in zip(got, data, clean))
    if txc == 0 and not whole:
        res["sender-ok-no-image"] = 1
        res.setdefault("note", f"{kind} {side} killed in {res['phase']}: send exit 0, the "
                       "destination did not get every stream whole")
    if whole and txc != 0:
        # The stream path has no confirmed commit: the documented window, counted apart.
        res["delivered-sender-failed"] = 1
        res.setdefault("note", f"{kind} {side} killed in {res['phase']}: the destination got every "
                       f"stream whole and ended cleanly, send exit {txc}")
    res["cmd"] = cmd


def plan(n, rng):
    """n kills spread over (kind, side, phase): half live, a quarter each pipe and proxy."""
    cells = [("live", s, p) for p in LIVE_PHASES for s in ("send", "recv")]
    scells = [(k, s, p) for k in ("pipe", "proxy") for p in STREAM_PHASES for s in ("send", "recv")]
    out = []
    nl = n // 2
    for i in range(nl):
        out.append(cells[i % len(cells)])
    for i in range(n - nl):
        out.append(scells[i % len(scells)])
    rng.shuffle(out)
    return out


def run_one(rng, idx, cell):
    kind, side, phase = cell
    res = {"kind": kind, "side": side, "target": phase}
    try:
        if kind == "qemu":
            qemu_run(rng, idx, side, res)
        elif kind == "live":
            live_run(rng, idx, side, phase, res)
        else:
            stream_run(rng, idx, kind, side, phase, res)
    except Exception as e:  # the campaign's own trouble: reported, never hidden
        res["error"] = f"{type(e).__name__}: {e}"
    return res


QMIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "selftests", "qemu",
                    "qmig.py")


def qemu_run(rng, idx, side, res):
    """A real QEMU guest migrated through lmig proxy, one proxy SIGKILLed mid-way."""
    import json
    import shutil
    import subprocess
    from common import LMIG
    work = scratch(f"qemu-{idx}")
    os.makedirs(work, exist_ok=True)
    after = round(rng.uniform(0.3, 3.0), 2)
    args = ["python3", QMIG, "--name", f"{TAG}-q{idx}", "--transport", "proxy", "--work", work,
            "--lmig", LMIG, "--max-bandwidth", str(16 << 20), "--kill-after", str(after),
            "--kill-which", f"proxy-{side}", "--timeout", "60", "--boot-timeout", "180"]
    res["cmd"] = " ".join(args[1:])
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired:
        res["error"] = "qmig.py still running after 400 s"
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if p.returncode == 4:
        res["skipped"] = p.stderr.strip().splitlines()[-1:] or ["no QEMU"]
        return
    line = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not line:
        res["error"] = f"qmig.py exit {p.returncode}: {p.stderr.strip()[-300:]}"
        return
    r = json.loads(line[-1])
    res["killed"] = 1
    res["phase"] = f"QEMU {r.get('killed_while', '?')}"
    res["qemu"] = {k: r.get(k) for k in ("killed_while", "killed_at_ram_transferred", "status",
                                           "src_status", "src_tick_after_failure",
                                           "src_tick_later", "dst_status", "noticed_s",
                                           "proxy_send_exit", "proxy_recv_exit", "qemu_error")}
    # The source QEMU noticed and runs its guest on: the guest's counter advances.
    if (r.get("status") != "failed" or r.get("src_status") != "running" or
            (r.get("src_tick_later") or 0) < (r.get("src_tick_after_failure") or 0) + 5):
        res["workload-not-resumed"] = 1
        res["note"] = f"QEMU source after the kill: {res['qemu']}"
    elif r.get("noticed_s") is not None:
        res["resume-ms-max"] = round(r["noticed_s"] * 1000)
    if r.get("dst_status") == "running":
        res["committed-without-sender"] = 1
        res.setdefault("note", f"destination QEMU runs the guest: {res['qemu']}")
    other = "proxy_recv_exit" if side == "send" else "proxy_send_exit"
    if r.get(other) in (0, None, "running"):
        res["survivor-hung" if r.get(other) == "running" else "sender-ok-no-image"] = 1
        res.setdefault("note", f"the other lmig proxy: {r.get(other)}")

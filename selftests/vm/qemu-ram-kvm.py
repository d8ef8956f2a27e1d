#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""lmig qemu send/recv on a QEMU guest under real KVM, with one dirty
tracker; run inside the VM by qemu-ram-kvm.sh (nested KVM: kvm_amd with
shadow paging).  One JSON line of what happened.

The guest is selftests/qemu/smp/smpguest.c (mkguest.sh --smp) with one
vCPU: it fills --touch MiB of its RAM from 8 MiB on, then rewrites
--rate MB/s of it, one word a page, a slice every 100 ms, printing
"lmig-guest tick N" after each (spinning on the TSC between slices:
halted, its timer is not heard of again after a nested migration, see
selftests/vm/README.md).  Its RAM is one memory-backend-memfd,share=on,
which lmig reads as /proc/QEMU_PID/fd/N and tracks with --tracker.  The
destination QEMU (-incoming defer -S) has a memory-backend-file of the
same size in /dev/shm.

lmig qemu send runs with --bandwidth 8M --compress none --throttle off
(--send-args): the first round carries the guest's 24 MiB for about
three seconds, in which the guest dirties pages the next round must
resend, and a tracker that missed a write leaves the destination's RAM
different from the source's.  The guest dirties a quarter of what the
link carries: each round also has a cost of its own (a few hundred ms
under TCG here), and with a guest dirtying half of it (4 MB/s) the
predicted downtime hovered about the 300 ms budget on a loaded host
(28 rounds, 72 s, once).  Once both lmig sides exited: the source QEMU
(postmigrate) and the destination (paused by -S) are both stopped, and
the source's memfd and the destination's file are hashed, with the pages
that are not zero counted; then `cont`, and the destination's ticks must
continue the source's and advance.

The line also has lmig qemu send's progress ("progress": [seconds, round,
dirty MB/s, predicted downtime ms] a round) and, for kmod, lmig.ko's
counts of the session ("kmod_stats": harvests, pages reported, those
from notifiers, presence changes and rescans, notifier events, probe
hits missed), for the log.

The source QEMU runs on CPU 0 of the VM (its vCPU spins there), lmig and
the destination wherever the scheduler puts them.  Everything started is
killed and every file made removed.  Exit status 0 once it got as far as
a result (the line says what went wrong), 1 on a harness error.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "selftests", "qemu"))
from qmig import QMP, QMPError, Proc  # noqa: E402
from qram import Side, outcome, resume_and_follow, sha_pages  # noqa: E402

PAGE = 4096


class KvmSide(Side):
    """qram.py's Side (ticks, status, stop) for a QEMU under KVM."""

    def __init__(self, a, name, ram, incoming=False):
        self.name = name
        self.work = a.work
        argv = [a.qemu, "-accel", "kvm", "-smp", "1", "-m", "%dM" % a.mem,
                "-display", "none", "-nodefaults", "-no-reboot", "-name", name,
                "-object", ram + ",id=ram0", "-machine", "memory-backend=ram0",
                "-serial", "file:" + os.path.join(a.work, name + ".serial"),
                "-qmp", "unix:%s,server=on,wait=off" % os.path.join(a.work, name + ".qmp"),
                "-qmp", "unix:%s,server=on,wait=off" % os.path.join(a.work, name + "-lmig.qmp")]
        if incoming:
            argv += ["-incoming", "defer", "-S"]
        else:
            argv = ["taskset", "-c", "0"] + argv + [
                "-kernel", a.guest, "-append",
                "guest_touch=%d guest_rate=%d guest_tick=100 guest_hlt=0" % (a.touch, a.rate)]
        self.proc = Proc(name, argv, a.work)
        self.qmp = QMP(os.path.join(a.work, name + ".qmp"))
        self.lmig_qmp = os.path.join(a.work, name + "-lmig.qmp")

    def ticks(self):
        """The counters of complete "lmig-guest tick N" lines: a QEMU stopped
        in the middle of one leaves a part ("lmig-guest tick 1" of 123),
        which its destination finishes."""
        try:
            with open(os.path.join(self.work, self.name + ".serial"), "rb") as f:
                text = f.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return []
        return [int(m.group(1)) for m in re.finditer(r"^lmig-guest tick (\d+)\n", text, re.M)]


class KmodStats(threading.Thread):
    """lmig.ko's own counts of the session (its debugfs file, gone with
    the session: read every 0.2 s, the last kept) and its probes' missed
    hits, for the log: what made a harvest report a page."""

    DBG = "/sys/kernel/debug/lmig"

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.last = {}
        self.missed = []

    def probes(self):
        try:
            with open(os.path.join(self.DBG, "probes")) as f:
                m = re.search(r"^missed (\d+)", f.read(), re.M)
                return int(m.group(1)) if m else -1
        except OSError:
            return -1

    def run(self):
        self.missed.append(self.probes())
        while not self.stop.wait(0.2):
            try:
                names = [n for n in os.listdir(self.DBG) if n != "probes"]
            except OSError:
                return
            for n in names:
                try:
                    with open(os.path.join(self.DBG, n)) as f:
                        kv = dict(ln.split(None, 1) for ln in f.read().splitlines() if " " in ln)
                    self.last = {k: int(v) for k, v in kv.items() if v.strip().isdigit()}
                except (OSError, ValueError):
                    pass

    def result(self):
        self.stop.set()
        self.join()
        self.missed.append(self.probes())
        keep = ("harvests", "dirty", "notified", "presence", "rescans", "events")
        r = {k: self.last[k] for k in keep if k in self.last}
        r["probes_missed"] = self.missed[-1] - self.missed[0] if -1 not in self.missed else -1
        return r


def progress(a):
    """lmig qemu send's progress, a line a round (stderr is no terminal):
    [seconds, round, dirty MB/s, predicted downtime ms] each."""
    out = []
    with open(os.path.join(a.work, "migrate-send.err"), errors="replace") as f:
        for ln in f:
            m = re.match(r"([\d.]+) s  round (\d+).*  dirty ([\d.]+) MB/s .*"
                         r"predicted downtime (\d+) ms", ln)
            if m:
                out.append([float(m.group(1)), int(m.group(2)), float(m.group(3)),
                            int(m.group(4))])
    return out


def lmig_pair(a, src, dst):
    """lmig qemu recv (its port through --ready-fd), then lmig qemu send."""
    rfd, wfd = os.pipe()
    with open(os.path.join(a.work, "migrate-recv.out"), "wb") as o, \
            open(os.path.join(a.work, "migrate-recv.err"), "wb") as e:
        recv = subprocess.Popen([a.lmig, "qemu", "recv", "--qmp", dst.lmig_qmp, "--listen",
                                 "127.0.0.1:0", "--ready-fd", str(wfd), "--json"],
                                stdout=o, stderr=e, pass_fds=(wfd,), start_new_session=True)
    os.close(wfd)
    port = os.read(rfd, 32).decode().strip()
    os.close(rfd)
    with open(os.path.join(a.work, "migrate-send.out"), "wb") as o, \
            open(os.path.join(a.work, "migrate-send.err"), "wb") as e:
        send = subprocess.Popen([a.lmig, "qemu", "send", "--qmp", src.lmig_qmp, "--to",
                                 "127.0.0.1:" + (port or "1"), "--tracker", a.tracker, "--json",
                                 "--progress"] + a.send_args.split(),
                                stdout=o, stderr=e, start_new_session=True)
    return recv, send


def migrate(a, src, res):
    shm = "/dev/shm/lmig-qram-kvm-%d-%s" % (os.getpid(), a.tracker)
    dst = KvmSide(a, "dst", "memory-backend-file,size=%dM,mem-path=%s,share=on" % (a.mem, shm),
                  incoming=True)
    try:
        t0 = time.monotonic()
        res["src_tick_at_send"] = src.last_tick()
        stats = KmodStats() if a.tracker == "kmod" and os.path.isdir(KmodStats.DBG) else None
        if stats:
            stats.start()
        recv, send = lmig_pair(a, src, dst)
        s = outcome(a, "migrate", send, "send", a.timeout)
        if stats:
            res["kmod_stats"] = stats.result()
        r = outcome(a, "migrate", recv, "recv", 30)
        res.update(secs=round(time.monotonic() - t0, 2), send_exit=s["exit"],
                   recv_exit=r["exit"], recv_status=r["json"].get("status", ""),
                   src_migration=src.mig(), src_status=src.status(),
                   dst_status_before_cont=dst.status(), src_last_tick=src.last_tick())
        res["progress"] = progress(a)
        if s["exit"] or r["exit"]:
            res["send_err"] = " ".join(s["stderr"].split())[-300:]
            res["recv_err"] = " ".join(r["stderr"].split())[-300:]
        # lmig qemu send's report, one level with keys of their own.
        for k in ("status", "source", "qemu_status", "total_ms", "qemu_downtime_ms",
                  "qemu_total_ms", "pause_ms", "switch_ms", "device_bytes", "bytes_wire"):
            res["send_" + k] = s["json"].get(k, "")
        blocks = s["json"].get("blocks") or []
        res["blocks"] = len(blocks)
        for k in ("status", "tracker", "size", "rounds", "bytes_wire", "pages_zero",
                  "downtime_ms", "final_harvest_ms"):
            res["block_" + k] = blocks[0].get(k, "") if blocks else ""
        if s["exit"] == 0 and len(blocks) == 1 and blocks[0].get("path"):
            # Both stopped: the source in postmigrate, the destination by -S.
            t1 = time.monotonic()
            res["src_sha"], res["src_nonzero_pages"] = sha_pages(blocks[0]["path"], a.mem << 20)
            res["dst_sha"], res["dst_nonzero_pages"] = sha_pages(shm, a.mem << 20)
            res["hash_secs"] = round(time.monotonic() - t1, 2)
            res["src_status_after_hash"] = src.status()
            res["dst_status_after_hash"] = dst.status()
            resume_and_follow(dst, res)
    finally:
        dst.stop()
        if os.path.exists(shm):
            os.unlink(shm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", required=True, help="smpguest.elf (mkguest.sh --smp)")
    ap.add_argument("--tracker", required=True)
    ap.add_argument("--lmig", default=os.path.join(REPO, "user", "lmig"))
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    ap.add_argument("--mem", type=int, default=40, help="guest RAM, MiB")
    ap.add_argument("--touch", type=int, default=24, help="MiB the guest fills and rewrites")
    ap.add_argument("--rate", type=int, default=2, help="MB/s it rewrites")
    ap.add_argument("--send-args", default="--bandwidth 8M --compress none --throttle off",
                    help="more options of lmig qemu send")
    ap.add_argument("--timeout", type=float, default=90, help="s for the migration")
    ap.add_argument("--tag", default="qram")
    a = ap.parse_args()
    a.work = os.path.join(os.environ.get("TMPDIR", "/tmp"), "lmig-qram-kvm.%d" % os.getpid())
    os.mkdir(a.work)
    res = {"tracker": a.tracker, "mem_mib": a.mem, "touch_mib": a.touch, "rate_mbs": a.rate,
           "send_args": a.send_args,
           # What the guest writes a tick (smpguest.c: whole pages a slice of 100 ms).
           "pages_per_tick": a.rate * 1000000 // PAGE * 100 // 1000}
    t0 = time.monotonic()
    src = None
    rc = 0
    try:
        src = KvmSide(a, "src", "memory-backend-memfd,size=%dM,share=on" % a.mem)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(src.ticks()) < 3:
            if not src.proc.alive():
                raise QMPError("the source QEMU exited: " + src.proc.text())
            time.sleep(0.1)
        if len(src.ticks()) < 3:
            raise QMPError("no guest tick within 60 s")
        res["boot_s"] = round(time.monotonic() - t0, 2)
        migrate(a, src, res)
    except (QMPError, OSError, subprocess.SubprocessError) as e:
        res["harness_error"] = str(e)
        rc = 1
    finally:
        if src:
            src.stop()
        shutil.rmtree(a.work, ignore_errors=True)
    res["total_s"] = round(time.monotonic() - t0, 2)
    print("%s %s %s" % (a.tag, a.tracker, json.dumps(res, separators=(",", ":"))), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

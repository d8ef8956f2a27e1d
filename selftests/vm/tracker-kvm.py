#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""What a dirty-page harvest costs on a QEMU guest under real KVM, run in the
VM by tracker-kvm.sh (nested KVM: kvm_amd with shadow paging).

The guest is selftests/qemu/smp/smpguest.c (mkguest.sh --smp) with one
vCPU: it fills --touch MiB of its RAM, then rewrites it in order, one word
per page, RATE MB/s in slices every TICK ms, and prints "lmig-guest tick N"
after each slice.  Its RAM is a shared memfd (memory-backend-memfd,
share=on), tracked as /proc/QEMU_PID/fd/N; whether that memfd is backed by
4 KiB or 2 MiB folios is the kernel's shmem_enabled, which tracker-kvm.sh
sets: this script says what it found (ShmemHugePages and the PMD-mapped
part of QEMU's mapping).

Two guests in turn, each with every tracker of --trackers:

  paced  the guest writes --rate MB/s and halts between slices: the dirty
         rate each tracker reports, next to the guest's own count of the
         pages it wrote in the same window (its ticks times the pages of a
         slice);
  flat   the guest writes as fast as its vCPU runs (RATE far above what it
         reaches, so it never sleeps): the guest's write rate while each
         tracker harvests, next to its rate in an untracked window of the
         same length right after (the cost the tracker adds to the guest).

QEMU runs on CPU 0 of the VM, lmig on CPU 1.  For each run of `lmig
dirtyrate --tracker T --interval I --count C --json` the lines are

  trk MODE backing KEY=VALUE...          what the memfd is backed by
  trk MODE guest KEY=VALUE...            the guest's ready line, boot time
  trk MODE run TRACKER JSON              {tracker, ok, harvest_ms,
      harvest_cpu_ms, reported_mbps, dirty_pages (per interval),
      touch_pages, guest_mbps, untracked_mbps, lmig_cpu_s, wall_s, error}

reported_mbps is dirty pages over the measured time (tracked_s: the
intervals and their harvests, after lmig's start); guest_mbps is what the
guest wrote in those last tracked_s seconds of the run (its ticks, sampled
every 0.1 s), untracked_mbps in as long a window right after the run.  A flat
guest rewrites its touch_pages many times an interval, so a tracker that
sees every write reports at least touch_pages each interval.  lmig_cpu_s
is the whole run's (its start hashes the whole RAM).
  trk error TEXT                         the harness failed

TRACKER is a tracker name (auto: what --tracker auto picks, and why:
tracker_why, with the cost of each calibration harvest), or NAME:any for the soft-dirty or kmod tracker
with --object-writes any (the default of lmig send; otherwise "mapped":
QEMU writes its guest's RAM only through mappings).
"""
import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time

PAGE = 4096


def say(*words):
    print("trk " + " ".join(str(w) for w in words), flush=True)


def lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().split("\n")
    except OSError:
        return []


def ticks(path):
    """The number of complete tick lines the guest printed."""
    return sum(1 for ln in lines(path) if re.match(r"lmig-guest tick \d+$", ln))


def per_tick(rate, tick_ms):
    """Pages a slice, as smpguest.c computes them."""
    return rate * 1000000 // PAGE * tick_ms // 1000


class Guest:
    def __init__(self, a, work, mode, rate, tick_ms):
        self.con = os.path.join(work, mode + ".con")
        self.rate, self.tick_ms = rate, tick_ms
        self.pages = per_tick(rate, tick_ms)
        argv = ["taskset", "-c", "0", a.qemu, "-accel", "kvm", "-smp", "1", "-m", str(a.mem),
                "-object", "memory-backend-memfd,id=mem,size=%dM,share=on%s" % (
                    a.mem, ",hugetlb=on,hugetlbsize=2M" if a.hugetlb else ""),
                "-machine", "memory-backend=mem", "-display", "none", "-nodefaults",
                "-no-reboot", "-serial", "file:" + self.con, "-kernel", a.guest,
                "-append", "guest_rate=%d guest_touch=%d guest_tick=%d guest_hlt=%d" %
                (rate, a.touch, tick_ms, 1 if mode == "paced" else 0)]
        self.err = open(os.path.join(work, mode + ".err"), "wb")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=self.err, stderr=self.err,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.p.pid

    def wait_ready(self, timeout):
        end = time.monotonic() + timeout
        while ticks(self.con) < 2:
            if self.p.poll() is not None:
                raise RuntimeError("QEMU exited with status %d" % self.p.returncode)
            if time.monotonic() > end:
                raise RuntimeError("no guest tick within %d s" % timeout)
            time.sleep(0.1)
        return time.monotonic() - self.t0

    def memfd(self):
        d = "/proc/%d/fd" % self.pid
        for fd in os.listdir(d):
            try:
                if os.readlink(os.path.join(d, fd)).startswith("/memfd:memory-backend-memfd"):
                    return os.path.join(d, fd)
            except OSError:
                pass
        raise RuntimeError("QEMU %d has no memfd:memory-backend-memfd" % self.pid)

    def ready(self):
        r = [ln for ln in lines(self.con) if ln.startswith("lmig-guest ready")]
        return r[0].replace(" ", "_") if r else "none"

    def sample(self):
        """Every 0.1 s, (time, ticks) into self.samples, until stop()."""
        self.samples = [(time.monotonic(), ticks(self.con))]
        self.done = threading.Event()

        def run():
            while not self.done.wait(0.1):
                self.samples.append((time.monotonic(), ticks(self.con)))
        self.sampler = threading.Thread(target=run, daemon=True)
        self.sampler.start()

    def at(self, t):
        """Ticks at time t, interpolated between the samples around it."""
        s = list(self.samples)
        for (t0, k0), (t1, k1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return k0 + (k1 - k0) * (t - t0) / max(t1 - t0, 1e-6)
        return s[0][1] if t < s[0][0] else s[-1][1]

    def mark(self, t=None):
        t = time.monotonic() if t is None else t
        return self.at(t), t

    def mbps(self, m0, m1):
        """MB/s the guest wrote between two marks (its ticks)."""
        return (m1[0] - m0[0]) * self.pages * PAGE / 1e6 / max(m1[1] - m0[1], 1e-6)

    def stop(self):
        if getattr(self, "done", None):
            self.done.set()
            self.sampler.join()
        if self.p.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.p.wait()
        self.err.close()


def backing(pid):
    """How the guest's RAM is backed: huge shmem pages, and QEMU's PMD mappings of it."""
    mi = {}
    with open("/proc/meminfo") as f:
        for ln in f:
            k, v = ln.split(":", 1)
            mi[k] = int(v.split()[0])
    pmd, size, cur = 0, 0, False
    with open("/proc/%d/smaps" % pid) as f:
        for ln in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", ln):
                cur = "memfd:memory-backend-memfd" in ln
            elif cur and ln.startswith("Size:"):
                size += int(ln.split()[1])
            elif cur and (ln.startswith("ShmemPmdMapped:") or ln.startswith("FilePmdMapped:")):
                pmd += int(ln.split()[1])
    try:
        with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
            en = re.search(r"\[(\w+)\]", f.read()).group(1)
    except (OSError, AttributeError):
        en = "none"
    return "shmem_enabled=%s shmem_huge_kb=%d pmd_mapped_kb=%d mapping_kb=%d" % (
        en, mi.get("ShmemHugePages", 0), pmd, size)


def dirtyrate(a, g, mem, name):
    """One lmig dirtyrate run: its JSON, its CPU time and wall time."""
    tracker, _, ow = name.partition(":")
    argv = ["taskset", "-c", "1", a.lmig, "dirtyrate", "--mem", mem, "--pid", str(g.pid),
            "--tracker", tracker, "--interval", str(a.interval), "--count", str(a.count),
            "--json"]
    if tracker != "scan":
        argv += ["--object-writes", ow or "mapped"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=a.interval * a.count / 1000 + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    wall = time.monotonic() - t0
    # Children's rusage after the wait: taskset execs lmig, one process.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        j = json.loads(out.decode() or "{}")
    except ValueError:
        j = {}
    if p.returncode != 0 and not j.get("error"):
        j["error"] = " ".join(err.decode(errors="replace").split())[-300:]
    return j, ru.ru_utime + ru.ru_stime, wall


def run_mode(a, work, mode):
    if mode == "paced":
        g = Guest(a, work, mode, a.rate, 100)
    else:
        g = Guest(a, work, mode, a.flat_rate, 10)
    try:
        boot = g.wait_ready(a.boot_timeout)
        say(mode, "guest", "boot_s=%.1f" % boot, "pid=%d" % g.pid, g.ready())
        mem = g.memfd()
        say(mode, "backing", backing(g.pid))
        win = a.interval * a.count / 1000
        touch_pages = a.touch * 1024 * 1024 // PAGE
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0 = cpu0.ru_utime + cpu0.ru_stime
        g.sample()
        for name in a.trackers.replace(",", " ").split():
            j, cpu, wall = dirtyrate(a, g, mem, name)
            t_end = time.monotonic()
            lcpu, cpu0 = cpu - cpu0, cpu
            # The tracked part: the intervals and their harvests, which end
            # as lmig does (its report and exit take a few ms); its start
            # and the hashing of the whole RAM before them are not.
            pages = [j[k] for k in sorted(j) if k.startswith("dirty_pages_")]
            secs = (sum(pages) * PAGE / 1e6 / j["dirty_mbps"]
                    if pages and j.get("dirty_mbps") else win)
            m0, m1 = g.mark(t_end - secs), g.mark(t_end)
            gm = g.mbps(m0, m1)
            # Then the same length untracked, right after (and a sample
            # past its end to interpolate from).
            time.sleep(secs + 0.35)
            u0, u1 = g.mark(t_end + 0.2), g.mark(t_end + 0.2 + secs)
            r = {"tracker": j.get("tracker", name), "ok": j.get("status") == "completed",
                 "harvest_ms": j.get("harvest_ms"), "harvest_cpu_ms": j.get("harvest_cpu_ms"),
                 "reported_mbps": j.get("dirty_mbps"), "guest_mbps": round(gm, 2),
                 "dirty_pages": pages, "touch_pages": touch_pages,
                 "untracked_mbps": round(g.mbps(u0, u1), 2), "lmig_cpu_s": round(lcpu, 3),
                 "wall_s": round(wall, 2), "tracked_s": round(secs, 2)}
            if j.get("error"):
                r["error"] = j["error"]
            if j.get("tracker_why"):
                r["tracker_why"] = j["tracker_why"]
            say(mode, "run", name, json.dumps(r, sort_keys=True))
            if g.p.poll() is not None:
                raise RuntimeError("QEMU exited during %s" % name)
    finally:
        g.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", required=True)
    ap.add_argument("--lmig", required=True)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--work", required=True)
    ap.add_argument("--mem", type=int, default=128, help="guest RAM, MiB")
    ap.add_argument("--touch", type=int, default=32, help="MiB the guest rewrites")
    ap.add_argument("--rate", type=int, default=4, help="paced guest, MB/s")
    ap.add_argument("--flat-rate", type=int, default=4000, help="flat guest's RATE (never reached)")
    ap.add_argument("--interval", type=int, default=1000)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--modes", default="paced flat")
    ap.add_argument("--trackers", default="auto kmod soft-dirty soft-dirty:any scan uffd")
    ap.add_argument("--hugetlb", action="store_true",
                    help="memory-backend-memfd,hugetlb=on: 2 MiB hugetlbfs pages")
    ap.add_argument("--boot-timeout", type=int, default=90)
    a = ap.parse_args()
    try:
        for mode in a.modes.replace(",", " ").split():
            run_mode(a, a.work, mode)
    except (RuntimeError, OSError) as e:
        say("error", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Migrate a live QEMU guest once and report what happened as one JSON line.

Boots the test guest (Debian's kernel and the initramfs of mkguest.sh,
whose /init writes memory and prints "lmig-guest tick N" on the serial
port every 100 ms) in a source QEMU, starts a destination QEMU waiting for
the incoming migration, joins them through the chosen transport, migrates
over QMP and checks the outcome:

  tcp        native: migrate-incoming tcp:ADDR:PORT, migrate tcp:ADDR:PORT
  unix       native: migrate-incoming unix:DST, migrate unix:DST
  exec       native: migrate "exec:cat >FIFO", -incoming "exec:cat FIFO"
  pipe       migrate "exec:lmig pipe send --to ADDR:PORT",
             -incoming "exec:lmig pipe recv --listen ADDR:PORT"
  proxy      lmig proxy recv --listen ADDR:PORT --to unix:DST and
             lmig proxy send --listen unix:SRC --to ADDR:PORT;
             migrate-incoming unix:DST, migrate unix:SRC

The JSON line holds QEMU's numbers (status, total_time_ms, downtime_ms,
setup_time_ms, ram_transferred, multifd_bytes, mbps), the destination's
run state, the guest's tick counter on each side (source when the
migration started, destination's first and last tick seen), and, for lmig
transports, each lmig process's exit status and its --json report;
with --count-dev, the bytes an interface sent meanwhile (dev_bytes);
after a completed migration, what the guest's pause looked like on the
host's clock, from the source's last tick line to the destination's first
(console_gap_ms; guest_pause_ms: that gap less the guest's own tick
periods between them, see console_gap(); guest_tick= in --guest-append
sets the period); and QEMU's bandwidth estimate while the migration was
active, sampled with every query-migrate (mbps_active_median, _max).  With
--kill-after S it SIGKILLs `lmig proxy send` (--kill-which proxy-recv: the
receiving one) S seconds into the migration
and reports whether the source noticed (status failed) and still runs
(its counter advancing).  A destination that prints no tick is looked
at: dst_cpus, dst_rip (twice), dst_regs and dst_lapic (QEMU under TCG
can leave it stuck after the switch, native migration or not).  It only
reports: the caller judges.  Exit status
0 when the run went as far as a result (whatever the result), 4 when QEMU
or the kernel is missing (the reason on stderr), 1 on a harness error.

With --lmig-qmp the source QEMU gets a second QMP socket, passed to
`lmig pipe send` / `lmig proxy send` as --qmp (lmig's convergence
controller), and the vCPU threads' CPU cgroups and limits are watched:
before the migration (vcpu_cpu_before), every change seen during it
(limits_seen: when, how many threads moved, the quota), after lmig exited
(vcpu_cpu_after, state_file_after).  --kill-when-limited SIGKILLs
`lmig proxy send` (that process only) once its limit holds a vCPU thread
and reports how long until the threads were free again
(freed_after_kill_s); with --kill-guard its guard process goes first, and
`lmig throttle --restore` then frees them (throttle_restore_exit,
vcpu_cpu_after_restore).  --cancel-when-limited cancels the migration
then instead, and reports how long until lmig freed them
(freed_after_cancel_s).  --bound S cancels a migration still running
after S s (bounded: true) and reports how far it got: a native run beside
one through lmig (--bound-file: the bound is written there once known).

--capability NAME turns a migration capability on at both ends
(auto-converge).  While QEMU migrates it notes how far it got, for a run
the bound cancels: last_active (passes, remaining, auto-converge's
throttle), pass_left_min (the least any pass from the second on left
dirty), dirty_pages_rate_max.  --smp N gives the guest N vCPUs (and a
second serial port for mkguest.sh --smp's guest, --initrd none);
--settle S lets it run S s before migrating; a guest printing
"lmig-guest compute N ops/s" (guest.c's guest_compute=1, or the guest
without an OS) gets compute_before_ops, compute_during_ops and
compute_pct (during as a % of before).  A guest whose writer computes
(guest.c's guest_work= or guest_busy=, in --guest-append) prints its busy
share and rate once a second: writer_busy_before_pct and
writer_mbs_before (the last 5 s before the migration), and during it
writer_busy_during_pct, writer_mbs_during and writer_mbs_during_min.
downtime_limit_ms is QEMU's, whether --downtime-limit set it or not.

Every process it starts (QEMU, lmig) is killed and every file it made
outside --work removed before it exits.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class QMPError(Exception):
    pass


class QMP:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QMPError("cannot connect to QMP at " + path)
                time.sleep(0.05)
        self.buf = b""
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError("no QMP greeting: %r" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise QMPError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                continue
            if "error" in r:
                raise QMPError("%s: %s" % (name, r["error"].get("desc", r["error"])))
            return r.get("return")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def ns_prefix(ns):
    return ["ip", "netns", "exec", ns] if ns else []


class Proc:
    """A process of ours: started in its own process group, killed at the end."""

    def __init__(self, name, argv, work, stdout=None):
        self.name = name
        self.out_path = stdout or os.path.join(work, name + ".out")
        self.err_path = os.path.join(work, name + ".err")
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                      start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()

    def text(self, which="err", limit=600):
        try:
            with open(self.err_path if which == "err" else self.out_path, "rb") as f:
                return f.read().decode(errors="replace")[-limit:]
        except OSError:
            return ""


class VM:
    def __init__(self, name, a, incoming=None, ns=None):
        self.name = name
        self.serial = os.path.join(a.work, name + ".serial")
        self.qmp_path = os.path.join(a.work, name + ".qmp")
        for f in (self.serial, self.qmp_path):
            if os.path.exists(f):
                os.unlink(f)
        # no_timer_check: under TCG on a loaded host the kernel's check that
        # the IO-APIC timer ticks can miss and panic the guest at boot.
        append = "console=ttyS0 quiet panic=-1 no_timer_check %s guest_touch=%d guest_rate=%d" % (
            a.guest_append, a.touch, a.rate)
        argv = ns_prefix(ns) + [
            a.qemu, "-accel", os.environ.get("QMIG_ACCEL", "tcg"), "-m", str(a.mem), "-smp", str(a.smp), "-nographic",
            "-no-reboot", "-nic", "none", "-name", name,
            "-kernel", a.kernel] + (["-initrd", a.initrd] if a.initrd != "none" else []) + [
            "-append", append,
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-serial", "file:" + self.serial, "-monitor", "none"]
        # The two-vCPU guest (mkguest.sh --smp) prints its computing vCPU's
        # rate on the second serial port.
        self.serial2 = os.path.join(a.work, name + ".serial2")
        if a.smp > 1:
            argv += ["-serial", "file:" + self.serial2]
        self.lmig_qmp = None
        if getattr(a, "lmig_qmp", False) and not incoming:
            # QEMU serves one client a socket: lmig gets its own.
            self.lmig_qmp = os.path.join(a.work, name + "-lmig.qmp")
            if os.path.exists(self.lmig_qmp):
                os.unlink(self.lmig_qmp)
            argv += ["-qmp", "unix:%s,server=on,wait=off" % self.lmig_qmp]
        if incoming:
            argv += ["-incoming", incoming]
        self.proc = Proc(name, argv, a.work)
        self.qmp = None

    def lines(self):
        try:
            with open(self.serial, "rb") as f:
                text = f.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return []
        # Terminal resets from the firmware may precede a line: keep the
        # guest's part.
        return [ln[ln.find("lmig-guest"):] if "lmig-guest" in ln else ln
                for ln in text.split("\n")]

    def ticks(self):
        t = []
        for ln in self.lines():
            if ln.startswith("lmig-guest tick "):
                try:
                    t.append(int(ln.split()[2]))
                except (IndexError, ValueError):
                    pass
        return t

    def last_tick(self):
        t = self.ticks()
        return t[-1] if t else 0

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ln in self.lines():
                if ln.startswith("lmig-guest ready"):
                    if self.ticks():
                        return ln
                if ln.startswith("lmig-guest FAIL") or "Kernel panic" in ln:
                    raise QMPError("guest failed: " + ln)
            if not self.proc.alive():
                raise QMPError("%s exited: %s" % (self.name, self.proc.text()))
            time.sleep(0.1)
        raise QMPError("%s: guest not ready after %d s" % (self.name, timeout))

    def connect(self):
        self.qmp = QMP(self.qmp_path)
        return self.qmp

    def stop(self):
        if self.qmp:
            self.qmp.close()
        self.proc.kill()


class ConsoleClock(threading.Thread):
    """Host times of the guest's tick lines, read from its serial file as
    QEMU writes them (polled every millisecond or so): what the guest's
    pause looks like from outside, which QEMU's downtime (the source's
    view) does not show."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.ticks = []          # (host monotonic s, tick N)
        self.halt = threading.Event()
        self.start()

    def run(self):
        pos, part = 0, b""
        while not self.halt.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except OSError:
                data = b""
            now = time.monotonic()
            if data:
                pos += len(data)
                part += data
                *lines, part = part.split(b"\n")
                for ln in lines:
                    m = re.search(rb"lmig-guest tick (\d+)", ln)
                    if m:
                        self.ticks.append((now, int(m.group(1))))
            self.halt.wait(0.001)

    def stop(self):
        self.halt.set()
        self.join(2)


def console_gap(src_clock, dst_clock, tick_ms):
    """The guest's pause on the host's clock: from the source's last tick
    line to the destination's first, less the ticks the guest's own
    (stopped) clock counted between them.  The guest's clock stands
    still while it is stopped, so its next tick comes one period of its
    own time after the last: the gap is the pause plus the ticks'
    periods."""
    if not src_clock.ticks or not dst_clock.ticks:
        return {"console_ticks_seen": [len(src_clock.ticks), len(dst_clock.ticks)]}
    ts, ns = src_clock.ticks[-1]
    td, nd = dst_clock.ticks[0]
    gap = (td - ts) * 1000
    return {"console_gap_ms": round(gap, 1), "guest_tick_ms": tick_ms,
            "console_ticks_between": nd - ns,
            "guest_pause_ms": round(gap - (nd - ns) * tick_ms, 1)}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(ns, port):
    r = subprocess.run(ns_prefix(ns) + ["ss", "-Hltn", "sport = :%d" % port],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return bool(r.stdout.strip())


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise QMPError("timed out waiting for " + what)


def dev_bytes(spec):
    """Bytes the interface NS:DEV (or DEV here) has sent, or None."""
    ns, _, dev = spec.rpartition(":")
    r = subprocess.run(["ip"] + (["-n", ns] if ns else []) + ["-s", "-j", "link", "show", "dev", dev],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        return json.loads(r.stdout)[0]["stats64"]["tx"]["bytes"]
    except (ValueError, LookupError, TypeError):
        return None


def read_json(path):
    """The last line of path that parses as a JSON object, or None."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for ln in reversed(lines):
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                return json.loads(ln)
            except ValueError:
                pass
    return None


def cpu_cgroup_root(version):
    """Where the cgroup hierarchy with the cpu controller is mounted (v1), or cgroup2's."""
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            pre, _, post = ln.partition(" - ")
            fields = post.split()
            if version == 1 and fields and fields[0] == "cgroup" and \
                    "cpu" in fields[2].split(","):
                return pre.split()[4]
            if version == 2 and fields and fields[0] == "cgroup2":
                return pre.split()[4]
    return None


def thread_cpu(pid, tid):
    """(cgroup directory, its CPU limit) of thread tid's CPU controller, or None."""
    try:
        with open("/proc/%d/task/%d/cgroup" % (pid, tid)) as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    for ln in lines:
        parts = ln.split(":", 2)
        if len(parts) == 3 and "cpu" in parts[1].split(","):
            root = cpu_cgroup_root(1)
            d = root + parts[2] if root else None
            try:
                with open(os.path.join(d, "cpu.cfs_quota_us")) as q, \
                        open(os.path.join(d, "cpu.cfs_period_us")) as per:
                    return [parts[2], "%s %s" % (q.read().strip(), per.read().strip())]
            except (OSError, TypeError):
                return [parts[2], "?"]
    for ln in lines:
        parts = ln.split(":", 2)
        if len(parts) == 3 and parts[0] == "0":
            root = cpu_cgroup_root(2)
            try:
                with open(os.path.join(root + parts[2], "cpu.max")) as q:
                    return [parts[2], q.read().strip()]
            except (OSError, TypeError):
                return [parts[2], "max"]
    return None


def vcpu_cpu(pid, tids):
    """{tid: [cgroup, limit]} of the vCPU threads."""
    return {str(t): thread_cpu(pid, t) for t in tids}


def state_file(pid):
    return os.path.exists("/run/lmig/throttle-%d" % pid)


def guard_of(pid):
    """The lmig-guard children of process pid."""
    out = []
    for d in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.find("(") + 1:st.rfind(")")]
        rest = st[st.rfind(")") + 2:].split()
        if comm == "lmig-guard" and int(rest[1]) == pid:
            out.append(int(d.split("/")[2]))
    return out


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def compute_rates(path, at, end):
    """Mean rate of the computing vCPU's lines ("lmig-guest compute N
    ops/s") before byte offset at of its console and from there to end."""
    try:
        with open(path, "rb") as f:
            text = f.read(end).decode(errors="replace")
    except OSError:
        return {}
    r = {}
    for key, part in (("compute_before", text[:at]), ("compute_during", text[at:])):
        v = [int(m) for m in re.findall(r"lmig-guest compute (\d+) ops/s", part)]
        # The first line after the start spans time before it.
        v = v[1:] if key == "compute_during" else v
        r[key + "_ops"] = sum(v) // len(v) if v else None
        r[key + "_lines"] = len(v)
    if r.get("compute_before_ops") and r.get("compute_during_ops") is not None:
        r["compute_pct"] = round(100.0 * r["compute_during_ops"] / r["compute_before_ops"], 1)
    return r


# --- The computing writer (guest.c's guest_work / guest_busy) ---
def writer_rates(path, at, end):
    """The writer's own lines ("lmig-guest busy P % rate R MB/s", once a
    second) before byte offset at of its console and from there to end:
    mean busy share and rate before, mean and least rate during."""
    try:
        with open(path, "rb") as f:
            text = f.read(end).decode(errors="replace")
    except OSError:
        return {}
    pat = r"lmig-guest busy (\d+) % rate (\d+) MB/s"
    before = [(int(b), int(r)) for b, r in re.findall(pat, text[:at])]
    # The first line after the start spans time before it.
    during = [(int(b), int(r)) for b, r in re.findall(pat, text[at:])][1:]
    if not before and not during:
        return {}
    r = {"writer_lines": [len(before), len(during)]}
    if before:
        # The last few seconds: the first lines come while the guest settles.
        tail = before[-5:]
        r["writer_busy_before_pct"] = sum(b for b, _ in tail) // len(tail)
        r["writer_mbs_before"] = sum(x for _, x in tail) // len(tail)
    if during:
        r["writer_busy_during_pct"] = sum(b for b, _ in during) // len(during)
        r["writer_mbs_during"] = sum(x for _, x in during) // len(during)
        r["writer_mbs_during_min"] = min(x for _, x in during)
    return r
# --- end of the computing writer ---


def migrate_info(q):
    i = q.cmd("query-migrate")
    ram = i.get("ram", {})
    r = {
        "status": i.get("status", "none"),
        "total_time_ms": i.get("total-time"),
        "downtime_ms": i.get("downtime"),
        "setup_time_ms": i.get("setup-time"),
        "ram_transferred": ram.get("transferred"),
        "ram_total": ram.get("total"),
        "multifd_bytes": ram.get("multifd-bytes"),
        "mbps": ram.get("mbps"),
        "dirty_sync_count": ram.get("dirty-sync-count"),
        "ram_remaining": ram.get("remaining"),
        "dirty_pages_rate": ram.get("dirty-pages-rate"),
        "cpu_throttle_pct": i.get("cpu-throttle-percentage"),
        "postcopy_requests": ram.get("postcopy-requests"),
        "postcopy_bytes": ram.get("postcopy-bytes"),
        "precopy_bytes": ram.get("precopy-bytes"),
        "downtime_bytes": ram.get("downtime-bytes"),
    }
    if i.get("error-desc"):
        r["qemu_error"] = i["error-desc"]
    return r


def final_info(q, info, timeout=5):
    """migrate_info() once QEMU filled in its times: it says completed a
    moment before (info: the last one seen; other states as they are)."""
    deadline = time.monotonic() + timeout
    while info["status"] == "completed" and not info["total_time_ms"] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
        info = migrate_info(q)
    return info


def outcome(qs, qd, src, dst, info, r, ticks, tick_timeout, timeout):
    """A migration's end into r: QEMU's final numbers, the source's state;
    completed: the destination runs and its guest counts on (dst_*);
    otherwise the source's guest counts on (src_tick_*), and a migration
    still going after timeout s is cancelled (harness_error)."""
    info = final_info(qs, info)
    for k in ("status", "total_time_ms", "downtime_ms", "ram_transferred", "qemu_error",
              "postcopy_requests"):
        if k in info:
            r[k] = info[k]
    r["src_status"] = qs.cmd("query-status")["status"]
    if info["status"] == "completed":
        r["dst_status"] = dst_running(qd)
        t = wait_ticks(dst, ticks, tick_timeout)
        r["dst_ticks"] = len(t)
        r["dst_first_tick"] = t[0] if t else 0
        r["dst_last_tick"] = t[-1] if t else 0
        r["src_last_tick"] = src.last_tick()
        return info
    before = src.last_tick()
    deadline = time.monotonic() + tick_timeout
    while time.monotonic() < deadline and src.last_tick() < before + ticks:
        time.sleep(0.1)
    r["src_tick_after_failure"] = before
    r["src_tick_later"] = src.last_tick()
    if info["status"] not in ("failed", "cancelled"):
        r["harness_error"] = "still %s after %d s" % (info["status"], timeout)
        qs.cmd("migrate_cancel")
    return info


def wait_ticks(vm, want, timeout):
    """The guest's ticks once more than want are seen, or what came in timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = vm.ticks()
        if len(t) > want:
            return t
        time.sleep(0.1)
    return vm.ticks()


def silent_guest(q):
    """Where a guest that prints nothing is: its vCPU (halted or not), its
    instruction pointer 0.5 s apart, and its local APIC's timer and
    pending interrupts."""
    hmp = lambda c: q.cmd("human-monitor-command", **{"command-line": c}) or ""
    d = {"dst_cpus": hmp("info cpus").strip(), "dst_rip": []}
    for _ in range(2):
        regs = hmp("info registers")
        m = re.search(r"RIP=([0-9a-f]+)", regs)
        d["dst_rip"].append(m.group(1) if m else "?")
        time.sleep(0.5)
    # EFL (IF: interrupts on), HLT (halted), CPL, CR0-CR4.
    d["dst_regs"] = [ln.strip() for ln in regs.split("\n")
                     if any(k in ln for k in ("EFL=", "HLT=", "CR0=", "CS ="))]
    d["dst_lapic"] = [ln.strip() for ln in hmp("info lapic").split("\n")
                      if any(k in ln for k in ("LVTT", "Timer", "ISR", "IRR"))]
    return d


def run(a):
    res = {"case": a.name, "transport": a.transport, "multifd": a.multifd,
           "capabilities": a.capability,
           "compress": a.compress or "none", "max_bandwidth": a.max_bandwidth,
           "guest_mem_mib": a.mem, "guest_touch_mib": a.touch, "guest_rate_mbs": a.rate}
    lmig = shlex.quote(a.lmig)
    addr = a.addr
    port = a.port or (free_port() if not a.dst_ns else 7790)
    srcsock = os.path.join(a.work, "src-mig.sock")
    dstsock = os.path.join(a.work, "dst-mig.sock")
    fifo = os.path.join(a.work, "mig.fifo")
    for f in (srcsock, dstsock, fifo):
        if os.path.exists(f):
            os.unlink(f)
    procs = {}
    vms = []
    clocks = []

    # What the destination waits on, and what the source is told.
    incoming = "defer"
    if a.transport == "tcp":
        dst_uri = src_uri = "tcp:%s:%d" % (addr, port)
    elif a.transport == "unix":
        dst_uri = src_uri = "unix:" + dstsock
    elif a.transport == "exec":
        os.mkfifo(fifo)
        incoming = "exec:cat " + shlex.quote(fifo)
        src_uri = "exec:cat >" + shlex.quote(fifo)
        dst_uri = None
    elif a.transport == "pipe":
        # QEMU runs these through sh -c; their exit status lands in a file.
        w = lambda f: shlex.quote(os.path.join(a.work, f))
        incoming = "exec:%s pipe recv --listen %s:%d %s 2>%s; echo $? >%s" % (
            lmig, addr, port, a.lmig_args, w("pipe-recv.err"), w("pipe-recv.rc"))
        src_uri = "exec:%s pipe send --to %s:%d %s%s >%s 2>%s; echo $? >%s" % (
            lmig, addr, port, a.lmig_args + " " + a.lmig_send_args,
            (" --qmp " + w("src-lmig.qmp") + " " + a.lmig_qmp_args) if a.lmig_qmp else "",
            w("pipe-send.out"), w("pipe-send.err"), w("pipe-send.rc"))
        for f in ("pipe-recv.rc", "pipe-send.rc"):
            if os.path.exists(os.path.join(a.work, f)):
                os.unlink(os.path.join(a.work, f))
        dst_uri = None
    elif a.transport == "proxy":
        dst_uri = "unix:" + dstsock
        src_uri = "unix:" + srcsock
    else:
        raise QMPError("unknown transport " + a.transport)
    res["src_uri"] = src_uri
    res["dst_incoming"] = dst_uri or incoming

    try:
        t_boot = time.monotonic()
        src = VM("src", a, ns=a.src_ns)
        vms.append(src)
        dst = VM("dst", a, incoming=incoming, ns=a.dst_ns)
        vms.append(dst)
        ready = src.wait_ready(a.boot_timeout)
        res["boot_s"] = round(time.monotonic() - t_boot, 2)
        res["guest_ready"] = ready
        qs = src.connect()
        qd = dst.connect()

        caps = []
        if a.multifd:
            caps.append({"capability": "multifd", "state": True})
        caps += [{"capability": c, "state": True} for c in a.capability]
        for q in (qs, qd):
            if caps:
                q.cmd("migrate-set-capabilities", capabilities=caps)
            params = {}
            if a.multifd:
                params["multifd-channels"] = a.multifd
                if a.compress:
                    params["multifd-compression"] = a.compress
            if params:
                q.cmd("migrate-set-parameters", **params)
        qs.cmd("migrate-set-parameters", **{"max-bandwidth": a.max_bandwidth})
        if a.downtime_limit:
            qs.cmd("migrate-set-parameters", **{"downtime-limit": a.downtime_limit})
            res["downtime_limit_ms"] = a.downtime_limit
        else:
            # QEMU's own (300 ms in 7.2), for a caller that judges the downtime.
            res["downtime_limit_ms"] = qs.cmd("query-migrate-parameters").get("downtime-limit")

        if a.transport == "proxy":
            procs["proxy-recv"] = Proc("proxy-recv", ns_prefix(a.dst_ns) + [
                a.lmig, "proxy", "recv", "--listen", "%s:%d" % (addr, port),
                "--to", "unix:" + dstsock] + shlex.split(a.lmig_args), a.work)
        if dst_uri:
            qd.cmd("migrate-incoming", uri=dst_uri)
        if a.transport == "proxy":
            wait_for(lambda: listening(a.dst_ns, port) or not procs["proxy-recv"].alive(), 10,
                     "lmig proxy recv to listen")
            procs["proxy-send"] = Proc("proxy-send", ns_prefix(a.src_ns) + [
                a.lmig, "proxy", "send", "--listen", "unix:" + srcsock,
                "--to", "%s:%d" % (addr, port)] + shlex.split(a.lmig_args) +
                shlex.split(a.lmig_send_args) +
                (["--qmp", src.lmig_qmp] + shlex.split(a.lmig_qmp_args) if a.lmig_qmp else []),
                a.work)
            wait_for(lambda: os.path.exists(srcsock) or not procs["proxy-send"].alive(), 10,
                     "lmig proxy send to listen")
            for n, p in procs.items():
                if not p.alive():
                    raise QMPError("lmig %s exited before the migration: %s" % (n, p.text()))
        elif a.transport in ("tcp", "pipe"):
            wait_for(lambda: listening(a.dst_ns, port), 30, "the destination to listen")

        if a.settle:
            time.sleep(a.settle)
        res["src_tick_at_migrate"] = src.last_tick()
        compute0 = (file_size(src.serial2), file_size(src.serial))
        watch = None
        if a.lmig_qmp:
            qpid = src.proc.p.pid
            tids = [c["thread-id"] for c in qs.cmd("query-cpus-fast")]
            watch = {"pid": qpid, "tids": tids, "before": vcpu_cpu(qpid, tids), "seen": [],
                     "last": None, "t": 0}
            res["qemu_pid"] = qpid
            res["vcpu_threads"] = tids
            res["vcpu_cpu_before"] = watch["before"]
            res["state_file_before"] = state_file(qpid)
        clocks = [ConsoleClock(src.serial), ConsoleClock(dst.serial)]
        dev0 = dev_bytes(a.count_dev) if a.count_dev else None
        t0 = time.monotonic()
        qs.cmd("migrate", uri=src_uri)
        killed = False
        info = migrate_info(qs)
        mbps = []
        while time.monotonic() - t0 < a.timeout:
            info = migrate_info(qs)
            if info["status"] == "active":
                # How far it got, for a run the bound cancels.
                res["dirty_pages_rate_max"] = max(res.get("dirty_pages_rate_max") or 0,
                                                  info["dirty_pages_rate"] or 0)
                res["last_active"] = {k: info[k] for k in (
                    "dirty_sync_count", "ram_remaining", "ram_transferred", "cpu_throttle_pct")}
                # What a pass left dirty: the remainder seen first after each
                # bitmap sync from the second on (within a pass it falls
                # towards zero whether the migration converges or not).
                sync = info["dirty_sync_count"] or 0
                if sync >= 2 and sync != res.get("_sync") and info["ram_remaining"] is not None:
                    res["_sync"] = sync
                    res["pass_left_min"] = min(res.get("pass_left_min", info["ram_remaining"]),
                                               info["ram_remaining"])
                    res["pass_left_last"] = info["ram_remaining"]
            if info["status"] in ("completed", "failed", "cancelled"):
                break
            if watch and time.monotonic() - watch["t"] >= 0.25:
                watch["t"] = time.monotonic()
                now = vcpu_cpu(watch["pid"], watch["tids"])
                moved = [t for t in now if now[t] != watch["before"][t]]
                key = [now[t] for t in moved]
                if key != watch["last"]:
                    watch["last"] = key
                    watch["seen"].append({"t_s": round(time.monotonic() - t0, 2),
                                          "threads_limited": len(moved),
                                          "limits": sorted(set(v[1] for v in key if v))})
                if moved and a.cancel_when_limited and "cancelled_at_s" not in res:
                    res["cancelled_at_s"] = round(time.monotonic() - t0, 2)
                    res["vcpu_cpu_at_cancel"] = now
                    qs.cmd("migrate_cancel")
                    t_cancel = time.monotonic()
                if moved and a.kill_when_limited and not killed:
                    p = procs.get("proxy-send")
                    if p is None:
                        raise QMPError("--kill-when-limited needs the proxy transport")
                    res["killed_while"] = info["status"]
                    res["killed_at_ram_transferred"] = info["ram_transferred"]
                    res["vcpu_cpu_at_kill"] = now
                    if a.kill_guard:
                        g = guard_of(p.p.pid)
                        res["guards_killed"] = len(g)
                        for gp in g:
                            os.kill(gp, signal.SIGKILL)
                        time.sleep(0.2)
                    os.kill(p.p.pid, signal.SIGKILL)
                    p.p.wait()
                    killed = True
                    t_kill = time.monotonic()
            if a.bound_file and not a.bound and os.path.exists(a.bound_file):
                # The bound arrives once the run beside this one knows it.
                try:
                    with open(a.bound_file) as f:
                        a.bound = float(f.read().strip() or 0)
                except (OSError, ValueError):
                    pass
            if a.bound and time.monotonic() - t0 >= a.bound:
                res["bounded"] = True
                res["bound_s"] = a.bound
                res["status_at_bound"] = info["status"]
                res["remaining_at_bound"] = qs.cmd("query-migrate").get("ram", {}).get("remaining")
                qs.cmd("migrate_cancel")
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    info = migrate_info(qs)
                    if info["status"] in ("completed", "failed", "cancelled"):
                        break
                    time.sleep(0.05)
                break
            if info["status"] == "active" and info["mbps"]:
                mbps.append(info["mbps"])
            if a.kill_after and not killed and time.monotonic() - t0 >= a.kill_after:
                p = procs.get(a.kill_which)
                if p is None:
                    raise QMPError("--kill-after needs the proxy transport")
                res["killed_while"] = info["status"]
                res["killed_at_ram_transferred"] = info["ram_transferred"]
                p.kill()
                killed = True
                t_kill = time.monotonic()
            time.sleep(0.05)
        res["wall_s"] = round(time.monotonic() - t0, 3)
        if "cancelled_at_s" in res:
            # lmig puts the limit back once QEMU says cancelled, still running itself.
            freed = None
            while time.monotonic() - t_cancel < 5:
                if vcpu_cpu(watch["pid"], watch["tids"]) == watch["before"]:
                    freed = round(time.monotonic() - t_cancel, 3)
                    break
                time.sleep(0.02)
            res["freed_after_cancel_s"] = freed
        info = final_info(qs, info)
        if a.smp > 1:
            # The guest without an OS prints them on its second port,
            # guest.c's guest_compute=1 on the console.
            r = compute_rates(src.serial2, compute0[0], file_size(src.serial2))
            if not r.get("compute_before_lines"):
                r = compute_rates(src.serial, compute0[1], file_size(src.serial))
            res.update(r)
        res.update(writer_rates(src.serial, compute0[1], file_size(src.serial)))
        if dev0 is not None:
            dev1 = dev_bytes(a.count_dev)
            if dev1 is not None:
                res["dev_bytes"] = dev1 - dev0
        if killed:
            res["noticed_s"] = round(time.monotonic() - t_kill, 3)
        res.update(info)
        if mbps:
            # While active, QEMU's mbps is its estimate over its last
            # 100 ms: what it decides the switch-over with.
            mbps.sort()
            res["mbps_active_median"] = round(mbps[len(mbps) // 2], 1)
            res["mbps_active_max"] = round(mbps[-1], 1)
        if info["status"] not in ("completed", "failed", "cancelled"):
            res["harness_error"] = "still %s after %d s" % (
                info["status"], a.bound if res.get("bounded") else a.timeout)
            qs.cmd("migrate_cancel")

        res["src_status"] = qs.cmd("query-status")["status"]
        if info["status"] == "completed":
            # The destination starts the guest itself once it has everything.
            res["dst_status"] = dst_running(qd)
            # Its console starts with the ticks printed after the switch.
            t = wait_ticks(dst, a.ticks, a.tick_timeout)
            if not t:
                res.update(silent_guest(qd))
            res["dst_ticks"] = len(t)
            res["dst_first_tick"] = t[0] if t else 0
            res["dst_last_tick"] = t[-1] if t else 0
            res["src_last_tick"] = src.last_tick()
            for c in clocks:
                c.stop()
            m = re.search(r"guest_tick=(\d+)", a.guest_append)
            res.update(console_gap(clocks[0], clocks[1], int(m.group(1)) if m else 100))
        else:
            # The source must still run its guest: its counter goes on.
            before = src.last_tick()
            deadline = time.monotonic() + a.tick_timeout
            while time.monotonic() < deadline and src.last_tick() < before + a.ticks:
                time.sleep(0.1)
            res["src_tick_after_failure"] = before
            res["src_tick_later"] = src.last_tick()
            res["src_status"] = qs.cmd("query-status")["status"]
            # A destination that did not get the whole stream must not run the guest.
            try:
                res["dst_status"] = qd.cmd("query-status")["status"]
            except (OSError, QMPError, ValueError):
                res["dst_status"] = "exited"

        # The lmig processes serve one migration and exit with its status.
        for n, p in procs.items():
            if n == a.kill_which and killed:
                continue
            rc = p.wait(15)
            res[n.replace("-", "_") + "_exit"] = rc if rc is not None else "running"
        if watch:
            res["limits_seen"] = watch["seen"]
            qpid = watch["pid"]
            if killed and a.kill_when_limited:
                # The guard frees them (or, without it, nobody until the restore).
                t_k = time.monotonic()
                freed = None
                while time.monotonic() - t_k < 5:
                    if vcpu_cpu(qpid, watch["tids"]) == watch["before"] and \
                            not state_file(qpid):
                        freed = round(time.monotonic() - t_kill, 3)
                        break
                    time.sleep(0.05)
                res["freed_after_kill_s"] = freed
                res["vcpu_cpu_after_kill"] = vcpu_cpu(qpid, watch["tids"])
                res["state_file_after_kill"] = state_file(qpid)
                if a.kill_guard:
                    r = subprocess.run([a.lmig, "throttle", "--restore", "--json"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    res["throttle_restore_exit"] = r.returncode
                    try:
                        res["throttle_restore"] = json.loads(r.stdout.decode() or "null")
                    except ValueError:
                        res["throttle_restore"] = r.stdout.decode(errors="replace")[-300:]
                    res["vcpu_cpu_after_restore"] = vcpu_cpu(qpid, watch["tids"])
                    res["state_file_after_restore"] = state_file(qpid)
            else:
                res["vcpu_cpu_after"] = vcpu_cpu(qpid, watch["tids"])
                res["state_file_after"] = state_file(qpid)
            final = ("vcpu_cpu_after_restore" if killed and a.kill_guard else
                     "vcpu_cpu_after_kill" if killed and a.kill_when_limited else
                     "vcpu_cpu_after")
            res["vcpu_cpu_restored"] = res.get(final) == watch["before"]
        lm = {}
        for n in ("proxy-send", "proxy-recv"):
            if n in procs:
                j = read_json(procs[n].out_path)
                if j is None:
                    j = read_json(procs[n].err_path)
                if j is not None:
                    lm[n] = j
                elif not (n == a.kill_which and killed):
                    res.setdefault("lmig_stderr", {})[n] = procs[n].text()
        if a.transport == "pipe":
            for n in ("pipe-send", "pipe-recv"):
                rcf = os.path.join(a.work, n + ".rc")
                wait_for(lambda: os.path.exists(rcf) and os.path.getsize(rcf) > 0, 15,
                         "lmig %s to exit" % n.replace("-", " "))
                with open(rcf) as f:
                    res[n.replace("-", "_") + "_exit"] = int(f.read().strip() or -1)
                j = None
                for ext in (".out", ".err"):
                    j = j or read_json(os.path.join(a.work, n + ext))
                if j is not None:
                    lm[n] = j
                else:
                    try:
                        with open(os.path.join(a.work, n + ".err"), "rb") as f:
                            res.setdefault("lmig_stderr", {})[n] = f.read().decode(
                                errors="replace")[-600:]
                    except OSError:
                        pass
        if lm:
            res["lmig"] = lm
            send = lm.get("proxy-send") or lm.get("pipe-send") or {}
            if "bytes_wire" in send:
                res["lmig_bytes_wire"] = send["bytes_wire"]
    except (QMPError, OSError) as e:
        res["harness_error"] = str(e)
        for v in vms:
            if not v.proc.alive():
                res.setdefault("qemu_stderr", {})[v.name] = v.proc.text()
    finally:
        for c in clocks:
            c.stop()
        for p in procs.values():
            p.kill()
        for v in vms:
            v.stop()
    # Flat keys first, the lmig reports last: a reader looking up a key
    # finds QEMU's value before any of lmig's.
    res.pop("_sync", None)
    if "lmig" in res:
        res["lmig"] = res.pop("lmig")
    line = json.dumps(res, separators=(",", ":"))
    if a.result_file:
        with open(a.result_file + ".tmp", "w") as f:
            f.write(line + "\n")
        os.rename(a.result_file + ".tmp", a.result_file)
    print(line, flush=True)
    return 0




def dst_running(qd, timeout=15):
    """The destination's status once it runs, or the last one seen after
    timeout s: a destination starts the guest itself once it has
    everything, a little after the source reports completed."""
    st = "none"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = qd.cmd("query-status")["status"]
        if st == "running":
            break
        time.sleep(0.05)
    return st

def guest_inputs(a, prog):
    """What every script booting the test guest needs, filled in where the
    options left it out: a.qemu checked, a.kernel Debian's newest 6.1,
    a.initrd built by mkguest.sh, a.work (when the script has one) made and
    absolute.  Returns 0, or the exit status after one line on stderr
    naming what is missing (4: not installed, so a test skips)."""
    if not a.qemu:
        print("%s: qemu-system-x86_64 is not installed (qemu-system-x86)" % prog, file=sys.stderr)
        return 4
    if not a.kernel:
        k = sorted(glob.glob("/boot/vmlinuz-6.1.*"))
        if not k:
            print("%s: no kernel: no /boot/vmlinuz-6.1.* (linux-image-amd64)" % prog, file=sys.stderr)
            return 4
        a.kernel = k[-1]
    if not os.access(a.kernel, os.R_OK):
        print("%s: cannot read the kernel %s" % (prog, a.kernel), file=sys.stderr)
        return 4
    if getattr(a, "work", ""):
        os.makedirs(a.work, exist_ok=True)
        a.work = os.path.abspath(a.work)
    if not a.initrd:
        r = subprocess.run(["sh", os.path.join(HERE, "mkguest.sh")], stdout=subprocess.PIPE)
        if r.returncode != 0:
            return 4 if r.returncode == 4 else 1
        a.initrd = r.stdout.decode().strip()
    return 0

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="migration")
    ap.add_argument("--transport", default="tcp",
                    choices=["tcp", "unix", "exec", "pipe", "proxy"])
    ap.add_argument("--work", required=True, help="directory for sockets, consoles and logs")
    ap.add_argument("--mem", type=int, default=512, help="guest memory, MiB")
    ap.add_argument("--touch", type=int, default=256, help="memory the guest fills, MiB")
    ap.add_argument("--rate", type=int, default=4, help="MB/s the guest rewrites")
    ap.add_argument("--multifd", type=int, default=0, help="multifd channels (0: off)")
    ap.add_argument("--compress", default="", help="multifd compression (zlib, zstd)")
    ap.add_argument("--capability", action="append", default=[],
                    help="a migration capability to turn on at both ends (auto-converge, ...)")
    ap.add_argument("--max-bandwidth", type=int, default=32 << 30,
                    help="QEMU's max-bandwidth, bytes/s (default 32 GiB/s: unlimited)")
    ap.add_argument("--downtime-limit", type=int, default=0,
                    help="QEMU's downtime-limit, ms (default: QEMU's, 300)")
    ap.add_argument("--addr", default="127.0.0.1", help="the destination's address")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--src-ns", default="", help="network namespace of the source side")
    ap.add_argument("--dst-ns", default="", help="network namespace of the destination side")
    ap.add_argument("--count-dev", default="",
                    help="[NS:]DEV whose transmitted bytes during the migration go in dev_bytes")
    ap.add_argument("--lmig", default=os.environ.get("LMIG", os.path.join(REPO, "user", "lmig")))
    ap.add_argument("--lmig-args", default="--json", help="extra options for every lmig command")
    ap.add_argument("--lmig-send-args", default="",
                    help="extra options for the sending lmig only (--compress none)")
    ap.add_argument("--kill-after", type=float, default=0,
                    help="SIGKILL lmig proxy send this many seconds into the migration")
    ap.add_argument("--kill-which", default="proxy-send", choices=("proxy-send", "proxy-recv"),
                    help="the lmig process --kill-after kills")
    ap.add_argument("--lmig-qmp", action="store_true",
                    help="give the source QEMU a QMP socket for lmig and pass it as --qmp")
    ap.add_argument("--lmig-qmp-args", default="",
                    help="more options for the lmig command that gets --qmp")
    ap.add_argument("--kill-when-limited", action="store_true",
                    help="SIGKILL lmig proxy send once its limit holds a vCPU thread")
    ap.add_argument("--cancel-when-limited", action="store_true",
                    help="migrate_cancel once lmig's limit holds a vCPU thread")
    ap.add_argument("--kill-guard", action="store_true",
                    help="with --kill-when-limited: kill its guard first, then restore with "
                    "lmig throttle --restore")
    ap.add_argument("--bound", type=float, default=0,
                    help="cancel a migration still running after this many seconds")
    ap.add_argument("--result-file", default="",
                    help="also write the JSON line to this file (whole, however long)")
    ap.add_argument("--bound-file", default="",
                    help="read --bound from this file once it appears (a run beside sets it)")
    ap.add_argument("--smp", type=int, default=1,
                    help="vCPUs; above 1 a second serial port (NAME.serial2) for mkguest.sh --smp's guest")
    ap.add_argument("--settle", type=float, default=0,
                    help="seconds to let the guest run between ready and migrate")
    ap.add_argument("--timeout", type=float, default=120, help="seconds the migration may take")
    ap.add_argument("--boot-timeout", type=float, default=120)
    ap.add_argument("--ticks", type=int, default=5, help="ticks to see after the switch")
    ap.add_argument("--tick-timeout", type=float, default=15)
    ap.add_argument("--guest-append", default=os.environ.get("QMIG_APPEND", "pti=on"),
                    help="more of the guest kernel's command line")
    ap.add_argument("--kernel", default=os.environ.get("KERNEL", ""))
    ap.add_argument("--initrd", default="", help="the guest's initramfs (none: no -initrd, for mkguest.sh --smp's guest)")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    a = ap.parse_args()

    rc = guest_inputs(a, "qmig")
    return rc if rc else run(a)


if __name__ == "__main__":
    sys.exit(main())

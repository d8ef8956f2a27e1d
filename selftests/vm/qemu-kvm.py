#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A QEMU guest under KVM that only converges with lmig's help, run inside
the VM by qemu-kvm.sh (nested KVM: the VM's CPU has svm).

The guest is selftests/qemu/smp/smpguest.c (mkguest.sh --smp): vCPU 0
writes RATE MB/s over TOUCH MiB, vCPU 1 only computes and prints its rate
("lmig-guest compute N ops/s") on the second serial port.  The source
QEMU (-accel kvm, 2 vCPUs, -name debug-threads=on) has two QMP sockets:
one for this script, one for `lmig proxy send --qmp`.  QEMU's
max-bandwidth and downtime-limit are set so that its writer outruns the
link: the migration, src QEMU -> lmig proxy send -> loopback -> lmig proxy
recv -> dst QEMU, only completes once something slows the writer.

Placement: the computing vCPU's thread runs on CPU 1, everything else (the
writing vCPU, QEMU's other threads, the destination, lmig, this script) on
CPU 0, and a spinner at nice 19 keeps CPU 0 busy from start to end (with
one host thread for both CPUs of the VM, a busy CPU 0 halves what CPU 1
gets).  The VM's CPUs are threads of a host shared with other work, so
what CPU 1 gets from the host varies by tens of per cent from one second
to the next: a reference loop (REF, below) shares CPU 1 with the
computing vCPU at the same weight and counts its own rate, and the
computing vCPU's rate is taken relative to it.  A limit on the computing
vCPU's thread would hand CPU 1 to the reference and show at once; the
host's ups and downs move both alike.

Prints "TAG KEY VALUE" lines (TAG: --tag, default nest) (see qemu-kvm.sh) and exits 0 once it got as
far as a result; 1 on a harness error (a "nest error TEXT" line).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "selftests", "qemu"))
from qmig import QMP, QMPError, thread_cpu, state_file  # noqa: E402


TAG = "nest"


def say(key, value):
    print("%s %s %s" % (TAG, key, value), flush=True)


class Proc:
    def __init__(self, name, argv, work, cpus="0", cgroup=None, pass_fds=(), env=None):
        self.name = name
        self.out = os.path.join(work, name + ".out")
        self.err = os.path.join(work, name + ".err")
        argv = ["taskset", "-c", cpus] + argv
        if cgroup:
            # Into the cgroup before exec, so every thread starts there.
            argv = ["sh", "-c", 'echo $$ >"$0/cgroup.procs" && exec "$@"', cgroup] + argv
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.p = subprocess.Popen(argv, stdout=o, stderr=e, pass_fds=pass_fds, env=env,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()

    def text(self, which="err"):
        """stderr's last 600 characters on one line, or stdout (a JSON line) whole."""
        try:
            with open(self.err if which == "err" else self.out, errors="replace") as f:
                t = " ".join(f.read().split())
                return t[-600:] if which == "err" else t
        except OSError:
            return ""


def lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().split("\n")
    except OSError:
        return []


def ticks(path):
    return [int(m.group(1)) for m in (re.match(r"lmig-guest tick (\d+)$", ln) for ln in lines(path))
            if m]


def computes(path):
    """The rates of a console's "lmig-guest compute N ops/s" lines, in order."""
    return [int(m.group(1)) for m in
            (re.match(r"lmig-guest compute (\d+) ops/s$", ln) for ln in lines(path)) if m]


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise QMPError("timed out waiting for " + what)
        time.sleep(0.1)


def median(v):
    """The median: a rate line disturbed by the host (one VM CPU thread among
    other users' work) moves it less than the mean."""
    v = sorted(v)
    n = len(v)
    return 0.0 if not n else float(v[n // 2]) if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def qemu_argv(a, work, name, qmps, incoming):
    accel = "kvm,dirty-ring-size=%d" % a.dirty_ring if a.dirty_ring else "kvm"
    argv = [a.qemu, "-accel", accel, "-smp", "2", "-m", str(a.mem), "-display", "none",
            "-nodefaults", "-no-reboot", "-name", name + ",debug-threads=on",
            "-serial", "file:" + os.path.join(work, name + "-1.con"),
            "-serial", "file:" + os.path.join(work, name + "-2.con"),
            "-kernel", a.guest,
            "-append", "guest_rate=%d guest_touch=%d guest_tick=100 guest_compute_ms=%d "
            "guest_hlt=%d" % (a.rate, a.touch, a.compute_ms, a.writer_wait == "hlt")]
    for q in qmps:
        argv += ["-qmp", "unix:%s,server=on,wait=off" % q]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv


# Counts loops and writes its rate every half second, like the guest's lines.
REF = r"""
import sys, time
out = open(sys.argv[1], "a")
n, t0 = 0, time.monotonic()
while True:
    for _ in range(2000):
        pass
    n += 2000
    t = time.monotonic()
    if t - t0 >= 0.5:
        out.write("lmig-guest compute %d ops/s\n" % (n / (t - t0)))
        out.flush()
        n, t0 = 0, t
"""


def run_s(pid, tid):
    """Seconds thread tid has run (schedstat)."""
    try:
        with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu1_ticks():
    """CPU 1's counters in /proc/stat (user nice system idle iowait irq softirq steal)."""
    with open("/proc/stat") as f:
        for ln in f:
            if ln.startswith("cpu1 "):
                return [int(x) for x in ln.split()[1:9]]
    return [0] * 8


def cpu1_where(t0, t1):
    """Where CPU 1's time went between two cpu1_ticks(): fractions."""
    d = [b - a for a, b in zip(t0, t1)]
    tot = sum(d) or 1
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return " ".join("%s=%.3f" % (n, v / tot) for n, v in zip(names, d) if v)


def cg_state(pid, tids):
    return {str(t): thread_cpu(pid, t) for t in tids}


def lmig_leftovers(cgroot):
    """cgroups lmig made and state files it keeps, still there."""
    left = []
    if os.path.isdir("/run/lmig"):
        left += ["/run/lmig/" + f for f in os.listdir("/run/lmig")]
    for dirpath, dirs, _ in os.walk(cgroot):
        left += [os.path.join(dirpath, d) for d in dirs if d.startswith("lmig")]
    return left


def per_tick_bytes(a):
    """What the writer writes a tick (smpguest.c: whole pages a slice)."""
    return (a.rate * 1000000 // 4096 * 100 // 1000) * 4096


def start(a, work, procs, res):
    """Both QEMUs up, the guest measured before migrating: what the rest needs."""
    c = {"res": res, "srcq": os.path.join(work, "src.qmp"), "lmigq": os.path.join(work, "src-lmig.qmp"),
         "dstq": os.path.join(work, "dst.qmp"), "srcsock": os.path.join(work, "src.sock"),
         "dstsock": os.path.join(work, "dst.sock"), "refp": os.path.join(work, "ref.con")}
    for n in ("src", "dst"):
        for i in ("1", "2"):
            c[n + i] = os.path.join(work, "%s-%s.con" % (n, i))

    # CPU 0 never idles (see the top): the lowest weight, so anything else runs first.
    procs["spin"] = Proc("spin", ["nice", "-n", "19", "sh", "-c", "while :; do :; done"], work)
    procs["ref"] = Proc("ref", ["python3", "-c", REF, c["refp"]], work, cpus="1")
    t0 = time.monotonic()
    procs["src"] = Proc("src", qemu_argv(a, work, "src", [c["srcq"], c["lmigq"]], False), work,
                        cgroup=a.cgroup)
    procs["dst"] = Proc("dst", qemu_argv(a, work, "dst", [c["dstq"]], True), work)
    c["qs"] = qs = QMP(c["srcq"])
    c["qd"] = QMP(c["dstq"])
    cpus = qs.cmd("query-cpus-fast")
    c["tids"] = tids = [x["thread-id"] for x in sorted(cpus, key=lambda x: x["cpu-index"])]
    if len(tids) != 2:
        raise QMPError("the source has %d vCPUs, not 2" % len(tids))
    c["qpid"] = qpid = procs["src"].p.pid	# sh and taskset exec QEMU: one process
    names = {}
    for t in tids:
        with open("/proc/%d/task/%d/comm" % (qpid, t)) as f:
            names[t] = f.read().strip()
    subprocess.run(["taskset", "-pc", "1", str(tids[1])], check=True, stdout=subprocess.DEVNULL)
    say("threads", "writer=%d compute=%d names=%s" % (
        tids[0], tids[1], ",".join(names[t].replace(" ", "_") for t in tids)))

    src1, src2, refp = c["src1"], c["src2"], c["refp"]
    wait_for(lambda: ticks(src1), 60, "the guest's first tick")
    say("boot_s", "%.1f" % (time.monotonic() - t0))
    ready = [ln for ln in lines(src1) if ln.startswith("lmig-guest ready")]
    say("ready", ready[0] if ready else "none")
    # The first line covers start-up: the rate is that of full lines after it.
    wait_for(lambda: len(computes(src2)) >= 2, 30, "the computing vCPU's first rates")
    n0, f0, k0 = len(computes(src2)), len(computes(refp)), len(ticks(src1))
    r0, w0, c0 = run_s(qpid, tids[1]), time.monotonic(), cpu1_ticks()
    time.sleep(a.before)
    w1 = time.monotonic()
    say("cpu1_before", cpu1_where(c0, cpu1_ticks()))
    before = computes(src2)[n0:]
    ref_before = computes(refp)[f0:]
    say("ref_before", "%.0f n=%d" % (median(ref_before), len(ref_before)))
    # The computing vCPU's thread: the share of a CPU it ran, as this
    # kernel counts it (waits for QEMU's big lock lower it too).
    say("before", "%.0f n=%d cpu=%.3f" % (median(before), len(before),
                                          (run_s(qpid, tids[1]) - r0) / (w1 - w0)))
    c["res"].update(compute_before=median(before), ref_before=median(ref_before),
                    writer_mbps_before=round((len(ticks(src1)) - k0) / (w1 - w0) *
                                             per_tick_bytes(a) / 1e6, 2))
    c["cg_before"] = cg_state(qpid, tids)
    say("cg_before", json.dumps(c["cg_before"], sort_keys=True))
    return c


def start_lmig(a, work, procs, c):
    """lmig proxy recv and send between the QEMUs: the URI the source migrates to."""
    portf = os.path.join(work, "port")
    with open(portf, "w"):
        pass
    rfd = os.open(portf, os.O_WRONLY)
    procs["recv"] = Proc("recv", [a.lmig, "proxy", "recv", "--listen", "127.0.0.1:0",
                                  "--ready-fd", str(rfd), "--to", "unix:" + c["dstsock"],
                                  "--json", "--accept-timeout", "30"], work, pass_fds=(rfd,))
    os.close(rfd)
    wait_for(lambda: os.path.getsize(portf) > 0, 20, "lmig proxy recv's port")
    with open(portf) as f:
        port = int(f.read().split()[0])
    send_argv = [a.lmig, "proxy", "send", "--listen", "unix:" + c["srcsock"],
                 "--to", "127.0.0.1:%d" % port, "--json"]
    if not a.native:
        send_argv += ["--qmp", c["lmigq"]] + a.lmig_args.split()
    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in a.lmig_env)
    procs["send"] = Proc("send", send_argv, work, env=env)
    wait_for(lambda: os.path.exists(c["srcsock"]) or not procs["send"].alive(), 20,
             "lmig proxy send to listen")
    if not procs["send"].alive():
        raise QMPError("lmig proxy send exited: " + procs["send"].text())
    return "unix:" + c["srcsock"]


def limited(st):
    """A cg_state() entry under a CPU limit."""
    return st and st[1] not in ("max", "-1") and not st[1].startswith("max ")


def migrate(a, c, procs, uri):
    """Migrate to uri, watching it until it ends or --timeout cancels it."""
    qs, qpid, tids, res = c["qs"], c["qpid"], c["tids"], c["res"]
    src1, src2, refp = c["src1"], c["src2"], c["refp"]
    c["src_tick"] = max(ticks(src1) or [0])
    m0, g0, k0 = len(computes(src2)), len(computes(refp)), len(ticks(src1))
    tm = time.monotonic()
    r0, c0 = run_s(qpid, tids[1]), cpu1_ticks()
    qs.cmd("migrate", uri=uri)
    if a.dirty_limit:
        try:
            qs.cmd("set-vcpu-dirty-limit", **{"dirty-rate": a.dirty_limit})
            res["dirty_limit"] = "set"
        except QMPError as e:
            res["dirty_limit"] = str(e)
    seen = {}		# tid -> the limits seen on it
    last_limit = {}		# tid -> the last limit seen, and when
    first_limit = None
    info = {}
    stats = {"dirty_rate_max": 0, "passes": 0, "remaining_min": None, "throttle_pct": 0}
    mbps = []		# QEMU's estimate of the link, each sample while active
    while time.monotonic() - tm < a.timeout:
        info = qs.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        ram = info.get("ram", {})
        stats["dirty_rate_max"] = max(stats["dirty_rate_max"], ram.get("dirty-pages-rate", 0))
        if ram.get("dirty-sync-count", 0) >= 2 and ram.get("remaining") is not None:
            m = stats["remaining_min"]
            stats["remaining_min"] = ram["remaining"] if m is None else min(m, ram["remaining"])
        stats["passes"] = ram.get("dirty-sync-count", stats["passes"])
        if ram.get("mbps"):
            mbps.append(ram["mbps"])
        stats["throttle_pct"] = info.get("cpu-throttle-percentage", stats["throttle_pct"])
        for t, st in cg_state(qpid, tids).items():
            if limited(st):
                seen.setdefault(t, set()).add("%s %s" % (st[0], st[1]))
                last_limit[t] = [st[1], round(time.monotonic() - tm, 2)]
                if first_limit is None:
                    first_limit = (len(computes(src2)), len(computes(refp)))
        time.sleep(0.25)
    tend = time.monotonic()
    # QEMU 7.2 says "completed" a moment before it has set total-time and
    # downtime: ask again for them.
    for _ in range(20):
        if info.get("status") != "completed" or info.get("total-time"):
            break
        time.sleep(0.1)
        info = qs.cmd("query-migrate")
    r1 = run_s(qpid, tids[1])
    say("cpu1_during", cpu1_where(c0, cpu1_ticks()))
    m1, g1 = len(computes(src2)), len(computes(refp))
    c["status"] = status = info.get("status", "none")
    if status not in ("completed", "failed", "cancelled"):
        qs.cmd("migrate_cancel")
        res["bounded"] = True
    if a.dirty_limit and procs["src"].alive():
        try:
            qs.cmd("cancel-vcpu-dirty-limit")
        except QMPError:
            pass
    say("migrate", "status=%s total_ms=%s downtime_ms=%s wall_s=%.1f" % (
        status, info.get("total-time"), info.get("downtime"), tend - tm))
    # Lines printed once the migration began, up to its end (the last one
    # may straddle the switch-over: left out).
    during = computes(src2)[m0 + 1:m1 - 1] if m1 - m0 > 2 else []
    ref_during = computes(refp)[g0:g1]
    say("during", "%.0f n=%d cpu=%.3f" % (median(during), len(during), (r1 - r0) / (tend - tm)))
    say("ref_during", "%.0f n=%d" % (median(ref_during), g1 - g0))
    if first_limit is not None:
        lim = computes(src2)[first_limit[0] + 1:m1 - 1]
        say("during_limited", "%.0f n=%d" % (median(lim), len(lim)))
        rl = computes(refp)[first_limit[1]:g1]
        say("ref_limited", "%.0f n=%d" % (median(rl), len(rl)))
    say("seen", json.dumps({t: sorted(v) for t, v in seen.items()}, sort_keys=True))
    res.update(stats, status=status, total_ms=info.get("total-time"),
               downtime_ms=info.get("downtime"), wall_s=round(tend - tm, 1),
               compute_during=median(during), ref_during=median(ref_during),
               link_mbps=round(median(mbps) / 8, 2),
               transferred_mb=round(info.get("ram", {}).get("transferred", 0) / 1e6, 1),
               writer_mbps_during=round((len(ticks(src1)) - k0) / (tend - tm) *
                                        per_tick_bytes(a) / 1e6, 2),
               limits_seen={t: sorted(v) for t, v in seen.items()}, last_limit=last_limit)


def after_lmig(procs, res):
    """lmig's two ends after a completed migration: exit codes and reports."""
    rc_send = procs["send"].wait(30)
    rc_recv = procs["recv"].wait(30)
    say("send-rc", rc_send)
    say("recv-rc", rc_recv)
    say("send", procs["send"].text("out") or "none")
    if procs["send"].text():
        say("send-err", procs["send"].text())
    if procs["recv"].text():
        say("recv-err", procs["recv"].text())
    res.update(send_rc=rc_send, recv_rc=rc_recv, send=send_report(procs))


def after_dst(a, c, procs):
    """The destination runs on: its ticks continue the source's and advance."""
    res, qd = c["res"], c["qd"]
    last = max(ticks(c["src1"]) or [0])
    say("src_ticks", "at_migrate=%d last=%d" % (c["src_tick"], last))
    try:
        st = qd.cmd("query-status").get("status")
    except QMPError as e:
        st = "error " + str(e)
    say("dst_status", st)
    d0 = ticks(c["dst1"])
    time.sleep(a.after)
    d1 = ticks(c["dst1"])
    say("dst_ticks", "first=%d at_check=%d last=%d" % (
        d0[0] if d0 else 0, max(d0 or [0]), max(d1 or [0])))
    say("dst_computes", len(computes(c["dst2"])))
    res.update(dst_status=st, dst_runs=bool(d0) and d0[0] >= last and
               max(d1 or [0]) > max(d0 or [0]))

    # Every limit undone: the vCPU threads' cgroups as before, nothing left.
    after = cg_state(c["qpid"], c["tids"]) if procs["src"].alive() else {}
    say("cg_after", json.dumps(after, sort_keys=True))
    say("cg_same", "yes" if after == c["cg_before"] else "no")
    say("state_file", "left" if state_file(c["qpid"]) else "gone")
    say("leftovers", " ".join(lmig_leftovers(a.cgroot)) or "none")
    res.update(cg_same=after == c["cg_before"])


def send_report(procs):
    try:
        return json.loads(procs["send"].text("out"))
    except ValueError:
        return None


def run(a, work, procs, res):
    c = start(a, work, procs, res)
    qs, qd = c["qs"], c["qd"]
    qs.cmd("migrate-set-parameters", **{"max-bandwidth": a.bandwidth * 1000 * 1000,
                                        "downtime-limit": a.downtime})
    for cap in a.capability:
        for q in (qs, qd):
            q.cmd("migrate-set-capabilities", capabilities=[{"capability": cap, "state": True}])
    qd.cmd("migrate-incoming", uri="unix:" + c["dstsock"])
    uri = "unix:" + c["dstsock"] if a.direct else start_lmig(a, work, procs, c)
    migrate(a, c, procs, uri)
    if c["status"] != "completed":
        # Nothing to follow on the destination: what lmig says, then stop.
        if not a.direct:
            for n in ("send", "recv"):
                procs[n].wait(15)
                procs[n].kill()
            say("send", procs["send"].text("out") or "none")
            res["send"] = send_report(procs)
        return
    if not a.direct:
        after_lmig(procs, res)
    after_dst(a, c, procs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmig", default=os.path.join(REPO, "user", "lmig"))
    ap.add_argument("--guest", required=True)
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    ap.add_argument("--mem", type=int, default=128)
    ap.add_argument("--rate", type=int, default=16, help="the writer's MB/s")
    ap.add_argument("--touch", type=int, default=8, help="MiB the writer rewrites")
    ap.add_argument("--compute-ms", type=int, default=500)
    # A writer halted between slices stops on the destination: its local
    # APIC timer never fires again after a migration under nested KVM here.
    ap.add_argument("--writer-wait", choices=("spin", "hlt"), default="spin",
                    help="how the writer waits between slices")
    ap.add_argument("--bandwidth", type=int, default=2, help="QEMU's max-bandwidth, MB/s")
    # lmig keeps its CFS period within a quarter of it: 400 ms lets it go down
    # to 1 % of a CPU (1 ms of 100), where the writer no longer outruns the link.
    ap.add_argument("--downtime", type=int, default=400, help="QEMU's downtime-limit, ms")
    ap.add_argument("--before", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--after", type=float, default=3.0,
                    help="seconds the destination is watched for ticks")
    ap.add_argument("--native", action="store_true", help="without --qmp (no help)")
    ap.add_argument("--direct", action="store_true",
                    help="QEMU to QEMU, no lmig in between (bench/converge_kvm.sh)")
    ap.add_argument("--capability", action="append", default=[],
                    help="a migration capability turned on at both ends")
    ap.add_argument("--dirty-ring", type=int, default=0,
                    help="-accel kvm,dirty-ring-size=N for both QEMUs")
    ap.add_argument("--dirty-limit", type=int, default=0,
                    help="QEMU's own limit, MB/s for each vCPU, set as the migration starts")
    ap.add_argument("--json", help="a file for one JSON line of the run's numbers")
    # The writer spins between its slices, so its thread uses most of a
    # CPU before any limit: the default --throttle-max (90) would stop at
    # a tenth of that, where it still dirties as fast as the link carries.
    ap.add_argument("--lmig-args", default="--throttle-max 99",
                    help="more options of lmig proxy send --qmp")
    ap.add_argument("--lmig-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of lmig proxy send (LMIG_CVM_PERIOD=short, ...)")
    ap.add_argument("--show", type=int, default=0,
                    help="print the last N lines of each console and error file")
    ap.add_argument("--cgroot", default="/sys/fs/cgroup")
    ap.add_argument("--cgroup", help="the cgroup the source QEMU starts in")
    ap.add_argument("--tag", default="nest", help="the first word of each line")
    a = ap.parse_args()
    global TAG
    TAG = a.tag
    # This script too stays off the computing vCPU's CPU.
    os.sched_setaffinity(0, {0})
    work = tempfile.mkdtemp(prefix="lmig-nest.")
    procs = {}
    res = {"rate": a.rate, "bandwidth": a.bandwidth, "downtime_limit": a.downtime}
    rc = 0
    try:
        run(a, work, procs, res)
    except (QMPError, OSError, subprocess.CalledProcessError) as e:
        say("error", str(e))
        for n, p in procs.items():
            if p is not None and p.text():
                say("error", "%s: %s" % (n, p.text()))
        res["error"] = str(e)
        rc = 1
    finally:
        for n in ("send", "recv", "dst", "src", "spin", "ref"):
            if procs.get(n) is not None:
                procs[n].kill()
        if a.show:
            for f in sorted(os.listdir(work)):
                if f.endswith(".con") or f.endswith(".err"):
                    for ln in lines(os.path.join(work, f))[-a.show:]:
                        print("# %s: %s" % (f, ln))
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        say("json", json.dumps(res, sort_keys=True))
        with open(a.json, "a") as f:
            f.write(json.dumps(res, sort_keys=True) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())

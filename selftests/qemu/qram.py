#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""lmig qemu send/recv against real QEMUs; one JSON line of what happened.

Boots the test guest (qmig.py's: Debian's kernel, mkguest.sh's initramfs
printing "lmig-guest tick N" every 100 ms while it rewrites memory) in a
source QEMU whose RAM is a shared memfd backend, then runs these cases,
each against a fresh destination QEMU (-incoming defer -S, its RAM a
memory-backend-file in /dev/shm):

  refused    the destination's backend has another size: lmig qemu recv
             refuses the blocks and tells its QEMU to quit; lmig qemu send
             fails with one line, the source runs on
  cancel     the pre-copy is slowed (--bandwidth) so that the final round
             takes seconds; once the source QEMU reports pre-switchover,
             lmig qemu recv is SIGKILLed: lmig qemu send must cancel QEMU's
             migration and the guest run again (its ticks advance)
  killed     the same, but lmig qemu send is SIGKILLed: its guard process
             cancels QEMU's migration, the guest runs again; lmig qemu recv
             fails and its QEMU quits
  migrate    a plain run: both lmig sides exit 0, QEMU completed; the
             destination (held by -S) is paused when the hashes of the
             source's memfd (the source stopped: postmigrate) and of the
             destination's file are taken; then `cont`, and its ticks
             continue from the source's
  noshared   a QEMU whose RAM is not shared (plain -m): lmig qemu send
             exits 1 with one line
  huge       a source of its own with three memfd backends, two of one
             size (20 MiB) and the last huge pages (hugetlb=on, 24 MiB, the
             guest writing its first 8); the destination has memfds for
             the two and, for the last, a file on a hugetlbfs mount of its
             own, filled with 0xaa before its QEMU starts (the zero pages
             must be stored, not assumed), its backends created in the
             other order (the two memfds' descriptors swapped, as seen
             from the source's); the huge pages it takes are
             reserved (vm.nr_hugepages) for the case and given back after.  The migration completes; each block's
             hash (the receiver's descriptors and file) equals the
             source's, and the guest's memory as each QEMU reads it
             (pmemsave, the RAM below 640 KiB and from 1 MiB on) is equal
             too, which does not rest on lmig's matching of memfds; after
             `cont` the guest's ticks continue from the source's

Everything it starts is killed, every file it made removed.  Exit status
0 when it got as far as a result, 4 when QEMU or the kernel is missing.
"""
import argparse
import hashlib
import json
import mmap
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qmig  # noqa: E402
from qmig import QMP, QMPError, Proc  # noqa: E402

TAG = "lmig-qram"


def qemu_argv(a, name, work, ram, incoming=False, kernel=True, mem=0, backwards=False):
    argv = [a.qemu, "-accel", "tcg", "-m", str(mem or a.mem), "-nographic", "-no-reboot",
            "-nic", "none", "-name", name, "-monitor", "none",
            "-serial", "file:" + os.path.join(work, name + ".serial"),
            "-qmp", "unix:%s,server=on,wait=off" % os.path.join(work, name + ".qmp"),
            "-qmp", "unix:%s,server=on,wait=off" % os.path.join(work, name + "-lmig.qmp")]
    if isinstance(ram, list):
        # NUMA nodes, one backend each: a RAM block each.  backwards: QEMU
        # creates the backends (its memfds) last node first.
        objs = [["-object", spec + ",id=ram%d" % i] for i, spec in enumerate(ram)]
        for o in (objs[::-1] if backwards else objs):
            argv += o
        for i in range(len(ram)):
            argv += ["-numa", "node,memdev=ram%d" % i]
    elif ram:
        argv += ["-object", ram + ",id=ram0", "-machine", "memory-backend=ram0"]
    if kernel and a.guest == "smp":
        # mkguest.sh --smp's guest without an OS: boots in a second; vCPU 1
        # computes and prints on a second serial port.  Both sides.
        argv += ["-smp", "2", "-serial", "file:" + os.path.join(work, name + ".serial2")]
    if incoming:
        argv += ["-incoming", "defer", "-S"]
    elif kernel and a.guest == "smp":
        argv += ["-kernel", a.smp_elf, "-append", "guest_touch=%d guest_rate=%d"
                 % (a.touch, a.rate)]
    elif kernel:
        argv += ["-kernel", a.kernel, "-initrd", a.initrd, "-append",
                 "console=ttyS0 quiet panic=-1 no_timer_check guest_touch=%d guest_rate=%d"
                 % (a.touch, a.rate)]
    else:
        argv += ["-S"]
    return argv


class Side:
    def __init__(self, a, name, ram, incoming=False, kernel=True, mem=0, backwards=False):
        self.name = name
        self.work = a.work
        self.proc = Proc(name, qemu_argv(a, name, a.work, ram, incoming, kernel, mem, backwards),
                         a.work)
        self.qmp = QMP(os.path.join(a.work, name + ".qmp"))
        self.lmig_qmp = os.path.join(a.work, name + "-lmig.qmp")

    def ticks(self):
        try:
            with open(os.path.join(self.work, self.name + ".serial"), "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return []
        t = []
        for ln in text.replace("\r", "").split("\n"):
            i = ln.find("lmig-guest tick ")
            if i >= 0:
                try:
                    t.append(int(ln[i:].split()[2]))
                except (IndexError, ValueError):
                    pass
        return t

    def last_tick(self):
        t = self.ticks()
        return t[-1] if t else 0

    def status(self):
        try:
            return self.qmp.cmd("query-status")["status"]
        except (QMPError, OSError):
            return "gone"

    def mig(self):
        try:
            return self.qmp.cmd("query-migrate").get("status", "none")
        except (QMPError, OSError):
            return "gone"

    def wait_migration_event(self, status, timeout, go_on):
        """Read QEMU's events until MIGRATION reaches status (True), the
        timeout passes or go_on() turns false (False)."""
        q = self.qmp
        deadline = time.monotonic() + timeout
        q.sock.settimeout(0.05)
        try:
            while time.monotonic() < deadline and go_on():
                while b"\n" in q.buf:
                    line, q.buf = q.buf.split(b"\n", 1)
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if ev.get("event") == "MIGRATION" and \
                            ev.get("data", {}).get("status") == status:
                        return True
                try:
                    data = q.sock.recv(65536)
                except OSError:
                    continue
                if not data:
                    return False
                q.buf += data
            return False
        finally:
            q.sock.settimeout(30.0)

    def ignore_shared(self):
        """Whether QEMU's x-ignore-shared capability is on."""
        try:
            caps = self.qmp.cmd("query-migrate-capabilities")
        except (QMPError, OSError):
            return None
        return any(c["capability"] == "x-ignore-shared" and c["state"] for c in caps)

    def stop(self):
        self.qmp.close()
        self.proc.kill()


def lmig_pair(a, name, src, dst, send_extra):
    """Start lmig qemu recv (its port through --ready-fd) and send."""
    rfd, wfd = os.pipe()
    recv = subprocess.Popen(qmig.ns_prefix(a.dst_ns) + [
                            a.lmig, "qemu", "recv", "--qmp", dst.lmig_qmp, "--listen",
                            a.addr + ":0", "--ready-fd", str(wfd), "--json"],
                            stdout=open(os.path.join(a.work, name + "-recv.out"), "wb"),
                            stderr=open(os.path.join(a.work, name + "-recv.err"), "wb"),
                            pass_fds=(wfd,), start_new_session=True)
    os.close(wfd)
    port = os.read(rfd, 32).decode().strip()
    os.close(rfd)
    send = subprocess.Popen(qmig.ns_prefix(a.src_ns) + [
                            a.lmig, "qemu", "send", "--qmp", src.lmig_qmp, "--to",
                            a.addr + ":" + (port or "1"), "--tracker", a.tracker, "--json"]
                            + send_extra,
                            stdout=open(os.path.join(a.work, name + "-send.out"), "wb"),
                            stderr=open(os.path.join(a.work, name + "-send.err"), "wb"),
                            start_new_session=True)
    return recv, send


def outcome(a, name, p, which, timeout):
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rc = p.wait()
    res = {"exit": rc}
    try:
        with open(os.path.join(a.work, "%s-%s.out" % (name, which))) as f:
            res["json"] = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        res["json"] = {}
    with open(os.path.join(a.work, "%s-%s.err" % (name, which)), errors="replace") as f:
        res["stderr"] = f.read()[-400:]
    return res


def advancing(side, timeout=10):
    """The guest's tick after it went up twice (0 if it did not)."""
    first = side.last_tick()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if side.last_tick() >= first + 2:
            return side.last_tick()
        time.sleep(0.1)
    return 0


def sha_pages(path, size):
    """sha256 of the first size bytes of path, and how many of its 4 KiB pages are not zero."""
    h = hashlib.sha256()
    zero = bytes(4096)
    nonzero = 0
    with open(path, "rb") as f:
        left = size
        while left > 0:
            b = f.read(min(left, 1 << 22))
            if not b:
                break
            h.update(b)
            nonzero += sum(1 for i in range(0, len(b), 4096) if b[i:i + 4096] != zero)
            left -= len(b)
    return h.hexdigest(), nonzero


def sha(path, size):
    return sha_pages(path, size)[0]


def resume_and_follow(dst, out):
    """cont on the destination held by -S; its first tick, a later one, its state into out."""
    dst.qmp.cmd("cont")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not dst.ticks():
        time.sleep(0.1)
    t = dst.ticks()
    out["dst_first_tick"] = t[0] if t else 0
    out["dst_tick"] = advancing(dst)
    out["dst_status"] = dst.status()


def case_refused(a, src, res):
    shms = ["/dev/shm/%s-%d-refused-%d" % (TAG, os.getpid(), i) for i in range(a.blocks)]
    sizes = block_sizes(a)
    sizes[0] += 16
    dst = Side(a, "dst-refused", dst_ram(a, shms, sizes), incoming=True, mem=sum(sizes))
    try:
        recv, send = lmig_pair(a, "refused", src, dst, [])
        s = outcome(a, "refused", send, "send", 30)
        r = outcome(a, "refused", recv, "recv", 30)
        gone = dst.proc.wait(10) is not None
        res["refused"] = {"send": s, "recv": r, "dst_qemu_exited": gone,
                          "src_ignore_shared": src.ignore_shared(),
                          "src_status": src.status(), "src_tick": advancing(src)}
    finally:
        dst.stop()
        for f in shms:
            if os.path.exists(f):
                os.unlink(f)


def case_cancel(a, src, res, kill_send=False):
    name = "killed" if kill_send else "cancel"
    shms = ["/dev/shm/%s-%d-%s-%d" % (TAG, os.getpid(), name, i) for i in range(a.blocks)]
    dst = Side(a, "dst-" + name, dst_ram(a, shms), incoming=True)
    try:
        # QEMU announces each state of its migration (capability "events"):
        # the kill follows pre-switchover within milliseconds, however short
        # the final round, rather than whenever a poll happens to see it.
        src.qmp.cmd("migrate-set-capabilities",
                    capabilities=[{"capability": "events", "state": True}])
        recv, send = lmig_pair(a, name, src, dst,
                               ["--bandwidth", a.cancel_bw, "--downtime-ms", "20000"])
        seen = src.wait_migration_event("pre-switchover", 60, lambda: send.poll() is None)
        st_at = src.status()
        if kill_send:
            # lmig qemu send dies, its guard stays (a process of its own session).
            if seen:
                os.kill(send.pid, signal.SIGKILL)
            send.wait()
            r = outcome(a, name, recv, "recv", 30)
            gone = dst.proc.wait(10) is not None
            # The guard cancels once lmig's QMP connection is gone, waits
            # for the guest to run, then turns the capabilities off.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (src.status() != "running" or
                                                   src.ignore_shared() is not False):
                time.sleep(0.05)
            res[name] = {"pre_switchover_seen": seen, "src_status_then": st_at, "recv": r,
                         "dst_qemu_exited": gone, "src_migration": src.mig(),
                         "src_status": src.status(), "src_ignore_shared": src.ignore_shared(),
                         "src_tick": advancing(src)}
            return
        if seen:
            os.killpg(recv.pid, signal.SIGKILL)
        s = outcome(a, name, send, "send", 30)
        recv.wait()
        # Where the killed lmig qemu recv had its QEMU listen (lmig removes it itself).
        stale = "/tmp/lmig-qemu-dst-%d.sock" % recv.pid
        if os.path.exists(stale):
            os.unlink(stale)
        res[name] = {"pre_switchover_seen": seen, "src_status_then": st_at, "send": s,
                     "src_migration": src.mig(), "src_status": src.status(),
                     "src_ignore_shared": src.ignore_shared(), "src_tick": advancing(src)}
    finally:
        dst.stop()
        for f in shms:
            if os.path.exists(f):
                os.unlink(f)


def block_sizes(a):
    """MiB of each RAM block: two of different sizes with --blocks 2."""
    if a.blocks == 1:
        return [a.mem]
    return [a.mem * 5 // 8, a.mem - a.mem * 5 // 8]


def src_ram(a):
    s = ["memory-backend-memfd,size=%dM,share=on" % m for m in block_sizes(a)]
    return s if a.blocks > 1 else s[0]


def dst_ram(a, shms, sizes=None):
    s = ["memory-backend-file,size=%dM,mem-path=%s,share=on" % (m, f)
         for m, f in zip(sizes or block_sizes(a), shms)]
    return s if a.blocks > 1 else s[0]


def case_migrate(a, src, res):
    shms = ["/dev/shm/%s-%d-migrate-%d" % (TAG, os.getpid(), i) for i in range(a.blocks)]
    dst = Side(a, "dst-migrate", dst_ram(a, shms), incoming=True)
    try:
        t0 = time.monotonic()
        dev0 = qmig.dev_bytes(a.count_dev) if a.count_dev else 0
        recv, send = lmig_pair(a, "migrate", src, dst, a.send_args.split())
        s = outcome(a, "migrate", send, "send", a.timeout)
        r = outcome(a, "migrate", recv, "recv", 30)
        if a.count_dev:
            res["dev_bytes"] = qmig.dev_bytes(a.count_dev) - dev0
        out = {"send": s, "recv": r, "secs": round(time.monotonic() - t0, 2),
               "src_migration": src.mig(), "src_status": src.status(),
               "dst_status_before_cont": dst.status(), "src_last_tick": src.last_tick()}
        blocks = s["json"].get("blocks") or [{}]
        path = blocks[0].get("path", "")
        out["blocks"] = len(s["json"].get("blocks") or [])
        if path and s["exit"] == 0:
            # Each block by its id: ramN is the destination's shms[N].
            out["src_sha"] = "".join(sha(b["path"], b["size"]) for b in blocks)
            out["dst_sha"] = "".join(sha(shms[int(b["id"][3:])], b["size"]) for b in blocks)
            out["dst_status_after_hash"] = dst.status()
            resume_and_follow(dst, out)
        res["migrate"] = out
    finally:
        dst.stop()
        for f in shms:
            if os.path.exists(f):
                os.unlink(f)


HUGE_MB = 24        # the huge-page block of the "huge" case


def huge_reserve(pages):
    """Reserve pages more huge pages (2 MiB); the old count, or raise."""
    path = "/proc/sys/vm/nr_hugepages"
    with open(path) as f:
        old = int(f.read())
    with open(path, "w") as f:
        f.write(str(old + pages))
    with open(path) as f:
        got = int(f.read())
    if got < old + pages:
        with open(path, "w") as f:
            f.write(str(old))
        raise OSError("cannot reserve %d huge pages (vm.nr_hugepages %d, asked %d)"
                      % (pages, got, old + pages))
    return old


def fill_hugetlbfs(path, size, byte):
    """A file on hugetlbfs of size bytes of byte (it takes no write(2))."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size, mmap.MAP_SHARED) as m:
            m[:] = bytes([byte]) * size
    finally:
        os.close(fd)


def pmem_sha(side, mem_mb):
    """The guest's RAM as its QEMU reads it (pmemsave): below 640 KiB and
    from 1 MiB on (what lies between is ROM and VGA, not RAM)."""
    out = []
    for start, end in ((0, 0xa0000), (0x100000, mem_mb << 20)):
        f = os.path.join(side.work, "%s-pmem-%x" % (side.name, start))
        side.qmp.cmd("pmemsave", val=start, size=end - start, filename=f)
        out.append(sha(f, end - start))
        os.unlink(f)
    return "".join(out)


def case_huge(a, res):
    sizes = [(a.mem - HUGE_MB) // 2, (a.mem - HUGE_MB) // 2, HUGE_MB]
    mnt = os.path.join(a.work, "hugetlbfs")
    hfile = os.path.join(mnt, "dst-ram2")
    src = dst = None
    old = None
    mounted = False
    out = {}
    try:
        old = huge_reserve(2 * HUGE_MB // 2)    # the source's block and the destination's
        os.makedirs(mnt, exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", mnt], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        mounted = True
        fill_hugetlbfs(hfile, HUGE_MB << 20, 0xaa)
        src = Side(a, "src-huge", ["memory-backend-memfd,size=%dM,share=on%s"
                                   % (m, ",hugetlb=on,hugetlbsize=2M" if i == 2 else "")
                                   for i, m in enumerate(sizes)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(src.ticks()) < 3:
            if not src.proc.alive():
                raise QMPError("the source QEMU exited: " + src.proc.text())
            time.sleep(0.1)
        dst = Side(a, "dst-huge", ["memory-backend-file,size=%dM,mem-path=%s,share=on" % (m, hfile)
                                   if i == 2 else "memory-backend-memfd,size=%dM,share=on" % m
                                   for i, m in enumerate(sizes)], incoming=True, backwards=True)
        t0 = time.monotonic()
        recv, send = lmig_pair(a, "huge", src, dst, a.send_args.split())
        s = outcome(a, "huge", send, "send", a.timeout)
        r = outcome(a, "huge", recv, "recv", 30)
        out.update(send=s, recv=r, secs=round(time.monotonic() - t0, 2), src_status=src.status(),
                   dst_status_before_cont=dst.status(), src_last_tick=src.last_tick())
        sb = s["json"].get("blocks") or []
        rb = r["json"].get("blocks") or []
        out["blocks"] = [(b.get("id"), b.get("kind"), b.get("hugetlb"), b.get("pages_zero"))
                         for b in sb]
        out["dst_blocks"] = [(b.get("id"), b.get("kind"), b.get("hugetlb"), b.get("path"))
                             for b in rb]
        if s["exit"] == 0 and r["exit"] == 0 and len(sb) == 3 and len(rb) == 3:
            # Each side's blocks through the files its lmig wrote and read.
            out["src_sha"] = [sha(b["path"], b["size"]) for b in sb]
            out["dst_sha"] = [sha(b["path"], b["size"]) for b in rb]
            out["src_pmem"] = pmem_sha(src, a.mem)
            out["dst_pmem"] = pmem_sha(dst, a.mem)
            out["dst_status_after_hash"] = dst.status()
            resume_and_follow(dst, out)
    finally:
        res["huge"] = out
        for side in (dst, src):
            if side:
                side.stop()
        if os.path.exists(hfile):
            os.unlink(hfile)
        if mounted:
            subprocess.run(["umount", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.path.isdir(mnt):
            os.rmdir(mnt)
        if old is not None:
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(old))


def case_noshared(a, res):
    q = Side(a, "noshared", None, kernel=False)
    try:
        p = subprocess.run([a.lmig, "qemu", "send", "--qmp", q.lmig_qmp, "--to",
                            "127.0.0.1:9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        res["noshared"] = {"exit": p.returncode, "stderr": p.stderr.decode(errors="replace"),
                           "stdout": p.stdout.decode(errors="replace")}
    finally:
        q.stop()


def lines(text):
    return len([ln for ln in text.split("\n") if ln.strip()])


def without_rounds(v):
    """v without lmig's round_stats: the first line stays within what a test reads
    (the work directory's *-send.out have them)."""
    if isinstance(v, dict):
        return {k: without_rounds(x) for k, x in v.items() if k != "round_stats"}
    if isinstance(v, list):
        return [without_rounds(x) for x in v]
    return v


def flat(res):
    """The last line: the facts the test judges, one level, distinct keys."""
    f = {"secs": res.get("secs", 0)}
    if "harness_error" in res:
        f["harness_error"] = res["harness_error"]
    n = res.get("noshared")
    if n:
        e = n["stderr"]
        f.update(noshared_exit=n["exit"], noshared_lines=lines(e),
                 noshared_says_how=all(w in e for w in (
                     "memory-backend-memfd", "share=on", "memory-backend=", "lmig pipe")))
    r = res.get("refused")
    if r:
        f.update(refused_send_exit=r["send"]["exit"], refused_recv_exit=r["recv"]["exit"],
                 refused_send_lines=lines(r["send"]["stderr"]),
                 refused_dst_exited=r["dst_qemu_exited"], refused_src_status=r["src_status"],
                 refused_src_tick=r["src_tick"], refused_caps_off=r["src_ignore_shared"] is False)
    c = res.get("cancel")
    if c:
        f.update(cancel_seen=c["pre_switchover_seen"], cancel_status_then=c["src_status_then"],
                 cancel_send_exit=c["send"]["exit"], cancel_send_lines=lines(c["send"]["stderr"]),
                 cancel_source=c["send"]["json"].get("source", ""),
                 cancel_src_migration=c["src_migration"], cancel_src_status=c["src_status"],
                 cancel_src_tick=c["src_tick"], cancel_caps_off=c["src_ignore_shared"] is False)
    k = res.get("killed")
    if k:
        f.update(killed_seen=k["pre_switchover_seen"], killed_recv_exit=k["recv"]["exit"],
                 killed_recv_lines=lines(k["recv"]["stderr"]),
                 killed_dst_exited=k["dst_qemu_exited"], killed_src_migration=k["src_migration"],
                 killed_src_status=k["src_status"], killed_src_tick=k["src_tick"],
                 killed_caps_off=k["src_ignore_shared"] is False)
    m = res.get("migrate")
    if m:
        sj = m["send"]["json"]
        b = (sj.get("blocks") or [{}])[0]
        rs = b.get("round_stats") or [{}]
        f.update(migrate_round_stats=len(b.get("round_stats") or []),
                 migrate_round0_bytes=rs[0].get("pages", 0) * 4096, migrate_block0_size=b.get("size", 0),
                 migrate_last_round_frozen=rs[-1].get("frozen", False),
                 migrate_ram_start_ms=sj.get("ram_start_ms", -1))
        f.update(migrate_send_exit=m["send"]["exit"], migrate_recv_exit=m["recv"]["exit"],
                 migrate_qemu_status=sj.get("qemu_status", ""),
                 migrate_recv_qemu_status=m["recv"]["json"].get("qemu_status", ""),
                 migrate_src_status=m["src_status"],
                 migrate_dst_before=m["dst_status_before_cont"],
                 migrate_dst_after_hash=m.get("dst_status_after_hash", ""),
                 migrate_hash_equal=bool(m.get("src_sha")) and m.get("src_sha") == m.get("dst_sha"),
                 migrate_src_last_tick=m["src_last_tick"],
                 migrate_dst_first_tick=m.get("dst_first_tick", 0),
                 migrate_dst_tick=m.get("dst_tick", 0), migrate_dst_status=m.get("dst_status", ""),
                 migrate_secs=m["secs"], migrate_qemu_downtime_ms=sj.get("qemu_downtime_ms", -1),
                 migrate_rounds=b.get("rounds", 0), migrate_tracker=b.get("tracker", ""),
                 migrate_device_bytes=sj.get("device_bytes", 0),
                 migrate_bytes_wire=sj.get("bytes_wire", 0), migrate_blocks=m.get("blocks", 0),
                 migrate_total_ms=sj.get("total_ms", 0), migrate_qemu_total_ms=sj.get("qemu_total_ms", -1),
                 migrate_dev_bytes=res.get("dev_bytes", -1))
    h = res.get("huge")
    if h and "send" in h:
        sj = h["send"]["json"]
        f.update(huge_send_exit=h["send"]["exit"], huge_recv_exit=h["recv"]["exit"],
                 huge_send_err=h["send"]["stderr"][-200:], huge_recv_err=h["recv"]["stderr"][-200:],
                 huge_qemu_status=sj.get("qemu_status", ""),
                 huge_recv_qemu_status=h["recv"]["json"].get("qemu_status", ""),
                 huge_src_status=h["src_status"], huge_dst_before=h["dst_status_before_cont"],
                 huge_dst_after_hash=h.get("dst_status_after_hash", ""),
                 huge_blocks=len(h["blocks"]),
                 huge_src_hugetlb=",".join(str(b[0]) for b in h["blocks"] if b[2]),
                 huge_dst_hugetlb=",".join(str(b[0]) for b in h["dst_blocks"] if b[2]),
                 huge_dst_memfds=",".join(sorted(str(b[0]) for b in h["dst_blocks"]
                                                 if b[1] == "memfd")),
                 huge_zero_pages=sum(b[3] or 0 for b in h["blocks"] if b[2]),
                 huge_dst_fds_differ=len({b[3] for b in h["dst_blocks"]}) == 3,
                 huge_hash_equal=bool(h.get("src_sha")) and h.get("src_sha") == h.get("dst_sha"),
                 huge_pmem_equal=bool(h.get("src_pmem")) and h.get("src_pmem") == h.get("dst_pmem"),
                 huge_src_last_tick=h["src_last_tick"], huge_dst_first_tick=h.get("dst_first_tick", 0),
                 huge_dst_tick=h.get("dst_tick", 0), huge_dst_status=h.get("dst_status", ""),
                 huge_secs=h["secs"], huge_rounds=(sj.get("blocks") or [{}])[0].get("rounds", 0),
                 huge_qemu_downtime_ms=sj.get("qemu_downtime_ms", -1))
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--mem", type=int, default=256, help="guest RAM, MiB")
    ap.add_argument("--touch", type=int, default=24, help="MiB the guest fills")
    ap.add_argument("--rate", type=int, default=8, help="MB/s it rewrites")
    ap.add_argument("--cancel-bw", default="12M")
    ap.add_argument("--guest", default="linux", choices=("linux", "smp"),
                    help="Debian's kernel and guest.c, or mkguest.sh --smp's guest without an OS")
    ap.add_argument("--blocks", type=int, default=1, choices=(1, 2),
                    help="RAM blocks: 2 gives the guest two NUMA nodes, a backend each")
    ap.add_argument("--cases", default="refused,cancel,killed,migrate,noshared,huge")
    ap.add_argument("--tracker", default="scan")
    ap.add_argument("--send-args", default="", help="more options of lmig qemu send (migrate case)")
    ap.add_argument("--addr", default="127.0.0.1", help="the destination's address")
    ap.add_argument("--src-ns", default="", help="network namespace of lmig qemu send")
    ap.add_argument("--dst-ns", default="", help="network namespace of lmig qemu recv")
    ap.add_argument("--count-dev", default="", help="NS:DEV whose sent bytes to count")
    ap.add_argument("--timeout", type=float, default=60, help="s for the migration")
    ap.add_argument("--settle", type=float, default=0, help="s the guest runs before")
    ap.add_argument("--lmig", default=os.environ.get("LMIG", os.path.join(qmig.REPO, "user", "lmig")))
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--initrd", default="")
    a = ap.parse_args()
    rc = qmig.guest_inputs(a, "qram")
    if rc:
        return rc
    if a.guest == "smp":
        r = subprocess.run(["sh", os.path.join(qmig.HERE, "mkguest.sh"), "--smp"],
                           stdout=subprocess.PIPE)
        if r.returncode != 0:
            return 4 if r.returncode == 4 else 1
        a.smp_elf = r.stdout.decode().strip()
    res = {}
    cases = a.cases.split(",")
    t0 = time.monotonic()
    src = None
    try:
        if "noshared" in cases:
            case_noshared(a, res)
        if "huge" in cases:
            case_huge(a, res)
        if set(cases) & {"refused", "cancel", "killed", "migrate"}:
            src = Side(a, "src", src_ram(a))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(src.ticks()) < 3:
                if not src.proc.alive():
                    raise QMPError("the source QEMU exited: " + src.proc.text())
                time.sleep(0.1)
            res["src_ready_s"] = round(time.monotonic() - t0, 2)
            time.sleep(a.settle)
            for c in ("refused", "cancel", "killed", "migrate"):
                if c == "killed" and c in cases:
                    case_cancel(a, src, res, kill_send=True)
                elif c in cases:
                    globals()["case_" + c](a, src, res)
    except (QMPError, OSError, subprocess.SubprocessError) as e:
        res["harness_error"] = str(e)
    finally:
        if src:
            src.stop()
    res["secs"] = round(time.monotonic() - t0, 2)
    print(json.dumps(without_rounds(res)))
    print(json.dumps(flat(res), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

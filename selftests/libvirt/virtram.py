#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""
lmig qemu send/recv between two libvirt domains, as
Documentation/qemu-ram.md ("QMP beside libvirt") tells an operator to.

The two "hosts" of virtmig.py (each a libvirtd in its own network, mount
and UTS namespaces, a veth pair with 198.18.27.1 and .2 between them).
On the source host a domain (type='qemu': TCG) whose RAM is a shared
memfd (<memoryBacking><source type='memfd'/><access mode='shared'/>) and
which has one more QMP socket of lmig's (<qemu:commandline> -qmp ...)
runs the guest without an operating system of selftests/qemu/mkguest.sh
--smp (it boots in a second and prints "lmig-guest tick N" on its first
serial port, a file).  On the destination host the same domain (same
name, same UUID), defined with -incoming defer and its own extra QMP
socket through <qemu:commandline>, started by libvirt with
`virsh create --paused` (QEMU waits in inmigrate, libvirt shows it
paused).  Then, in each host's namespaces,

    dst# lmig qemu recv --qmp MIG/lmig.qmp --listen 198.18.27.2:0 --ready-fd N
    src# lmig qemu send --qmp MIG/lmig.qmp --to 198.18.27.2:PORT

and with both guests stopped (the source in postmigrate, the destination
paused) the source's memfd and the destination's are hashed; then
`virsh resume` on the destination and `virsh destroy` on the source.
Both daemons' events (virsh event --all --loop) are recorded throughout,
and each domain's state (virsh domstate --reason) at every step.

One JSON line on stdout: what lmig reported, what libvirt said, the
ticks on both consoles, the hashes, and whatever was left behind.
Exit status: 0 ran (the verdict is the test's), 4 libvirt, QEMU or the
guest cannot run here (the reason on stderr), 1 harness error.
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
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "qemu"))
from virtmig import (ADDR, Host, domain_xml_of, leftovers, make_partition,  # noqa: E402
                     qmp_ask, remove_partition, run, wait_for)
from qram import sha  # noqa: E402


def domain_xml(a, name, uid, mig, partition, incoming):
    """The test domain; the destination's waits for its devices."""
    args = numa = ""
    source = a.dst_source if incoming else "memfd"
    mem = a.dst_mem if incoming and a.dst_mem else a.mem
    if a.numa:
        # Two cells of different sizes: two RAM blocks, ram-node0 and ram-node1.
        numa = ("  <cpu>\n    <numa>\n"
                "      <cell id='0' cpus='0' memory='%d' unit='MiB'/>\n"
                "      <cell id='1' cpus='1' memory='%d' unit='MiB'/>\n"
                "    </numa>\n  </cpu>\n" % (mem * 5 // 8, mem - mem * 5 // 8))
    if incoming:
        args = "    <qemu:arg value='-incoming'/>\n    <qemu:arg value='defer'/>\n"
    more = ("  <uuid>%s</uuid>\n  <memoryBacking>\n    <source type='%s'/>\n"
            "    <access mode='shared'/>\n  </memoryBacking>\n%s" % (uid, source, numa))
    boot = ("    <kernel>%s</kernel>\n    <cmdline>guest_touch=%d guest_rate=%d</cmdline>\n"
            % (a.elf, a.touch, a.rate))
    return domain_xml_of(name, mem, 2, boot, a.qemu, mig, partition, more=more, serials=2,
                         qemu_args=args)


def qemu_status(h):
    """The run state QEMU tells on lmig's socket ("gone": no QEMU there)."""
    try:
        return qmp_ask(os.path.join(h.dir, "mig", "lmig.qmp"), "query-status")["status"]
    except (OSError, RuntimeError, ValueError):
        return "gone"


def domstate(h, name):
    rc, out, err = h.virsh("domstate", "--reason", name)
    return out.strip() if rc == 0 else "error: " + err.strip()


def start_events(h, tmp):
    """virsh event --all --loop on H's daemon, into a file."""
    path = os.path.join(tmp, h.role + "-events.txt")
    return subprocess.Popen(["virsh", "-q", "-c", h.uri, "event", "--all", "--loop",
                             "--timestamp"], stdin=subprocess.DEVNULL, stdout=open(path, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True), path


def events_of(path):
    """The events as 'TYPE DETAIL' lines, without timestamps and domain names."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for ln in f:
                m = re.search(r"event '([^']+)' for domain '?[^:']+'?:?\s*(.*)", ln)
                if m:
                    out.append((m.group(1) + " " + m.group(2)).strip())
    except OSError:
        pass
    return out


def lmig_result(tmp, which, p, timeout):
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rc = p.wait()
    res = {"exit": rc}
    try:
        with open(os.path.join(tmp, "lmig-%s.out" % which)) as f:
            res["json"] = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        res["json"] = {}
    with open(os.path.join(tmp, "lmig-%s.err" % which), errors="replace") as f:
        res["stderr"] = f.read()[-400:]
    return res


def advancing(h, timeout=10):
    """The guest's last tick after it went up twice (0 if it did not)."""
    deadline = time.monotonic() + timeout
    first = max(h.ticks() or [0])
    while time.monotonic() < deadline:
        t = max(h.ticks() or [0])
        if t >= first + 2:
            return t
        time.sleep(0.1)
    return 0


def qemu_pid(h, name):
    """The pid of domain NAME's QEMU (libvirt's pid file)."""
    with open(os.path.join(h.dir, "run", "libvirt", "qemu", name + ".pid")) as f:
        return int(f.read().strip())


def cmdline_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def migrate(a, res, tmp, tag):
    name = tag + "-vm"
    uid = str(uuid.uuid4())
    mig = os.path.join(tmp, "mig")
    os.makedirs(mig)
    hosts = {r: Host(r, tmp, tag) for r in ("src", "dst")}
    src, dst = hosts["src"], hosts["dst"]
    procs = {}
    pids = []
    parts = []
    backing = "/dev/shm/" + tag
    t_all = time.monotonic()
    try:
        for h in hosts.values():
            make_partition(h.partition)
            parts.append(h.partition)
            run(["ip", "netns", "add", h.ns], check=True)
        run(["ip", "link", "add", tag[:8] + "-s", "netns", src.ns, "type", "veth",
             "peer", "name", tag[:8] + "-d", "netns", dst.ns], check=True)
        for h, dev in ((src, tag[:8] + "-s"), (dst, tag[:8] + "-d")):
            run(["ip", "-n", h.ns, "addr", "add", ADDR[h.role] + "/24", "dev", dev], check=True)
            run(["ip", "-n", h.ns, "link", "set", dev, "up"], check=True)
            run(["ip", "-n", h.ns, "link", "set", "lo", "up"], check=True)
        t0 = time.monotonic()
        for h in hosts.values():
            h.write_config(mig, a.debug)
        if a.dst_source == "file":
            # libvirt puts the file at DIR/libvirt/qemu/ID-NAME/pc.ram.
            os.mkdir(backing)
            with open(os.path.join(dst.dir, "etc", "qemu.conf"), "a") as f:
                f.write('memory_backing_dir = "%s"\n' % backing)
        src.start()
        pids.append(src.proc.pid)
        src.wait_ready()
        res["src_daemon_s"] = round(time.monotonic() - t0, 2)
        shutil.copytree(os.path.join(src.dir, "cache", "qemu"),
                        os.path.join(dst.dir, "cache", "qemu"), dirs_exist_ok=True)
        dst.start()
        pids.append(dst.proc.pid)
        dst.wait_ready()
        res["daemons_s"] = round(time.monotonic() - t0, 2)
        for h in hosts.values():
            procs[h.role + "-events"], h.events = start_events(h, tmp)

        # The source domain, and its guest running.
        t0 = time.monotonic()
        for h in hosts.values():
            with open(os.path.join(tmp, h.role + ".xml"), "w") as f:
                f.write(domain_xml(a, name, uid, mig, h.partition, h is dst))
        rc, out, err = src.virsh("create", os.path.join(tmp, "src.xml"))
        if rc != 0:
            raise RuntimeError("virsh create (source): " + err.strip())
        pids += src.qemu_pids()
        wait_for(lambda: len(src.ticks()) >= 3, a.boot_timeout, "the guest's ticks on the source")
        res["src_boot_s"] = round(time.monotonic() - t0, 2)
        src_pid = qemu_pid(src, name)
        res["src_memfd_backend"] = int(any(b"memory-backend-memfd" in w and b"share" in w
                                           for w in cmdline_of(src_pid)))
        res["src_domstate_before"] = domstate(src, name)
        # The daemons run on one CPU (virtmig.py); their QEMUs must not.
        res["src_qemu_all_cpus"] = int(os.sched_getaffinity(src_pid) == os.sched_getaffinity(0))

        # The destination domain, waiting for its devices.
        t0 = time.monotonic()
        argv = ["create", os.path.join(tmp, "dst.xml")] + ([] if a.dst_running else ["--paused"])
        rc, out, err = dst.virsh(*argv)
        if rc != 0:
            raise RuntimeError("virsh create (destination): " + err.strip())
        pids += dst.qemu_pids()
        res["dst_create_s"] = round(time.monotonic() - t0, 2)
        dst_pid = qemu_pid(dst, name)
        res["dst_domstate_before"] = domstate(dst, name)
        res["dst_qmp_status_before"] = qemu_status(dst)

        # lmig, each side in its host's namespaces.
        rfd, wfd = os.pipe()
        procs["recv"] = subprocess.Popen(
            dst.enter() + [a.lmig, "qemu", "recv", "--qmp", mig + "/lmig.qmp", "--listen",
                           ADDR["dst"] + ":0", "--ready-fd", str(wfd), "--json"],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(tmp, "lmig-recv.out"), "wb"),
            stderr=open(os.path.join(tmp, "lmig-recv.err"), "wb"), pass_fds=(wfd,),
            start_new_session=True)
        os.close(wfd)
        port = os.read(rfd, 32).decode().strip()
        os.close(rfd)
        if not port:
            raise RuntimeError("lmig qemu recv gave no port: " +
                               open(os.path.join(tmp, "lmig-recv.err"), errors="replace").read())
        t0 = time.monotonic()
        res["src_tick_at_migrate"] = max(src.ticks())
        procs["send"] = subprocess.Popen(
            src.enter() + [a.lmig, "qemu", "send", "--qmp", mig + "/lmig.qmp", "--to",
                           "%s:%s" % (ADDR["dst"], port), "--tracker", "scan", "--json"]
            + a.send_args.split(),
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(tmp, "lmig-send.out"), "wb"),
            stderr=open(os.path.join(tmp, "lmig-send.err"), "wb"), start_new_session=True)
        pids += [procs["recv"].pid, procs["send"].pid]
        s = lmig_result(tmp, "send", procs["send"], a.timeout)
        r = lmig_result(tmp, "recv", procs["recv"], 30)
        res["migrate_s"] = round(time.monotonic() - t0, 2)
        sj, rj = s["json"], r["json"]
        res.update(send_exit=s["exit"], recv_exit=r["exit"], send_err=s["stderr"],
                   recv_err=r["stderr"], send_status=sj.get("status", ""),
                   send_source=sj.get("source", ""), send_qemu_status=sj.get("qemu_status", ""),
                   recv_qemu_status=rj.get("qemu_status", ""),
                   qemu_downtime_ms=sj.get("qemu_downtime_ms", -1),
                   total_ms=sj.get("total_ms", -1), bytes_wire=sj.get("bytes_wire", 0),
                   device_bytes=sj.get("device_bytes", 0))
        blocks = sj.get("blocks") or []
        res["blocks"] = ",".join("%s:%s:%d" % (b.get("id"), b.get("kind"), b.get("size", 0))
                                 for b in blocks)
        res["src_last_tick"] = max(src.ticks())
        res["src_qmp_status_after"] = qemu_status(src)
        res["dst_qmp_status_after"] = qemu_status(dst)
        res["src_domstate_after"] = domstate(src, name)
        res["dst_domstate_after"] = domstate(dst, name)

        # Both stopped: each block of the source's memfd against the destination's.
        rblocks = rj.get("blocks") or []
        res["dst_blocks"] = ",".join("%s:%s" % (b.get("id"), b.get("kind")) for b in rblocks)
        if s["exit"] == 0 and blocks and len(rblocks) == len(blocks):
            res["src_sha"] = "".join(sha(b["path"], b["size"]) for b in blocks)
            mine = {b.get("id"): b for b in rblocks}
            res["dst_sha"] = "".join(sha(mine[b["id"]]["path"], b["size"]) if b["id"] in mine
                                     else "missing" for b in blocks)
            res["hash_equal"] = int(res["src_sha"] == res["dst_sha"])
            # What was hashed is each QEMU's own memfd (libvirt's pid files),
            # or with --dst-source file the destination's file.
            res["hashed_qemus_ram"] = int(all(
                (b["path"].startswith("/proc/%d/fd/" % pid) and
                 os.readlink(b["path"]).startswith("/memfd:memory-backend-memfd"))
                or (pid == dst_pid and b.get("kind") == "file" and
                    b["path"].startswith(backing + "/"))
                for pid, bs in ((src_pid, blocks), (dst_pid, rblocks)) for b in bs))
            res["dst_qmp_status_after_hash"] = qemu_status(dst)
        if s["exit"] != 0:
            # A failed migration: where the guest is now, as libvirt sees it.
            res["src_tick_after_failure"] = advancing(src)
            res["dst_domains_after_failure"] = len(dst.virsh("list", "--all", "--name")[1].split())
        if s["exit"] == 0:
            if not a.dst_running:
                rc, out, err = dst.virsh("resume", name)
                res["dst_resume_exit"] = rc
                res["dst_resume_err"] = err.strip()
            try:
                wait_for(lambda: len(dst.ticks()) >= 3, 15, "ticks on the destination")
            except RuntimeError:
                pass
            t = dst.ticks()
            res["dst_first_tick"] = min(t) if t else 0
            res["dst_tick"] = advancing(dst)
            res["dst_domstate_running"] = domstate(dst, name)
            res["dst_qmp_status_running"] = qemu_status(dst)
            # The destination made persistent with the plain definition (the
            # source's, without -incoming): the next boot does not wait.
            rc, out, err = dst.virsh("define", os.path.join(tmp, "src.xml"))
            res["dst_define_exit"] = rc
            info = dst.virsh("dominfo", name)[1]
            res["dst_persistent"] = int(bool(re.search(r"Persistent:\s+yes", info)))
            res["dst_live_incoming"] = int("'-incoming'" in dst.virsh("dumpxml", name)[1])
            res["dst_next_incoming"] = int("'-incoming'" in
                                           dst.virsh("dumpxml", "--inactive", name)[1])
            # The operator's last step: the source's QEMU stays in postmigrate.
            rc, out, err = src.virsh("destroy", name)
            res["src_destroy_exit"] = rc
            res["src_domains_after_destroy"] = len(src.virsh("list", "--all", "--name")[1].split())
            res["dst_domstate_end"] = domstate(dst, name)
        time.sleep(0.3)     # the last events
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for h in hosts.values():
            if getattr(h, "events", None):
                res[h.role + "_events"] = "; ".join(events_of(h.events))
        for h in hosts.values():
            h.stop()
        res["cgroups_left"] = "; ".join(sum((remove_partition(p) for p in parts), []))
        for h in hosts.values():
            run(["ip", "netns", "del", h.ns])
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        if os.path.isdir(backing):
            # What libvirt left of the destination's RAM file, then the directory.
            res["backing_left"] = "; ".join(os.path.join(d, f) for d, _, fs in os.walk(backing)
                                            for f in fs)
            shutil.rmtree(backing, ignore_errors=True)
        time.sleep(0.2)
        left = leftovers(tag, name, tmp, pids)
        for p in glob_dst_socks(procs):
            left.append("file " + p)
        res["leftovers"] = "; ".join(left)
        res["secs"] = round(time.monotonic() - t_all, 2)


def glob_dst_socks(procs):
    """lmig qemu recv's socket for QEMU's stream, if it left one."""
    p = procs.get("recv")
    if p and os.path.exists("/tmp/lmig-qemu-dst-%d.sock" % p.pid):
        return ["/tmp/lmig-qemu-dst-%d.sock" % p.pid]
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lmig", required=True)
    ap.add_argument("--tag", default="lmig-libvirt-ram", help="prefix of every name made")
    ap.add_argument("--mem", type=int, default=64, help="guest RAM, MiB")
    ap.add_argument("--touch", type=int, default=40, help="MiB the guest fills")
    ap.add_argument("--rate", type=int, default=8, help="MB/s the guest rewrites")
    ap.add_argument("--send-args", default="--downtime-ms 2000",
                    help="more options of lmig qemu send")
    ap.add_argument("--dst-running", action="store_true",
                    help="virsh create the destination without --paused (libvirt's cont)")
    ap.add_argument("--dst-source", default="memfd", choices=("memfd", "file"),
                    help="the destination's <memoryBacking><source type=...>; file: in"
                    " /dev/shm/TAG (qemu.conf's memory_backing_dir)")
    ap.add_argument("--dst-mem", type=int, default=0,
                    help="the destination's RAM, MiB, if not --mem (to see lmig refuse)")
    ap.add_argument("--numa", action="store_true",
                    help="two NUMA cells (5/8 and 3/8 of the RAM): two RAM blocks")
    ap.add_argument("--boot-timeout", type=int, default=30)
    ap.add_argument("--timeout", type=int, default=60, help="lmig qemu send's limit, s")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--debug", action="store_true", help="log libvirt's QMP traffic")
    ap.add_argument("--qemu", default="/usr/bin/qemu-system-x86_64")
    a = ap.parse_args()

    for tool in ("libvirtd", "virsh", "ip", "unshare", "nsenter"):
        if not shutil.which(tool):
            print("virtram: %s is not installed (libvirt-daemon-system, libvirt-clients)" % tool,
                  file=sys.stderr)
            return 4
    if not os.access(a.qemu, os.X_OK):
        print("virtram: no " + a.qemu, file=sys.stderr)
        return 4
    if os.geteuid() != 0:
        print("virtram: needs root (network namespaces, libvirtd)", file=sys.stderr)
        return 4
    r = subprocess.run(["sh", os.path.join(HERE, "..", "qemu", "mkguest.sh"), "--smp"],
                       stdout=subprocess.PIPE)
    if r.returncode != 0:
        return 4 if r.returncode == 4 else 1
    a.elf = r.stdout.decode().strip()

    tag = "%s-%d" % (a.tag, os.getpid())
    tmp = tempfile.mkdtemp(prefix=a.tag + ".")
    res = {"tag": tag}
    rc = 0
    try:
        migrate(a, res, tmp, tag)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        res["harness_error"] = str(e)
        rc = 1
    print(json.dumps(res))
    return rc


if __name__ == "__main__":
    sys.exit(main())

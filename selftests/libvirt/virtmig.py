#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""
Migrates a libvirt domain between two libvirt daemons on this machine,
with lmig proxy send/recv carrying QEMU's migration stream, as
Documentation/qemu.md ("libvirt") tells an operator to.

Two "hosts", each a network namespace (a veth pair between them,
198.18.27.1 and 198.18.27.2) holding one libvirtd with a mount and UTS
namespace of its own: its own hostname, host_uuid, configuration
(/etc/libvirt), run (/run, its sockets), state (/var/lib/libvirt), log
and cache directories, all bind-mounted from a temporary directory, so
libvirt runs with its ordinary system paths and neither daemon sees the
other's files.  One directory, MIG (the migration socket, the guest's
serial console, lmig's QMP socket), has the same path in both and
different contents, as a local path on two hosts would.

The domain (type='qemu': TCG) boots Debian's kernel and the QEMU test
guest (selftests/qemu/mkguest.sh), which prints "lmig-guest tick N" on
its serial port (a file in MIG).  Then, on the source "host"
    lmig proxy send --listen unix:MIG/migrate.sock --to 198.18.27.2:PORT
on the destination
    lmig proxy recv --listen 198.18.27.2:PORT --to unix:MIG/migrate.sock
and
    virsh -c SRC migrate --live DOMAIN DST --xml DST.xml \
          --migrateuri unix://MIG/migrate.sock [--parallel --parallel-connections N] [--p2p]

The daemons enter their network namespace with nsenter --net, not
`ip netns exec`, which mounts a fresh /sys and so hides the cgroup
hierarchies: libvirt would then make no cgroups at all.  Sharing this
machine's cgroup tree, both daemons would create the same
machine/qemu-1-DOMAIN.libvirt-qemu, so each host keeps its guests in a
cgroup partition of its own (made and removed here), and DST.xml is the
domain's migratable XML with the destination's partition.
The result is one JSON line on stdout: what virsh said, the domain's
state on both sides, the ticks on both consoles, what lmig's own QMP
socket (beside libvirt's monitor) answered, the proxies' exit codes, and
whatever was left behind after the clean-up (domains, cgroups, network
namespaces, processes, files).

Exit status: 0 ran (the verdict is the test's), 4 libvirt, QEMU or the
guest cannot run here (the reason on stderr), 1 harness error.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "qemu"))
from qmig import guest_inputs  # noqa: E402
ADDR = {"src": "198.18.27.1", "dst": "198.18.27.2"}
# The system paths each daemon gets a private copy of (inside its mount namespace).
BINDS = (("etc", "/etc/libvirt"), ("run", "/run"), ("lib", "/var/lib/libvirt"),
         ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt"))


def log(msg):
    print("virtmig: " + msg, file=sys.stderr, flush=True)


def run(argv, timeout=60, check=False):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.decode(errors="replace").strip()))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


class Host:
    """One libvirtd in its own network, mount and UTS namespaces."""

    def __init__(self, role, tmp, tag):
        self.role = role
        self.dir = os.path.join(tmp, role)
        self.ns = "%s-%s" % (tag, role)
        self.hostname = "%s-%s" % (tag, role)
        self.host_uuid = str(uuid.uuid4())
        # Each host's guests in a cgroup partition of its own: the two share
        # this machine's cgroup tree, where each would create the same
        # machine/qemu-1-NAME.libvirt-qemu.
        self.partition = "/%s-%s.partition" % (tag, role)
        self.proc = None
        self.sock = os.path.join(self.dir, "run", "libvirt", "libvirt-sock")
        self.uri = "qemu+unix:///system?socket=" + self.sock

    def write_config(self, mig, debug=False):
        for sub, _ in BINDS:
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        for sub in ("run/libvirt", "lib/qemu", "log/qemu", "cache/qemu", "etc/qemu"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "mig"), exist_ok=True)
        with open(os.path.join(self.dir, "etc", "libvirtd.conf"), "w") as f:
            f.write('host_uuid = "%s"\n' % self.host_uuid)
            f.write('auth_unix_rw = "none"\nauth_unix_ro = "none"\n')
            f.write('unix_sock_rw_perms = "0700"\n')
            f.write('log_outputs = "%d:file:/var/log/libvirt/libvirtd.log"\n' % (1 if debug else 3))
            if debug:
                f.write('log_filters = "1:qemu.qemu_monitor 3:*"\n')
        with open(os.path.join(self.dir, "etc", "qemu.conf"), "w") as f:
            # No per-guest user, label or private /dev: root-run QEMU reaching
            # the proxy's socket and the console file in MIG.
            f.write('user = "root"\ngroup = "root"\ndynamic_ownership = 0\n')
            f.write('remember_owner = 0\nsecurity_driver = "none"\nnamespaces = [ ]\n')
            # The console file and QEMU's log written by QEMU itself, not virtlogd.
            f.write('stdio_handler = "file"\n')
        # The bind mounts, then the daemon.
        script = ["set -e", "hostname %s" % self.hostname]
        for sub, target in BINDS:
            script.append("mount --bind %s %s" % (os.path.join(self.dir, sub), target))
        script.append("mount --bind %s %s" % (os.path.join(self.dir, "mig"), mig))
        # Both daemons on one CPU: libvirt keeps the QEMU capabilities it
        # probed only while the host's CPUID reads the same, and here the
        # two CPUs read differently, so a daemon on the other CPU than the
        # source's threw the copied cache away and probed again (8 s).
        # libvirt gives each QEMU all online CPUs again when it starts it.
        script.append("exec taskset -c %d libvirtd --pid-file /run/libvirtd.pid"
                      % min(os.sched_getaffinity(0)))
        self.script = "\n".join(script) + "\n"

    def start(self):
        out = open(os.path.join(self.dir, "libvirtd.out"), "wb")
        self.proc = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + self.ns, "unshare", "--mount", "--uts",
             "--propagation", "private", "sh", "-c", self.script],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self):
        wait_for(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, 30,
                 "libvirtd (%s) to listen" % self.role)
        if self.proc.poll() is not None:
            raise RuntimeError("libvirtd (%s) exited %d: %s" % (
                self.role, self.proc.returncode, self.text("libvirtd.out")))
        wait_for(lambda: self.virsh("version")[0] == 0, 30, "libvirtd (%s) to answer" % self.role)

    def text(self, name, limit=800):
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read().decode(errors="replace")[-limit:]
        except OSError:
            return ""

    def virsh(self, *args, timeout=60):
        return run(["virsh", "-q", "-c", self.uri] + list(args), timeout=timeout)

    def enter(self):
        """argv prefix running a command in this host's namespaces."""
        return ["nsenter", "-t", str(self.proc.pid), "-m", "-n", "-u"]

    def console(self):
        return os.path.join(self.dir, "mig", "console.log")

    def ticks(self):
        try:
            with open(self.console(), "rb") as f:
                return [int(m) for m in re.findall(rb"lmig-guest tick (\d+)", f.read())]
        except OSError:
            return []

    def qemu_pids(self):
        pids = []
        for p in glob.glob(os.path.join(self.dir, "run", "libvirt", "qemu", "*.pid")):
            try:
                pids.append(int(open(p).read().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None and os.path.exists(self.sock):
            rc, out, _ = self.virsh("list", "--name", timeout=20)
            for name in out.split():
                self.virsh("destroy", name, timeout=20)
        for pid in self.qemu_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def qmp_ask(path, command):
    """One QMP command on lmig's own monitor socket; its "return"."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    f = s.makefile("rwb")
    f.readline()
    for cmd in ({"execute": "qmp_capabilities"}, {"execute": command}):
        f.write((json.dumps(cmd) + "\n").encode())
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "event" not in r:
                break
    s.close()
    if "error" in r:
        raise RuntimeError("QMP %s: %s" % (command, r["error"]))
    return r["return"]


def domain_xml_of(name, mem, vcpus, boot, qemu, mig, partition, more="", serials=1,
                  qemu_args=""):
    """The test domains' skeleton: a TCG guest with no devices but its serial
    ports (logged to mig/console.log, console2.log, ...) and lmig's own QMP
    socket beside libvirt's monitor.  boot: the <os> element's lines; more:
    lines after <vcpu> (memory backing, NUMA); qemu_args: more <qemu:arg>s."""
    ports = "".join("    <serial type='file'>\n"
                    "      <source path='%s/console%s.log'/>\n"
                    "      <target port='%d'/>\n"
                    "    </serial>\n" % (mig, "%d" % (i + 1) if i else "", i)
                    for i in range(serials))
    return """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%(name)s</name>
  <memory unit='MiB'>%(mem)d</memory>
  <vcpu>%(vcpus)d</vcpu>
%(more)s  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
%(boot)s  </os>
  <resource>
    <partition>%(partition)s</partition>
  </resource>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%(qemu)s</emulator>
    <controller type='usb' model='none'/>
%(ports)s    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-qmp'/>
    <qemu:arg value='unix:%(mig)s/lmig.qmp,server=on,wait=off'/>
%(qemu_args)s  </qemu:commandline>
</domain>
""" % {"name": name, "mem": mem, "vcpus": vcpus, "more": more, "boot": boot,
       "partition": partition, "qemu": qemu, "ports": ports, "mig": mig, "qemu_args": qemu_args}


def domain_xml(a, name, mig, partition):
    append = "console=ttyS0 quiet panic=-1 no_timer_check pti=on guest_touch=%d guest_rate=%d" % (
        a.touch, a.rate)
    boot = ("    <kernel>%s</kernel>\n    <initrd>%s</initrd>\n    <cmdline>%s</cmdline>\n"
            % (a.kernel, a.initrd, append))
    return domain_xml_of(name, a.mem, 1, boot, a.qemu, mig, partition)


def cgroup_mounts():
    with open("/proc/mounts") as f:
        return [ln.split()[1] for ln in f
                if ln.split()[2] in ("cgroup", "cgroup2") and ln.split()[1].startswith("/sys/fs/cgroup/")]


def make_partition(part):
    """The cgroup partition PART ("/NAME.partition") in every hierarchy mounted."""
    for m in cgroup_mounts():
        d = m + part
        os.mkdir(d)
        if os.path.exists(os.path.join(m, "cpuset.cpus")):
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(m, f)) as src, open(os.path.join(d, f), "w") as dst:
                    dst.write(src.read())


def remove_partition(part):
    """Removes PART; returns the cgroups libvirt left in it."""
    left = []
    for m in cgroup_mounts():
        d = m + part
        if not os.path.isdir(d):
            continue
        for sub, dirs, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
            if sub != d:
                left.append(sub)
            try:
                os.rmdir(sub)
            except OSError:
                pass
    return left


def leftovers(tag, name, tmp, pids):
    left = []
    for h in ("src", "dst"):
        if os.path.exists("/run/netns/%s-%s" % (tag, h)):
            left.append("netns " + "%s-%s" % (tag, h))
    for m in cgroup_mounts():
        for d in glob.glob(m + "/machine") + glob.glob(m + "/*" + tag + "*"):
            left.append("cgroup " + d)
    for pid in pids:
        if os.path.exists("/proc/%d" % pid):
            left.append("process %d" % pid)
    if os.path.exists(tmp):
        left.append("dir " + tmp)
    return left


def migrate(a, res, tmp, tag):
    name = tag + "-vm"
    mig = os.path.join(tmp, "mig")
    os.makedirs(mig)
    hosts = {r: Host(r, tmp, tag) for r in ("src", "dst")}
    src, dst = hosts["src"], hosts["dst"]
    procs = {}
    pids = []
    parts = []
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
        # Each daemon probes QEMU's capabilities when it starts (10 s or more
        # under TCG on a loaded machine); the destination is given the
        # source's cache, which libvirt checks against the binary and
        # itself, as a host installed like the other would find it.
        if a.same_hostname:
            dst.hostname = src.hostname
        if a.same_host_uuid:
            dst.host_uuid = src.host_uuid
        for h in hosts.values():
            h.write_config(mig, a.debug)
        src.start()
        pids.append(src.proc.pid)
        src.wait_ready()
        res["src_daemon_s"] = round(time.monotonic() - t0, 2)
        shutil.copytree(os.path.join(src.dir, "cache", "qemu"), os.path.join(dst.dir, "cache", "qemu"),
                        dirs_exist_ok=True)
        dst.start()
        pids.append(dst.proc.pid)
        dst.wait_ready()
        res["daemons_s"] = round(time.monotonic() - t0, 2)
        # What each daemon says it is: its own host UUID and hostname.
        res["src_hostname"] = src.virsh("hostname")[1].strip()
        res["dst_hostname"] = dst.virsh("hostname")[1].strip()
        res["src_host_uuid_ok"] = int(src.host_uuid in src.virsh("capabilities")[1])
        res["dst_host_uuid_ok"] = int(dst.host_uuid in dst.virsh("capabilities")[1])

        xml = os.path.join(tmp, "domain.xml")
        with open(xml, "w") as f:
            f.write(domain_xml(a, name, mig, src.partition))
        t0 = time.monotonic()
        rc, out, err = src.virsh("create", xml)
        if rc != 0:
            raise RuntimeError("virsh create: " + err.strip())
        pids += src.qemu_pids()
        wait_for(lambda: len(src.ticks()) >= 5, a.boot_timeout, "the guest's ticks on the source")
        res["boot_s"] = round(time.monotonic() - t0, 2)
        res["src_qmp_status"] = qmp_ask(os.path.join(src.dir, "mig", "lmig.qmp"),
                                        "query-status")["status"]

        port = 27000 + os.getpid() % 1000
        procs["proxy-recv"] = subprocess.Popen(
            dst.enter() + [a.lmig, "proxy", "recv", "--listen", "%s:%d" % (ADDR["dst"], port),
                           "--to", "unix:%s/migrate.sock" % mig],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(tmp, "proxy-recv.out"), "wb"),
            stderr=open(os.path.join(tmp, "proxy-recv.err"), "wb"), start_new_session=True)
        wait_for(lambda: run(dst.enter() + ["ss", "-Hltn", "sport = :%d" % port])[1].strip()
                 or procs["proxy-recv"].poll() is not None, 10, "lmig proxy recv to listen")
        procs["proxy-send"] = subprocess.Popen(
            src.enter() + [a.lmig, "proxy", "send", "--listen", "unix:%s/migrate.sock" % mig,
                           "--to", "%s:%d" % (ADDR["dst"], port)],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(tmp, "proxy-send.out"), "wb"),
            stderr=open(os.path.join(tmp, "proxy-send.err"), "wb"), start_new_session=True)
        wait_for(lambda: os.path.exists(os.path.join(src.dir, "mig", "migrate.sock"))
                 or procs["proxy-send"].poll() is not None, 10, "lmig proxy send to listen")
        for n, p in procs.items():
            pids.append(p.pid)
            if p.poll() is not None:
                raise RuntimeError("lmig %s exited before the migration" % n)

        # The destination's definition: the same domain in its own partition.
        rc, out, err = src.virsh("dumpxml", "--migratable", name)
        if rc != 0:
            raise RuntimeError("virsh dumpxml: " + err.strip())
        dst_xml = os.path.join(tmp, "domain-dst.xml")
        with open(dst_xml, "w") as f:
            f.write(out.replace(src.partition, dst.partition))
        argv = ["migrate", "--live", name, dst.uri, "--xml", dst_xml,
                "--migrateuri", "unix://%s/migrate.sock" % mig]
        if a.parallel:
            argv += ["--parallel", "--parallel-connections", str(a.parallel)]
        if a.p2p:
            argv += ["--p2p"]
        res["virsh_migrate"] = "virsh -c SRC " + " ".join(argv)
        res["src_tick_at_migrate"] = max(src.ticks())
        t0 = time.monotonic()
        rc, out, err = src.virsh(*argv, timeout=a.timeout)
        res["migrate_s"] = round(time.monotonic() - t0, 2)
        res["migrate_exit"] = rc
        res["migrate_err"] = err.strip()[-600:]
        res["src_last_tick"] = max(src.ticks())
        pids += dst.qemu_pids()
        for n, p in procs.items():
            try:
                res[n.replace("-", "_") + "_exit"] = p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                res[n.replace("-", "_") + "_exit"] = "killed"
            with open(os.path.join(tmp, n + ".err"), "rb") as f:
                res[n.replace("-", "_") + "_err"] = f.read().decode(errors="replace")[-400:]
        try:
            with open(os.path.join(tmp, "proxy-send.out"), "rb") as f:
                m = re.search(rb"(\d+) streams?\b", f.read())
            res["proxy_streams"] = int(m.group(1)) if m else -1
        except OSError:
            res["proxy_streams"] = -1
        res["src_domains"] = len(src.virsh("list", "--all", "--name")[1].split())
        res["dst_domstate"] = dst.virsh("domstate", name)[1].strip()
        # What libvirt tells of the migration it completed (on the destination).
        rc, out, _ = dst.virsh("domjobinfo", "--completed", name)
        for key, pat in (("downtime_ms", r"Total downtime:\s+(\d+)\s+ms"),
                         ("total_time_ms", r"Time elapsed:\s+(\d+)\s+ms"),
                         ("memory_processed", r"Memory processed:\s+(.*)")):
            m = re.search(pat, out)
            res[key] = (int(m.group(1)) if m.group(1).isdigit() else m.group(1).strip()) if m else None
        if res["migrate_exit"] == 0:
            try:
                wait_for(lambda: len(dst.ticks()) >= 10, 20, "ticks on the destination")
            except RuntimeError:
                pass
            t = dst.ticks()
            res["dst_first_tick"] = min(t) if t else 0
            res["dst_last_tick"] = max(t) if t else 0
            res["dst_ticks"] = len(t)
            try:
                res["dst_qmp_status"] = qmp_ask(os.path.join(dst.dir, "mig", "lmig.qmp"),
                                                "query-status")["status"]
            except (OSError, RuntimeError, ValueError) as e:
                res["dst_qmp_status"] = "error: %s" % e
        else:
            # A failed migration leaves the guest running on the source.
            res["src_domstate_after"] = src.virsh("domstate", name)[1].strip()
            res["dst_domains"] = len(dst.virsh("list", "--all", "--name")[1].split())
            n = max(src.ticks())
            time.sleep(2)
            res["src_tick_after_failure"] = n
            res["src_tick_later"] = max(src.ticks())
            res["dst_qemu_log"] = dst.text("log/qemu/%s.log" % name, 300)
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for h in hosts.values():
            h.stop()
        if res.get("migrate_exit") != 0:
            res["libvirtd_log_src"] = src.text("log/libvirtd.log", 400)
            res["libvirtd_log_dst"] = dst.text("log/libvirtd.log", 400)
        res["cgroups_left"] = "; ".join(sum((remove_partition(p) for p in parts), []))
        for h in hosts.values():
            run(["ip", "netns", "del", h.ns])
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        time.sleep(0.2)
        res["leftovers"] = "; ".join(leftovers(tag, name, tmp, pids))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lmig", required=True)
    ap.add_argument("--parallel", type=int, default=0, help="--parallel-connections (0: none)")
    ap.add_argument("--p2p", action="store_true", help="virsh migrate --p2p")
    ap.add_argument("--tag", default="lmig-libvirt-test", help="prefix of every name made")
    ap.add_argument("--mem", type=int, default=512, help="guest RAM, MiB")
    ap.add_argument("--touch", type=int, default=64, help="MiB the guest fills")
    ap.add_argument("--rate", type=int, default=4, help="MB/s the guest rewrites")
    ap.add_argument("--boot-timeout", type=int, default=60)
    ap.add_argument("--timeout", type=int, default=60, help="virsh migrate's limit, s")
    ap.add_argument("--same-host-uuid", action="store_true",
                    help="give both daemons one host_uuid (to see libvirt refuse)")
    ap.add_argument("--same-hostname", action="store_true",
                    help="give both daemons one hostname (to see whether libvirt minds)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--debug", action="store_true", help="log libvirt's QMP traffic")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--initrd", default="")
    ap.add_argument("--qemu", default="/usr/bin/qemu-system-x86_64")
    a = ap.parse_args()

    for tool in ("libvirtd", "virsh", "ip", "unshare", "nsenter"):
        if not shutil.which(tool):
            print("virtmig: %s is not installed (libvirt-daemon-system, libvirt-clients)" % tool,
                  file=sys.stderr)
            return 4
    if not os.access(a.qemu, os.X_OK):
        print("virtmig: no " + a.qemu, file=sys.stderr)
        return 4
    if os.geteuid() != 0:
        print("virtmig: needs root (network namespaces, libvirtd)", file=sys.stderr)
        return 4
    rc = guest_inputs(a, "virtmig")
    if rc:
        return rc

    tag = "%s-%d" % (a.tag, os.getpid())
    tmp = tempfile.mkdtemp(prefix=a.tag + ".")
    res = {"tag": tag}
    rc = 0
    try:
        migrate(a, res, tmp, tag)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
        res["harness_error"] = str(e)
        rc = 1
    print(json.dumps(res))
    return rc


if __name__ == "__main__":
    sys.exit(main())

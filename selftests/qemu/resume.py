#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Migrate one live QEMU guest through `lmig proxy` while the connections
between the two proxies are reset under it (`ss -K`), and report each
hop as one JSON line (then one line with boot_s, hops_done, total_s).

Boots the test guest of qmig.py once (it rewrites memory and prints
"lmig-guest tick N" every 100 ms) and migrates it from QEMU to a fresh
QEMU (-incoming defer) once per hop, QEMU's ends unix sockets, the
proxies 2 channels on loopback, the destination of one hop the source
of the next:

  precopy-noreset   return-path on, no reset (for the benchmark, not in
                    the default chain)
  precopy-reset     return-path on, one reset of every channel once
                    --reset-at MiB went
  precopy-resets    the same, a reset every --reset-every s while
                    precopy runs (--resets-max at most); and a fresh `lmig proxy send` pointed
                    at the same `proxy recv` meanwhile (a new session's
                    hello: refused, the migration goes on)
  postcopy-reset    postcopy-ram, migrate-start-postcopy after
                    --postcopy-after MiB, one reset once postcopy-active
  postcopy-resets   the same, a reset every --reset-every s in
                    postcopy-active
  precopy-budget    return-path on, --resume-timeout 3 at both proxies;
                    the `proxy recv` is killed once --reset-at MiB went:
                    the destination is gone, so the migration must fail
                    about 3 s later with the source running on
  postcopy-recover  postcopy-ram, --resume-timeout 3, the `proxy recv`
                    killed in postcopy-active once the destination
                    runs the guest (before, QEMU 7.2 cannot recover a
                    break: its destination fails): both QEMUs pause
                    (postcopy-paused); then a new pair of proxies and
                    migrate-recover / migrate resume through them, which
                    must complete

QEMU's bandwidth is capped (--max-bandwidth, --postcopy-bandwidth) so
that each phase lasts a few seconds and the resets land inside it.
Each hop's record: QEMU's status, error and states, the resets done and
sockets they destroyed, the guest's ticks on both sides (as postcopy.py),
the proxies' exit codes and their --json reconnects, reconnect_ms,
resume_refused; the budget hop the time from the kill to QEMU's failure.
It only reports: the caller judges.  Exit status 0 with a result, 4 when
QEMU or the kernel is missing, 1 on a harness error.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback

from qmig import (HERE, outcome, guest_inputs, QMP, QMPError, Proc, VM, free_port, listening, migrate_info, read_json,
                  wait_for)

# name: (capabilities, resets: 1 or "every", in which phase, kill the receiver instead)
HOPS = {
    "precopy-noreset": (["return-path"], 0, "active", False),
    "precopy-reset": (["return-path"], 1, "active", False),
    "precopy-resets": (["return-path"], "every", "active", False),
    "postcopy-reset": (["postcopy-ram"], 1, "postcopy-active", False),
    "postcopy-resets": (["postcopy-ram"], "every", "postcopy-active", False),
    "precopy-budget": (["return-path"], 0, "active", True),
    "postcopy-recover": (["postcopy-ram"], 0, "postcopy-active", True),
}
ALL_CAPS = ("return-path", "postcopy-ram")
BUDGET_S = 3


def set_caps(q, on):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": c, "state": c in on} for c in ALL_CAPS])


def reset(port):
    """Destroy the source proxy's channels (the sockets whose peer is the
    receiver's port): each gets a reset, and so does its peer.  The number
    of sockets destroyed."""
    r = subprocess.run(["ss", "-K", "-H", "-t", "state", "established", "dst", "127.0.0.1",
                        "dport", "=", ":%d" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return len(r.stdout.splitlines())


def lmig_report(r, name, p):
    rc = p.wait(15)
    r["proxy_%s_exit" % name] = rc if rc is not None else "running"
    j = read_json(p.out_path)
    if j is None:
        r["proxy_%s_stderr" % name] = p.text(limit=300)
        return
    for f in ("status", "error", "both_ways", "bytes_returned", "resume", "reconnects",
              "reconnect_ms", "resume_refused"):
        if f in j:
            r["proxy_%s_%s" % (name, f)] = j[f]


class OOBQMP(QMP):
    """A QMP connection with out-of-band execution: on a postcopy
    destination the main loop may wait for a page that will never come
    while paused, and only an out-of-band command reaches QEMU then."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        if "QMP" not in self._read():
            raise QMPError("no QMP greeting")
        self.cmd("qmp_capabilities", enable=["oob"])

    def oob(self, name, **args):
        self.sock.sendall(json.dumps({"exec-oob": name, "arguments": args, "id": "oob"}).encode() + b"\n")
        while True:
            r = self._read()
            if r.get("id") != "oob":
                continue
            if "error" in r:
                raise QMPError("%s: %s" % (name, r["error"].get("desc", r["error"])))
            return r.get("return")


def OOBQMP_connect(path, timeout=30.0):
    """An out-of-band QMP connection that answered a command: a QEMU that
    is still starting may take a connection and drop it."""
    deadline = time.monotonic() + timeout
    while True:
        o = None
        try:
            o = OOBQMP(path)
            o.cmd("query-status")
            return o
        except OSError:
            if o:
                o.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def recover(a, n, r, qs, dst, procs):
    """Both QEMUs paused in postcopy: a new pair of proxies, and QEMU's
    recovery through it (the destination listens first, out of band).
    The destination's new QMP connection."""
    lmig_report(r, "send", procs.pop("send"))
    port = free_port()
    dstsock = os.path.join(a.work, "r%d-rdst.sock" % n)
    srcsock = os.path.join(a.work, "r%d-rsrc.sock" % n)
    deadline = time.monotonic() + 20
    while True:
        try:
            dst.qmp.oob("migrate-recover", uri="unix:" + dstsock)
            break
        except QMPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)	# not paused yet
    procs["recv2"] = Proc("r%d-proxy-recv2" % n, [
        a.lmig, "proxy", "recv", "--listen", "127.0.0.1:%d" % port,
        "--to", "unix:" + dstsock, "--json"], a.work)
    wait_for(lambda: listening("", port), 10, "the second lmig proxy recv to listen")
    procs["send2"] = Proc("r%d-proxy-send2" % n, [
        a.lmig, "proxy", "send", "--listen", "unix:" + srcsock, "--channels", "2",
        "--to", "127.0.0.1:%d" % port, "--json"], a.work)
    wait_for(lambda: os.path.exists(srcsock), 10, "the second lmig proxy send to listen")
    qs.cmd("migrate", uri="unix:" + srcsock, resume=True)
    r["recovered"] = True
    return dst.qmp


def hop(a, n, name, src, procs, vms):
    caps, resets, phase, kill_recv = HOPS[name]
    postcopy = "postcopy-ram" in caps
    r = {"hop": name, "capabilities": caps, "resets": 0, "sockets_reset": 0}
    dst = VM("r%d" % n, a, incoming="defer")
    vms.append(dst)	# stopped at the end whatever happens
    qs = src.qmp
    if name == "postcopy-recover":
        dst.qmp = qd = OOBQMP_connect(dst.qmp_path)
    else:
        qd = dst.connect()
    for q in (qs, qd):
        set_caps(q, caps)
    qs.cmd("migrate-set-parameters", **{"max-bandwidth": a.max_bandwidth,
                                        "max-postcopy-bandwidth": a.postcopy_bandwidth,
                                        "downtime-limit": 1 if postcopy else 300})
    port = free_port()
    dstsock = os.path.join(a.work, "r%d-dst.sock" % n)
    srcsock = os.path.join(a.work, "r%d-src.sock" % n)
    budget = ["--resume-timeout", str(BUDGET_S)] if kill_recv else []
    qd.cmd("migrate-incoming", uri="unix:" + dstsock)
    procs["recv"] = Proc("r%d-proxy-recv" % n, [
        a.lmig, "proxy", "recv", "--listen", "127.0.0.1:%d" % port,
        "--to", "unix:" + dstsock, "--json"] + budget, a.work)
    wait_for(lambda: listening("", port) or not procs["recv"].alive(), 10,
             "lmig proxy recv to listen")
    procs["send"] = Proc("r%d-proxy-send" % n, [
        a.lmig, "proxy", "send", "--listen", "unix:" + srcsock, "--channels", "2",
        "--to", "127.0.0.1:%d" % port, "--json"] + budget, a.work)
    wait_for(lambda: os.path.exists(srcsock) or not procs["send"].alive(), 10,
             "lmig proxy send to listen")
    r["src_tick_at_migrate"] = src.last_tick()
    t0 = time.monotonic()
    qs.cmd("migrate", uri="unix:" + srcsock)
    seen, t_phase, t_reset, t_kill = [], None, 0.0, None
    info = migrate_info(qs)
    while time.monotonic() - t0 < a.timeout:
        info = migrate_info(qs)
        now = time.monotonic()
        if not seen or seen[-1] != info["status"]:
            seen.append(info["status"])
        if info["status"] in ("completed", "failed", "cancelled"):
            break
        if info["status"] == "postcopy-paused" and "t_paused_s" not in r:
            r["t_paused_s"] = round(now - t0, 3)
            qd = recover(a, n, r, qs, dst, procs)
        moved = (info["ram_transferred"] or 0) >= a.reset_at << 20
        if postcopy and "t_postcopy_s" not in r and info["status"] == "active" and \
                (info["ram_transferred"] or 0) >= a.postcopy_after << 20:
            r["t_postcopy_s"] = round(now - t0, 3)
            qs.cmd("migrate-start-postcopy")
        if info["status"] == phase and (postcopy or moved) and t_phase is None:
            t_phase = now
        # In post-copy only once the destination runs the guest: QEMU
        # recovers a break from then on; one while it still loads the
        # devices (postcopy-active on the source already) fails it for good.
        if t_phase is not None and kill_recv and t_kill is None and \
                (not postcopy or qd.cmd("query-status")["status"] == "running"):
            procs["recv"].kill()
            t_kill = now
        # A reset at the phase's start (postcopy: after a little of it), then every --reset-every s.
        due = t_phase is not None and now - t_phase >= (0.3 if postcopy else 0) and \
            (r["resets"] == 0 or (resets == "every" and now - t_reset >= a.reset_every))
        if not kill_recv and due and r["resets"] < (a.resets_max if resets == "every" else resets):
            k = reset(port)
            if k:
                r["resets"] += 1
                r["sockets_reset"] += k
                t_reset = now
            if name == "precopy-resets" and a.intruder and "intruder" not in procs:
                # A new session's peer at the same receiver: refused, nothing else.
                procs["intruder"] = Proc("r%d-intruder" % n, [
                    a.lmig, "proxy", "send", "--listen",
                    "unix:" + os.path.join(a.work, "r%d-intruder.sock" % n),
                    "--to", "127.0.0.1:%d" % port, "--json", "--timeout", "5"], a.work)
        time.sleep(0.02)
    r["wall_s"] = round(time.monotonic() - t0, 3)
    if t_kill is not None:
        r["fail_after_kill_s"] = round(time.monotonic() - t_kill, 2)
    r["states"] = seen
    info = outcome(qs, qd, src, dst, info, r, a.ticks, a.tick_timeout, a.timeout)
    for k, p in sorted(procs.items()):
        if k == "recv" and kill_recv:
            continue
        lmig_report(r, k, p)
    if "proxy_send_exit" not in r and "send" in procs:
        lmig_report(r, "send", procs["send"])
    return dst, r


def run(a):
    res = {"hops_done": 0}
    vms, procs = [], {}
    name = "boot"
    t_boot = time.monotonic()
    try:
        src = VM("r0", a)
        vms.append(src)
        src.wait_ready(a.boot_timeout)
        src.connect()
        res["boot_s"] = round(time.monotonic() - t_boot, 2)
        for n, name in enumerate(a.hops.split(","), 1):
            procs = {}
            dst, r = None, {"hop": name}
            try:
                dst, r = hop(a, n, name, src, procs, vms)
            finally:
                for p in procs.values():
                    p.kill()
            print(json.dumps(r, separators=(",", ":")), flush=True)
            res["hops_done"] += 1
            if r.get("status") != "completed" or r.get("dst_status") != "running":
                if dst:
                    dst.stop()
                continue	# the guest runs on at the source: the next hop starts there
            src.stop()
            src = dst
    except (QMPError, OSError) as e:
        res["harness_error"] = "%s: %s" % (name, e)
        traceback.print_exc()
        for v in vms:
            if not v.proc.alive():
                res.setdefault("qemu_stderr", {})[v.name] = v.proc.text()
    finally:
        for p in procs.values():
            p.kill()
        for v in vms:
            v.stop()
    res["total_s"] = round(time.monotonic() - t_boot, 1)
    print(json.dumps(res, separators=(",", ":")), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="directory for sockets, consoles and logs")
    ap.add_argument("--hops", default="precopy-reset,precopy-resets,postcopy-reset,postcopy-resets,"
                    "postcopy-recover,precopy-budget")
    ap.add_argument("--mem", type=int, default=384, help="guest memory, MiB")
    ap.add_argument("--touch", type=int, default=96, help="memory the guest fills, MiB")
    ap.add_argument("--rate", type=int, default=8, help="MB/s the guest rewrites")
    ap.add_argument("--max-bandwidth", type=int, default=40 << 20,
                    help="QEMU's max-bandwidth (precopy), bytes/s")
    ap.add_argument("--postcopy-bandwidth", type=int, default=40 << 20,
                    help="QEMU's max-postcopy-bandwidth, bytes/s")
    ap.add_argument("--postcopy-after", type=int, default=16,
                    help="MiB sent before migrate-start-postcopy")
    ap.add_argument("--reset-at", type=int, default=12, help="MiB sent before the first reset")
    ap.add_argument("--reset-every", type=float, default=0.5, help="seconds between resets")
    ap.add_argument("--resets-max", type=int, default=4, help="the most resets of a hop that repeats them")
    ap.add_argument("--no-intruder", dest="intruder", action="store_false",
                    help="no fresh proxy send in precopy-resets (benchmarks)")
    ap.add_argument("--lmig", default=os.environ.get("LMIG", os.path.join(HERE, "..", "..", "user", "lmig")))
    ap.add_argument("--timeout", type=float, default=40, help="seconds a hop's migration may take")
    ap.add_argument("--boot-timeout", type=float, default=60)
    ap.add_argument("--ticks", type=int, default=5, help="ticks to see after the switch")
    ap.add_argument("--tick-timeout", type=float, default=15)
    ap.add_argument("--guest-append", default=os.environ.get("QMIG_APPEND", "pti=on"))
    ap.add_argument("--kernel", default=os.environ.get("KERNEL", ""))
    ap.add_argument("--initrd", default="")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    a = ap.parse_args()
    a.smp = 1
    for h in a.hops.split(","):
        if h not in HOPS:
            print("resume: unknown hop '%s' (one of %s)" % (h, ", ".join(HOPS)), file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("resume: ss -K needs root", file=sys.stderr)
        return 4
    rc = guest_inputs(a, "resume")
    if rc:
        return rc
    return run(a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Migrate one live QEMU guest along a chain of hops that need QEMU's
return path, native and through `lmig proxy` side by side, and report
each hop as one JSON line (then one line with boot_s, hops_done, total_s).

Boots the test guest of qmig.py once (Debian's kernel, mkguest.sh's
initramfs: it rewrites memory and prints "lmig-guest tick N" every
100 ms), then migrates it from QEMU to a fresh QEMU (-incoming defer)
once per hop, the destination of one hop being the source of the next:

  rp-proxy          precopy with `return-path` on, through lmig proxy
  rp-multifd-proxy  the same with multifd (2 channels): three connections
  postcopy-tcp      postcopy-ram, native tcp, migrate-start-postcopy
                    during the first pass
  postcopy-proxy    the same through lmig proxy (unix: at both QEMUs)
  preempt-tcp       postcopy-ram and postcopy-preempt, native tcp
  preempt-proxy     the same through lmig proxy
  preempt-proxy-tcp the same with tcp: at both QEMUs instead of unix:
  rp-pipe           precopy with `return-path` through lmig pipe (exec:),
                    which carries one way: it must fail at once, the
                    destination never running the guest (the chain ends)

(--hops picks and orders them.)  A postcopy hop switches to postcopy
(migrate-start-postcopy) once --postcopy-after MiB went, in the first
pass: issued after it, QEMU 7.2 under TCG mostly finishes precopy by
itself, the guest having dirtied almost nothing while QEMU migrated, and
the hop would test nothing.  Each
hop's record: QEMU's status, the states it went through (postcopy-active
seen), total and downtime, the source's postcopy-requests (pages the
destination asked for over the return path), the destination's run state
and its guest's ticks (first and last seen after the switch, and the
source's last), and the lmig processes' exit codes and parts of their
--json reports (proxy_send_bytes_returned, proxy_recv_...: what the
destination QEMU wrote back).  The chain stops
at the first hop that does not complete.  It only reports: the caller
judges.  Exit status 0 with a result, 4 when QEMU or the kernel is
missing, 1 on a harness error.
"""
import argparse
import json
import os
import shlex
import shutil
import sys
import time

from qmig import (HERE, guest_inputs, outcome, QMPError, Proc, VM, free_port, listening, migrate_info, read_json,
                  wait_for)

HOPS = {
    "rp-proxy": ("proxy", ["return-path"]),
    "rp-multifd-proxy": ("proxy", ["return-path", "multifd"]),
    "postcopy-tcp": ("tcp", ["postcopy-ram"]),
    "postcopy-proxy": ("proxy", ["postcopy-ram"]),
    "preempt-tcp": ("tcp", ["postcopy-ram", "postcopy-preempt"]),
    "preempt-proxy": ("proxy", ["postcopy-ram", "postcopy-preempt"]),
    "preempt-proxy-tcp": ("proxy-tcp", ["postcopy-ram", "postcopy-preempt"]),
    "rp-pipe": ("pipe", ["return-path"]),
}
ALL_CAPS = ("return-path", "multifd", "postcopy-ram", "postcopy-preempt")


def set_caps(q, on):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": c, "state": c in on} for c in ALL_CAPS])


def hop(a, n, name, src, procs):
    transport, caps = HOPS[name]
    postcopy = "postcopy-ram" in caps
    r = {"hop": name, "transport": transport, "capabilities": caps}
    dst = VM("h%d" % n, a, incoming="defer")
    qs = src.qmp
    qd = dst.connect()
    for q in (qs, qd):
        set_caps(q, caps)
        if "multifd" in caps:
            q.cmd("migrate-set-parameters", **{"multifd-channels": 2})
    qs.cmd("migrate-set-parameters", **{"max-bandwidth": a.max_bandwidth,
                                        "downtime-limit": 1 if postcopy else 300})
    port = free_port()
    dstsock = os.path.join(a.work, "h%d-dst.sock" % n)
    srcsock = os.path.join(a.work, "h%d-src.sock" % n)
    if transport == "tcp":
        qd.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        wait_for(lambda: listening("", port), 10, "the destination to listen")
        uri = "tcp:127.0.0.1:%d" % port
    elif transport == "pipe":
        # QEMU runs these through sh -c; their exit status lands in a file.
        w = lambda f: shlex.quote(os.path.join(a.work, "h%d-%s" % (n, f)))
        lmig = shlex.quote(a.lmig)
        qd.cmd("migrate-incoming", uri="exec:%s pipe recv --listen 127.0.0.1:%d --json 2>%s; echo $? >%s" % (
            lmig, port, w("pipe-recv.err"), w("pipe-recv.rc")))
        wait_for(lambda: listening("", port), 10, "lmig pipe recv to listen")
        uri = "exec:%s pipe send --to 127.0.0.1:%d --json 2>%s; echo $? >%s" % (
            lmig, port, w("pipe-send.err"), w("pipe-send.rc"))
    else:
        # QEMU's ends: unix sockets, or (proxy-tcp) tcp ports on loopback.
        if transport == "proxy-tcp":
            qport, sport = free_port(), free_port()
            dst_ep, src_ep = "tcp:127.0.0.1:%d" % qport, "tcp:127.0.0.1:%d" % sport
            src_up = lambda: listening("", sport)
        else:
            dst_ep, src_ep = "unix:" + dstsock, "unix:" + srcsock
            src_up = lambda: os.path.exists(srcsock)
        qd.cmd("migrate-incoming", uri=dst_ep)
        procs["recv"] = Proc("h%d-proxy-recv" % n, [
            a.lmig, "proxy", "recv", "--listen", "127.0.0.1:%d" % port,
            "--to", dst_ep, "--json"], a.work)
        wait_for(lambda: listening("", port) or not procs["recv"].alive(), 10,
                 "lmig proxy recv to listen")
        procs["send"] = Proc("h%d-proxy-send" % n, [
            a.lmig, "proxy", "send", "--listen", src_ep,
            "--to", "127.0.0.1:%d" % port, "--json"], a.work)
        wait_for(lambda: src_up() or not procs["send"].alive(), 10,
                 "lmig proxy send to listen")
        uri = src_ep
    r["src_tick_at_migrate"] = src.last_tick()
    t0 = time.monotonic()
    qs.cmd("migrate", uri=uri)
    seen = []
    info = migrate_info(qs)
    while time.monotonic() - t0 < a.timeout:
        info = migrate_info(qs)
        if not seen or seen[-1] != info["status"]:
            seen.append(info["status"])
        if info["status"] in ("completed", "failed", "cancelled"):
            break
        if postcopy and "t_postcopy_s" not in r and info["status"] == "active" and \
                (info["ram_transferred"] or 0) >= a.postcopy_after << 20:
            r["t_postcopy_s"] = round(time.monotonic() - t0, 3)
            r["ram_transferred_at_postcopy"] = info["ram_transferred"]
            qs.cmd("migrate-start-postcopy")
        time.sleep(0.02)
    r["wall_s"] = round(time.monotonic() - t0, 3)
    r["states"] = seen
    info = outcome(qs, qd, src, dst, info, r, a.ticks, a.tick_timeout, a.timeout)
    if info["status"] != "completed":
        try:
            r["dst_status"] = qd.cmd("query-status")["status"]
        except (OSError, QMPError, ValueError):
            r["dst_status"] = "exited"
    for k in ("send", "recv") if transport == "pipe" else ():
        rcf = os.path.join(a.work, "h%d-pipe-%s.rc" % (n, k))
        try:
            wait_for(lambda: os.path.exists(rcf) and os.path.getsize(rcf) > 0, 15,
                     "lmig pipe %s to exit" % k)
            with open(rcf) as f:
                r["pipe_%s_exit" % k] = int(f.read().strip() or -1)
        except QMPError:
            r["pipe_%s_exit" % k] = "running"
        j = read_json(os.path.join(a.work, "h%d-pipe-%s.err" % (n, k)))
        for f in ("status", "error"):
            if j and f in j:
                r["pipe_%s_%s" % (k, f)] = j[f]
    for k, p in sorted(procs.items()):
        rc = p.wait(15)
        r["proxy_%s_exit" % k] = rc if rc is not None else "running"
        j = read_json(p.out_path)
        if j is None:
            r["proxy_%s_stderr" % k] = p.text(limit=300)
            continue
        for f in ("status", "error", "both_ways", "bytes_returned", "streams"):
            if f in j:
                r["proxy_%s_%s" % (k, f)] = j[f]
    return dst, r


def run(a):
    res = {"hops_done": 0}
    vms, procs = [], {}
    try:
        t_boot = time.monotonic()
        src = VM("h0", a)
        vms.append(src)
        src.wait_ready(a.boot_timeout)
        src.connect()
        res["boot_s"] = round(time.monotonic() - t_boot, 2)
        for n, name in enumerate(a.hops.split(","), 1):
            procs = {}
            dst, r = None, {"hop": name}
            try:
                dst, r = hop(a, n, name, src, procs)
            finally:
                for p in procs.values():
                    p.kill()
                if dst:
                    vms.append(dst)
            print(json.dumps(r, separators=(",", ":")), flush=True)
            res["hops_done"] += r.get("status") == "completed"
            if r.get("status") != "completed" or r.get("dst_status") != "running":
                break
            # The guest lives on the destination now: it is the next source.
            src.stop()
            src = dst
    except (QMPError, OSError) as e:
        res["harness_error"] = str(e)
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
    ap.add_argument("--hops", default="rp-proxy,rp-multifd-proxy,postcopy-tcp,postcopy-proxy,preempt-tcp,preempt-proxy,preempt-proxy-tcp,rp-pipe")
    ap.add_argument("--mem", type=int, default=512, help="guest memory, MiB")
    ap.add_argument("--touch", type=int, default=128, help="memory the guest fills, MiB")
    ap.add_argument("--rate", type=int, default=8, help="MB/s the guest rewrites")
    ap.add_argument("--max-bandwidth", type=int, default=256 << 20,
                    help="QEMU's max-bandwidth before postcopy, bytes/s")
    ap.add_argument("--postcopy-after", type=int, default=48,
                    help="MiB sent before migrate-start-postcopy")
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
            print("postcopy: unknown hop '%s' (one of %s)" % (h, ", ".join(HOPS)), file=sys.stderr)
            return 2
    rc = guest_inputs(a, "postcopy")
    if rc:
        return rc
    return run(a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""One QEMU guest: `lmig estimate --qmp` first, then the real migration.

Boots the test guest of selftests/qemu (its /init fills --touch MiB and
rewrites --rate MB/s at wall pace) in a source QEMU and a destination
waiting for it, with selftests/qemu/qmig.py's pieces; waits for one sweep
of the guest's writer (its first turns zero pages of the fill into data);
sets the source's max-bandwidth (and --downtime-limit); runs `lmig
estimate --qmp SOURCE --json` (the link is QEMU's max-bandwidth, the
downtime budget QEMU's downtime-limit); then migrates natively over tcp
on loopback, or with --via proxy through `lmig proxy send --qmp` (its
convergence controller on a second QMP socket, --throttle auto) and
`lmig proxy recv`, and prints one JSON line: the
estimate's report under "estimate" and QEMU's numbers (total_time_ms,
downtime_ms, dirty_sync_count, ram_transferred) under "actual", with
writer_pace: the guest's ticks during the migration over those it would
have printed at its pace (under TCG its writer can stall while QEMU
migrates), and dirty_pages_rates: each dirty-pages-rate QEMU reported
(pages/s its dirty log counted between two synchronisations); with
--via proxy also lmig's exit statuses and the sender's "throttle" object
(the limits it set and each decision) under "actual".  Exit
status 0 when it got as far as a result, 4 when QEMU or the kernel is
missing, 1 on a harness error.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "selftests", "qemu"))
import qmig  # noqa: E402


def start_proxy(a, src, dst, qd, port, procs):
    """lmig proxy recv feeding the destination, lmig proxy send taking the
    source's stream with its controller on the source's second QMP socket;
    the URI to give the source."""
    srcsock = os.path.join(a.work, "src-mig.sock")
    dstsock = os.path.join(a.work, "dst-mig.sock")
    for f in (srcsock, dstsock):
        if os.path.exists(f):
            os.unlink(f)
    procs["proxy-recv"] = qmig.Proc("proxy-recv", [
        a.lmig, "proxy", "recv", "--listen", "127.0.0.1:%d" % port,
        "--to", "unix:" + dstsock, "--json"], a.work)
    qd.cmd("migrate-incoming", uri="unix:" + dstsock)
    qmig.wait_for(lambda: qmig.listening("", port) or not procs["proxy-recv"].alive(), 10,
                  "lmig proxy recv to listen")
    procs["proxy-send"] = qmig.Proc("proxy-send", [
        a.lmig, "proxy", "send", "--listen", "unix:" + srcsock, "--to", "127.0.0.1:%d" % port,
        "--json", "--qmp", src.lmig_qmp, "--throttle", "auto"], a.work)
    qmig.wait_for(lambda: os.path.exists(srcsock) or not procs["proxy-send"].alive(), 10,
                  "lmig proxy send to listen")
    for n, p in procs.items():
        if not p.alive():
            raise qmig.QMPError("lmig %s exited before the migration: %s" % (n, p.text()))
    return "unix:" + srcsock


def lmig_results(procs, info):
    """The lmig processes' exit statuses and the sender's throttle object."""
    for n, p in procs.items():
        rc = p.wait(15)
        info[n.replace("-", "_") + "_exit"] = rc if rc is not None else "running"
    send = qmig.read_json(procs["proxy-send"].out_path) or \
        qmig.read_json(procs["proxy-send"].err_path) or {}
    if "throttle" in send:
        info["throttle"] = send["throttle"]
    elif info.get("proxy_send_exit") != 0:
        info["proxy_send_stderr"] = procs["proxy-send"].text()


def run(a):
    res = {"rate_mbs": a.rate, "mem_mib": a.mem, "touch_mib": a.touch,
           "max_bandwidth": a.max_bandwidth, "via": a.via}
    vms = []
    procs = {}
    a.lmig_qmp = a.via == "proxy"
    try:
        src = qmig.VM("src", a)
        vms.append(src)
        dst = qmig.VM("dst", a, incoming="defer")
        vms.append(dst)
        src.wait_ready(a.boot_timeout)
        # The guest's writer sweeps its memory in order, and its first sweep
        # turns the fill's zero pages into data: estimate in the steady state.
        settle = a.settle if a.settle >= 0 else min(60.0, a.touch * 1.048576 / max(a.rate, 1) + 2)
        res["settle_s"] = round(settle, 1)
        time.sleep(settle)
        q = src.connect()
        q.cmd("migrate-set-parameters", **{"max-bandwidth": a.max_bandwidth})
        if a.downtime_limit:
            q.cmd("migrate-set-parameters", **{"downtime-limit": a.downtime_limit})
        # QEMU's QMP socket takes one client at a time: lmig estimate's turn.
        q.close()
        src.qmp = None
        est = subprocess.run([a.lmig, "estimate", "--qmp", src.qmp_path, "--observe",
                              str(a.observe), "--json"] + a.estimate_args,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=a.observe + 60)
        try:
            res["estimate"] = json.loads(est.stdout.decode())
        except ValueError:
            res["estimate_error"] = est.stderr.decode(errors="replace")[-400:]
            return res
        qs = src.connect()
        qd = dst.connect()
        port = qmig.free_port()
        uri = "tcp:127.0.0.1:%d" % port
        if a.via == "proxy":
            uri = start_proxy(a, src, dst, qd, port, procs)
        else:
            qd.cmd("migrate-incoming", uri=uri)
            qmig.wait_for(lambda: qmig.listening("", port), 30, "the destination to listen")
        tick0 = src.last_tick()
        t0 = time.monotonic()
        qs.cmd("migrate", uri=uri)
        info = qmig.migrate_info(qs)
        rates = []
        while time.monotonic() - t0 < a.timeout:
            raw = qs.cmd("query-migrate")
            info = qmig.migrate_info(qs)
            # What QEMU's dirty log counted at its last synchronisation.
            r = raw.get("ram", {}).get("dirty-pages-rate")
            if r and (not rates or rates[-1] != r):
                rates.append(r)
            if info["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.05)
        if info["status"] not in ("completed", "failed", "cancelled"):
            qs.cmd("migrate_cancel")
            info["status"] = "not finished in %d s" % a.timeout
        ram = qs.cmd("query-migrate").get("ram", {})
        info["dirty_pages_rates"] = rates
        info["pages_zero"] = ram.get("duplicate")
        info["pages_normal"] = ram.get("normal")
        # The guest ticks every 100 ms while its writer keeps its pace.
        if info.get("total_time_ms"):
            info["writer_pace"] = round((src.last_tick() - tick0) / (info["total_time_ms"] / 100.0), 3)
        if procs:
            lmig_results(procs, info)
        res["actual"] = info
    except (qmig.QMPError, OSError, subprocess.TimeoutExpired) as e:
        res["harness_error"] = str(e)
    finally:
        for p in procs.values():
            p.kill()
        for v in vms:
            v.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--mem", type=int, default=512, help="guest memory, MiB")
    ap.add_argument("--touch", type=int, default=256, help="memory the guest fills, MiB")
    ap.add_argument("--rate", type=int, default=4, help="MB/s the guest rewrites")
    ap.add_argument("--max-bandwidth", type=int, default=100 << 20, help="bytes/s")
    ap.add_argument("--downtime-limit", type=int, default=0,
                    help="QEMU's downtime-limit, ms (default: QEMU's, 300)")
    ap.add_argument("--via", default="tcp", choices=("tcp", "proxy"),
                    help="native tcp, or lmig proxy send --qmp --throttle auto")
    ap.add_argument("--observe", type=int, default=7, help="lmig estimate --observe")
    ap.add_argument("--settle", type=float, default=-1,
                    help="seconds to wait after the guest is ready (default: one sweep of its writer)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--boot-timeout", type=float, default=120)
    ap.add_argument("--lmig", default=os.environ.get("LMIG", os.path.join(REPO, "user", "lmig")))
    ap.add_argument("--estimate-args", default="", help="more options for lmig estimate")
    ap.add_argument("--guest-append", default=os.environ.get("QMIG_APPEND", "pti=on"))
    ap.add_argument("--kernel", default=os.environ.get("KERNEL", ""))
    ap.add_argument("--initrd", default="")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    a = ap.parse_args()
    a.estimate_args = a.estimate_args.split()
    # qmig.VM's one-vCPU guest.
    a.smp = 1
    rc = qmig.guest_inputs(a, "estimate_qemu")
    if rc:
        return rc
    res = run(a)
    print(json.dumps(res, separators=(",", ":")), flush=True)
    return 1 if "harness_error" in res else 0


if __name__ == "__main__":
    sys.exit(main())

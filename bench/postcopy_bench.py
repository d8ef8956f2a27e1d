#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Post-copy benchmark driver (bench/postcopy.sh): one live QEMU guest
migrated back and forth between two network namespaces, native post-copy
and post-copy through `lmig proxy` side by side, one JSON line per
migration; with --table FILE, the Markdown tables of such a file.

The guest (selftests/qemu/guest.c, booted once) rewrites --rate MB/s of
the --touch MiB it filled and, with guest_stall_us=T, times each page it
writes: every write that took T us or more is a stall, in post-copy a
fault on a page the destination has not received yet; it prints each
slice's stalls on its console.  Cells:

  tcp            postcopy-ram, migrate tcp:DST:PORT
  proxy          postcopy-ram, lmig proxy send/recv, unix: at both QEMUs
  preempt-tcp    postcopy-ram + postcopy-preempt, native tcp
  preempt-proxy  the same through lmig proxy (the preempt channel is a
                 second connection)
  proxy-base, preempt-proxy-base
                 proxy and preempt-proxy through --lmig-base, another
                 build, to compare a change in the same run

Every migration switches to post-copy (migrate-start-postcopy) once
--postcopy-after MiB went, in the first pass (QEMU's downtime-limit is
1 ms, so pre-copy never ends by itself).  The destination of one
migration is the source of the next, so the direction alternates; the
order of the cells rotates by one every repetition, so each cell runs
both ways.  A migration's record: QEMU's status, total time, downtime
and RAM counters (postcopy-requests, postcopy-bytes, precopy-bytes,
downtime-bytes), the destination's postcopy-blocktime (QEMU's own sum
of the time vCPUs waited for pages), the post-copy phase (total time
less the time of the switch), the guest's pause on the host's clock
(qmig.py's console_gap), the stalls the destination's guest printed
before QEMU reported completion (stalls_us: the post-copy faults), and,
without remote faults, the source's in pre-copy and the destination's
after completion (what a slow write costs otherwise), and the lmig
processes' exit codes and what `lmig proxy send` put on the wire.  A
migration that does not complete (QEMU 7.2 can end in postcopy-paused,
natively too) is recorded with both QEMUs' last words; both go, a fresh
guest boots where the source was, and the run goes on, up to
--max-failures.  It only reports: bench/postcopy.sh judges.
Exit status 0 with a result, 1 on a harness error, 2 on bad arguments.
"""
import argparse
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "selftests", "qemu"))
from qmig import dst_running, final_info, guest_inputs as qmig_inputs  # noqa: E402
from qmig import (ConsoleClock, QMPError, Proc, VM, console_gap, free_port,  # noqa: E402
                  listening, migrate_info, ns_prefix, read_json, wait_for, wait_ticks)

CELLS = {
    "tcp": ("tcp", ["postcopy-ram"]),
    "proxy": ("proxy", ["postcopy-ram"]),
    "preempt-tcp": ("tcp", ["postcopy-ram", "postcopy-preempt"]),
    "preempt-proxy": ("proxy", ["postcopy-ram", "postcopy-preempt"]),
    # The same through --lmig-base: another build, compared in the same run.
    "proxy-base": ("proxy", ["postcopy-ram"]),
    "preempt-proxy-base": ("proxy", ["postcopy-ram", "postcopy-preempt"]),
}
TITLES = {
    "tcp": "native post-copy (tcp)",
    "proxy": "post-copy through lmig proxy",
    "preempt-tcp": "native post-copy + preempt",
    "preempt-proxy": "lmig proxy + preempt",
    "proxy-base": "post-copy through lmig proxy (base)",
    "preempt-proxy-base": "lmig proxy + preempt (base)",
}
CAPS = ("return-path", "postcopy-ram", "postcopy-preempt", "postcopy-blocktime")
STALLS = re.compile(rb"lmig-guest stall-us((?: \d+)+)")


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def stalls(path, start=0, end=None):
    """The stalls (us) the guest printed in path between byte offsets start and end."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(max(0, end - start))
    except OSError:
        return []
    return [int(x) for m in STALLS.finditer(data) for x in m.group(1).split()]


def set_caps(q, on):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": c, "state": c in on} for c in CAPS])


def migrate(a, n, cell, src, sides):
    """One migration of the guest in src from sides[0] to sides[1]."""
    (sns, _), (dns, daddr) = sides
    transport, caps = CELLS[cell]
    r = {"cell": cell, "from": sns}
    procs = {}
    dst = VM("m%d" % n, a, incoming="defer", ns=dns)
    try:
        qs, qd = src.qmp, dst.connect()
        set_caps(qs, caps)
        # The destination measures how long its vCPUs waited for pages.
        set_caps(qd, caps + ["postcopy-blocktime"])
        qs.cmd("migrate-set-parameters", **{"max-bandwidth": a.max_bandwidth, "downtime-limit": 1})
        port = free_port()
        if transport == "tcp":
            qd.cmd("migrate-incoming", uri="tcp:%s:%d" % (daddr, port))
            wait_for(lambda: listening(dns, port), 10, "the destination to listen")
            uri = "tcp:%s:%d" % (daddr, port)
        else:
            lmig = a.lmig_base if cell.endswith("-base") else a.lmig
            dsock = os.path.join(a.work, "m%d-dst.sock" % n)
            ssock = os.path.join(a.work, "m%d-src.sock" % n)
            qd.cmd("migrate-incoming", uri="unix:" + dsock)
            procs["recv"] = Proc("m%d-proxy-recv" % n, ns_prefix(dns) + [
                lmig, "proxy", "recv", "--listen", "%s:%d" % (daddr, port),
                "--to", "unix:" + dsock, "--json"], a.work)
            wait_for(lambda: listening(dns, port) or not procs["recv"].alive(), 10,
                     "lmig proxy recv to listen")
            procs["send"] = Proc("m%d-proxy-send" % n, ns_prefix(sns) + [
                lmig, "proxy", "send", "--listen", "unix:" + ssock,
                "--to", "%s:%d" % (daddr, port), "--json"], a.work)
            wait_for(lambda: os.path.exists(ssock) or not procs["send"].alive(), 10,
                     "lmig proxy send to listen")
            uri = "unix:" + ssock
        src_at0 = size(src.serial)
        sclock, dclock = ConsoleClock(src.serial), ConsoleClock(dst.serial)
        r["src_tick_at_migrate"] = src.last_tick()
        t0 = time.monotonic()
        qs.cmd("migrate", uri=uri)
        info = migrate_info(qs)
        src_at_switch = dst_at_end = None
        while time.monotonic() - t0 < a.timeout:
            info = migrate_info(qs)
            if info["status"] == "completed":
                # Every page is on the destination: what its guest
                # printed so far is the post-copy phase's.
                dst_at_end = size(dst.serial)
            # postcopy-paused: a channel broke after the switch; the guest
            # is split between the two QEMUs until a recovery, which is
            # not what is measured here.
            if info["status"] in ("completed", "failed", "cancelled", "postcopy-paused"):
                break
            if "switch_ms" not in r and info["status"] == "active" and \
                    (info["ram_transferred"] or 0) >= a.postcopy_after << 20:
                r["switch_ms"] = round((time.monotonic() - t0) * 1000, 1)
                src_at_switch = size(src.serial)
                qs.cmd("migrate-start-postcopy")
            time.sleep(0.01)
        # QEMU's numbers as qmig.py records them (postcopy-requests and
        # -bytes among them).
        info = final_info(qs, info)
        r.update(info)
        if info["status"] != "completed":
            r["src_stderr"] = src.proc.text(limit=300)
            r["dst_stderr"] = dst.proc.text(limit=300)
            if info["status"] not in ("failed", "cancelled", "postcopy-paused"):
                r["harness_error"] = "still %s after %d s" % (info["status"], a.timeout)
                qs.cmd("migrate_cancel")
            return dst, r
        if r.get("total_time_ms") and "switch_ms" in r:
            r["postcopy_ms"] = round(r["total_time_ms"] - r["switch_ms"], 1)
        r["dst_status"] = dst_running(qd)
        di = qd.cmd("query-migrate")
        r["blocktime_ms"] = di.get("postcopy-blocktime")
        t = wait_ticks(dst, a.ticks, 15)
        r["dst_first_tick"], r["dst_last_tick"] = (t[0], t[-1]) if t else (0, 0)
        r["src_last_tick"] = src.last_tick()
        sclock.stop()
        dclock.stop()
        r.update(console_gap(sclock, dclock, a.tick))
        # The guest prints a slice's stalls after the slice: a slice that
        # ended as the migration completed comes within a tick or two.
        time.sleep(max(0.2, 3 * a.tick / 1000))
        r["stalls_us"] = stalls(dst.serial, 0, dst_at_end)
        # Without remote faults: the source in pre-copy, the destination
        # once it has every page (while the ticks above were awaited).
        r["src_precopy_stalls_us"] = stalls(src.serial, src_at0, src_at_switch)
        r["dst_after_stalls_us"] = stalls(dst.serial, dst_at_end)
        return dst, r
    except BaseException:
        dst.stop()
        raise
    finally:
        for k, p in sorted(procs.items()):
            rc = p.wait(15)
            r["proxy_%s_exit" % k] = rc if rc is not None else "running"
            j = read_json(p.out_path)
            if j is None:
                r["proxy_%s_stderr" % k] = p.text(limit=300)
            elif k == "send":
                for f in ("bytes_in", "bytes_wire", "bytes_returned", "streams"):
                    r["lmig_" + f] = j.get(f)
            p.kill()


def run(a, ends, out):
    res = {"migrations": 0}
    vms = []
    t_boot = time.monotonic()
    def boot(name, ns):
        vm = VM(name, a, ns=ns)
        vms.append(vm)
        vm.wait_ready(a.boot_timeout)
        vm.connect()
        time.sleep(a.settle)
        return vm

    try:
        src = boot("m0", ends[0][0])
        res["boot_s"] = round(time.monotonic() - t_boot, 1)
        cells = a.cells.split(",")
        n, here, failed = 0, 0, 0
        for rep in range(a.reps):
            for i in range(len(cells)):
                cell = cells[(i + rep) % len(cells)]
                n += 1
                dst, r = None, {"cell": cell}
                try:
                    dst, r = migrate(a, n, cell, src, (ends[here], ends[1 - here]))
                finally:
                    if dst:
                        vms.append(dst)
                r["rep"] = rep + 1
                out.write(json.dumps(r, separators=(",", ":")) + "\n")
                out.flush()
                ok = r.get("status") == "completed" and r.get("dst_status") == "running" and \
                    r.get("dst_last_tick", 0) > r.get("src_tick_at_migrate", 0)
                print("postcopy %-13s rep %d %s: %s total %s ms downtime %s ms pause %s ms "
                      "post-copy %s ms requests %s stalls %d p50 %s max %s us" % (
                          cell, rep + 1, r.get("from"), r.get("status"), r.get("total_time_ms"),
                          r.get("downtime_ms"), r.get("guest_pause_ms"), r.get("postcopy_ms"),
                          r.get("postcopy_requests"), len(r.get("stalls_us", [])),
                          pct(r.get("stalls_us", []), 50), pct(r.get("stalls_us", []), 100)),
                      file=sys.stderr, flush=True)
                if not ok:
                    # The guest may be split between the two QEMUs: both go,
                    # and a fresh guest carries on from this side.
                    failed += 1
                    res["failed"] = failed
                    src.stop()
                    if dst:
                        dst.stop()
                    if failed >= a.max_failures:
                        res["stopped_at"] = n
                        return res
                    src = boot("m%d-boot" % n, ends[here][0])
                    continue
                res["migrations"] += 1
                src.stop()
                src, here = dst, 1 - here
    except (QMPError, OSError) as e:
        res["harness_error"] = str(e)
        for v in vms:
            if not v.proc.alive():
                res.setdefault("qemu_stderr", {})[v.name] = v.proc.text()
    finally:
        for v in vms:
            v.stop()
        res["total_s"] = round(time.monotonic() - t_boot, 1)
        out.write(json.dumps(res, separators=(",", ":")) + "\n")
    return res


def pct(v, p):
    """Nearest-rank percentile of the values v (None when there are none)."""
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    return v[max(0, (len(v) * p + 99) // 100 - 1)]


def fmt(x, scale=1.0, nd=0):
    return "-" if x is None else "%.*f" % (nd, x / scale)


def table(path, cells):
    rows = {c: [] for c in cells}
    fails = {c: 0 for c in cells}
    bad_down, failures = [], []
    with open(path) as f:
        for ln in f:
            r = json.loads(ln)
            c = r.get("cell")
            if c not in rows:
                continue
            if r.get("status") == "completed" and r.get("dst_status") == "running":
                # QEMU 7.2 can report a downtime longer than the whole
                # migration after post-copy (seen with preempt): no value.
                if (r.get("downtime_ms") or 0) > (r.get("total_time_ms") or 0):
                    r["downtime_bad"] = r.pop("downtime_ms")
                    bad_down.append("%s run %s: %s ms" % (c, r.get("rep"), r["downtime_bad"]))
                rows[c].append(r)
            else:
                fails[c] += 1
                failures.append("%s run %s: %s%s" % (c, r.get("rep"), r.get("status"),
                                                    ", " + r["qemu_error"] if r.get("qemu_error") else ""))
    cols = [("total time s", "total_time_ms", 1000, 2), ("downtime ms", "downtime_ms", 1, 0),
            ("guest pause ms", "guest_pause_ms", 1, 0), ("post-copy phase ms", "postcopy_ms", 1, 0),
            ("page requests", "postcopy_requests", 1, 0), ("post-copy MB", "postcopy_bytes", 1e6, 0), ("blocktime ms", "blocktime_ms", 1, 0),
            ("stalls a run", "stall_n", 1, 0)]
    spcs = (50, 90, 99, 100)
    print("| cell | runs | " + " | ".join(c[0] for c in cols) +
          " | stall p50 / p90 / p99 / max us, all runs' stalls |")
    print("|---|---:|" + "---:|" * len(cols) + "---:|")
    med = {}
    for c in cells:
        vals = []
        for r in rows[c]:
            r["stall_n"] = len(r.get("stalls_us", []))
        for _, k, sc, nd in cols:
            v = [r.get(k) for r in rows[c]]
            m, p = pct(v, 50), pct(v, 90)
            med[c, k] = m
            vals.append("-" if m is None else "%s / %s" % (fmt(m, sc, nd), fmt(p, sc, nd)))
        pool = [x for r in rows[c] for x in r.get("stalls_us", [])]
        for q in spcs:
            med[c, "stall%d" % q] = pct(pool, q)
        vals.append(" / ".join(fmt(pct(pool, q)) for q in spcs) if pool else "-")
        runs = "%d" % len(rows[c]) + (" (%d failed)" % fails[c] if fails[c] else "")
        print("| %s | %s | %s |" % (TITLES[c], runs, " | ".join(vals)))
    print("")
    pairs = [(l, n) for l, n in (("proxy", "tcp"), ("preempt-proxy", "preempt-tcp"),
                                 ("proxy-base", "tcp"), ("preempt-proxy-base", "preempt-tcp"))
             if l in cells and n in cells]
    rcols = [c for c in cols if c[1] not in ("stall_n",)] + [
        ("stall p%d" % q if q < 100 else "stall max", "stall%d" % q, 1, 0) for q in spcs]
    if pairs:
        print("| lmig / native (medians) | " + " | ".join(
            c[0].replace(" s", "").replace(" ms", "").replace(" us", "").replace(" MB", "")
            for c in rcols) + " |")
        print("|---|" + "---:|" * len(rcols))
    for l, n in pairs:
        v = []
        for _, k, _, _ in rcols:
            x, y = med.get((l, k)), med.get((n, k))
            v.append("%.2fx" % (x / y) if x is not None and y else "-")
        print("| %s / %s | %s |" % (l, n, " | ".join(v)))
    lm = [r for c in cells for r in rows[c] if r.get("lmig_bytes_wire") and r.get("lmig_bytes_in")]
    if lm:
        print("")
        print("lmig proxy send, median over its runs: %.0f MB from QEMU, %.0f MB on the wire "
              "(ratio %.2f), %.0f bytes carried back (page requests and QEMU's other replies)." % (
                  pct([r["lmig_bytes_in"] for r in lm], 50) / 1e6,
                  pct([r["lmig_bytes_wire"] for r in lm], 50) / 1e6,
                  pct([r["lmig_bytes_wire"] / r["lmig_bytes_in"] for r in lm], 50),
                  pct([r.get("lmig_bytes_returned") for r in lm], 50) or 0))
    if failures:
        print("")
        print("Failed migrations (not in the table; a fresh guest booted after each): %s." %
              "; ".join(failures))
    if bad_down:
        print("")
        print("QEMU's downtime left out as longer than the migration: %s." % "; ".join(bad_down))
    print("")
    for what, k in (("the sources in pre-copy", "src_precopy_stalls_us"),
                    ("the destinations once complete", "dst_after_stalls_us")):
        pool = [x for c in cells for r in rows[c] for x in r.get(k, [])]
        print("Stalls without remote faults, %s (all runs): %d, p50 / p99 / max %s us." % (
            what, len(pool), " / ".join(fmt(pct(pool, q)) for q in (50, 99, 100))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", metavar="FILE", help="print the tables of FILE's records")
    ap.add_argument("--work", help="directory for sockets, consoles and logs")
    ap.add_argument("--out", help="file for the records (one JSON line per migration)")
    ap.add_argument("--ends", default="", help="NS_A=ADDR_A,NS_B=ADDR_B: the two namespaces")
    ap.add_argument("--cells", default="tcp,proxy,preempt-tcp,preempt-proxy")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--mem", type=int, default=512, help="guest memory, MiB")
    ap.add_argument("--touch", type=int, default=256, help="memory the guest fills, MiB")
    ap.add_argument("--rate", type=int, default=20, help="MB/s the guest rewrites")
    ap.add_argument("--tick", type=int, default=10, help="the guest's tick, ms")
    ap.add_argument("--stall-us", type=int, default=50, help="a write this slow is a stall, us")
    ap.add_argument("--max-bandwidth", type=int, default=32 << 30, help="QEMU's max-bandwidth, bytes/s")
    ap.add_argument("--postcopy-after", type=int, default=64,
                    help="MiB sent before migrate-start-postcopy")
    ap.add_argument("--settle", type=float, default=3, help="seconds the guest runs before the first")
    ap.add_argument("--lmig", default="")
    ap.add_argument("--lmig-base", default="", help="the lmig of the -base cells")
    ap.add_argument("--timeout", type=float, default=60, help="seconds a migration may take")
    ap.add_argument("--max-failures", type=int, default=3,
                    help="failed migrations before the run stops (a fresh guest boots after each)")
    ap.add_argument("--boot-timeout", type=float, default=240)
    ap.add_argument("--ticks", type=int, default=20, help="ticks to see on the destination")
    ap.add_argument("--kernel", default=os.environ.get("KERNEL", ""))
    ap.add_argument("--initrd", default="")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "")
    a = ap.parse_args()
    cells = a.cells.split(",")
    for c in cells:
        if c not in CELLS:
            print("postcopy_bench: unknown cell '%s' (one of %s)" % (c, ", ".join(CELLS)),
                  file=sys.stderr)
            return 2
    if a.table:
        table(a.table, cells)
        return 0
    ends = [e.partition("=")[::2] for e in a.ends.split(",")] if a.ends else []
    if len(ends) != 2 or not all(ns and addr for ns, addr in ends) or not a.work or \
            not a.out or not a.lmig:
        print("postcopy_bench: needs --work, --out, --lmig and --ends NS_A=ADDR_A,NS_B=ADDR_B",
              file=sys.stderr)
        return 2
    if any(c.endswith("-base") for c in cells) and not a.lmig_base:
        print("postcopy_bench: the -base cells need --lmig-base", file=sys.stderr)
        return 2
    # A bench reports what is missing as a failure (1), not as a skip.
    if qmig_inputs(a, "postcopy_bench"):
        return 1
    a.smp = 1
    a.guest_append = "pti=on guest_tick=%d guest_stall_us=%d" % (a.tick, a.stall_us)
    a.work = os.path.abspath(a.work)
    with open(a.out, "w") as out:
        res = run(a, ends, out)
    return 1 if "harness_error" in res or res.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())

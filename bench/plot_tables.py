#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Plots of the benchmark tables (bench/plot.sh runs this).

Reads the Markdown that the benchmarks print (bench/results-latest.md, or
Documentation/benchmarks.md where the tables are pasted), finds each table
by its columns, takes the newest one (by the date in the heading above it,
then by position), and has gnuplot draw it as SVG.  The per-round throttle
timeline comes from the JSON that bench/throttle.sh keeps.  Every point is
a number of the table or report as it stands: no fit, no smoothing, and a
cell that holds no number (FAIL, "-") is left out, not drawn as zero.

A table or report that is absent is skipped with a note on stderr; only a
gnuplot failure makes the exit status non-zero.

Usage: plot_tables.py --in FILE.md --out DIR [--throttle-json FILE]
"""
import argparse
import json
import os
import re
import subprocess
import sys

DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?:[–-]\d{2}:\d{2})?(?: UTC)?)?")
COMMIT = re.compile(r"commit ([0-9a-f]{7,40})")
NUM = re.compile(r"-?\d+(?:\.\d+)?")


def note(msg):
    print("plot: " + msg, file=sys.stderr)


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def read_tables(path):
    """Every table of the file: its heading, the run it belongs to, columns, rows."""
    tables = []
    heading, run, order = "", "", 0
    lines = open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            m = DATE.search(heading)
            if m:
                run = m.group(0)
            elif line.startswith("## "):
                run = ""  # a new section: an older section's date does not carry over
            i += 1
            continue
        m = COMMIT.search(line)
        if m and line.startswith("- ") and not run:
            run = "source tree at commit " + m.group(1)
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|\s*$", lines[i + 1]):
            head = cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(head, cells(lines[i]))))
                i += 1
            order += 1
            tables.append({"heading": heading, "run": run, "cols": head, "rows": rows, "order": order})
            continue
        i += 1
    return tables


def newest(tables, need):
    """The table with all columns in need: latest run date first, then the last one."""
    found = [t for t in tables if all(c in t["cols"] for c in need)]
    if not found:
        return None
    return max(found, key=lambda t: (DATE.match(t["run"]) and t["run"][:16] or "", t["order"]))


def num(s):
    """The first number of a cell, or None ("-", "FAIL", empty)."""
    m = NUM.search((s or "").replace("**", ""))
    return float(m.group(0)) if m else None


def q(s):
    """A gnuplot string literal."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Plot:
    """One SVG of one or more panels; series are datablocks of x y rows."""

    def __init__(self, title, caption, panels, width=900, height=420):
        self.title, self.caption, self.panels = title, caption, panels
        self.width, self.height = width, height
        self.blocks = []
        self.cmds = []
        self.styles = {}
        self.xs = []

    def block(self, pts):
        self.xs += [p[0] for p in pts]
        name = "$d%d" % len(self.blocks)
        body = "\n".join(" ".join("NaN" if v is None else repr(v) for v in p) for p in pts)
        self.blocks.append("%s << EOD\n%s\nEOD" % (name, body))
        return name

    def series(self, series, style, xs=None):
        """A plot command for [(title, datablock)]; a title keeps its colour and
        point shape in every panel.  xs: the x values, for an x range with a
        margin that does not reach below the data."""
        if not series:
            return ["set label 1 'no numbers in the table for this panel' at graph 0.5,0.5 center",
                    "set xrange [0:1]", "set yrange [0:1]", "plot NaN notitle"]
        cmd = []
        if xs:
            lo, hi = min(xs), max(xs)
            m = (hi - lo) * 0.05 or 1
            cmd.append("set xrange [%g:%g]" % (lo - m if lo - m >= 0 or lo < 0 else 0, hi + m))
        parts = []
        for t, b in series:
            n = self.styles.setdefault(t, len(self.styles) + 1)
            parts.append("%s using 1:2 with %s lt %d pt %d title %s" % (b, style, n, n, q(t)))
        return cmd + ["plot " + ", ".join(parts)]

    def panel(self, lines):
        self.cmds.append(lines)

    def script(self, out):
        s = self.blocks + [
            "set terminal svg size %d,%d dynamic enhanced font 'sans,10' background '#ffffff'"
            % (self.width, self.height),
            "set output " + q(out),
        ]
        rows, cols = self.panels
        s.append("set multiplot layout %d,%d title %s noenhanced" % (rows, cols, q(self.title + "\n" + self.caption)))
        for p in self.cmds:
            # reset keeps the terminal and the multiplot, and no setting leaks into the next panel
            s += ["reset", "set grid", "set key outside bottom center horizontal noenhanced",
                  "set style fill solid 0.7 border -1"] + p
        s.append("unset multiplot")
        return "\n".join(s) + "\n"

    def draw(self, path):
        tmp = path + ".tmp"
        r = subprocess.run(["gnuplot"], input=self.script(tmp), text=True, capture_output=True)
        if r.returncode != 0 or not os.path.exists(tmp):
            sys.stderr.write(r.stderr)
            note("gnuplot failed on " + path)
            return False
        os.replace(tmp, path)
        print("plot: wrote " + path)
        return True


def source_line(t, path):
    return "%s: \"%s\"%s" % (os.path.basename(path), t["heading"],
                             (", " + t["run"]) if t["run"] and t["run"] not in t["heading"] else "")


def plot_qemu(tables, src, out):
    t = newest(tables, ["path", "transport", "total time s", "downtime ms"])
    if not t:
        return note("no QEMU transport table (path | transport | total time s | downtime ms) in %s: qemu-transport.svg skipped" % src)
    paths, transports = [], []
    for r in t["rows"]:
        paths += [r["path"]] if r["path"] not in paths else []
        transports += [r["transport"]] if r["transport"] not in transports else []
    p = Plot("QEMU migration: native against lmig, side by side (each cell: the run of median total time)",
             source_line(t, src), (1, 2), 1000, 460)
    w = 0.8 / max(1, len(transports))
    xt = "set xtics (%s)" % ", ".join("%s %d" % (q(n), i) for i, n in enumerate(paths))
    for col, label in (("total time s", "total time (s)"), ("downtime ms", "downtime (ms)")):
        series = []
        for j, tr in enumerate(transports):
            pts = [(paths.index(r["path"]) - 0.4 + w * (j + 0.5), num(r[col]))
                   for r in t["rows"] if r["transport"] == tr and num(r[col]) is not None]
            if pts:
                series.append((tr, p.block(pts)))
        p.panel([xt, "set xrange [-0.5:%g]" % (len(paths) - 0.5), "set yrange [0:*]",
                 "set boxwidth %g" % (w * 0.9), "set ylabel " + q(label), "set xlabel 'path'"]
                + p.series(series, "boxes"))
    return p.draw(os.path.join(out, "qemu-transport.svg"))


def plot_live(tables, src, out):
    t = newest(tables, ["tracker", "dirty MB/s", "--downtime-ms", "converged", "total s", "downtime ms"])
    if not t:
        return note("no live migration table (tracker | dirty MB/s | --downtime-ms | converged | total s | downtime ms) in %s: live-dirty-rate.svg skipped" % src)
    keys = []
    for r in t["rows"]:
        k = (r["tracker"], r["--downtime-ms"])
        keys += [k] if k not in keys else []
    p = Plot("Live migration against the dirty rate: each tracker and downtime budget",
             source_line(t, src), (1, 2), 1000, 460)
    down, total, failed = [], [], []
    for tr, b in keys:
        rows = sorted((r for r in t["rows"] if (r["tracker"], r["--downtime-ms"]) == (tr, b)),
                      key=lambda r: num(r["dirty MB/s"]) or 0)
        name = "%s, budget %s ms" % (tr, b)
        d = [(num(r["dirty MB/s"]), num(r["downtime ms"])) for r in rows
             if r["converged"].startswith("yes") and num(r["downtime ms"]) is not None]
        s = [(num(r["dirty MB/s"]), num(r["total s"])) for r in rows if num(r["total s"]) is not None]
        failed += [(num(r["dirty MB/s"]), num(r["total s"])) for r in rows
                   if not r["converged"].startswith("yes") and num(r["total s"]) is not None]
        if d:
            down.append((name, p.block(d)))
        if s:
            total.append((name, p.block(s)))
    common = ["set xlabel 'dirty rate written (MB/s)'", "set yrange [0:*]"]
    p.panel(common + ["set ylabel 'downtime (ms), runs that converged'"] + p.series(down, "linespoints", p.xs))
    cmd = p.series(total, "linespoints", p.xs)
    if failed and total:
        cmd[-1] += ", %s using 1:2 with points pt 6 ps 2.5 lc 'black' title 'did not converge (time to give up)'" % p.block(failed)
    p.panel(common + ["set ylabel 'total time (s)'"] + cmd)
    return p.draw(os.path.join(out, "live-dirty-rate.svg"))


def plot_converge(tables, src, out):
    t = newest(tables, ["dirty rate", "migration", "finished", "total time s", "computing vCPU"])
    if not t:
        return note("no QEMU convergence table (dirty rate | migration | finished | total time s | computing vCPU) in %s: converge.svg skipped" % src)
    far = next((c for c in t["cols"] if c.startswith("how far") or "least left" in c), None)
    cases = []
    for r in t["rows"]:
        cases += [r["migration"]] if r["migration"] not in cases else []
    p = Plot("QEMU convergence against the guest's dirty rate: native, auto-converge and lmig side by side",
             source_line(t, src), (1, 3), 1200, 460)

    def rate(r):  # "2x link (32 MB/s)": the MB/s
        m = re.search(r"\(([\d.]+) MB/s\)", r["dirty rate"])
        return float(m.group(1)) if m else num(r["dirty rate"])

    def least(r):  # "7 passes, each left at least 59.8 MB dirty": the MB
        m = re.search(r"([\d.]+) MB", r.get(far, "") or "")
        return float(m.group(1)) if m else None

    def finished(r):
        return r["finished"].startswith("yes")

    panels = (("total time (s), runs that finished", lambda r: num(r["total time s"]) if finished(r) else None),
              ("least left dirty by a pass (MB), runs cancelled", lambda r: None if finished(r) or not far else least(r)),
              ("computing vCPU (% of its rate before)", lambda r: num(r["computing vCPU"])))
    xs = [rate(r) for r in t["rows"] if rate(r)]
    rng = ["set xrange [%g:%g]" % (min(xs) / 1.4, max(xs) * 1.4)] if xs else []
    for label, get in panels:
        series = []
        for c in cases:
            pts = sorted((rate(r), get(r)) for r in t["rows"]
                         if r["migration"] == c and rate(r) is not None and get(r) is not None)
            if pts:
                series.append((c.replace("`", ""), p.block(pts)))
        p.panel(["set xlabel \"writer's dirty rate (MB/s)\"", "set ylabel " + q(label), "set yrange [0:*]",
                 "set logscale x 2"] + rng + p.series(series, "linespoints"))
    return p.draw(os.path.join(out, "converge.svg"))


def plot_throttle(path, out):
    try:
        j = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as e:
        return note("no throttle report (%s): throttle-rounds.svg skipped" % e)
    p = Plot("lmig send --throttle off and auto, round by round: %s of private memory, writer %s per second of its CPU%s"
             % (j.get("size", "?"), j.get("rate", "?"), ", link limited to %s/s" % j["bandwidth"] if j.get("bandwidth") else ""),
             "bench/throttle.sh, %s; one point a round, at the round's start (start_ms)" % j.get("started", "undated"),
             (3, 1), 900, 820)
    dirty, pred, cpu = [], [], []
    for mode in ("off", "auto"):
        rep = j.get(mode) or {}
        rounds = rep.get("rounds") or []
        thr = {x["round"]: x for x in rep.get("throttle") or []}
        name = "--throttle %s%s" % (mode, "" if rep.get("converged") else " (did not converge)")
        t = [(r["start_ms"] / 1000, r) for r in rounds]
        d = [(s, r["dirty_mbps"]) for s, r in t[1:]]  # round 0 sends the whole image: no rate
        if d:
            dirty.append((name, p.block(d)))
        pd = [(s, r["predicted_downtime_ms"]) for s, r in t if r["predicted_downtime_ms"] > 0]
        if pd:
            pred.append((name, p.block(pd)))
        lim = [(s, thr[r["round"]]["cpu_limit_pct"]) for s, r in t
               if r["round"] in thr and thr[r["round"]]["cpu_limit_pct"] > 0]
        used = [(s, thr[r["round"]]["cpu_used_pct"]) for s, r in t
                if r["round"] in thr and thr[r["round"]]["cpu_used_pct"] > 0]
        if lim:
            cpu.append(("%s: CPU limit (rounds with a limit)" % mode, p.block(lim)))
        if used:
            cpu.append(("%s: CPU used by the threads it would limit (cpu_used_pct)" % mode, p.block(used)))
    x = "set xlabel 'time since lmig send started (s)'"
    p.panel([x, "set ylabel 'dirty rate tracked (MB/s)'", "set yrange [0:*]", "set xrange [0:*]"] + p.series(dirty, "linespoints"))
    p.panel([x, "set ylabel 'predicted downtime (ms)'", "set logscale y", "set xrange [0:*]"] + p.series(pred, "linespoints"))
    p.panel([x, "set ylabel 'CPU (% of one CPU)'", "set yrange [0:*]", "set xrange [0:*]"] + p.series(cpu, "linespoints"))
    return p.draw(os.path.join(out, "throttle-rounds.svg"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--throttle-json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tables = []
    if os.path.exists(a.src):
        tables = read_tables(a.src)
    else:
        note("%s does not exist: the plots of its tables are skipped" % a.src)
    ok = [plot_qemu(tables, a.src, a.out), plot_live(tables, a.src, a.out), plot_converge(tables, a.src, a.out)]
    if a.throttle_json:
        ok.append(plot_throttle(a.throttle_json, a.out))
    return 1 if False in ok else 0


if __name__ == "__main__":
    sys.exit(main())

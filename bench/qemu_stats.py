#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The switch-over table of bench/qemu.sh over its N runs per cell.

Usage: qemu_stats.py RESULTS

RESULTS has one line per run, as bench/qemu.sh writes them:

  path case rep status total_ms downtime_ms wire dev pause_ms build

(build "lmig" for the lmig under test and the native cases, "base" for
the baseline of LMIG_BASE).  For each path, transport and build: the completed runs
(n), the median and 90th percentile of QEMU's downtime (the source's
view: until the source wrote its last byte) and of the guest's pause
(seen on the consoles: from the source's last tick to the destination's
first, bench/qemu.sh's QEMU_TICK), the median of the pause less the
downtime (what crossing the rest of the way and starting the destination
took after the source was done), and each cell's pause against native
tcp on the same path and the lmig under test against its baseline (its
pause, and its pause less the downtime): the ratio of the medians and
the two-sided p of a Mann-Whitney U test (normal approximation with the
tie correction; "-" below 4 runs a side).  A p below 0.05 says the two
differ by more than run-to-run spread; a larger one says this many runs
cannot tell them apart.
"""
import math
import sys

TITLES = {"tcp": "native tcp", "zstd": "native multifd (2) + zstd",
          "pipe": "lmig pipe (exec:)", "proxy": "lmig proxy, multifd (2)"}


def pct(v, q):
    """The q-th percentile (0..1) of v, linearly between the nearest ranks."""
    v = sorted(v)
    if not v:
        return None
    k = (len(v) - 1) * q
    lo = int(math.floor(k))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def mann_whitney_p(a, b):
    """Two-sided p of the Mann-Whitney U test, or None with too few runs."""
    n1, n2 = len(a), len(b)
    if n1 < 4 or n2 < 4:
        return None
    allv = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(allv)
    ties = 0.0
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1][0] == allv[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, allv) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mu = n1 * n2 / 2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u - mu) - 0.5) / math.sqrt(var)
    return max(0.0, min(1.0, math.erfc(max(z, 0) / math.sqrt(2))))


def fmt(x, digits=0):
    return "-" if x is None else "%.*f" % (digits, x)


def spread(v):
    """'median / p90' of v."""
    return "%s / %s" % (fmt(pct(v, 0.5)), fmt(pct(v, 0.9))) if v else "-"


def versus(a, b):
    """'ratio of medians (p)' of b against a."""
    if not a or not b:
        return "-"
    ma, mb = pct(a, 0.5), pct(b, 0.5)
    p = mann_whitney_p(a, b)
    ratio = "%.2fx" % (mb / ma) if ma > 0 else "-"
    return "%s (p %s)" % (ratio, "-" if p is None else "%.3f" % p)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: qemu_stats.py RESULTS")
    cells, order, failed = {}, [], {}
    with open(sys.argv[1]) as f:
        for ln in f:
            w = ln.split()
            if len(w) < 10:
                continue
            key = (w[0], w[1], w[9])
            if key not in cells:
                cells[key] = {"down": [], "pause": [], "after": []}
                order.append(key)
            if w[3] != "completed":
                failed[key] = failed.get(key, 0) + 1
                continue
            cells[key]["down"].append(float(w[5]))
            if w[8] != "-":
                cells[key]["pause"].append(float(w[8]))
                cells[key]["after"].append(float(w[8]) - float(w[5]))
    print("| path | transport | build | n | downtime ms, median / p90 | guest pause ms, median / p90 "
          "| pause - downtime ms, median / p90 | pause vs native tcp | pause vs base "
          "| pause - downtime vs base |")
    print("|---|---|---|---:|---:|---:|---:|---|---|---|")
    paths = ["loopback", "netns"]
    cases = list(TITLES)
    order.sort(key=lambda k: (paths.index(k[0]) if k[0] in paths else 9,
                              cases.index(k[1]) if k[1] in cases else 9, k[2] != "lmig"))
    for key in order:
        path, case, build = key
        c = cells[key]
        native = cells.get((path, "tcp", "lmig"), {})
        base = cells.get((path, case, "base"), {})
        theirs = build == "lmig" and case != "tcp"
        n = "%d" % len(c["down"]) + (" (%d failed)" % failed[key] if key in failed else "")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            "1 Gbit/s link" if path == "netns" else "loopback", TITLES.get(case, case), build, n,
            spread(c["down"]), spread(c["pause"]), spread(c["after"]),
            "-" if case == "tcp" else versus(native.get("pause", []), c["pause"]),
            versus(base.get("pause", []), c["pause"]) if theirs else "-",
            versus(base.get("after", []), c["after"]) if theirs else "-"))

if __name__ == "__main__":
    main()

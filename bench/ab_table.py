#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Pairs the Markdown tables of one benchmark run with two builds.

Usage: ab_table.py A_RUN.md... -- B_RUN.md...

Rows are matched by their first cell (and, for rows that repeat it, by
their order).  A cell that holds one number in every run becomes
"median A / median B (B÷A)"; a cell with several numbers gets the medians
of each for A and B ("A ‖ B"); other cells are printed as in the last run
of A.  A run whose row failed (empty cells) is left out of that row's
medians.  Rows that are not in every run are left out and counted at the end.
"""
import re
import statistics
import sys

NUM = re.compile(r'-?\d+(?:\.\d+)?')
# A cell is a number (or numbers) when nothing but units and separators
# surround them; "lz4" or "`none` / iperf3" are labels.
NUMERIC = re.compile(r'^[\s\d.,/–\-%×~≤≥<>*]*(?:ms|s|MiB|GiB|MB/s|KiB|x)?[\s\d.,/–\-%×*]*$')


def tables(path):
    """The table rows of a file, as lists of cells, keyed by first cell."""
    rows, seen = {}, {}
    order = []
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = [ln.rstrip('\n') for ln in f]
    for i, line in enumerate(lines):
            if not line.startswith('|'):
                continue
            cells = [c.strip() for c in line.strip('|').split('|')]
            # A header row (the separator follows it) is kept as text.
            if i + 1 < len(lines) and re.match(r'^\|[-:| ]+\|$', lines[i + 1]):
                cells = ['\0' + c for c in cells]
            first = cells[0]
            n = seen.get(first, 0)
            seen[first] = n + 1
            key = (first, n)
            rows[key] = cells
            order.append(key)
    return rows, order


def fmt(x):
    if abs(x) >= 100 or x == int(x):
        return '%.0f' % x
    return '%.2f' % x if abs(x) < 10 else '%.1f' % x


def numeric(c):
    return not c.startswith('\0') and NUMERIC.match(c) and NUM.search(c)


def pair_cell(acells, bcells):
    # A run that failed (its row says FAIL, its cells are empty) leaves the
    # medians to the runs that did not; a cell no run of a side has is text.
    if any(c.startswith('\0') for c in acells + bcells):
        return acells[-1].lstrip('\0')
    acells = [c for c in acells if numeric(c)]
    bcells = [c for c in bcells if numeric(c)]
    if not acells or not bcells:
        return None
    anums = [NUM.findall(c) for c in acells]
    bnums = [NUM.findall(c) for c in bcells]
    counts = {len(n) for n in anums + bnums}
    if len(counts) != 1 or 0 in counts:
        return acells[-1]
    k = counts.pop()
    am = [statistics.median(float(n[i]) for n in anums) for i in range(k)]
    bm = [statistics.median(float(n[i]) for n in bnums) for i in range(k)]
    if k == 1:
        ratio = '(%.2f×)' % (bm[0] / am[0]) if am[0] else '(–)'
        return '%s / %s %s' % (fmt(am[0]), fmt(bm[0]), ratio)
    return '%s ‖ %s' % (' / '.join(fmt(x) for x in am), ' / '.join(fmt(x) for x in bm))


def main(argv):
    if '--' not in argv:
        sys.exit('usage: ab_table.py A_RUN.md... -- B_RUN.md...')
    i = argv.index('--')
    afiles, bfiles = argv[:i], argv[i + 1:]
    if not afiles or not bfiles:
        sys.exit('ab_table.py: runs of both builds are needed')
    aruns = [tables(p) for p in afiles]
    bruns = [tables(p) for p in bfiles]
    template, order = aruns[-1]
    dropped = 0
    for key in order:
        cells = template[key]
        if all(set(c) <= set('-: ') for c in cells):
            print('|' + '|'.join(cells) + '|')
            continue
        if not all(key in r for r, _ in aruns + bruns):
            dropped += 1
            continue
        out = [cells[0].lstrip('\0')]
        for j in range(1, len(cells)):
            ac = [r[key][j] if j < len(r[key]) else '' for r, _ in aruns]
            bc = [r[key][j] if j < len(r[key]) else '' for r, _ in bruns]
            v = pair_cell(ac, bc)
            if v is None:
                # Not a number in any run of one side: the last run's text.
                v = next((c for c in reversed(ac + bc) if c), '')
            out.append(v)
        print('| ' + ' | '.join(out) + ' |')
    if dropped:
        print('\n(%d rows not in every run left out)' % dropped)


if __name__ == '__main__':
    main(sys.argv[1:])

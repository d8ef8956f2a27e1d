#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""What gnuplot drew in an SVG: for each series title, summed over the
panels, the points (point marks) and boxes (filled bars) it has, less
the one sample of each that the key shows.  Prints TITLE<TAB>POINTS<TAB>BOXES
sorted by title.  Usage: svgseries.py FILE.svg"""
import re
import sys

svg = open(sys.argv[1], encoding="utf-8").read()
count = {}
for chunk in svg.split('<g id="gnuplot_plot_')[1:]:
    m = re.match(r'\w+" ><title>(.*?)</title>', chunk)
    if not m:
        continue
    # Up to the next series: what follows the last one of a panel (axes,
    # border, the next panel's tics) has neither point marks nor bars.
    body = chunk
    pts = body.count("xlink:href='#gpPt")
    boxes = body.count("<polygon")
    title = m.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    p, b = count.get(title, (0, 0))
    count[title] = (p + max(pts - 1, 0), b + max(boxes - 1, 0))
for title in sorted(count):
    print("%s\t%d\t%d" % ((title,) + count[title]))

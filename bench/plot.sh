#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Plots of the benchmark tables, as SVG (make bench runs it last;
# Documentation/benchmarks.md shows them): QEMU native against lmig
# (bench/qemu.sh), live migration against the dirty rate (bench/live.sh),
# QEMU convergence (bench/converge.sh), each from the newest such table
# of the Markdown, and the per-round throttle timeline from the reports
# bench/throttle.sh keeps (THR_JSON).  The reading and drawing are
# bench/plot_tables.py's; gnuplot draws.  A table or report that is not
# there is skipped with a note: the exit status is 0 unless gnuplot
# failed (or, 2, the options are wrong).  The throttle reports are copied
# beside the plots (throttle-rounds.json), the data of throttle-rounds.svg.
#
# Usage: plot.sh [--in FILE.md] [--out DIR] [--throttle-json FILE]
#   defaults: bench/results-latest.md, Documentation/plots,
#   bench/throttle-latest.json
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
in=$here/results-latest.md
out=$top/Documentation/plots
thr=$here/throttle-latest.json

while [ $# -gt 0 ]; do
	case $1 in
	--in | --out | --throttle-json)
		[ $# -ge 2 ] || { echo "plot: $1 needs a value" >&2; exit 2; }
		case $1 in --in) in=$2 ;; --out) out=$2 ;; *) thr=$2 ;; esac
		shift 2
		;;
	*) echo "plot: unknown argument '$1' (usage: plot.sh [--in FILE.md] [--out DIR] [--throttle-json FILE])" >&2; exit 2 ;;
	esac
done

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "plot: gnuplot not found (sh scripts/install-deps.sh bench installs gnuplot-nox): no plots drawn" >&2
	exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "plot: python3 not found: no plots drawn" >&2; exit 0; }

mkdir -p "$out"
python3 "$here/plot_tables.py" --in "$in" --out "$out" --throttle-json "$thr"
if [ -r "$thr" ] && [ -f "$out/throttle-rounds.svg" ] &&
	[ "$(cd "$(dirname "$thr")" && pwd)/$(basename "$thr")" != "$(cd "$out" && pwd)/throttle-rounds.json" ]; then
	cp "$thr" "$out/throttle-rounds.json"
fi

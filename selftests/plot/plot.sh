#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# bench/plot.sh as a test (make check): on a small fixed run of make bench
# (tables.md: the tables of qemu.sh, live.sh and converge.sh as they print
# them, an older QEMU table that must not be drawn, FAIL rows that must be
# left out; throttle.json: throttle.sh's per-round reports) it must draw
# each SVG with the series named in the tables and exactly one mark a
# number (svgseries.py counts them), the run's date in the title and the
# units on the axes; a table or report that is absent must be skipped
# with a note and exit status 0; a wrong option must exit 2.  Prints TAP
# and the kselftest "# Totals:" line.  About 2 s.
#
# Usage: plot.sh
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-plot.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
. "$repo/selftests/lib/tap.sh"

totals() {	# totals [SKIPPED]: the totals line, and exit
	skip=${1:-$skip}
	tap_totals
	exit
}

echo "TAP version 13"
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "ok 1 # SKIP gnuplot not found (sh scripts/install-deps.sh bench installs gnuplot-nox)"
	totals 1
fi

plot() {	# plot OUTDIR ARGS...: runs bench/plot.sh, status in $rc, stderr in OUTDIR.err
	o=$1
	shift
	rc=0
	sh "$repo/bench/plot.sh" --out "$o" "$@" >"$o.out" 2>"$o.err" || rc=$?
}

# The series of an SVG against what is expected: "TITLE<TAB>POINTS<TAB>BARS".
check_series() {	# check_series SVG DESCRIPTION EXPECTED
	got=$(python3 "$here/svgseries.py" "$1" 2>&1)
	if [ "$got" = "$3" ]; then
		result OK "$2"
	else
		result FAIL "$2" "expected:" "$3" "got:" "$got"
	fi
}

# 1. The whole fixture.
plot "$tmp/all" --in "$here/tables.md" --throttle-json "$here/throttle.json"
svgs=$(cd "$tmp/all" 2>/dev/null && ls *.svg 2>/dev/null | tr '\n' ' ')
if [ "$rc" = 0 ] && [ "$svgs" = "converge.svg live-dirty-rate.svg qemu-transport.svg throttle-rounds.svg " ] &&
	! grep -q skipped "$tmp/all.err"; then
	result OK "fixture: exit 0, four SVGs, nothing skipped"
else
	result FAIL "fixture: exit 0, four SVGs, nothing skipped" "exit $rc, SVGs: $svgs" "$(cat "$tmp/all.err")"
fi

T=$(printf '\t')
# Two paths by two panels; the FAIL row is left out; the older table's transport is not drawn.
check_series "$tmp/all/qemu-transport.svg" "qemu-transport.svg: a bar per number, newest table only" \
"lmig pipe (exec:)${T}0${T}2
native tcp${T}0${T}4"
# Downtime of the runs that converged, total time of all, a ring on each that did not.
check_series "$tmp/all/live-dirty-rate.svg" "live-dirty-rate.svg: a point per number, the unconverged marked" \
"did not converge (time to give up)${T}2${T}0
scan, budget 50 ms${T}2${T}0
uffd, budget 50 ms${T}6${T}0"
# Finished: total time; cancelled: least left dirty; both: the computing vCPU.  FAIL: nothing.
check_series "$tmp/all/converge.svg" "converge.svg: a point per number, FAIL left out" \
"lmig proxy send --qmp${T}2${T}0
native precopy${T}4${T}0"
# Rounds after the first (dirty rate), predictions above 0, limits above 0, CPU used above 0.
check_series "$tmp/all/throttle-rounds.svg" "throttle-rounds.svg: a point per round and number" \
"--throttle auto${T}6${T}0
--throttle off (did not converge)${T}4${T}0
auto: CPU limit (rounds with a limit)${T}2${T}0
auto: CPU used by the threads it would limit (cpu_used_pct)${T}3${T}0
off: CPU used by the threads it would limit (cpu_used_pct)${T}2${T}0"

# 2. Each plot says which run it shows and in which units.
why=""
for want in "qemu-transport.svg:2026-02-03 04:05 UTC" "qemu-transport.svg:total time (s)" \
	"qemu-transport.svg:downtime (ms)" "live-dirty-rate.svg:2026-02-03 04:10 UTC" \
	"live-dirty-rate.svg:dirty rate written (MB/s)" "converge.svg:2026-02-03 05:00 UTC" \
	"converge.svg:dirty rate (MB/s)" "throttle-rounds.svg:2026-02-03 04:20 UTC" \
	"throttle-rounds.svg:time since lmig send started (s)" "throttle-rounds.svg:CPU (% of one CPU)"; do
	f=${want%%:*} s=${want#*:}
	grep -qF "$s" "$tmp/all/$f" 2>/dev/null || why="$why $f has no '$s';"
done
[ -z "$why" ] && result OK "the run's date and the axes' units in every plot" ||
	result FAIL "the run's date and the axes' units in every plot" "$why"

if cmp -s "$here/throttle.json" "$tmp/all/throttle-rounds.json"; then
	result OK "the throttle reports are kept beside their plot"
else
	result FAIL "the throttle reports are kept beside their plot" "throttle-rounds.json differs or is missing"
fi

# 3. Absent tables and report: skipped with a note, exit 0.
sed -n '/^#### Live migration/,/^### QEMU convergence/{/^### QEMU/!p}' "$here/tables.md" >"$tmp/live-only.md"
plot "$tmp/some" --in "$tmp/live-only.md" --throttle-json "$tmp/none.json"
svgs=$(cd "$tmp/some" 2>/dev/null && ls *.svg 2>/dev/null | tr '\n' ' ')
notes=$(grep -c 'skipped' "$tmp/some.err")
if [ "$rc" = 0 ] && [ "$svgs" = "live-dirty-rate.svg " ] && [ "$notes" = 3 ] &&
	grep -q 'no QEMU transport table' "$tmp/some.err" && grep -q 'no QEMU convergence table' "$tmp/some.err" &&
	grep -q 'no throttle report' "$tmp/some.err"; then
	result OK "absent tables and report: three notes, the one table drawn, exit 0"
else
	result FAIL "absent tables and report: three notes, the one table drawn, exit 0" \
		"exit $rc, SVGs: $svgs" "$(cat "$tmp/some.err")"
fi

plot "$tmp/none" --in "$tmp/missing.md" --throttle-json "$tmp/none.json"
svgs=$(cd "$tmp/none" 2>/dev/null && ls *.svg 2>/dev/null | tr '\n' ' ')
if [ "$rc" = 0 ] && [ -z "$svgs" ] && grep -q 'missing.md does not exist' "$tmp/none.err"; then
	result OK "no results file: a note, no plot, exit 0"
else
	result FAIL "no results file: a note, no plot, exit 0" "exit $rc, SVGs: $svgs" "$(cat "$tmp/none.err")"
fi

# 4. A wrong option: one line naming it, exit 2.
rc=0
sh "$repo/bench/plot.sh" --bogus >/dev/null 2>"$tmp/bad.err" || rc=$?
if [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/bad.err")" = 1 ] && grep -q -- "--bogus" "$tmp/bad.err"; then
	result OK "a wrong option: one line naming it, exit 2"
else
	result FAIL "a wrong option: one line naming it, exit 2" "exit $rc" "$(cat "$tmp/bad.err")"
fi

echo "1..$n"
totals

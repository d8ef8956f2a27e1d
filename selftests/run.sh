#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Run kselftest_harness test programs, show their TAP output, and sum the
# "# Totals:" line each prints into the last line of output:
#
#   N passed, M failed
#
# A program that prints no totals (it crashed or hung), or that exits
# non-zero without counting a failure, adds one failed test: a broken test
# program must never read as a clean run.  Exits 1 if anything failed.
#
# Usage: run.sh TEST...
set -u

passed=0
failed=0
skipped=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-run.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# kselftest.h: "# Totals: pass:%d fail:%d xfail:%d xpass:%d skip:%d error:%d"
n='\([0-9]*\)'
counts="pass:$n fail:$n xfail:$n xpass:$n skip:$n error:$n"

# The harness limits each test to 30 s; this only catches a stuck harness.
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout -k 10 900"

# Copy stdin to stdout; after each "ok"/"not ok" line, a "# took N s"
# line with the seconds since the previous one (or the start).
stamp() {
	last=$(date +%s.%N)
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		"ok "* | "not ok "*)
			now=$(date +%s.%N)
			echo "$now $last" | awk '{ printf "# took %.1f s\n", $1 - $2 }'
			last=$now
			;;
		esac
	done
}

for t in "$@"; do
	name=${t##*/}
	if [ ! -x "$t" ]; then
		echo "# $name: not built"
		failed=$((failed + 1))
		continue
	fi
	echo "# ---- $name"
	# Stream the output as it comes, keeping a copy and the exit status.
	# Each test's result line is followed by how long the test took, so
	# a test creeping toward its harness limit shows before it fails.
	{ $limit "$t" 2>&1; echo $? >"$tmp/rc"; } | stamp | tee "$tmp/log"
	rc=$(cat "$tmp/rc")
	totals=$(sed -n "s/^# Totals: $counts.*/\\1 \\2 \\3 \\4 \\5 \\6/p" "$tmp/log" | tail -n 1)
	if [ -z "$totals" ]; then
		echo "# $name: no totals (exit status $rc): counted as one failure"
		failed=$((failed + 1))
		continue
	fi
	read -r pass fail xfail xpass skip error <<-EOF
	$totals
	EOF
	bad=$((fail + error + xpass))
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "# $name: exit status $rc with no failed test: counted as one failure"
		bad=1
	fi
	passed=$((passed + pass + xfail))
	failed=$((failed + bad))
	skipped=$((skipped + skip))
done

[ "$skipped" -gt 0 ] && echo "# $skipped skipped (see SKIP lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

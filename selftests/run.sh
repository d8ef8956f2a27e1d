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
# A test named with a leading "+" (+../fuzz/check.sh) runs in the
# background beside the test named after it, on the other CPU: only for
# pairs where neither test measures time nor needs more than one CPU (a
# VM's single TCG thread, one fuzzer at a time).  Its output is kept and
# shown whole, after that test's, once both have finished; it is counted
# the same way.
#
# Usage: run.sh [+]TEST...
set -u

passed=0
failed=0
skipped=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-run.XXXXXX") || exit 1
bgpid=""
# A test left running beside another is stopped with the run (its
# timeout passes the signal on to it).
trap '[ -z "$bgpid" ] || kill "$(cat "$tmp/bg.pid" 2>/dev/null)" "$bgpid" 2>/dev/null
	rm -rf "$tmp"' EXIT
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

# count NAME LOG RC: add the "# Totals:" of LOG (RC: the exit status) to the sums.
count() {
	totals=$(sed -n "s/^# Totals: $counts.*/\\1 \\2 \\3 \\4 \\5 \\6/p" "$2" | tail -n 1)
	if [ -z "$totals" ]; then
		echo "# $1: no totals (exit status $3): counted as one failure"
		failed=$((failed + 1))
		return
	fi
	read -r pass fail xfail xpass skip error <<-EOF
	$totals
	EOF
	bad=$((fail + error + xpass))
	if [ "$3" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "# $1: exit status $3 with no failed test: counted as one failure"
		bad=1
	fi
	passed=$((passed + pass + xfail))
	failed=$((failed + bad))
	skipped=$((skipped + skip))
}

bg=""
for t in "$@"; do
	case $t in
	+*)
		bg=${t#+}
		continue
		;;
	esac
	name=${t##*/}
	if [ -n "$bg" ]; then
		bgname=${bg##*/}
		if [ -x "$bg" ]; then
			# Stamped as it runs, so its "# took" lines are its own.
			{
				{ $limit "$bg" 2>&1 & echo $! >"$tmp/bg.pid"; wait $!; echo $? >"$tmp/bg.rc"; } |
					stamp >"$tmp/bg.log"
			} &
			bgpid=$!
		else
			echo "# $bgname: not built"
			failed=$((failed + 1))
			bg=""
		fi
	fi
	if [ ! -x "$t" ]; then
		echo "# $name: not built"
		failed=$((failed + 1))
	else
		echo "# ---- $name"
		# Stream the output as it comes, keeping a copy and the exit status.
		# Each test's result line is followed by how long the test took, so
		# a test creeping toward its harness limit shows before it fails.
		{ $limit "$t" 2>&1; echo $? >"$tmp/rc"; } | stamp | tee "$tmp/log"
		count "$name" "$tmp/log" "$(cat "$tmp/rc")"
	fi
	if [ -n "$bg" ]; then
		wait "$bgpid"
		bgpid=""
		echo "# ---- $bgname (ran beside $name)"
		cat "$tmp/bg.log"
		count "$bgname" "$tmp/bg.log" "$(cat "$tmp/bg.rc" 2>/dev/null || echo 1)"
		bg=""
	fi
done
if [ -n "$bg" ]; then
	echo "# ${bg##*/}: named to run beside a test, but no test follows it"
	failed=$((failed + 1))
fi

[ "$skipped" -gt 0 ] && echo "# $skipped skipped (see SKIP lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

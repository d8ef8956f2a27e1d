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
# background beside the next test named without one; several "+" tests
# run side by side.  Only for tests that measure no time, leave CPU to
# spare (a VM's single TCG thread, one fuzzer at a time mostly waiting on
# its sockets) and change nothing the other reads.  Each one's output is kept and
# shown whole, after that test's, once all of them have finished; each is
# counted the same way.
#
# Usage: run.sh [+]TEST...
set -u

passed=0
failed=0
skipped=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-run.XXXXXX") || exit 1
bg=""
# Tests left running beside another are stopped with the run (their
# timeout passes the signal on).
trap '[ -z "$bg" ] || kill $(cat "$tmp"/bg*.pid 2>/dev/null) 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# kselftest.h: "# Totals: pass:%d fail:%d xfail:%d xpass:%d skip:%d error:%d"
n='\([0-9]*\)'
counts="pass:$n fail:$n xfail:$n xpass:$n skip:$n error:$n"

# The harness limits each test to 30 s; this only catches a stuck harness
# (test_qemu_kvm_vm may boot its VM twice, up to 520 s each).
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout -k 10 1200"

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

nbg=0
for t in "$@"; do
	case $t in
	+*)
		t=${t#+}
		nbg=$((nbg + 1))
		if [ -x "$t" ]; then
			# Stamped as it runs, so its "# took" lines are its own.
			{
				{ $limit "$t" 2>&1 & echo $! >"$tmp/bg$nbg.pid"; wait $!; echo $? >"$tmp/bg$nbg.rc"; } |
					stamp >"$tmp/bg$nbg.log"
			} &
			bg="$bg $nbg:$!:$t"
		else
			echo "# ${t##*/}: not built"
			failed=$((failed + 1))
		fi
		continue
		;;
	esac
	name=${t##*/}
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
	for b in $bg; do
		i=${b%%:*}
		b=${b#*:}
		wait "${b%%:*}"
		b=${b#*:}
		echo "# ---- ${b##*/} (ran beside $name)"
		cat "$tmp/bg$i.log"
		count "${b##*/}" "$tmp/bg$i.log" "$(cat "$tmp/bg$i.rc" 2>/dev/null || echo 1)"
	done
	bg=""
done
if [ -n "$bg" ]; then
	echo "# run.sh: no test after the one(s) named to run beside it"
	failed=$((failed + 1))
fi

[ "$skipped" -gt 0 ] && echo "# $skipped skipped (see SKIP lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

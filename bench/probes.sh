#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What the eBPF probes cost: two microbenchmarks (bench/probes_bench.c), a
# page-fault-heavy one and a context-switch-heavy one, each run without
# probes and with them attached, alternating in the same run, and printed
# as a Markdown table of median times and ratios.  The probes run in the
# context of the task that faults or switches, so their cost shows in the
# benchmark's CPU time; the ratio is taken on it, because elapsed time on a
# shared or virtualised machine also carries everyone else's load (both
# are printed).  The benchmark runs in a session of its own at nice -20
# (its autogroup too), so other load on the machine disturbs it less.
#
# With kernel.bpf_stats_enabled on during the runs, the kernel also times
# each probe: "probe ns/event" is the mean run time of the probe the
# benchmark triggers (on_fault, on_switch), and "probe share" that times
# the benchmark's events over its CPU time without probes: the cost
# itself, free of the noise between runs.
#
#   off    no probes
#   pid    lmig stat --pid on the benchmark itself (every event counted)
#   other  lmig stat --pid on another process (the benchmark is unrelated
#          load: what pid filtering leaves of the cost)
#   all    lmig top (no filter: every process counted)
#
# Knobs (environment): PROBES_STATS (default 1; 0 leaves the kernel's BPF
# statistics off: no ns/event column, and no timing cost added to each
# probe run), PROBES_KINDS ("faults switch"), PROBES_MODES ("off pid other
# all"; off must stay first), PROBES_REPS (default 5), FAULT_ROUNDS (default 12,
# 4096 faults each), SWITCH_ROUNDS (default 60000), LMIG (default
# user/lmig).  Needs root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
LMIG=${LMIG:-$here/../user/lmig}
REPS=${PROBES_REPS:-5}
STATS=${PROBES_STATS:-1}
KINDS=${PROBES_KINDS:-faults switch}
MODES=${PROBES_MODES:-off pid other all}
FAULT_ROUNDS=${FAULT_ROUNDS:-12}
SWITCH_ROUNDS=${SWITCH_ROUNDS:-60000}

work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-probes.XXXXXX")
watcher=""
idle=""
stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
cleanup() {
	[ -n "$watcher" ] && kill "$watcher" 2>/dev/null && wait "$watcher" 2>/dev/null
	[ -n "$idle" ] && kill "$idle" 2>/dev/null && wait "$idle" 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$stats_was" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

${CC:-cc} -O2 -Wall -o "$work/probes_bench" "$here/probes_bench.c"
if ! "$LMIG" stat --pid $$ --count 1 --interval 10 >/dev/null 2>"$work/err"; then
	echo "bench/probes: probes unavailable: $(cat "$work/err")" >&2
	exit 1
fi
sleep 3600 &
idle=$!
sysctl -qw kernel.bpf_stats_enabled="$STATS" || echo "bench/probes: no kernel.bpf_stats_enabled" >&2

# The mean run time in ns of the loaded probe program NAME, or 0.
prog_ns() {
	bpftool -j prog show 2>/dev/null | jq -r --arg n "$1" '[.[] | select(.name == $n and
		(.run_cnt // 0) > 0)] | if length == 0 then 0 else
		(map(.run_time_ns) | add) / (map(.run_cnt) | add) end'
}

# run KIND ROUNDS MODE: one timed run: "WALL CPU NS" on stdout (seconds,
# and the probe's mean ns per event, 0 without probes).
run() {
	mkfifo "$work/go"
	setsid sh -c 'echo -20 >/proc/self/autogroup; exec nice -n -20 "$0" "$@"' \
		"$work/probes_bench" "$1" "$2" <"$work/go" >"$work/t" 2>/dev/null &
	bench=$!
	exec 4>"$work/go"
	case $3 in
	pid | other)
		[ "$3" = pid ] && target=$bench || target=$idle
		rm -f "$work/ready"
		"$LMIG" stat --pid "$target" --interval 3600000 --ready-fd 3 3>"$work/ready" \
			>/dev/null 2>&1 &
		watcher=$!
		n=0
		while [ ! -s "$work/ready" ]; do
			n=$((n + 1))
			[ $n -lt 100 ] || { echo "bench/probes: lmig stat did not start" >&2; exit 1; }
			sleep 0.1
		done
		;;
	all)
		"$LMIG" top --interval 3600000 >/dev/null 2>&1 &
		watcher=$!
		sleep 1
		;;
	esac
	echo go >&4
	exec 4>&-
	wait "$bench"
	ns=0
	[ "$1" = faults ] && prog=on_fault || prog=on_switch
	[ -n "$watcher" ] && ns=$(prog_ns $prog)
	if [ -n "$watcher" ]; then
		kill -INT "$watcher"
		wait "$watcher" || true
		watcher=""
	fi
	rm -f "$work/go"
	echo "$(cat "$work/t") $ns"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "### eBPF probe overhead ($(uname -r), $(nproc) CPUs, median of $REPS runs, BPF statistics $([ "$STATS" = 1 ] && echo on || echo off))"
echo
echo "| benchmark | probes | elapsed | CPU time | CPU time ratio | probe ns/event | probe share |"
echo "|---|---|---|---|---|---|---|"
for kind in $KINDS; do
	[ $kind = faults ] && rounds=$FAULT_ROUNDS || rounds=$SWITCH_ROUNDS
	for mode in $MODES; do
		: >"$work/$mode"
	done
	r=0
	while [ $r -lt "$REPS" ]; do
		for mode in $MODES; do
			run $kind "$rounds" $mode >>"$work/$mode"
		done
		r=$((r + 1))
	done
	case $kind in
	faults) label="page faults ($((rounds * 4096)) write faults)"; events=$((rounds * 4096)) ;;
	*) label="context switches ($rounds pipe round trips on one CPU)"; events=$((rounds * 2)) ;;
	esac
	base=$(cut -d' ' -f2 "$work/off" | median)
	for mode in $MODES; do
		case $mode in
		off) what="none" ;;
		pid) what="lmig stat --pid on it" ;;
		other) what="lmig stat --pid on another process" ;;
		all) what="lmig top (every process)" ;;
		esac
		wall=$(cut -d' ' -f1 "$work/$mode" | median)
		cpu=$(cut -d' ' -f2 "$work/$mode" | median)
		ns=$(cut -d' ' -f3 "$work/$mode" | median)
		awk -v l="$label" -v m="$what" -v w="$wall" -v c="$cpu" -v b="$base" -v ns="$ns" \
			-v ev="$events" 'BEGIN {
			if (ns > 0)
				p = sprintf("%.0f | %.2f %%", ns, 100 * ns * ev / 1e9 / b)
			else
				p = "– | –"
			printf "| %s | %s | %.3f s | %.3f s | %.3f | %s |\n", l, m, w, c, c / b, p }'
		label=""
	done
done

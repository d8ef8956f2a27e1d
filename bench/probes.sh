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
# benchmark triggers (the watcher's program on page_fault_user or
# sched_switch, found from its link in the watcher's fdinfo, whatever its
# name), and "probe share" that times the benchmark's events over its CPU
# time without probes: the cost itself, free of the noise between runs.
#
# The kinds: faults (one thread), threads (one faulting thread per CPU in
# one process: the probes of every CPU count into that process's entry),
# switch.
#
#   off    no probes
#   pid    lmig stat --pid on the benchmark itself (every event counted)
#   other  lmig stat --pid on another process (the benchmark is unrelated
#          load: what pid filtering leaves of the cost)
#   all    lmig top (no filter: every process counted)
#   all-ns lmig top in a pid namespace of its own (unshare): every event
#          of the benchmark, outside that namespace, pays for looking up
#          its pid there and is then left out: the cost to a host's other
#          processes of lmig running in a container
#   pid-base, all-base   the same with the lmig binary $LMIG_BASE (another
#          build, e.g. the previous probes), alternating in the same run
#
# Knobs (environment): PROBES_STATS (default 1; 0 leaves the kernel's BPF
# statistics off: no ns/event column, and no timing cost added to each
# probe run), PROBES_KINDS ("faults threads switch"), PROBES_MODES ("off
# pid other all", with LMIG_BASE "off pid pid-base all all-base"; off must
# stay first), PROBES_REPS (default 5), FAULT_ROUNDS (default 12,
# 4096 faults each), SWITCH_ROUNDS (default 60000), LMIG (default
# user/lmig).  Needs root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
LMIG=${LMIG:-$here/../user/lmig}
REPS=${PROBES_REPS:-5}
STATS=${PROBES_STATS:-1}
KINDS=${PROBES_KINDS:-faults threads switch}
if [ -n "${LMIG_BASE:-}" ]; then
	MODES=${PROBES_MODES:-off pid pid-base all all-base}
else
	MODES=${PROBES_MODES:-off pid other all}
fi
FAULT_ROUNDS=${FAULT_ROUNDS:-12}
SWITCH_ROUNDS=${SWITCH_ROUNDS:-60000}

work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-probes.XXXXXX")
watcher=""
idle=""
stats_was=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
cleanup() {
	# wait reports the killed process's status: not this script's (set -e).
	[ -z "$watcher" ] || { kill "$watcher" 2>/dev/null && wait "$watcher" 2>/dev/null; } || true
	[ -z "$idle" ] || { kill "$idle" 2>/dev/null && wait "$idle" 2>/dev/null; } || true
	sysctl -qw kernel.bpf_stats_enabled="$stats_was" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

${CC:-cc} -O2 -Wall -pthread -o "$work/probes_bench" "$here/probes_bench.c"
if ! "$LMIG" stat --pid $$ --count 1 --interval 10 >/dev/null 2>"$work/err"; then
	echo "bench/probes: probes unavailable: $(cat "$work/err")" >&2
	exit 1
fi
sleep 3600 &
idle=$!
sysctl -qw kernel.bpf_stats_enabled="$STATS" || echo "bench/probes: no kernel.bpf_stats_enabled" >&2

# The mean run time in ns of the program process PID attached to
# tracepoint TP, or 0.
prog_ns() { # PID TP
	# unshare --fork: lmig is the watcher's child.
	pids="$1 $(cat /proc/"$1"/task/*/children 2>/dev/null)"
	id=$(for p in $pids; do grep -l "^tp_name:[[:space:]]*$2\$" /proc/"$p"/fdinfo/* 2>/dev/null || true; done |
		head -n 1 |
		xargs -r sed -n 's/^prog_id:[[:space:]]*//p')
	[ -n "$id" ] || { echo 0; return; }
	bpftool -j prog show id "$id" 2>/dev/null | jq -r 'if (.run_cnt // 0) == 0 then 0 else
		.run_time_ns / .run_cnt end'
}

# run KIND ROUNDS MODE: one timed run: "WALL CPU NS" on stdout (seconds,
# and the probe's mean ns per event, 0 without probes).
run() {
	mkfifo "$work/go"
	setsid sh -c 'echo -20 >/proc/self/autogroup; exec nice -n -20 "$0" "$@"' \
		"$work/probes_bench" "$1" "$2" <"$work/go" >"$work/t" 2>/dev/null &
	bench=$!
	exec 4>"$work/go"
	lmig=$LMIG
	case $3 in
	*-base) lmig=$LMIG_BASE ;;
	esac
	case $3 in
	pid | pid-base | other)
		[ "$3" = other ] && target=$idle || target=$bench
		rm -f "$work/ready"
		"$lmig" stat --pid "$target" --interval 3600000 --ready-fd 3 3>"$work/ready" \
			>/dev/null 2>&1 &
		watcher=$!
		bench_wait_file "$work/ready" 100 "bench/probes: lmig stat"
		;;
	all | all-base)
		"$lmig" top --interval 3600000 >/dev/null 2>&1 &
		watcher=$!
		sleep 1
		;;
	all-ns)
		unshare --pid --fork "$lmig" top --interval 3600000 >/dev/null 2>&1 &
		watcher=$!
		sleep 1
		;;
	esac
	echo go >&4
	exec 4>&-
	wait "$bench"
	ns=0
	[ "$1" = switch ] && tp=sched_switch || tp=page_fault_user
	[ -n "$watcher" ] && ns=$(prog_ns "$watcher" $tp)
	if [ -n "$watcher" ]; then
		# all-ns: lmig is unshare's child, and unshare passes no signal on.
		kill -INT $(cat /proc/"$watcher"/task/*/children 2>/dev/null) "$watcher" 2>/dev/null
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
	[ $kind = switch ] && rounds=$SWITCH_ROUNDS || rounds=$FAULT_ROUNDS
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
	threads)
		events=$((rounds * 4096 * $(nproc)))
		label="page faults in $(nproc) threads ($events write faults)" ;;
	*) label="context switches ($rounds pipe round trips on one CPU)"; events=$((rounds * 2)) ;;
	esac
	base=$(cut -d' ' -f2 "$work/off" | median)
	for mode in $MODES; do
		case $mode in
		off) what="none" ;;
		pid) what="lmig stat --pid on it" ;;
		other) what="lmig stat --pid on another process" ;;
		all) what="lmig top (every process)" ;;
		pid-base) what="lmig stat --pid on it, LMIG_BASE" ;;
		all-base) what="lmig top, LMIG_BASE" ;;
		all-ns) what="lmig top in another pid namespace" ;;
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

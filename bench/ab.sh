#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Two lmig builds side by side in one run: the transport (bench/run.sh),
# live (bench/live.sh) and QEMU (bench/qemu.sh) benchmarks, each run with
# build A and with build B in turn, the order swapped every repetition so
# that a change of the machine's load during the run weighs on both.
# Prints, per benchmark, the table of the last repetition with every
# number replaced by "median A / median B (B÷A)" over the repetitions
# (bench/ab_table.py).  Needs root (the namespaces), like make bench.
#
# Usage: sh bench/ab.sh A_LMIG B_LMIG
#
# Knobs (environment):
#   AB_BENCHES   which benchmarks, in run order (default "transport live qemu")
#   AB_REPS      repetitions, each running A and B once (default 3)
#   AB_KEEP      a directory for every run's table (default: a temporary one)
# Each benchmark runs with a smaller default set than make bench's so that
# a repetition takes minutes, not a quarter of an hour; its own knobs
# (BENCH_*, LIVE_*, QEMU_*) are passed through and override these:
#   transport    BENCH_PATHS="loopback netns" BENCH_IMAGES=binary REPS=1 NET_REPS=1
#   live         LIVE_TRACKERS=uffd LIVE_BUDGETS=300
#   qemu         QEMU_CASES="pipe proxy" QEMU_PATHS=netns
#
# Exit status: 1 if a benchmark run failed (its own exit status), else 0;
# like the benchmarks it reports and does not judge.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "ab.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: sh bench/ab.sh A_LMIG B_LMIG"
a=$1
b=$2
for bin in "$a" "$b"; do
	[ -x "$bin" ] || die "$bin: not an executable"
done
case ${AB_REPS:-3} in
''|*[!0-9]*|0) die "AB_REPS: '${AB_REPS:-}' is not a positive whole number" ;;
esac
reps=${AB_REPS:-3}
benches=${AB_BENCHES:-transport live qemu}
for bn in $benches; do
	case $bn in
	transport|live|qemu) ;;
	*) die "AB_BENCHES: unknown benchmark '$bn' (transport, live, qemu)" ;;
	esac
done

if [ -n "${AB_KEEP:-}" ]; then
	keep=$AB_KEEP
	mkdir -p "$keep"
else
	keep=$(mktemp -d "${TMPDIR:-/tmp}/lmig-ab.XXXXXX")
	trap 'rm -rf "$keep"' EXIT
fi

# One run of benchmark $1 with binary $2; its table goes to $3.
run_one() {
	case $1 in
	transport)
		LMIG=$2 BENCH_PATHS=${BENCH_PATHS:-loopback netns} \
		BENCH_IMAGES=${BENCH_IMAGES:-binary} REPS=${REPS:-1} \
		NET_REPS=${NET_REPS:-1} sh "$here/run.sh" >"$3" ;;
	live)
		LMIG=$2 LIVE_TRACKERS=${LIVE_TRACKERS:-uffd} \
		LIVE_BUDGETS=${LIVE_BUDGETS:-300} sh "$here/live.sh" >"$3" ;;
	qemu)
		LMIG=$2 QEMU_CASES=${QEMU_CASES:-pipe proxy} \
		QEMU_PATHS=${QEMU_PATHS:-netns} sh "$here/qemu.sh" >"$3" ;;
	esac
}

status=0
start=$(date -u +%H:%M)
for bn in $benches; do
	r=1
	while [ "$r" -le "$reps" ]; do
		# A first on odd repetitions, B first on even ones.
		if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
		for side in $order; do
			if [ "$side" = A ]; then bin=$a; else bin=$b; fi
			echo "ab.sh: $bn, repetition $r of $reps, build $side" >&2
			run_one "$bn" "$bin" "$keep/$bn.$side.$r.md" || {
				echo "ab.sh: $bn with build $side ($bin) failed" >&2
				status=1
			}
		done
		r=$((r + 1))
	done
done

echo "## Build A against build B, $start–$(date -u +%H:%M) UTC, $reps repetitions"
echo
echo "A: $a"
echo "B: $b"
echo
for bn in $benches; do
	echo "### $bn"
	echo
	python3 "$here/ab_table.py" "$keep/$bn.A".*.md -- "$keep/$bn.B".*.md || status=1
	echo
done
exit $status

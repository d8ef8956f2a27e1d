#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What the mapping watch (bpf/mapwatch.bpf.c) costs, side by side in one run:
#
#  1. uffd harvests of a writer whose mappings stay put (`lmig dirty
#     --uffd`, a memfd), by this lmig (watch loaded) and by LMIG_BASE, an
#     lmig built without the watch (e.g. the commit before it), alternated;
#  2. system calls of another process while no watch / a watch is attached
#     (bench/syscall_cost.c: getppid, mmap + munmap);
#  3. the short-lived-mapping writer of selftests/test_nolost.c (8 MiB,
#     32-page mappings made and removed every 5 ms) harvested by uffd with
#     the watch (each harvest after a change compares all pages) and by scan.
#
# Knobs: LMIG (default user/lmig), LMIG_BASE (required for part 1; skipped
# without it), MW_SIZE (256Mi), MW_REPEAT (3).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
LMIG=${LMIG:-$here/../user/lmig}
LMIG_BASE=${LMIG_BASE:-}
MW_SIZE=${MW_SIZE:-256Mi}
MW_REPEAT=${MW_REPEAT:-3}
nolost=$here/../selftests/build/test_nolost

work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-mapwatch.XXXXXX")
dpid=""
hold=""
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	[ -n "$hold" ] && kill "$hold" 2>/dev/null && wait "$hold" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

${CC:-cc} -O2 -Wall -o "$work/syscall_cost" "$here/syscall_cost.c"

"$LMIG" dirty --mem memfd:lmig-mapwatch-bench --size "$MW_SIZE" --rate 8M --uffd --ready-fd 3 \
	--json --no-progress 3>"$work/ready" >"$work/dirty.json" &
dpid=$!
bench_wait_file "$work/ready" 600 "lmig dirty"
mem=$(cat "$work/ready")

harvest_ms() {
	"$1" dirtyrate --pid "$dpid" --mem "$mem" --tracker uffd --object-writes mapped \
		--interval 200 --count 10 --json | sed -n 's/.*"harvest_ms":\([0-9.]*\).*/\1/p'
}

echo "| what | harvest ms (runs) |"
echo "|---|---|"
if [ -n "$LMIG_BASE" ]; then
	w=""
	b=""
	i=0
	while [ $i -lt "$MW_REPEAT" ]; do
		w="$w $(harvest_ms "$LMIG")"
		b="$b $(harvest_ms "$LMIG_BASE")"
		i=$((i + 1))
	done
	echo "| uffd, $MW_SIZE memfd, steady mappings, with the watch |$w |"
	echo "| the same without the watch (LMIG_BASE) |$b |"
fi

echo
echo "| system calls of another process | getppid ns | mmap+munmap ns |"
echo "|---|---|---|"
i=0
while [ $i -lt "$MW_REPEAT" ]; do
	set -- $("$work/syscall_cost" 2000000)
	echo "| no watch attached | $2 | $4 |"
	"$LMIG" dirtyrate --pid "$dpid" --mem "$mem" --tracker uffd --object-writes mapped \
		--interval 3000 --count 1 --json >/dev/null &
	hold=$!
	sleep 0.7
	set -- $("$work/syscall_cost" 2000000)
	echo "| a watch attached (of lmig dirty) | $2 | $4 |"
	wait "$hold"
	hold=""
	i=$((i + 1))
done

if [ -x "$nolost" ]; then
	echo
	echo "| short-lived mappings, 8 MiB | result |"
	echo "|---|---|"
	for t in uffd scan uffd scan; do
		echo "| $t | $("$nolost" --run "$t" shortlived) |"
	done
fi

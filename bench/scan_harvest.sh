#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What a harvest of the scan tracker costs (bench/scan_harvest.c), whole
# and in the final round's 8 MiB parts, on 1 GiB tmpfs files in /dev/shm:
# all data, and 600 MiB of data then holes (plus GUEST, a copy of a
# guest's RAM, if given).  With BEFORE=<another checkout of lmig> the same
# driver built against it runs alternately with this one, file by file,
# round by round, so both see the same machine.
#
# Knobs (environment): ROUNDS (default 3), RUNS (harvests a mode a round, 7),
# GUEST (a file copied, holes kept, beside the two), BEFORE.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-scanh.XXXXXX")
shm=$(mktemp -d /dev/shm/lmig-scanh.XXXXXX)
trap 'rm -rf "$work" "$shm"' EXIT
trap 'exit 130' INT TERM

bench_cc "$work/this" "$here/scan_harvest.c" ||
	{ echo "scan_harvest.sh: cannot build scan_harvest.c" >&2; exit 1; }
builds=this
if [ -n "${BEFORE:-}" ]; then
	# This driver over BEFORE's library: bench_cc builds against the
	# tree its source sits in.
	mkdir -p "$work/before/bench"
	cp "$here/scan_harvest.c" "$work/before/bench/"
	for d in user include bpf; do
		ln -s "$(cd "$BEFORE" && pwd)/$d" "$work/before/$d"
	done
	bench_cc "$work/before/run" "$work/before/bench/scan_harvest.c" ||
		{ echo "scan_harvest.sh: cannot build against $BEFORE" >&2; exit 1; }
	builds="before this"
fi

head -c 1G /dev/urandom >"$shm/all-data"
head -c 600M /dev/urandom >"$shm/600M-data"
truncate -s 1G "$shm/600M-data"
files="all-data 600M-data"
if [ -n "${GUEST:-}" ]; then
	cp --sparse=always "$GUEST" "$shm/guest"
	files="$files guest"
fi

echo "### scan harvest ($(uname -r), $(nproc) CPUs)"
echo
echo "| round | file | build | load | whole: ms (least) | GB/s | in parts: ms (least) | GB/s |"
echo "|--:|---|---|--:|--:|--:|--:|--:|"
for r in $(seq "${ROUNDS:-3}"); do
	for f in $files; do
		for b in $builds; do
			bin="$work/this"
			[ "$b" = before ] && bin="$work/before/run"
			load=$(cut -d' ' -f1 /proc/loadavg)
			"$bin" "$shm/$f" "${RUNS:-7}" | awk -v r="$r" -v f="$f" -v b="$b" -v l="$load" '
				{ ms[$1] = $6; least[$1] = $9; gbps[$1] = $11 }
				END { printf "| %s | %s | %s | %s | %s (%s) | %s | %s (%s) | %s |\n",
				      r, f, b, l, ms["whole"], least["whole"], gbps["whole"],
				      ms["parts"], least["parts"], gbps["parts"] }'
		done
	done
done

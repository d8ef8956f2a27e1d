#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What a harvest costs the live engine with lmig.ko (kmod), soft-dirty and
# scan, on a 1 GiB shared memfd of which 1 % or 50 % of the pages were
# written, with 4 KiB shmem folios and with 2 MiB ones (THP-backed shmem),
# all in one VM booting Debian's 6.1 kernel (the host may have neither the
# module nor soft-dirty).  Prints a Markdown table; Documentation/kmod.md
# ("Benchmark") explains it.  Timing under TCG is slow: read the ratios.
#
# Each harvest is tracker_harvest() as `lmig send` calls it, refinement of
# fully reported 2 MiB blocks included (bench/kmod_harvest.c): a child
# process maps the memfd and writes exactly the case's pages once between
# two harvests; the median of KMOD_REPS harvests is reported.
#
# Knobs (environment): KMOD_SIZE_MIB (1024), KMOD_REPS (3), KMOD_SERIES
# (6.1), KMOD_OBJECT_WRITES (any: `lmig send`'s default object check, which
# compares every unreported page once a write moved the object's
# timestamps; mapped: the tracker's report and refinement only, as with
# `--object-writes mapped`), VM_MEM (3072), VM_TIMEOUT (1800).
#
# Usage: kmod.sh    (the --vm form is what runs inside the VM)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
size=${KMOD_SIZE_MIB:-1024}
reps=${KMOD_REPS:-3}
objw=${KMOD_OBJECT_WRITES:-any}
case $objw in
any | mapped) ;;
*) echo "kmod.sh: KMOD_OBJECT_WRITES '$objw' is not any or mapped" >&2; exit 2 ;;
esac
trackers="kmod soft-dirty scan"
cases_4k="1 50"
cases_thp="1 1:64 1:512 50"

# Inside the VM: load the module, run both folio sizes, print raw lines.
if [ "${1:-}" = --vm ]; then
	ko=$2
	helper=$3
	objw=$4
	shmem=/sys/kernel/mm/transparent_hugepage/shmem_enabled
	insmod "$ko" || { echo "error insmod $ko failed"; exit 1; }
	for mode in never always; do
		echo "$mode" >"$shmem" || { echo "error cannot set $shmem"; exit 1; }
		echo "mode $mode"
		if [ "$mode" = never ]; then
			cases=$cases_4k
		else
			cases=$cases_thp
		fi
		# shellcheck disable=SC2086
		"$helper" --object-writes "$objw" "$size" "$reps" $trackers -- $cases &
		hpid=$!
		# The folios while the memfd exists (the writer fills it first).
		sleep 30
		echo "meminfo $(grep -E '^(Shmem|ShmemHugePages):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
		wait "$hpid" || echo "error kmod_harvest exited $?"
	done
	rmmod lmig
	exit 0
fi

work=$repo/selftests/build/bench-kmod
mkdir -p "$work"
series=${KMOD_SERIES:-6.1}
rc=0
built=$(sh "$repo/selftests/vm/kmod-build.sh" "$series" bench-kmod 2>"$work/build.err") || rc=$?
if [ "$rc" != 0 ]; then
	echo "#### lmig.ko harvest cost: not run ($(tail -n 1 "$work/build.err"))"
	echo ""
	[ "$rc" = 4 ] && exit 0
	exit 1
fi
set -- $built
kernel=$1
kver=$2
ko=$3
# soft-dirty on a shared object needs the mapping watch (eBPF): liblmig.a
# and libbpf (bench_cc).
bench_cc "$work/kmod_harvest" "$here/kmod_harvest.c"

t0=$(date +%s)
rc=0
KERNEL=$kernel KVER=$kver VM_MEM=${VM_MEM:-3072} VM_TIMEOUT=${VM_TIMEOUT:-1800} \
	sh "$repo/selftests/vm/run-in-vm.sh" "$here/kmod.sh" --vm "$ko" "$work/kmod_harvest" "$objw" \
	>"$work/raw.txt" 2>"$work/vm.err" || rc=$?
t1=$(date +%s)
if [ "$rc" != 0 ] || grep -q '^error\|error' "$work/raw.txt"; then
	echo "#### lmig.ko harvest cost: failed (VM exit $rc)"
	echo ""
	sed 's/^/    /' "$work/raw.txt" "$work/vm.err"
	exit 1
fi

awk -v size="$size" -v reps="$reps" -v kver="$kver" -v objw="$objw" -v secs=$((t1 - t0)) '
function f(x) { return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
function val(s, k,   i) { i = index(s, k "="); return i ? substr(s, i + length(k) + 1) + 0 : -1 }
/^mode / { mode = $2 == "never" ? "4 KiB" : "2 MiB (THP)"; next }
/^meminfo / { mi[mode] = substr($0, 9); next }
/^harvest / {
	key = mode SUBSEP $3
	if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	ms[key, $2] = val($0, "ms"); written[key] = val($0, "written")
	rep[key, $2] = val($0, "reported"); rd[key, $2] = val($0, "read_mib")
}
END {
	pages = size * 256
	printf "#### lmig.ko harvest cost: %d MiB memfd, Debian %s in the VM (TCG)\n\n", size, kver
	printf "- `bench/kmod_harvest` in one VM run (%d s): median of %d harvests per cell, each after one write of exactly the listed pages; object writes: %s\n", secs, reps, objw
	printf "- ms: one `tracker_harvest()` (kmod and soft-dirty include the hash refinement of fully reported 2 MiB blocks; refined MiB read in brackets)\n\n"
	printf "| folios | pages written | kmod ms | soft-dirty ms | scan ms | scan / kmod | scan / soft-dirty | pages reported (kmod) | target |\n"
	printf "|---|--:|--:|--:|--:|--:|--:|--:|---|\n"
	for (i = 1; i <= n; i++) {
		k = order[i]; split(k, kk, SUBSEP); m = kk[1]; c = kk[2]
		run = index(c, ":") ? substr(c, index(c, ":") + 1) : 1
		w = sprintf("%d (%.2f %%%s)", written[k], written[k] * 100 / pages, run > 1 ? ", runs of " run : ", random")
		r1 = ms[k, "kmod"] > 0 ? ms[k, "scan"] / ms[k, "kmod"] : 0
		r2 = ms[k, "soft-dirty"] > 0 ? ms[k, "scan"] / ms[k, "soft-dirty"] : 0
		if (m == "4 KiB")
			tgt = (r1 >= 1 ? "PASS" : "MISS") " (kmod not slower than scan)"
		else if (c ~ /^1(:|$)/)
			tgt = (r1 >= 20 ? "PASS" : "MISS") " (≥ 20× cheaper than scan)"
		else
			tgt = "-"
		printf "| %s | %s | %s [%s] | %s [%s] | %s | %.1f× | %.1f× | %d | %s |\n", m, w,
			f(ms[k, "kmod"]), f(rd[k, "kmod"]), f(ms[k, "soft-dirty"]), f(rd[k, "soft-dirty"]),
			f(ms[k, "scan"]), r1, r2, rep[k, "kmod"], tgt
	}
	printf "\n"
	for (m in mi) printf "- %s: %s\n", m, mi[m]
	printf "\n"
}' "$work/raw.txt"

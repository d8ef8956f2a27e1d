#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The fuzz harnesses as a test (make check, make -C fuzz check): builds
# them, runs each for SECONDS (default 12) over its committed corpus, then
# runs every saved crash under crashes/HARNESS/ once, as a regression test.
# A harness that crashes, leaks, hangs or trips a sanitizer fails its test;
# the input is shown in hex.  Prints TAP and the kselftest "# Totals:" line,
# so selftests/run.sh counts it like any test program.
#
# Usage: check.sh [SECONDS [HARNESS...]]
set -u

cd "$(dirname "$0")" || exit 1
secs=${1:-12}
[ $# -gt 0 ] && shift
harnesses=${*:-fuzz_wire fuzz_opts fuzz_codec fuzz_recv fuzz_stream fuzz_stream_back fuzz_tls fuzz_json_read fuzz_qmp fuzz_resume}
. ../selftests/lib/tap.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-fuzzcheck.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

set -- $harnesses
echo "TAP version 13"
echo "1..$(($# * 2 + 1))"

# What went wrong, and the input that did it.
explain() {	# explain LOG
	grep -E 'Running:|ERROR|SUMMARY|runtime error|fuzz_[a-z]+:|^    #[0-9]+ ' "$1" | head -40 | sed 's/^/# /'
	for a in "$tmp"/art/*; do
		[ -f "$a" ] || continue
		echo "# input ${a##*/} ($(wc -c <"$a") bytes), hex:"
		od -An -tx1 -v "$a" | head -32 | sed 's/^/#  /'
	done
}

if make -s -j2 >"$tmp/build.log" 2>&1; then
	result OK "fuzz: build the harnesses (clang, libFuzzer, ASan, UBSan)"
else
	sed 's/^/# /' "$tmp/build.log" | tail -20
	result FAIL "fuzz: build the harnesses (clang, libFuzzer, ASan, UBSan)"
	for h in "$@"; do
		result FAIL "$h: not built"
		result FAIL "$h: not built"
	done
	tap_totals
	exit 1
fi

for h in "$@"; do
	rm -rf "$tmp/work" "$tmp/art"
	mkdir -p "$tmp/work" "$tmp/art"
	# New inputs go to a scratch directory: the committed corpus stays as it is.
	if build/$h -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$tmp/art/" "$tmp/work" "corpus/$h" >"$tmp/log" 2>&1; then
		cov=$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$tmp/log" | tail -n 1)
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/log")
		result OK "$h: $secs s over the corpus (cov: ${cov:-?}, $runs runs, $rate/s)"
	else
		explain "$tmp/log"
		result FAIL "$h: $secs s over the corpus"
	fi
	crashes=$(ls "crashes/$h" 2>/dev/null | wc -l)
	if [ "$crashes" -eq 0 ]; then
		result OK "$h: no saved crashes to replay"
	elif build/$h -runs=1 "crashes/$h"/* >"$tmp/log" 2>&1; then
		result OK "$h: $crashes saved crashes replayed"
	else
		rm -rf "$tmp/art"
		explain "$tmp/log"
		result FAIL "$h: $crashes saved crashes replayed"
	fi
done

tap_totals

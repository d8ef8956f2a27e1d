# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# TAP results for the shell tests of make check (install/, plot/,
# fuzz/check.sh), in the form selftests/run.sh adds up: "ok N", "not ok N"
# with the reasons as "# " lines under it, "ok N # SKIP", and the
# kselftest totals line.  Sourced; keeps its counts in n, pass, fail, skip.

n=0
pass=0
fail=0
skip=0

# result OK|FAIL|SKIP DESCRIPTION [WHY...]
result() {
	n=$((n + 1))
	case $1 in
	OK) pass=$((pass + 1)); echo "ok $n $2" ;;
	SKIP) skip=$((skip + 1)); echo "ok $n # SKIP $2" ;;
	*)
		fail=$((fail + 1))
		echo "not ok $n $2"
		shift 2
		for why in "$@"; do printf '%s\n' "$why" | sed 's/^/# /'; done
		;;
	esac
}

# tap_totals: the kselftest line run.sh reads; returns 1 if anything failed.
tap_totals() {
	echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
	[ "$fail" -eq 0 ]
}

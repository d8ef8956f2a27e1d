#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What a dirty tracker costs: harvest a 1 GiB shared object of which 1 % of
# the pages are written per interval, with every tracker that works here,
# and print a Markdown table (harvest time, GB/s of memory read, the dirty
# rate measured next to the rate written).
#
# Knobs (environment): TRACK_SIZE (default 1Gi), TRACK_INTERVAL_MS (1000),
# TRACK_COUNT (5), TRACKERS (default: every tracker `lmig dirtyrate` knows),
# LMIG (default user/lmig).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
LMIG=${LMIG:-$here/../user/lmig}
TRACK_SIZE=${TRACK_SIZE:-1Gi}
TRACK_INTERVAL_MS=${TRACK_INTERVAL_MS:-1000}
TRACK_COUNT=${TRACK_COUNT:-5}
TRACKERS=${TRACKERS:-$("$LMIG" dirtyrate --help | sed -n 's/.*--tracker NAME *\(.*\) (default auto).*/\1/p' |
	tr -d ',' | sed 's/auto//')}

work=$(mktemp -d /dev/shm/lmig-track.XXXXXX)
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bytes=$(numfmt --from=auto "$(echo "$TRACK_SIZE" | sed 's/i$//;s/\([KMGT]\)$/\1i/')")
pages=$((bytes / 4096))
# 1 % of the pages per interval; written at random, so a few land twice.
rate=$((pages / 100 * 4096 * 1000 / TRACK_INTERVAL_MS))

mkfifo "$work/ready"
"$LMIG" dirty --mem "$work/obj" --size "$bytes" --rate "$rate" --no-progress \
	--ready-fd 3 3>"$work/ready" >/dev/null &
dpid=$!
read -r _ <"$work/ready"

echo "#### Dirty trackers: $((bytes >> 20)) MiB object, 1 % of its pages written per ${TRACK_INTERVAL_MS} ms"
echo ""
echo "- Writer: \`lmig dirty --rate $rate\` ($(awk -v r="$rate" 'BEGIN { printf "%.2f", r / 1e6 }') MB/s of random whole pages)"
echo "- Each tracker: \`lmig dirtyrate --interval $TRACK_INTERVAL_MS --count $TRACK_COUNT\`, means over the intervals"
echo ""
echo "| tracker | harvest ms | memory read GB/s | dirty pages / interval | measured MB/s |"
echo "|---|--:|--:|--:|--:|"
rc=0
for t in $TRACKERS; do
	if ! out=$("$LMIG" dirtyrate --mem "$work/obj" --tracker "$t" --interval "$TRACK_INTERVAL_MS" \
		--count "$TRACK_COUNT" --json 2>"$work/err"); then
		echo "| $t | failed: $(head -n 1 "$work/err") | | | |"
		rc=1
		continue
	fi
	echo "$out" | jq -r --arg t "$t" '
		[to_entries[] | select(.key | startswith("dirty_pages_")) | .value] as $d |
		"| \($t) | \(.harvest_ms) | \(if .harvest_gbps > 0 then .harvest_gbps else "-" end) | \(($d | add) / ($d | length) | floor) | \(.dirty_mbps) |"'
done
echo ""
exit "$rc"

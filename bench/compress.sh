#!/bin/sh
# The compression modes side by side on one image over the 1 Gbit/s link
# (netns.sh): each MODE's `lmig send` of IMAGE, in turns, REPS times, with
# its total time and wire bytes and how many pages went lz4 and zstd; the
# received image is compared with the source after every run.  Prints a
# Markdown table of the medians.  Needs root for the namespaces.
#
#   compress.sh IMAGE [MODE...]     (default modes: lz4 zstd auto)
#
# Knobs (environment):
#   REPS        runs per mode (default 3)
#   BANDWIDTH   --bandwidth for the sender too (a slower link than 1 Gbit/s)
#   LMIG        the lmig binary (default user/lmig); LMIG_B a second one,
#               whose runs appear as MODE/B (another build of the same modes)
#   OUT         where the receiver writes (default /dev/shm/lmig-compress.out)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
LMIG=${LMIG:-$top/user/lmig}
REPS=${REPS:-3}
OUT=${OUT:-/dev/shm/lmig-compress.out}
ns_src=lmig-cmp-src ns_dst=lmig-cmp-dst
[ $# -ge 1 ] || { echo "usage: compress.sh IMAGE [MODE...]" >&2; exit 2; }
img=$1
shift
modes=${*:-lz4 zstd auto}
work=$(mktemp -d)
trap 'sh "$here/netns.sh" down $ns_src $ns_dst; rm -rf "$work" "$OUT"' EXIT
sh "$here/netns.sh" up $ns_src $ns_dst

# run TAG BINARY MODE: one migration; appends "TAG ms wire lz4 zstd steps switches" to $work/runs.
run() {
	rm -f "$OUT"
	ip netns exec $ns_dst "$2" recv --listen 198.18.0.2:0 --out "$OUT" --json --no-sync \
		--ready-fd 3 3>"$work/port" >"$work/rx.json" 2>"$work/rx.err" &
	rx=$!
	while [ ! -s "$work/port" ]; do sleep 0.05; done
	ip netns exec $ns_src "$2" send --mem "$img" --to "198.18.0.2:$(cat "$work/port")" \
		--compress "$3" ${BANDWIDTH:+--bandwidth "$BANDWIDTH"} --json \
		>"$work/tx.json" 2>"$work/tx.err" || { cat "$work/tx.err" "$work/rx.err" >&2; exit 1; }
	wait $rx || { cat "$work/rx.err" >&2; exit 1; }
	: >"$work/port"
	cmp -s "$img" "$OUT" || { echo "compress.sh: $1: image differs" >&2; exit 1; }
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(sys.argv[2], s["total_ms"], s["bytes_wire"], s["pages_compressed"] - s["pages_zstd"],
      s["pages_zstd"], s.get("zstd_switches", 0), s["lz4_switches"])' "$work/tx.json" "$1" | tee -a "$work/runs" >&2
}

for r in $(seq "$REPS"); do
	for m in $modes; do
		run "$m" "$LMIG" "$m"
		[ -z "${LMIG_B:-}" ] || run "$m/B" "$LMIG_B" "$m"
	done
done
python3 - "$work/runs" "$(stat -c %s "$img")" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t = line.split()
    rows.setdefault(t[0], []).append([float(x) for x in t[1:]])
size = int(sys.argv[2])
base = None
print("| mode | total s (median) | MB/s | wire MB | wire / image | lz4 pages | zstd pages | lz4/zstd steps | none/lz4 switches |")
print("|---|---|---|---|---|---|---|---|---|")
for tag, runs in rows.items():
    med = [statistics.median(c) for c in zip(*runs)]
    print("| %s | %.2f | %.0f | %.0f | %.3f | %d | %d | %d | %d |" % (
        tag, med[0] / 1e3, size / med[0] / 1e3, med[1] / 1e6, med[1] / size, med[2], med[3],
        med[4], med[5]))
PY

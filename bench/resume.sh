#!/bin/sh
# Resume benchmark (make bench): what a reset of the connections between
# the two `lmig proxy` processes adds to a live QEMU migration through
# them, side by side in one run (selftests/qemu/resume.py drives QEMU
# over QMP and resets the channels with `ss -K`; root).
#
# The guest (selftests/qemu/guest.c): Debian's kernel under QEMU TCG,
# RS_MEM MiB of RAM, RS_TOUCH MiB of it filled and rewritten at RS_RATE
# MB/s.  It boots once and is migrated along a chain on loopback,
# precopy with return-path, QEMU's bandwidth capped at RS_BW MiB/s so a
# migration lasts a few seconds, lmig proxy with 2 channels.  Cells,
# RS_REPS runs each, interleaved:
#
#   noreset   no reset
#   once      every channel reset once, 1 s into the migration
#   every     every channel reset every RS_EVERY s (the first 1 s in)
#
# Prints a Markdown table on stdout: per cell the median (and range) of
# QEMU's total time and downtime, the resets a run, the median time the
# source lmig spent with a channel broken (its --json reconnect_ms,
# summed over channels), and the cell's median total over noreset's
# (a ratio from the same run); then the time a reset adds, (median total
# - noreset's) / resets.  Progress goes to stderr.
#
# Knobs (environment): RS_REPS (3), RS_MEM (MiB, 512), RS_TOUCH (MiB,
# 192), RS_RATE (MB/s, 8), RS_BW (MiB/s, 48), RS_EVERY (s, 2), LMIG.
# About 2 minutes on two loaded CPUs, 40 s of it the boot.
#
# Exit status 0 when every migration completed, 1 otherwise or when
# something is missing (QEMU, root), 2 on a bad knob.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
RS_REPS=${RS_REPS:-3}
RS_MEM=${RS_MEM:-512}
RS_TOUCH=${RS_TOUCH:-192}
RS_RATE=${RS_RATE:-8}
RS_BW=${RS_BW:-48}
RS_EVERY=${RS_EVERY:-2}
LMIG=${LMIG:-$top/user/lmig}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

for k in RS_REPS RS_MEM RS_TOUCH RS_RATE RS_BW; do
	eval v=\$$k
	case $v in
	'' | *[!0-9]*) echo "resume.sh: $k=$v is not a number" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "resume.sh: needs root (ss -K)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-resume-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

hops=""
i=0
while [ "$i" -lt "$RS_REPS" ]; do
	hops="$hops${hops:+,}precopy-noreset,precopy-reset,precopy-resets"
	i=$((i + 1))
done
echo "resume.sh: $RS_REPS runs of 3 cells, guest $RS_MEM MiB ($RS_TOUCH MiB written), QEMU at $RS_BW MiB/s" >&2
rc=0
nice -n 10 "$py" "$top/selftests/qemu/resume.py" --work "$work/w" --lmig "$LMIG" \
	--hops "$hops" --mem "$RS_MEM" --touch "$RS_TOUCH" --rate "$RS_RATE" \
	--max-bandwidth $((RS_BW << 20)) --reset-at $((RS_BW)) --reset-every "$RS_EVERY" \
	--resets-max 1000 --no-intruder --timeout 120 >"$work/out.jsonl" || rc=$?
[ "$rc" = 0 ] || { echo "resume.sh: resume.py exited $rc" >&2; cat "$work/out.jsonl" >&2; exit 1; }

"$py" - "$work/out.jsonl" "$RS_EVERY" <<'PY'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"hop"')]
cells = {"precopy-noreset": "noreset", "precopy-reset": "once",
         "precopy-resets": "every %s s" % sys.argv[2]}
bad = [r for r in rows if r.get("status") != "completed" or r.get("dst_status") != "running"]
by = {c: [r for r in rows if r["hop"] == h and r not in bad] for h, c in cells.items()}
med = lambda v: statistics.median(v) if v else float("nan")
base = med([r["total_time_ms"] for r in by["noreset"]])
print("| cell | runs | total ms, median (range) | downtime ms, median | resets a run | lmig reconnecting ms, median | total / noreset | added per reset, ms |")
print("|---|---|---|---|---|---|---|---|")
for c, rs in by.items():
    t = [r["total_time_ms"] for r in rs]
    res = med([r["resets"] for r in rs])
    add = (med(t) - base) / res if res else None
    print("| %s | %d | %d (%d-%d) | %d | %s | %d | %.3f | %s |" % (
        c, len(rs), med(t), min(t), max(t), med([r["downtime_ms"] for r in rs]),
        ("%g" % res), med([r.get("proxy_send_reconnect_ms", 0) for r in rs]), med(t) / base,
        "%.0f" % add if add is not None else "-"))
if bad:
    print("\nFailed: %s" % ", ".join("%s (%s)" % (r["hop"], r.get("status")) for r in bad))
    sys.exit(1)
PY

#!/bin/sh
# Post-copy benchmark (make bench): a live QEMU guest migrated with
# post-copy over the 1 Gbit/s namespace link, natively and through
# `lmig proxy`, with and without postcopy-preempt, side by side in one
# run (bench/postcopy_bench.py drives QEMU over QMP).
#
# The guest (selftests/qemu/guest.c): Debian's kernel under QEMU TCG,
# PC_MEM MiB of RAM, PC_TOUCH MiB of it filled and rewritten at PC_RATE
# MB/s, ticking every PC_TICK ms, and timing each page it writes
# (guest_stall_us=PC_STALL_US): every write that took that long or more
# is a stall, which on a post-copy destination is a fault on a page not
# received yet; the guest prints each stall on its console.  It boots
# once and goes back and forth between the two namespaces; each
# migration switches to post-copy once PC_AFTER MiB went (in the first
# pass).  Both directions of the link are shaped to 1 Gbit/s (tbf), so
# the way back is the same link.  Cells, PC_REPS runs each, interleaved:
#
#   tcp            native post-copy, migrate tcp:DST:PORT
#   proxy          post-copy through lmig proxy (unix: at both QEMUs)
#   preempt-tcp    native post-copy + postcopy-preempt
#   preempt-proxy  the same through lmig proxy
#   proxy-base, preempt-proxy-base
#                  proxy and preempt-proxy through another build of lmig,
#                  LMIG_BASE (e.g. the commit before a change), in the
#                  same run
#
# Prints Markdown tables on stdout (make bench appends them to
# bench/results-latest.md): per cell the median / 90th percentile
# (nearest rank) over the runs of QEMU's total time and downtime, the
# guest's pause on its console, the post-copy phase (QEMU's total time
# less the moment of the switch), QEMU's postcopy-requests, postcopy-bytes and
# postcopy-blocktime (the destination's sum of vCPU waits), the
# guest's stalls a run, and p50/p90/p99/max of the stalls of all the
# cell's runs (those printed before QEMU reported completion); then lmig's
# medians over native's, and the failed migrations (a fresh guest boots
# after each; the run stops at the third).  Progress goes to stderr.
#
# Knobs (environment): PC_REPS (runs per cell, 20: about 4 minutes on two
# loaded CPUs), PC_CELLS ("tcp proxy preempt-tcp preempt-proxy"), PC_MEM (MiB,
# 512), PC_TOUCH (MiB, 256), PC_RATE (MB/s, 20), PC_TICK (ms, 10),
# PC_STALL_US (50), PC_AFTER (MiB, 64), LMIG, LMIG_BASE (for the -base
# cells).
#
# Exit status 0 when every migration completed, 1 if one failed or
# something is missing, 2 on a bad knob.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
PC_REPS=${PC_REPS:-20}
PC_CELLS=${PC_CELLS:-tcp proxy preempt-tcp preempt-proxy}
PC_MEM=${PC_MEM:-512}
PC_TOUCH=${PC_TOUCH:-256}
PC_RATE=${PC_RATE:-20}
PC_TICK=${PC_TICK:-10}
PC_STALL_US=${PC_STALL_US:-50}
PC_AFTER=${PC_AFTER:-64}
LMIG=${LMIG:-$top/user/lmig}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

ns_a=lmig-pcbench-a-$$
ns_b=lmig-pcbench-b-$$
work=""

die() { echo "bench/postcopy: $*" >&2; exit 1; }
bad() { echo "bench/postcopy: $*" >&2; exit 2; }

v=""
for k in PC_REPS PC_MEM PC_TOUCH PC_RATE PC_TICK PC_STALL_US PC_AFTER; do
	eval "v=\$$k"
	case $v in
	'' | *[!0-9]*) bad "$k: '$v' is not a whole number" ;;
	esac
	[ "$v" -gt 0 ] || bad "$k: must be at least 1"
done
[ "$PC_TOUCH" -lt "$PC_MEM" ] || bad "PC_TOUCH ($PC_TOUCH MiB) must be less than PC_MEM ($PC_MEM MiB)"
[ "$PC_AFTER" -lt "$PC_TOUCH" ] || bad "PC_AFTER ($PC_AFTER MiB) must be less than PC_TOUCH ($PC_TOUCH MiB): the switch must come in the first pass"
for c in $PC_CELLS; do
	case $c in
	tcp | proxy | preempt-tcp | preempt-proxy) ;;
	proxy-base | preempt-proxy-base)
		[ -n "${LMIG_BASE:-}" ] || bad "PC_CELLS: cell '$c' needs LMIG_BASE (another lmig binary)"
		[ -x "$LMIG_BASE" ] || bad "LMIG_BASE: '$LMIG_BASE' is not an executable" ;;
	*) bad "PC_CELLS: unknown cell '$c' (tcp proxy preempt-tcp preempt-proxy proxy-base preempt-proxy-base)" ;;
	esac
done
[ -n "$PC_CELLS" ] || bad "PC_CELLS is empty"

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	bench_link_down || rc=1
	[ -n "$work" ] && rm -rf "$work"
	exit "$rc"
}

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (qemu-system-x86)"
[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
[ "$(id -u)" = 0 ] || die "the benchmark needs root (network namespaces)"
initrd=$(sh "$top/selftests/qemu/mkguest.sh") || die "cannot build the guest"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d /dev/shm/lmig-pcbench.XXXXXX)
# A private copy: a rebuild during the run must not mix two builds.
cp "$LMIG" "$work/lmig"
base_args=""
if [ -n "${LMIG_BASE:-}" ]; then
	cp "$LMIG_BASE" "$work/lmig-base"
	base_args="--lmig-base $work/lmig-base"
fi

# The guest comes back the other way: that direction is shaped alike.
bench_link_up "$ns_a" "$ns_b" both || die "cannot set up the namespaces"

started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
# shellcheck disable=SC2086 # unquoted: runs of blanks become one comma
cells=$(echo $PC_CELLS | tr ' ' ',')
rc=0
$py "$here/postcopy_bench.py" --work "$work" --out "$work/records" --lmig "$work/lmig" \
	--ends "$ns_a=198.18.0.1,$ns_b=198.18.0.2" --cells "$cells" --reps "$PC_REPS" \
	--mem "$PC_MEM" --touch "$PC_TOUCH" --rate "$PC_RATE" --tick "$PC_TICK" \
	--stall-us "$PC_STALL_US" --postcopy-after "$PC_AFTER" --initrd "$initrd" $base_args || rc=1
summary=$(tail -n 1 "$work/records" 2>/dev/null) || summary=""
[ -n "$summary" ] || die "the driver wrote nothing"

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || commit=unknown
echo "### QEMU post-copy, $started"
echo ""
echo "- Machine: Linux $(uname -r), $(nproc) CPUs, load average at start $load0"
echo "- $(qemu-system-x86_64 --version | head -n 1), TCG; guest: $PC_MEM MiB, $PC_TOUCH MiB" \
	"filled and rewritten at $PC_RATE MB/s (tick $PC_TICK ms), a write of $PC_STALL_US us or more is a stall"
echo "- 1 Gbit/s namespace link both ways; post-copy switched on after $PC_AFTER MiB sent (first pass);" \
	"max-bandwidth 32 GiB/s, downtime-limit 1 ms"
echo "- lmig: \`$("$work/lmig" version | head -n 1)\`; source tree at commit $commit"
[ -z "$base_args" ] || echo "- base cells: \`$("$work/lmig-base" version | head -n 1)\`"
echo "- $PC_REPS run(s) per cell, interleaved; each value: median / 90th percentile (nearest rank) over the runs"
echo ""
$py "$here/postcopy_bench.py" --table "$work/records" --cells "$cells"
echo ""
if [ "$rc" != 0 ] || ! printf '%s' "$summary" | grep -q '"migrations"'; then
	echo "#### FAILED"
	echo ""
	echo "- driver: $summary"
	grep -v '"migrations"' "$work/records" | grep -v '"status":"completed"' | sed 's/^/- /' | head -n 5
	echo ""
	rc=1
fi
echo "Wall time: $(($(date +%s) - t0)) s; load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo ""
exit "$rc"

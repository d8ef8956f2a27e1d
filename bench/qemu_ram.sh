#!/bin/sh
# lmig qemu against QEMU's own migration, on the 1 Gbit/s namespace link.
#
# One guest (selftests/qemu/guest.c under QEMU TCG, Debian's kernel):
# QEMU_MEM MiB of RAM in a shared memfd backend, QEMU_TOUCH MiB of it
# filled with text, binary and zero pages, rewritten at each rate of
# QEMU_RATES (MB/s) while it migrates.  Each run boots a fresh source and
# starts a destination QEMU; the lmig processes run in two network
# namespaces joined by a veth pair shaped to 1 Gbit/s (bench/netns.sh,
# 198.18.0.1 -> 198.18.0.2), the QEMUs on the host:
#
#   native tcp   migrate tcp:198.18.0.2:PORT (selftests/qemu/qmig.py)
#   lmig pipe    QEMU's stream through lmig pipe (qmig.py --transport pipe)
#   lmig qemu    lmig qemu send/recv: the RAM by lmig's pre-copy
#                (--tracker scan), the devices by QEMU (selftests/qemu/qram.py)
#
# QEMU's max-bandwidth is raised to 32 GiB/s in the first two; the link is
# the cap.  Prints a Markdown table: total time (QEMU's total-time for the
# first two; lmig qemu send's total time, which holds its QMP set-up and
# connection, for the third), downtime (QEMU's own on the source: from
# stopping the guest to completion), bytes the sending interface
# transmitted, and time and bytes against native tcp at the same rate.
# Each cell runs QRAM_RUNS times (default 3), the three transports of a
# rate in turn, so that a change in the machine's load falls on all of
# them; the table gives the median and the range of each.  A second
# table breaks lmig qemu's pause down (its --json pause_steps_ms, in ms
# from QEMU's pre-switchover: the final harvest done, the final round on
# the wire, every block committed, QEMU completed) beside QEMU's own
# downtime and the final round's size.  lmig qemu switches over once its
# predicted downtime is QRAM_DOWNTIME ms (default 300, QEMU's own
# downtime-limit): the scan tracker reads all of the guest's RAM at
# every harvest, the final one inside the downtime, beside the final
# round's send.  The load average is printed at the start and the end.
# Progress on stderr.  Needs root.  Knobs: QEMU_RATES ("0 20 60"),
# QEMU_MEM (1024), QEMU_TOUCH (600), QRAM_DOWNTIME (300), QRAM_RUNS (3),
# LMIG.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
QEMU_RATES=${QEMU_RATES:-0 20 60}
QEMU_MEM=${QEMU_MEM:-1024}
QEMU_TOUCH=${QEMU_TOUCH:-600}
QRAM_DOWNTIME=${QRAM_DOWNTIME:-300}
QRAM_RUNS=${QRAM_RUNS:-3}
LMIG=${LMIG:-$top/user/lmig}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
ns_src=lmig-qram-bsrc-$$
ns_dst=lmig-qram-bdst-$$
ns_up=0
work=""

log() { echo "$*" >&2; }
die() { echo "bench/qemu_ram: $*" >&2; exit 1; }

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	[ "$ns_up" = 1 ] && { sh "$here/netns.sh" down "$ns_src" "$ns_dst" || rc=1; }
	[ -n "$work" ] && rm -rf "$work"
	exit "$rc"
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
command -v jq >/dev/null || die "jq not found"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found"
[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
initrd=$(sh "$top/selftests/qemu/mkguest.sh") || die "cannot build the guest"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d /tmp/lmig-qram-bench.XXXXXX)
cp "$LMIG" "$work/lmig"
: >"$work/results"
ns_up=1
sh "$here/netns.sh" up "$ns_src" "$ns_dst" || die "cannot set up the namespaces"
nsargs="--src-ns $ns_src --dst-ns $ns_dst --count-dev $ns_src:veth-src --addr 198.18.0.2"

# "rate case status total_ms downtime_ms dev_bytes" into results
# (lmig qemu adds its pause's steps: harvested final_sent committed
# completed final_round_bytes).
native() {
	rate=$1 cs=$2
	mkdir -p "$work/run"
	# shellcheck disable=SC2086
	$py "$top/selftests/qemu/qmig.py" --name "$cs-$rate" --transport "$cs" --work "$work/run" \
		--mem "$QEMU_MEM" --touch "$QEMU_TOUCH" --rate "$rate" $nsargs --lmig "$work/lmig" \
		--timeout 300 --boot-timeout 240 --initrd "$initrd" \
		>"$work/res.json" 2>"$work/res.err" || true
	res=$(tail -n 1 "$work/res.json")
	st=$(printf '%s' "$res" | jq -r '.status // "none"' 2>/dev/null) || st=none
	dst=$(printf '%s' "$res" | jq -r '.dst_status // "none"' 2>/dev/null) || dst=none
	if [ "$st" != completed ] || [ "$dst" != running ]; then
		log "*** $cs at $rate MB/s: status $st, destination $dst $(cat "$work/res.err")"
		echo "$rate $cs FAIL - - -" >>"$work/results"
		return
	fi
	echo "$rate $cs completed $(printf '%s' "$res" | jq -r '"\(.total_time_ms) \(.downtime_ms) \(.dev_bytes)"')" >>"$work/results"
	log "$(tail -n 1 "$work/results")"
}

viaqemu() {
	rate=$1
	mkdir -p "$work/run"
	# shellcheck disable=SC2086
	$py "$top/selftests/qemu/qram.py" --work "$work/run" --cases migrate --mem "$QEMU_MEM" \
		--touch "$QEMU_TOUCH" --rate "$rate" $nsargs --lmig "$work/lmig" --timeout 300 \
		--send-args "--downtime-ms $QRAM_DOWNTIME" \
		--initrd "$initrd" >"$work/res.json" 2>"$work/res.err" || true
	res=$(tail -n 1 "$work/res.json")
	ok=$(printf '%s' "$res" | jq -r '(.migrate_send_exit == 0) and .migrate_hash_equal and
		(.migrate_dst_tick > .migrate_dst_first_tick)' 2>/dev/null) || ok=false
	if [ "$ok" != true ]; then
		log "*** lmig qemu at $rate MB/s: $res $(cat "$work/res.err")"
		echo "$rate qemu FAIL - - -" >>"$work/results"
		return
	fi
	steps=$(head -n 1 "$work/res.json" | jq -r '.migrate.send.json |
		"\(.pause_steps_ms.harvested) \(.pause_steps_ms.final_sent) \(.pause_steps_ms.committed) \(.pause_steps_ms.completed) \([.blocks[].final_bytes_wire] | add)"')
	echo "$rate qemu completed $(printf '%s' "$res" | jq -r '"\(.migrate_total_ms) \(.migrate_qemu_downtime_ms) \(.migrate_dev_bytes)"') $steps" >>"$work/results"
	log "$(tail -n 1 "$work/results") rounds $(printf '%s' "$res" | jq -r .migrate_rounds)"
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
for rate in $QEMU_RATES; do
	run=1
	while [ "$run" -le "$QRAM_RUNS" ]; do
		log "--- $rate MB/s, run $run of $QRAM_RUNS (load $(cut -d ' ' -f 1 /proc/loadavg))"
		native "$rate" tcp
		native "$rate" pipe
		viaqemu "$rate"
		run=$((run + 1))
	done
done
load1=$(cut -d ' ' -f 1-3 /proc/loadavg)

echo "### lmig qemu against QEMU's own migration, 1 Gbit/s link, $started"
echo ""
echo "- Machine: Linux $(uname -r), $(nproc) CPUs, load average $load0 at the start," \
	"$load1 at the end"
echo "- $(qemu-system-x86_64 --version | head -n 1), TCG; guest: $QEMU_MEM MiB (shared memfd)," \
	"$QEMU_TOUCH MiB filled, rewritten at the rate of each row; lmig qemu with --tracker scan" \
	"and --downtime-ms $QRAM_DOWNTIME, QEMU's downtime-limit left at 300 ms;" \
	"$QRAM_RUNS runs a cell: median (min-max)"
echo "- lmig: \`$("$work/lmig" version | head -n 1)\`"
echo ""
awk '
function sortn(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
}
# The median of the values of field f of cell k, and "min-max" into RANGE.
function med(k, f,    n, i, a) {
	n = 0
	for (i = 1; i <= cnt[k]; i++) if ((k, i, f) in V) a[++n] = V[k, i, f]
	if (!n) { RANGE = ""; return "" }
	sortn(a, n)
	RANGE = n > 1 ? a[1] "-" a[n] : ""
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function rng(fmt, s) { return s == "" ? "" : sprintf(" (" fmt "-" fmt ")", s / 1, substr(s, index(s, "-") + 1) / 1) }
{ k = $1 SUBSEP $2; runs[k]++
  if (!($1 in seen)) { seen[$1] = 1; rates[++n] = $1 }
  if ($3 != "completed") { fails[k]++; next }
  i = ++cnt[k]
  for (f = 4; f <= NF; f++) if ($f != "null" && $f != "-") V[k, i, f] = $f / (f == 4 ? 1000 : f == 6 || f == 11 ? 1e6 : 1) }
function title(c) { return c == "tcp" ? "native tcp" : c == "pipe" ? "lmig pipe" : "lmig qemu" }
END {
	print "| dirtying MB/s | transport | total s | downtime ms | wire MB | time vs tcp | wire vs tcp | failed |"
	print "|---:|---|---:|---:|---:|---:|---:|---:|"
	split("tcp pipe qemu", cs, " ")
	for (i = 1; i <= n; i++) {
		r = rates[i]; b = r SUBSEP "tcp"
		bt = med(b, 4); bw = med(b, 6)
		for (j = 1; j <= 3; j++) {
			k = r SUBSEP cs[j]
			fl = fails[k] ? fails[k] " of " runs[k] : ""
			if (!cnt[k]) { printf "| %s | %s | failed | | | | | %s |\n", r, title(cs[j]), fl; continue }
			t = med(k, 4); tr = rng("%.2f", RANGE)
			d = med(k, 5); dr = rng("%d", RANGE)
			w = med(k, 6)
			tx = bt > 0 ? sprintf("%.2fx", t / bt) : "-"
			wx = bw > 0 ? sprintf("%.2fx", w / bw) : "-"
			printf "| %s | %s | %.2f%s | %d%s | %.0f | %s | %s | %s |\n", r, title(cs[j]), t, tr, d, dr, w, tx, wx, fl
		}
	}
	print ""
	print "lmig qemu inside the pause, ms from pre-switchover (median, min-max):"
	print ""
	print "| dirtying MB/s | final harvest done | final round on the wire | committed | QEMU completed | QEMU downtime | final round MB |"
	print "|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= n; i++) {
		k = rates[i] SUBSEP "qemu"
		if (!cnt[k]) continue
		line = "| " rates[i]
		for (f = 7; f <= 10; f++) { v = med(k, f); line = line (v == "" ? " | -" : sprintf(" | %d%s", v, rng("%d", RANGE))) }
		v = med(k, 5); line = line sprintf(" | %d%s", v, rng("%d", RANGE))
		v = med(k, 11); line = line (v == "" ? " | - |" : sprintf(" | %.1f%s |", v, rng("%.1f", RANGE)))
		print line
	}
}' "$work/results"

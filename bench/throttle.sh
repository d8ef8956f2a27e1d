#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Convergence by CPU throttling: a CPU-paced writer dirtying a 1 GiB
# object at about twice the link rate, migrated live over the 1 Gbit/s
# link between two network namespaces (bench/netns.sh), with `lmig send
# --throttle off` and `--throttle auto`; and the same object migrated with
# no writer activity, for the target "converges within 3x the time of an
# idle migration, downtime <= 300 ms".  Prints a Markdown table.
#
# The workload is `lmig dirty --mem anon --uffd --pace cpu --compute-threads
# 1`: a writer thread and a thread that only computes; `lmig send --tracker
# uffd` (whose write faults on private memory name the writer thread, so
# only it is limited).  lmig send enters the source namespace with
# nsenter --net, not ip netns exec, whose private /sys would hide the
# workload's cgroups from the throttle.  The compute thread's work units per second before
# and during each migration show what throttling costs a thread that
# dirties nothing.
#
# Knobs (environment): THR_SIZE (default 1Gi), THR_RATE (writer, per
# second of its CPU time, default 240M), THR_OFF_ROUNDS (--max-rounds for
# --throttle off, default 6), THR_BASE_S (seconds of baseline before each
# migration, default 3), THR_BW (`lmig send --bandwidth` on the link, for
# a machine whose writer cannot dirty twice the 1 Gbit/s link: default
# none), THR_JSON (where the per-round reports of the off and auto runs
# are kept for bench/plot.sh, default bench/throttle-latest.json), LMIG
# (default user/lmig).  Needs root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
LMIG=${LMIG:-$here/../user/lmig}
THR_SIZE=${THR_SIZE:-1Gi}
THR_RATE=${THR_RATE:-240M}
THR_OFF_ROUNDS=${THR_OFF_ROUNDS:-6}
THR_BASE_S=${THR_BASE_S:-3}
THR_BW=${THR_BW:-}
THR_JSON=${THR_JSON:-$here/throttle-latest.json}
started=$(date -u '+%Y-%m-%d %H:%M UTC')
NET_ADDR=198.18.0.2 # the receiving end of netns.sh's link

ns_src=lmigt-src-$$
ns_dst=lmigt-dst-$$
ns_up=0
work=$(mktemp -d /dev/shm/lmig-throttle.XXXXXX)
dpid="" rpid=""

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	set +e
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null
	if [ -n "$dpid" ]; then
		kill -CONT "$dpid" 2>/dev/null
		kill "$dpid" 2>/dev/null
	fi
	wait 2>/dev/null
	"$LMIG" throttle --restore >/dev/null 2>&1 || true
	[ "$ns_up" = 1 ] && sh "$here/netns.sh" down "$ns_src" "$ns_dst"
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "throttle: needs root (network namespaces, cgroups)" >&2; exit 1; }
for t in jq ip tc awk; do
	command -v "$t" >/dev/null || { echo "throttle: $t not found" >&2; exit 1; }
done

ns_up=1
sh "$here/netns.sh" up "$ns_src" "$ns_dst"

# Start the workload: $1 rate, $2 tag.  Sets dpid and mem.
workload() {
	rm -f "$work/ready"
	mkfifo "$work/ready"
	"$LMIG" dirty --mem anon --size "$THR_SIZE" --rate "$1" --pace cpu --uffd \
		--compute-threads 1 --sample-fd 5 --sample-ms 100 --ready-fd 3 --json --no-progress \
		3>"$work/ready" 5>"$work/samples.$2" >"$work/dirty.$2.json" &
	dpid=$!
	read -r mem <"$work/ready"
}

# Rates from the samples between lines $2 and $3 (1-based) of file $1:
# "WRITER_MBPS COMPUTE_UNITS_PER_S".
rates() {
	awk -v a="$2" -v b="$3" 'NR == a { t0 = $1; p0 = $2; u0 = $3 }
		NR == b { t1 = $1; p1 = $2; u1 = $3 }
		END { if (t1 > t0) printf "%.1f %.0f\n", (p1 - p0) * 4096 / 1e6 / (t1 - t0), (u1 - u0) / (t1 - t0);
		      else print "- -" }' "$1"
}

# The first sample line at or after time $2 (seconds, the samples' clock) in $1.
line_at() {
	awk -v t="$2" '$1 >= t { print NR; exit }' "$1"
}

# One live migration of the running workload: $1 tag, then send options.
migrate() {
	tag=$1
	shift
	rm -f "$work/port" "$work/recv.img"
	ip netns exec "$ns_dst" "$LMIG" recv --listen "$NET_ADDR:0" --ready-fd 3 \
		--out "$work/recv.img" --no-sync --json 3>"$work/port" >"$work/recv.$tag.json" \
		2>"$work/recv.$tag.err" &
	rpid=$!
	n=0
	while [ ! -s "$work/port" ]; do
		n=$((n + 1))
		[ $n -lt 100 ] || { echo "throttle: lmig recv did not start: $(cat "$work/recv.$tag.err")" >&2; exit 1; }
		sleep 0.1
	done
	n0=$(wc -l <"$work/samples.$tag")
	rc=0
	nsenter --net="/run/netns/$ns_src" "$LMIG" send --mem "$mem" --pid "$dpid" \
		--to "$NET_ADDR:$(cat "$work/port")" --tracker uffd --json --no-progress \
		${THR_BW:+--bandwidth "$THR_BW"} "$@" \
		>"$work/send.$tag.json" 2>"$work/send.$tag.err" || rc=$?
	n1=$(wc -l <"$work/samples.$tag")
	wait "$rpid" || true
	rpid=""
	echo "$rc" >"$work/rc.$tag"
	echo "$n0 $n1" >"$work/lines.$tag"
	kill -CONT "$dpid" 2>/dev/null
	kill "$dpid"
	wait "$dpid" || true
	dpid=""
}

rate_bytes=$(numfmt --from=auto "$THR_RATE")

# Idle: the same object, no writes during the migration.
workload 0 idle
migrate idle
idle_ms=$(jq -r .total_ms "$work/send.idle.json")

for mode in off auto; do
	workload "$THR_RATE" "$mode"
	sleep "$THR_BASE_S"
	if [ "$mode" = off ]; then
		migrate off --throttle off --max-rounds "$THR_OFF_ROUNDS"
	else
		migrate auto --throttle auto
	fi
done

row() { # tag
	s=$work/samples.$1 j=$work/send.$1.json
	read -r n0 n1 <"$work/lines.$1"
	b0=$(line_at "$s" "$(awk 'NR == 1 { print $1 + 1 }' "$s")")
	read -r wb cb <<-EOF
	$(rates "$s" "$b0" "$n0")
	EOF
	read -r wd cd <<-EOF
	$(rates "$s" "$n0" "$n1")
	EOF
	# While the limit was on: from the first limited round's start to the end.
	t_first=$(jq -r '[.throttle[]? | select(.cpu_limit_pct > 0) | .round] | first // empty' "$j")
	wt="-" ct="-"
	if [ -n "$t_first" ]; then
		st=$(jq -r ".rounds[$t_first].start_ms" "$j")
		ts=$(awk -v n="$n0" 'NR == n { print $1 }' "$s")
		l=$(line_at "$s" "$(awk -v a="$ts" -v b="$st" 'BEGIN { print a + b / 1000 }')")
		[ -n "$l" ] && [ "$l" -lt "$n1" ] && read -r wt ct <<-EOF
		$(rates "$s" "$l" "$n1")
		EOF
	fi
	jq -r --arg m "$1" --arg rc "$(cat "$work/rc.$1")" --arg wb "$wb" --arg wd "$wd" \
		--arg wt "$wt" --arg cb "$cb" --arg cd "$cd" --arg ct "$ct" --arg idle "$idle_ms" '
		([.throttle[]? | select(.cpu_limit_pct > 0) | .cpu_limit_pct] | min) as $peak |
		([.rounds[1:][] | .dirty_mbps] | max) as $dmax |
		"| \($m) | \(.total_ms / 1000 | . * 10 | round / 10) | \(.total_ms / ($idle | tonumber) | . * 100 | round / 100) | \(if .converged then .downtime_ms else "-" end) | \(.rounds | length) | \($dmax // "-") | \(if $peak then "\($peak) %" else "-" end) | \(.converged) | \($wb) / \($wd) / \($wt) | \($cb) / \($cd) / \($ct) |"' "$j"
}

echo "#### Convergence (throttling): $THR_SIZE of private memory, 1 Gbit/s link"
echo ""
echo "- Workload: \`lmig dirty --mem anon --size $THR_SIZE --rate $THR_RATE --pace cpu --uffd --compute-threads 1\` ($(awk -v r="$rate_bytes" 'BEGIN { printf "%.0f", r / 1e6 }') MB/s per second of the writer's CPU time; one compute thread)"
echo "- \`lmig send --tracker uffd${THR_BW:+ --bandwidth $THR_BW}\` over the tbf 1gbit link between two network namespaces; \`--throttle off\` with \`--max-rounds $THR_OFF_ROUNDS\`"
echo "- Idle migration of the same object (\`--rate 0\`): $(awk -v t="$idle_ms" 'BEGIN { printf "%.1f", t / 1000 }') s, downtime $(jq -r .downtime_ms "$work/send.idle.json") ms"
echo "- MB/s written and compute units/s: before / during the whole migration / while limited"
echo ""
echo "| throttle | total s | × idle | downtime ms | rounds | max dirty MB/s | peak throttle (min CPU limit) | converged | writer MB/s | compute units/s |"
echo "|---|--:|--:|--:|--:|--:|--:|---|---|---|"
row off
row auto
echo ""
for m in off auto; do
	if [ "$(cat "$work/rc.$m")" != 0 ]; then
		echo "- \`--throttle $m\`: $(head -n 1 "$work/send.$m.err")"
	fi
	note=$(jq -r '.throttle_note // empty' "$work/send.$m.json")
	[ -z "$note" ] || echo "- \`--throttle $m\` throttle_note: $note"
done
echo ""
jq -n --arg started "$started" --arg size "$THR_SIZE" --arg rate "$THR_RATE" --arg bw "$THR_BW" \
	--slurpfile off "$work/send.off.json" --slurpfile auto "$work/send.auto.json" \
	'{started: $started, size: $size, rate: $rate, bandwidth: $bw, off: $off[0], auto: $auto[0]}' \
	>"$THR_JSON" || echo "throttle: could not write $THR_JSON" >&2
[ "$(cat "$work/rc.idle")" = 0 ] && [ "$(cat "$work/rc.auto")" = 0 ]

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# lmig estimate against the real thing (make bench): for each case, `lmig
# estimate` watches the workload, then the migration it predicted runs
# for real, and the table puts predicted and actual total time, rounds and
# downtime side by side, with the error of the total time.
#
#   lmig send: `lmig dirty` rewriting a memfd at several rates (wall pace;
#   one case at CPU pace, whose rate follows its CPU share, for the
#   throttle), `lmig estimate --mem --pid --bandwidth B`, then `lmig send
#   --bandwidth B` to an `lmig recv` on loopback (--bandwidth is the
#   rate-capped link; --throttle auto, or off where said).
#   QEMU: bench/estimate_qemu.py: the test guest of selftests/qemu under
#   TCG writing R MB/s at wall pace, `lmig estimate --qmp` (guest RAM read
#   in QEMU's memory; the link: QEMU's max-bandwidth; the last pass: the
#   link measured by a probe send to an lmig recv, --to), then QEMU's own
#   migration over tcp on loopback; guests that outrun the link go
#   through `lmig proxy send --qmp --throttle auto` instead (its vCPU
#   limits), and the row notes the limits it set against the share the
#   estimate said was needed.
#
# Prints a Markdown table on stdout (Documentation/benchmarks.md, "lmig
# estimate", explains it); progress on stderr.  Needs root (the throttle's
# cgroups).
#
# Knobs (environment):
#   EST_SIZE        memfd size (default 256M)
#   EST_BW          --bandwidth of the lmig send cases (default 100M)
#   EST_RATES       wall-pace writer rates, MB/s (default "0 10 20 40 60 80 120")
#   EST_CPU_RATE    the CPU-paced writer's rate, MB/s per CPU second, with
#                   --bandwidth EST_CPU_BW (default 150, 50M; "" skips it)
#   EST_CPU_MODES   the CPU-paced writer's --throttle runs (default "off auto")
#   EST_CPU_REPEAT  runs of each (default 1)
#   EST_OBSERVE     lmig estimate --observe (default 5)
#   EST_QEMU_RATES  guest rates, MB/s (default "5 20 40"; "" skips QEMU)
#   EST_QEMU_BW     QEMU's max-bandwidth, bytes/s (default 50000000)
#   EST_QEMU_OVER   guests over the link, RATE:DOWNTIME (MB/s, QEMU's
#                   downtime-limit in ms), migrated through lmig proxy send
#                   --qmp --throttle auto (default "60:300 60:2000"; ""
#                   skips them), with max-bandwidth EST_QEMU_OVER_BW
#                   (default 30000000)
#   LMIG            the lmig binary (default user/lmig)
#   EST_KEEP        a directory: keep each run's JSON (estimate, send, QEMU) there
#
# Default run: 9 lmig send and 5 QEMU migrations, about 15 minutes on 2
# CPUs.  Exit status 0 whether the predictions are good or not (a
# benchmark reports); 1 if a run failed (lmig error, received image
# different from the paused source) or the set-up failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
top=$(cd "$here/.." && pwd)

EST_SIZE=${EST_SIZE:-256M}
EST_BW=${EST_BW:-100M}
EST_RATES=${EST_RATES:-0 10 20 40 60 80 120}
EST_CPU_RATE=${EST_CPU_RATE-150}
EST_CPU_BW=${EST_CPU_BW:-50M}
EST_CPU_MODES=${EST_CPU_MODES:-off auto}
EST_CPU_REPEAT=${EST_CPU_REPEAT:-1}
EST_OBSERVE=${EST_OBSERVE:-5}
EST_QEMU_RATES=${EST_QEMU_RATES-5 20 40}
EST_QEMU_BW=${EST_QEMU_BW:-50000000}
EST_QEMU_OVER=${EST_QEMU_OVER-60:300 60:2000}
EST_QEMU_OVER_BW=${EST_QEMU_OVER_BW:-30000000}
LMIG=${LMIG:-$top/user/lmig}
EST_KEEP=${EST_KEEP:-}

work=""
out=""
dpid="" rpid=""
n=0

log() {
	echo "$*" >&2
}

die() {
	echo "estimate: $*" >&2
	exit 1
}

fail() {
	log "*** FAIL: $*"
	echo "$*" >>"$work/failures"
}

stop_writer() {
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null || true
	kill -CONT "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
	dpid=""
}

cleanup() {
	rc=$?
	trap - EXIT HUP INT TERM
	if [ -n "$rpid" ]; then
		kill "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
	fi
	stop_writer
	"$LMIG" throttle --restore >/dev/null 2>&1 || true
	if [ -n "$out" ]; then rm -f "$out" "$out.partial"; fi
	if [ -n "$work" ]; then rm -rf "$work"; fi
	exit "$rc"
}

calc() {
	e=$1
	shift
	awk "$@" "BEGIN { print $e }"
}

# start_recv: an lmig recv on loopback; sets $port and $rpid.
start_recv() {
	"$lmig" recv --listen 127.0.0.1:0 --out "$out" --no-sync --json --no-progress \
		--accept-timeout 300 --ready-fd 3 3>"$work/port" >"$work/recv.json" 2>"$work/recv.err" &
	rpid=$!
	port=""
	read -r port <"$work/port" || true
	[ -n "$port" ] || die "lmig recv did not start: $(cat "$work/recv.err")"
}

# row PATH RATE LINK EST_JSON ACT_VERDICT ACT_TOTAL ACT_ROUNDS ACT_DOWNTIME NOTE
row() {
	n=$((n + 1))
	# The machine is shared: each row says how loaded it was at the end of the run.
	set -- "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "${9:+$9; }load $(cut -d ' ' -f 1 /proc/loadavg)"
	if [ -n "$EST_KEEP" ]; then
		cp "$4" "$EST_KEEP/$n-estimate.json"
		cp "$work/send.json" "$EST_KEEP/$n-send.json" 2>/dev/null || true
		cp "$work/q.json" "$EST_KEEP/$n-qemu.json" 2>/dev/null || true
		rm -f "$work/send.json" "$work/q.json"
	fi
	read -r verdict total rounds down share <<EOF
$(jq -r '[.verdict, .total_s, .rounds, .downtime_ms, .throttle_share_pct] | map(tostring) | join(" ")' "$4")
EOF
	pv=$verdict
	[ "$verdict" != throttle ] || pv="throttle $(calc 'sprintf("%.0f", s)' -v s="$share") %"
	if [ "$verdict" = never ]; then
		ptot="–" pdown="–" err="–"
	else
		ptot=$(calc 'sprintf("%.2f", t)' -v t="$total")
		pdown=$(calc 'sprintf("%.0f", d)' -v d="$down")
	fi
	err="–"
	case "$verdict:$5" in never:*) ;; *:converged*)
		err=$(calc 'sprintf("%+.0f %%", (p - a) / a * 100)' -v p="$total" -v a="$6") ;;
	esac
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$n" "$1" "$2" "$3" "$pv" "$5" "$ptot" "$6" "$err" "$rounds" "$7" "$pdown" "$8" "$9" \
		>>"$work/rows"
	log "$(printf '%2s %-5s %-14s predicted %-12s %s s %s rounds %s ms | actual %-13s %s s %s rounds %s ms  err %s' \
		"$n" "$1" "$2" "$pv" "$ptot" "$rounds" "$pdown" "$5" "$6" "$7" "$8" "$err")"
}

# lmig_case RATE PACE BW THROTTLE: one lmig send case.
lmig_case() {
	rate=$1 pace=$2 bw=$3 thr=$4
	what="${rate} MB/s ($pace)"
	rm -f "$out" "$out.partial"
	"$lmig" dirty --mem memfd:est --size "$EST_SIZE" --rate "${rate}M" --pace "$pace" \
		--no-progress --json --ready-fd 3 3>"$work/ready" >"$work/dirty.json" \
		2>"$work/dirty.err" &
	dpid=$!
	mem=""
	read -r mem <"$work/ready" || true
	[ -n "$mem" ] || { fail "$what: lmig dirty: $(cat "$work/dirty.err")"; stop_writer; return; }
	pid=${mem#/proc/}
	pid=${pid%%/*}
	if ! "$lmig" estimate --mem "$mem" --pid "$pid" --bandwidth "$bw" --observe "$EST_OBSERVE" \
		--throttle "$thr" --json --no-progress >"$work/est.json" 2>"$work/est.err"; then
		fail "$what: lmig estimate: $(cat "$work/est.err")"
		stop_writer
		return
	fi
	start_recv
	send_rc=0
	timeout 300 "$lmig" send --mem "$mem" --pid "$pid" --to "127.0.0.1:$port" --bandwidth "$bw" \
		--throttle "$thr" --json --no-progress >"$work/send.json" 2>"$work/send.err" || send_rc=$?
	[ "$send_rc" = 0 ] || stop_after "$rpid" 10
	wait "$rpid" 2>/dev/null || true
	rpid=""
	read -r status converged total_ms rounds down throttled <<EOF
$(jq -r '[.status, .converged, .total_ms, (.rounds | length), .downtime_ms, .throttled] | map(tostring) | join(" ")' "$work/send.json" 2>/dev/null)
EOF
	note=""
	if [ "$status" = completed ]; then
		act=converged
		[ "$throttled" != true ] || act="converged, throttled"
		state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d ' ' -f 1)
		if [ "$state" = T ] && cmp -s "$mem" "$out"; then
			note="image identical"
		else
			note="**image differs**"
			fail "$what: the received image differs from the paused source"
		fi
	elif [ "$converged" = false ]; then
		act="not converged"
		down="–"
	else
		fail "$what: lmig send: $(tail -n 2 "$work/send.err" | tr '\n' ' ')"
		stop_writer
		return
	fi
	stop_writer
	[ "$thr" = auto ] || note="${note:+$note; }--throttle off"
	[ "$down" = "–" ] || down=$(calc 'sprintf("%.0f", d)' -v d="$down")
	row "lmig" "$what" "$(calc 'sprintf("%.0f", b / 1e6)' -v b="$(numfmt --from=si "$bw")")" \
		"$work/est.json" "$act" "$(calc 'sprintf("%.2f", t / 1000)' -v t="$total_ms")" "$rounds" \
		"$down" "$note"
}

# throttle_note Q_JSON: what lmig proxy send's controller did, against the
# share the estimate said was needed (of the vCPUs' CPU while watched).
throttle_note() {
	jq -r '.estimate as $e | .actual.throttle as $t |
		(($e.cpu_used_pct // 0) / 100) as $u |
		if $t == null then "no throttle report"
		elif ($t.throttled // false) | not then "no limit set"
		else "vCPU limit \($t.min_limit_pct) % of a CPU at the tightest" +
			(if $u > 0 then " (\(($t.min_limit_pct / $u) | round) % of the \($e.cpu_used_pct) % used while watched)" else "" end) +
			" from \($t.limited_from_s) s, least allowed \($t.least_limit_pct) %" +
			(if ($t.note // "") != "" then "; \($t.note)" else "" end)
		end' "$1" 2>/dev/null || echo "no throttle report"
}

# qemu_case RATE [BW VIA DOWNTIME]: one QEMU guest (VIA tcp: native;
# proxy: lmig proxy send --qmp --throttle auto; DOWNTIME: QEMU's
# downtime-limit, ms, 0: its own, 300).
qemu_case() {
	rate=$1 bw=${2:-$EST_QEMU_BW} via=${3:-tcp} dl=${4:-0}
	start_recv
	if ! python3 "$here/estimate_qemu.py" --work "$work/q" --rate "$rate" --via "$via" \
		--downtime-limit "$dl" \
		--max-bandwidth "$bw" --observe 7 --lmig "$lmig" --timeout 180 \
		--estimate-args "--to 127.0.0.1:$port --probe 64M" --initrd "$initrd" \
		>"$work/q.json" 2>"$work/q.err"; then
		fail "QEMU at $rate MB/s: $(tail -c 300 "$work/q.json" "$work/q.err" | tr '\n' ' ')"
		kill "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
		rpid=""
		return
	fi
	wait "$rpid" 2>/dev/null || true
	rpid=""
	if ! jq -e '.estimate.verdict and .actual.status' "$work/q.json" >/dev/null 2>&1; then
		fail "QEMU at $rate MB/s: $(jq -r '.estimate_error // .harness_error // "no result"' "$work/q.json" 2>/dev/null | tr '\n' ' ')"
		return
	fi
	jq '.estimate' "$work/q.json" >"$work/est.json"
	read -r total rounds down kept <<EOF
$(jq -r '.actual | [.total_time_ms, .dirty_sync_count, .downtime_ms, .writer_pace] | map(tostring) | join(" ")' "$work/q.json")
EOF
	# "not finished in N s": the harness's timeout (QEMU's total time so far).
	status=$(jq -r '.actual.status' "$work/q.json")
	case "$status" in
	completed) act=converged ;;
	"not finished"*) act="not converged in ${status#not finished in }" down="–" ;;
	*) act="$status" ;;
	esac
	note="writer kept $(calc 'sprintf("%.0f", k * 100)' -v k="$kept") % of its pace while migrating"
	if [ "$via" = proxy ]; then
		[ "$(jq -r '.actual.throttle.throttled' "$work/q.json")" != true ] ||
			act="$act, throttled"
		note="lmig proxy send --qmp, downtime-limit $dl ms; $(throttle_note "$work/q.json"); $note"
		[ "$(jq -r '.actual.proxy_send_exit' "$work/q.json")" = 0 ] ||
			note="$note; lmig proxy send exit $(jq -r '.actual.proxy_send_exit' "$work/q.json")"
	fi
	row "QEMU" "$rate MB/s (guest)" "$(calc 'sprintf("%.0f", b / 1e6)' -v b="$bw")" \
		"$work/est.json" "$act" "$(calc 'sprintf("%.2f", t / 1000)' -v t="$total")" "$rounds" \
		"$down" "$note"
}

main() {
	[ "$(id -u)" = 0 ] || die "needs root (the throttle's cgroups)"
	for t in jq numfmt cmp timeout; do
		command -v "$t" >/dev/null || die "$t not found"
	done
	[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
	trap cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	t0=$(date +%s)
	started=$(date -u '+%Y-%m-%d %H:%M UTC')
	load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
	work=$(mktemp -d /tmp/lmig-estimate.XXXXXX)
	out=/dev/shm/lmig-estimate-$$.img
	mkfifo "$work/ready" "$work/port"
	: >"$work/rows"
	cp "$LMIG" "$work/lmig"
	lmig=$work/lmig

	for r in $EST_RATES; do
		lmig_case "$r" wall "$EST_BW" auto
	done
	if [ -n "$EST_CPU_RATE" ]; then
		for m in $EST_CPU_MODES; do
			i=0
			while [ "$i" -lt "$EST_CPU_REPEAT" ]; do
				lmig_case "$EST_CPU_RATE" cpu "$EST_CPU_BW" "$m"
				i=$((i + 1))
			done
		done
	fi
	if [ -n "$EST_QEMU_RATES" ]; then
		if initrd=$(sh "$top/selftests/qemu/mkguest.sh" 2>"$work/mkguest.err"); then
			for r in $EST_QEMU_RATES; do
				qemu_case "$r"
			done
			for r in $EST_QEMU_OVER; do
				qemu_case "${r%%:*}" "$EST_QEMU_OVER_BW" proxy "${r#*:}"
			done
		else
			log "QEMU cases skipped: $(tail -n 1 "$work/mkguest.err")"
		fi
	fi

	echo "#### lmig estimate against real migrations, $started"
	echo ""
	echo "- Machine: Linux $(uname -r), $(nproc) CPUs; load average at start: $load0"
	echo "- lmig: \`$("$lmig" version | head -n 1)\`"
	echo "- lmig send cases: \`lmig dirty --mem memfd:est --size $EST_SIZE --rate R --pace P\`;" \
		"\`lmig estimate --mem M --pid P --bandwidth B --observe $EST_OBSERVE\`, then" \
		"\`lmig send --bandwidth B\` to \`lmig recv\` on loopback (downtime budget 300 ms, 30 rounds)"
	echo "- QEMU cases: QEMU 7.2 TCG, 512 MiB guest filling 256 MiB and rewriting it at R MB/s" \
		"(wall pace), max-bandwidth $EST_QEMU_BW bytes/s, downtime-limit 300 ms;" \
		"\`lmig estimate --qmp S --observe 7 --to (lmig recv on loopback)\`, then native tcp migration;" \
		"guests over the link ($EST_QEMU_OVER, RATE:DOWNTIME) at max-bandwidth $EST_QEMU_OVER_BW" \
		"through \`lmig proxy send --qmp --throttle auto\`"
	echo ""
	echo "| # | path | workload | link MB/s | predicted | actual | predicted s | actual s | total error | predicted rounds | actual rounds | predicted downtime ms | actual downtime ms | notes |"
	echo "|--:|---|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|"
	cat "$work/rows"
	echo ""
	if [ -s "$work/failures" ]; then
		echo "**FAILED RUNS**"
		echo ""
		sed 's/^/- /' "$work/failures"
		echo ""
	fi
	echo "Wall time: $(($(date +%s) - t0)) s; load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo ""
	[ ! -s "$work/failures" ]
}

main "$@"

#!/bin/sh
# Live migration benchmark (make bench): `lmig send --pid` of a 1 GiB memfd
# that `lmig dirty` keeps rewriting at 0, 20 and 80 MB/s, over the 1 Gbit/s
# link between two network namespaces (bench/netns.sh), with every dirty
# tracker that works on this machine and each downtime budget.  Per run:
# total time, downtime, rounds, bytes on the wire, converged or not, and
# total time over the time the link needs for those bytes (its rate
# measured with iperf3 in the same run).  The received image is compared
# byte for byte with the paused source after every run that committed.
# Prints a Markdown table on stdout (Documentation/benchmarks.md, "Live
# migration", explains it); progress goes to stderr.  Needs root.
#
# Knobs (environment):
#   LIVE_SIZE      object size, K/M/G suffixes (binary), default 1G
#   LIVE_RATES     dirty rates in MB/s (10^6 bytes/s), default "0 20 80"
#   LIVE_TRACKERS  trackers to try (default: every one `lmig send` knows;
#                  those that do not work here are listed with the reason)
#   LIVE_BUDGETS   values of --downtime-ms, default "50 300"
#   LIVE_TIMEOUT   lmig send --timeout: the limit on pre-copy (default 60 s)
#   IPERF_TIME     seconds of the iperf3 run (default 5)
#   BENCH_PIN      1 (default): writer and sender on CPU 0 (the source
#                  host), receiver on CPU 1; 0: not pinned
#   LMIG           the lmig binary (default user/lmig)
#   LIVE_KEEP      a directory: keep each run's lmig send JSON report there
#
# Default run: 12 migrations of 10-60 s each, about 5 minutes.  Exit
# status 0 whether targets are met or not (a run that does not converge is
# a result); 1 if a run failed otherwise (lmig error, received image
# different from the source) or the set-up failed.
# shellcheck disable=SC2086 # $src_exec, $dst_exec, $pin_*: command prefixes, split on purpose
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
top=$(cd "$here/.." && pwd)

LIVE_SIZE=${LIVE_SIZE:-1G}
LIVE_RATES=${LIVE_RATES:-0 20 80}
LIVE_TRACKERS=${LIVE_TRACKERS:-}
LIVE_BUDGETS=${LIVE_BUDGETS:-50 300}
LIVE_TIMEOUT=${LIVE_TIMEOUT:-60}
IPERF_TIME=${IPERF_TIME:-5}
BENCH_PIN=${BENCH_PIN:-1}
LMIG=${LMIG:-$top/user/lmig}
LIVE_KEEP=${LIVE_KEEP:-}

# Targets.
DOWNTIME_GOAL_MS=50 # at DOWNTIME_GOAL_RATE MB/s
DOWNTIME_GOAL_RATE=20
TIME_GOAL=1.3 # total time / (bytes on the wire / link rate)

SRC_ADDR=198.18.0.1 # netns.sh's addresses
DST_ADDR=198.18.0.2
ns_src=lmigl-src-$$
ns_dst=lmigl-dst-$$
# nsenter, not `ip netns exec`: the latter also gives the command a fresh
# /sys without the cgroup mounts, and the throttle needs them.
src_exec="nsenter --net=/run/netns/$ns_src"
dst_exec="nsenter --net=/run/netns/$ns_dst"

work="" # scratch (JSON, FIFOs, rows, private lmig copy)
out=""  # the received image (tmpfs)
ns_up=0
rpid="" # lmig recv or iperf3 -s
dpid="" # lmig dirty

log() {
	echo "$*" >&2
}

die() {
	echo "live: $*" >&2
	exit 1
}

# Prints a failure so that it cannot be missed and remembers it for the end.
fail() {
	log ""
	log "*** FAIL: $*"
	log ""
	echo "$*" >>"$work/failures"
}

stop_writer() {
	[ -n "$dpid" ] || return 0
	# A paused writer acts on SIGTERM once it is continued.
	kill -TERM "$dpid" 2>/dev/null || true
	kill -CONT "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
	dpid=""
}

cleanup() {
	rc=$?
	trap - EXIT HUP INT PIPE TERM
	if [ -n "$rpid" ]; then
		kill "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
	fi
	stop_writer
	if [ "$ns_up" = 1 ]; then
		sh "$here/netns.sh" down "$ns_src" "$ns_dst" || rc=1
	fi
	if [ -n "$out" ]; then rm -f "$out" "$out.partial"; fi
	if [ -n "$work" ]; then rm -rf "$work"; fi
	exit "$rc"
}

# Reads one line from FIFO $1 into $line (empty if the writer closed it
# without writing, i.e. failed).
read_fifo() {
	line=""
	read -r line <"$1" || true
}

# Arithmetic on decimals: calc EXPR VAR=VALUE...
calc() {
	e=$1
	shift
	awk "$@" "BEGIN { print $e }"
}

check_prereqs() {
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
	for t in jq iperf3 ip tc ss cmp numfmt timeout; do
		command -v "$t" >/dev/null ||
			die "$t not found; run 'sh scripts/install-deps.sh bench' as root"
	done
	[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
	size=$(numfmt --from=iec "$LIVE_SIZE" 2>/dev/null) || die "bad LIVE_SIZE '$LIVE_SIZE'"
	if [ "$size" -le 0 ] || [ $((size % 4096)) -ne 0 ]; then
		die "LIVE_SIZE must be a positive multiple of 4K"
	fi
	# The object (memfd) and the received image, both in memory.
	avail=$(df -B1 --output=avail /dev/shm | tail -n 1)
	[ "$avail" -gt $((2 * size + 268435456)) ] ||
		die "/dev/shm has $((avail >> 20)) MiB free; need $((2 * size >> 20)) MiB (lower LIVE_SIZE)"
}

# The link rate in MB/s: one iperf3 stream from source to destination.
measure_link() {
	$dst_exec $pin_dst timeout $((IPERF_TIME + 30)) iperf3 -s -1 -B "$DST_ADDR" -p 5201 \
		>/dev/null 2>&1 &
	rpid=$!
	i=0
	while [ -z "$($dst_exec ss -Hltn "sport = :5201")" ]; do
		i=$((i + 1))
		[ $i -le 50 ] || die "iperf3 -s did not start"
		sleep 0.1
	done
	$src_exec $pin_src timeout $((IPERF_TIME + 30)) iperf3 -c "$DST_ADDR" -p 5201 \
		-t "$IPERF_TIME" -J >"$work/iperf.json" 2>&1 || true
	wait "$rpid" 2>/dev/null || true
	rpid=""
	link=$(jq -e '.end.sum_received.bits_per_second / 8e6' "$work/iperf.json" 2>/dev/null) ||
		die "iperf3 failed: $(jq -r '.error // empty' "$work/iperf.json" 2>/dev/null)"
	log "link: iperf3 $(calc 'l' -v l="$link") MB/s"
}

# Starts a writer of $1 bytes at $2 bytes/s in the source namespace; sets
# $mem (the path for --mem) and $pid, or returns 1 with the reason in
# $work/dirty.err.
start_writer() {
	$src_exec $pin_src "$lmig" dirty --mem memfd:live --size "$1" --rate "$2" --uffd \
		--no-progress --json --ready-fd 3 3>"$work/ready" >"$work/dirty.json" \
		2>"$work/dirty.err" &
	dpid=$!
	read_fifo "$work/ready"
	if [ -z "$line" ]; then
		wait "$dpid" 2>/dev/null || true
		dpid=""
		return 1
	fi
	mem=$line
	pid=${mem#/proc/}
	pid=${pid%%/*}
}

# For tracker $1 = kmod on a kernel without loadable modules, says so.
nomod() {
	if [ "$1" = kmod ] && [ ! -e /proc/modules ]; then
		echo "; this kernel cannot load modules (no /proc/modules)"
	fi
}

# Which trackers run; the others are reported with the reason.
pick_trackers() {
	known=$("$lmig" send --help | sed -n 's/.*--tracker NAME *dirty tracker: \(.*\) (default auto.*/\1/p' |
		tr -d ',' | sed 's/auto//')
	[ -n "$known" ] || die "cannot find the trackers in 'lmig send --help'"
	want=$LIVE_TRACKERS
	if [ -z "$want" ]; then
		want=$known
		case " $known " in *" kmod "*) ;; *) want="$want kmod" ;; esac
	fi
	trackers=""
	: >"$work/skipped"
	start_writer 4194304 1M || die "lmig dirty failed: $(tail -n 1 "$work/dirty.err")"
	for t in $want; do
		case " $known " in
		*" $t "*) ;;
		*)
			echo "$t: not a tracker of this lmig (\`lmig send --tracker\` knows: $(echo "$known" | sed 's/ /, /g'))$(nomod "$t")" >>"$work/skipped"
			continue
			;;
		esac
		if $src_exec "$lmig" dirtyrate --mem "$mem" --pid "$pid" --tracker "$t" --interval 100 \
			--count 1 --json >/dev/null 2>"$work/probe.err"; then
			trackers="$trackers $t"
		else
			echo "$t: $(tail -n 1 "$work/probe.err" | sed 's/^lmig dirtyrate: //')$(nomod "$t")" >>"$work/skipped"
		fi
	done
	stop_writer
	trackers=${trackers# }
	[ -n "$trackers" ] || die "no tracker works here: $(cat "$work/skipped")"
	log "trackers: $trackers"
	while read -r s; do log "skipped: $s"; done <"$work/skipped"
}

# One live migration with tracker $1, writer at $2 MB/s, --downtime-ms $3.
# Appends a row to $work/rows.
run_live() {
	tracker=$1 rate=$2 budget=$3
	what="$tracker at $rate MB/s, --downtime-ms $budget"
	rm -f "$out" "$out.partial" "$work"/send.* "$work"/recv.*
	if ! start_writer "$size" "${rate}M"; then
		fail "$what: lmig dirty failed: $(tail -n 1 "$work/dirty.err")"
		echo "| $tracker | $rate | | $budget | **failed** (lmig dirty) | | | | | | | | | |" >>"$work/rows"
		return
	fi
	$dst_exec $pin_dst timeout $((LIVE_TIMEOUT + 120)) "$lmig" recv --listen "$DST_ADDR:0" \
		--out "$out" --no-sync --json --no-progress --accept-timeout 30 --ready-fd 3 \
		3>"$work/port" >"$work/recv.json" 2>"$work/recv.err" &
	rpid=$!
	read_fifo "$work/port"
	send_rc=0 recv_rc=0
	if [ -n "$line" ]; then
		$src_exec $pin_src timeout $((LIVE_TIMEOUT + 120)) "$lmig" send --mem "$mem" --pid "$pid" \
			--freeze signal --tracker "$tracker" --downtime-ms "$budget" \
			--timeout "$LIVE_TIMEOUT" --json --no-progress --to "$DST_ADDR:$line" \
			>"$work/send.json" 2>"$work/send.err" || send_rc=$?
	else
		send_rc="not run (recv did not report a port)"
	fi
	if [ "$send_rc" != 0 ]; then stop_after "$rpid" 10; fi
	{ wait "$rpid"; } 2>/dev/null || recv_rc=$?
	rpid=""

	# One line of fields; "null" for what a report lacks.
	read -r status converged rounds total_ms downtime_ms bytes_wire last_pred tracked <<EOF
$(jq -r '[.status, .converged, (.rounds | length), .total_ms, .downtime_ms, .bytes_wire,
	(.rounds | last | .predicted_downtime_ms),
	([.rounds[] | select(.round > 0 and (.frozen | not)) | .dirty_mbps] |
		if length > 0 then add / length else 0 end)] | map(tostring) | join(" ")' \
	"$work/send.json" 2>/dev/null)
EOF
	status=${status:-none}
	if [ -n "$LIVE_KEEP" ]; then
		cp "$work/send.json" "$LIVE_KEEP/send-$tracker-$rate-$budget.json" 2>/dev/null || true
	fi
	r_status=$(jq -r .status "$work/recv.json" 2>/dev/null) || r_status=""
	r_status=${r_status:-none}
	why=""
	image="–"
	if [ "$status" = completed ] && [ "$send_rc" = 0 ]; then
		[ "$recv_rc" = 0 ] && [ "$r_status" = completed ] ||
			why="recv exit $recv_rc, status '$r_status'"
		# lmig send leaves the writer paused after the commit: compare now.
		state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d ' ' -f 1)
		if [ "$state" != T ]; then
			why="${why:+$why; }the writer is not paused after the commit (state $state)"
			image="not checked"
		elif cmp -s "$mem" "$out"; then
			image=identical
		else
			image="**MISMATCH**"
			why="${why:+$why; }RECEIVED IMAGE DIFFERS FROM THE PAUSED SOURCE ($(cmp "$mem" "$out" 2>&1 | head -n 1))"
		fi
	elif [ "$converged" = false ]; then
		# Not converging is a result: the sender gives up, resumes the
		# writer, and the receiver must not have committed anything.
		image="none (not converged)"
		[ ! -e "$out" ] || why="an image was committed although send failed"
		[ "$recv_rc" != 0 ] || why="${why:+$why; }recv exited 0 although send failed"
	else
		why="send exit $send_rc, status '${status:-no report}': $(tail -n 2 "$work/send.err" | tr '\n' ' ')"
	fi
	stop_writer
	if [ -n "$why" ]; then fail "$what: $why"; fi
	if [ "$status" = none ] || [ "$total_ms" = null ]; then
		echo "| $tracker | $rate | | $budget | **failed** | | | | | | | | | |" >>"$work/rows"
		return
	fi

	total_s=$(calc 't / 1000' -v t="$total_ms")
	wire_s=$(calc 'w / (l * 1e6)' -v w="$bytes_wire" -v l="$link")
	ratio=$(calc 't / w' -v t="$total_s" -v w="$wire_s")
	t_goal=$(calc '(r <= g) ? "PASS" : "MISS"' -v r="$ratio" -v g="$TIME_GOAL")
	if [ "$converged" = true ]; then
		conv=yes
		down=$(calc 'sprintf("%.1f", d)' -v d="$downtime_ms")
	else
		conv="**no** (last predicted $(calc 'sprintf("%.0f", p)' -v p="$last_pred") ms)"
		down="–"
	fi
	d_goal="–"
	if [ "$rate" = "$DOWNTIME_GOAL_RATE" ]; then
		if [ "$converged" = true ]; then
			d_goal=$(calc '(d <= g) ? "PASS" : "MISS"' -v d="$downtime_ms" -v g="$DOWNTIME_GOAL_MS")
		else
			d_goal="MISS (not converged)"
		fi
	fi
	[ -z "$why" ] || image="$image **FAILED**"
	printf '| %s | %s | %.1f | %s | %s | %s | %.2f | %s | %.1f | %.2f | %.2f | %s | %s | %s |\n' \
		"$tracker" "$rate" "$tracked" "$budget" "$conv" "$rounds" "$total_s" "$down" \
		"$(calc 'w / 1048576' -v w="$bytes_wire")" "$wire_s" "$ratio" "$image" "$d_goal" "$t_goal" \
		>>"$work/rows"
	log "$(printf '%-5s %3s MB/s  budget %3s ms  %-3s  %2s rounds  %6.2f s  downtime %s ms  %.2f x wire time  image %s' \
		"$tracker" "$rate" "$budget" "${conv%% *}" "$rounds" "$total_s" "$down" "$ratio" "$image")"
}

report() {
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || commit=unknown
	if [ -n "$(git -C "$top" status --porcelain -- user include 2>/dev/null)" ]; then
		commit="$commit with uncommitted changes"
	fi
	echo "#### Live migration: $((size >> 20)) MiB memfd over the 1 Gbit/s link, $started"
	echo ""
	echo "- Machine: Linux $(uname -r), $(nproc) CPUs (${cpu:-unknown CPU}); load average at start: $load0"
	echo "- lmig: \`$("$lmig" version | head -n 1)\`; source tree at commit $commit"
	echo "- Link: veth pair between two network namespaces, tbf 1gbit on the sending side;" \
		"iperf3 (one stream, $IPERF_TIME s): $(calc 'sprintf("%.1f", l)' -v l="$link") MB/s, the link rate below"
	echo "- Writer: \`lmig dirty --mem memfd:live --size $size --rate RATE --uffd\` (counter pattern, random whole pages, wall pace)"
	echo "- Sender: \`lmig send --mem /proc/PID/fd/N --pid PID --freeze signal --tracker T" \
		"--downtime-ms B --timeout $LIVE_TIMEOUT --json\` (default --max-rounds 30, channels, compression)"
	if [ -n "$pin_src" ]; then
		echo "- Writer and sender pinned to CPU 0 (the source host), receiver to CPU 1"
	fi
	echo "- Trackers run: $trackers"
	while read -r s; do echo "- Skipped $s"; done <"$work/skipped"
	echo ""
	echo "| tracker | dirty MB/s | tracked MB/s | --downtime-ms | converged | rounds | total s | downtime ms | wire MiB | wire s | total / wire s | image | downtime ≤ $DOWNTIME_GOAL_MS ms at $DOWNTIME_GOAL_RATE MB/s | total ≤ $TIME_GOAL × wire s |"
	echo "|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|---|---|---|"
	cat "$work/rows"
	echo ""
	echo "For context, measured separately (not in this run; QEMU 7.2 under TCG, 1 GiB guest with" \
		"about 710 MiB non-zero, loopback, not the 1 Gbit/s link): dirtying 20 MB/s, native tcp" \
		"migration took 1.5–1.6 s with 31–51 ms downtime; at 125 MB/s 6.6 s and 27 ms; multifd" \
		"(2 channels) + zstd 7.9 s and 291 ms."
	echo ""
	if [ -s "$work/failures" ]; then
		echo "**FAILED RUNS**"
		echo ""
		sed 's/^/- /' "$work/failures"
		echo ""
	fi
	echo "Wall time: $(calc 'sprintf("%.0f", b - a)' -v a="$t0" -v b="$(date +%s.%N)") s;" \
		"load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo ""
}

main() {
	check_prereqs
	trap cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 141' PIPE
	trap 'exit 143' TERM
	t0=$(date +%s.%N)
	started=$(date -u '+%Y-%m-%d %H:%M UTC')
	load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
	# Harvests and the writer's write faults need CPU: other work on the
	# machine lengthens harvests, and so predicted and real downtimes.
	if awk '{ exit !($1 >= 0.5) }' /proc/loadavg; then
		log "live: warning: load average ${load0%% *} at start; harvests and downtimes will be longer"
	fi
	work=$(mktemp -d /tmp/lmig-live.XXXXXX)
	out=/dev/shm/lmig-live-$$.img
	mkfifo "$work/ready" "$work/port"
	: >"$work/rows"
	# A private copy: a rebuild during the run must not mix two builds.
	cp "$LMIG" "$work/lmig"
	lmig=$work/lmig

	pin_src="" pin_dst=""
	if [ "$BENCH_PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
		pin_src="taskset -c 0" pin_dst="taskset -c 1"
	fi

	ns_up=1
	sh "$here/netns.sh" up "$ns_src" "$ns_dst" || die "cannot set up the namespaces"
	log "link: $ns_src ($SRC_ADDR) -> $ns_dst ($DST_ADDR), tbf 1gbit"
	measure_link
	pick_trackers
	for rate in $LIVE_RATES; do
		for tracker in $trackers; do
			for budget in $LIVE_BUDGETS; do
				run_live "$tracker" "$rate" "$budget"
			done
		done
	done
	log ""
	report
	if [ -s "$work/failures" ]; then
		log "live: $(wc -l <"$work/failures") run(s) FAILED, see above"
		exit 1
	fi
}

main "$@"

#!/bin/sh
# lmig benchmark (make bench): throughput of `lmig send` on three kinds of
# memory image in each compression mode, next to iperf3 on the same path,
# over loopback and over a 1 Gbit/s link between two network namespaces.
# Prints Markdown tables (Documentation/benchmarks.md explains them) and
# writes them to bench/results-latest.md.  Needs root for the namespaces.
#
# Knobs (environment):
#   BENCH_SIZE   image size, K/M/G suffixes, a multiple of 1M (default 1G)
#   REPS         runs per cell on loopback (default 5)
#   NET_REPS     runs per cell on the 1 Gbit/s link (default 3)
#   BENCH_PATHS  paths to measure: "loopback netns" (default both)
#   BENCH_IMAGES images, in run order: "random binary halfzero" (default all)
#   BENCH_MODES  compression modes, in run order: "none lz4 auto" (default all)
#   IPERF_TIME   seconds per iperf3 run (default 5)
#   BENCH_PIN    1 (default): senders on CPU 0, receivers on CPU 1 (iperf3
#                and lmig alike); 0: wherever the scheduler puts them
#   LMIG         the lmig binary (default user/lmig)
#
# Default run: 45 loopback migrations of 1 GiB (0.5-2.5 s each) and 27 over
# the 1 Gbit/s link (3-9 s each), eight iperf3 runs, image making and
# checks: about 5 minutes on 2 CPUs.  The link path varies little from run to run,
# so NET_REPS=1 saves two minutes when a rough number will do; it keeps
# three by default because `auto` adapts while it runs and the 1.6x target
# is judged on it.  Loopback varies a lot on a small machine (sender,
# receiver and both TCP stacks share the CPUs): compare medians, not runs.
#
# A benchmark reports; it does not judge: the exit status is 0 whether the
# targets are met or not, and non-zero only if a run failed (lmig error,
# bad status, received image different from the source) or setup failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
top=$(cd "$here/.." && pwd)

BENCH_SIZE=${BENCH_SIZE:-1G}
REPS=${REPS:-5}
NET_REPS=${NET_REPS:-3}
BENCH_PATHS=${BENCH_PATHS:-loopback netns}
IPERF_TIME=${IPERF_TIME:-5}
BENCH_PIN=${BENCH_PIN:-1}
LMIG=${LMIG:-$top/user/lmig}

# Two CPUs shared by sender and receiver: when the scheduler stacks both on
# one CPU for a while, a loopback run halves, and single runs scattered
# from 0.9 to 1.9 GB/s.  Pinned the same way, iperf3 and lmig compare
# like with like and the runs agree within a few percent.
pin_src="" pin_dst=""
if [ "$BENCH_PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_src="taskset -c 0" pin_dst="taskset -c 1"
fi

IMAGES=${BENCH_IMAGES:-random binary halfzero}
MODES=${BENCH_MODES:-none lz4 auto}
LOOP_ADDR=127.0.0.1
NET_ADDR=198.18.0.2 # the receiving end of netns.sh's link (DST_ADDR there)

# Everything the run creates, for cleanup().
work=""         # scratch: JSON, FIFO, raw results, frozen lmig binary
shm=""          # images and received images (tmpfs, like guest memory)
ns_src=lmigb-src-$$
ns_dst=lmigb-dst-$$
ns_up=0         # 1 once netns.sh up was called (even if it failed midway)
bgpid=""        # the one background process (recv or iperf3 -s), if any

log() {
	echo "$*" >&2
}

die() {
	echo "bench: $*" >&2
	exit 1
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$bgpid" ]; then
		kill "$bgpid" 2>/dev/null || true
		wait "$bgpid" 2>/dev/null || true
	fi
	if [ "$ns_up" = 1 ]; then
		sh "$here/netns.sh" down "$ns_src" "$ns_dst" || rc=1
	fi
	if [ -n "$shm" ]; then rm -rf "$shm"; fi
	if [ -n "$work" ]; then rm -rf "$work"; fi
	exit "$rc"
}

now() {
	date +%s.%N
}

since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# Appends one tab-separated record to the raw results (see report.awk).
record() {
	(IFS=$(printf '\t'); echo "$*") >>"$work/results.tsv"
}

# Prints a failure so that it cannot be missed and remembers it for the end.
fail() {
	log ""
	log "*** FAIL: $*"
	log ""
	echo "$*" >>"$work/failures"
}

# The last lines lmig printed on stderr, on one line, for a failure message.
stderr_tail() {
	for f in "$work/send.err" "$work/recv.err"; do
		if [ -s "$f" ]; then
			printf '; %s stderr: %s' "$(basename "$f" .err)" "$(tail -n 3 "$f" | tr '\n' ' ')"
		fi
	done
}

check_prereqs() {
	for t in jq iperf3 ip tc ss cmp numfmt timeout; do
		command -v "$t" >/dev/null ||
			die "$t not found; run 'sh scripts/install-deps.sh bench' as root"
	done
	[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
	for name in $IMAGES; do
		case $name in random | binary | halfzero) ;; *) die "unknown image '$name' in BENCH_IMAGES" ;; esac
	done
	for mode in $MODES; do
		case $mode in none | lz4 | auto) ;; *) die "unknown mode '$mode' in BENCH_MODES" ;; esac
	done
	case " $BENCH_PATHS " in
	*" netns "*) [ "$(id -u)" = 0 ] || die "the netns path needs root (or BENCH_PATHS=loopback)" ;;
	esac
	size=$(numfmt --from=iec "$BENCH_SIZE" 2>/dev/null) || die "bad BENCH_SIZE '$BENCH_SIZE'"
	if [ "$size" -le 0 ] || [ $((size % 1048576)) -ne 0 ]; then
		die "BENCH_SIZE must be a positive multiple of 1M"
	fi
	# Three images and one received copy live in tmpfs at once.
	avail=$(df -B1 --output=avail /dev/shm | tail -n 1)
	[ "$avail" -gt $((4 * size + 268435456)) ] ||
		die "/dev/shm has $((avail >> 20)) MiB free; need $((4 * size >> 20)) MiB (lower BENCH_SIZE)"
}

# Describes image $1 for the images table.
image_desc() {
	case $1 in
	random) echo "bytes from /dev/urandom: incompressible" ;;
	binary) echo "system libraries and executables, concatenated: code and data" ;;
	halfzero) echo "64 KiB of zero pages, 64 KiB of \`binary\`'s non-zero pages, alternating" ;;
	esac
}

# Makes the images of $IMAGES, plus binary if halfzero needs it as source.
make_images() {
	for name in random binary halfzero; do
		case " $IMAGES " in
		*" $name "*) ;;
		*" halfzero "*) [ "$name" = binary ] || continue ;;
		*) continue ;;
		esac
		t0=$(now)
		src=""
		[ "$name" = halfzero ] && src=$shm/binary.img
		# shellcheck disable=SC2086 # no SRC argument unless halfzero
		sh "$here/mkimage.sh" "$name" "$size" "$shm/$name.img" $src ||
			die "cannot make the $name image"
		log "image $name: $((size >> 20)) MiB in $(since "$t0") s"
	done
	# In run order, which is the order of the tables.
	for name in $IMAGES; do
		record image "$name" "$size" "$(image_desc "$name")"
	done
}

# A TCP port nobody listens on (in the current namespace), for iperf3 -s.
free_port() {
	p=$((20000 + $$ % 20000))
	while [ -n "$(ss -Hltn "sport = :$p")" ]; do
		p=$((p + 1))
	done
	echo "$p"
}

# Waits up to 5 s for a listener on port $1, run through $dst_exec.
wait_listen() {
	i=0
	while [ -z "$($dst_exec ss -Hltn "sport = :$1")" ]; do
		i=$((i + 1))
		[ $i -le 50 ] || return 1
		sleep 0.1
	done
}

# One iperf3 measurement (one stream, like the baseline a user would take).
run_iperf() {
	rep=$1
	if [ -n "$dst_exec" ]; then iport=5201; else iport=$(free_port); fi
	$dst_exec $pin_dst timeout $((IPERF_TIME + 30)) iperf3 -s -1 -B "$dst_addr" -p "$iport" \
		>/dev/null 2>"$work/iperf-s.err" &
	bgpid=$!
	irc=0
	if wait_listen "$iport"; then
		$src_exec $pin_src timeout $((IPERF_TIME + 30)) iperf3 -c "$dst_addr" -p "$iport" \
			-t "$IPERF_TIME" -J >"$work/iperf.json" 2>&1 || irc=$?
	else
		irc="no listener"
	fi
	# A server whose client never came would wait for its timeout.
	if [ "$irc" != 0 ]; then kill "$bgpid" 2>/dev/null || true; fi
	wait "$bgpid" 2>/dev/null || true
	bgpid=""
	mbps=$(jq -e '.end.sum_received.bits_per_second / 8e6' "$work/iperf.json" 2>/dev/null) ||
		mbps=""
	if [ "$irc" != 0 ] || [ -z "$mbps" ]; then
		fail "$path iperf3 rep $rep: exit $irc $(jq -r '.error // empty' "$work/iperf.json" 2>/dev/null)"
		record iperf "$path" "$rep" FAIL
		return
	fi
	record iperf "$path" "$rep" "$mbps"
	log "$(printf '%-8s %-8s %-4s rep %d/%d %8.1f MB/s' "$path" iperf3 "" "$rep" "$reps" "$mbps")"
}

# Prints the fields run_lmig needs from one lmig JSON report, on one line
# (nothing for a missing or unparsable report, which leaves them empty).
report_fields() {
	jq -r '[.status, .throughput_mbps, .bytes_wire, .bytes_total,
		.pages_zero, .pages_total, .digest, .zerocopy, .channels] | map(tostring) | join(" ")' "$1" 2>/dev/null || true
}

# One migration of image $1 in mode $2 (rep $3) from $src_exec to $dst_exec;
# checks it and records the result.  The image is compared byte for byte on
# the first rep of each cell; later reps rely on lmig's digest, which the
# receiver verifies and both sides report.
run_lmig() {
	name=$1 mode=$2 rep=$3
	img=$shm/$name.img out=$shm/received.img
	rm -f "$out" "$out.partial" "$work/send.json" "$work/recv.json" "$work/send.err" \
		"$work/recv.err"
	# recv writes its port to the FIFO once it listens: no sleep, no race.
	$dst_exec $pin_dst timeout "$limit" "$lmig" recv --listen "$dst_addr:0" --out "$out" \
		--no-sync --json --no-progress --accept-timeout 30 --ready-fd 3 \
		3>"$work/ready" >"$work/recv.json" 2>"$work/recv.err" &
	bgpid=$!
	port="" send_rc=0 recv_rc=0
	read -r port <"$work/ready" || true
	if [ -n "$port" ]; then
		$src_exec $pin_src timeout "$limit" "$lmig" send --mem "$img" --to "$dst_addr:$port" \
			--compress "$mode" --json --no-progress \
			>"$work/send.json" 2>"$work/send.err" || send_rc=$?
	else
		send_rc="not run (recv did not report a port)"
	fi
	# A receiver whose sender gave up early would sit out its accept timeout.
	if [ "$send_rc" != 0 ]; then stop_after "$bgpid" 5; fi
	# (The braces keep the shell's "Terminated" note for a stopped recv quiet.)
	{ wait "$bgpid"; } 2>/dev/null || recv_rc=$?
	bgpid=""
	if [ "$recv_rc" = 143 ] && [ "$send_rc" != 0 ]; then recv_rc="143 (stopped: the sender had failed)"; fi

	read -r s_status s_mbps s_wire s_total s_zero s_pages s_digest s_zc s_ch <<EOF
$(report_fields "$work/send.json")
EOF
	read -r r_status _ _ _ _ _ r_digest _ _ <<EOF
$(report_fields "$work/recv.json")
EOF
	what="$path $name $mode rep $rep"
	why=""
	[ "$send_rc" = 0 ] || why="$why; send exit $send_rc"
	[ "$recv_rc" = 0 ] || why="$why; recv exit $recv_rc"
	[ "$s_status" = completed ] || why="$why; send status '${s_status:-no report}'"
	[ "$r_status" = completed ] || why="$why; recv status '${r_status:-no report}'"
	# Both say completed: check they agree on what completed.
	if [ -z "$why" ]; then
		[ "$s_digest" = "$r_digest" ] || why="$why; digests differ ($s_digest vs $r_digest)"
		[ "$s_total" = "$size" ] || why="$why; send bytes_total $s_total, image $size"
	fi
	if [ -z "$why" ] && [ "$rep" = 1 ] && ! cmp -s "$img" "$out"; then
		why="; received image differs from the source (cmp)"
	fi
	# The received image stays until the next run removes it just before
	# its receiver starts, which then gets these pages back at once.  On
	# the benchmark machine (a VM whose host lazily backs guest memory and
	# takes back what stays free for a few seconds) pages freed earlier
	# cost the receiver a host fault each: its writes ran 3x slower.
	if [ -n "$why" ]; then
		fail "$what: ${why#; }$(stderr_tail)"
		[ "$rep" = warm-up ] || record lmig "$path" "$name" "$mode" "$rep" FAIL
		return
	fi
	if [ "$rep" = warm-up ]; then
		log "$(printf '%-8s %-8s %-4s warm-up  %8.1f MB/s  (not counted)' "$path" "$name" "$mode" "$s_mbps")"
		return
	fi
	record lmig "$path" "$name" "$mode" "$rep" "$s_mbps" "$s_wire" "$s_total" "$s_zero" "$s_pages" \
		"$s_zc" "$s_ch"
	log "$(printf '%-8s %-8s %-4s rep %d/%d %8.1f MB/s  wire/image %.3f' "$path" "$name" \
		"$mode" "$rep" "$reps" "$s_mbps" "$(awk -v w="$s_wire" -v t="$s_total" 'BEGIN { print w / t }')")"
}

# Sets up path $1 (the variables run_iperf and run_lmig use).
path_setup() {
	case $1 in
	loopback)
		title="Loopback (127.0.0.1)"
		dst_addr=$LOOP_ADDR src_exec="" dst_exec="" reps=$REPS
		;;
	netns)
		title="1 Gbit/s link (veth pair between two network namespaces, tbf 1gbit)"
		ns_up=1
		sh "$here/netns.sh" up "$ns_src" "$ns_dst" || die "cannot set up the namespaces"
		dst_addr=$NET_ADDR reps=$NET_REPS
		src_exec="ip netns exec $ns_src" dst_exec="ip netns exec $ns_dst"
		;;
	*) die "unknown path '$1' in BENCH_PATHS (loopback, netns)" ;;
	esac
}

path_teardown() {
	if [ "$1" = netns ]; then
		sh "$here/netns.sh" down "$ns_src" "$ns_dst"
		ns_up=0
	fi
}

# Every cell once per rep, reps outermost, so that a slow spell of the
# machine spreads over all cells instead of sinking one of them.
bench_path() {
	path=$1
	path_setup "$path"
	record path "$path" "$title"
	r=1
	while [ "$r" -le "$reps" ]; do
		run_iperf "$r"
		# The first loopback migration after the iperf3 run came out at a
		# third to half speed: its receiver wrote into pages the host had
		# taken back while they sat free during iperf3 (see run_lmig).  One
		# untimed run absorbs that, so it does not land on whichever cell
		# comes first.  The link path is bound by tbf and shows no such effect.
		if [ "$path" = loopback ]; then
			run_lmig "${IMAGES%% *}" none warm-up
		fi
		for name in $IMAGES; do
			for mode in $MODES; do
				run_lmig "$name" "$mode" "$r"
			done
		done
		r=$((r + 1))
	done
	path_teardown "$path"
}

header() {
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || commit=unknown
	if [ -n "$(git -C "$top" status --porcelain -- user include 2>/dev/null)" ]; then
		commit="$commit with uncommitted changes"
	fi
	echo "### lmig benchmark, $started"
	echo ""
	echo "- Machine: Linux $(uname -r), $(nproc) CPUs (${cpu:-unknown CPU}), $mem RAM"
	echo "- lmig: \`$("$lmig" version | head -n 1)\`; source tree at commit $commit"
	echo "- Load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
	echo "- Images of $((size >> 20)) MiB in /dev/shm; $REPS run(s) per cell on loopback," \
		"$NET_REPS on the 1 Gbit/s link; lmig send with its default channels and" \
		"zerocopy; iperf3: one stream, $IPERF_TIME s"
	if [ -n "$pin_src" ]; then
		echo "- Senders (iperf3 -c, lmig send) pinned to CPU 0, receivers (iperf3 -s, lmig recv) to CPU 1"
	else
		echo "- Not pinned: sender and receiver run where the scheduler puts them"
	fi
	echo "- MB/s is 10^6 bytes of image (lmig) or payload (iperf3) per second"
	echo ""
}

main() {
	check_prereqs
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	t_start=$(now)
	started=$(date -u '+%Y-%m-%d %H:%M UTC')
	work=$(mktemp -d /tmp/lmig-bench.XXXXXX)
	shm=$(mktemp -d /dev/shm/lmig-bench.XXXXXX)
	mkfifo "$work/ready"
	: >"$work/results.tsv"
	# A private copy: a rebuild of user/lmig during the run must not mix
	# two builds in one table.
	cp "$LMIG" "$work/lmig"
	lmig=$work/lmig
	# Generous: 10 MB/s plus two minutes; only a hung run gets this far.
	limit=$((120 + size / 10000000))

	header >"$work/report.md"
	# Loopback numbers are CPU-bound: other work on the machine shows up in them.
	if awk '{ exit !($1 >= 0.5) }' /proc/loadavg; then
		log "bench: warning: load average $(cut -d ' ' -f 1 /proc/loadavg) at start; loopback numbers will be noisy"
	fi
	make_images
	for pth in $BENCH_PATHS; do
		bench_path "$pth"
	done

	awk -f "$here/report.awk" "$work/results.tsv" >>"$work/report.md"
	if [ -s "$work/failures" ]; then
		{
			echo "#### FAILED RUNS"
			echo ""
			sed 's/^/- /' "$work/failures"
			echo ""
		} >>"$work/report.md"
	fi
	echo "Wall time: $(since "$t_start") s; load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)" \
		>>"$work/report.md"
	cp "$work/report.md" "$here/results-latest.md"
	log ""
	cat "$work/report.md"
	if [ -s "$work/failures" ]; then
		log "bench: $(wc -l <"$work/failures") run(s) FAILED, see above"
		exit 1
	fi
}

main "$@"

#!/bin/sh
# QEMU benchmark (make bench): a live QEMU guest migrated natively and
# through lmig, over loopback and over the 1 Gbit/s namespace link.
#
# The guest (selftests/qemu/guest.c): Debian's kernel under QEMU TCG,
# 1 GiB of RAM, 600 MiB of it filled with text, binary and zero pages
# and rewritten at 20 MB/s while it migrates.  Each run boots a fresh
# source, starts a destination QEMU and migrates over QMP
# (selftests/qemu/qmig.py) with QEMU's max-bandwidth raised to 32 GiB/s:
#
#   native tcp            migrate tcp:DST:PORT
#   native multifd+zstd   the same, multifd with 2 channels, zstd
#   lmig pipe             migrate "exec:lmig pipe send --to DST:PORT",
#                         -incoming "exec:lmig pipe recv --listen DST:PORT"
#   lmig proxy multifd    lmig proxy send/recv between unix: sockets,
#                         multifd with 2 channels
#
# Prints a Markdown table on stdout (make bench appends it to
# bench/results-latest.md): QEMU's total time and downtime (query-migrate),
# bytes on the wire: what the sending interface transmitted during the
# migration (headers and ACKs included; loopback runs in a namespace of its
# own so lo carries nothing else), and what QEMU (ram.transferred, which
# QEMU 7.2 counts before multifd compression) or the sending lmig
# (bytes_wire) counted; ratios against native tcp on the same
# path, and PASS/MISS against the targets: on the 1 Gbit/s link total
# time <= 0.6x native tcp with downtime no worse (<= native tcp's + 20 ms,
# the run-to-run spread of a tens-of-milliseconds downtime); on loopback
# total time <= 1.1x native tcp.  Progress goes to stderr.
#
# A second table is the switch-over over the QEMU_REPS runs of each cell
# (bench/qemu_stats.py): median and 90th percentile of QEMU's downtime,
# which is the source's view (it ends when the source wrote its last
# byte, wherever that byte still is), and of the pause the guest had,
# seen on the host's clock from the source's last console tick to the
# destination's first less the guest's own tick period (qmig.py's
# guest_pause_ms; the guest ticks every QEMU_TICK ms), each against
# native tcp with a Mann-Whitney U test.  With LMIG_BASE set, the lmig
# cases also run with that build (a baseline: the build before a change),
# interleaved with LMIG's run by run (the order swapped every repetition),
# and LMIG's rows are compared with its: a before/after that one
# machine's changing load weighs on equally.
#
# Knobs (environment): QEMU_PATHS ("loopback netns"), QEMU_CASES
# ("tcp zstd pipe proxy"), QEMU_REPS (runs per cell, median total time
# reported; default 1), QEMU_MEM (MiB, 1024), QEMU_TOUCH (MiB, 600),
# QEMU_RATE (MB/s, 20), QEMU_TICK (ms, 10), LMIG, LMIG_BASE (unset: none).
#
# Exit status 0 whether the targets are met or not; 1 if a run failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
QEMU_PATHS=${QEMU_PATHS:-loopback netns}
QEMU_CASES=${QEMU_CASES:-tcp zstd pipe proxy}
QEMU_REPS=${QEMU_REPS:-1}
QEMU_MEM=${QEMU_MEM:-1024}
QEMU_TOUCH=${QEMU_TOUCH:-600}
QEMU_RATE=${QEMU_RATE:-20}
QEMU_TICK=${QEMU_TICK:-10}
LMIG=${LMIG:-$top/user/lmig}
LMIG_BASE=${LMIG_BASE:-}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

ns_src=lmigq-src-$$
ns_dst=lmigq-dst-$$
ns_lo=lmigq-lo-$$
lo_up=0
work=""

log() { echo "$*" >&2; }
die() { echo "bench/qemu: $*" >&2; exit 1; }

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	bench_link_down || rc=1
	[ "$lo_up" = 1 ] && { ip netns del "$ns_lo" || rc=1; }
	[ -n "$work" ] && rm -rf "$work"
	exit "$rc"
}

command -v jq >/dev/null || die "jq not found; run 'sh scripts/install-deps.sh bench' as root"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (qemu-system-x86)"
[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
[ -z "$LMIG_BASE" ] || [ -x "$LMIG_BASE" ] || die "LMIG_BASE: $LMIG_BASE is not an executable"
initrd=$(sh "$top/selftests/qemu/mkguest.sh") || die "cannot build the guest"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d /dev/shm/lmig-bqemu.XXXXXX)
# A private copy: a rebuild during the run must not mix two builds.
cp "$LMIG" "$work/lmig"
[ -z "$LMIG_BASE" ] || cp "$LMIG_BASE" "$work/lmig-base"
: >"$work/results"
: >"$work/failures"

case_args() {
	case $1 in
	tcp) echo "--transport tcp" ;;
	zstd) echo "--transport tcp --multifd 2 --compress zstd" ;;
	pipe) echo "--transport pipe" ;;
	proxy) echo "--transport proxy --multifd 2" ;;
	*) die "unknown case '$1' in QEMU_CASES (tcp zstd pipe proxy)" ;;
	esac
}

case_title() {
	case $1 in
	tcp) echo "native tcp" ;;
	zstd) echo "native multifd (2) + zstd" ;;
	pipe) echo "lmig pipe (exec:)" ;;
	proxy) echo "lmig proxy, multifd (2)" ;;
	esac
}

# One migration with build $4 (lmig: LMIG, base: LMIG_BASE); appends "path
# case rep status total downtime wire dev pause build" to results.
run_one() {
	path=$1 cs=$2 rep=$3 build=${4:-lmig}
	bin=$work/lmig
	[ "$build" = base ] && bin=$work/lmig-base
	# Loopback runs in a namespace of its own, so its lo counts nothing
	# but this migration.
	ns_args="--src-ns $ns_lo --dst-ns $ns_lo --count-dev $ns_lo:lo"
	addr=127.0.0.1
	if [ "$path" = netns ]; then
		ns_args="--src-ns $ns_src --dst-ns $ns_dst --count-dev $ns_src:veth-src"
		addr=198.18.0.2
	fi
	mkdir -p "$work/run"
	# shellcheck disable=SC2046,SC2086
	$py "$top/selftests/qemu/qmig.py" --name "$path-$cs" $(case_args "$cs") \
		--work "$work/run" --mem "$QEMU_MEM" --touch "$QEMU_TOUCH" --rate "$QEMU_RATE" \
		--addr "$addr" $ns_args --lmig "$bin" --timeout 300 --boot-timeout 240 \
		--guest-append "pti=on guest_tick=$QEMU_TICK" \
		--initrd "$initrd" >"$work/res.json" 2>"$work/res.err" || true
	res=$(tail -n 1 "$work/res.json")
	status=$(printf '%s' "$res" | jq -r '.status // "none"' 2>/dev/null) || status=none
	err=$(printf '%s' "$res" | jq -r '.harness_error // empty' 2>/dev/null) || err="no result"
	dst=$(printf '%s' "$res" | jq -r '.dst_status // "none"' 2>/dev/null) || dst=none
	adv=$(printf '%s' "$res" | jq -r '(.dst_last_tick // 0) > (.dst_first_tick // 0) and
		(.dst_first_tick // 0) > (.src_tick_at_migrate // 0)' 2>/dev/null) || adv=false
	if [ "$status" != completed ] || [ "$dst" != running ] || [ "$adv" != true ] || [ -n "$err" ]; then
		ticks=$(printf '%s' "$res" | jq -r '"source at \(.src_tick_at_migrate), destination \(.dst_first_tick)..\(.dst_last_tick)"' 2>/dev/null) || ticks=""
		why="status $status, destination $dst, guest counter $ticks${err:+, $err}"
		log "*** FAIL $path $cs ($build): $why $(cat "$work/res.err")"
		echo "$path $cs ($build): $why" >>"$work/failures"
		# The destination's console shows why its guest stopped counting.
		if [ -s "$work/run/dst.serial" ]; then
			log "destination console: $(tr -d '\r' <"$work/run/dst.serial" | grep -v 'lmig-guest tick' | head -n 5 | tr '\n' ' ')"
		fi
		echo "$path $cs $rep FAIL - - - - - $build" >>"$work/results"
		return
	fi
	total=$(printf '%s' "$res" | jq -r '.total_time_ms')
	down=$(printf '%s' "$res" | jq -r '.downtime_ms')
	case $cs in
	pipe | proxy) wire=$(printf '%s' "$res" | jq -r '.lmig_bytes_wire // "-"') ;;
	*) wire=$(printf '%s' "$res" | jq -r '.ram_transferred') ;;
	esac
	pause=$(printf '%s' "$res" | jq -r '.guest_pause_ms // "-"')
	log "$(printf '%-8s %-6s %s rep %d: total %6d ms  downtime %4d ms  guest pause %s ms  wire %s bytes  (boot %s s)' \
		"$path" "$cs" "$build" "$rep" "$total" "$down" "$pause" "$wire" "$(printf '%s' "$res" | jq -r '.boot_s')")"
	dev=$(printf '%s' "$res" | jq -r '.dev_bytes // "-"')
	echo "$path $cs $rep completed $total $down $wire $dev $pause $build" >>"$work/results"
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
for path in $QEMU_PATHS; do
	case $path in
	loopback)
		[ "$(id -u)" = 0 ] || die "the benchmark needs root (network namespaces)"
		lo_up=1
		ip netns add "$ns_lo" && ip -n "$ns_lo" link set lo up || die "cannot make a namespace"
		;;
	netns)
		[ "$(id -u)" = 0 ] || die "the netns path needs root (or QEMU_PATHS=loopback)"
		bench_link_up "$ns_src" "$ns_dst" || die "cannot set up the namespaces"
		;;
	*) die "unknown path '$path' in QEMU_PATHS (loopback netns)" ;;
	esac
	r=1
	while [ "$r" -le "$QEMU_REPS" ]; do
		for cs in $QEMU_CASES; do
			case $cs in
			pipe | proxy)
				if [ -z "$LMIG_BASE" ]; then
					run_one "$path" "$cs" "$r"
				elif [ $((r % 2)) -eq 1 ]; then
					run_one "$path" "$cs" "$r" lmig
					run_one "$path" "$cs" "$r" base
				else
					run_one "$path" "$cs" "$r" base
					run_one "$path" "$cs" "$r" lmig
				fi ;;
			*) run_one "$path" "$cs" "$r" ;;
			esac
		done
		r=$((r + 1))
	done
	if [ "$path" = netns ]; then
		bench_link_down
	else
		ip netns del "$ns_lo"
		lo_up=0
	fi
done

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || commit=unknown
echo "### QEMU transport, $started"
echo ""
echo "- Machine: Linux $(uname -r), $(nproc) CPUs, load average at start $load0"
echo "- $(qemu-system-x86_64 --version | head -n 1), TCG; guest: $QEMU_MEM MiB, $QEMU_TOUCH MiB" \
	"filled (text, binary, zero pages) and rewritten at $QEMU_RATE MB/s; max-bandwidth 32 GiB/s"
echo "- lmig: \`$("$work/lmig" version | head -n 1)\`; source tree at commit $commit"
echo "- $QEMU_REPS run(s) per cell (median total time, and that run's downtime and bytes)"
[ -z "$LMIG_BASE" ] || echo "- baseline (LMIG_BASE, rows \"base\" below): \`$("$work/lmig-base" version | head -n 1)\`, $LMIG_BASE"
echo ""
awk -v title_tcp="$(case_title tcp)" -v title_zstd="$(case_title zstd)" \
    -v title_pipe="$(case_title pipe)" -v title_proxy="$(case_title proxy)" '
function title(c) { return c == "tcp" ? title_tcp : c == "zstd" ? title_zstd : c == "pipe" ? title_pipe : title_proxy }
$10 == "base" { next }
{
	k = $1 SUBSEP $2
	if (!(k in seen)) { seen[k] = 1; order[++n] = k }
	if ($4 != "completed") { failed[k] = 1; next }
	m = ++cnt[k]; tot[k, m] = $5; dn[k, m] = $6; wr[k, m] = $7; dv[k, m] = $8
}
function median(k,    i, j, t, idx, c) {
	c = cnt[k]
	for (i = 1; i <= c; i++) idx[i] = i
	for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++)
		if (tot[k, idx[j]] < tot[k, idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
	return idx[int((c + 1) / 2)]
}
END {
	for (i = 1; i <= n; i++) {
		k = order[i]
		if (cnt[k]) { m = median(k); T[k] = tot[k, m]; D[k] = dn[k, m]; W[k] = wr[k, m]; V[k] = dv[k, m] }
	}
	print "| path | transport | total time s | downtime ms | wire MB (interface) | MB counted by QEMU / lmig | time vs native tcp | target | result |"
	print "|---|---|---:|---:|---:|---:|---:|---|---|"
	for (i = 1; i <= n; i++) {
		k = order[i]; split(k, a, SUBSEP); p = a[1]; c = a[2]
		pname = p == "netns" ? "1 Gbit/s link" : "loopback"
		if (!cnt[k]) { printf "| %s | %s | FAIL | | | | | | |\n", pname, title(c); continue }
		base = p SUBSEP "tcp"
		ratio = (base in T) ? sprintf("%.2fx", T[k] / T[base]) : "-"
		target = "-"; result = ""
		if (c == "pipe" || c == "proxy") {
			if (p == "netns") {
				target = "<= 0.6x, downtime <= native + 20 ms"
				if (base in T) result = (T[k] <= 0.6 * T[base] && D[k] <= D[base] + 20) ? "PASS" : "MISS"
			} else {
				target = "<= 1.1x"
				if (base in T) result = (T[k] <= 1.1 * T[base]) ? "PASS" : "MISS"
			}
		}
		wire = W[k] == "-" ? "-" : sprintf("%.0f", W[k] / 1e6)
		dev = V[k] == "-" ? "-" : sprintf("%.0f", V[k] / 1e6)
		printf "| %s | %s | %.2f | %d | %s | %s | %s | %s | %s |\n", pname, title(c), T[k] / 1000, D[k], dev, wire, ratio, target, result
	}
}' "$work/results"
echo ""
echo "#### Switch-over, $QEMU_REPS run(s) per cell"
echo ""
$py "$here/qemu_stats.py" "$work/results"
echo ""
if [ -s "$work/failures" ]; then
	echo "#### FAILED RUNS"
	echo ""
	sed 's/^/- /' "$work/failures"
	echo ""
fi
echo "Wall time: $(($(date +%s) - t0)) s; load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo ""
[ ! -s "$work/failures" ]

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
# lmig qemu switches over once its predicted downtime is QRAM_DOWNTIME
# ms (default 1000): the scan tracker reads all of the guest's RAM at
# every harvest, the final one inside the downtime, and on a loaded
# 2-CPU machine that alone can pass QEMU's 300 ms.  Progress on stderr.
# Needs root.  Knobs: QEMU_RATES ("0 20 60"), QEMU_MEM (1024),
# QEMU_TOUCH (600), QRAM_DOWNTIME (1000), LMIG.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
QEMU_RATES=${QEMU_RATES:-0 20 60}
QEMU_MEM=${QEMU_MEM:-1024}
QEMU_TOUCH=${QEMU_TOUCH:-600}
QRAM_DOWNTIME=${QRAM_DOWNTIME:-1000}
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

# "rate case status total_ms downtime_ms dev_bytes" into results.
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
	echo "$rate qemu completed $(printf '%s' "$res" | jq -r '"\(.migrate_total_ms) \(.migrate_qemu_downtime_ms) \(.migrate_dev_bytes)"')" >>"$work/results"
	log "$(tail -n 1 "$work/results") rounds $(printf '%s' "$res" | jq -r .migrate_rounds)"
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
for rate in $QEMU_RATES; do
	native "$rate" tcp
	native "$rate" pipe
	viaqemu "$rate"
done

echo "### lmig qemu against QEMU's own migration, 1 Gbit/s link, $started"
echo ""
echo "- Machine: Linux $(uname -r), $(nproc) CPUs, load average at start $load0"
echo "- $(qemu-system-x86_64 --version | head -n 1), TCG; guest: $QEMU_MEM MiB (shared memfd)," \
	"$QEMU_TOUCH MiB filled, rewritten at the rate of each row; lmig qemu with --tracker scan" \
	"and --downtime-ms $QRAM_DOWNTIME, QEMU's downtime-limit left at 300 ms"
echo "- lmig: \`$("$work/lmig" version | head -n 1)\`"
echo ""
awk '
{ k = $1 SUBSEP $2; st[k] = $3; T[k] = $4; D[k] = $5; W[k] = $6
  if (!($1 in seen)) { seen[$1] = 1; rates[++n] = $1 } }
function title(c) { return c == "tcp" ? "native tcp" : c == "pipe" ? "lmig pipe" : "lmig qemu" }
END {
	print "| dirtying MB/s | transport | total s | downtime ms | wire MB | time vs tcp | wire vs tcp |"
	print "|---:|---|---:|---:|---:|---:|---:|"
	for (i = 1; i <= n; i++) {
		r = rates[i]; b = r SUBSEP "tcp"
		split("tcp pipe qemu", cs, " ")
		for (j = 1; j <= 3; j++) {
			k = r SUBSEP cs[j]
			if (st[k] != "completed") { printf "| %s | %s | failed | | | | |\n", r, title(cs[j]); continue }
			tr = st[b] == "completed" && T[b] > 0 ? sprintf("%.2fx", T[k] / T[b]) : "-"
			wr = st[b] == "completed" && W[b] > 0 ? sprintf("%.2fx", W[k] / W[b]) : "-"
			printf "| %s | %s | %.2f | %d | %.0f | %s | %s |\n", r, title(cs[j]), T[k] / 1000, D[k], W[k] / 1e6, tr, wr
		}
	}
}' "$work/results"

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Live migrations with the soft-dirty tracker, run inside the VM by
# selftests/test_vm (the host kernel has no soft-dirty).  Each case runs
# `lmig dirty` (32 MiB, 4 MB/s, counter pattern) as the workload and
# migrates it over loopback with `lmig send --pid --freeze signal` to an
# `lmig recv` writing /dev/shm (--timeout 60: code runs slowly under TCG):
#
#   shared    a memfd, sent as /proc/PID/fd/N with --tracker auto
#   anon      private anonymous memory, sent as anon:START-END with
#             --tracker soft-dirty, transparent huge pages off
#   anon-thp  the same with transparent huge pages always on (Debian's
#             default): soft-dirty marks a whole 2 MiB page on one write,
#             so every round resends nearly the whole image; --downtime-ms
#             5000 lets it converge at the rate TCG reaches
#   kmod      a memfd with --tracker kmod (lmig.ko, loaded from the path
#             given as ko=PATH before the cases)
#   kmod-thp  the same with shmem backed by 2 MiB folios (shmem_enabled
#             always): the module reports whole folios, lmig refines them
#   churn     a memfd written with `lmig dirty --pattern churn` (pages
#             turned zero, zero pages given data, pages back to an earlier
#             content), --tracker soft-dirty
#   holes     the same with `--pattern holes` (holes punched in the memfd)
#   madvise   `--pattern madvise`: pages zeroed by MADV_REMOVE on the mapping
#   pwrite    `--pattern pwrite`: the churn cycle with the zeroes and B
#             written by pwrite() to the memfd, not through the mapping
#   anon-madvise  private anonymous memory (transparent huge pages off)
#             with `--pattern madvise`: pages zeroed by MADV_DONTNEED
#   kmod-churn, kmod-holes, kmod-madvise, kmod-pwrite  the same four with
#             --tracker kmod
#   kmod-shortmaps  --tracker kmod on a memfd written by vm/shortmaps.py
#             instead of `lmig dirty`: every write goes through a mapping
#             of 32 pages made for it and removed right after (5 ms apart)
#
# shared, kmod and kmod-thp pass --object-writes mapped (the writer writes
# only through its mapping, as a VMM does): they measure the tracker, not
# the object check's content comparison, which the default (any) makes
# after every harvest in which the memfd was written (and which the
# pattern cases need, pwrite above all).
#
# Transparent huge pages are set in /sys/kernel/mm/transparent_hugepage
# for the cases that name a mode, in the VM only (LMIG_VM=1), and
# restored at the end.
#
# Prints, per case NAME, lines for the test to check:
#
#   NAME thp MODE        transparent huge pages for the case
#   NAME send-rc N       send's exit status
#   NAME recv-rc N       recv's exit status
#   NAME send JSON       send's report
#   NAME send-err TEXT   send's stderr, when it wrote any
#   NAME recv-err TEXT   recv's stderr, when it wrote any
#   NAME state S         the writer's state after send returned (T: stopped)
#   NAME cmp same        the received image equals the stopped source ...
#   NAME cmp differ ...  ... or not: cmp's words
#   NAME changed yes|no  whether the source changed between the moment
#                        send started and the end (writes during the migration)
#   NAME dirty JSON      the writer's report when it exits
#   NAME error TEXT      a case that could not run
#
# downtime=MS before the cases gives send --downtime-ms MS in those that do
# not set their own (a slower kernel: the debug kernel of debug-host.sh).
#
# Usage: live.sh [downtime=MS] [ko=PATH] [CASE...]   (default: shared anon anon-thp churn holes madvise pwrite
#                             anon-madvise)
set -u

. "$(dirname "$0")/guest-lib.sh"
. "$here/hang.sh"
tmp=$(mktemp -d)
thp=/sys/kernel/mm/transparent_hugepage/enabled
thp0=$(sed 's/.*\[\(.*\)\].*/\1/' "$thp" 2>/dev/null || true)
trap 'rm -rf "$tmp"; [ -z "$thp0" ] || [ "${LMIG_VM:-0}" != 1 ] || echo "$thp0" >"$thp" 2>/dev/null' EXIT

# The writer's memory on stdout: MEM is /proc/PID/fd/N or anon:START-END.
read_mem() { # MEM PID
	case $1 in
	anon:*)
		r=${1#anon:}
		start=$((0x${r%-*}))
		end=$((0x${r#*-}))
		dd if="/proc/$2/mem" bs=4096 skip=$((start / 4096)) count=$(((end - start) / 4096)) \
			status=none
		;;
	*) cat "$1" ;;
	esac
}

one_line() {
	tr '\n' ' ' <"$1" | sed 's/ *$//'
}

live_case() { # NAME MEM-SPEC TRACKER THP [SEND-OPTION...]
	name=$1
	spec=$2
	tracker=$3
	d=$tmp/$name
	out=/dev/shm/lmig-live-$name.img
	mkdir "$d"
	rm -f "$out"
	# Only in the VM: the host's setting is not this script's to change.
	if [ -n "$4" ] && [ "${LMIG_VM:-0}" = 1 ]; then
		echo "$4" >"$thp" 2>/dev/null || echo "$name error cannot set $thp to $4"
	fi
	[ ! -r "$thp" ] || echo "$name thp $(sed 's/.*\[\(.*\)\].*/\1/' "$thp")"
	shift 4

	if [ -n "${writer:-}" ]; then
		$writer 3>"$d/ready" >"$d/dirty.json" 2>"$d/dirty.err" &
	else
		"$lmig" dirty --mem "$spec" --size 32Mi --rate 4M --pattern "${pattern:-counter}" \
			--ready-fd 3 --json --no-progress 3>"$d/ready" >"$d/dirty.json" \
			2>"$d/dirty.err" &
	fi
	dpid=$!
	if ! wait_file "$d/ready"; then
		echo "$name error lmig dirty did not report its memory: $(one_line "$d/dirty.err")"
		kill "$dpid" 2>/dev/null
		wait "$dpid"
		return
	fi
	mem=$(cat "$d/ready")

	"$lmig" recv --listen 127.0.0.1:0 --ready-fd 4 --out "$out" --no-sync --json \
		--no-progress --accept-timeout 60 4>"$d/port" >"$d/recv.json" 2>"$d/recv.err" &
	rpid=$!
	if ! wait_file "$d/port"; then
		echo "$name error lmig recv did not report its port: $(one_line "$d/recv.err")"
		kill "$rpid" "$dpid" 2>/dev/null
		wait "$rpid" "$dpid"
		return
	fi
	port=$(cat "$d/port")

	# What the memory held as the migration began.
	read_mem "$mem" "$dpid" >"$d/before.img"

	rc=0
	# Past its own --timeout: say where it and the writer are, end it.
	HANG_ALSO=$dpid bounded "$name" 90 "$lmig" send --mem "$mem" --pid "$dpid" \
		--freeze signal --tracker "$tracker" --to "127.0.0.1:$port" --timeout 60 \
		${downtime:+--downtime-ms "$downtime"} "$@" \
		--json --no-progress >"$d/send.json" 2>"$d/send.err" || rc=$?
	rrc=0
	wait_bounded "$name" 70 "$rpid" || rrc=$?
	echo "$name send-rc $rc"
	echo "$name recv-rc $rrc"
	echo "$name send $(one_line "$d/send.json")"
	[ ! -s "$d/send.err" ] || echo "$name send-err $(one_line "$d/send.err")"
	[ ! -s "$d/recv.err" ] || echo "$name recv-err $(one_line "$d/recv.err")"
	echo "$name state $(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$dpid/status")"

	# The source, stopped, against what arrived.
	if [ ! -e "$out" ]; then
		echo "$name cmp differ: no $out"
	elif c=$(read_mem "$mem" "$dpid" | cmp - "$out" 2>&1); then
		echo "$name cmp same"
	else
		echo "$name cmp differ: $(echo "$c" | tr '\n' ' ' | sed 's/ *$//')"
	fi
	if [ -e "$out" ] && ! cmp -s "$d/before.img" "$out"; then
		echo "$name changed yes"
	else
		echo "$name changed no"
	fi

	kill -TERM "$dpid"
	kill -CONT "$dpid"
	wait_bounded "$name" 10 "$dpid"
	echo "$name dirty $(one_line "$d/dirty.json")"
	rm -f "$out" "$d/before.img"
}

shmem=/sys/kernel/mm/transparent_hugepage/shmem_enabled
shmem0=$(sed 's/.*\[\(.*\)\].*/\1/' "$shmem" 2>/dev/null || true)

[ $# -gt 0 ] || set -- shared anon anon-thp churn holes madvise pwrite anon-madvise
for c in "$@"; do
	case $c in
	downtime=*) downtime=${c#downtime=} ;;
	ko=*)
		if ! insmod "${c#ko=}" 2>"$tmp/insmod.err"; then
			echo "kmod error insmod ${c#ko=}: $(one_line "$tmp/insmod.err")"
			echo "kmod-thp error insmod failed"
			exit 1
		fi
		;;
	kmod)
		[ "${LMIG_VM:-0}" != 1 ] || echo never >"$shmem"
		live_case kmod memfd:lmig-kmod kmod "" --object-writes mapped
		;;
	kmod-thp)
		[ "${LMIG_VM:-0}" != 1 ] || echo always >"$shmem"
		echo "kmod-thp shmem $(sed 's/.*\[\(.*\)\].*/\1/' "$shmem")"
		live_case kmod-thp memfd:lmig-kmod-thp kmod "" --object-writes mapped
		[ "${LMIG_VM:-0}" != 1 ] || [ -z "$shmem0" ] || echo "$shmem0" >"$shmem"
		;;
	kmod-churn | kmod-holes | kmod-madvise | kmod-pwrite)
		[ "${LMIG_VM:-0}" != 1 ] || echo never >"$shmem"
		pattern=${c#kmod-} live_case "$c" "memfd:lmig-$c" kmod ""
		;;
	kmod-shortmaps)
		[ "${LMIG_VM:-0}" != 1 ] || echo never >"$shmem"
		writer="python3 $here/shortmaps.py" live_case "$c" memfd:unused kmod "" \
			--object-writes mapped
		;;
	churn | holes | madvise | pwrite) pattern=$c live_case "$c" "memfd:lmig-$c" soft-dirty "" ;;
	anon-madvise) pattern=madvise live_case "$c" anon soft-dirty never ;;
	shared) live_case shared memfd:lmig-live auto "" --object-writes mapped ;;
	anon) live_case anon anon soft-dirty never ;;
	anon-thp) live_case anon-thp anon soft-dirty always --downtime-ms 5000 ;;
	*) echo "$c error no such case"; exit 2 ;;
	esac
done

#!/bin/sh
# Receiving into a disk file against receiving into tmpfs, raw against lz4,
# and what `lmig recv --verify-readback` costs, measured side by side in
# one run on one image.  Prints a Markdown table (the top of
# Documentation/benchmarks.md) and the medians' raw runs on stderr.
#
# Each cell is the receiver's own throughput (its report's
# throughput_mbps: image bytes over the time from the last channel's hello
# to the commit, fdatasync included where it runs), median of REPS runs,
# the cells of one repetition run one after the other so that the
# machine's load hits them alike.  Two senders:
#
#   replay   bench/replay.c: the stream is encoded (lz4 or raw, zero pages
#            as runs) before the clock starts and fed from memory: the
#            receiver alone is measured
#   send     the real `lmig send --compress none|lz4` from /dev/shm: what
#            a user sees on loopback, sender's compression included
#
# Targets: a file on ext4 (fdatasync before the commit, as by default) and
# a file on tmpfs (/dev/shm, --no-sync).  The ext4 directory is DISK_DIR,
# else a directory under /var/tmp when that is ext4, else an ext4 image
# loop-mounted under /tmp (needs root; removed at the end).
#
# Knobs (environment):
#   BENCH_SIZE  image size in bytes, K/M/G suffixes (default 1G)
#   REPS        repetitions (default 3)
#   BENCH_PIN   1 (default): senders on CPU 0, the receiver on CPU 1;
#               all: senders on CPU 0, the receiver on every CPU (its
#               lz4 decode workers need more than one)
#   DISK_DIR    a directory on the disk filesystem to measure
#   LMIG        the lmig binary (default user/lmig)
#   LMIG_BASE   another lmig binary (say, an older version) whose
#               receiver is measured alongside, run for run, which of
#               the two goes first alternating: its rows are marked
#               "base"
#
# The image is `binary` (bench/mkimage.sh: the system's libraries and
# executables; lz4 keeps about 60 %).  Exit status: 0 unless a run failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
LMIG=${LMIG:-$top/user/lmig}
REPS=${REPS:-3}
BENCH_PIN=${BENCH_PIN:-1}
size=$(numfmt --from=iec "${BENCH_SIZE:-1G}")

pin_src="" pin_dst=""
if [ "$BENCH_PIN" != 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_src="taskset -c 0" pin_dst="taskset -c 1"
	[ "$BENCH_PIN" = all ] && pin_dst=""
fi
bins=new
if [ -n "${LMIG_BASE:-}" ]; then
	[ -x "$LMIG_BASE" ] || { echo "disk-recv: no lmig binary at $LMIG_BASE" >&2; exit 1; }
	bins="new base"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-diskrecv.XXXXXX")
shm=$(mktemp -d /dev/shm/lmig-diskrecv.XXXXXX)
disk="" mnt="" loopimg="" made_disk=0
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	[ -z "$disk" ] || [ "$made_disk" != 1 ] || rm -rf "$disk"
	if [ -n "$mnt" ]; then
		umount "$mnt" 2>/dev/null || true
		rmdir "$mnt" 2>/dev/null || true
	fi
	[ -z "$loopimg" ] || rm -f "$loopimg"
	rm -rf "$work" "$shm"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "disk-recv: $*" >&2
	exit 1
}

[ -x "$LMIG" ] || die "no lmig binary at $LMIG (make first)"

# The ext4 directory.
if [ -n "${DISK_DIR:-}" ]; then
	disk=$(mktemp -d "$DISK_DIR/lmig-diskrecv.XXXXXX")
	made_disk=1
elif [ "$(stat -f -c %T /var/tmp 2>/dev/null)" = ext2/ext3 ]; then
	disk=$(mktemp -d /var/tmp/lmig-diskrecv.XXXXXX)
	made_disk=1
else
	loopimg=$(mktemp /tmp/lmig-diskrecv-ext4.XXXXXX)
	mnt=$(mktemp -d /tmp/lmig-diskrecv-mnt.XXXXXX)
	truncate -s $((2 * size + 512 * 1024 * 1024)) "$loopimg"
	mkfs.ext4 -q -F "$loopimg" || die "mkfs.ext4 failed"
	mount -o loop "$loopimg" "$mnt" || die "cannot loop-mount an ext4 image (root needed)"
	disk=$mnt
fi
fstype=$(df -T "$disk" | awk 'NR == 2 { print $2 }')
dev=$(df "$disk" | awk 'NR == 2 { print $1 }')

# The stream replayer, built against this tree.
bench_cc "$work/replay" "$here/replay.c" || die "cannot build replay.c"

img=$shm/binary.img
sh "$here/mkimage.sh" binary "$size" "$img" || die "cannot make the image"

# One receive; prints "MBPS READBACK_MS WRITE_OPS PAGES DECODE_THREADS"
# (READBACK_MS 0 without).
#   run BIN(new|base) SENDER(replay|send) MODE(raw|lz4) TARGET(ext4|tmpfs) [RECV-OPTION...]
run() {
	rx=$LMIG
	[ "$1" = base ] && rx=$LMIG_BASE
	snd=$2 mode=$3 target=$4
	shift 4
	if [ "$target" = tmpfs ]; then
		out=$shm/out.img
		set -- --no-sync "$@"
	else
		out=$disk/out.img
	fi
	rm -f "$out" "$work/port"
	$pin_dst "$rx" recv --listen 127.0.0.1:0 --out "$out" --ready-fd 4 --no-progress \
		--json --accept-timeout 60 "$@" 4>"$work/port" >"$work/recv.json" 2>"$work/recv.err" &
	rpid=$!
	n=0
	while [ ! -s "$work/port" ]; do
		n=$((n + 1))
		[ $n -lt 300 ] || die "recv did not start: $(cat "$work/recv.err")"
		sleep 0.05
	done
	port=$(cat "$work/port")
	if [ "$snd" = replay ]; then
		$pin_src "$work/replay" "$img" "127.0.0.1:$port" "$mode" 2 >"$work/send.out" 2>&1 || true
	else
		c=none
		[ "$mode" = raw ] || c=lz4
		$pin_src "$LMIG" send --mem "$img" --to "127.0.0.1:$port" --compress "$c" \
			--no-progress --json >"$work/send.out" 2>&1 || true
	fi
	wait "$rpid" || die "$snd $mode $target: recv failed: $(cat "$work/recv.err")"
	cmp -s "$img" "$out" || die "$snd $mode $target: the received image differs"
	rm -f "$out"
	j=$(cat "$work/recv.json")
	field() { echo "$j" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
	pages=$(($(field pages_raw) + $(field pages_compressed)))
	rb=$(field readback_ms)
	dt=$(field decode_threads)
	wo=$(field write_ops)
	# An older receiver reports no write_ops: "-" keeps the columns in place.
	echo "$(field throughput_mbps) ${rb:-0} ${wo:--} $pages ${dt:-0}"
}

# Median of the numbers on stdin.
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "image: binary, $size bytes in /dev/shm; ext4: $disk on $dev ($fstype); $REPS repetitions" >&2
for rep in $(seq "$REPS"); do
	for target in ext4 tmpfs; do
		for snd in replay send; do
			for mode in raw lz4; do
				# Which binary goes first alternates: a run can slow the next
				# one (the file just removed, the page cache refilled).
				order=$bins
				[ $((rep % 2)) = 0 ] && order=$(echo "$bins" | awk '{ for (i = NF; i; i--) printf "%s ", $i }')
				for bin in $order; do
					r=$(run "$bin" "$snd" "$mode" "$target")
					echo "$target $snd $mode $r $bin" >>"$work/runs"
					echo "rep $rep: $bin $target $snd $mode: $r" >&2
				done
			done
		done
		r=$(run new replay raw "$target" --verify-readback)
		echo "$target readback raw $r new" >>"$work/runs"
		echo "rep $rep: $target replay raw --verify-readback: $r" >&2
	done
done

cell() { # TARGET SENDER MODE COLUMN [BIN]
	awk -v t="$1" -v s="$2" -v m="$3" -v c="$4" -v b="${5:-new}" \
		'$1 == t && $2 == s && $3 == m && $9 == b { print $c }' "$work/runs" | median
}
# Median pages per write: pages with data ÷ write_ops.
ppw() { # TARGET SENDER MODE BIN
	awk -v t="$1" -v s="$2" -v m="$3" -v b="$4" \
		'$1 == t && $2 == s && $3 == m && $9 == b && $6 != "-" { print $7 / $6 }' "$work/runs" | median
}

echo "| target | sender | receiver | raw MB/s | lz4 MB/s | lz4 ÷ raw | pages per write, raw / lz4 |"
echo "|---|---|---|---:|---:|---:|---:|"
for target in ext4 tmpfs; do
	for snd in replay send; do
		for bin in $bins; do
			raw=$(cell "$target" "$snd" raw 4 "$bin")
			lz=$(cell "$target" "$snd" lz4 4 "$bin")
			dt=$(cell "$target" "$snd" lz4 8 "$bin")
			desc=$target
			[ "$target" = ext4 ] && desc="ext4 file ($dev), fdatasync"
			[ "$target" = tmpfs ] && desc="tmpfs file, --no-sync"
			who="this lmig ($dt decode threads)"
			[ "$bin" = base ] && who="base (LMIG_BASE)"
			printf '| %s | %s | %s | %.0f | %.0f | %.2f | %.0f / %.0f |\n' "$desc" "$snd" "$who" \
				"$raw" "$lz" "$(echo "$lz $raw" | awk '{ print $1 / $2 }')" \
				"$(ppw "$target" "$snd" raw "$bin")" "$(ppw "$target" "$snd" lz4 "$bin")"
		done
	done
done
echo
echo "| target | receive (replay, raw) MB/s | with --verify-readback MB/s | read back and re-hashed | readback GB/s |"
echo "|---|---:|---:|---:|---:|"
for target in ext4 tmpfs; do
	raw=$(cell "$target" replay raw 4)
	rb=$(cell "$target" readback raw 4)
	ms=$(cell "$target" readback raw 5)
	printf '| %s | %.0f | %.0f | %s ms | %.1f |\n' "$target" "$raw" "$rb" "$ms" \
		"$(echo "$size $ms" | awk '{ print $1 / ($2 / 1000) / 1e9 }')"
done

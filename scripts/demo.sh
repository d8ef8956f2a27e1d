#!/bin/sh
# make demo: a live migration between two "hosts" on this machine.
#
# Two network namespaces, lmig-src (198.18.0.1) and lmig-dst (198.18.0.2),
# joined by a veth pair shaped to 1 Gbit/s on the source side, stand in for
# the two hosts.  In lmig-src, `lmig dirty` keeps rewriting a 1 GiB memfd at
# 20 MB/s, as a running guest rewrites its RAM; in lmig-dst, `lmig recv`
# waits.  `lmig send --pid` then migrates the memfd while it is written:
# pre-copy rounds, a short pause of the writer, the rest, and the commit.
# At the end the received image is compared byte for byte with the paused
# source.  Without network namespaces (not root, no iproute2, no veth or
# tbf) the same runs over loopback.
#
#   sh scripts/demo.sh          the live migration
#   sh scripts/demo.sh --cold   the cold migration of a generated image
#                               over loopback
#
# Environment: DEMO_SIZE (bytes, default 1 GiB), DEMO_RATE (bytes per
# second the writer dirties, default 20M), LMIG (default user/lmig).
# Everything it creates (namespaces, processes, files in /dev/shm) is
# removed at exit, also after a failure or Ctrl-C.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
lmig=${LMIG:-$top/user/lmig}
size=${DEMO_SIZE:-1073741824}
rate=${DEMO_RATE:-20M}

NS_SRC="lmig-src"
NS_DST="lmig-dst"
NET_ADDR=198.18.0.2 # the destination end of bench/netns.sh's link

dir=""   # scratch directory in /dev/shm
ns_up=0  # 1 once this script created the namespaces
rpid=""  # lmig recv
dpid=""  # lmig dirty (the writer)

say() {
	echo "demo: $*"
}

die() {
	echo "demo: $*" >&2
	exit 1
}

cleanup() {
	rc=$?
	trap - EXIT HUP INT PIPE TERM
	if [ -n "$rpid" ]; then
		kill "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
	fi
	if [ -n "$dpid" ]; then
		# The writer may be paused (SIGSTOP): SIGTERM acts once it runs.
		kill -TERM "$dpid" 2>/dev/null || true
		kill -CONT "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	if [ "$ns_up" = 1 ]; then
		sh "$top/bench/netns.sh" down "$NS_SRC" "$NS_DST" || rc=1
	fi
	if [ -n "$dir" ]; then rm -rf "$dir"; fi
	exit "$rc"
}

# Reads one line from FIFO $1 into $line (empty if the writer closed it
# without writing, i.e. failed).
read_fifo() {
	line=""
	read -r line <"$1" || true
}

# ---------------------------------------------------------------- cold demo

# The image looks like guest memory: a quarter zero pages, the rest program
# text and data (system libraries), so every page encoding is exercised.
cold() {
	src=$dir/guest.mem
	dst=$dir/received.mem
	say "building a $((size >> 20)) MiB image at $src"
	python3 "$top/scripts/mkimage.py" binary-zero "$size" "$src"

	say "lmig recv --listen 127.0.0.1:0 --out $dst"
	mkfifo "$dir/port"
	"$lmig" recv --listen 127.0.0.1:0 --out "$dst" --no-sync --ready-fd 3 \
		3>"$dir/port" >"$dir/recv.txt" 2>&1 &
	rpid=$!
	read_fifo "$dir/port"
	[ -n "$line" ] || die "lmig recv did not start: $(cat "$dir/recv.txt")"

	say "lmig send --mem $src --to 127.0.0.1:$line"
	"$lmig" send --mem "$src" --to "127.0.0.1:$line" --no-progress
	wait "$rpid"
	rpid=""
	cat "$dir/recv.txt"
	if cmp -s "$src" "$dst"; then
		say "received image is identical to the source ($(stat -c %s "$dst") bytes)"
	else
		die "received image differs from the source"
	fi
}

# ---------------------------------------------------------------- live demo

# Builds the two namespaces, or says in one line why not (then $why is set
# and the demo runs over loopback).
net_up() {
	why=""
	if [ "$(id -u)" != 0 ]; then
		why="not root"
	elif ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
		why="iproute2 (ip, tc) is not installed"
	else
		for ns in "$NS_SRC" "$NS_DST"; do
			if ip netns list 2>/dev/null | grep -q "^$ns\( \|$\)"; then
				why="namespace $ns exists already (another demo running?)"
			fi
		done
	fi
	[ -z "$why" ] || return 1
	ns_up=1
	if ! err=$(sh "$top/bench/netns.sh" up "$NS_SRC" "$NS_DST" 2>&1); then
		why="cannot build them: $(echo "$err" | tail -n 1)"
		sh "$top/bench/netns.sh" down "$NS_SRC" "$NS_DST" 2>/dev/null || true
		ns_up=0
		return 1
	fi
}

live() {
	if net_up; then
		# nsenter keeps the host's mounts (`ip netns exec` remounts /sys
		# without the cgroups, which the throttle needs).
		src_exec="nsenter --net=/run/netns/$NS_SRC" dst_exec="nsenter --net=/run/netns/$NS_DST"
		addr=$NET_ADDR
		say "two hosts: network namespaces $NS_SRC (198.18.0.1) and $NS_DST ($addr)," \
			"a veth pair, 1 Gbit/s (tbf) from source to destination"
	else
		src_exec="" dst_exec="" addr=127.0.0.1
		say "no network namespaces ($why): running over loopback instead"
	fi
	mkfifo "$dir/ready" "$dir/port"
	dst=$dir/guest.mem

	# --uffd: the writer registers its memory with a userfaultfd, so that
	# send can use the uffd tracker (Linux 6.7+); without it, send scans.
	uffd=--uffd
	while :; do
		say "source: lmig dirty --mem memfd:guest --size $((size >> 20))Mi --rate $rate $uffd"
		# shellcheck disable=SC2086 # $src_exec and $uffd may be empty
		$src_exec "$lmig" dirty --mem memfd:guest --size "$size" --rate "$rate" $uffd \
			--no-progress --ready-fd 3 3>"$dir/ready" >"$dir/dirty.txt" 2>&1 &
		dpid=$!
		read_fifo "$dir/ready"
		[ -z "$line" ] || break
		wait "$dpid" 2>/dev/null || true
		dpid=""
		[ -n "$uffd" ] || die "lmig dirty failed: $(cat "$dir/dirty.txt")"
		say "--uffd refused ($(tail -n 1 "$dir/dirty.txt")); without it"
		uffd=""
	done
	mem=$line
	pid=${mem#/proc/}
	pid=${pid%%/*}
	say "writer running as pid $pid; its memfd is $mem"

	say "destination: lmig recv --listen $addr:0 --out $dst"
	# shellcheck disable=SC2086
	$dst_exec "$lmig" recv --listen "$addr:0" --out "$dst" --no-sync --no-progress \
		--ready-fd 3 3>"$dir/port" >"$dir/recv.txt" 2>&1 &
	rpid=$!
	read_fifo "$dir/port"
	[ -n "$line" ] || die "lmig recv did not start: $(cat "$dir/recv.txt")"
	port=$line

	# --timeout 60: pre-copy of 1 GiB at 1 Gbit/s alone takes about 9 s,
	# close to the default limit of 10 s.  --object-writes mapped: the
	# writer changes its memfd only through its mapping, as a guest's RAM
	# is changed; without it every harvest also compares each page with
	# what was sent, in case a write(2) changed the object.
	say "source: lmig send --mem $mem --pid $pid --freeze signal --object-writes mapped --to $addr:$port --progress --timeout 60"
	say "(send says which dirty tracker 'auto' picked and why)"
	echo ""
	src=0
	# shellcheck disable=SC2086
	$src_exec "$lmig" send --mem "$mem" --pid "$pid" --freeze signal --object-writes mapped \
		--to "$addr:$port" --progress --timeout 60 || src=$?
	echo ""
	if [ "$src" != 0 ]; then
		wait "$rpid" 2>/dev/null || true
		rpid=""
		sed 's/^/  recv: /' "$dir/recv.txt" >&2
		die "live migration failed (lmig send exit $src); the writer was resumed"
	fi
	wait "$rpid"
	rpid=""
	sed -n '1p' "$dir/recv.txt" | sed 's/^/destination /'

	# lmig send leaves the writer paused after the commit (--then keep):
	# its memory cannot change while it is compared.
	state=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d ' ' -f 1)
	[ "$state" = T ] || die "the writer is not paused after the migration (state $state)"
	if cmp -s "$mem" "$dst"; then
		say "the destination image is identical to the paused source, byte for byte ($(stat -c %s "$dst") bytes)"
	else
		cmp "$mem" "$dst" >&2 || true
		die "the destination image DIFFERS from the paused source"
	fi

	kill -TERM "$pid"
	kill -CONT "$pid"
	wait "$dpid" || true
	dpid=""
	say "writer stopped: $(sed -n 's/^dirty: //p' "$dir/dirty.txt")"
}

case ${1:-} in
"") mode=live ;;
--cold) mode=cold ;;
-h | --help)
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument '$1' (--cold, --help)" ;;
esac

[ -x "$lmig" ] || die "$lmig not found; run 'make user'"
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
avail=$(df -B1 --output=avail /dev/shm | tail -n 1)
[ "$avail" -gt $((2 * size + 67108864)) ] ||
	die "/dev/shm has $((avail >> 20)) MiB free; the demo needs $((2 * size >> 20)) MiB (lower DEMO_SIZE)"
dir=$(mktemp -d /dev/shm/lmig-demo.XXXXXX)
"$mode"

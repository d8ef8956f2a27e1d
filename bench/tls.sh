#!/bin/sh
# The cost of TLS on `lmig send`: throughput with TLS off and with TLS
# (userspace here; the host kernel has no kTLS), side by side, over
# loopback and over the 1 Gbit/s link between two network namespaces
# (bench/netns.sh: 198.18.0.1 -> 198.18.0.2, tbf 1gbit).  Each rep runs
# off then TLS back to back on the same random (incompressible) image, and
# the ratio is taken per rep; the table shows medians, and the CPU time
# (user + system) sender and receiver spent per GiB, which a busy machine
# disturbs less than the rate.  Needs root for the namespaces.
#
#   bench/tls.sh         the host: loopback and the 1 Gbit/s link
#   bench/tls.sh --vm    in a VM booting Debian's kernel with tls.ko
#                        (selftests/vm/tls-host.sh bench): off, kTLS and
#                        userspace over the guest's loopback; TCG runs code
#                        several times slower, so only the ratios mean
#                        anything
#
# Knobs (environment):
#   TLS_SIZE    image size in MiB (default 512; 128 with --vm)
#   REPS        reps per path (default 3)
#   TLS_PATHS   "loopback netns" (default both)
#   BENCH_PIN   1 (default): senders on CPU 0, receivers on CPU 1
#   LMIG        the lmig binary (default user/lmig)
#
# Exits non-zero only if a run or the set-up failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
LMIG=${LMIG:-$top/user/lmig}
REPS=${REPS:-3}
TLS_PATHS=${TLS_PATHS:-loopback netns}
BENCH_PIN=${BENCH_PIN:-1}

if [ "${1:-}" = --vm ]; then
	size=${TLS_SIZE:-128}
	out=$(sh "$top/selftests/vm/tls-host.sh" bench "$size") || {
		echo "$out" >&2
		echo "tls: the VM run failed" >&2
		exit 1
	}
	echo "$out" | awk -v size="$size" '
		$1 == "bench" { n[$2]++; v[$2, n[$2]] = $3 }
		function med(m,   a, i, j, t, k) {
			k = n[m]
			for (i = 1; i <= k; i++) a[i] = v[m, i]
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
				if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k ? a[int((k + 1) / 2)] : 0
		}
		END {
			off = med("off"); kt = med("ktls"); us = med("userspace")
			printf "VM (Debian 6.1, TCG), loopback, %d MiB random image, 2 channels, medians of %d:\n\n", size, n["off"]
			print "| TLS | MB/s (TCG) | vs off |"
			print "|---|---:|---:|"
			printf "| off | %.1f | 1.00 |\n", off
			printf "| kTLS (both directions) | %.1f | %.2f |\n", kt, off ? kt / off : 0
			printf "| userspace | %.1f | %.2f |\n", us, off ? us / off : 0
		}'
	exit 0
fi

size=$((${TLS_SIZE:-512} * 1048576))
pin_src="" pin_dst=""
if [ "$BENCH_PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_src="taskset -c 0" pin_dst="taskset -c 1"
fi
work="" shm="" bgpid="" ns_up=0
ns_src=lmigt-src-$$
ns_dst=lmigt-dst-$$

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$bgpid" ]; then
		kill "$bgpid" 2>/dev/null || true
		wait "$bgpid" 2>/dev/null || true
	fi
	[ "$ns_up" = 0 ] || sh "$here/netns.sh" down "$ns_src" "$ns_dst" || rc=1
	[ -z "$shm" ] || rm -rf "$shm"
	[ -z "$work" ] || rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "tls: $*" >&2
	exit 1
}

[ -x /usr/bin/time ] || die "/usr/bin/time not found (install time)"
command -v jq >/dev/null || die "jq not found; run 'sh scripts/install-deps.sh bench' as root"
command -v openssl >/dev/null || die "openssl not found; run 'sh scripts/install-deps.sh' as root"
[ -x "$LMIG" ] || die "$LMIG not found; run 'make'"
work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-tls.XXXXXX")
shm=$(mktemp -d /dev/shm/lmig-tls.XXXXXX)
# The binary is copied: a rebuild during the run must not change what is measured.
cp "$LMIG" "$work/lmig"
lmig=$work/lmig
# The receiver's certificate names both addresses the sender may connect to.
sh "$top/selftests/tls/mkcerts.sh" "$work/pki" bench DNS:localhost,IP:127.0.0.1,IP:198.18.0.2
head -c "$size" /dev/urandom >"$shm/src.img"

# One migration; $1 = off|tls.  Checks both reports and prints the sender's
# MB/s and the CPU seconds per GiB of the sender and of the receiver.
run() {
	tls=""
	[ "$1" = off ] || tls="--tls-dir $work/pki"
	rm -f "$shm/out.img" "$work/ready"
	mkfifo "$work/ready"
	# shellcheck disable=SC2086
	$dst_exec $pin_dst /usr/bin/time -o "$work/recv.cpu" -f "%U %S" "$lmig" recv --listen "$dst_addr:0" --out "$shm/out.img" --no-sync \
		--json --no-progress --accept-timeout 30 --ready-fd 3 $tls \
		3>"$work/ready" >"$work/recv.json" 2>"$work/recv.err" &
	bgpid=$!
	read -r port <"$work/ready" || die "recv did not report a port: $(cat "$work/recv.err")"
	rc=0
	# shellcheck disable=SC2086
	$src_exec $pin_src /usr/bin/time -o "$work/send.cpu" -f "%U %S" "$lmig" send --mem "$shm/src.img" --to "$dst_addr:$port" --channels 2 \
		--compress none --json --no-progress $tls >"$work/send.json" 2>"$work/send.err" || rc=$?
	wait "$bgpid" || rc=$?
	bgpid=""
	[ "$rc" = 0 ] || die "$path $1: $(cat "$work/send.err" "$work/recv.err" | tr '\n' ' ')"
	[ "$(jq -r .digest "$work/send.json")" = "$(jq -r .digest "$work/recv.json")" ] ||
		die "$path $1: digests differ"
	want=off
	[ "$1" = off ] || want=userspace
	[ "$(jq -r .tls "$work/send.json")" = "$want" ] ||
		die "$path $1: sender reports tls $(jq -r .tls "$work/send.json"), expected $want"
	echo "$(jq -r .throughput_mbps "$work/send.json") $(cat "$work/send.cpu") $(cat "$work/recv.cpu")" |
		awk -v g="$size" '{ g /= 1073741824; printf "%s %.3f %.3f\n", $1, ($2 + $3) / g, ($4 + $5) / g }'
}

median() {
	sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

echo "| path | TLS off MB/s | TLS (userspace) MB/s | TLS / off | CPU s/GiB send off / TLS | CPU s/GiB recv off / TLS | reps |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for path in $TLS_PATHS; do
	case $path in
	loopback) dst_addr=127.0.0.1 src_exec="" dst_exec="" ;;
	netns)
		[ "$(id -u)" = 0 ] || die "the netns path needs root (or TLS_PATHS=loopback)"
		ns_up=1
		sh "$here/netns.sh" up "$ns_src" "$ns_dst" || die "cannot set up the namespaces"
		dst_addr=198.18.0.2 src_exec="ip netns exec $ns_src" dst_exec="ip netns exec $ns_dst"
		;;
	*) die "unknown path '$path' in TLS_PATHS (loopback, netns)" ;;
	esac
	for f in off tls ratio soff stls roff rtls; do : >"$work/$f"; done
	for rep in $(seq "$REPS"); do
		# shellcheck disable=SC2046
		set -- $(run off)
		[ "$rep" -gt 1 ] || cmp -s "$shm/src.img" "$shm/out.img" || die "$path off: image differs"
		off=$1
		echo "$2" >>"$work/soff"
		echo "$3" >>"$work/roff"
		# shellcheck disable=SC2046
		set -- $(run tls)
		[ "$rep" -gt 1 ] || cmp -s "$shm/src.img" "$shm/out.img" || die "$path tls: image differs"
		tls=$1
		echo "$2" >>"$work/stls"
		echo "$3" >>"$work/rtls"
		echo "$off" >>"$work/off"
		echo "$tls" >>"$work/tls"
		awk -v a="$tls" -v b="$off" 'BEGIN { print a / b }' >>"$work/ratio"
		printf '%s rep %d: off %.1f MB/s, userspace TLS %.1f MB/s\n' "$path" "$rep" "$off" "$tls" >&2
	done
	printf '| %s | %.1f | %.1f | %.2f | %.2f / %.2f | %.2f / %.2f | %d |\n' "$path" \
		"$(median <"$work/off")" "$(median <"$work/tls")" "$(median <"$work/ratio")" \
		"$(median <"$work/soff")" "$(median <"$work/stls")" \
		"$(median <"$work/roff")" "$(median <"$work/rtls")" "$REPS"
	if [ "$path" = netns ]; then
		sh "$here/netns.sh" down "$ns_src" "$ns_dst"
		ns_up=0
	fi
done

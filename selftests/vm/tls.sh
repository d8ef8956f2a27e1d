#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# kTLS checks and the kTLS benchmark, run inside the VM by tls-host.sh
# (the host kernel has no kTLS; Debian's has the tls module, loaded by
# run-in-vm.sh --modules tls).  Over the guest's loopback:
#
#   tls.sh test   prints, for selftests/test_tls (ktls_in_vm):
#     ulp LIST              /proc/sys/net/ipv4/tcp_available_ulp
#     send JSON, recv JSON  lmig send/recv --tls-dir of a 32 MiB image
#     cmp same|differ       the received image against the source
#     zc-send JSON, zc-cmp  the same with --zerocopy on (SEND_ZC on kTLS,
#                           or the fall-back to copying sends)
#   tls.sh bench [SIZE_MIB]   for bench/tls.sh: send throughput of a
#     SIZE_MIB (default 128) image, TLS off and kTLS alternately, three
#     times each, then userspace TLS after rmmod tls:
#     bench MODE MBPS
#
# Exits non-zero when a command fails.
set -eu

. "$(dirname "$0")/guest-lib.sh"
tmp=$(mktemp -d)
shm=$(mktemp -d /dev/shm/lmig-tls.XXXXXX)
trap 'rm -rf "$tmp" "$shm"' EXIT
mode=${1:-test}
size=${2:-32}
[ "$mode" = test ] || size=${2:-128}

sh "$repo/selftests/tls/mkcerts.sh" "$tmp/pki" vm
head -c $((size * 1024 * 1024)) /dev/urandom >"$shm/src.img"

# migrate TAG SEND-OPTIONS...: one migration over loopback with --tls-dir
# (TAG off: without TLS); prints "TAG-send JSON" or "send JSON".
migrate() {
	tag=$1
	shift
	tls="--tls-dir $tmp/pki"
	[ "$tag" = off ] && tls=""
	rm -f "$shm/out.img" "$tmp/port"
	# shellcheck disable=SC2086
	"$lmig" recv --listen 127.0.0.1:0 --ready-fd 3 --out "$shm/out.img" --no-sync --json \
		--accept-timeout 60 $tls 3>"$tmp/port" >"$tmp/recv.json" 2>"$tmp/recv.err" &
	rpid=$!
	wait_file "$tmp/port" || { echo "lmig recv did not report its port"; exit 1; }
	rc=0
	# shellcheck disable=SC2086
	"$lmig" send --mem "$shm/src.img" --to "127.0.0.1:$(cat "$tmp/port")" --json \
		--timeout 60 $tls "$@" >"$tmp/send.json" 2>"$tmp/send.err" || rc=$?
	wait "$rpid" || rc=$?
	if [ $rc -ne 0 ]; then
		echo "migration $tag failed: $(cat "$tmp/send.err" "$tmp/recv.err")"
		exit 1
	fi
}

if [ "$mode" = test ]; then
	echo "ulp $(cat /proc/sys/net/ipv4/tcp_available_ulp)"
	migrate ktls --channels 2
	echo "send $(cat "$tmp/send.json")"
	echo "recv $(cat "$tmp/recv.json")"
	if cmp -s "$shm/src.img" "$shm/out.img"; then echo "cmp same"; else echo "cmp differ"; fi
	migrate ktls --channels 2 --zerocopy on
	echo "zc-send $(cat "$tmp/send.json")"
	if cmp -s "$shm/src.img" "$shm/out.img"; then echo "zc-cmp same"; else echo "zc-cmp differ"; fi
	exit 0
fi

rate() {
	sed -n 's/.*"throughput_mbps":\([0-9.]*\).*/\1/p' "$tmp/send.json"
}
for i in 1 2 3; do
	migrate off --channels 2 --compress none
	echo "bench off $(rate)"
	migrate ktls --channels 2 --compress none
	echo "bench $(sed -n 's/.*"tls":"\([a-z]*\)".*/\1/p' "$tmp/send.json") $(rate)"
done
rmmod tls
for i in 1 2 3; do
	migrate userspace --channels 2 --compress none
	echo "bench $(sed -n 's/.*"tls":"\([a-z]*\)".*/\1/p' "$tmp/send.json") $(rate)"
done

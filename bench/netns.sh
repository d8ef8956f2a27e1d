#!/bin/sh
# Builds or removes the benchmark's 1 Gbit/s link: two network namespaces
# joined by a veth pair, shaped by tbf on the sending side.
#
#   netns.sh up   SRC DST    create SRC (198.18.0.1) and DST (198.18.0.2)
#   netns.sh down SRC DST    delete both (the veth pair goes with them)
#
# The addresses come from 198.18.0.0/15, the range reserved for network
# benchmarks (RFC 2544), and exist only inside the two namespaces, so
# nothing the benchmark sends can leave the machine.
set -eu

SRC_ADDR=198.18.0.1
DST_ADDR=198.18.0.2
RATE=1gbit

die() {
	echo "netns: $*" >&2
	exit 1
}

up() {
	ip netns add "$1"
	ip netns add "$2"
	# The veth names live inside the fresh namespaces, so they cannot
	# collide with anything on the host.
	ip link add veth-src netns "$1" type veth peer name veth-dst netns "$2"
	ip -n "$1" addr add "$SRC_ADDR/30" dev veth-src
	ip -n "$2" addr add "$DST_ADDR/30" dev veth-dst
	for ns in "$1" "$2"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$1" link set veth-src up
	ip -n "$2" link set veth-dst up
	# Shape only what the sender transmits; the receiver's ACKs stay
	# unshaped, as on a symmetric link whose reverse direction is idle.
	# A 256 KB bucket holds a few 64 KB GSO segments, so tbf does not
	# drop them for being larger than the burst.
	ip netns exec "$1" tc qdisc add dev veth-src root tbf rate "$RATE" burst 256kb latency 50ms
}

down() {
	for ns in "$1" "$2"; do
		if ip netns list | grep -q "^$ns\( \|$\)"; then
			ip netns del "$ns" || echo "netns: cannot delete $ns" >&2
		fi
	done
}

[ $# -eq 3 ] || die "usage: netns.sh up|down SRC DST"
case $1 in
up) up "$2" "$3" ;;
down) down "$2" "$3" ;;
*) die "unknown command '$1'" ;;
esac

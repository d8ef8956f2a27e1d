# SPDX-License-Identifier: GPL-2.0-only
#
# Sourced by the benchmark scripts: a benchmark program built against
# user/liblmig.a, the wait for a file a --ready-fd fills, the end of a
# process that should have ended by itself, and the shaped link between
# two network namespaces.

# bench_cc OUT SRC [CC-ARG...]: build the benchmark program OUT from SRC,
# linked with user/liblmig.a (everything of lmig but its command line; its
# make builds bpf/ first, whose build/probes.mk says what the eBPF probes
# add).  The build's output goes to OUT.log; returns non-zero on failure.
bench_cc() {
	bc_out=$1
	bc_src=$2
	shift 2
	bc_top=$(cd "$(dirname "$bc_src")/.." && pwd)
	make -s -C "$bc_top/user" liblmig.a >"$bc_out.log" 2>&1 || { cat "$bc_out.log" >&2; return 1; }
	bc_cflags=$(sed -n 's/^PROBES_CFLAGS := //p' "$bc_top/bpf/build/probes.mk")
	bc_ldlibs=$(sed -n 's/^PROBES_LDLIBS := //p' "$bc_top/bpf/build/probes.mk")
	# shellcheck disable=SC2086
	${CC:-cc} -O2 -std=gnu11 -D_GNU_SOURCE -Wall -I"$bc_top/include" -I"$bc_top/user" \
		-I"$bc_top/bpf" $bc_cflags "$@" -o "$bc_out" "$bc_src" "$bc_top/user/liblmig.a" \
		-luring -llz4 -lzstd -lxxhash -lssl -lcrypto -lm -lpthread $bc_ldlibs
}

# bench_wait_file FILE TRIES WHAT: wait until FILE is not empty, checking
# every 0.1 s, at most TRIES times; else "WHAT did not start" on stderr
# and exit 1.
bench_wait_file() {
	bw_n=0
	while [ ! -s "$1" ]; do
		bw_n=$((bw_n + 1))
		[ $bw_n -lt "$2" ] || { echo "$3 did not start" >&2; exit 1; }
		sleep 0.1
	done
}

# stop_after PID SECS: give PID up to SECS seconds to exit by itself, then
# stop it.
stop_after() {
	sa_i=0
	while kill -0 "$1" 2>/dev/null && [ $sa_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		sa_i=$((sa_i + 1))
	done
	kill "$1" 2>/dev/null || true
}

# bench_link_up SRC DST [both]: netns.sh's 1 Gbit/s link between two new
# network namespaces, SRC (198.18.0.1) and DST (198.18.0.2), shaped where
# SRC sends; with "both", the way back (DST to SRC) is shaped alike.  The
# pair is recorded first, so bench_link_down also removes what a set-up
# that failed midway left.  Returns non-zero on failure.
bench_link_up() {
	bench_link="$1 $2"
	sh "$(dirname "$0")/netns.sh" up "$1" "$2" || return 1
	[ "${3:-}" != both ] ||
		ip netns exec "$2" tc qdisc add dev veth-dst root tbf rate 1gbit burst 256kb latency 50ms
}

# bench_link_down: remove the namespaces of bench_link_up, if it made any.
bench_link_down() {
	[ -n "${bench_link:-}" ] || return 0
	# shellcheck disable=SC2086
	set -- $bench_link
	bench_link=""
	sh "$(dirname "$0")/netns.sh" down "$1" "$2"
}

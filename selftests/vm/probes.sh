#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The eBPF probes on a real KVM guest, run inside the VM by
# selftests/test_probes_vm (nested KVM: kvm_amd with shadow paging; the
# guest is selftests/build/kvm_vmm).  Prints one line per result:
#
#   btf yes|no               /sys/kernel/btf/vmlinux exists (CO-RE needs it)
#   pidns stat JSON          lmig stat --json lines, run inside a new pid
#                            namespace on a process there writing 4096
#                            fresh pages (probes_bench faults 1)
#   pidns pid N              that process's pid in the namespace
#   nokvm stat JSON          lmig stat before kvm_amd is loaded (when it is
#                            not yet): the probes work without KVM and say so
#   kvm skip REASON          /dev/kvm cannot appear here (then nothing else)
#   kvm ok                   /dev/kvm is there
#   pages stat JSON          lmig stat --json lines while kvm_vmm --pages
#                            0-511 writes 512 pages once
#   pages halted ...         that guest's report
#   rate stat JSON           the same while kvm_vmm --rate 2048 runs 2 s
#   rate halted ...          (io_exits: its port writes, one exit each)
#   CASE error TEXT          a case that could not run
#
# Always exits 0 once it started; the test judges the lines.
set -u

. "$(dirname "$0")/guest-lib.sh"
vmm=$repo/selftests/build/kvm_vmm
bench=$repo/selftests/build/probes_bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -r /sys/kernel/btf/vmlinux ] && echo "btf yes" || echo "btf no"
# The exit-reason histogram reads kvm:kvm_exit's record: it needs tracefs.
[ -e /sys/kernel/tracing/trace_marker ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null

# lmig in a pid namespace of its own, its /proc too, as in a container:
# the probes must count by the pids of that namespace.
if [ -x "$bench" ] && command -v unshare >/dev/null; then
	mkfifo "$tmp/pidns.go"
	timeout 120 unshare --pid --fork --mount-proc sh -c '
		"$2" faults 1 <"$1/pidns.go" >/dev/null &
		w=$!
		echo "pidns pid $w"
		"$3" stat --pid $w --json --interval 300 --ready-fd 3 3>"$1/pidns.ready" \
			>"$1/pidns.stat" 2>"$1/pidns.err" &
		s=$!
		n=0
		until [ -s "$1/pidns.ready" ] || [ $n -ge 600 ]; do
			n=$((n + 1))
			sleep 0.1
		done
		echo go >"$1/pidns.go"
		wait $s' sh "$tmp" "$bench" "$lmig"
	sed "s/^/pidns stat /" "$tmp/pidns.stat"
	[ ! -s "$tmp/pidns.err" ] || echo "pidns stderr $(tr '\n' ' ' <"$tmp/pidns.err")"
else
	echo "pidns error no $bench or no unshare"
fi

if [ ! -c /dev/kvm ]; then
	sleep 5 &
	echo "nokvm stat $("$lmig" stat --pid $! --count 1 --interval 100 --json 2>&1 | tr '\n' ' ')"
	kill $! 2>/dev/null
	wait $! 2>/dev/null
	kvm_load
fi
[ -x "$vmm" ] || { echo "kvm error $vmm is not built"; exit 0; }
echo "kvm ok"

# Wait until FILE contains PATTERN (up to 60 s: TCG is slow).
wait_for() { # FILE PATTERN
	n=0
	until grep -q "$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -lt 600 ] || return 1
		sleep 0.1
	done
}

# guest CASE VMM-ARGS...: start the guest held at --go-fd, attach lmig stat
# to it, let it run, and stop lmig stat one interval after the guest halted.
guest() {
	c=$1
	shift
	mkfifo "$tmp/$c.go"
	"$vmm" --mem-size 16M "$@" --go-fd 4 --hold 4<>"$tmp/$c.go" \
		>"$tmp/$c.out" 2>"$tmp/$c.err" &
	vpid=$!
	"$lmig" stat --pid "$vpid" --json --interval 500 --ready-fd 3 3>"$tmp/$c.ready" \
		>"$tmp/$c.stat" 2>"$tmp/$c.staterr" &
	spid=$!
	if ! wait_for "$tmp/$c.ready" .; then
		echo "$c error lmig stat did not start: $(tr '\n' ' ' <"$tmp/$c.staterr")"
		kill "$spid" "$vpid" 2>/dev/null
		wait
		return
	fi
	echo go >"$tmp/$c.go"
	if ! wait_for "$tmp/$c.out" '^halted'; then
		echo "$c error the guest did not halt: $(tr '\n' ' ' <"$tmp/$c.err")"
	fi
	sleep 1.2
	kill -INT "$spid"
	wait "$spid"
	kill -TERM "$vpid" 2>/dev/null
	wait "$vpid"
	sed "s/^/$c stat /" "$tmp/$c.stat"
	echo "$c $(cat "$tmp/$c.out")"
	[ ! -s "$tmp/$c.staterr" ] || echo "$c stderr $(tr '\n' ' ' <"$tmp/$c.staterr")"
}

guest pages --pages 0-511
guest rate --rate 2048 --duration 2
exit 0

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# CPU throttling through cgroup v2 cpu.max, run inside the VM by
# selftests/test_throttle (the host binds the cpu controller to cgroup v1).
# It mounts cgroup2 at /sys/fs/cgroup with +cpu, puts a CPU-paced `lmig
# dirty` (24 MiB, 12 MB/s of its CPU time) and a second process into a
# child cgroup "work" (so the writer is not alone there and lmig must use
# a transient sibling), and migrates it over loopback with `lmig send
# --throttle auto --bandwidth 6M --tracker soft-dirty` (the 6.1 kernel
# has no PAGEMAP_SCAN, so no uffd tracker; --object-writes mapped: the
# writer changes its memfd only through its mapping, and the content
# comparison would make each harvest cost more than the budget under TCG).
# Prints lines for the test:
#
#   uffd-rc N / uffd-err TEXT   `lmig dirty --uffd`: refused on this kernel
#   before CPU.MAX              work/cpu.max before the migration
#   seen SIBLING CPU.MAX        a limit seen on the transient cgroup while it ran
#   send-rc N / send JSON / send-err TEXT / recv-rc N
#   after CPU.MAX               work/cpu.max afterwards
#   sibling gone|left           the transient cgroup afterwards
#   state gone|left             /run/lmig/throttle-PID afterwards
#   writer-cg PATH / other-cg PATH   their cgroups afterwards
#   error TEXT                  the case could not run
#
# Usage: throttle.sh [LMIG]   (default: this repository's user/lmig)
set -u

. "$(dirname "$0")/guest-lib.sh"
lmig=${1:-$lmig}
cg=/sys/fs/cgroup
tmp=$(mktemp -d)
dpid="" spid="" rpid="" xpid=""

cleanup() {
	for p in $xpid $rpid; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$dpid" ] && kill -CONT "$dpid" 2>/dev/null
	for p in $dpid $spid; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rmdir "$cg/work" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# On 6.1 the uffd tracker's writer side is missing (Linux 6.7+).
"$lmig" dirty --mem memfd:lmig-uffd --size 1Mi --rate 0 --uffd --duration 1 --no-progress \
	>/dev/null 2>"$tmp/uffd.err"
echo "uffd-rc $?"
echo "uffd-err $(tr '\n' ' ' <"$tmp/uffd.err")"

[ "${LMIG_VM:-0}" = 1 ] || { echo "error not in the VM"; exit 1; }
if ! grep -q " $cg cgroup2 " /proc/mounts; then
	mount -t cgroup2 none "$cg" || { echo "error cannot mount cgroup2"; exit 1; }
fi
echo +cpu >"$cg/cgroup.subtree_control" || { echo "error no cpu controller"; exit 1; }
mkdir "$cg/work" || { echo "error cannot make $cg/work"; exit 1; }

"$lmig" dirty --mem memfd:lmig-v2 --size 24Mi --rate 12M --pace cpu --ready-fd 3 --json \
	--no-progress 3>"$tmp/ready" >"$tmp/dirty.json" &
dpid=$!
sleep 1000 &
spid=$!
wait_file "$tmp/ready" || { echo "error lmig dirty did not report its memfd"; exit 1; }
mem=$(cat "$tmp/ready")
echo "$dpid" >"$cg/work/cgroup.procs" && echo "$spid" >"$cg/work/cgroup.procs" ||
	{ echo "error cannot move the processes into $cg/work"; exit 1; }
echo "before $(cat "$cg/work/cpu.max")"

"$lmig" recv --listen 127.0.0.1:0 --ready-fd 3 --out /dev/shm/throttle.img --no-sync --json \
	3>"$tmp/port" >"$tmp/recv.json" 2>"$tmp/recv.err" &
rpid=$!
wait_file "$tmp/port" || { echo "error lmig recv did not report its port"; exit 1; }
"$lmig" send --mem "$mem" --pid "$dpid" --to "127.0.0.1:$(cat "$tmp/port")" --bandwidth 6M \
	--tracker soft-dirty --object-writes mapped --throttle auto --timeout 90 --max-rounds 15 \
	--json --no-progress >"$tmp/send.json" 2>"$tmp/send.err" &
xpid=$!
sib=$cg/lmig-throttle-$dpid
seen=""
while kill -0 "$xpid" 2>/dev/null; do
	if [ -z "$seen" ] && [ -r "$sib/cpu.max" ]; then
		m=$(cat "$sib/cpu.max" 2>/dev/null)
		case $m in max*|"") ;; *) seen="$sib $m" ;; esac
	fi
	sleep 0.1
done
wait "$xpid"
echo "send-rc $?"
xpid=""
wait "$rpid"
echo "recv-rc $?"
rpid=""
echo "seen $seen"
echo "send $(cat "$tmp/send.json")"
[ -s "$tmp/send.err" ] && echo "send-err $(tr '\n' ' ' <"$tmp/send.err")"
echo "after $(cat "$cg/work/cpu.max")"
if [ -d "$sib" ]; then echo "sibling left"; else echo "sibling gone"; fi
if [ -e "/run/lmig/throttle-$dpid" ]; then echo "state left"; else echo "state gone"; fi
echo "writer-cg $(cat "/proc/$dpid/cgroup")"
echo "other-cg $(cat "/proc/$spid/cgroup")"
rm -f /dev/shm/throttle.img

# Part two: only the thread that writes is limited (a threaded child of
# the writer's own cgroup "solo"), and its disk writes through io.max.
# The writer is alone in solo with a compute thread and a thread writing
# 20 MB/s with O_DIRECT to a file on ext4 on a loop device.  Prints:
#
#   t2-before CPU.MAX|IO.MAX|TYPE|SUBTREE   solo's files before
#   t2-seen-threads CG CPU.MAX             the threaded child while it ran
#   t2-seen-io IO.MAX                      solo/io.max while it ran
#   t2-send JSON / t2-send-rc N / t2-recv-rc N / t2-send-err TEXT
#   t2-after ...                           solo's files afterwards
#   t2-child gone|left / t2-state gone|left / t2-threads N
#   t2-error TEXT
kill -CONT "$dpid" 2>/dev/null
kill -KILL "$dpid" "$spid" 2>/dev/null
wait 2>/dev/null
dpid="" spid=""
rmdir "$cg/work" 2>/dev/null
t2() {
	modprobe loop 2>/dev/null; modprobe ext4 2>/dev/null
	dd if=/dev/zero of="$tmp/disk.img" bs=1M count=160 2>/dev/null
	dev=$(losetup -f --show "$tmp/disk.img") || { echo "t2-error no loop device"; return; }
	mkfs.ext4 -q -F "$dev" >/dev/null 2>&1 || { echo "t2-error mkfs.ext4 failed"; return; }
	mkdir -p "$tmp/disk" && mount "$dev" "$tmp/disk" ||
		{ echo "t2-error cannot mount ext4 on $dev"; return; }
	echo +io >"$cg/cgroup.subtree_control" || { echo "t2-error no io controller"; return; }
	mkdir "$cg/solo" || { echo "t2-error cannot make $cg/solo"; return; }
	# 36 MB per second of its CPU: the writer shares the guest's CPUs with
	# its compute and disk threads and both lmigs, and got 30 % of one in
	# a run where both vCPUs had one host thread; at 12M it then dirtied
	# 3-5 MB/s, under the 6 MB/s link, and converged with no limit at all.
	"$lmig" dirty --mem memfd:lmig-v2t --size 24Mi --rate 36M --pace cpu --compute-threads 1 \
		--disk-write "$tmp/disk/data" --disk-rate 20M --ready-fd 3 --json --no-progress \
		3>"$tmp/ready2" >"$tmp/dirty2.json" 2>"$tmp/dirty2.err" &
	dpid=$!
	wait_file "$tmp/ready2" || { echo "t2-error lmig dirty: $(cat "$tmp/dirty2.err")"; return; }
	echo "$dpid" >"$cg/solo/cgroup.procs" || { echo "t2-error cannot move into solo"; return; }
	state() {
		echo "$(cat "$cg/solo/cpu.max")|$(cat "$cg/solo/io.max" | tr '\n' ' ')|$(cat "$cg/solo/cgroup.type")|$(cat "$cg/solo/cgroup.subtree_control")"
	}
	echo "t2-before $(state)"
	: >"$tmp/port2"
	"$lmig" recv --listen 127.0.0.1:0 --ready-fd 3 --out /dev/shm/throttle2.img --no-sync \
		--json 3>"$tmp/port2" >"$tmp/recv2.json" 2>"$tmp/recv2.err" &
	rpid=$!
	wait_file "$tmp/port2" || { echo "t2-error lmig recv did not report its port"; return; }
	"$lmig" send --mem "$(cat "$tmp/ready2")" --pid "$dpid" --to "127.0.0.1:$(cat "$tmp/port2")" \
		--bandwidth 6M --tracker soft-dirty --object-writes mapped --throttle auto --timeout 90 \
		--max-rounds 15 --json --no-progress >"$tmp/send2.json" 2>"$tmp/send2.err" &
	xpid=$!
	child=$cg/solo/lmig-threads
	st="" si=""
	while kill -0 "$xpid" 2>/dev/null; do
		if [ -z "$st" ] && [ -r "$child/cpu.max" ]; then
			m=$(cat "$child/cpu.max" 2>/dev/null)
			case $m in max*|"") ;; *) st="$child $m $(wc -l <"$child/cgroup.threads")" ;; esac
		fi
		if [ -z "$si" ]; then
			m=$(grep wbps= "$cg/solo/io.max" 2>/dev/null | grep -v wbps=max)
			[ -n "$m" ] && si=$m
		fi
		sleep 0.1
	done
	wait "$xpid"
	echo "t2-send-rc $?"
	xpid=""
	wait "$rpid"
	echo "t2-recv-rc $?"
	rpid=""
	echo "t2-seen-threads $st"
	echo "t2-seen-io $si"
	echo "t2-send $(cat "$tmp/send2.json")"
	[ -s "$tmp/send2.err" ] && echo "t2-send-err $(tr '\n' ' ' <"$tmp/send2.err")"
	echo "t2-after $(state)"
	if [ -d "$child" ]; then echo "t2-child left"; else echo "t2-child gone"; fi
	if [ -e "/run/lmig/throttle-$dpid" ]; then echo "t2-state left"; else echo "t2-state gone"; fi
	echo "t2-threads $(wc -l <"$cg/solo/cgroup.threads")"
	kill -CONT "$dpid"
	kill -KILL "$dpid"
	wait "$dpid" 2>/dev/null
	dpid=""
	rmdir "$cg/solo"
	umount "$tmp/disk"
	losetup -d "$dev"
	rm -f /dev/shm/throttle2.img
}
t2
exit 0

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# What each dirty tracker costs on a QEMU guest under real KVM, run inside
# the VM (nested KVM: kvm_amd with shadow paging) by bench/tracker_kvm.sh.
# tracker-kvm.py does the measuring (its lines: see there); this script
# loads kvm_amd and lmig.ko, and runs it once per backing of the guest's
# memfd RAM, each line prefixed with the backing's name:
#
#   4k       shmem_enabled=never: 4 KiB shmem folios
#   thp      shmem_enabled=always: 2 MiB shmem folios (transparent huge
#            pages; QEMU 7.2's memory-backend-memfd has no option of its
#            own for them, its hugetlb=on is hugetlbfs)
#   hugetlb  memory-backend-memfd,hugetlb=on,hugetlbsize=2M: 2 MiB
#            hugetlbfs pages, reserved here for the guest
#
# shmem_enabled and nr_hugepages are restored at the end.
#
#   trk kmod ok|skip|error TEXT       lmig.ko loaded (or why not)
#   trk BACKING ...                   tracker-kvm.py's lines
#   kvm skip REASON                   no /dev/kvm here (nothing else)
#
# Usage: tracker-kvm.sh [ko=PATH] [backings=LIST] [KEY=VALUE...]
#   KEY: guest (the smpguest.elf, required), modes, trackers (lists
#   separated by spaces or commas), rate, touch, mem, interval, count:
#   tracker-kvm.py's options of those names.
set -u

. "$(dirname "$0")/guest-lib.sh"
ko="" backings="4k thp hugetlb" guest="" pyargs=""
for a in "$@"; do
	case $a in
	ko=*) ko=${a#ko=} ;;
	backings=*) backings=${a#backings=} ;;
	guest=*) guest=${a#guest=} ;;
	modes=* | trackers=* | rate=* | touch=* | mem=* | interval=* | count=*)
		# Lists as one word (a,b): the arguments are split at spaces here.
		pyargs="$pyargs --${a%%=*}=$(echo "${a#*=}" | tr ' ' ',')" ;;
	*) echo "trk error unknown argument $a"; exit 2 ;;
	esac
done
[ "${LMIG_VM:-0}" = 1 ] || { echo "trk error not in the VM (LMIG_VM=1)"; exit 1; }
[ -s "$guest" ] || { echo "trk error no guest $guest (selftests/qemu/mkguest.sh --smp)"; exit 1; }
shmem=/sys/kernel/mm/transparent_hugepage/shmem_enabled
shmem0=$(sed 's/.*\[\(.*\)\].*/\1/' "$shmem")
huge=/proc/sys/vm/nr_hugepages
huge0=$(cat "$huge")
work=$(mktemp -d /tmp/lmig-trkvm.XXXXXX)
trap 'echo "$shmem0" >"$shmem"; echo "$huge0" >"$huge"; rm -rf "$work"' EXIT

# A hang of the VM itself ends it at once (see qemu-kvm.sh).
echo 1 >/proc/sys/kernel/softlockup_panic 2>/dev/null || true
echo 1 >/proc/sys/kernel/panic_on_rcu_stall 2>/dev/null || true
kvm_load
# The mapping watch of the soft-dirty tracker attaches eBPF programs to
# these tracepoints; the first attach flips its static key, patching the
# kernel's text, which a VM with a host thread per CPU (MTTCG) can hang
# on (see qemu-kvm.sh).  Enabled once here, before any guest runs, the
# keys stay on.  On 6.12 that was not enough: an attach still changes
# the tracepoint's static call, and under MTTCG the VM died once of an
# int3 oops in syscall_exit_to_user_mode_prepare (bench/tracker_kvm.sh
# boots 6.12 with one host thread for both CPUs).
t=/sys/kernel/tracing
mounted=0
[ -e $t/tracing_on ] || ! mount -t tracefs nodev $t 2>/dev/null || mounted=1
echo 0 >$t/tracing_on 2>/dev/null || true
for e in raw_syscalls/sys_enter raw_syscalls/sys_exit sched/sched_process_fork \
	io_uring/io_uring_submit_req io_uring/io_uring_complete; do
	echo 1 2>/dev/null >"$t/events/$e/enable" || true
done
[ $mounted = 0 ] || umount $t || true
if [ -z "$ko" ]; then
	echo "trk kmod skip no lmig.ko given"
elif insmod "$ko" 2>"$work/insmod.err"; then
	echo "trk kmod ok $ko"
else
	echo "trk kmod error insmod: $(tr '\n' ' ' <"$work/insmod.err")"
fi

for b in $backings; do
	extra=""
	case $b in
	4k) echo never >"$shmem" ;;
	thp) echo always >"$shmem" ;;
	hugetlb)
		echo never >"$shmem"
		# The guest's RAM (tracker-kvm.py's --mem, 128 MiB by default) in 2 MiB pages.
		mem=$(echo "$pyargs" | sed -n 's/.*--mem=\([0-9]*\).*/\1/p')
		echo $((${mem:-128} / 2)) >"$huge"
		extra=--hugetlb ;;
	*) echo "trk error unknown backing $b"; continue ;;
	esac
	mkdir -p "$work/$b"
	nice -n -5 python3 "$here/tracker-kvm.py" --guest "$guest" --lmig "$lmig" --work "$work/$b" \
		$extra $pyargs 2>&1 | sed "s/^trk /trk $b /"
	echo "$huge0" >"$huge"
done
[ -z "$ko" ] || rmmod lmig 2>/dev/null || true
exit 0

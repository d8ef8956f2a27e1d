#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Inside the VM of selftests/test_qemu_kvm_vm (nested KVM: kvm_amd with
# shadow paging): first qemu-kvm.sh (its "ctl" and "nest" lines), then, in
# the same boot, lmig qemu send/recv on a QEMU guest under KVM once per
# tracker (qemu-ram-kvm.py, one line each):
#
#   qram module ok|skip|error TEXT   lmig.ko loaded (ko=PATH), or why not
#   qram TRACKER JSON              qemu-ram-kvm.py's result
#   qram error TEXT                the harness failed
#   qram secs S                    how long this part took (after qemu-kvm.sh)
#   kvm skip REASON                no /dev/kvm here (nothing else)
#
# The lmig part starts when qemu-kvm.sh's guests are gone: then the
# tracepoints the soft-dirty tracker's eBPF programs attach to are
# enabled (tracing off), as tracker-kvm.sh does, so that no attach
# patches the kernel's text while a guest runs under MTTCG (see
# qemu-kvm.sh), and lmig.ko is loaded.  The module is unloaded at the end.
#
# Usage: qemu-ram-kvm.sh [ko=PATH] [nest=no] [trackers=LIST] [ARG...]
#   nest=no skips qemu-kvm.sh (a run by hand); LIST: trackers separated
#   by commas (default kmod,soft-dirty); ARGs go to qemu-kvm.sh.
# Exits with qemu-kvm.sh's status: the lmig part says how it went in its
# lines only, which test_qemu_kvm_vm's tests of it judge.
set -u

. "$(dirname "$0")/guest-lib.sh"
ko="" nest=yes trackers=kmod,soft-dirty
while [ $# -gt 0 ]; do
	case $1 in
	"") ;;	# test_qemu_kvm_vm's vm_run() passes one, empty
	ko=*) ko=${1#ko=} ;;
	nest=*) nest=${1#nest=} ;;
	trackers=*) trackers=${1#trackers=} ;;
	*) break ;;
	esac
	shift
done
[ "${LMIG_VM:-0}" = 1 ] || { echo "qram error not in the VM (LMIG_VM=1)"; exit 1; }
guest=$repo/selftests/build/qemu/smpguest.elf
[ -s "$guest" ] || { echo "qram error $guest is not built (selftests/qemu/mkguest.sh --smp)"; exit 1; }

rc=0
if [ "$nest" != no ]; then
	sh "$here/qemu-kvm.sh" "$@" || rc=$?
fi
t0=$(date +%s.%N)
# A hang of the VM itself ends it at once (see qemu-kvm.sh).
echo 1 >/proc/sys/kernel/softlockup_panic 2>/dev/null || true
echo 1 >/proc/sys/kernel/panic_on_rcu_stall 2>/dev/null || true
kvm_load
t=/sys/kernel/tracing
mounted=0
[ -e $t/tracing_on ] || ! mount -t tracefs nodev $t 2>/dev/null || mounted=1
echo 0 >$t/tracing_on 2>/dev/null || true
for e in raw_syscalls/sys_enter raw_syscalls/sys_exit sched/sched_process_fork \
	io_uring/io_uring_submit_req io_uring/io_uring_complete sched/sched_switch \
	exceptions/page_fault_user kvm/kvm_exit kvm/kvm_page_fault; do
	echo 1 2>/dev/null >"$t/events/$e/enable" || true
done
[ $mounted = 0 ] || umount $t || true
# lmig.ko's counts of each session, for the log (qemu-ram-kvm.py).
grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
loaded=0
if [ -z "$ko" ]; then
	echo "qram module skip no lmig.ko given"
elif err=$(insmod "$ko" 2>&1); then
	echo "qram module ok $ko"
	loaded=1
else
	echo "qram module error insmod: $(echo "$err" | tr '\n' ' ')"
fi
for tr in $(echo "$trackers" | tr ',' ' '); do
	[ "$tr" != kmod ] || [ $loaded = 1 ] || continue
	python3 "$here/qemu-ram-kvm.py" --guest "$guest" --lmig "$lmig" --tracker "$tr"
done
[ $loaded = 0 ] || rmmod lmig 2>/dev/null || true
echo "qram secs $(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')"
exit $rc

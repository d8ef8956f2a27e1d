#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# A QEMU guest under real KVM whose migration only converges when lmig
# limits the vCPU that writes, run inside the VM by selftests/test_qemu_kvm_vm
# (nested KVM: kvm_amd with shadow paging).  The guest is the two-vCPU
# guest of selftests/qemu/mkguest.sh --smp (vCPU 0 writes, vCPU 1 only
# computes); qemu-kvm.py drives the two QEMUs, lmig proxy send --qmp and
# lmig proxy recv, and prints the lines below.  cgroup2 is mounted at
# /sys/fs/cgroup with +cpu and the source QEMU starts in its child
# "nest-work" (removed at the end).
#
#   nest skip REASON / kvm skip REASON   cannot run here (nothing else)
#   vm hang_panic softlockup=1|no rcu_stall=1|no   a hang panics the VM
#   vm keys_on NAME...      tracepoints kept on (their static keys) throughout
#   nest threads writer=TID compute=TID names=...
#   nest boot_s S           QEMU started -> the guest's first tick
#   nest ready LINE         the guest's ready line
#   nest before OPS n=N cpu=F   the computing vCPU's median rate before migrating,
#                           and the share of a CPU its thread ran
#   nest cg_before JSON     {tid: [cgroup, cpu.max]} of both vCPU threads
#   nest migrate status=S total_ms=N downtime_ms=N wall_s=S
#   nest during OPS n=N cpu=F   the same while the migration ran
#   nest cpu1_before/cpu1_during ...   where CPU 1's time went (/proc/stat)
#   nest during_limited OPS n=N   ... from the first limit seen on
#   nest ref_before/ref_during/ref_limited OPS n=N   the reference loop on CPU 1
#   nest seen JSON          {tid: [cgroup and cpu.max seen]} while it ran
#   nest send-rc N / recv-rc N / send JSON / send-err / recv-err TEXT
#   nest src_ticks at_migrate=N last=N
#   nest dst_status S       the destination's run state (running)
#   nest dst_ticks first=N at_check=N last=N   its ticks, and 3 s later
#   nest dst_computes N     its computing vCPU's lines
#   nest cg_after JSON / cg_same yes|no / state_file gone|left
#   nest leftovers LIST|none      /run/lmig files and lmig* cgroups
#   nest error TEXT
#
# First the control, the same migration without --qmp for CTL_S seconds
# (default 20): its "ctl ..." lines (the same keys) must show that it did
# not complete.  Then the migration through lmig proxy send --qmp: the
# "nest ..." lines.
#
# Usage: qemu-kvm.sh [qemu-kvm.py options, for both]
set -u

. "$(dirname "$0")/guest-lib.sh"
cg=/sys/fs/cgroup
work=$cg/nest-work

[ "${LMIG_VM:-0}" = 1 ] || { echo "nest skip not in the VM (LMIG_VM=1)"; exit 0; }
# Built on the host (test_qemu_kvm_vm runs mkguest.sh --smp): this side
# sees the repository read-only.
guest=$repo/selftests/build/qemu/smpguest.elf
[ -s "$guest" ] || { echo "nest error $guest is not built (selftests/qemu/mkguest.sh --smp)"; exit 1; }
# A VM that hangs while a CPU can still take interrupts ends at once, its
# kernel's report on its console: a soft lockup or an RCU stall panics
# the kernel, which QEMU (-no-reboot) answers by exiting, so the test
# tells its own VM's hang (MTTCG, see test_qemu_kvm_vm.c) from a failed
# migration within seconds rather than at its time limit.  Before kvm_amd
# loads: loading it already patches the kernel's text.
hp_soft=$(echo 1 2>/dev/null >/proc/sys/kernel/softlockup_panic && echo 1 || echo no)
hp_rcu=$(echo 1 2>/dev/null >/proc/sys/kernel/panic_on_rcu_stall && echo 1 || echo no)
echo "vm hang_panic softlockup=$hp_soft rcu_stall=$hp_rcu"
kvm_load
echo "kvm ok $(dmesg | grep -m 1 -i 'nested paging' | sed 's/^\[[^]]*\] //')"
# lmig's eBPF probes attach to these tracepoints, and the first probe on
# one flips its static key, i.e. patches the kernel's text: sched_switch's
# sits in __schedule, which both CPUs run all the time.  Under MTTCG a CPU
# that runs the code being patched can loop on the patch's int3 for good
# (seen at lmig's attach, see test_qemu_kvm_vm.c).  Enabled here, with
# tracing off, while no guest runs yet, the keys stay on through lmig's
# attaches and detaches, which then patch nothing.  tracefs comes off
# again (the events stay on): lmig finds the VM as before, without it.
keys=""
t=/sys/kernel/tracing
mounted=0
[ -e $t/tracing_on ] || ! mount -t tracefs nodev $t 2>/dev/null || mounted=1
echo 0 >$t/tracing_on 2>/dev/null
for e in sched/sched_switch exceptions/page_fault_user kvm/kvm_exit kvm/kvm_page_fault; do
	if echo 1 2>/dev/null >"$t/events/$e/enable"; then
		keys="$keys ${e#*/}"
	fi
done
[ $mounted = 0 ] || umount $t
echo "vm keys_on${keys:- none}"
if ! grep -q " $cg cgroup2 " /proc/mounts; then
	mount -t cgroup2 none "$cg" || { echo "nest error cannot mount cgroup2"; exit 1; }
fi
echo +cpu >"$cg/cgroup.subtree_control" || { echo "nest error no cpu controller"; exit 1; }
mkdir "$work" || { echo "nest error cannot make $work"; exit 1; }
trap 'rmdir "$work" 2>/dev/null' EXIT
python3 "$here/qemu-kvm.py" --guest "$guest" --lmig "$lmig" --cgroup "$work" --tag ctl \
	--native --timeout "${CTL_S:-20}" "$@"
python3 "$here/qemu-kvm.py" --guest "$guest" --lmig "$lmig" --cgroup "$work" "$@"

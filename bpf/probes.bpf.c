// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig's probes: per process and per thread, user page faults (and write
 * faults), KVM guest page faults and exits, and run-queue delay, counted
 * in kernel maps that user space reads (user/probes.c) and bpftool dumps.
 *
 * Raw tracepoints only: they need neither tracefs nor fentry, and their
 * arguments are the kernel's own (a task_struct read with CO-RE), not a
 * trace record whose layout changes between versions.  The one exception
 * is the exit-reason histogram, which reads kvm:kvm_exit's record
 * (exit_reason is its first field in every kernel since 5.x) and is
 * attached only where tracefs is mounted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "probes_abi.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * Set before load: count only process target_tgid (its threads too).  A
 * constant, so the check costs one comparison on every fault and switch
 * of the whole machine, not a map lookup.
 */
const volatile bool filter = false;
const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROBES_MAX_PROCS);
	__type(key, __u32);	/* tgid */
	__type(value, struct probes_proc);
} lmig_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROBES_MAX_THREADS);
	__type(key, __u32);	/* tid */
	__type(value, struct probes_thread);
} lmig_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROBES_MAX_REASONS);
	__type(key, struct probes_reason_key);
	__type(value, __u64);
} lmig_exit_reasons SEC(".maps");

static __always_inline bool wanted(__u32 tgid)
{
	if (!tgid)
		return false;	/* the idle tasks */
	return !filter || tgid == target_tgid;
}

static __always_inline struct probes_counts *proc_get(__u32 tgid)
{
	struct probes_proc *p = bpf_map_lookup_elem(&lmig_procs, &tgid);
	struct probes_proc zero = {};

	if (p)
		return &p->c;
	/* The name survives the process, for lmig top. */
	bpf_get_current_comm(zero.comm, sizeof(zero.comm));
	bpf_map_update_elem(&lmig_procs, &tgid, &zero, BPF_NOEXIST);
	p = bpf_map_lookup_elem(&lmig_procs, &tgid);
	return p ? &p->c : NULL;
}

/*
 * The thread's entry; a tid that now belongs to another process (reused)
 * starts again from zero.  *fresh: the entry was made now.
 */
static __always_inline struct probes_thread *thread_get(__u32 tid, __u32 tgid, bool *fresh)
{
	struct probes_thread *t = bpf_map_lookup_elem(&lmig_threads, &tid);
	struct probes_thread zero = { .tgid = tgid };

	*fresh = false;
	if (t && t->tgid == tgid)
		return t;
	bpf_map_update_elem(&lmig_threads, &tid, &zero, BPF_ANY);
	*fresh = true;
	return bpf_map_lookup_elem(&lmig_threads, &tid);
}

/* TP_PROTO(unsigned long address, struct pt_regs *regs, unsigned long error_code) */
SEC("raw_tp/page_fault_user")
int BPF_PROG(on_fault, unsigned long address, void *regs, unsigned long error_code)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	bool write = error_code & PROBES_PF_WRITE, fresh;
	struct probes_counts *p;
	struct probes_thread *t;

	if (!wanted(tgid))
		return 0;
	p = proc_get(tgid);
	if (p) {
		__sync_fetch_and_add(&p->faults, 1);
		if (write)
			__sync_fetch_and_add(&p->write_faults, 1);
	}
	t = thread_get(tid, tgid, &fresh);
	if (t) {
		__sync_fetch_and_add(&t->c.faults, 1);
		if (write)
			__sync_fetch_and_add(&t->c.write_faults, 1);
	}
	return 0;
}

/* Guest page faults and exits happen in the vCPU thread: current is it. */
static __always_inline void count_guest(bool exit)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct probes_counts *p;
	struct probes_thread *t;
	bool fresh;

	if (!wanted(tgid))
		return;
	p = proc_get(tgid);
	t = thread_get(tid, tgid, &fresh);
	if (exit) {
		if (p)
			__sync_fetch_and_add(&p->guest_exits, 1);
		if (t)
			__sync_fetch_and_add(&t->c.guest_exits, 1);
	} else {
		if (p)
			__sync_fetch_and_add(&p->guest_faults, 1);
		if (t)
			__sync_fetch_and_add(&t->c.guest_faults, 1);
	}
}

SEC("raw_tp/kvm_exit")
int BPF_PROG(on_kvm_exit)
{
	count_guest(true);
	return 0;
}

SEC("raw_tp/kvm_page_fault")
int BPF_PROG(on_kvm_page_fault)
{
	count_guest(false);
	return 0;
}

/* kvm:kvm_exit's trace record, as far as it is read here. */
struct kvm_exit_rec {
	__u64 common;
	unsigned int exit_reason;
};

SEC("tracepoint/kvm/kvm_exit")
int on_kvm_exit_reason(struct kvm_exit_rec *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct probes_reason_key k = { .tgid = tgid, .reason = ctx->exit_reason };
	__u64 one = 1, *n;

	if (!wanted(tgid))
		return 0;
	n = bpf_map_lookup_elem(&lmig_exit_reasons, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&lmig_exit_reasons, &k, &one, BPF_NOEXIST);
	return 0;
}

/*
 * Run-queue delay: the kernel keeps it per task (sched_info.run_delay,
 * updated when the task gets the CPU; it is what KVM reports to a guest
 * as steal time).  At each switch-out of a task we add what it grew by
 * since the previous one, and likewise its running time.  current is
 * still prev here.
 */
SEC("raw_tp/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u64 delay, run, dd, dr;
	struct probes_counts *p;
	struct probes_thread *t;
	bool fresh;

	if (!wanted(tgid))
		return 0;
	delay = BPF_CORE_READ(prev, sched_info.run_delay);
	run = BPF_CORE_READ(prev, se.sum_exec_runtime);
	t = thread_get(tid, tgid, &fresh);
	if (!t)
		return 0;
	if (fresh || !t->last_run || delay < t->last_delay || run < t->last_run) {
		/* First sight: only the base; later switches add. */
		t->last_delay = delay;
		t->last_run = run;
		return 0;
	}
	dd = delay - t->last_delay;
	dr = run - t->last_run;
	t->last_delay = delay;
	t->last_run = run;
	/* Only the task itself switches out, on one CPU at a time: no race on t. */
	t->c.rq_delay_ns += dd;
	t->c.run_ns += dr;
	p = proc_get(tgid);
	if (p) {
		__sync_fetch_and_add(&p->rq_delay_ns, dd);
		__sync_fetch_and_add(&p->run_ns, dr);
	}
	return 0;
}

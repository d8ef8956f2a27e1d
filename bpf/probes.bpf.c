// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig's probes: per process and per thread, user page faults (and write
 * faults), KVM guest page faults and exits, and run-queue delay, counted
 * in kernel maps that user space reads (user/host/probes.c) and bpftool dumps.
 *
 * Raw tracepoints only: they need neither tracefs nor fentry, and their
 * arguments are the kernel's own (a task_struct read with CO-RE), not a
 * trace record whose layout changes between versions.  The one exception
 * is the exit-reason histogram, which reads kvm:kvm_exit's record (its
 * exit_reason field, located with CO-RE) and is attached only where
 * tracefs is mounted.
 *
 * Program and map names stay within 15 characters: the kernel keeps no
 * more (BPF_OBJ_NAME_LEN), and `bpftool prog show name X` looks for X.
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

/*
 * Set before load: lmig runs in a pid namespace other than the initial
 * one, so the pids it knows (and target_tgid) are numbers in that
 * namespace.  Each event then takes its task's pid in lmig's namespace
 * from the task's struct pid (as pid_nr_ns() does), and tasks that have
 * no pid there are not counted.  In the initial namespace the helper's
 * pids are the right ones and nothing more is read.
 */
const volatile bool pidns_walk = false;

/*
 * Written once by lmig_setup, run by lmig itself (BPF_PROG_TEST_RUN)
 * before anything is attached; read-only afterwards.
 */
__u32 ns_level;		/* the level of lmig's pid namespace */
__u64 ns_addr;		/* its struct pid_namespace, compared, never read */
__u32 ns_inum;		/* its inode number: user space checks it */
__u32 self_tid;		/* lmig's tid in its namespace: user space checks it */
__u32 have_exit_reason;	/* kvm:kvm_exit's record has exit_reason */

/* Per CPU: every vCPU thread of one process adds to its process's entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, PROBES_MAX_PROCS);
	__type(key, __u32);	/* tgid */
	__type(value, struct probes_proc);
} lmig_procs SEC(".maps");

/* Not per CPU: only the thread itself writes its entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PROBES_MAX_THREADS);
	__type(key, __u32);	/* tid */
	__type(value, struct probes_thread);
} lmig_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, PROBES_MAX_REASONS);
	__type(key, struct probes_reason_key);
	__type(value, __u64);
} lmig_kvm_exits SEC(".maps");

/* kvm:kvm_exit's trace record, as far as it is read here (CO-RE). */
struct trace_event_raw_kvm_exit___lmig {
	unsigned int exit_reason;
} __attribute__((preserve_access_index));

/* The upid of a struct pid at namespace level lvl (pid->numbers[lvl]). */
static __always_inline int upid_at(struct pid *pid, __u32 lvl, struct upid *up)
{
	return bpf_core_read(up, sizeof(*up), &pid->numbers[lvl]);
}

/*
 * The current task's process and thread ids as lmig sees them; false if
 * the task has none in lmig's pid namespace (it runs outside it) or is
 * an idle task.
 */
static __always_inline bool current_ids(__u32 *tgid, __u32 *tid)
{
	struct task_struct *task;
	struct pid *pid;
	struct upid up;
	__u32 lvl;

	if (!pidns_walk) {
		__u64 id = bpf_get_current_pid_tgid();

		*tgid = id >> 32;
		*tid = (__u32)id;
		return *tgid != 0;	/* 0: the idle tasks */
	}
	lvl = ns_level;
	task = (struct task_struct *)bpf_get_current_task();
	pid = BPF_CORE_READ(task, thread_pid);
	/* Deeper namespaces hold lmig's as an ancestor at the same level. */
	if (!pid || BPF_CORE_READ(pid, level) < lvl || upid_at(pid, lvl, &up) ||
	    (__u64)up.ns != ns_addr)
		return false;
	*tid = up.nr;
	pid = BPF_CORE_READ(task, signal, pids[PIDTYPE_TGID]);
	if (!pid || upid_at(pid, lvl, &up))
		return false;
	*tgid = up.nr;
	return *tgid != 0;
}

static __always_inline bool wanted(__u32 tgid)
{
	return !filter || tgid == target_tgid;
}

/*
 * This CPU's share of the process's counters.  The programs run with
 * preemption disabled, from tracepoints that interrupt handlers do not
 * hit, so two of them never interleave on one CPU: plain additions to this
 * CPU's copy do not race.
 */
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
 * starts again from zero.  *fresh: the entry was made now.  Only the
 * thread itself, running on one CPU at a time, writes it: no atomics.
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

/*
 * Run once by lmig in its own context, never attached: where lmig's pid
 * namespace is, and what this kernel's kvm:kvm_exit record holds.
 */
SEC("raw_tp")
int lmig_setup(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	struct upid up;
	__u32 lvl;

	have_exit_reason = bpf_core_field_exists(struct trace_event_raw_kvm_exit___lmig,
						 exit_reason);
	if (!pid)
		return 0;
	/* A task's own namespace is the one at its pid's level. */
	lvl = BPF_CORE_READ(pid, level);
	if (upid_at(pid, lvl, &up))
		return 0;
	ns_level = lvl;
	ns_addr = (__u64)up.ns;
	ns_inum = BPF_CORE_READ(up.ns, ns.inum);
	self_tid = up.nr;
	return 0;
}

/* TP_PROTO(unsigned long address, struct pt_regs *regs, unsigned long error_code) */
SEC("raw_tp/page_fault_user")
int BPF_PROG(lmig_fault, unsigned long address, void *regs, unsigned long error_code)
{
	bool write = error_code & PROBES_PF_WRITE, fresh;
	struct probes_counts *p;
	struct probes_thread *t;
	__u32 tgid, tid;

	if (!current_ids(&tgid, &tid) || !wanted(tgid))
		return 0;
	p = proc_get(tgid);
	if (p) {
		p->faults++;
		if (write)
			p->write_faults++;
	}
	t = thread_get(tid, tgid, &fresh);
	if (t) {
		t->c.faults++;
		if (write)
			t->c.write_faults++;
	}
	return 0;
}

/* Guest page faults and exits happen in the vCPU thread: current is it. */
static __always_inline void count_guest(bool exit)
{
	struct probes_counts *p;
	struct probes_thread *t;
	__u32 tgid, tid;
	bool fresh;

	if (!current_ids(&tgid, &tid) || !wanted(tgid))
		return;
	p = proc_get(tgid);
	t = thread_get(tid, tgid, &fresh);
	if (exit) {
		if (p)
			p->guest_exits++;
		if (t)
			t->c.guest_exits++;
	} else {
		if (p)
			p->guest_faults++;
		if (t)
			t->c.guest_faults++;
	}
}

SEC("raw_tp/kvm_exit")
int BPF_PROG(lmig_kvm_exit)
{
	count_guest(true);
	return 0;
}

SEC("raw_tp/kvm_page_fault")
int BPF_PROG(lmig_kvm_fault)
{
	count_guest(false);
	return 0;
}

/*
 * The exit reason is a field of the trace record, whose offset CO-RE
 * takes from the kernel's (or kvm module's) BTF.  Where the record has no
 * exit_reason (kvm_exit of another architecture), lmig_setup said so and
 * user space does not attach this.
 */
SEC("tracepoint/kvm/kvm_exit")
int lmig_kvm_reason(struct trace_event_raw_kvm_exit___lmig *ctx)
{
	struct probes_reason_key k = {};
	__u64 one = 1, *n;
	__u32 tid;

	if (!bpf_core_field_exists(ctx->exit_reason))
		return 0;
	if (!current_ids(&k.tgid, &tid) || !wanted(k.tgid))
		return 0;
	k.reason = BPF_CORE_READ(ctx, exit_reason);
	n = bpf_map_lookup_elem(&lmig_kvm_exits, &k);
	if (n)
		(*n)++;		/* this CPU's count: no race, as in proc_get() */
	else if (bpf_map_update_elem(&lmig_kvm_exits, &k, &one, BPF_NOEXIST)) {
		/* Another CPU made the entry meanwhile: add to ours in it. */
		n = bpf_map_lookup_elem(&lmig_kvm_exits, &k);
		if (n)
			(*n)++;
	}
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
int BPF_PROG(lmig_switch, bool preempt, struct task_struct *prev)
{
	__u64 delay, run, dd, dr;
	struct probes_counts *p;
	struct probes_thread *t;
	__u32 tgid, tid;
	bool fresh;

	if (!current_ids(&tgid, &tid) || !wanted(tgid))
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
	t->c.rq_delay_ns += dd;
	t->c.run_ns += dr;
	p = proc_get(tgid);
	if (p) {
		p->rq_delay_ns += dd;
		p->run_ns += dr;
	}
	return 0;
}

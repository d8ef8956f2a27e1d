/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What probes.bpf.c and user/host/probes.c share: the map values.  Every
 * counter only grows; user space takes differences between two reads.
 * Keys are pids (tgid, tid) in lmig's own pid namespace.
 */
#ifndef LMIG_PROBES_ABI_H
#define LMIG_PROBES_ABI_H

/*
 * Map sizes (the per-CPU ones may be made smaller at load: user/host/probes.c).
 * The maps are LRU: a process or thread pushed out is counted anew.
 */
#define PROBES_MAX_THREADS	32768
#define PROBES_MAX_PROCS	8192
#define PROBES_MAX_REASONS	4096

/* x86 page fault error code: the access was a write. */
#define PROBES_PF_WRITE		0x2

/* Counters of a process or thread. */
struct probes_counts {
	__u64 faults;		/* user page faults (exceptions:page_fault_user) */
	__u64 write_faults;	/* ... with the write bit in the error code */
	__u64 guest_faults;	/* kvm:kvm_page_fault in this process's threads */
	__u64 guest_exits;	/* kvm:kvm_exit */
	__u64 rq_delay_ns;	/* time spent runnable on a run queue, not running */
	__u64 run_ns;		/* time spent running (measured at each switch-out) */
};

/*
 * One process (key: tgid), map "lmig_procs": one per CPU, which user space
 * adds up; comm is in the copy of the CPU that made the entry.
 */
struct probes_proc {
	struct probes_counts c;
	char comm[16];		/* of the thread that made the entry */
};

/* One thread (key: tid), map "lmig_threads". */
struct probes_thread {
	struct probes_counts c;
	__u32 tgid;
	__u32 pad;
	/*
	 * The task's own cumulative sched_info.run_delay and sum_exec_runtime
	 * at its last switch-out (0: not yet seen): the next one adds the
	 * difference.
	 */
	__u64 last_delay, last_run;
};

/* Key of map "lmig_kvm_exits": exits per process and exit reason (a count per CPU). */
struct probes_reason_key {
	__u32 tgid;
	__u32 reason;
};

#endif

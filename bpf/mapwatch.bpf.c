// SPDX-License-Identifier: GPL-2.0-only
/*
 * Mapping changes of one process, for the dirty trackers that read its
 * page tables (user/live/track_softdirty.c, user/live/track_uffd.c).  Those trackers
 * lose what a page table entry knew when the entry goes away: a mapping
 * created and removed between two harvests, moved by mremap, or zapped by
 * madvise takes its soft-dirty bit or its written state with it.  This
 * program counts every request that can do that, so a harvest that sees
 * the count move compares the object's pages with what was sent instead
 * of trusting the bits (user/live/mapwatch.c, track.c).
 *
 * What is counted, for the watched process (its threads, and any task
 * sharing its address space: vfork children, io_uring workers):
 *   - mmap, munmap, mremap, madvise, remap_file_pages, shmat, shmdt:
 *     at entry and again at exit (raw_syscalls sys_enter / sys_exit), so
 *     that a call in progress while a harvest reads the count moves it
 *     again before the next harvest; a call already under way when the
 *     watch attached is counted when it ends (its number read from the
 *     registers: x86 and arm64);
 *   - io_uring madvise requests, at submission and at completion (one
 *     submitted before the watch attached, at completion);
 *   - forks that give the child its own address space (the child's
 *     writes go through page tables no tracker of ours reads);
 *   - process_madvise(2) by anyone (it names another process's memory,
 *     and the caller is rarely the watched process), at entry and exit.
 *
 * Raw tracepoints only (no tracefs, no fentry: not every kernel we run on
 * has BPF trampolines).  The system call numbers come from user space,
 * which knows its architecture's.  The process is named by its pid in the
 * pid namespace lmig runs in (bpf_get_ns_current_pid_tgid), and then by
 * its address space (mm), which every task writing through its page
 * tables shares whatever its pid.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "mapwatch_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Set before load. */
const volatile __u32 watch_tgid;	/* in the pid namespace below */
const volatile __u64 pidns_dev, pidns_ino;
const volatile long nr_mmap = -1, nr_munmap = -1, nr_mremap = -1, nr_madvise = -1;
const volatile long nr_remap_file_pages = -1, nr_shmat = -1, nr_shmdt = -1;
const volatile long nr_process_madvise = -1;
const volatile __u8 op_madvise = 255;	/* IORING_OP_MADVISE */

/* Read by user space through the skeleton's memory map of .bss. */
struct mapwatch_counts counts;

/*
 * Entries in mw_calls: while none, sys_exit returns without a lookup, as
 * it does for nearly every system call of the machine.
 */
__s64 calls_open;

/* Address spaces of the watched process (more than one across an exec). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u64);
	__type(value, __u8);
} mw_mms SEC(".maps");

/* Threads inside a counted system call; value: 1 ours, 2 process_madvise. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} mw_calls SEC(".maps");

/* io_uring madvise requests in flight, by request. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} mw_reqs SEC(".maps");

/* Is the current task one that writes through the watched page tables? */
static bool current_watched(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct bpf_pidns_info ns;
	__u64 mm = (__u64)BPF_CORE_READ(task, mm);
	__u8 one = 1;

	if (!mm)
		return false;	/* a kernel thread */
	if (bpf_map_lookup_elem(&mw_mms, &mm))
		return true;
	if (bpf_get_ns_current_pid_tgid(pidns_dev, pidns_ino, &ns, sizeof(ns)) ||
	    ns.tgid != watch_tgid)
		return false;
	/* Learnt on its first counted event; a stale entry only adds rescans. */
	bpf_map_update_elem(&mw_mms, &mm, &one, BPF_ANY);
	return true;
}

static bool mapping_call(long id)
{
	return id == nr_mmap || id == nr_munmap || id == nr_mremap || id == nr_madvise ||
	       id == nr_remap_file_pages || id == nr_shmat || id == nr_shmdt;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(mw_sys_enter, struct pt_regs *regs, long id)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u8 kind;

	if (id < 0)
		return 0;
	if (id == nr_process_madvise) {
		kind = 2;
		__sync_fetch_and_add(&counts.foreign, 1);
	} else if (mapping_call(id) && current_watched()) {
		kind = 1;
		__sync_fetch_and_add(&counts.enters, 1);
	} else {
		return 0;
	}
	/* Counted before the entry exists: an exit never misses it. */
	__sync_fetch_and_add(&calls_open, 1);
	if (bpf_map_update_elem(&mw_calls, &tid, &kind, BPF_ANY))
		__sync_fetch_and_add(&calls_open, -1);
	return 0;
}

/* The number of the system call that regs ends; -1 where we do not know how to read it. */
static long exit_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return (long)BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	return (long)BPF_CORE_READ(regs, syscallno);
#else
	return -1;
#endif
}

SEC("raw_tp/sys_exit")
int BPF_PROG(mw_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tid;
	__u8 *kind;
	long id;

	if (calls_open) {
		tid = (__u32)bpf_get_current_pid_tgid();
		kind = bpf_map_lookup_elem(&mw_calls, &tid);
		if (kind) {
			if (*kind == 2)
				__sync_fetch_and_add(&counts.foreign, 1);
			else
				__sync_fetch_and_add(&counts.exits, 1);
			if (!bpf_map_delete_elem(&mw_calls, &tid))
				__sync_fetch_and_add(&calls_open, -1);
			return 0;
		}
	}
	/*
	 * A call whose start we did not see: it was under way when the watch
	 * attached (this program is attached before mw_sys_enter), and its
	 * change may land after the tracker read the mappings.  Its end is
	 * counted with a start, so a call counted as ended was counted as
	 * started, and started and ended stay equal.
	 */
	id = exit_nr(regs);
	if (id < 0)
		return 0;
	if (id == nr_process_madvise) {
		__sync_fetch_and_add(&counts.foreign, 1);
	} else if (mapping_call(id) && current_watched()) {
		__sync_fetch_and_add(&counts.enters, 1);
		__sync_fetch_and_add(&counts.exits, 1);
	}
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(mw_fork, struct task_struct *parent, struct task_struct *child)
{
	/*
	 * Asked first, so that the address space is known before a vfork
	 * child (another pid, the same mm) makes a call.  Threads and vfork
	 * children write through the watched page tables: nothing more.
	 */
	if (!current_watched() || BPF_CORE_READ(child, mm) == BPF_CORE_READ(parent, mm))
		return 0;
	__sync_fetch_and_add(&counts.forks, 1);
	return 0;
}

/* Both take the request as an argument: the first, or the second after the ring. */
SEC("raw_tp/io_uring_submit_req")
int BPF_PROG(mw_uring_submit, struct io_kiocb *req)
{
	__u64 key = (__u64)req;
	__u8 one = 1;

	if (BPF_CORE_READ(req, opcode) != op_madvise || !current_watched())
		return 0;
	__sync_fetch_and_add(&counts.enters, 1);
	bpf_map_update_elem(&mw_reqs, &key, &one, BPF_ANY);
	return 0;
}

SEC("raw_tp/io_uring_complete")
int BPF_PROG(mw_uring_complete, void *ring, struct io_kiocb *req)
{
	__u64 key = (__u64)req;

	if (!bpf_map_lookup_elem(&mw_reqs, &key)) {
		/* Submitted before the watch attached: counted as the calls above. */
		if (req && BPF_CORE_READ(req, opcode) == op_madvise && current_watched()) {
			__sync_fetch_and_add(&counts.enters, 1);
			__sync_fetch_and_add(&counts.exits, 1);
		}
		return 0;
	}
	__sync_fetch_and_add(&counts.exits, 1);
	bpf_map_delete_elem(&mw_reqs, &key);
	return 0;
}

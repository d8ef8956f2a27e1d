/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What bpf/mapwatch.bpf.c counts, shared with user/live/mapwatch.c.  Counters
 * only grow; the reader compares them with its previous read.
 */
#ifndef LMIG_MAPWATCH_ABI_H
#define LMIG_MAPWATCH_ABI_H

struct mapwatch_counts {
	/*
	 * System calls of the watched process (any of its threads, or a task
	 * sharing its address space) that can create, remove, move or zap a
	 * mapping, and io_uring madvise requests it submitted: counted once
	 * when they start and once when they end.
	 */
	__u64 enters;
	__u64 exits;
	/* The watched process forked a child with an address space of its own. */
	__u64 forks;
	/* process_madvise(2) by any process, started and ended: it can target ours. */
	__u64 foreign;
};

#endif

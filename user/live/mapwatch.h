/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The mapping watch (bpf/mapwatch.bpf.c): counts, for one process, every
 * request that can create, remove, move or zap a mapping, so that the
 * trackers that read its page tables (soft-dirty, uffd) know when a
 * harvest cannot trust the bits: a mapping of the object created and
 * removed between two harvests, moved, or zapped by madvise took its
 * soft-dirty bit or written state with it.  Such a harvest compares every
 * page of the object with what was sent (the object check's rescan,
 * track.c), and the uffd tracker registers the object's new mappings.
 */
#ifndef LMIG_MAPWATCH_H
#define LMIG_MAPWATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct mapwatch_sample {
	uint64_t enters, exits;	/* counted calls of the process started, ended */
	uint64_t forks;		/* children with an address space of their own */
	uint64_t foreign;	/* process_madvise(2) by any process, started and ended */
};

struct mapwatch;

/*
 * Load and attach the watch of process pid (a pid of lmig's pid
 * namespace).  Returns 0, or -1 with lmig_err() saying why it cannot
 * (no eBPF in this lmig, no permission, a tracepoint missing).
 */
int mapwatch_open(struct mapwatch **mw, pid_t pid);
/* The counters now; a load ordered after every earlier system call of ours. */
void mapwatch_read(struct mapwatch *mw, struct mapwatch_sample *s);
void mapwatch_close(struct mapwatch *mw);

/*
 * The policy (user/live/mapwatch_policy.c, pure): what a harvest does with a
 * sample.  st holds what the previous harvest saw.
 */
struct mapwatch_state {
	bool primed;			/* a first sample was taken */
	bool forked;			/* the writer forked: sticky */
	struct mapwatch_sample last;
};

enum mapwatch_verdict {
	MAPWATCH_CLEAN,		/* no mapping changed: the tracker's bits are the truth */
	MAPWATCH_RESCAN,	/* compare every page; uffd registers new mappings */
};

/*
 * The verdict for a harvest that took sample now (after the tracker's own
 * harvest); *why says what changed (a constant string) when not clean.
 * Updates st.  The first call only primes st and says clean: it is the
 * sample taken when tracking starts.
 */
enum mapwatch_verdict mapwatch_policy(struct mapwatch_state *st,
				      const struct mapwatch_sample *now, const char **why);

/*
 * Whether now differs from what st last saw, or a counted call is still
 * in progress: a mapping the tracker watched may have been replaced since
 * the last harvest.  Does not update st.
 */
bool mapwatch_moved(const struct mapwatch_state *st, const struct mapwatch_sample *now);

/*
 * Whether a tracker that reads page tables may watch a target without the
 * mapping watch: only private memory (its own checks cover a range that
 * moves); a shared object can be mapped, written and unmapped between two
 * harvests.  why receives the reason when not.
 */
bool mapwatch_optional(bool shared_object, const char **why);

#endif

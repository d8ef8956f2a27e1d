/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The final harvest of a live pre-copy, run beside the send: with the
 * workload paused, a thread of its own harvests the memory part by part
 * (tracker_harvest_part(), in the order of live/switch_plan.h) into a
 * bitmap of its own, and publishes each part once it is whole; the
 * sender's thread merges the parts published into its todo bitmap
 * (fh_poll()) and sends their pages while the next parts are read.  The
 * two threads never share a word: the harvester writes only its bitmap
 * and the count of parts done (release), the sender reads a part's
 * words only after that count says it is done (acquire).  The hashes
 * of what was sent (the scan's tg.sent) are written by the sender only
 * for pages of parts already merged, which the harvester no longer
 * reads.
 */
#ifndef LMIG_PRECOPY_FINAL_H
#define LMIG_PRECOPY_FINAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct tracker;

struct final_harvest {
	struct tracker *trk;
	uint64_t npages, part_pages;	/* one part, when there are several */
	unsigned int nparts;
	const unsigned int *order;	/* the parts in harvest order */
	uint64_t *bm;			/* the harvester's bitmap, npages bits */
	pthread_t th;
	bool running;			/* th to be joined */
	atomic_uint done;		/* parts of order[] harvested (release) */
	atomic_bool ended;		/* the harvester is through, done is final */
	unsigned int merged;		/* of them merged into the sender's todo */
	int ret;			/* the harvester's: 0, or -1 with err */
	char err[256];
	double busy_s;			/* the harvester's time in the tracker */
};

/*
 * Begin the harvest of f (trk, npages, part_pages, nparts, order and bm,
 * zeroed, filled in by the caller): in a thread, or here and now if
 * none can be started.
 */
void fh_start(struct final_harvest *f);
/*
 * Merge into todo every part published since the last call; *from is the
 * lowest page merged (npages: none).  1: parts still to come; 0: all of
 * them merged (the thread joined); -1 with lmig_err(): the harvest failed.
 */
int fh_poll(struct final_harvest *f, uint64_t *todo, uint64_t *from);
/* Wait for the thread if it runs (a send that failed meanwhile). */
void fh_stop(struct final_harvest *f);

#endif

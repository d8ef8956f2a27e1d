/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A fixed set of threads kept for a task that runs one function over a few
 * jobs many times (a harvest in parts): starting threads for every call
 * costs more than waking them.
 */
#ifndef LMIG_WORKERS_H
#define LMIG_WORKERS_H

#include <stddef.h>

struct workers;

/*
 * n - 1 threads beside the caller's, so that a call runs n jobs at once.
 * NULL when none could start: workers_run() then runs every job itself.
 */
struct workers *workers_start(unsigned int n);
/*
 * fn on each of the njobs jobs (jobs + i * size): job 0 and the jobs
 * beyond the workers in the calling thread, the others each in its own
 * worker.  Returns when all have finished.  One caller at a time.
 */
void workers_run(struct workers *w, void (*fn)(void *job), void *jobs, size_t size,
		 unsigned int njobs);
void workers_stop(struct workers *w);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/* The final harvest beside the send (precopy_final.h). */
#include <stdio.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "live/precopy_final.h"
#include "live/track.h"

static void part_range(const struct final_harvest *f, unsigned int k, uint64_t *first,
		       uint64_t *end)
{
	*first = f->nparts > 1 ? (uint64_t)f->order[k] * f->part_pages : 0;
	*end = f->nparts > 1 ? *first + f->part_pages : f->npages;
	if (*end > f->npages)
		*end = f->npages;
}

static void *harvester(void *arg)
{
	struct final_harvest *f = arg;
	double t0 = now_s();

	for (unsigned int k = 0; k < f->nparts; k++) {
		uint64_t first, end;

		part_range(f, k, &first, &end);
		if (tracker_harvest_part(f->trk, f->bm, first, end, k == 0, k + 1 == f->nparts)) {
			snprintf(f->err, sizeof(f->err), "%s", lmig_errmsg());
			f->ret = -1;
			break;
		}
		atomic_store_explicit(&f->done, k + 1, memory_order_release);
	}
	f->busy_s = now_s() - t0;
	atomic_store_explicit(&f->ended, true, memory_order_release);
	return NULL;
}

void fh_start(struct final_harvest *f)
{
	atomic_store(&f->done, 0);
	atomic_store(&f->ended, false);
	f->merged = 0;
	f->ret = 0;
	f->running = pthread_create(&f->th, NULL, harvester, f) == 0;
	if (!f->running)
		harvester(f);
}

int fh_poll(struct final_harvest *f, uint64_t *todo, uint64_t *from)
{
	/* ended first: once it is set, done is final. */
	bool ended = atomic_load_explicit(&f->ended, memory_order_acquire);
	unsigned int done = atomic_load_explicit(&f->done, memory_order_acquire);

	*from = f->npages;
	for (; f->merged < done; f->merged++) {
		uint64_t first, end;

		part_range(f, f->merged, &first, &end);
		for (uint64_t w = first / 64; w < (end + 63) / 64; w++)
			todo[w] |= f->bm[w];
		if (first < *from)
			*from = first;
	}
	if (f->merged < f->nparts && !ended)
		return 1;
	fh_stop(f);
	if (f->merged < f->nparts)
		return lmig_err("%s", f->err);
	return 0;
}

void fh_stop(struct final_harvest *f)
{
	if (!f->running)
		return;
	pthread_join(f->th, NULL);
	f->running = false;
}

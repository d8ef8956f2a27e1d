// SPDX-License-Identifier: GPL-2.0-only
/* The mapping watch's policy: pure functions of the counters (mapwatch.h). */
#include <stddef.h>

#include "live/mapwatch.h"

enum mapwatch_verdict mapwatch_policy(struct mapwatch_state *st,
				      const struct mapwatch_sample *now, const char **why)
{
	enum mapwatch_verdict v = MAPWATCH_CLEAN;
	const char *w = NULL;

	if (!st->primed) {
		st->primed = true;
		st->last = *now;
		if (why)
			*why = NULL;
		return MAPWATCH_CLEAN;
	}
	/*
	 * A child with its own address space writes through page tables no
	 * tracker reads, for as long as it lives; we do not see it end.
	 */
	if (now->forks != st->last.forks)
		st->forked = true;
	if (st->forked) {
		v = MAPWATCH_RESCAN;
		w = "the writer forked: its child writes through page tables not watched";
	} else if (now->enters != st->last.enters || now->exits != st->last.exits) {
		v = MAPWATCH_RESCAN;
		w = "the writer created, removed, moved or zapped a mapping";
	} else if (now->foreign != st->last.foreign) {
		v = MAPWATCH_RESCAN;
		w = "a process called process_madvise";
	}
	st->last = *now;
	if (why)
		*why = w;
	return v;
}

bool mapwatch_moved(const struct mapwatch_state *st, const struct mapwatch_sample *now)
{
	return !st->primed || now->enters != st->last.enters || now->exits != st->last.exits ||
	       now->foreign != st->last.foreign || now->forks != st->last.forks ||
	       now->enters != now->exits;
}

bool mapwatch_optional(bool shared_object, const char **why)
{
	if (why)
		*why = shared_object ? "a mapping of a shared object made and removed between "
				       "harvests takes its page-table bits along" : NULL;
	return !shared_object;
}

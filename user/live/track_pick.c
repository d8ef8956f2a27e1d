// SPDX-License-Identifier: GPL-2.0-only
/* --tracker auto's decision by cost (track_pick.h); pure, no I/O. */
#include "live/track_pick.h"

double track_pick_cost(const struct track_cost *c)
{
	return c->stops_writer ? 2 * c->harvest_s : c->harvest_s;
}

int track_pick(const struct track_cost *c, unsigned int n, bool huge, enum track_pick_why *why)
{
	enum track_pick_why w = TRACK_PICK_NONE;
	int best = -1;

	if (n == 0)
		goto out;
	best = 0;
	w = n == 1 ? TRACK_PICK_ONLY : TRACK_PICK_PREFERRED;
	for (unsigned int i = 1; i < n; i++) {
		double first = track_pick_cost(&c[0]), ci = track_pick_cost(&c[i]);

		if (huge && c[i].stops_writer)
			continue;
		if (ci * TRACK_PICK_FACTOR >= first || first - ci < TRACK_PICK_MIN_S)
			continue;
		if (w == TRACK_PICK_CHEAPER && ci >= track_pick_cost(&c[best]))
			continue;	/* an earlier one that also beat c[0] is as cheap */
		best = (int)i;
		w = TRACK_PICK_CHEAPER;
	}
out:
	if (why)
		*why = w;
	return best;
}

// SPDX-License-Identifier: GPL-2.0-only
/* The final round in parts: their order and the pause (switch_plan.h). */
#include "live/switch_plan.h"

unsigned int splan_parts(uint64_t npages, uint64_t part_pages)
{
	if (!part_pages || !npages)
		return 1;
	return (unsigned int)((npages + part_pages - 1) / part_pages);
}

/* A part's weight: its own pages and those of the part before it. */
static uint64_t weight(const uint64_t *dirty, unsigned int i)
{
	return dirty[i] + (i ? dirty[i - 1] : 0);
}

void splan_order(const uint64_t *dirty, unsigned int n, unsigned int *order)
{
	/* Insertion sort, stable: a few hundred parts, once a switch-over. */
	for (unsigned int i = 0; i < n; i++) {
		unsigned int j = i;

		while (dirty && j > 0 && weight(dirty, order[j - 1]) < weight(dirty, i)) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
}

double splan_pause_s(double harvest_s, double send_s, unsigned int n)
{
	double a, b;

	if (n < 1)
		n = 1;
	a = harvest_s + send_s / n;	/* the harvest is the longer: the last part's pages wait */
	b = harvest_s / n + send_s;	/* the send is: it begins after the first part */
	return a > b ? a : b;
}

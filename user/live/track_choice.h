/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What --tracker auto chose, as data for a report to word: the tracker it
 * picked and, for each better one it passed over, the error its probe
 * gave (a lib/err.h message, kept as it was said).
 */
#ifndef LMIG_TRACK_CHOICE_H
#define LMIG_TRACK_CHOICE_H

#include <stdbool.h>

#define TRACK_CHOICE_MAX	4	/* trackers tried, at most */

struct track_choice {
	bool auto_pick;			/* --tracker auto: the rest is set */
	const char *picked;		/* the tracker it picked, NULL: none could watch */
	unsigned int nrefused;
	struct {
		const char *tracker;
		char why[512];		/* its probe's error message */
	} refused[TRACK_CHOICE_MAX];
};

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What --tracker auto chose, as data for a report to word: the tracker it
 * picked; for each one that cannot watch the memory, the error its probe
 * (or its calibration harvest) gave (a lib/err.h message, kept as it was
 * said); and, when more than one can watch, what a calibration harvest of
 * each cost, which the pick went by (live/track_pick.h).
 */
#ifndef LMIG_TRACK_CHOICE_H
#define LMIG_TRACK_CHOICE_H

#include <stdbool.h>

#include "live/track_pick.h"

#define TRACK_CHOICE_MAX	4	/* trackers tried, at most */

struct track_choice {
	bool auto_pick;			/* --tracker auto: the rest is set */
	const char *picked;		/* the tracker it picked, NULL: none could watch */
	unsigned int nrefused;
	struct {
		const char *tracker;
		char why[512];		/* its probe's error message */
	} refused[TRACK_CHOICE_MAX];
	enum track_pick_why pick_why;
	bool huge;			/* the memory is in huge folios (track_pick.h) */
	unsigned int ncal;		/* calibrated: those that can watch, when two or more */
	struct {
		const char *tracker;
		struct track_cost cost;
	} cal[TRACK_CHOICE_MAX];
};

#endif

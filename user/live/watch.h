/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Watching memory be written, without sending it: what `lmig dirtyrate`
 * and `lmig estimate` run.  It is the live engine's harvest loop with the
 * sending left out: take every page's hash, then at each harvest find the
 * pages written since the previous one with a dirty tracker (track.h) and
 * take their new hashes, as the live engine would after sending them.
 *
 *	struct watch w;
 *	watch_open(&w, "/proc/PID/fd/N", tg, "auto");   (tg: pid, object-writes)
 *	every interval: watch_harvest(&w, bitmap, &pages, &harvest_s);
 *	watch_close(&w);
 */
#ifndef LMIG_WATCH_H
#define LMIG_WATCH_H

#include <stdint.h>

#include "live/track.h"

struct watch {
	struct track_target tg;
	struct tracker trk;
	uint64_t *hashes;		/* per page: its content at the last harvest */
	uint64_t size, npages;
	uint64_t zero_pages;		/* all-zero when the watch began */
	uint64_t zero_runs;		/* runs of them (a run is one ZERO descriptor) */
	const char *tracker;		/* the one picked */
	char why[1024];			/* for auto: why the better ones were not */
	double t_open;			/* when the tracker armed (struct tracker's t_armed) */
	bool trk_ok;
};

/*
 * mem: a shared object's path, or anon:START-END of tg.pid (tg.start and
 * tg.size parsed already).  Hashes every page and starts tracker tname:
 * writes after this returns are all seen.  0, or -1 with lmig_err()
 * (watch_close() it either way).
 */
int watch_open(struct watch *w, const char *mem, struct track_target tg, const char *tname);
/* The pages written since the last harvest (or the open) into bitmap (cleared first). */
int watch_harvest(struct watch *w, uint64_t *bitmap, uint64_t *pages, double *harvest_s);
void watch_close(struct watch *w);

struct est_curve;
/*
 * The dirty curve of n harvests in a row: bitmaps[i] holds what the i-th
 * found, t[i]..t[i + 1] the interval it covers.  For windows of 1, 2, 4
 * ... and all n harvests in a row, the distinct pages of their union and
 * the time they span, averaged over every such window.
 */
void watch_curve(uint64_t *const *bitmaps, const double *t, unsigned int n, uint64_t npages,
		 struct est_curve *c);

#endif

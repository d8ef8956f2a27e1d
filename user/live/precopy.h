/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The live pre-copy controller (lmig send --pid): what the sender engine
 * (image/image_send.c) asks at its round boundaries.  The engine sends
 * bitmaps of pages and reports what each round cost; the controller owns
 * the dirty tracker, the freezer and the convergence throttle
 * (converge.h), predicts the downtime of a switch-over, and answers:
 *
 *	live_round_end()	after a round: send these pages next, or
 *				freeze once what is queued is on the wire,
 *				or fail (an error set with lmig_err())
 *	live_switch_over()	everything on the wire: freeze
 *	live_final_part()	the final round's pages, a part at a time
 *
 * One round, as the engine runs it with the controller:
 *
 *	round 0: every page ---------------------------> live_round_end()
 *	round n: the pages it harvested --------------> live_round_end()
 *	   ... until it says LIVE_FREEZE_AFTER_DRAIN; once drained and
 *	   acknowledged: live_switch_over(), the final round begins, and
 *	   live_final_part() harvests it part by part while the pages of
 *	   the parts already harvested go out; END.
 */
#ifndef LMIG_PRECOPY_H
#define LMIG_PRECOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "image/image.h"

struct live_ctl;

/* The image as the trackers need it. */
struct live_image {
	int fd;				/* the object, or -1: the process's memory */
	uint64_t size, npages;
	/* Per page, the hash of what was last sent: kept up to date by the engine. */
	const uint64_t *sent;
};

/* What one round cost, as the engine measured it. */
struct live_sample {
	bool final;			/* the round sent with the workload paused */
	uint64_t pages;			/* pages it sent */
	uint64_t wire;			/* wire bytes of its frames and markers */
	double secs;			/* from its start to its last page encoded */
};

enum live_step {
	LIVE_NEXT,			/* send verdict.pages (harvested into the bitmap) next */
	LIVE_FREEZE_AFTER_DRAIN,	/* once all is on the wire and acked: live_switch_over() */
	LIVE_FAIL,			/* verdict.fail says why, lmig_err() in words */
	LIVE_DONE,			/* the final round: nothing more to send */
};

enum live_fail {
	LIVE_FAIL_NONE,
	LIVE_FAIL_HARVEST,		/* the tracker (or the freezer) failed */
	LIVE_FAIL_HARVEST_COST,		/* the harvest alone is over --downtime-ms */
	LIVE_FAIL_ROUNDS,		/* --max-rounds reached */
	LIVE_FAIL_TIMEOUT,		/* --timeout reached */
};

struct live_verdict {
	enum live_step step;
	enum live_fail fail;
	uint64_t pages;			/* LIVE_NEXT, switch-over: the next round's pages */
};

/*
 * Set up tracker, freezer, probes and throttle for o->pid (the tracker
 * starts now: no write after this goes unseen).  t0: when the migration
 * began (--timeout counts from it).  *lv is set whenever anything was
 * set up, even when it fails: live_close() it either way.  0, or -1
 * with lmig_err().
 */
int live_open(struct live_ctl **lv, const struct send_opts *o, struct image_stats *st,
	      const struct live_image *im, double t0);
/*
 * A round's pages are all encoded.  For a live round that goes on, the
 * next round's pages are harvested into todo (npages bits, cleared first).
 */
enum live_step live_round_end(struct live_ctl *lv, const struct live_sample *smp, uint64_t *todo,
			      struct live_verdict *v);
/*
 * Pause the workload, clear todo for the final round and start its
 * harvest, whose parts live_final_part() hands over.  0 or -1.
 */
int live_switch_over(struct live_ctl *lv, uint64_t *todo);
/*
 * The workload paused, the final harvest under way beside the engine
 * (precopy_final.h): merge the parts harvested since the last call into
 * todo; *from is the lowest page merged, where the engine looks for
 * pages again.  1: more parts follow; 0: the harvest is whole, *pages
 * the final round's (the round begun last); -1 with lmig_err().
 */
int live_final_part(struct live_ctl *lv, uint64_t *todo, uint64_t *from, uint64_t *pages);
/* The round just begun (st->round's last): what the controller knows of it. */
void live_round_begun(struct live_ctl *lv);
/*
 * --timeout, checked within a round too: -1 with lmig_err() once it
 * passed, or once the pause hook (send_opts.pause) abandoned the session.
 */
int live_check_timeout(struct live_ctl *lv, uint64_t round_pages);
/* What a live send's progress line says: the round, rates, prediction, throttle. */
void live_progress(const struct live_ctl *lv, uint64_t round_pages, struct image_progress *p);
/* The receiver may commit from now on: the guard must not resume the workload. */
void live_commit_point(struct live_ctl *lv);
/* The receiver committed: the downtime ends. */
void live_committed(struct live_ctl *lv);
/*
 * The end: limits restored, then the workload left paused (ok), killed
 * (ok and --then-kill), paused (unknown outcome) or resumed; the report's
 * source state and tracker counters.  Frees lv (NULL is fine).
 */
void live_close(struct live_ctl *lv, bool ok, bool unknown);

#endif

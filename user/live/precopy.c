// SPDX-License-Identifier: GPL-2.0-only
/*
 * The live pre-copy controller (precopy.h): harvests, predicts the
 * downtime of a switch-over, decides between another round, the
 * switch-over and giving up, and freezes the workload for the final
 * round.  The convergence throttle (converge.c) is consulted at every
 * harvest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "chan/wire.h"
#include "host/tracemark.h"
#include "live/converge.h"
#include "live/freeze.h"
#include "live/precopy.h"
#include "live/precopy_final.h"
#include "live/switch_plan.h"
#include "live/track.h"

/* Switch-over costs besides harvesting and sending: freeze, commit round trip. */
#define SWITCH_OVERHEAD_S	0.003
/* The final harvest's parts (switch_plan.h). */
#define FINAL_PART_PAGES	(SPLAN_PART_BYTES / LMIG_PAGE_SIZE)
/* A round smaller than this says little about the rate of the link. */
#define RATE_SAMPLE_MIN		(2 << 20)

struct live_ctl {
	const struct send_opts *o;
	struct image_stats *st;
	struct live_image im;
	double t0;			/* the migration began */
	struct track_target tg;
	struct tracker trk;
	bool trk_ok;
	struct freezer fz;
	bool freeze_next;		/* freeze once the round under way is on the wire */
	double t_harvest;		/* when the last harvest began */
	double harvest_s;		/* what it took */
	double hs_min;			/* the cheapest harvest so far */
	double link_rate;		/* wire bytes per second, estimated */
	double wire_per_page;		/* wire bytes per page sent, recent rounds */
	double predicted_s;		/* of the latest harvest */
	double dirty_mbps;		/* of the latest harvest */
	double t_freeze;
	/*
	 * The final harvest in parts (switch_plan.h): how many, the pages the
	 * last live harvest found in each, their order, the harvester
	 * (precopy_final.h), and when the workload was paused.
	 */
	unsigned int nparts;
	uint64_t *part_dirty;
	unsigned int *order;
	struct final_harvest fh;
	double final_t0;
	struct converge cv;
};

int live_open(struct live_ctl **out, const struct send_opts *o, struct image_stats *st,
	      const struct live_image *im, double t0)
{
	struct live_ctl *lv = calloc(1, sizeof(*lv));

	*out = lv;
	if (!lv)
		return lmig_err("out of memory");
	*lv = (struct live_ctl){ .o = o, .st = st, .im = *im, .t0 = t0 };
	lv->fz.guard.fd = -1;
	converge_open(&lv->cv, o, st);
	if (freezer_init(&lv->fz, o->freeze, o->pid))
		return -1;
	if (lv->fz.method == FREEZE_NONE)
		lv->fz.hook = o->pause;
	st->frozen = freezer_name(&lv->fz);
	lv->tg = (struct track_target){ .fd = im->fd, .pid = o->pid, .pidfd = lv->fz.pidfd,
					.start = o->anon_start,
					.mapped_writes_only = o->mapped_writes_only,
					.size = im->size, .sent = im->sent };
	if (tracker_open_choice(&lv->trk, o->tracker, &lv->tg, &st->tracker_why))
		return -1;
	lv->trk_ok = true;
	st->tracker = lv->trk.ops->name;
	lv->nparts = tracker_has_parts(&lv->trk) ? splan_parts(im->npages, FINAL_PART_PAGES) : 1;
	lv->part_dirty = calloc(lv->nparts, sizeof(*lv->part_dirty));
	lv->order = calloc(lv->nparts, sizeof(*lv->order));
	lv->fh.bm = calloc(bitmap_words(im->npages), 8);
	if (!lv->part_dirty || !lv->order || !lv->fh.bm)
		return lmig_err("out of memory");
	lv->t_harvest = now_s();
	/* The workload's counters from the start: round 0 is a measurement too. */
	converge_mark(&lv->cv);
	if (o->progress)
		image_tell(o->events, IMAGE_EV_TRACKER, NULL, st);
	return 0;
}

/* Round over: learn the link's rate and what a page costs on the wire. */
static void account(struct live_ctl *lv, const struct live_sample *smp)
{
	struct round_stat *r = &lv->st->round[lv->st->rounds - 1];

	if (smp->pages) {
		double wpp = (double)smp->wire / smp->pages;

		lv->wire_per_page = lv->wire_per_page ? (lv->wire_per_page + wpp) / 2 : wpp;
	}
	if (smp->secs > 0 && (smp->wire >= RATE_SAMPLE_MIN || !lv->link_rate)) {
		double rate = smp->wire / smp->secs;

		if (lv->o->bandwidth && rate > lv->o->bandwidth)
			rate = lv->o->bandwidth;
		lv->link_rate = lv->link_rate ? (lv->link_rate + rate) / 2 : rate;
	}
	r->rate_mbps = lv->wire_per_page > 0 ? lv->link_rate / lv->wire_per_page *
					       LMIG_PAGE_SIZE / 1e6 : 0;
}

/*
 * The pages written since the last harvest into todo (every page of the
 * round just sent was taken from it: it is the next round's).
 */
static int harvest(struct live_ctl *lv, uint64_t *todo, uint64_t *pages)
{
	double t = now_s(), since = t - lv->t_harvest;

	memset(todo, 0, bitmap_words(lv->im.npages) * 8);
	if (tracker_harvest(&lv->trk, todo))
		return -1;
	lv->harvest_s = now_s() - t;
	*pages = bitmap_count(todo, lv->im.npages);
	for (unsigned int k = 0; k < lv->nparts && lv->nparts > 1; k++) {
		uint64_t first = (uint64_t)k * FINAL_PART_PAGES, end = first + FINAL_PART_PAGES;

		lv->part_dirty[k] = bitmap_count(todo + first / 64, (end > lv->im.npages ?
						 lv->im.npages : end) - first);
	}
	converge_sample(&lv->cv);
	lv->dirty_mbps = since > 0 ? *pages * (double)LMIG_PAGE_SIZE / since / 1e6 : 0;
	lv->t_harvest = t;
	return 0;
}

/*
 * The object check's content comparison (--object-writes any) can be most
 * of a harvest, and so of the predicted downtime: say so, since the remedy
 * is the operator's knowledge of who writes the object, not a throttle.
 */
static bool compare_bound(const struct live_ctl *lv)
{
	return lv->trk.obj_rescans && lv->hs_min * 1000 > lv->o->downtime_ms / 2.0;
}

static const char *converge_hint(const struct live_ctl *lv)
{
	if (lv->trk.obj_rescans)
		return "most of each harvest compares every page in case a system call wrote the object: "
		       "--object-writes mapped if only mappings write it, or a larger --downtime-ms";
	return "use a cheaper tracker or a larger budget";
}

/* Over budget and out of rounds or time: "did not converge", and what it saw. */
static enum live_step not_converged(struct live_ctl *lv, struct live_verdict *v,
				    enum live_fail why, double pred)
{
	unsigned int next = lv->st->rounds;
	bool cb = compare_bound(lv);
	char within[48];

	if (why == LIVE_FAIL_ROUNDS)
		snprintf(within, sizeof(within), "in %u rounds", lv->o->max_rounds);
	else
		snprintf(within, sizeof(within), "within --timeout %d s", lv->o->live_timeout_ms / 1000);
	lmig_err("did not converge %s: %.1f MB/s dirtied, %.1f MB/s carried, predicted downtime %.0f ms > --downtime-ms %u%s%s%s",
		 within, lv->dirty_mbps, lv->st->round[next - 1].rate_mbps, pred * 1000,
		 lv->o->downtime_ms, cb ? " (" : "", cb ? converge_hint(lv) : "", cb ? ")" : "");
	v->fail = why;
	return v->step = LIVE_FAIL;
}

/*
 * Between two live rounds: harvest, predict the downtime of a switch-over
 * now, and either go on, or arrange to freeze after one more round, or
 * give up because the migration does not converge.
 */
static enum live_step next_round(struct live_ctl *lv, uint64_t *todo, struct live_verdict *v)
{
	const struct send_opts *o = lv->o;
	unsigned int next = lv->st->rounds;
	struct converge_in ci;
	double pred;
	bool lifted;

	if (harvest(lv, todo, &v->pages)) {
		v->fail = LIVE_FAIL_HARVEST;
		return v->step = LIVE_FAIL;
	}
	/*
	 * The final harvest runs with the workload paused; a harvest while it
	 * runs can cost more (write-protecting pages it is using means TLB
	 * shootdowns on its CPUs).  The cheapest harvest seen so far is the
	 * better guess of what the paused one will cost.
	 */
	if (!lv->hs_min || lv->harvest_s < lv->hs_min)
		lv->hs_min = lv->harvest_s;
	pred = splan_pause_s(lv->hs_min, lv->link_rate > 0 ? v->pages * lv->wire_per_page /
			     lv->link_rate : 0, lv->nparts) + SWITCH_OVERHEAD_S;
	lv->predicted_s = pred;
	ci = (struct converge_in){ .dirty_mbps = lv->dirty_mbps,
				   .link_mbps = lv->st->round[next - 1].rate_mbps, .pred_s = pred,
				   .pages = v->pages, .npages = lv->im.npages };
	/* A limit lifted now makes this prediction stale: wait for the next harvest. */
	lifted = converge_round(&lv->cv, &ci);
	if (pred * 1000 <= o->downtime_ms && !lifted) {
		lv->freeze_next = true;
		/* The disk limit goes a round early: see converge_before_freeze(). */
		converge_io_lift(&lv->cv);
	} else if (next >= 6 && (pred - lv->hs_min) * 1000 < o->downtime_ms / 10.0 &&
		   (lv->hs_min + SWITCH_OVERHEAD_S) * 1000 > o->downtime_ms) {
		/* Little left to send, yet over budget: the harvest itself is. */
		lmig_err("cannot converge: the %s tracker's harvest alone takes %.0f ms, more than --downtime-ms %u (%s)",
			 lv->trk.ops->name, lv->hs_min * 1000, o->downtime_ms, converge_hint(lv));
		v->fail = LIVE_FAIL_HARVEST_COST;
		return v->step = LIVE_FAIL;
	} else if (next >= o->max_rounds) {
		return not_converged(lv, v, LIVE_FAIL_ROUNDS, pred);
	} else if (o->live_timeout_ms && (now_s() - lv->t0) * 1000 >= o->live_timeout_ms) {
		return not_converged(lv, v, LIVE_FAIL_TIMEOUT, pred);
	}
	return v->step = LIVE_NEXT;
}

enum live_step live_round_end(struct live_ctl *lv, const struct live_sample *smp, uint64_t *todo,
			      struct live_verdict *v)
{
	*v = (struct live_verdict){ .step = LIVE_DONE };
	account(lv, smp);
	if (smp->final)
		return v->step;
	if (lv->freeze_next)
		return v->step = LIVE_FREEZE_AFTER_DRAIN;
	return next_round(lv, todo, v);
}

int live_switch_over(struct live_ctl *lv, uint64_t *todo)
{
	converge_before_freeze(&lv->cv);
	lv->t_freeze = now_s();
	tracemark("freeze (%s)", freezer_name(&lv->fz));
	if (freezer_freeze(&lv->fz))
		return -1;
	lv->st->freeze_s = lv->fz.freeze_s;
	lv->st->t_frozen = now_s();
	memset(todo, 0, bitmap_words(lv->im.npages) * 8);
	memset(lv->fh.bm, 0, bitmap_words(lv->im.npages) * 8);
	splan_order(lv->st->rounds > 1 ? lv->part_dirty : NULL, lv->nparts, lv->order);
	lv->final_t0 = lv->st->t_frozen;
	lv->fh.trk = &lv->trk;
	lv->fh.npages = lv->im.npages;
	lv->fh.part_pages = FINAL_PART_PAGES;
	lv->fh.nparts = lv->nparts;
	lv->fh.order = lv->order;
	fh_start(&lv->fh);
	return 0;
}

int live_final_part(struct live_ctl *lv, uint64_t *todo, uint64_t *from, uint64_t *pages)
{
	int more = fh_poll(&lv->fh, todo, from);

	if (more)
		return more;
	/* The whole harvest: its rates, and the final round's record. */
	*pages = bitmap_count(todo, lv->im.npages);
	converge_sample(&lv->cv);
	lv->harvest_s = lv->fh.busy_s;
	lv->dirty_mbps = lv->final_t0 > lv->t_harvest ?
			 *pages * (double)LMIG_PAGE_SIZE / (lv->final_t0 - lv->t_harvest) / 1e6 : 0;
	lv->t_harvest = lv->final_t0;
	lv->st->final_harvest_s = lv->fh.busy_s;
	lv->st->t_harvested = now_s();
	lv->st->round[lv->st->rounds - 1].dirty_pages = *pages;
	lv->st->round[lv->st->rounds - 1].harvest_ms = lv->fh.busy_s * 1000;
	lv->st->round[lv->st->rounds - 1].dirty_mbps = lv->dirty_mbps;
	return 0;
}

void live_round_begun(struct live_ctl *lv)
{
	struct round_stat *r = &lv->st->round[lv->st->rounds - 1];

	r->dirty_mbps = lv->dirty_mbps;
	r->predicted_downtime_ms = lv->predicted_s * 1000;
	r->harvest_ms = lv->harvest_s * 1000;
	converge_record(&lv->cv, r);
}

int live_check_timeout(struct live_ctl *lv, uint64_t round_pages)
{
	const struct send_opts *o = lv->o;
	char a[32], b[32];

	if (lv->fz.frozen)
		return 0;
	if (lv->fz.hook && lv->fz.hook->abandoned && lv->fz.hook->abandoned(lv->fz.hook->ctx))
		return -1;
	if (!o->live_timeout_ms || (now_s() - lv->t0) * 1000 < o->live_timeout_ms)
		return 0;
	if (lv->st->rounds == 1)
		return lmig_err("did not converge within --timeout %d s: still in round 0, %s of %s sent",
				o->live_timeout_ms / 1000,
				fmt_bytes(a, sizeof(a), (double)round_pages * LMIG_PAGE_SIZE),
				fmt_bytes(b, sizeof(b), (double)lv->im.size));
	return lmig_err("did not converge within --timeout %d s (round %u, %.1f MB/s dirtied, predicted downtime %.0f ms > --downtime-ms %u)",
			o->live_timeout_ms / 1000, lv->st->rounds - 1, lv->dirty_mbps,
			lv->predicted_s * 1000, o->downtime_ms);
}

void live_progress(const struct live_ctl *lv, uint64_t round_pages, struct image_progress *p)
{
	const struct round_stat *r = &lv->st->round[lv->st->rounds - 1];
	double rate = lv->link_rate > 0 && lv->wire_per_page > 0 ?
		      lv->link_rate / lv->wire_per_page * LMIG_PAGE_SIZE / 1e6 : 0;
	uint64_t todo = r->dirty_pages > round_pages ? r->dirty_pages - round_pages : 0;

	p->round = r->round;
	p->frozen = r->frozen;
	p->dirty_mbps = lv->dirty_mbps;
	p->bytes_wire = lv->st->bytes_wire;
	p->rate_mbps = rate;
	p->eta_s = rate > 0 ? todo * (double)LMIG_PAGE_SIZE / (rate * 1e6) : 0;
	p->predicted_ms = lv->predicted_s * 1000;
	converge_progress(&lv->cv, p);
}

void live_commit_point(struct live_ctl *lv)
{
	freezer_commit_point(&lv->fz);
}

void live_committed(struct live_ctl *lv)
{
	lv->st->t_committed = now_s();
	lv->st->downtime_s = lv->st->t_committed - lv->t_freeze;
	lv->st->converged = true;
	if (lv->fz.hook && lv->fz.hook->committed)
		lv->fz.hook->committed(lv->fz.hook->ctx);
}

void live_close(struct live_ctl *lv, bool ok, bool unknown)
{
	struct image_stats *st;

	if (!lv)
		return;
	st = lv->st;
	/*
	 * A live source is resumed unless the receiver acknowledged a
	 * verified commit; after one it must never run next to its copy,
	 * nor after a commit whose outcome is unknown.
	 */
	converge_close(&lv->cv);
	tracemark("%s", ok ? "commit" : "abort");
	st->source_state = "running";
	if (ok) {
		freezer_commit(&lv->fz, lv->o->then_kill);
		st->source_state = lv->o->then_kill ? "killed" : "paused";
	} else if (unknown) {
		/* Never next to a copy that may exist: paused, not killed either. */
		freezer_commit(&lv->fz, false);
		st->source_state = lv->fz.frozen ? "paused" : "running";
	} else {
		bool was_frozen = lv->fz.frozen;

		if (freezer_thaw(&lv->fz))
			st->source_state = "frozen";	/* the error says why */
		else if (was_frozen)
			st->source_state = "resumed";
	}
	fh_stop(&lv->fh);	/* a send that failed in the final round */
	free(lv->fh.bm);
	free(lv->part_dirty);
	free(lv->order);
	if (lv->trk_ok) {
		st->object_check = lv->trk.obj != NULL;
		st->object_walk_s = lv->trk.obj_walk_s;
		st->object_rescans = lv->trk.obj_rescans;
		st->map_rescans = lv->trk.map_rescans;
		st->pages_holed = lv->trk.pages_holed;
		tracker_close(&lv->trk);
	}
	free(lv);
}

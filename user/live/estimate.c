// SPDX-License-Identifier: GPL-2.0-only
/* lmig estimate's prediction (estimate.h): a pre-copy played round by round. */
#include <math.h>

#include <lmig/wire.h>

#include "live/estimate.h"
#include "live/switch_plan.h"
#include "live/throttle_policy.h"

/* How the curve goes on beyond its last point. */
struct tail {
	enum { TAIL_LINEAR, TAIL_EXP } kind;
	double slope;		/* LINEAR: pages/s */
	double w, tau;		/* EXP: W (1 - exp(-t / tau)) */
};

/*
 * Through the last two points (the origin and the only one, if one): a
 * bend gives the exponential that passes through both; none, the line.
 * A curve that does not grow any more from the one point to the next
 * stays flat (the exponential's tau tends to 0).
 */
static struct tail fit(const struct est_curve *c)
{
	struct tail tl = { TAIL_LINEAR, 0, 0, 0 };
	double a, b, pa, pb, q, lo, hi;

	if (c->n == 0)
		return tl;
	a = c->n > 1 ? c->t[c->n - 2] : 0;
	pa = c->n > 1 ? c->pages[c->n - 2] : 0;
	b = c->t[c->n - 1];
	pb = c->pages[c->n - 1];
	if (b <= a)
		return tl;
	tl.slope = (pb - pa) / (b - a);
	/* Without a first point: a line.  Flat or falling: the fit below stays at pb. */
	if (a <= 0 || pa <= 0)
		return tl;
	q = pb / pa;
	/* No bend (within 1 %): a line. */
	if (q >= 0.99 * b / a)
		return tl;
	/* (1 - e^(-b/tau)) / (1 - e^(-a/tau)) falls from b/a (tau -> inf) to 1 (tau -> 0). */
	lo = 1e-3 * a;
	hi = 1e6 * b;
	for (int i = 0; i < 200; i++) {
		double tau = sqrt(lo * hi);
		double g = (1 - exp(-b / tau)) / (1 - exp(-a / tau));

		if (g > q)
			hi = tau;
		else
			lo = tau;
	}
	tl.kind = TAIL_EXP;
	tl.tau = sqrt(lo * hi);
	tl.w = pb / (1 - exp(-b / tl.tau));
	return tl;
}

static double tail_at(const struct est_curve *c, const struct tail *tl, double t)
{
	double b = c->t[c->n - 1], pb = c->pages[c->n - 1];

	if (tl->kind == TAIL_EXP)
		return tl->w * (1 - exp(-t / tl->tau));
	return pb + tl->slope * (t - b);
}

double est_dirty(const struct est_curve *c, uint64_t npages, double t)
{
	double d;
	unsigned int i;

	if (c->n == 0 || t <= 0)
		return 0;
	if (t <= c->t[0]) {
		d = c->pages[0] * t / c->t[0];
	} else {
		for (i = 1; i < c->n && t > c->t[i]; i++)
			;
		if (i < c->n) {
			d = c->pages[i - 1] + (c->pages[i] - c->pages[i - 1]) * (t - c->t[i - 1]) /
			    (c->t[i] - c->t[i - 1]);
		} else {
			struct tail tl = fit(c);

			d = tail_at(c, &tl, t);
		}
	}
	return d < (double)npages ? d : (double)npages;
}

/* Simpson's rule over [a, b], where the curve has no corner but its cap. */
static double simpson(const struct est_curve *c, uint64_t npages, double a, double b)
{
	enum { STEPS = 64 };	/* even */
	double h = (b - a) / STEPS;
	double sum = est_dirty(c, npages, a) + est_dirty(c, npages, b);

	for (int i = 1; i < STEPS; i++)
		sum += (i % 2 ? 4 : 2) * est_dirty(c, npages, a + i * h);
	return sum * h / 3;
}

double est_dirty_mean(const struct est_curve *c, uint64_t npages, double t)
{
	double area = 0, a = 0;

	if (c->n == 0 || t <= 0)
		return 0;
	/* Piece by piece between the points, so no corner falls inside a piece. */
	for (unsigned int i = 0; i < c->n && c->t[i] < t; i++) {
		area += simpson(c, npages, a, c->t[i]);
		a = c->t[i];
	}
	area += simpson(c, npages, a, t);
	return area / t;
}

double est_working_set(const struct est_curve *c, uint64_t npages)
{
	struct tail tl = fit(c);
	double w;

	if (c->n == 0)
		return npages;
	if (tl.kind == TAIL_EXP)
		w = tl.w;
	else if (tl.slope <= 0)
		w = c->pages[c->n - 1];
	else
		w = npages;
	if (w < 1)
		w = 1;
	return w < (double)npages ? w : (double)npages;
}

double est_cheapest(const struct est_input *in, unsigned int k)
{
	unsigned int n = in->nharvests < EST_HARVESTS_MAX ? in->nharvests : EST_HARVESTS_MAX;
	double e = 0;

	if (!n || !k)
		return in->harvest_s;
	/* The i-th cheapest is the least of k draws when all are from it up, not all above it. */
	for (unsigned int i = 0; i < n; i++)
		e += in->harvests[i] * (pow((double)(n - i) / n, k) - pow((double)(n - i - 1) / n, k));
	return e;
}

/* What the tracker finds after an interval t of a round that sent `sent` pages. */
struct play {
	const struct est_input *in;
	double share;			/* the writer's CPU share once throttled */
	unsigned int throttle_from;	/* the first round the limit holds in */
	double ws;			/* working set, pages */
	double pace;			/* the writer's clock while migrating (est_pace()) */
	/* --throttle auto's course (lmig send): its decisions, played. */
	bool autoplay;
	bool follows;			/* the writer's pace follows its CPU (not idle) */
	double cpus;			/* CPUs the writer uses without a limit */
	double limit;			/* CPUs, the limit in force; 0: none */
	struct tpol_conf conf;
	struct tpol_state st;
};

/* The CPUs the writer uses under the limit in force: a little more than the quota. */
static double cpus_used(const struct play *p)
{
	double l = p->limit + p->in->overrun_cpus;

	return p->limit > 0 && l < p->cpus ? l : p->cpus;
}

/* The share of its pace the writer keeps in round k. */
static double share_at(const struct play *p, unsigned int k)
{
	if (!p->autoplay)
		return k >= p->throttle_from ? p->share : 1;
	if (!p->follows)
		return 1;
	return cpus_used(p) / p->cpus;
}

/*
 * Pages found dirty after round k lasted t (harvest to harvest), having
 * sent `sent` pages.  A content-comparing tracker does not count a page of
 * the round rewritten before its turn: those pages (the round's share of
 * the working set) count with the curve's mean over the round.
 */
static double found(const struct play *p, unsigned int k, double sent, double t)
{
	const struct est_input *in = p->in;
	double c = share_at(p, k) * p->pace;
	double d = est_dirty(&in->curve, in->npages, c * t), f;

	if (!in->content_compare)
		return d;
	f = sent / p->ws;
	if (f > 1)
		f = 1;
	return (1 - f) * d + f * est_dirty_mean(&in->curve, in->npages, c * t);
}

static double pages_s(const struct est_input *in, double pages)
{
	return pages * in->page_wire / in->link_bps;
}

/* A round after a harvest: its first burst bytes go at once. */
static double round_s(const struct est_input *in, double pages)
{
	double b = pages * in->page_wire - in->burst;

	return b > 0 ? b / in->link_bps : 0;
}

/*
 * live/converge.c's converge_round() at a harvest after an interval of
 * since s (look s of the CPU counters) that found dirty pages, predicting
 * pred: the decision, carried out on the play's limit.  True when a limit
 * was lifted (precopy.c then does not act on this prediction).
 */
static bool decide(struct play *p, struct est_run *r, double dirty, double since, double look,
		   double pred)
{
	const struct est_input *in = p->in;
	struct tpol_round tr = {
		.dirty_mbps = since > 0 ? dirty * (double)LMIG_PAGE_SIZE / since / 1e6 : 0,
		.link_mbps = in->link_bps / in->page_wire * (double)LMIG_PAGE_SIZE / 1e6,
		.pred_s = pred, .look_s = look, .cpu_used = cpus_used(p), .cur_cpus = p->limit,
		.pages = (uint64_t)dirty, .npages = in->npages,
	};
	struct tpol_decision d;
	double before = p->limit;

	tpol_decide(&p->st, &p->conf, &tr, &d);
	switch (d.action) {
	case TPOL_KEEP:
		return false;
	case TPOL_LIFT:
		p->limit = 0;
		r->throttle_lifted = true;
		return true;
	case TPOL_START:
		tpol_start(&p->st, &p->conf, &tr, 0, &d);
		r->throttle_round = r->rounds;
		/* fall through */
	case TPOL_SET:
		p->limit = d.cpus;
		break;
	}
	/* A limit set again to (nearly) the same is no step: cgroups count in microseconds. */
	if (fabs(p->limit - before) > 1e-6 * p->limit)
		r->throttle_steps++;
	if (share_at(p, r->rounds) < r->share)
		r->share = share_at(p, r->rounds);
	return false;
}

/*
 * lmig send, as live/precopy.c's next_round() decides after each round.
 * Long because: one loop that walks precopy.c's branches in its order.
 */
static void run_lmig(struct play *p, struct est_run *r)
{
	const struct est_input *in = p->in;
	double nz = (double)(in->npages - in->zero_pages);
	double t0 = nz * in->page_wire / in->link_bps +
		    in->zero_pages * in->zero_wire / in->link_bps;
	double sent = nz, iv = t0, hs = in->harvest_s;
	double hl = in->harvest_live_s > 0 ? in->harvest_live_s : hs;
	/* The CPU counters start before the set-up; the first harvest ends the look. */
	double look = in->setup_s + t0 + hl;

	r->total_s = in->setup_s + t0;
	r->wire_bytes = nz * in->page_wire + in->zero_pages * in->zero_wire;
	r->rounds = 1;
	for (;;) {
		double dirty = found(p, r->rounds - 1, sent, iv);
		double pred;
		bool lifted;

		/* precopy.c's hs_min: the cheapest of the harvests so far. */
		hs = est_cheapest(in, r->rounds);
		pred = splan_pause_s(hs, pages_s(in, dirty), in->harvest_parts) + EST_LMIG_SWITCH_S;
		lifted = p->autoplay && decide(p, r, dirty, r->rounds == 1 ? iv + in->setup_s : iv,
					       look, pred);

		r->predicted_downtime_s = pred;
		r->share_last = share_at(p, r->rounds);
		if (pred * 1000 <= in->downtime_ms && !lifted) {
			/* One more live round, then the final one with the workload paused. */
			double t = round_s(in, dirty), last;

			r->total_s += hl + t;
			r->wire_bytes += dirty * in->page_wire;
			last = found(p, r->rounds, dirty, t + hl);
			r->downtime_s = splan_pause_s(hs, round_s(in, last), in->harvest_parts) +
					in->switch_s;
			r->total_s += r->downtime_s;
			r->wire_bytes += last * in->page_wire;
			r->rounds += 2;
			r->converged = true;
			return;
		}
		if (r->rounds >= 6 && (pred - hs) * 1000 < in->downtime_ms / 10.0 &&
		    (hs + EST_LMIG_SWITCH_S) * 1000 > in->downtime_ms) {
			r->fail = EST_FAIL_HARVEST;
			return;
		}
		if (r->rounds >= in->max_rounds) {
			r->fail = EST_FAIL_ROUNDS;
			return;
		}
		iv = round_s(in, dirty) + hl;
		look = iv;
		r->total_s += iv;
		r->wire_bytes += dirty * in->page_wire;
		sent = dirty;
		r->rounds++;
	}
}

/*
 * QEMU 7.2: migration_iteration_run() and ram_save_pending(), a step of
 * EST_QEMU_STEP_S at a time; rounds counts the synchronisations of the
 * dirty bitmap, as dirty-sync-count does.
 */
static void run_qemu(struct play *p, struct est_run *r)
{
	const struct est_input *in = p->in;
	double nz = (double)(in->npages - in->zero_pages);
	double left = nz * in->page_wire + in->zero_pages * in->zero_wire;
	double limit = in->link_bps * in->downtime_ms / 1000.0;
	double since = 0, step = in->link_bps * EST_QEMU_STEP_S;
	unsigned int syncs = 0;

	r->wire_bytes = left;
	r->total_s = in->setup_s;
	r->rounds = 1;
	while (syncs < EST_QEMU_SYNCS_MAX) {
		if (left < limit) {
			double inmap = left / in->page_wire;
			double fresh = est_dirty(&in->curve, in->npages,
						 (r->rounds > p->throttle_from ? p->share : 1) * since);

			/* What is dirty again but still in the bitmap adds nothing. */
			fresh *= inmap < p->ws ? 1 - inmap / p->ws : 0;
			left += fresh * in->page_wire;
			r->wire_bytes += fresh * in->page_wire;
			r->total_s += in->harvest_s;
			since = in->harvest_s;
			syncs++;
			r->rounds++;
			r->predicted_downtime_s = left / in->link_bps;
			if (left < limit) {
				double fin = in->final_bps > 0 ? in->final_bps : in->link_bps;

				r->downtime_s = left / fin + in->switch_s;
				r->total_s += r->downtime_s;
				r->rounds++;	/* the last synchronisation, the guest stopped */
				r->converged = true;
				return;
			}
		}
		{
			double send = left < step ? left : step;

			left -= send;
			r->total_s += send / in->link_bps;
			since += send / in->link_bps;
		}
	}
	r->fail = EST_FAIL_ROUNDS;
}

double est_pace(const struct est_input *in)
{
	if (in->kind != EST_LMIG || in->cpu_used <= 0 || in->cpu_quiet <= in->cpu_used ||
	    (in->cpu_busy > 0 && in->cpu_busy < EST_BUSY_MIN))
		return 1;
	return in->cpu_quiet / in->cpu_used;
}

static void run(struct play *p, struct est_run *r)
{
	const struct est_input *in = p->in;

	*r = (struct est_run){ .fail = EST_OK, .share = p->autoplay ? 1 : p->share,
			       .share_last = p->autoplay ? 1 : p->share };
	if (in->link_bps <= 0 || in->page_wire <= 0 || in->npages == 0 ||
	    in->zero_pages > in->npages) {
		r->fail = EST_FAIL_LINK;
		return;
	}
	if (in->kind == EST_QEMU)
		run_qemu(p, r);
	else
		run_lmig(p, r);
}

/* A share held from throttle_from (0: the round the controller's rule gives). */
static void play(const struct est_input *in, double share, double ws, unsigned int from,
		 struct est_run *r)
{
	double t0 = in->link_bps > 0 ? (in->npages - in->zero_pages) * in->page_wire /
				      in->link_bps : 0;
	struct play p = { .in = in, .share = share, .ws = ws, .pace = est_pace(in),
			  .throttle_from = from ? from : t0 >= TPOL_LONG_LOOK_S ? 1 : 2 };

	run(&p, r);
}

void est_run(const struct est_input *in, double share, struct est_run *r)
{
	play(in, share, est_working_set(&in->curve, in->npages), 0, r);
}

void est_run_auto(const struct est_input *in, bool idle_writer, struct est_run *r)
{
	struct play p = {
		.in = in, .share = 1, .ws = est_working_set(&in->curve, in->npages),
		.pace = est_pace(in),
		.autoplay = in->kind == EST_LMIG && in->throttle_max_pct > 0,
		.follows = !idle_writer, .cpus = in->cpu_used > 0 ? in->cpu_used * est_pace(in) : 1,
		.conf = { .enabled = true, .downtime_ms = in->downtime_ms,
			  .max_pct = in->throttle_max_pct },
	};

	run(&p, r);
}

void est_predict(const struct est_input *in, struct est_result *res)
{
	double ws = est_working_set(&in->curve, in->npages);
	double nz = in->npages > in->zero_pages ? (double)(in->npages - in->zero_pages) : 0;
	double t0 = in->link_bps > 0 ? nz * in->page_wire / in->link_bps : 0;
	double least = in->least_cpus > 0 ? in->least_cpus : TPOL_CPUS_MIN;
	unsigned int from = 0;
	double lo, hi, aim;
	struct est_run r;
	bool floor_converges;

	*res = (struct est_result){ .verdict = EST_CONVERGES, .share = 1, .share_needed = 1,
				    .working_set = ws };
	res->floor = in->throttle_max_pct ? (100 - in->throttle_max_pct) / 100.0 : 1;
	if (res->floor < TPOL_CPUS_MIN)
		res->floor = TPOL_CPUS_MIN;
	/* A limit is never below the least CPUs: a writer that uses little keeps more. */
	res->pace = est_pace(in);
	if (in->cpu_used > 0 && least / (in->cpu_used * res->pace) > res->floor)
		res->floor = least / (in->cpu_used * res->pace) < 1 ?
			     least / (in->cpu_used * res->pace) : 1;
	/*
	 * A guest's vCPU sleeps between its writer's writes too, but lmig
	 * pipe / proxy --qmp holds a limit under which the prediction falls
	 * and takes up to all but its least: deep enough that the guest
	 * cannot catch up, its pace follows its CPU.
	 */
	res->idle_writer = in->kind != EST_QEMU && in->cpu_busy > 0 && in->cpu_busy < EST_BUSY_MIN;
	if (res->idle_writer)
		res->floor = 1;
	res->link_pps = in->page_wire > 0 ? in->link_bps / in->page_wire : 0;
	res->dirty_pps = t0 > 0 ? est_dirty(&in->curve, in->npages, t0) / t0 : 0;
	play(in, 1, ws, 0, &res->as_is);
	/*
	 * lmig send --throttle auto: the course its controller takes, which
	 * may start a limit even where the migration converges as it is
	 * (rounds that shrink by less than a quarter), or lift one.
	 */
	if (in->kind == EST_LMIG && in->throttle_max_pct && res->as_is.fail != EST_FAIL_LINK) {
		est_run_auto(in, res->idle_writer, &res->throttled);
		res->course = true;
		from = res->throttled.throttle_round;
	}
	if (res->as_is.converged)
		return;
	res->verdict = EST_NEVER;
	res->share_needed = 0;
	/* Without --throttle the floor is 1: as it is. */
	if (res->as_is.fail == EST_FAIL_LINK || (res->course && !res->throttled.converged))
		return;
	play(in, res->floor, ws, from, &r);
	/* r is the bisection's last try below: whether the floor converges is kept. */
	floor_converges = r.converged;
	if (floor_converges) {
		/* The largest share that still converges, held from the limit's first round. */
		lo = res->floor;
		hi = 1;
		for (int i = 0; i < EST_SHARE_STEPS; i++) {
			play(in, (lo + hi) / 2, ws, from, &r);
			if (r.converged)
				lo = (lo + hi) / 2;
			else
				hi = (lo + hi) / 2;
		}
		res->share_needed = lo;
	}
	if (res->course) {
		res->share = res->throttled.share;
		res->verdict = res->share < 1 ? EST_THROTTLE : EST_CONVERGES;
		return;
	}
	if (!floor_converges)
		return;
	/*
	 * What a guest's controller aims at: TPOL_DIRTY_TARGET of the link,
	 * from the dirty rate it measured over round 0; tightened further at
	 * later harvests when that does not converge, so never above what is
	 * needed.
	 */
	lo = res->share_needed;
	aim = res->dirty_pps > 0 ? TPOL_DIRTY_TARGET * res->link_pps / res->dirty_pps : 1;
	if (aim > lo)
		aim = lo;
	if (aim < res->floor)
		aim = res->floor;
	res->share = aim;
	res->verdict = EST_THROTTLE;
	play(in, aim, ws, 0, &res->throttled);
}

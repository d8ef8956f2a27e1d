// SPDX-License-Identifier: GPL-2.0-only
/* The --throttle auto decision (throttle_policy.h): numbers in, a decision out. */
#include "live/throttle_policy.h"

/*
 * The CPU limit aimed at from what the threads used (dirty-limit style),
 * kept between what --throttle-max leaves them and what they used before.
 */
static double aim(const struct tpol_state *st, const struct tpol_conf *c,
		  const struct tpol_round *r, enum tpol_bound *bound)
{
	double d = r->dirty_mbps > 0.1 ? r->dirty_mbps : 0.1;
	double share = r->cpu_used > 0 ? r->cpu_used * TPOL_DIRTY_TARGET * r->link_mbps / d :
					st->cpu_base;
	double floor = st->below_floor ? 0 : st->cpu_base * (100 - c->max_pct) / 100.0;
	double least = c->min_cpus > 0 ? c->min_cpus : TPOL_CPUS_MIN;

	*bound = TPOL_AIMED;
	if (share > st->cpu_base) {
		share = st->cpu_base;
		*bound = TPOL_AT_BASE;
	}
	if (share < floor) {
		share = floor;
		*bound = TPOL_AT_FLOOR;
	}
	if (share < least) {
		share = least;
		*bound = TPOL_AT_MIN;
	}
	return share;
}

/*
 * TPOL_SET: the new limit, and the disk-write limit that goes with it;
 * falling: the prediction fell since the last harvest.
 */
static void set(const struct tpol_state *st, const struct tpol_conf *c,
		const struct tpol_round *r, bool falling, struct tpol_decision *d)
{
	double share = aim(st, c, r, &d->bound);

	d->action = TPOL_SET;
	d->held = false;
	/*
	 * The switch-over comes after one more round, predicted at the dirty
	 * rate just measured under the current limit: a looser limit now
	 * would let the workload dirty faster than that and overrun the
	 * budget.
	 */
	if ((r->pred_s * 1000 <= c->downtime_ms || (c->hold_converging && falling)) &&
	    r->cur_cpus > 0 && share > r->cur_cpus) {
		share = r->cur_cpus;
		d->held = true;
	}
	d->cpus = share;
	d->why = d->held || share == r->cur_cpus ? TPOL_HOLD :
		 share < r->cur_cpus || r->cur_cpus <= 0 ? TPOL_TIGHTEN : TPOL_RAISE;
	d->io = r->io_on ? TPOL_IO_SET : TPOL_IO_KEEP;
	d->io_bps = r->io_on ? tpol_io_limit(st, share) : 0;
}

/*
 * lift_futile_floor: count the decisions in a row that put the limit at
 * its floor; true once TPOL_FLOOR_PASSES passes ran under it (the first
 * decision plus that many; TPOL_SOFT_FLOOR_PASSES at a soft floor) and
 * the prediction, still over budget, did not fall by a quarter since the
 * first.  A quarter's fall starts a new count from there: the floor
 * works, if slowly.
 */
static bool floor_futile(struct tpol_state *st, const struct tpol_conf *c,
			 const struct tpol_round *r, const struct tpol_decision *d)
{
	unsigned int passes;

	if (!c->lift_futile_floor)
		return false;
	if (d->bound != TPOL_AT_FLOOR && d->bound != TPOL_AT_MIN) {
		st->floor_rounds = 0;
		return false;
	}
	if (!st->floor_rounds || r->pred_s <= 0.75 * st->floor_pred) {
		st->floor_rounds = 1;
		st->floor_pred = r->pred_s;
		return false;
	}
	st->floor_rounds++;
	passes = c->soft_floor && !st->below_floor && d->bound == TPOL_AT_FLOOR ?
		 TPOL_SOFT_FLOOR_PASSES : TPOL_FLOOR_PASSES;
	return st->floor_rounds > passes && r->pred_s * 1000 > c->downtime_ms;
}

/*
 * soft_floor: a limit about to be lifted at what --throttle-max leaves
 * goes below it instead (once): true, with d the new limit.
 */
static bool past_floor(struct tpol_state *st, const struct tpol_conf *c,
		       const struct tpol_round *r, bool falling, struct tpol_decision *d)
{
	if (!c->soft_floor || st->below_floor || d->bound != TPOL_AT_FLOOR)
		return false;
	st->below_floor = true;
	st->floor_rounds = 0;
	set(st, c, r, falling, d);
	floor_futile(st, c, r, d);
	return true;
}

static void lift(struct tpol_state *st, const struct tpol_round *r, enum tpol_why why,
		 struct tpol_decision *d)
{
	*d = (struct tpol_decision){ .action = TPOL_LIFT, .why = why,
				     .cpu_taken_pct = 100 - 100 * r->cpu_used / st->cpu_base };
	st->off = true;
	st->on = false;
}

void tpol_decide(struct tpol_state *st, const struct tpol_conf *c, const struct tpol_round *r,
		 struct tpol_decision *d)
{
	bool bad, falling, shrinking;

	*d = (struct tpol_decision){ .action = TPOL_KEEP };
	/*
	 * The first harvest is compared with what round 0 took, the whole
	 * image: the "prediction" before any.  (Its dirty rate counts
	 * distinct pages, which saturates over a long round: a writer faster
	 * than the link can show below it, but the round does not shrink.)
	 */
	if (!st->prev_pred)
		st->prev_pred = r->look_s;
	falling = r->pred_s < st->prev_pred;
	shrinking = r->pred_s <= 0.75 * st->prev_pred;
	bad = r->dirty_mbps >= 0.9 * r->link_mbps ||
	      (st->prev_pred > 0 && r->pred_s > 0.75 * st->prev_pred);
	st->prev_pred = r->pred_s;
	st->bad_rounds = bad && r->pred_s * 1000 > c->downtime_ms ? st->bad_rounds + 1 : 0;
	if (!c->enabled || st->off) {
		d->why = c->enabled ? TPOL_GIVEN_UP : TPOL_DISABLED;
		return;
	}
	if (!st->on) {
		bool long_look = r->look_s >= TPOL_LONG_LOOK_S;

		if (st->bad_rounds >= 2) {
			d->action = TPOL_START;
			d->why = TPOL_NOT_CONVERGING;
		} else if (st->bad_rounds && long_look) {
			d->action = TPOL_START;
			d->why = TPOL_LONG_LOOK;
		} else {
			d->why = st->bad_rounds ? TPOL_WATCHING : TPOL_CONVERGING;
		}
		return;
	}
	set(st, c, r, falling, d);
	/*
	 * The CPU it used, measured, not the limit set: a limit takes a while
	 * to bite, and until it does, an undiminished dirty rate says
	 * nothing.  A workload that rewrites most of the memory every round
	 * keeps its count of distinct pages up even when it writes less: no
	 * verdict from that either.
	 */
	if (r->cur_cpus > 0 && r->cpu_used <= 0.5 * st->cpu_base &&
	    r->dirty_mbps >= 0.8 * st->d_before && r->pages < r->npages / 2 &&
	    r->look_s >= c->lift_look_s && !(c->hold_converging && shrinking) &&
	    !(c->tighten_before_lift && d->bound != TPOL_AT_FLOOR && d->bound != TPOL_AT_MIN)) {
		if (!past_floor(st, c, r, falling, d))
			lift(st, r, TPOL_INEFFECTIVE, d);
		return;
	}
	if (floor_futile(st, c, r, d) && !past_floor(st, c, r, falling, d))
		lift(st, r, TPOL_FLOOR_FUTILE, d);
}

void tpol_start(struct tpol_state *st, const struct tpol_conf *c, const struct tpol_round *r,
		double disk_wbps, struct tpol_decision *d)
{
	enum tpol_why why = d->why;

	st->cpu_base = r->cpu_used > TPOL_CPU_BASE_MIN ? r->cpu_used : TPOL_CPU_BASE_MIN;
	st->d_before = r->dirty_mbps;
	st->on = true;
	st->io_base = 0;
	set(st, c, r, false, d);
	floor_futile(st, c, r, d);
	d->why = why;
	/* A workload that also writes to disk gets its disk writes limited too. */
	d->io = disk_wbps >= TPOL_IO_MIN_BPS ? TPOL_IO_START : TPOL_IO_KEEP;
	d->io_bps = 0;
}

int tpol_writers(const struct tpol_thread *th, unsigned int n, pid_t *out, unsigned int max)
{
	bool used[TPOL_THREADS_MAX] = { false };
	uint64_t total = 0, taken = 0;
	unsigned int k = 0;

	if (n > TPOL_THREADS_MAX)
		n = TPOL_THREADS_MAX;
	for (unsigned int i = 0; i < n; i++)
		total += th[i].write_faults;
	if (total < TPOL_WRITERS_MIN_FAULTS)
		return -1;
	while (k < max && taken * 10 < total * 8) {
		int best = -1;

		for (unsigned int i = 0; i < n; i++)
			if (!used[i] && (best < 0 || th[i].write_faults > th[best].write_faults))
				best = i;
		if (best < 0)
			break;
		used[best] = true;
		taken += th[best].write_faults;
		out[k++] = th[best].tid;
	}
	return k * 2 > n ? 0 : (int)k;
}

void tpol_io_started(struct tpol_state *st, double base)
{
	st->io_base = base < TPOL_IO_MIN_BPS ? TPOL_IO_MIN_BPS : base;
}

double tpol_io_limit(const struct tpol_state *st, double cpus)
{
	return st->io_base * cpus / st->cpu_base;
}

bool tpol_short_period(enum tpol_period_rule rule)
{
	return rule != TPOL_PERIOD_LONG;
}

bool tpol_failed(struct tpol_state *st)
{
	st->fails++;
	st->off = st->fails >= TPOL_TRIES;
	return st->off;
}

void tpol_unset(struct tpol_state *st, bool restored)
{
	if (restored)
		st->on = false;
	else
		st->off = true;
}

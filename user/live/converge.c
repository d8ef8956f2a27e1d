// SPDX-License-Identifier: GPL-2.0-only
/*
 * Convergence of a live pre-copy (converge.h): measures the workload at
 * each harvest, asks the decision (throttle_policy.c), and carries it out
 * through host/throttle.h.  Where the probes' (or /proc's) per-thread
 * write faults tell which threads write, only those are limited (v1:
 * moved; v2: a threaded child cgroup).
 */
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "live/converge.h"

_Static_assert(TPOL_IO_MIN_BPS == THROTTLE_IO_MIN_BPS, "one floor for disk-write limits");

static void *probes_opener(void *arg)
{
	struct converge *cv = arg;

	probes_open(&cv->pr, cv->o->pid, 0);
	return NULL;
}

/* The probes opened (or not): st->probes says which. */
static void probes_wait(struct converge *cv)
{
	if (!cv->pr_opening)
		return;
	pthread_join(cv->pr_th, NULL);
	cv->pr_opening = false;
	cv->st->probes = cv->pr.status;
}

void converge_open(struct converge *cv, const struct send_opts *o, struct image_stats *st)
{
	cv->o = o;
	cv->st = st;
	cv->conf = (struct tpol_conf){ .enabled = o->throttle, .downtime_ms = o->downtime_ms,
				       .max_pct = o->throttle_max_pct };
	/* Limits a killed lmig left behind go first (its guard may have done it). */
	if (throttle_restore_files(true, o->progress && o->events ? o->events->restored : NULL,
				   o->events ? o->events->ctx : NULL) < 0) {
		image_tell(o->events, IMAGE_EV_WARNING, NULL, st);
		lmig_err_clear();
	}
	/*
	 * Fault rates and steal per round, if eBPF works here: optional.
	 * Loading them takes tens of ms, which the migration need not wait
	 * for: they open beside round 0, and count from when they are
	 * attached (the first sample's interval is theirs).
	 */
	cv->pr_opening = pthread_create(&cv->pr_th, NULL, probes_opener, cv) == 0;
	if (!cv->pr_opening) {
		probes_open(&cv->pr, o->pid, 0);
		st->probes = cv->pr.status;
	}
}

void converge_mark(struct converge *cv)
{
	tsnap_take(cv->o->pid, &cv->snap[1]);
}

void converge_sample(struct converge *cv)
{
	probes_wait(cv);
	cv->ps_ok = cv->pr.ok && !probes_sample(&cv->pr, &cv->ps);
}

/*
 * The threads that write, into tids (0: the whole process): from the
 * probes' write faults since the last harvest; from /proc's minor faults
 * when those are too few to tell.
 */
static unsigned int probe_dirtiers(struct converge *cv)
{
	struct tpol_thread t[TPOL_THREADS_MAX];
	unsigned int nt = cv->ps.nthreads < TPOL_THREADS_MAX ? cv->ps.nthreads : TPOL_THREADS_MAX;
	int n;

	for (unsigned int i = 0; i < nt; i++)
		t[i] = (struct tpol_thread){ .tid = cv->ps.threads[i].tid,
					     .write_faults = cv->ps.threads[i].c.write_faults };
	n = tpol_writers(t, nt, cv->tids, THROTTLE_MAX_TIDS);
	if (n < 0)
		return tsnap_dirtiers(&cv->snap[0], &cv->snap[1], cv->tids, THROTTLE_MAX_TIDS);
	return n;
}

/*
 * Applying a limit failed (the error goes to the report): tried again at
 * the next bad harvest, since a thread that moved or exited meanwhile is
 * enough to fail one attempt; after TPOL_TRIES, given up.
 */
static void failed(struct converge *cv)
{
	struct throttle_note *n = &cv->st->throttle_note;
	*n = (struct throttle_note){ .kind = THROTTLE_NOTE_CANNOT,
				     .retry = !tpol_failed(&cv->pol) };
	snprintf(n->err, sizeof(n->err), "%s", lmig_errmsg());
	lmig_err_clear();
	if (cv->o->progress)
		image_tell(cv->o->events, IMAGE_EV_THROTTLE, NULL, cv->st);
}

/*
 * With the CPU limit in place: the disk writes too (v1: the threads that
 * did most of them).  Why not, if not, goes to the report; the CPU limit
 * stays either way.
 */
static void io_start(struct converge *cv, double wbps)
{
	struct throttle_io_note *n = &cv->st->throttle_io_note;
	pid_t tids[THROTTLE_MAX_TIDS];
	unsigned int nt = tsnap_diskwriters(&cv->snap[0], &cv->snap[1], tids, THROTTLE_MAX_TIDS);

	if (throttle_io_init(&cv->th, tids, nt)) {
		*n = (struct throttle_io_note){ .kind = THROTTLE_IO_NOTE_NOT_LIMITED, .bps = wbps };
		snprintf(n->err, sizeof(n->err), "%s", lmig_errmsg());
		lmig_err_clear();
		return;
	}
	tpol_io_started(&cv->pol, cv->th.io.per_thread ?
			tsnap_wbps(&cv->snap[0], &cv->snap[1], tids, nt) : wbps);
	*n = (struct throttle_io_note){ .kind = THROTTLE_IO_NOTE_LIMITED,
					.per_thread = cv->th.io.per_thread, .v2 = cv->th.io.v2,
					.bps = cv->pol.io_base, .ndev = cv->th.io.ndev };
	snprintf(n->cg, sizeof(n->cg), "%s", cv->th.io.cg);
}

/* Set up a limit on the threads that write (or the process); -1 if that failed. */
static int start(struct converge *cv, struct tpol_round *r, struct tpol_decision *d)
{
	struct throttle_note *n = &cv->st->throttle_note;
	double wbps;

	cv->ntids = cv->ps_ok ? probe_dirtiers(cv) :
		    tsnap_dirtiers(&cv->snap[0], &cv->snap[1], cv->tids, THROTTLE_MAX_TIDS);
	if (throttle_init(&cv->th, cv->o->pid, cv->tids, cv->ntids)) {
		failed(cv);
		return -1;
	}
	if (!cv->th.per_thread)
		cv->ntids = 0;
	r->cpu_used = tsnap_cpus(&cv->snap[0], &cv->snap[1], cv->tids, cv->ntids);
	wbps = tsnap_wbps(&cv->snap[0], &cv->snap[1], NULL, 0);
	tpol_start(&cv->pol, &cv->conf, r, wbps, d);
	cv->st->throttled = true;
	*n = (struct throttle_note){ .kind = THROTTLE_NOTE_APPLIED, .threads = cv->ntids != 0,
				     .v2 = cv->th.v2 };
	snprintf(n->cg, sizeof(n->cg), "%s", cv->th.tcg[0] ? cv->th.tcg : cv->th.cg);
	if (d->io == TPOL_IO_START)
		io_start(cv, wbps);
	if (cv->th.io.on) {
		d->io = TPOL_IO_SET;
		d->io_bps = tpol_io_limit(&cv->pol, d->cpus);
	}
	return 0;
}

/* The CPU limit (and the disk-write limit with it) set to what d says. */
static void apply(struct converge *cv, const struct tpol_decision *d)
{
	struct throttle_io_note *n = &cv->st->throttle_io_note;

	if (throttle_set(&cv->th, d->cpus)) {
		failed(cv);
		/*
		 * Put back what was applied, so the next bad harvest can start
		 * afresh; if that fails too, no more tries: the end restores it.
		 */
		if (throttle_restore(&cv->th)) {
			lmig_err_clear();
			tpol_unset(&cv->pol, false);
		} else {
			tpol_unset(&cv->pol, true);
		}
		return;
	}
	if (d->io == TPOL_IO_SET && cv->th.io.on && throttle_io_set(&cv->th, d->io_bps)) {
		*n = (struct throttle_io_note){ .kind = THROTTLE_IO_NOTE_SET_FAILED };
		snprintf(n->err, sizeof(n->err), "%s", lmig_errmsg());
		lmig_err_clear();
		if (throttle_io_restore(&cv->th.io) == 0)
			throttle_state_save(&cv->th);
	}
}

/* Useless (it only slows the workload): lifted, and said so. */
static void lift(struct converge *cv, const struct tpol_round *r, const struct tpol_decision *d)
{
	struct throttle_note *n = &cv->st->throttle_note;
	*n = (struct throttle_note){ .kind = THROTTLE_NOTE_INEFFECTIVE,
				     .cpu_taken_pct = d->cpu_taken_pct, .dirty_mbps = r->dirty_mbps,
				     .dirty_before_mbps = cv->pol.d_before };
	if (throttle_restore(&cv->th))
		lmig_err_clear();
	if (cv->o->progress)
		image_tell(cv->o->events, IMAGE_EV_THROTTLE, NULL, cv->st);
}

bool converge_round(struct converge *cv, const struct converge_in *in)
{
	struct tpol_round r;
	struct tpol_decision d;

	cv->snap[0] = cv->snap[1];
	tsnap_take(cv->o->pid, &cv->snap[1]);
	r = (struct tpol_round){
		.dirty_mbps = in->dirty_mbps, .link_mbps = in->link_mbps, .pred_s = in->pred_s,
		.look_s = cv->snap[1].t - cv->snap[0].t,
		.cpu_used = tsnap_cpus(&cv->snap[0], &cv->snap[1], cv->tids, cv->ntids),
		.cur_cpus = cv->th.share, .io_on = cv->th.io.on,
		.pages = in->pages, .npages = in->npages,
	};
	tpol_decide(&cv->pol, &cv->conf, &r, &d);
	switch (d.action) {
	case TPOL_KEEP:
		return false;
	case TPOL_LIFT:
		lift(cv, &r, &d);
		return true;
	case TPOL_START:
		if (start(cv, &r, &d) == 0)
			apply(cv, &d);	/* the first limit */
		return false;
	case TPOL_SET:
		apply(cv, &d);
		return false;
	}
	return false;
}

void converge_record(struct converge *cv, struct round_stat *r)
{
	r->cpu_used = tsnap_cpus(&cv->snap[0], &cv->snap[1], cv->tids, cv->ntids);
	r->throttle_cpus = cv->pol.on ? cv->th.share : 0;
	r->io_limit_mbps = cv->pol.on && cv->th.io.on ? cv->th.io.bps / 1e6 : 0;
	r->disk_write_mbps = tsnap_wbps(&cv->snap[0], &cv->snap[1], NULL, 0) / 1e6;
	if (cv->ps_ok && cv->ps.interval_s > 0) {
		double iv = cv->ps.interval_s;

		r->faults_per_s = cv->ps.c.faults / iv;
		r->write_faults_per_s = cv->ps.c.write_faults / iv;
		r->guest_faults_per_s = cv->ps.c.guest_faults / iv;
		r->guest_exits_per_s = cv->ps.c.guest_exits / iv;
		r->steal_pct = cv->ps.steal_pct;
	}
}

void converge_io_lift(struct converge *cv)
{
	if (cv->pol.on && cv->th.io.on && !throttle_io_restore(&cv->th.io))
		throttle_state_save(&cv->th);
}

void converge_before_freeze(struct converge *cv)
{
	/*
	 * A thread whose write waits in the disk throttle cannot stop until
	 * the write is done: the disk limit was lifted when the switch-over
	 * was decided, a round before, so the queued writes are done by now.
	 */
	converge_io_lift(cv);
	/*
	 * A thread that used up its CPU quota cannot take the stop signal (or
	 * the cgroup freezer) until the next period: lifted just before the
	 * freeze; what it writes in those microseconds is in the final harvest.
	 */
	if (cv->pol.on && throttle_set(&cv->th, 0))
		lmig_err_clear();
}

void converge_progress(const struct converge *cv, struct image_progress *p)
{
	p->throttle_pct = cv->pol.on ? cv->th.share * 100 : -1;
	p->io_limit_mbps = cv->pol.on && cv->th.io.on ? cv->th.io.bps / 1e6 : -1;
	p->write_faults_per_s = -1;
	p->steal_pct = -1;
	if (cv->ps_ok && cv->ps.interval_s > 0) {
		p->write_faults_per_s = cv->ps.c.write_faults / cv->ps.interval_s;
		p->steal_pct = cv->ps.steal_pct;
	}
}

void converge_close(struct converge *cv)
{
	if ((cv->pol.on || cv->th.applied) && throttle_restore(&cv->th)) {
		/* The migration's own outcome stands; the operator must know, though. */
		image_tell(cv->o->events, IMAGE_EV_RESTORE_FAILED, NULL, cv->st);
	}
	probes_wait(cv);
	probes_close(&cv->pr);
}

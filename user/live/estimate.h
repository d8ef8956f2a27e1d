/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lmig estimate: the prediction, without the observation.  Given how many
 * distinct pages a workload dirties over intervals of several lengths,
 * the image, the link and the downtime budget, play a pre-copy round by
 * round the way `lmig send` (live/precopy.c) or QEMU 7.2's RAM migration
 * runs it, and say how long it takes, in how many rounds, with what
 * downtime, and whether it converges as it is, only with a CPU limit
 * (live/throttle_policy.c's), or not at all.  Numbers in, numbers out:
 * no I/O, no clock, no global (selftests/test_estimate.c).
 *
 * The dirty curve.  What a round resends is what was dirtied during the
 * round before, counted in distinct pages: a page written twice counts
 * once, so the amount grows more slowly than rate x time and saturates at
 * the working set.  The curve is given as points (t, pages); between them
 * it is linear (through the origin before the first); beyond the last it
 * follows a saturating exponential W (1 - exp(-t / tau)) through the last
 * two points (linear when they show no bend), never above the image.
 *
 * lmig send: round 0 sends every non-zero page (zero pages cost
 * zero_wire each); at the end of each round a harvest (harvest_live_s)
 * yields the pages dirtied since the previous one; the predicted downtime is
 * those pages over the link and the cheapest harvest so far
 * (est_cheapest()), overlapped as splan_pause_s() has it for
 * harvest_parts parts, plus EST_LMIG_SWITCH_S, as precopy.c predicts it.  Within the budget, one more live round sends
 * them, then the workload is paused: the downtime is the final harvest
 * and the pages dirtied during that last live round (overlapped the
 * same way), and the switch-over costs.  A round after a harvest sends its first `burst` bytes at once
 * (--bandwidth's token bucket refilled during the harvest).  Over
 * --max-rounds: not converged.  With a tracker that compares
 * content (scan), a page rewritten before its turn in a round goes out
 * with its new content and is not dirty again: the round's pages count
 * with the mean of the curve over the round instead of its end value.
 *
 * QEMU: round 0 sends every page, zero pages as small records; every
 * EST_QEMU_STEP_S the remaining dirty bytes are compared with link x
 * downtime-limit; below it, the dirty bitmap is synchronised (adding what
 * was dirtied since the previous synchronisation) and compared again:
 * still below, QEMU stops the guest, synchronises once more and sends
 * the rest as fast as the link goes (final_bps: max-bandwidth does not
 * hold the stopped guest's last pass).  Rounds count the synchronisations,
 * the first (at set-up) and the last too, as query-migrate's
 * dirty-sync-count.  No round cap: EST_QEMU_SYNCS_MAX synchronisations
 * without converging count as never.
 *
 * A CPU limit that leaves the writer a share c of its CPU is modelled as
 * its clock slowed to c: the curve becomes D(c t).  For lmig send the
 * limit follows --throttle auto's own decisions (throttle_policy.h's
 * tpol_decide(), fed at every harvest what live/converge.c would measure
 * there: the pages found over the interval, the link, the predicted
 * downtime, the CPU the writer used, the limit in force): when it starts
 * (the first harvest is compared with round 0's length, so a round 1
 * that shrank by a quarter does not count), how it tightens harvest by
 * harvest (its aim assumes the dirty rate is proportional to the CPU,
 * while the distinct pages of a shorter effective interval are more per
 * CPU second, so it tightens again), and a limit lifted as useless (the
 * prediction of that harvest is not acted on, one more round).  For a
 * guest, a held share from the round at which the controller would
 * start it (after two harvests that did not converge, or one after a
 * round 0 of TPOL_LONG_LOOK_S or more).  Never below what --throttle-max
 * leaves it nor below least_cpus CPUs
 * (TPOL_CPUS_MIN for lmig send; for a guest, the least limit lmig pipe /
 * proxy --qmp allows under its downtime-limit, often well above what a
 * guest's sleeping writer needs).  That
 * holds for a writer whose pace is its CPU (a busy vCPU); one that sleeps
 * between writes keeps its pace under a limit (throttle_policy.h lifts
 * such a limit as useless): below EST_BUSY_MIN, no limit is counted on.
 * Not so for a guest (EST_QEMU): its vCPU sleeps between its writer's
 * writes too, but lmig's controller keeps a limit under which the
 * prediction falls, down to least_cpus, and under one well below what
 * the vCPU used the guest cannot catch up.  A limit only a little below
 * what it used is absorbed (it catches up in bursts), so D(c t) is
 * optimistic there (Documentation/estimate.md).
 */
#ifndef LMIG_ESTIMATE_H
#define LMIG_ESTIMATE_H

#include <stdbool.h>
#include <stdint.h>

#define EST_POINTS_MAX		16
#define EST_HARVESTS_MAX	64
/* precopy.c's SWITCH_OVERHEAD_S: the part of its prediction besides harvest and pages. */
#define EST_LMIG_SWITCH_S	0.003
/* QEMU's migration thread looks at what remains this often (BUFFER_DELAY). */
#define EST_QEMU_STEP_S		0.1
#define EST_QEMU_SYNCS_MAX	1000
/*
 * A writer whose busiest thread ran or waited to run less than this share
 * of the time while watched sleeps between its writes: when limited it
 * catches up in bursts, and its pace does not follow its CPU share
 * (throttle_policy.c lifts such a limit as useless).  A busy writer
 * starved by other work waits to run instead: it counts as busy.
 */
#define EST_BUSY_MIN		0.9
/*
 * A process held to a CFS quota uses a little more than it, CPUs: the
 * quota is enforced at the scheduler's tick, so a period can overrun it
 * by up to a tick (measured with --throttle auto's limits:
 * Documentation/estimate.md).  Its dirty rate follows what it uses, so
 * the controller settles where the rate it finds is above its aim.
 * cmd_estimate.c's est_input.overrun_cpus.
 */
#define EST_LIMIT_OVERRUN_CPUS	0.015
/* Bisection steps for the CPU share that converges. */
#define EST_SHARE_STEPS		30

enum est_kind {
	EST_LMIG,		/* lmig send --pid */
	EST_QEMU,		/* QEMU's own pre-copy (also through lmig pipe/proxy) */
};

struct est_curve {
	unsigned int n;
	double t[EST_POINTS_MAX];	/* interval lengths, s, increasing */
	double pages[EST_POINTS_MAX];	/* distinct pages dirtied within one such interval */
};

struct est_input {
	enum est_kind kind;
	uint64_t npages;		/* pages in the image */
	uint64_t zero_pages;		/* of them zero (0 when not known) */
	struct est_curve curve;
	double link_bps;		/* wire bytes per second */
	double final_bps;		/* QEMU: the rate of the last pass, once stopped
					 * (max-bandwidth does not hold it); 0: link_bps */
	double page_wire;		/* wire bytes per non-zero page */
	double zero_wire;		/* wire bytes per zero page */
	double harvest_s;		/* one harvest (lmig) or bitmap sync (QEMU): what
					 * precopy.c's cheapest and the paused one cost */
	/*
	 * lmig: the harvests watched, cheapest first (0: none, harvest_s
	 * alone).  precopy.c predicts with the cheapest of the migration's
	 * harvests so far: after k of them, the model counts the expected
	 * cheapest of k drawn from these (est_cheapest()).
	 */
	unsigned int nharvests;
	double harvests[EST_HARVESTS_MAX];
	double harvest_live_s;		/* lmig: a harvest while the workload runs (the mean
					 * watched), between rounds; 0: harvest_s */
	double setup_s;			/* before round 0 starts */
	double switch_s;		/* switch-over costs besides harvest and pages */
	double burst;			/* lmig: wire bytes a round after a harvest sends at once
					 * (the --bandwidth token bucket filled meanwhile) */
	bool content_compare;		/* the tracker drops pages sent with their new content */
	unsigned int harvest_parts;	/* lmig: the final harvest's parts, its pages sent
					 * while the next is read (switch_plan.h); 0 or 1:
					 * harvest, then send */
	unsigned int downtime_ms;
	unsigned int max_rounds;	/* lmig's --max-rounds (EST_LMIG) */
	unsigned int throttle_max_pct;	/* --throttle-max; 0: no throttle */
	double least_cpus;		/* the least limit, CPUs (QEMU: converge_vm.h's
					 * cvm_least_cpus()); 0: TPOL_CPUS_MIN */
	double cpu_used;		/* CPUs the writer used while watched; 0: not known */
	double cpu_busy;		/* the share of the time its busiest thread ran or
					 * waited to run; 0: not known */
	double overrun_cpus;		/* lmig: CPUs a process uses beyond its limit
					 * (EST_LIMIT_OVERRUN_CPUS) */
	double cpu_quiet;		/* lmig: CPUs it used with no harvest running (a busy
					 * writer's pace while migrating); 0: not known */
};

enum est_verdict {
	EST_CONVERGES,		/* as it is */
	EST_THROTTLE,		/* only with a CPU limit: est_result.share */
	EST_NEVER,		/* not even at the --throttle-max floor */
};

enum est_fail {
	EST_OK,
	EST_FAIL_ROUNDS,	/* lmig: --max-rounds; QEMU: EST_QEMU_SYNCS_MAX */
	EST_FAIL_HARVEST,	/* the harvest alone is over the budget */
	EST_FAIL_LINK,		/* no link rate, or nothing to send through */
};

/* One predicted migration. */
struct est_run {
	bool converged;
	enum est_fail fail;
	unsigned int rounds;		/* as lmig send and QEMU count them, the final one too */
	double total_s;
	double downtime_s;		/* predicted real downtime (converged) */
	double predicted_downtime_s;	/* what lmig/QEMU predicted when it decided */
	double wire_bytes;
	double share;			/* the CPU share the writer kept (1: no limit); with
					 * --throttle auto's course, the tightest */
	/* lmig send with --throttle auto's course played (est_run_auto()): */
	unsigned int throttle_round;	/* the first round a limit held in; 0: none */
	unsigned int throttle_steps;	/* limits set: the first, and each change */
	bool throttle_lifted;		/* lifted as useless (TPOL_INEFFECTIVE) */
	double share_last;		/* the share in force at the switch-over (1: none) */
};

struct est_result {
	enum est_verdict verdict;
	struct est_run as_is;
	/*
	 * With a limit: for lmig send, --throttle auto's course as played
	 * (est_run_auto(), also when it converges as it is); for a guest,
	 * at .share (EST_THROTTLE).
	 */
	struct est_run throttled;
	double share;			/* EST_THROTTLE: the share --throttle auto would leave
					 * (lmig send: at its tightest) */
	double share_needed;		/* the largest share that converges (1: no limit needed) */
	double floor;			/* the share --throttle-max (and TPOL_CPUS_MIN) leave */
	double dirty_pps;		/* pages/s over an interval as long as round 0 */
	double link_pps;		/* non-zero pages/s the link carries */
	double working_set;		/* pages the curve saturates at (the image if it does not) */
	bool idle_writer;		/* busy under EST_BUSY_MIN: no limit slows it */
	double pace;			/* est_pace() */
	bool course;			/* .throttled is --throttle auto's course (lmig send):
					 * the migration as it would go, whatever the verdict */
};

/* Distinct pages dirtied within an interval of t seconds (the curve, read or extended). */
double est_dirty(const struct est_curve *c, uint64_t npages, double t);
/* The mean of est_dirty() over [0, t]. */
double est_dirty_mean(const struct est_curve *c, uint64_t npages, double t);
/* Pages the curve tends to (npages when it does not bend). */
double est_working_set(const struct est_curve *c, uint64_t npages);
/*
 * How much faster a busy lmig send writer dirties while migrating than
 * while watched: cpu_quiet / cpu_used, at least 1 (its pace is its CPU,
 * and the watch's harvests took some of it); 1 for a writer that sleeps
 * between writes, a guest, or when not known.
 */
double est_pace(const struct est_input *in);
/*
 * The cheapest of k harvests drawn from in->harvests, expected (in->
 * harvest_s when none are given, or k is 0).
 */
double est_cheapest(const struct est_input *in, unsigned int k);
/* One migration with the writer kept to share (1: no limit) from the throttle's start. */
void est_run(const struct est_input *in, double share, struct est_run *r);
/*
 * lmig send with --throttle auto: its controller's decisions played at
 * every harvest (the writer's share follows the limit unless idle_writer).
 */
void est_run_auto(const struct est_input *in, bool idle_writer, struct est_run *r);
/* The verdict: as it is, with a limit (which), or not at all. */
void est_predict(const struct est_input *in, struct est_result *res);

#endif

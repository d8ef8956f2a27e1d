// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/live/throttle_policy.c, the --throttle auto decision,
 * fed harvests with chosen numbers so that each case is exact: what the
 * pre-copy controller measured (dirty and link rates, the predicted
 * downtime, the interval watched, the CPU the limited threads used, the
 * limit in force) and what the decision must be.
 *
 *   disabled_counts_only        --throttle off: no action, but the count
 *                               of bad harvests still moves
 *   converging_never_starts     rounds that shrink by more than a quarter
 *                               and a dirty rate below the link: no limit
 *   first_compared_with_round0  the first harvest is judged against the
 *                               time round 0 took
 *   two_bad_start               one bad harvest waits, the second starts
 *   slow_shrink_is_bad          a prediction that falls by less than a
 *                               quarter counts as not converging
 *   long_look_starts_at_once    one bad harvest that watched >= 3 s starts
 *   within_budget_resets        a bad harvest already within the budget
 *                               does not count
 *   start_first_limit           the first limit: base, aim, disk writes
 *   start_base_floor            a base below 0.02 CPUs is taken as 0.02
 *   aim_and_tighten             the dirty-limit formula, exact
 *   bounds                      capped at the base, raised to the
 *                               --throttle-max floor and to 0.01 CPUs
 *   conf_min_cpus               tpol_conf.min_cpus replaces 0.01 CPUs as
 *                               the least limit (a guest's vCPU threads)
 *   hold_converging             with tpol_conf.hold_converging a looser
 *                               limit waits while the prediction falls
 *   lift_look_s                 with tpol_conf.lift_look_s the useless
 *                               verdict needs a harvest that long
 *   hold_converging_not_useless ... and with hold_converging, a harvest
 *                               whose prediction fell by a quarter
 *   floor_futile_lifts          with tpol_conf.lift_futile_floor, a limit
 *                               at its floor for TPOL_FLOOR_PASSES passes
 *                               while the prediction fell by less than a
 *                               quarter: lifted for good
 *   floor_futile_needs_all      each condition of that verdict matters
 *   floor_futile_not_for_send   without the flag (lmig send): held
 *   floor_futile_from_start     a first limit already at the floor counts
 *   no_cpu_used_gives_base      no CPU measured: the base
 *   raise_over_budget           over budget, a looser limit is set
 *   hold_for_switch_over        within budget, a looser limit is held back
 *   hold_same                   the same limit again is a hold
 *   ineffective_lifts           CPU halved, dirty rate not: lifted for good
 *   ineffective_needs_all       each condition of that verdict matters
 *   tighten_before_lift         with tpol_conf.tighten_before_lift
 *                               (a guest's), not useless while the aim
 *                               is above its floor: tightened instead
 *   soft_floor_useless          with tpol_conf.soft_floor (a guest's
 *                               default --throttle-max) a limit useless
 *                               at the --throttle-max floor goes below it,
 *                               down to the least limit, then is lifted
 *   soft_floor_futile           ... and one futile there goes below too,
 *                               after TPOL_SOFT_FLOOR_PASSES passes
 *   given_up_stays              after a lift or give-up: nothing more
 *   io_limit_follows_cpu        the disk limit is the same fraction
 *   failures_retry_then_stop    three failed attempts, then given up
 *   unset_after_failed_set      put back: retried later; not: no more
 *   guest_stop_wait             a guest's limit (live/converge_vm.h): the
 *                               longest a vCPU thread waits to run again,
 *                               (1 ms + a 4 ms tick) / share, the quota
 *                               growing over 10 % and the period stopping
 *                               at 1 s under 0.1 %
 *   guest_least_cpus            the least share, 1 ms every quarter of
 *                               QEMU's downtime-limit (never under
 *                               0.1 %), waits 1.25 times that limit
 *   period_rule                 a guest's limit: the short period unless
 *                               LMIG_CVM_PERIOD=long
 *   writers_*                   whom to limit from the probes' write
 *                               faults: the busiest threads up to 80 %,
 *                               the whole process when they are most of
 *                               its threads, "cannot tell" on few faults
 */
#include <math.h>

#include "kselftest_harness.h"

#include "live/converge_vm.h"
#include "live/throttle_policy.h"

#define NEAR(a, b)	(fabs((a) - (b)) < 1e-9 * (1 + fabs(b)))

static const struct tpol_conf conf = { .enabled = true, .downtime_ms = 300, .max_pct = 90 };

/* A harvest at which the workload dirtied more than the link carried, over budget. */
static struct tpol_round bad(void)
{
	return (struct tpol_round){ .dirty_mbps = 40, .link_mbps = 20, .pred_s = 2.0,
				    .look_s = 1.0, .cpu_used = 1.0, .pages = 1000,
				    .npages = 16384 };
}

/* A state with a limit in force: 1 CPU used before, 40 MB/s dirtied before. */
static struct tpol_state limited(void)
{
	return (struct tpol_state){ .on = true, .cpu_base = 1.0, .d_before = 40,
				    .prev_pred = 2.0 };
}

TEST(disabled_counts_only)
{
	struct tpol_conf off = conf;
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	off.enabled = false;
	for (int i = 1; i <= 3; i++) {
		tpol_decide(&st, &off, &r, &d);
		EXPECT_EQ(TPOL_KEEP, d.action);
		EXPECT_EQ(TPOL_DISABLED, d.why);
		EXPECT_EQ(i, st.bad_rounds);
	}
	EXPECT_FALSE(st.on);
}

TEST(converging_never_starts)
{
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.dirty_mbps = 10;	/* half the link */
	r.look_s = 8;		/* round 0 took 8 s */
	for (int i = 0; i < 5; i++) {
		r.pred_s = 4.0 / (1 << (2 * i));	/* a quarter of the one before each time */
		tpol_decide(&st, &conf, &r, &d);
		EXPECT_EQ(TPOL_KEEP, d.action);
		EXPECT_EQ(TPOL_CONVERGING, d.why);
		EXPECT_EQ(0, st.bad_rounds);
		EXPECT_TRUE(NEAR(r.pred_s, st.prev_pred));
	}
}

TEST(first_compared_with_round0)
{
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	/* Below the link; 2 s predicted after a round 0 of 2.5 s: shrank by only a fifth. */
	r.dirty_mbps = 10;
	r.look_s = 2.5;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(1, st.bad_rounds);
	EXPECT_EQ(TPOL_WATCHING, d.why);
	/* The same after a round 0 of 2.9 s: less by more than a quarter, converging. */
	st = (struct tpol_state){ 0 };
	r.look_s = 2.9;
	r.pred_s = 2.0;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(0, st.bad_rounds);
	EXPECT_EQ(TPOL_CONVERGING, d.why);
}

TEST(two_bad_start)
{
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_KEEP, d.action);
	EXPECT_EQ(TPOL_WATCHING, d.why);
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_START, d.action);
	EXPECT_EQ(TPOL_NOT_CONVERGING, d.why);
	EXPECT_EQ(2, st.bad_rounds);
	EXPECT_FALSE(st.on);	/* only tpol_start() turns it on */
}

TEST(slow_shrink_is_bad)
{
	struct tpol_state st = { .prev_pred = 4.0 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.dirty_mbps = 5;	/* far below the link */
	r.pred_s = 3.1;		/* more than 3/4 of 4.0 */
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(1, st.bad_rounds);
	r.pred_s = 2.3;		/* less than 3/4 of 3.1 */
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(0, st.bad_rounds);
	EXPECT_EQ(TPOL_CONVERGING, d.why);
	/* Exactly 90 % of the link is bad too. */
	r.dirty_mbps = 18;
	r.pred_s = 0.5;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(1, st.bad_rounds);
}

TEST(long_look_starts_at_once)
{
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.look_s = TPOL_LONG_LOOK_S - 0.01;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_KEEP, d.action);
	st = (struct tpol_state){ 0 };
	r.look_s = TPOL_LONG_LOOK_S;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_START, d.action);
	EXPECT_EQ(TPOL_LONG_LOOK, d.why);
}

TEST(within_budget_resets)
{
	struct tpol_state st = { .bad_rounds = 1 };
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.pred_s = 0.3;		/* exactly --downtime-ms */
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(0, st.bad_rounds);
	EXPECT_EQ(TPOL_KEEP, d.action);
	r.pred_s = 0.301;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(1, st.bad_rounds);
}

TEST(start_first_limit)
{
	struct tpol_state st = { .bad_rounds = 2, .prev_pred = 2.0 };
	struct tpol_round r = bad();
	struct tpol_decision d = { .action = TPOL_START, .why = TPOL_NOT_CONVERGING };

	r.cpu_used = 0.6;	/* the writing threads' share */
	tpol_start(&st, &conf, &r, 2e6, &d);
	EXPECT_TRUE(st.on);
	EXPECT_TRUE(NEAR(0.6, st.cpu_base));
	EXPECT_TRUE(NEAR(40, st.d_before));
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_NOT_CONVERGING, d.why);
	/* 0.6 x (1/3 of 20 MB/s) / 40 MB/s */
	EXPECT_TRUE(NEAR(0.1, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AIMED, d.bound);
	EXPECT_EQ(TPOL_IO_START, d.io);
	/* Disk writes below 1 MiB/s are left alone. */
	st = (struct tpol_state){ 0 };
	d = (struct tpol_decision){ .action = TPOL_START, .why = TPOL_LONG_LOOK };
	tpol_start(&st, &conf, &r, TPOL_IO_MIN_BPS - 1, &d);
	EXPECT_EQ(TPOL_IO_KEEP, d.io);
	EXPECT_EQ(TPOL_LONG_LOOK, d.why);
}

TEST(start_base_floor)
{
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d = { .action = TPOL_START };

	r.cpu_used = 0.005;
	tpol_start(&st, &conf, &r, 0, &d);
	EXPECT_TRUE(NEAR(TPOL_CPU_BASE_MIN, st.cpu_base));
	/* The aim is far below: the --throttle-max floor (10 % of 0.02) is below 0.01. */
	EXPECT_TRUE(NEAR(TPOL_CPUS_MIN, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AT_MIN, d.bound);
}

TEST(aim_and_tighten)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.cpu_used = 0.6;	/* more than half of the base: not ineffective */
	r.dirty_mbps = 30;
	r.link_mbps = 30;
	r.cur_cpus = 0.5;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	EXPECT_TRUE(NEAR(0.2, d.cpus)) TH_LOG("cpus %f", d.cpus);	/* 0.6 x 10 / 30 */
	EXPECT_EQ(TPOL_AIMED, d.bound);
	EXPECT_FALSE(d.held);
	EXPECT_EQ(TPOL_IO_KEEP, d.io);
	/* A dirty rate under 0.1 MB/s counts as 0.1: capped at the base. */
	r.dirty_mbps = 0.01;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_TRUE(NEAR(1.0, d.cpus));
	EXPECT_EQ(TPOL_AT_BASE, d.bound);
}

TEST(bounds)
{
	struct tpol_conf half = conf;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	/* Aim 0.6 x (20/3) / 40 = 0.1; --throttle-max 50 leaves at least 0.5. */
	r.cpu_used = 0.6;
	r.cur_cpus = 0.8;
	half.max_pct = 50;
	tpol_decide(&st, &half, &r, &d);
	EXPECT_TRUE(NEAR(0.5, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AT_FLOOR, d.bound);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	/* --throttle-max 100 leaves nothing: 0.01 CPUs at least. */
	half.max_pct = 100;
	r.cpu_used = 0.6;
	r.dirty_mbps = 4000;
	tpol_decide(&st, &half, &r, &d);
	EXPECT_TRUE(NEAR(TPOL_CPUS_MIN, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AT_MIN, d.bound);
}

TEST(conf_min_cpus)
{
	struct tpol_conf c = conf;
	struct tpol_state st = { 0 };
	struct tpol_round r = bad();
	struct tpol_decision d = { .action = TPOL_START };

	/* A vCPU thread that used 0.02 CPUs, dirtying 60 MB/s over a 30 MB/s link. */
	c.min_cpus = 0.001;
	r.cpu_used = 0.02;
	r.dirty_mbps = 60;
	r.link_mbps = 30;
	tpol_start(&st, &c, &r, 0, &d);
	/* Aim 0.02 x 10 / 60 = 0.00333..., above both floors. */
	EXPECT_TRUE(NEAR(0.02 / 6, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AIMED, d.bound);
	/* Aim 0.02 x 10 / 600: the --throttle-max 90 floor, 0.002, holds. */
	r.dirty_mbps = 600;
	r.cur_cpus = d.cpus;
	r.cpu_used = 0.02;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_TRUE(NEAR(0.002, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AT_FLOOR, d.bound);
	/* --throttle-max 99: floor 0.0002, below min_cpus: 0.001. */
	c.max_pct = 99;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_TRUE(NEAR(0.001, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AT_MIN, d.bound);
	/* Without it the least is TPOL_CPUS_MIN, as for lmig send. */
	c.min_cpus = 0;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_TRUE(NEAR(TPOL_CPUS_MIN, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_EQ(TPOL_AT_MIN, d.bound);
}

TEST(hold_converging)
{
	struct tpol_conf c = conf;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	c.hold_converging = true;
	r.cpu_used = 0.6;
	r.dirty_mbps = 10;	/* aim 0.6 x (20/3) / 10 = 0.4, above 0.25 */
	r.cur_cpus = 0.25;
	r.pred_s = 1.9;		/* from 2.0: falls, if slowly */
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_HOLD, d.why);
	EXPECT_TRUE(d.held);
	EXPECT_TRUE(NEAR(0.25, d.cpus)) TH_LOG("cpus %f", d.cpus);
	/* The same again does not fall: raised. */
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_RAISE, d.why);
	EXPECT_FALSE(d.held);
	EXPECT_TRUE(NEAR(0.4, d.cpus)) TH_LOG("cpus %f", d.cpus);
	/* A tighter limit is never held back. */
	r.cur_cpus = 0.4;
	r.dirty_mbps = 20;	/* aim 0.2 */
	r.pred_s = 0.6;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	EXPECT_TRUE(NEAR(0.2, d.cpus)) TH_LOG("cpus %f", d.cpus);
	/* Without the flag, the same falling prediction raises (lmig send). */
	st = limited();
	r = bad();
	r.cpu_used = 0.6;
	r.dirty_mbps = 10;
	r.cur_cpus = 0.25;
	r.pred_s = 1.9;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_RAISE, d.why);
}

TEST(lift_look_s)
{
	struct tpol_conf c = conf;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	/* CPU halved, dirty rate not: useless, but watched 2.9 s only. */
	c.lift_look_s = 3.0;
	r.cpu_used = 0.5;
	r.cur_cpus = 0.5;
	r.look_s = 2.9;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_FALSE(st.off);
	/* Watched 3 s: lifted. */
	r.look_s = 3.0;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	EXPECT_TRUE(st.off);
}

TEST(hold_converging_not_useless)
{
	struct tpol_conf c = conf;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	/* CPU halved, dirty rate not, but the prediction fell by a quarter. */
	c.hold_converging = true;
	r.cpu_used = 0.5;
	r.cur_cpus = 0.5;
	r.pred_s = 1.5;		/* from 2.0 */
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_FALSE(st.off);
	/* Fell by less (1.5 -> 1.2): useless after all. */
	r.pred_s = 1.2;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_TRUE(st.off);
	/* Without the flag a quarter's fall does not save it (lmig send). */
	st = limited();
	r.pred_s = 1.5;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
}

/*
 * A guest's limit at its floor: base 1 CPU, --throttle-max 90 leaves 0.1;
 * 0.6 CPUs used at twice the link aims at 0.066..., raised to 0.1.
 */
static struct tpol_round at_floor(double pred_s)
{
	struct tpol_round r = bad();

	r.cpu_used = 0.6;
	r.cur_cpus = 0.1;
	r.dirty_mbps = 40;	/* not ineffective: CPU not halved below 0.5 */
	r.pred_s = pred_s;
	return r;
}

/* As live/converge_vm.c sets it, less the least limit. */
static const struct tpol_conf guest = { .enabled = true, .downtime_ms = 300, .max_pct = 90,
					 .hold_converging = true, .lift_look_s = TPOL_LONG_LOOK_S,
					 .lift_futile_floor = true };

/* Decisions at the floor with these predictions; the last decision in d. */
static void floor_passes(struct tpol_state *st, const struct tpol_conf *c, const double *pred,
			 int n, struct tpol_decision *d)
{
	for (int i = 0; i < n; i++) {
		struct tpol_round r = at_floor(pred[i]);

		tpol_decide(st, c, &r, d);
	}
}

TEST(floor_futile_lifts)
{
	struct tpol_state st = limited();
	struct tpol_round r;
	struct tpol_decision d;

	/* The first decision at the floor, then three passes under it: held. */
	for (int i = 0; i < 4; i++) {
		r = at_floor(2.0 - 0.1 * i);
		tpol_decide(&st, &guest, &r, &d);
		ASSERT_EQ(TPOL_SET, d.action);
		EXPECT_EQ(TPOL_AT_FLOOR, d.bound);
		EXPECT_EQ(TPOL_HOLD, d.why);
		EXPECT_TRUE(NEAR(0.1, d.cpus));
		EXPECT_EQ(i + 1, st.floor_rounds);
	}
	/* The fourth pass under it: 2.0 -> 1.51 s, not a quarter. */
	r = at_floor(1.51);
	tpol_decide(&st, &guest, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_FLOOR_FUTILE, d.why);
	EXPECT_TRUE(NEAR(40, d.cpu_taken_pct)) TH_LOG("taken %f", d.cpu_taken_pct);
	EXPECT_FALSE(st.on);
	EXPECT_TRUE(st.off);
	/* For good. */
	tpol_decide(&st, &guest, &r, &d);
	EXPECT_EQ(TPOL_KEEP, d.action);
	EXPECT_EQ(TPOL_GIVEN_UP, d.why);
}

TEST(floor_futile_needs_all)
{
	double pred[TPOL_FLOOR_PASSES + 1];
	struct tpol_conf c = guest;
	struct tpol_state st;
	struct tpol_round r;
	struct tpol_decision d;

	for (int i = 0; i <= TPOL_FLOOR_PASSES; i++)
		pred[i] = 2.0;
	/* Fell by exactly a quarter over the passes: it works, a new count from there. */
	pred[TPOL_FLOOR_PASSES] = 1.5;
	st = limited();
	floor_passes(&st, &guest, pred, TPOL_FLOOR_PASSES + 1, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(1, st.floor_rounds);
	EXPECT_TRUE(NEAR(1.5, st.floor_pred));
	/* ... which ends futile TPOL_FLOOR_PASSES passes later. */
	for (int i = 0; i <= TPOL_FLOOR_PASSES; i++)
		pred[i] = 1.5;
	floor_passes(&st, &guest, pred + 1, TPOL_FLOOR_PASSES, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_FLOOR_FUTILE, d.why);

	/* Within the budget at the last pass: the switch-over follows, held. */
	for (int i = 0; i <= TPOL_FLOOR_PASSES; i++)
		pred[i] = 0.3;
	st = limited();
	floor_passes(&st, &guest, pred, TPOL_FLOOR_PASSES + 1, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_HOLD, d.why);
	EXPECT_EQ(TPOL_FLOOR_PASSES + 1, st.floor_rounds);
	/* Just over it, the same passes: lifted. */
	for (int i = 0; i <= TPOL_FLOOR_PASSES; i++)
		pred[i] = 0.301;
	st = limited();
	floor_passes(&st, &guest, pred, TPOL_FLOOR_PASSES + 1, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);

	/* One pass above the floor restarts the count. */
	for (int i = 0; i <= TPOL_FLOOR_PASSES; i++)
		pred[i] = 2.0;
	st = limited();
	floor_passes(&st, &guest, pred, TPOL_FLOOR_PASSES, &d);
	EXPECT_EQ(TPOL_FLOOR_PASSES, st.floor_rounds);
	r = at_floor(2.0);
	r.dirty_mbps = 10;	/* aims at 0.4: above the floor */
	r.cur_cpus = 0.4;
	tpol_decide(&st, &guest, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_AIMED, d.bound);
	EXPECT_EQ(0, st.floor_rounds);
	floor_passes(&st, &guest, pred, TPOL_FLOOR_PASSES, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	floor_passes(&st, &guest, pred, 1, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);

	/* At the least limit (tpol_conf.min_cpus above the --throttle-max floor) too. */
	c.min_cpus = 0.2;
	st = limited();
	r = at_floor(2.0);
	r.cur_cpus = 0.2;
	for (int i = 0; i < TPOL_FLOOR_PASSES; i++) {
		tpol_decide(&st, &c, &r, &d);
		ASSERT_EQ(TPOL_SET, d.action);
		EXPECT_EQ(TPOL_AT_MIN, d.bound);
	}
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_FLOOR_FUTILE, d.why);
}

TEST(floor_futile_not_for_send)
{
	double pred[2 * TPOL_FLOOR_PASSES];
	struct tpol_state st = limited();
	struct tpol_decision d;

	for (int i = 0; i < 2 * TPOL_FLOOR_PASSES; i++)
		pred[i] = 2.0;
	floor_passes(&st, &conf, pred, 2 * TPOL_FLOOR_PASSES, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_HOLD, d.why);
	EXPECT_EQ(0, st.floor_rounds);
	EXPECT_TRUE(st.on);
}

TEST(floor_futile_from_start)
{
	struct tpol_state st = { 0 };
	struct tpol_round r = at_floor(2.0);
	struct tpol_decision d = { .action = TPOL_START, .why = TPOL_NOT_CONVERGING };

	/* The first limit: 0.6 CPUs used is the base, its floor 0.06; aimed at 0.05. */
	r.cur_cpus = 0;
	r.dirty_mbps = 80;
	tpol_start(&st, &guest, &r, 0, &d);
	EXPECT_EQ(TPOL_AT_FLOOR, d.bound);
	EXPECT_TRUE(NEAR(0.06, d.cpus));
	EXPECT_EQ(1, st.floor_rounds);
	r.cur_cpus = d.cpus;
	r.cpu_used = 0.06;	/* all it may, over 1 s: too short for the useless verdict */
	for (int i = 0; i < TPOL_FLOOR_PASSES; i++)
		tpol_decide(&st, &guest, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_FLOOR_FUTILE, d.why);
}

TEST(no_cpu_used_gives_base)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	st.cpu_base = 0.4;
	r.cpu_used = 0;
	r.dirty_mbps = 10;	/* fell: not ineffective */
	r.cur_cpus = 0.2;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_TRUE(NEAR(0.4, d.cpus));
	EXPECT_EQ(TPOL_RAISE, d.why);
}

TEST(raise_over_budget)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.cpu_used = 0.6;
	r.dirty_mbps = 10;	/* 0.6 x (20/3) / 10 = 0.4 */
	r.cur_cpus = 0.25;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_RAISE, d.why);
	EXPECT_TRUE(NEAR(0.4, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_FALSE(d.held);
}

TEST(hold_for_switch_over)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.cpu_used = 0.6;
	r.dirty_mbps = 10;
	r.cur_cpus = 0.25;
	r.pred_s = 0.25;	/* the switch-over follows */
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_HOLD, d.why);
	EXPECT_TRUE(d.held);
	EXPECT_TRUE(NEAR(0.25, d.cpus));
	/* A tighter one is still taken. */
	r.cur_cpus = 0.5;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	EXPECT_FALSE(d.held);
	EXPECT_TRUE(NEAR(0.4, d.cpus));
}

TEST(hold_same)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.cpu_used = 0.6;	/* aim 0.1, raised to the floor 0.1 of the base */
	r.cur_cpus = 0.1;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_HOLD, d.why);
	EXPECT_FALSE(d.held);
	EXPECT_TRUE(NEAR(0.1, d.cpus));
}

TEST(ineffective_lifts)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	r.cpu_used = 0.25;	/* three quarters of it taken */
	r.dirty_mbps = 32;	/* 80 % of before */
	r.cur_cpus = 0.3;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	EXPECT_TRUE(NEAR(75, d.cpu_taken_pct)) TH_LOG("taken %f", d.cpu_taken_pct);
	EXPECT_FALSE(st.on);
	EXPECT_TRUE(st.off);
}

TEST(ineffective_needs_all)
{
	struct tpol_round base = bad(), r;
	struct tpol_state st;
	struct tpol_decision d;

	base.cpu_used = 0.5;	/* exactly half */
	base.dirty_mbps = 32;
	base.cur_cpus = 0.3;
	base.pages = 8191;	/* just under half the image */
	st = limited();
	tpol_decide(&st, &conf, &base, &d);
	ASSERT_EQ(TPOL_LIFT, d.action);

	r = base;
	r.cur_cpus = 0;		/* no limit in force (lifted before the freeze) */
	st = limited();
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);

	r = base;
	r.cpu_used = 0.51;	/* not halved */
	st = limited();
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);

	r = base;
	r.dirty_mbps = 31.9;	/* fell by more than a fifth */
	st = limited();
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);

	r = base;
	r.pages = 8192;		/* half the image rewritten: its count says nothing */
	st = limited();
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_TRUE(st.on);
}

TEST(tighten_before_lift)
{
	struct tpol_conf c = conf;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	/*
	 * ineffective_lifts' harvest: CPU cut to a quarter, dirty rate at
	 * 80 %.  The aim, 0.25 x 20 / 3 / 32 = 0.052, is above the floor
	 * --throttle-max 99 leaves (0.01 of base 1): tightened to it.
	 */
	c.tighten_before_lift = true;
	c.max_pct = 99;
	r.cpu_used = 0.25;
	r.dirty_mbps = 32;
	r.cur_cpus = 0.3;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	EXPECT_EQ(TPOL_AIMED, d.bound);
	EXPECT_TRUE(NEAR(0.25 * 20 / 3 / 32, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_TRUE(st.on);
	EXPECT_FALSE(st.off);
	/*
	 * Held there, still undiminished: the aim, 0.04 x 20 / 3 / 32 =
	 * 0.0083, is raised to the floor, 0.01: no tighter limit, lifted.
	 * (At 0.05 used it would be 0.0104, tightened once more.)
	 */
	r.cpu_used = 0.04;
	r.cur_cpus = 0.052;
	r.pred_s = 2.0;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	EXPECT_TRUE(st.off);
	/* The first harvest with --throttle-max 90, whose floor is 0.1: lifted at once. */
	c.max_pct = 90;
	st = limited();
	r = bad();
	r.cpu_used = 0.25;
	r.dirty_mbps = 32;
	r.cur_cpus = 0.3;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	/* At the least limit (tpol_conf.min_cpus) too. */
	c.max_pct = 99;
	c.min_cpus = 0.06;
	st = limited();
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	/* Without the flag (lmig send) the first harvest above the floor lifts it. */
	c.min_cpus = 0;
	c.tighten_before_lift = false;
	st = limited();
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
}

/* A guest with --throttle-max not given (live/converge_vm.c). */
static const struct tpol_conf soft = { .enabled = true, .downtime_ms = 300, .max_pct = 90,
					.hold_converging = true, .lift_look_s = TPOL_LONG_LOOK_S,
					.lift_futile_floor = true, .tighten_before_lift = true,
					.soft_floor = true };

TEST(soft_floor_useless)
{
	struct tpol_conf c = soft;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	/*
	 * Held at the floor, 0.1 of base 1, for 3 s: CPU cut to a tenth,
	 * dirty rate undiminished, the prediction flat.  The aim, 0.1 x 20
	 * / 3 / 40 = 0.0167, goes below the floor instead of a lift.
	 */
	r.cpu_used = 0.1;
	r.cur_cpus = 0.1;
	r.look_s = 3.0;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	EXPECT_EQ(TPOL_AIMED, d.bound);
	EXPECT_TRUE(NEAR(0.1 * 20 / 3 / 40, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_TRUE(st.below_floor);
	EXPECT_FALSE(st.off);
	/* Still undiminished there: the aim, 0.0028, is raised to 0.01, the least: lifted. */
	r.cpu_used = d.cpus;
	r.cur_cpus = d.cpus;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	EXPECT_TRUE(st.off);
	/* --throttle-max given (no soft floor): the first harvest lifts it. */
	c.soft_floor = false;
	st = limited();
	r = bad();
	r.cpu_used = 0.1;
	r.cur_cpus = 0.1;
	r.look_s = 3.0;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_INEFFECTIVE, d.why);
	EXPECT_FALSE(st.below_floor);
}

TEST(soft_floor_futile)
{
	const double pred[] = { 2.0, 1.9, 1.8, 1.7, 1.6 };
	struct tpol_conf c = soft;
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	/*
	 * At the floor (aim 0.3 x 20 / 3 / 40 = 0.05, raised to 0.1), CPU not
	 * halved below 0.5 long enough to be useless: after
	 * TPOL_SOFT_FLOOR_PASSES passes (the third decision) it is futile
	 * (the prediction fell by less than a quarter) and goes below the
	 * floor, to the aim.
	 */
	r.cpu_used = 0.3;
	r.cur_cpus = 0.1;
	for (int i = 0; i <= TPOL_SOFT_FLOOR_PASSES; i++) {
		r.pred_s = pred[i];
		tpol_decide(&st, &c, &r, &d);
		if (i < TPOL_SOFT_FLOOR_PASSES) {
			EXPECT_EQ(TPOL_HOLD, d.why) TH_LOG("decision %d", i);
			EXPECT_EQ(TPOL_AT_FLOOR, d.bound);
			EXPECT_FALSE(st.below_floor);
		}
	}
	EXPECT_EQ(TPOL_SET, d.action);
	EXPECT_EQ(TPOL_TIGHTEN, d.why);
	EXPECT_TRUE(NEAR(0.3 * 20 / 3 / 40, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_TRUE(st.below_floor);
	EXPECT_FALSE(st.off);
	/* A quarter's fall at the soft floor starts the count again: held. */
	st = limited();
	r.pred_s = 2.0;
	tpol_decide(&st, &c, &r, &d);
	r.pred_s = 1.4;
	tpol_decide(&st, &c, &r, &d);
	r.pred_s = 1.3;
	tpol_decide(&st, &c, &r, &d);
	EXPECT_EQ(TPOL_HOLD, d.why);
	EXPECT_EQ(TPOL_AT_FLOOR, d.bound);
	EXPECT_FALSE(st.below_floor);
	/* The same without the soft floor: held for TPOL_FLOOR_PASSES, then lifted as futile. */
	c.soft_floor = false;
	st = limited();
	for (int i = 0; i <= TPOL_FLOOR_PASSES; i++) {
		r.pred_s = pred[i];
		tpol_decide(&st, &c, &r, &d);
		if (i < TPOL_FLOOR_PASSES)
			EXPECT_EQ(TPOL_HOLD, d.why) TH_LOG("decision %d", i);
	}
	EXPECT_EQ(TPOL_LIFT, d.action);
	EXPECT_EQ(TPOL_FLOOR_FUTILE, d.why);
}

TEST(given_up_stays)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	st.on = false;
	st.off = true;
	for (int i = 0; i < 3; i++) {
		tpol_decide(&st, &conf, &r, &d);
		EXPECT_EQ(TPOL_KEEP, d.action);
		EXPECT_EQ(TPOL_GIVEN_UP, d.why);
	}
	EXPECT_EQ(3, st.bad_rounds);
}

TEST(io_limit_follows_cpu)
{
	struct tpol_state st = limited();
	struct tpol_round r = bad();
	struct tpol_decision d;

	tpol_io_started(&st, 4e6);
	EXPECT_TRUE(NEAR(4e6, st.io_base));
	r.cpu_used = 0.75;
	r.dirty_mbps = 25;	/* 0.75 x (20/3) / 25 = 0.2 */
	r.cur_cpus = 0.5;
	r.io_on = true;
	tpol_decide(&st, &conf, &r, &d);
	EXPECT_EQ(TPOL_IO_SET, d.io);
	EXPECT_TRUE(NEAR(0.2, d.cpus)) TH_LOG("cpus %f", d.cpus);
	EXPECT_TRUE(NEAR(0.8e6, d.io_bps)) TH_LOG("io %f", d.io_bps);
	EXPECT_TRUE(NEAR(0.8e6, tpol_io_limit(&st, 0.2)));
	/* A base below the floor is taken at the floor. */
	tpol_io_started(&st, 1000);
	EXPECT_TRUE(NEAR(TPOL_IO_MIN_BPS, st.io_base));
}

TEST(failures_retry_then_stop)
{
	struct tpol_state st = { 0 };

	EXPECT_FALSE(tpol_failed(&st));
	EXPECT_FALSE(st.off);
	EXPECT_FALSE(tpol_failed(&st));
	EXPECT_TRUE(tpol_failed(&st));
	EXPECT_TRUE(st.off);
	EXPECT_EQ(TPOL_TRIES, st.fails);
}

TEST(unset_after_failed_set)
{
	struct tpol_state st = limited();

	tpol_unset(&st, true);
	EXPECT_FALSE(st.on);
	EXPECT_FALSE(st.off);
	st = limited();
	tpol_unset(&st, false);
	EXPECT_TRUE(st.on);	/* still applied: the end restores it */
	EXPECT_TRUE(st.off);
}

/* Threads 100, 101, ... with these write faults. */
static unsigned int threads(struct tpol_thread *t, const uint64_t *wf, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		t[i] = (struct tpol_thread){ .tid = 100 + i, .write_faults = wf[i] };
	return n;
}

TEST(writers_too_few_faults)
{
	struct tpol_thread t[4];
	pid_t out[8];

	EXPECT_EQ(-1, tpol_writers(t, threads(t, (uint64_t[]){ 60, 3, 0, 0 }, 4), out, 8));
	EXPECT_EQ(1, tpol_writers(t, threads(t, (uint64_t[]){ 61, 3, 0, 0 }, 4), out, 8));
	EXPECT_EQ(100, out[0]);
}

TEST(writers_one_of_four)
{
	struct tpol_thread t[4];
	pid_t out[8];

	EXPECT_EQ(1, tpol_writers(t, threads(t, (uint64_t[]){ 10, 10, 1000, 10 }, 4), out, 8));
	EXPECT_EQ(102, out[0]);
	/* Exactly 80 % is enough. */
	EXPECT_EQ(1, tpol_writers(t, threads(t, (uint64_t[]){ 20, 80, 0, 0 }, 4), out, 8));
	EXPECT_EQ(101, out[0]);
}

TEST(writers_busiest_first)
{
	struct tpol_thread t[6];
	pid_t out[8];

	EXPECT_EQ(2, tpol_writers(t, threads(t, (uint64_t[]){ 10, 300, 700, 0, 0, 0 }, 6), out, 8));
	EXPECT_EQ(102, out[0]);
	EXPECT_EQ(101, out[1]);
	/* 75 % is not enough: the next one too. */
	EXPECT_EQ(2, tpol_writers(t, threads(t, (uint64_t[]){ 0, 0, 75, 0, 25, 0 }, 6), out, 8));
	EXPECT_EQ(102, out[0]);
	EXPECT_EQ(104, out[1]);
}

TEST(writers_most_threads_whole_process)
{
	struct tpol_thread t[4];
	pid_t out[8];

	/* Two of three threads: the process. */
	EXPECT_EQ(0, tpol_writers(t, threads(t, (uint64_t[]){ 500, 500, 5 }, 3), out, 8));
	/* Two of four: half is not most. */
	EXPECT_EQ(2, tpol_writers(t, threads(t, (uint64_t[]){ 500, 500, 5, 0 }, 4), out, 8));
}

TEST(writers_at_most_max)
{
	struct tpol_thread t[40];
	uint64_t wf[40] = { 0 };
	pid_t out[3];

	for (int i = 0; i < 10; i++)
		wf[i * 4] = 100;
	EXPECT_EQ(3, tpol_writers(t, threads(t, wf, 40), out, 3));
	EXPECT_EQ(100, out[0]);
	EXPECT_EQ(104, out[1]);
	EXPECT_EQ(108, out[2]);
}

TEST(writers_first_1024_count)
{
	static struct tpol_thread t[1100];
	static uint64_t wf[1100];
	pid_t out[8];

	wf[1050] = 1000;	/* beyond the first TPOL_THREADS_MAX */
	EXPECT_EQ(-1, tpol_writers(t, threads(t, wf, 1100), out, 8));
	wf[1000] = 1000;
	EXPECT_EQ(1, tpol_writers(t, threads(t, wf, 1100), out, 8));
	EXPECT_EQ(1100, out[0]);
}

TEST(guest_stop_wait)
{
	/* 1 ms every 100 ms: 5 ms of run and debt, paid back at 1 ms a period. */
	EXPECT_TRUE(NEAR(0.5, cvm_stop_wait_s(0.01)));
	EXPECT_TRUE(NEAR(0.1, cvm_stop_wait_s(0.05)));	/* 1 ms every 20 ms */
	EXPECT_TRUE(NEAR(0.05, cvm_stop_wait_s(0.1)));	/* 1 ms every 10 ms */
	/* Over 10 %: 10 ms periods, the quota grows, the tick weighs less. */
	EXPECT_TRUE(NEAR(0.03, cvm_stop_wait_s(0.2)));	/* 2 ms every 10 ms */
	EXPECT_TRUE(NEAR(0.018, cvm_stop_wait_s(0.5)));
	/* Under 0.1 %: 1 ms every second whatever the share asked. */
	EXPECT_TRUE(NEAR(5.0, cvm_stop_wait_s(0.001)));
	EXPECT_TRUE(NEAR(5.0, cvm_stop_wait_s(0.0002)));
}

TEST(guest_least_cpus)
{
	const int64_t budgets[] = { 100, 300, 1000, 2000, 4000 };

	/* 1 ms of CPU every quarter of the downtime-limit, as before ... */
	EXPECT_TRUE(NEAR(0.001 / 0.075, cvm_least_cpus(300)));
	EXPECT_TRUE(NEAR(0.002, cvm_least_cpus(2000)));
	/* ... never below 0.1 %. */
	EXPECT_TRUE(NEAR(CVM_CPUS_MIN, cvm_least_cpus(4000)));
	EXPECT_TRUE(NEAR(CVM_CPUS_MIN, cvm_least_cpus(10000)));
	EXPECT_TRUE(NEAR(1, cvm_least_cpus(0)));
	/* Its wait at the stop: five such periods, 1.25 times the budget. */
	for (unsigned int i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
		EXPECT_TRUE(NEAR(1.25 * budgets[i] / 1000, cvm_stop_wait_s(cvm_least_cpus(budgets[i]))))
			TH_LOG("budget %lld ms", (long long)budgets[i]);
	}
	/* Past 4 s the 1 s period holds: 5 s. */
	EXPECT_TRUE(NEAR(5.0, cvm_stop_wait_s(cvm_least_cpus(10000))));
}

TEST(period_rule)
{
	/* The default is the short period; LMIG_CVM_PERIOD=long, lmig send's. */
	EXPECT_TRUE(tpol_short_period(TPOL_PERIOD_AUTO));
	EXPECT_TRUE(tpol_short_period(TPOL_PERIOD_SHORT));
	EXPECT_FALSE(tpol_short_period(TPOL_PERIOD_LONG));
}

TEST_HARNESS_MAIN

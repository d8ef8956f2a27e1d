/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * --throttle auto: the decision, without the mechanism.  At every harvest
 * of a live pre-copy the controller (live/converge.c) hands over what it
 * measured — dirty rate, link rate, predicted downtime, the CPU the
 * limited threads used — and gets back what to do with the CPU limit and
 * the disk-write limit: nothing, start one, set it to a new value, or
 * lift it for good.  Numbers in, a decision out: no I/O, no clock, no
 * global, so every branch can be tested with exact inputs
 * (selftests/test_throttle_policy.c).
 *
 * When: after two harvests in a row at which the workload dirtied at
 * least 90 % of what the link carried, or the predicted downtime did not
 * fall by a quarter (rounds that shrink by less converge too slowly to
 * wait for), while over budget; one such harvest is enough when it
 * watched the workload for TPOL_LONG_LOOK_S or more (round 0 of a large
 * image lasts long, and waiting for a second such round costs as long
 * again).
 *
 * How much: dirty-limit style, not fixed steps: the CPU the limited
 * threads used x (target / measured dirty rate), the target being
 * TPOL_DIRTY_TARGET of the link, corrected at every harvest, never above
 * what they used before the limit nor below what --throttle-max leaves
 * them.  Disk writes are held to the same fraction of their rate before
 * the limit as the CPU.
 *
 * Lifted: a limit that halved the CPU the threads used without lowering
 * the dirty rate is useless (the writer does not need the CPU to write).
 * With tpol_conf.tighten_before_lift (a guest's) that verdict waits until
 * the limit is at its floor: a tighter one may still work; with
 * tpol_conf.soft_floor the floor --throttle-max leaves then gives way,
 * and the least limit is the floor.
 * With tpol_conf.lift_futile_floor (a guest's), so is one held at its
 * floor (what --throttle-max leaves, or the least limit) for
 * TPOL_FLOOR_PASSES harvests without the prediction falling by a quarter
 * over them: it can go no lower, and the threads it holds pay for
 * nothing until the migration ends.
 */
#ifndef LMIG_THROTTLE_POLICY_H
#define LMIG_THROTTLE_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One harvest watching this long is enough to judge (see above). */
#define TPOL_LONG_LOOK_S	3.0
/*
 * The dirty rate a limit aims at, as a fraction of the link's rate: each
 * round then sends about this fraction of the one before.  The measured
 * rate counts distinct pages and reads low over long rounds, so the limit
 * comes out looser than aimed (Documentation/design.md has what a half
 * did instead).
 */
#define TPOL_DIRTY_TARGET	(1.0 / 3)
/*
 * Passes at the floor before it is judged futile (lift_futile_floor).
 * The first pass under it still sends what was dirtied under the looser
 * limit before, so it tells little; the prediction of any one pass is
 * noisy for a guest (a limited vCPU writes in bursts of its quota, QMP
 * and QEMU's passes wait for one that holds QEMU's lock), so three more
 * passes must show the fall together.  A quarter over four passes is far
 * slower than the quarter a pass the start rule asks for, so a limit
 * that still works at its floor, if slowly, is kept; more passes would
 * only keep a guest that gains nothing slowed longer.
 */
#define TPOL_FLOOR_PASSES	4
/*
 * The same for the floor --throttle-max leaves when it was not given
 * (tpol_conf.soft_floor): going below it is no giving up, only a tighter
 * limit on the threads that write, which is what the guest needs if the
 * floor does not converge; waiting TPOL_FLOOR_PASSES passes there keeps a
 * guest that gains nothing migrating for as long again.
 */
#define TPOL_SOFT_FLOOR_PASSES	2
/* Attempts to apply a limit before giving up. */
#define TPOL_TRIES		3
/*
 * Never a limit below this many CPUs (unless tpol_conf.min_cpus says
 * less), nor a base below TPOL_CPU_BASE_MIN.
 */
#define TPOL_CPUS_MIN		0.01
#define TPOL_CPU_BASE_MIN	0.02
/* Never hold disk writes below this (bytes/s). */
#define TPOL_IO_MIN_BPS		(1024 * 1024)
/* Fewer write faults than this between two harvests do not tell who writes. */
#define TPOL_WRITERS_MIN_FAULTS	64
/* Threads counted by tpol_writers(), at most. */
#define TPOL_THREADS_MAX	1024

struct tpol_conf {
	bool enabled;			/* --throttle auto */
	unsigned int downtime_ms;	/* --downtime-ms */
	unsigned int max_pct;		/* --throttle-max: take at most this % of its CPU */
	/*
	 * The least limit, CPUs; 0: TPOL_CPUS_MIN.  A writer that sleeps
	 * most of the time (a guest's vCPU) dirties fast on a few per mille
	 * of a CPU and needs less than the 1 % a process gets.
	 */
	double min_cpus;
	/*
	 * A limit under which the prediction falls works: never loosened
	 * while it falls, since a looser one can undo it before the
	 * switch-over (the rounds of a guest's migration are short, and a
	 * limited vCPU uses its quota in bursts that the CPU measured over
	 * one of them exaggerates); never judged useless while it falls by
	 * a quarter or more, whatever the dirty rate says (a guest that
	 * rewrites its working set within a pass keeps the count of
	 * distinct dirty pages up while it writes less).
	 */
	bool hold_converging;
	/*
	 * The useless-limit verdict (TPOL_INEFFECTIVE) only from a harvest
	 * that watched at least this long (s; 0: any): over a short one, a
	 * limited writer catching up in a burst looks undiminished.
	 */
	double lift_look_s;
	/*
	 * Lift a limit held at its floor for TPOL_FLOOR_PASSES harvests while
	 * the prediction, over budget, did not fall by a quarter
	 * (TPOL_FLOOR_FUTILE): the migration may still end (QEMU keeps
	 * trying, or is cancelled), but with the guest at full speed.
	 */
	bool lift_futile_floor;
	/*
	 * The useless-limit verdict (TPOL_INEFFECTIVE) only for a limit that
	 * can go no tighter (the aim at its floor): above it, the aim
	 * tightens instead.  A writer that spins between its writes (a
	 * guest's vCPU polling) uses far more CPU than its writes need, so
	 * halving its CPU lowers its dirty rate only once the limit nears
	 * that need: giving up before the floor gives up a limit that works.
	 */
	bool tighten_before_lift;
	/*
	 * What --throttle-max leaves is a floor only while the limit works
	 * (a guest's default, --throttle-max not given): a limit held there
	 * that would be lifted as useless (TPOL_INEFFECTIVE or
	 * TPOL_FLOOR_FUTILE) goes on below it instead, down to the least
	 * limit, and only there is it lifted.  The CPU a vCPU that spins
	 * between its writes used before the limit says nothing of what the
	 * writes need: a tenth of it can still be all they need.
	 */
	bool soft_floor;
};

/* Kept by the caller from harvest to harvest; changed only by tpol_*(). */
struct tpol_state {
	unsigned int bad_rounds;	/* harvests in a row that did not converge */
	double prev_pred;		/* s, the previous prediction; 0: none yet */
	bool on;			/* a CPU limit is applied */
	bool off;			/* given up: cannot, or useless */
	unsigned int fails;		/* attempts to apply a limit that failed */
	double cpu_base;		/* CPUs the limited set used before the limit */
	double d_before;		/* MB/s dirtied before the limit */
	double io_base;			/* bytes/s the limited set wrote to disk before */
	unsigned int floor_rounds;	/* decisions in a row at the floor (lift_futile_floor) */
	double floor_pred;		/* s, the prediction at the first of them */
	bool below_floor;		/* soft_floor: the --throttle-max floor gave way */
};

/* What one harvest measured. */
struct tpol_round {
	double dirty_mbps;		/* pages harvested / time since the last harvest */
	double link_mbps;		/* memory the link carried, MB/s (last round) */
	double pred_s;			/* predicted downtime of a switch-over now */
	double look_s;			/* the interval the counters below cover */
	double cpu_used;		/* CPUs the limited threads (or the process) used */
	double cur_cpus;		/* the CPU limit in force, 0 = none */
	bool io_on;			/* a disk-write limit is set up */
	uint64_t pages, npages;		/* harvested, and in the image */
};

enum tpol_action {
	TPOL_KEEP,	/* change nothing */
	TPOL_START,	/* apply a limit now (then tpol_start()) */
	TPOL_SET,	/* set the CPU limit to cpus */
	TPOL_LIFT,	/* take the limit away, for good */
};

enum tpol_why {
	TPOL_DISABLED,		/* --throttle off */
	TPOL_GIVEN_UP,		/* an earlier decision ended it */
	TPOL_CONVERGING,	/* no limit, and this harvest converged */
	TPOL_WATCHING,		/* no limit, one harvest that did not converge: wait */
	TPOL_NOT_CONVERGING,	/* START: two harvests in a row did not converge */
	TPOL_LONG_LOOK,		/* START: one that watched TPOL_LONG_LOOK_S did not */
	TPOL_INEFFECTIVE,	/* LIFT: CPU halved, dirty rate not */
	TPOL_FLOOR_FUTILE,	/* LIFT: at its floor TPOL_FLOOR_PASSES passes, no gain */
	TPOL_TIGHTEN,		/* SET below the limit in force */
	TPOL_RAISE,		/* SET above it */
	TPOL_HOLD,		/* SET to the same (a looser one held back for the switch-over,
				 * or, with hold_converging, while it converges) */
};

/* Where the limit computed ended up, before the switch-over hold. */
enum tpol_bound {
	TPOL_AIMED,		/* the aimed value as computed */
	TPOL_AT_BASE,		/* capped at what it used before the limit */
	TPOL_AT_FLOOR,		/* raised to what --throttle-max leaves it */
	TPOL_AT_MIN,		/* raised to TPOL_CPUS_MIN */
};

enum tpol_io {
	TPOL_IO_KEEP,
	TPOL_IO_START,		/* with TPOL_START: limit disk writes too */
	TPOL_IO_SET,		/* set the disk-write limit to io_bps */
};

struct tpol_decision {
	enum tpol_action action;
	enum tpol_why why;
	double cpus;			/* SET (and after tpol_start()): the CPU limit */
	enum tpol_bound bound;
	bool held;			/* a looser limit was held back for the switch-over */
	double cpu_taken_pct;		/* LIFT: how much of its CPU the limit took */
	enum tpol_io io;
	double io_bps;			/* IO_SET: the disk-write limit */
};

/*
 * One harvest: update st's counts and decide.  For TPOL_START the caller
 * applies a limit to the threads it chose and calls tpol_start() (or
 * tpol_failed()).
 */
void tpol_decide(struct tpol_state *st, const struct tpol_conf *c, const struct tpol_round *r,
		 struct tpol_decision *d);
/*
 * The limit was set up: r->cpu_used is what the threads it holds used,
 * disk_wbps what the process wrote to disk (bytes/s).  Fills d with the
 * first CPU limit (TPOL_SET) and TPOL_IO_START if disk writes are limited too.
 */
void tpol_start(struct tpol_state *st, const struct tpol_conf *c, const struct tpol_round *r,
		double disk_wbps, struct tpol_decision *d);
/* The disk-write limit was set up; base: what the limited set wrote (bytes/s). */
void tpol_io_started(struct tpol_state *st, double base);
/* The disk-write limit that goes with a CPU limit of cpus. */
double tpol_io_limit(const struct tpol_state *st, double cpus);
/*
 * How a guest's vCPU limit is cut into quota and period (converge_vm.c;
 * the environment's LMIG_CVM_PERIOD picks one for comparisons):
 * SHORT gives 1 ms every 1 ms / share (throttle_quota_short(): the least
 * wait at QEMU's stop), LONG lmig send's 100 ms periods (throttle_quota()),
 * AUTO, the default, decides at each limit with tpol_short_period(): the
 * short period.  Side by side under nested KVM both rules converged at
 * every rate once the --throttle-max floor no longer stopped the limit
 * (Documentation/benchmarks.md): the period does not decide whether a
 * guest converges, and the short one waits least at the stop where the
 * stops were measured one by one (Documentation/qemu.md).
 */
enum tpol_period_rule {
	TPOL_PERIOD_AUTO,
	TPOL_PERIOD_SHORT,
	TPOL_PERIOD_LONG,
};

/* One thread of the workload, as the probes counted it between two harvests. */
struct tpol_thread {
	pid_t tid;
	uint64_t write_faults;
};

/*
 * Whom to limit: the threads that took 80 % of the write faults (the
 * busiest first) into out, at most max of them.  Returns how many, 0 for
 * the whole process when they are most of its threads, or -1 when the
 * faults are too few to tell (the caller asks /proc instead).  Only the
 * first TPOL_THREADS_MAX of th count.
 */
int tpol_writers(const struct tpol_thread *th, unsigned int n, pid_t *out, unsigned int max);
/* With rule, does a limit get the short period (throttle_quota_short())? */
bool tpol_short_period(enum tpol_period_rule rule);
/*
 * Applying a limit failed: returns true when it is given up for good,
 * false when the next harvest that does not converge may try again.
 */
bool tpol_failed(struct tpol_state *st);
/*
 * Setting the limit failed after it was set up, and putting things back
 * did (restored) or did not: tried again later, or no more.
 */
void tpol_unset(struct tpol_state *st, bool restored);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Convergence of a live pre-copy (--throttle auto): what the workload did
 * between two harvests (per-thread counters from /proc, the eBPF probes'
 * fault and steal counts), handed to the decision (throttle_policy.h),
 * and the decision carried out through the cgroup CPU and disk-write
 * limits (host/throttle.h).  The pre-copy controller (precopy.c) is its
 * only user; what it did goes to the report as notes (image/image.h).
 */
#ifndef LMIG_CONVERGE_H
#define LMIG_CONVERGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/probes.h"
#include "host/throttle.h"
#include "image/image.h"
#include "live/throttle_policy.h"

struct converge {
	const struct send_opts *o;
	struct image_stats *st;
	struct tpol_conf conf;
	struct tpol_state pol;
	struct tsnap snap[2];		/* per-thread counters at the last two harvests */
	struct throttle th;
	pid_t tids[THROTTLE_MAX_TIDS];	/* the threads limited */
	unsigned int ntids;		/* 0: the whole process */
	struct probes pr;		/* fault and steal counters of the workload */
	pthread_t pr_th;		/* opening pr while round 0 runs */
	bool pr_opening;		/* pr_th to be joined before pr is used */
	struct probe_sample ps;
	bool ps_ok;			/* ps holds the sample of the last harvest */
};

/* What a harvest found, for converge_round(). */
struct converge_in {
	double dirty_mbps, link_mbps, pred_s;
	uint64_t pages, npages;
};

/*
 * Undo limits a killed lmig left behind, and open the probes (optional:
 * st->probes says whether) in a thread of their own, waited for at the
 * first converge_sample() or at converge_close().  Never fails: what
 * does not work is reported.
 */
void converge_open(struct converge *cv, const struct send_opts *o, struct image_stats *st);
/* The workload's counters from now on: round 0 is a measurement too. */
void converge_mark(struct converge *cv);
/* At a harvest: the probes' counts since the last one. */
void converge_sample(struct converge *cv);
/*
 * After a harvest: decide and apply.  Returns true when it lifted a limit
 * (the workload now writes faster than the prediction assumed).
 */
bool converge_round(struct converge *cv, const struct converge_in *in);
/* The CPU used, the limits and the probes' rates, into round record r. */
void converge_record(struct converge *cv, struct round_stat *r);
/* No more disk limit (the CPU limit stays). */
void converge_io_lift(struct converge *cv);
/* Just before the freeze: both limits off, so every thread can stop at once. */
void converge_before_freeze(struct converge *cv);
/* The throttle and probe part of the progress line ("" if none) into buf. */
void converge_progress(const struct converge *cv, struct image_progress *p);
/* Put every limit back and close the probes. */
void converge_close(struct converge *cv);

#endif

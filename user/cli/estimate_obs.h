/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lmig estimate's observations (cli/estimate_obs.c): the memory watched
 * with a dirty tracker, a QEMU guest asked over QMP, the link measured by
 * a probe send.  What they find goes into the model's input
 * (live/estimate.h); cli/cmd_estimate.c words the result.
 */
#ifndef LMIG_CLI_ESTIMATE_OBS_H
#define LMIG_CLI_ESTIMATE_OBS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/options.h"
#include "live/estimate.h"
#include "live/watch.h"

#define QEMU_PAGE_SIZE	4096
/* --bandwidth's token bucket (chan/ratelimit.c): 20 ms of rate, at least 256 KiB. */
#define RL_BURST_S	0.02
#define RL_BURST_MIN	(256 * 1024)

/* The bytes --bandwidth rate lets out at once after a pause. */
static inline double estimate_burst(uint64_t rate)
{
	return rate * RL_BURST_S > RL_BURST_MIN ? rate * RL_BURST_S : RL_BURST_MIN;
}

struct est_args {
	const char *mem, *tname, *qmp;
	struct track_target tg;
	unsigned long pid, observe_s, downtime_ms, max_rounds, throttle_max;
	bool downtime_set, throttle_off;
	uint64_t probe;
};

/* What was watched, and how the link was found. */
struct est_obs {
	const char *tracker, *link_from;
	char why[1024];
	double harvest_s;		/* the cheapest harvest */
	unsigned int harvests;
	double observed_s;
	struct est_input in;
	char accel[16];			/* QEMU's accelerator */
	double probe_mbps;		/* --to: what the probe send carried, wire MB/s */
};

/*
 * Watch a->mem (with a->tg, a->tname) for --observe seconds: the curve,
 * the image, its zero pages, the cheapest harvest, the writer's CPU.
 */
int estimate_watch_mem(struct watch *w, const struct est_args *a, bool progress,
		       struct est_obs *ob);
/*
 * Ask QEMU at a->qmp: its RAM (*ram_bytes), pid, downtime-limit and
 * max-bandwidth; with curve, calc-dirty-rate's curve too.
 */
int estimate_ask_qmp(const struct est_args *a, bool progress, bool curve, struct est_obs *ob,
		     int64_t *max_bw, pid_t *qpid, uint64_t *ram_bytes);
/* Where QEMU pid holds guest RAM of ram bytes: 0 and *start, or -1. */
int estimate_qemu_ram(pid_t pid, uint64_t ram, uint64_t *start);
/* --to: the link's rate, wire bytes a page, set-up and commit, from a probe send. */
int estimate_probe_link(const struct est_args *a, const struct cli_opts *c,
			const struct watch *w, struct est_obs *ob);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Which tracker --tracker auto picks, from what each one costs: a pure
 * decision over numbers the caller measured (track.c calibrates each
 * tracker that can watch the memory with one short harvest).
 *
 * Only trackers that can watch every write of the memory are candidates:
 * the caller leaves out each one whose probe or calibration failed, so no
 * cost makes auto pick a tracker that would lose a write.
 */
#ifndef LMIG_TRACK_PICK_H
#define LMIG_TRACK_PICK_H

#include <stdbool.h>

/*
 * A later tracker is picked over an earlier one only when it costs less
 * than 1 / TRACK_PICK_FACTOR of it and saves at least TRACK_PICK_MIN_S a
 * harvest: calibration is one harvest, whose time on a shared machine
 * moves by milliseconds from one harvest to the next, so a near tie keeps
 * the order of preference.
 */
#define TRACK_PICK_FACTOR	2.0
#define TRACK_PICK_MIN_S	0.010

struct track_cost {
	/* A harvest's wall time after a round of 1 s (track.c's calibration). */
	double harvest_s;
	double cpu_s;		/* lmig's CPU time in it (user + system) */
	/* The tracker stops the writer while it harvests (soft-dirty). */
	bool stops_writer;
};

enum track_pick_why {
	TRACK_PICK_NONE,	/* no candidate */
	TRACK_PICK_ONLY,	/* one candidate: nothing to calibrate */
	TRACK_PICK_PREFERRED,	/* the first candidate, none much cheaper */
	TRACK_PICK_CHEAPER,	/* a later candidate, much cheaper than the first */
};

/*
 * What a harvest of c costs, in seconds: its wall time (the final one
 * falls inside the migration's downtime, the others hold up a round),
 * and that time again when the writer stands still for it.
 */
double track_pick_cost(const struct track_cost *c);

/*
 * Pick among n candidates, c[0] the most preferred: returns the index of
 * the cheapest one that beats c[0] by the margins above, else 0; -1 when
 * n is 0.  *why (may be NULL) says which case it was.
 *
 * huge: the memory is in huge folios (a shmem object whose st_blksize is
 * 2 MiB).  Then a tracker that stops the writer is never picked over c[0]
 * by cost: what it costs the writer is not in its harvest time.  A QEMU
 * guest writing flat out into THP-backed RAM kept 0.01-0.04 of its
 * untracked rate under soft-dirty and 0.24-1.14 under kmod, in three runs
 * under nested KVM (Documentation/benchmarks.md), while soft-dirty's
 * harvest was the cheaper.
 */
int track_pick(const struct track_cost *c, unsigned int n, bool huge, enum track_pick_why *why);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CPU throttling of the source workload through the kernel's cgroup CPU
 * bandwidth control, for a live migration whose workload writes memory
 * faster than the link carries it.
 *
 *   cgroup v2: cpu.max ("QUOTA PERIOD") on a cgroup with the cpu controller
 *   cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us of the cpu hierarchy
 *
 * The limit is never set on a cgroup the workload shares with others: a
 * process alone in its cgroup is limited there (the old values are saved
 * and put back); otherwise lmig creates a transient cgroup next to (v2)
 * or below (v1) its own, moves the workload — or, in v1, only the threads
 * named — into it for the migration, and moves it back afterwards.
 *
 * Threads that the host's VM manager placed each in a cgroup of its own
 * are never moved: libvirt (cgroup v2) gives every vCPU thread a threaded
 * cgroup, .../machine-qemu\x2dN\x2dNAME.scope/libvirt/vcpuN (older libvirt:
 * .../scope/vcpuN), and its own CPU limit and pinning live there.  When
 * every thread named is alone in a threaded v2 cgroup with the cpu
 * controller, the limit goes in place on those cgroups' cpu.max, the
 * share split evenly over them, and never looser than a quota found there
 * (libvirt's <vcpu_quota>): the tighter of the two is written, and the
 * value found comes back exactly.  When only some of them are (or one is
 * in a threaded cgroup it shares, or one without the cpu controller),
 * throttle_init() refuses and changes nothing: limiting the others would
 * mean moving threads out of cgroups someone else placed them in, and
 * limiting only some would leave the rest free while the caller believed
 * them held.  The disk-write limit (v2 io.max, a domain controller) cannot
 * be set on threaded cgroups: throttle_io_init() refuses in that mode.
 *
 * Everything needed to undo it is written first to a state file under
 * /run/lmig/, so `lmig throttle --restore` can undo it after lmig died,
 * and `lmig send` does so by itself when it finds a file whose owner is
 * gone.
 *
 * The files, bottom up: cgroup.c finds cgroups and moves tasks;
 * throttle_state.c writes and reads the state file; throttle_cpu.c and
 * throttle_io.c set the CPU and disk-write limits, throttle_vcpu.c the CPU
 * limit on per-vCPU cgroups; throttle_restore.c
 * undoes both.  threads.c (threads.h) reads the per-thread counters that
 * say which threads to aim at.
 */
#ifndef LMIG_THROTTLE_H
#define LMIG_THROTTLE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "host/threads.h"

#define THROTTLE_STATE_DIR	"/run/lmig"
#define THROTTLE_PERIOD_US	100000
/*
 * The kernel's smallest quota is 1 ms: a limit below 1 % of a CPU gets a
 * longer period (1 ms / share), up to this.
 */
#define THROTTLE_PERIOD_MAX_US	1000000
/*
 * The kernel's smallest quota, and the shortest period a limit with
 * short_period gets (a limit of more than a tenth of a CPU has a longer
 * quota than 1 ms rather than a period the CFS timer would fire at
 * every few milliseconds).
 */
#define THROTTLE_QUOTA_MIN_US	1000
#define THROTTLE_PERIOD_MIN_US	10000
#define THROTTLE_MAX_TIDS	64
#define THROTTLE_MAX_DEVS	8
#define THROTTLE_MAX_VCGS	THROTTLE_MAX_TIDS	/* per-vCPU cgroups: one per thread */
#define THROTTLE_IO_MIN_BPS	(1024 * 1024)	/* never hold disk writes below this */

/*
 * Disk writes of the workload (throttle_io.c): cgroup v2 io.max "wbps=" or
 * v1 blkio.throttle.write_bps_device, on every block device that holds a
 * file the workload has open.  v2's io controller takes whole processes
 * only, so the limit is set where the process is (in place, or the
 * transient cgroup); v1's blkio hierarchy is separate from cpu, and like
 * it holds single threads: the threads that write to disk are moved.
 */
struct throttle_io {
	bool on;			/* set up: what follows must be undone */
	bool v2, transient, per_thread;
	char home[512];			/* v1: the workload's blkio cgroup */
	char cg[640];			/* where the write limits are set */
	unsigned int ndev;
	struct {
		unsigned int maj, min;
		char saved[32];		/* its write limit found there: bytes/s, "max" or "0" */
	} dev[THROTTLE_MAX_DEVS];
	pid_t tids[THROTTLE_MAX_TIDS];	/* v1 per_thread: the threads moved */
	unsigned int ntids;
	double bps;			/* the limit now, 0 = none */
};

/* How the CPU limit is held: for reports (the words are in cli/). */
enum throttle_kind {
	THROTTLE_KIND_NONE,		/* nothing set up */
	THROTTLE_KIND_IN_PLACE,		/* the process alone in its cgroup: limited there */
	THROTTLE_KIND_TRANSIENT,	/* the process moved into a transient cgroup */
	THROTTLE_KIND_THREADED_CHILD,	/* v2: the threads named in a threaded child */
	THROTTLE_KIND_V1_THREADS,	/* v1: the threads named moved into a transient cgroup */
	THROTTLE_KIND_VCPU_CGROUPS,	/* v2: each thread's own threaded cgroup, in place */
};

/* A thread's own threaded cgroup, limited in place. */
struct throttle_vcg {
	pid_t tid;
	char dir[512];
	char saved[32];			/* its cpu.max found there */
};

struct throttle {
	pid_t pid;
	bool v2;
	bool transient;			/* we made cg and moved the workload into it */
	bool per_thread;		/* only tids[] are limited (moved, or per-vCPU cgroups) */
	char home[512];			/* the workload's own cgroup */
	char cg[640];			/* where the limit is set */
	char saved[64];			/* v2 cpu.max / v1 "QUOTA PERIOD" found there */
	char state[640];		/* the state file */
	pid_t tids[THROTTLE_MAX_TIDS];
	unsigned int ntids;
	/*
	 * v2 per thread: a threaded child of cg holding tids (cpu is a threaded
	 * controller), "" when the whole process is limited; subtree_cpu: lmig
	 * enabled +cpu in cg's cgroup.subtree_control for it.
	 */
	char tcg[700];
	bool subtree_cpu;
	/* per-vCPU cgroups (nvcg > 0): each limited in place, nothing moved */
	unsigned int nvcg;
	struct throttle_vcg vcg[THROTTLE_MAX_VCGS];
	bool applied;
	/*
	 * Set by the caller after throttle_init(): limits get the smallest
	 * quota and the shortest period their share allows
	 * (throttle_quota_short()) instead of THROTTLE_PERIOD_US: a guest's
	 * vCPU threads, which QEMU must be able to stop at once.
	 */
	bool short_period;
	double share;			/* CPUs the workload may use now, 0 = no limit */
	struct throttle_io io;
};

/*
 * Find the workload's CPU cgroup and prepare to throttle it; writes the
 * state file.  tids (may be NULL/0) limits the throttle to those threads
 * (v1: moved; v2: a threaded child, or their own per-vCPU cgroups in
 * place: see above).  Returns 0, or -1 with lmig_err() saying why it
 * cannot (a mixed placement of tids among them; nothing changed then).
 */
int throttle_init(struct throttle *t, pid_t pid, const pid_t *tids, unsigned int ntids);
/*
 * Allow the workload `cpus` CPUs (0.001 .. N) from now on (under 1 % of
 * a CPU the period stretches: throttle_quota(); with short_period,
 * throttle_quota_short()); per-vCPU cgroups get
 * cpus / nvcg each, or the quota found there when that is tighter.
 */
int throttle_set(struct throttle *t, double cpus);
/* How the CPU limit is held (after throttle_init). */
enum throttle_kind throttle_kind(const struct throttle *t);
/* Put everything back as it was and remove the state file. */
int throttle_restore(struct throttle *t);
/* A limit throttle_restore_files() undid, for its caller to tell. */
struct throttle_restored {
	pid_t pid;			/* the process it limited */
	const char *cg;			/* the CPU limit's cgroup (per-vCPU: the first) */
	enum throttle_kind kind;
	unsigned int ncg;		/* per-vCPU cgroups restored (kind VCPU_CGROUPS) */
	const struct throttle_vcg *vcg;	/* and which */
	const char *io_cg;		/* the disk-write limit's, or NULL: none */
};

/*
 * Undo what the state files under THROTTLE_STATE_DIR record, calling
 * restored (if not NULL) for each.  only_stale:
 * only files whose lmig is no longer running.  Returns how many were
 * restored, or -1 with lmig_err() for the first failure.
 */
int throttle_restore_files(bool only_stale,
			   void (*restored)(void *ctx, const struct throttle_restored *r),
			   void *ctx);
/*
 * Also limit the workload's disk writes (after throttle_init): tids (may
 * be NULL/0) are the threads that write to disk, for v1.  0, or -1 with
 * lmig_err() saying why not (nothing changed then).
 */
int throttle_io_init(struct throttle *t, const pid_t *tids, unsigned int ntids);
/* Hold its disk writes to bps bytes per second on each device. */
int throttle_io_set(struct throttle *t, double bps);
/* Put the write limits and placement back; 0 or -errno. */
int throttle_io_restore(struct throttle_io *io);
/* Rewrite the state file (after a change of what must be undone). */
int throttle_state_save(const struct throttle *t);
/* Undo the state file of workload pid, whoever wrote it (the freeze guard's job). */
int throttle_restore_pid(pid_t pid);

#endif

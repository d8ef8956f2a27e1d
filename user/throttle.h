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
 * Everything needed to undo it is written first to a state file under
 * /run/lmig/, so `lmig throttle --restore` can undo it after lmig died,
 * and `lmig send` does so by itself when it finds a file whose owner is
 * gone.
 */
#ifndef LMIG_THROTTLE_H
#define LMIG_THROTTLE_H

#include <stdbool.h>
#include <sys/types.h>

#define THROTTLE_STATE_DIR	"/run/lmig"
#define THROTTLE_PERIOD_US	100000
#define THROTTLE_MAX_TIDS	64

struct throttle {
	pid_t pid;
	bool v2;
	bool transient;			/* we made cg and moved the workload into it */
	bool per_thread;		/* only tids[] were moved (v1) */
	char home[512];			/* the workload's own cgroup */
	char cg[640];			/* where the limit is set */
	char saved[64];			/* v2 cpu.max / v1 "QUOTA PERIOD" found there */
	char state[640];		/* the state file */
	pid_t tids[THROTTLE_MAX_TIDS];
	unsigned int ntids;
	bool applied;
	double share;			/* CPUs the workload may use now, 0 = no limit */
};

/*
 * Find the workload's CPU cgroup and prepare to throttle it; writes the
 * state file.  tids (may be NULL/0) limits a v1 throttle to those
 * threads.  Returns 0, or -1 with lmig_err() saying why it cannot.
 */
int throttle_init(struct throttle *t, pid_t pid, const pid_t *tids, unsigned int ntids);
/* Allow the workload `cpus` CPUs (0.01 .. N) from now on. */
int throttle_set(struct throttle *t, double cpus);
/* Put everything back as it was and remove the state file. */
int throttle_restore(struct throttle *t);
/*
 * Undo what the state files under THROTTLE_STATE_DIR record.  only_stale:
 * only files whose lmig is no longer running.  Returns how many were
 * restored, or -1 with lmig_err() for the first failure.
 */
int throttle_restore_files(bool only_stale, bool verbose);
/*
 * Per-thread counters of a process, for aiming the throttle at the
 * threads that write: minor faults (with a write-protecting tracker, the
 * first write to a page after each harvest is one) and CPU time.
 */
#define TSNAP_MAX	256
struct tsnap {
	double t;
	unsigned int n;
	pid_t tid[TSNAP_MAX];
	unsigned long long minflt[TSNAP_MAX];
	double cpu[TSNAP_MAX];
};

void tsnap_take(pid_t pid, struct tsnap *s);
/*
 * The threads that took most (together >= 80 %) of the minor faults
 * between a and b, into out; 0 when the faults say nothing (too few).
 */
unsigned int tsnap_dirtiers(const struct tsnap *a, const struct tsnap *b, pid_t *out,
			    unsigned int max);
/* CPUs the threads in tids (all threads if n == 0) used between a and b. */
double tsnap_cpus(const struct tsnap *a, const struct tsnap *b, const pid_t *tids, unsigned int n);

/* Undo the state file of workload pid, whoever wrote it (the freeze guard's job). */
int throttle_restore_pid(pid_t pid);
/* CPU seconds the process (or thread, tid > 0) has used. */
double proc_cpu_s(pid_t pid, pid_t tid);

#endif

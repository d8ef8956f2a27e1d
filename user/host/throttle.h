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
#include <stdio.h>
#include <sys/types.h>

#define THROTTLE_STATE_DIR	"/run/lmig"
#define THROTTLE_PERIOD_US	100000
#define THROTTLE_MAX_TIDS	64
#define THROTTLE_MAX_DEVS	8
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
	/*
	 * v2 per thread: a threaded child of cg holding tids (cpu is a threaded
	 * controller), "" when the whole process is limited; subtree_cpu: lmig
	 * enabled +cpu in cg's cgroup.subtree_control for it.
	 */
	char tcg[700];
	bool subtree_cpu;
	bool applied;
	double share;			/* CPUs the workload may use now, 0 = no limit */
	struct throttle_io io;
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
	unsigned long long wbytes[TSNAP_MAX];	/* bytes it sent to storage (/proc/.../io) */
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
/* Bytes per second the threads in tids (all if n == 0) wrote to storage between a and b. */
double tsnap_wbps(const struct tsnap *a, const struct tsnap *b, const pid_t *tids, unsigned int n);
/* The threads that did most (together >= 80 %) of the disk writes between a and b. */
unsigned int tsnap_diskwriters(const struct tsnap *a, const struct tsnap *b, pid_t *out,
			       unsigned int max);

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
/* The state file lines of io, and the parse of one ("io..."); false: not an io line. */
void throttle_io_state_print(FILE *f, const struct throttle_io *io);
bool throttle_io_state_parse(const char *line, struct throttle_io *io);
/* Rewrite the state file (after a change of what must be undone). */
int throttle_state_save(const struct throttle *t);
/*
 * The cgroup directory of pid for v1 controller ctrl ("cpu", "blkio"),
 * and the v2 one: either may come back "".  root: pid is in that
 * hierarchy's root.  0, or -1 with lmig_err().
 */
int cgroup_dirs(pid_t pid, const char *ctrl, char *v2dir, size_t v2len, char *v1dir,
		size_t v1len, bool *v2root, bool *v1root);
/*
 * Move every task listed in FROM/FILE ("tasks", "cgroup.procs",
 * "cgroup.threads") into TO/FILE, then remove FROM.  0 or -errno.
 */
int cgroup_empty_into(const char *from, const char *to, const char *file);
/* Is pid the only process of cgroup dir? */
bool cgroup_alone(const char *dir, pid_t pid);

/* Undo the state file of workload pid, whoever wrote it (the freeze guard's job). */
int throttle_restore_pid(pid_t pid);
/* CPU seconds the process (or thread, tid > 0) has used. */
double proc_cpu_s(pid_t pid, pid_t tid);

#endif

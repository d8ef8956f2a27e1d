/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Per-thread counters of a process, for aiming the throttles at the
 * threads that write: minor faults (with a write-protecting tracker, the
 * first write to a page after each harvest is one), CPU time, and bytes
 * sent to storage.  Read from /proc/PID/task/TID/{stat,io}.
 */
#ifndef LMIG_THREADS_H
#define LMIG_THREADS_H

#include <sys/types.h>

#define TSNAP_MAX	256
/*
 * The threads aimed at are the fewest that together did this share of
 * the faults or disk writes: a design choice, enough to cover the writers
 * without taking in threads that only touch a page now and then.
 */
#define TSNAP_TOP_PCT	80
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
 * The threads that took most (together >= TSNAP_TOP_PCT %) of the minor faults
 * between a and b, into out; 0 when the faults say nothing (too few).
 */
unsigned int tsnap_dirtiers(const struct tsnap *a, const struct tsnap *b, pid_t *out,
			    unsigned int max);
/* CPUs the threads in tids (all threads if n == 0) used between a and b. */
double tsnap_cpus(const struct tsnap *a, const struct tsnap *b, const pid_t *tids, unsigned int n);
/* Bytes per second the threads in tids (all if n == 0) wrote to storage between a and b. */
double tsnap_wbps(const struct tsnap *a, const struct tsnap *b, const pid_t *tids, unsigned int n);
/*
 * The threads that did most (together >= TSNAP_TOP_PCT %) of the disk
 * writes between a and b.
 */
unsigned int tsnap_diskwriters(const struct tsnap *a, const struct tsnap *b, pid_t *out,
			       unsigned int max);
/* CPU seconds the process (or thread, tid > 0) has used. */
double proc_cpu_s(pid_t pid, pid_t tid);

#endif

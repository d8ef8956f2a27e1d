/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Convergence of a QEMU guest carried by lmig pipe / lmig proxy (--qmp):
 * a thread beside the stream engine follows QEMU's migration over QMP and,
 * when it does not converge within QEMU's downtime limit, limits the CPU
 * of the vCPU threads that dirty its memory — the decision of
 * `lmig send --throttle auto` (live/throttle_policy.h), the same cgroup
 * limits (host/throttle.h), the same guarantees.
 *
 * Every CVM_TICK_MS it asks query-migrate; at each new dirty-sync-count
 * (QEMU's pass over RAM ended, its dirty rate is fresh), once
 * CVM_LOOK_MIN_S passed since the last, it decides:
 *   dirty rate   dirty-pages-rate x page-size
 *   link rate    the "transferred" bytes since the last decision / time
 *                (QEMU's mbps when that is nothing)
 *   prediction   remaining / link rate, against downtime-limit
 *                (query-migrate-parameters, read again at each decision)
 *   CPU used     the vCPU threads' CPU time (/proc, host/threads.h)
 * Whom it limits: the vCPU threads (query-cpus-fast), never QEMU's other
 * threads (the migration thread must keep sending).  Under KVM the eBPF
 * probes' guest faults per thread (write-protect faults under dirty
 * logging) tell which vCPUs write, and only those are limited; under TCG
 * (or with no KVM exit on them) nothing tells them apart: all are.
 *
 * Undone at once when QEMU's migration ends (completed, failed,
 * cancelled), when QMP stops answering, and by cvm_stop() on every exit
 * path of the command; a guard process (host/guard.h) undoes them if lmig
 * is killed, and the state file under /run/lmig lets
 * `lmig throttle --restore` do it if the guard is gone too.
 *
 * Numbers only: cli/ words them (the report's "throttle" object).
 */
#ifndef LMIG_CONVERGE_VM_H
#define LMIG_CONVERGE_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/probes.h"
#include "host/throttle.h"
#include "live/throttle_policy.h"

#define CVM_TICK_MS	500		/* query-migrate this often */
/*
 * A decision watches at least this long: QEMU computes its dirty rate
 * once a second at most, and shorter windows make the CPU a limited
 * vCPU used (bursts of its quota) and the link's rate noise.
 */
#define CVM_LOOK_MIN_S	1.0
/*
 * One QMP command, at most.  QEMU answers from its main loop, under the
 * big lock, which a vCPU thread may hold while its limit holds it (up to
 * a period of the limit, THROTTLE_PERIOD_MAX_US).
 */
#define CVM_QMP_TIMEOUT_MS 10000
/*
 * The least limit, CPUs: a guest's writer sleeps most of the time and
 * dirties fast on a few per mille of a CPU.
 */
#define CVM_CPUS_MIN	0.001
/*
 * ... but the switch-over must not wait long for a vCPU thread that used
 * its quota: QEMU stops the vCPUs inside its downtime, and a thread held
 * by its limit stops only once it runs again.  The kernel charges a
 * running thread at its scheduler tick, so a limited thread overruns its
 * quota by up to a tick (CVM_SCHED_TICK_S: HZ=250, Debian's) and its
 * cgroup pays that back from the periods after, held meanwhile: after a
 * burst it waits up to (quota + tick) / share, not (period - quota).
 * Whatever the share, that wait is least with the least quota, so the
 * limits get 1 ms over the shortest period (struct throttle's
 * short_period, unless LMIG_CVM_PERIOD=long); the period itself does
 * not shorten it.
 */
#define CVM_SCHED_TICK_S	0.004
/*
 * The least share: 1 ms of CPU every CVM_PERIOD_OF_DOWNTIME of QEMU's
 * downtime-limit.  Its wait at the stop is five such periods
 * (cvm_stop_wait_s(): 1.25 times the downtime-limit) for a vCPU that
 * computes without pause, less for one that sleeps between writes.  A
 * least share whose wait were a quarter of the limit (1 % of a CPU at
 * 2 s) leaves the test guest of test_qemu_converge unconverged
 * (Documentation/qemu.md, "Limits and the switch-over").
 */
#define CVM_PERIOD_OF_DOWNTIME	0.25

/*
 * The longest a thread limited to cpus (> 0) with short_period waits
 * before it runs again, s: (quota + tick) / share, with the quota and
 * period of throttle_quota_short().
 */
static inline double cvm_stop_wait_s(double cpus)
{
	double q = THROTTLE_QUOTA_MIN_US / 1e6, pmin = THROTTLE_PERIOD_MIN_US / 1e6;
	double pmax = THROTTLE_PERIOD_MAX_US / 1e6;

	if (q / cpus < pmin)
		q = cpus * pmin;
	else if (q / cpus > pmax)
		cpus = q / pmax;	/* the least quota over the longest period */
	return (q + CVM_SCHED_TICK_S) / cpus;
}

/* The least limit, CPUs, for a downtime-limit (lmig estimate predicts with it too). */
static inline double cvm_least_cpus(int64_t downtime_ms)
{
	double period_s = downtime_ms * CVM_PERIOD_OF_DOWNTIME / 1000;
	double least = period_s > 0 ? 0.001 / period_s : 1;

	return least > CVM_CPUS_MIN ? least : CVM_CPUS_MIN;
}

/*
 * --throttle-max not given: a floor of what this leaves, which gives way
 * when a limit held there does not work (tpol_conf.soft_floor).
 */
#define CVM_MAX_PCT_DEFAULT	90

#define CVM_STEPS_MAX	48		/* decisions kept for the report */
#define CVM_VCPUS_MAX	THROTTLE_MAX_TIDS

enum cvm_accel { CVM_ACCEL_UNKNOWN, CVM_ACCEL_KVM, CVM_ACCEL_TCG };

/* Which vCPU threads a limit holds, and why those. */
enum cvm_whom {
	CVM_WHOM_NONE,		/* no limit was applied */
	CVM_WHOM_ALL_TCG,	/* all: TCG has no per-vCPU write signal */
	CVM_WHOM_ALL_NO_EXITS,	/* all: no KVM exit seen on them (not KVM, it seems) */
	CVM_WHOM_ALL_NO_PROBES,	/* all: no eBPF probes to tell the writers */
	CVM_WHOM_ALL_FEW,	/* all: too few guest write faults to tell */
	CVM_WHOM_ALL_MOST,	/* all: most of them write */
	CVM_WHOM_WRITERS,	/* those that took most of the guest write faults */
};

/* How QEMU's migration ended for the controller. */
enum cvm_end {
	CVM_END_STOPPED,	/* lmig stopped it first (its stream ended or failed) */
	CVM_END_COMPLETED,
	CVM_END_FAILED,
	CVM_END_CANCELLED,
	CVM_END_QMP_LOST,	/* QMP stopped answering: limits undone, not followed */
};

/* What went wrong with a limit (err has the system's words). */
enum cvm_note {
	CVM_NOTE_NONE,
	CVM_NOTE_CANNOT,	/* setting it up failed (retry: will try again) */
	CVM_NOTE_WHOLE_PROCESS,	/* only all of QEMU could be limited here: not done */
	CVM_NOTE_INEFFECTIVE,	/* lifted: the CPU taken did not lower the dirty rate */
	CVM_NOTE_FLOOR_FUTILE,	/* lifted: at its floor TPOL_FLOOR_PASSES passes, no gain */
	CVM_NOTE_SET_FAILED,	/* changing it failed: put back */
};

/* One decision, at a new dirty-sync-count. */
struct cvm_step {
	double t_s;		/* since the controller started */
	uint64_t sync;		/* QEMU's dirty-sync-count */
	double dirty_mbps, link_mbps, pred_ms;
	double cpu_used;	/* CPUs the vCPU threads (those limited, once) used */
	double cpus;		/* the limit in force after it, 0 = none */
	enum tpol_why why;
};

struct cvm_stats {
	bool on;		/* the controller ran */
	bool throttle;		/* --throttle auto */
	pid_t qemu_pid;
	enum cvm_accel accel;
	unsigned int nvcpus;
	pid_t vcpus[CVM_VCPUS_MAX];
	int stale_restored;	/* limits a dead lmig left, undone at the start */
	struct probes_status probes;
	int64_t downtime_limit_ms;	/* QEMU's, at the last decision */
	double least_cpus;		/* the least limit it allows (CVM_PERIOD_OF_DOWNTIME) */
	uint64_t syncs;			/* decisions taken */
	uint64_t dirty_set_max;		/* pages: the most dirtied in one of QEMU's passes */
	unsigned int nsteps, steps_lost;
	struct cvm_step steps[CVM_STEPS_MAX];
	/* The limit. */
	bool throttled;		/* one was applied */
	enum cvm_whom whom;
	unsigned int nlimited;
	pid_t limited[CVM_VCPUS_MAX];
	bool v2;
	enum throttle_kind kind;	/* how the cgroups hold them */
	char cg[700];		/* the cgroup that held them (the first, per vCPU) */
	double min_cpus;	/* the tightest limit set */
	double first_s, restored_s;	/* when the limit began and was undone */
	bool restored;		/* every limit undone (or none applied) */
	enum cvm_note note;
	bool retry;		/* CVM_NOTE_CANNOT: tried again later */
	/* The end. */
	enum cvm_end end;
	char qemu_status[32];	/* QEMU's last status seen */
	char err[256];		/* the note's, a failed restore's, or QMP's words */
};

struct cvm_conf {
	const char *qmp_path;	/* QEMU's QMP socket */
	pid_t vm_pid;		/* --vm-pid: must be QEMU's (0: take the socket's) */
	bool throttle;		/* --throttle auto */
	unsigned int max_pct;	/* --throttle-max; 0: not given (CVM_MAX_PCT_DEFAULT) */
};

struct converge_vm;

/*
 * Connect to QMP, find QEMU's vCPU threads, undo limits a dead lmig left,
 * fork the guard and start the thread.  Call it before any other thread
 * of lmig starts.  0, or -1 with lmig_err() (QMP cannot be reached, --vm-pid
 * is not QEMU's, ...): then nothing was changed.
 */
int cvm_start(struct converge_vm **out, const struct cvm_conf *c, struct cvm_stats *st);
/* Stop the thread, undo every limit, stand the guard down, free; st is final. */
void cvm_stop(struct converge_vm *cv);

/* The vCPU threads of pid from their names ("CPU N/KVM", "CPU N/TCG"): how many. */
unsigned int cvm_vcpus_by_name(pid_t pid, pid_t *out, unsigned int max);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The CPU throttle's part of undoing a throttle (throttle_restore.c), and
 * its per-vCPU cgroup mode (throttle_vcpu.c) for throttle_cpu.c.
 */
#ifndef LMIG_THROTTLE_CPU_H
#define LMIG_THROTTLE_CPU_H

#include "host/throttle.h"

/*
 * Move the workload's threads back where they were and put the CPU limit
 * back as found (throttle_init() recorded both).  0, or -1 with
 * lmig_err() naming what is left in the state file.
 */
int throttle_cpu_undo(struct throttle *t);

/*
 * The cpu.max of a share of cpus CPUs (> 0): the quota over
 * THROTTLE_PERIOD_US, or, below the kernel's 1 ms quota, a longer period
 * (at most THROTTLE_PERIOD_MAX_US).
 */
void throttle_quota(double cpus, long *quota, long *period);
/*
 * The same for a struct throttle with short_period: the kernel's least
 * quota (THROTTLE_QUOTA_MIN_US) over the period that gives the share,
 * never shorter than THROTTLE_PERIOD_MIN_US (a longer quota then) nor
 * longer than THROTTLE_PERIOD_MAX_US (the least quota then, whatever the
 * share).  A thread that used its quota waits (quota + a scheduler tick)
 * / share at most: least with the least quota, whatever the period
 * (Documentation/qemu.md, "Limits and the switch-over").
 */
void throttle_quota_short(double cpus, long *quota, long *period);

/*
 * Are the threads tids (those still there) each alone in a threaded v2
 * cgroup with the cpu controller?  1: yes, t->vcg[] holds those cgroups
 * and their cpu.max; 0: none is in a threaded cgroup (the other
 * mechanisms apply); -1 with lmig_err(): a mix, which is refused.
 */
int throttle_vcpu_find(struct throttle *t, const pid_t *tids, unsigned int ntids);
/* cpu.max of every per-vCPU cgroup for a share of cpus (<= 0: as found). */
int throttle_vcpu_set(struct throttle *t, double cpus);
/* Every per-vCPU cgroup's cpu.max back as found.  0 or -1 with lmig_err(). */
int throttle_vcpu_undo(struct throttle *t);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The CPU throttle on per-vCPU cgroups (throttle.h): threads that a VM
 * manager put each in a threaded cgroup of its own (libvirt's
 * .../libvirt/vcpuN) are limited there, in place, and never moved, since
 * the manager's own CPU limit and pinning live in those cgroups.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "host/cgroup.h"
#include "host/procfs.h"
#include "host/throttle.h"
#include "host/throttle_cpu.h"

/* Where one thread named by the caller sits. */
enum place {
	PLACE_GONE,		/* it exited: nothing to limit */
	PLACE_PLAIN,		/* a domain cgroup: the other mechanisms apply */
	PLACE_OWN,		/* alone in a threaded cgroup with cpu.max */
	PLACE_SHARED,		/* a threaded cgroup with other threads in it */
	PLACE_NO_CPU,		/* a threaded cgroup without the cpu controller */
};

static enum place place_of(pid_t pid, pid_t tid, char *dir, size_t len)
{
	char buf[64];

	if (cgroup_thread_v2dir(pid, tid, dir, len))
		return PLACE_GONE;
	/* "threaded"; a threaded domain ("domain threaded") is a domain */
	if (cgroup_read_line(dir, "cgroup.type", buf, sizeof(buf)) || strcmp(buf, "threaded"))
		return PLACE_PLAIN;
	if (cgroup_read_line(dir, "cpu.max", buf, sizeof(buf)))
		return PLACE_NO_CPU;
	return cgroup_thread_alone(dir, tid) ? PLACE_OWN : PLACE_SHARED;
}

/* The first thread named that is not alone in a threaded cgroup of its own. */
struct odd {
	pid_t tid;
	enum place place;
	char dir[512];
};

/*
 * Mixed placement: a thread in a threaded cgroup it shares or without the
 * cpu controller, or some threads in cgroups of their own and others in
 * domain cgroups.  Limiting the rest would move threads out of cgroups a
 * VM manager placed them in, and limiting only some would leave the rest
 * free while the caller believes them held: refused, nothing changed.
 */
static int refuse(const struct throttle *t, const struct odd *o)
{
	char why[1200];

	if (o->place == PLACE_SHARED)
		snprintf(why, sizeof(why), "shares threaded cgroup %s with other threads", o->dir);
	else if (o->place == PLACE_NO_CPU)
		snprintf(why, sizeof(why), "is in threaded cgroup %s, which has no cpu controller",
			 o->dir);
	else
		snprintf(why, sizeof(why), "is in %s while thread %d has per-thread cgroup %s", o->dir,
			 (int)t->vcg[0].tid, t->vcg[0].dir);
	return lmig_err("thread %d of process %d %s: cannot limit it without moving threads out of their threaded cgroups; nothing changed",
			(int)o->tid, (int)t->pid, why);
}

int throttle_vcpu_find(struct throttle *t, const pid_t *tids, unsigned int ntids)
{
	struct odd threaded = { 0 }, plain = { 0 };
	char dir[512];

	t->nvcg = 0;
	for (unsigned int i = 0; i < ntids; i++) {
		enum place p = place_of(t->pid, tids[i], dir, sizeof(dir));
		struct odd *o = p == PLACE_PLAIN ? &plain : &threaded;
		struct throttle_vcg *v;
		bool dup = false;

		if (p == PLACE_GONE)
			continue;
		if (p != PLACE_OWN) {
			if (!o->tid) {
				*o = (struct odd){ .tid = tids[i], .place = p };
				snprintf(o->dir, sizeof(o->dir), "%s", dir);
			}
			continue;
		}
		for (unsigned int k = 0; k < t->nvcg; k++)
			dup |= t->vcg[k].tid == tids[i];
		if (dup)
			continue;	/* the same thread named twice */
		if (t->nvcg == THROTTLE_MAX_VCGS)
			return lmig_err("more than %d per-vCPU cgroups to limit", THROTTLE_MAX_VCGS);
		v = &t->vcg[t->nvcg];
		v->tid = tids[i];
		snprintf(v->dir, sizeof(v->dir), "%s", dir);
		if (cgroup_read_line(dir, "cpu.max", v->saved, sizeof(v->saved)))
			return lmig_err("cannot read %s/cpu.max", dir);
		t->nvcg++;
	}
	if (threaded.tid || (plain.tid && t->nvcg)) {
		int ret = refuse(t, threaded.tid ? &threaded : &plain);

		t->nvcg = 0;
		return ret;
	}
	return t->nvcg > 0;
}

/*
 * Is cpu.max value a ("QUOTA PERIOD") at most as generous as a quota of
 * q per period p?  "max" never is.
 */
static bool tighter(const char *a, long long q, long long p)
{
	long long aq, ap;

	if (sscanf(a, "%lld %lld", &aq, &ap) != 2 || ap <= 0)
		return false;
	return aq * p <= q * ap;
}

int throttle_vcpu_set(struct throttle *t, double cpus)
{
	long q = 0, p = THROTTLE_PERIOD_US;
	char val[64];

	if (cpus > 0 && t->short_period)
		throttle_quota_short(cpus / t->nvcg, &q, &p);
	else if (cpus > 0)
		throttle_quota(cpus / t->nvcg, &q, &p);
	snprintf(val, sizeof(val), "%ld %ld", q, p);
	for (unsigned int i = 0; i < t->nvcg; i++) {
		const struct throttle_vcg *v = &t->vcg[i];
		/* No limit, or the one found there is the tighter: that one holds. */
		bool keep = cpus <= 0 || tighter(v->saved, q, p);
		int ret = kfile_write(v->dir, "cpu.max", keep ? v->saved : val);

		if (ret)
			return lmig_err_errno(-ret, "cannot set the CPU limit of %s", v->dir);
	}
	return 0;
}

int throttle_vcpu_undo(struct throttle *t)
{
	for (unsigned int i = 0; i < t->nvcg; i++) {
		int ret = kfile_write(t->vcg[i].dir, "cpu.max", t->vcg[i].saved);

		/* ENOENT, ENODEV: the cgroup went away with its VM */
		if (ret && ret != -ENOENT && ret != -ENODEV)
			return lmig_err_errno(-ret, "cannot restore the CPU limit of %s (state kept in %s)",
					      t->vcg[i].dir, t->state);
	}
	return 0;
}

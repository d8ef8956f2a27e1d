// SPDX-License-Identifier: GPL-2.0-only
/*
 * The CPU throttle (throttle.h): where the workload's CPU limit goes
 * (its own cgroup, a transient one, a threaded child for single threads),
 * setting it, and taking it away again.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "host/cgroup.h"
#include "host/procfs.h"
#include "host/throttle.h"
#include "host/throttle_cpu.h"

/*
 * The directory of pid's cgroup in the hierarchy that has the CPU
 * controller: v2 when its cgroup there has cpu.max, else v1's "cpu".
 */
static int find_cpu_cgroup(pid_t pid, char *dir, size_t len, bool *v2, bool *root)
{
	char v2dir[512], v1dir[512], buf[64];
	bool v2root = false, v1root = false;

	if (cgroup_dirs(pid, "cpu", v2dir, sizeof(v2dir), v1dir, sizeof(v1dir), &v2root, &v1root))
		return -1;
	if (v2dir[0] && (!cgroup_read_line(v2dir, "cpu.max", buf, sizeof(buf)) ||
			 /* the root cgroup has no cpu.max, but its children may */
			 (v2root && !cgroup_read_line(v2dir, "cgroup.subtree_control", buf, sizeof(buf)) &&
			  strstr(buf, "cpu")))) {
		snprintf(dir, len, "%s", v2dir);
		*v2 = true;
		*root = v2root;
		return 0;
	}
	if (v1dir[0]) {
		snprintf(dir, len, "%s", v1dir);
		*v2 = false;
		*root = v1root;
		return 0;
	}
	return lmig_err("process %d is in no cgroup with the CPU controller (neither cgroup v2 cpu.max nor a v1 cpu hierarchy)",
			(int)pid);
}

/* Alone in dir, and dir has a CPU limit of its own to set. */
static bool alone_in(const char *dir, pid_t pid)
{
	char path[600], path1[600];

	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	snprintf(path1, sizeof(path1), "%s/cpu.cfs_quota_us", dir);
	if (access(path, F_OK) && access(path1, F_OK))
		return false;
	return cgroup_alone(dir, pid);
}

void throttle_quota(double cpus, long *quota, long *period)
{
	long p = THROTTLE_PERIOD_US, q = (long)(cpus * p);

	/*
	 * The kernel's smallest quota is 1 ms: a smaller share stretches the
	 * period instead.  A longer period lets a thread that used its quota
	 * wait longer, so it is only as long as the share needs.
	 */
	if (q < 1000 && cpus > 0) {
		p = (long)(1000 / cpus);
		if (p > THROTTLE_PERIOD_MAX_US)
			p = THROTTLE_PERIOD_MAX_US;
		q = (long)(cpus * p);
	}
	if (q < 1000)
		q = 1000;
	*quota = q;
	*period = p;
}

void throttle_quota_short(double cpus, long *quota, long *period)
{
	long q = THROTTLE_QUOTA_MIN_US, p = (long)(q / cpus);

	if (p < THROTTLE_PERIOD_MIN_US) {
		p = THROTTLE_PERIOD_MIN_US;
		q = (long)(cpus * p);
	} else if (p > THROTTLE_PERIOD_MAX_US) {
		p = THROTTLE_PERIOD_MAX_US;
	}
	*quota = q;
	*period = p;
}

/* The limit value of a share: "QUOTA PERIOD" (v2 cpu.max style). */
static void quota_str(const struct throttle *t, char *buf, size_t len, double cpus)
{
	long q, p;

	if (t->short_period)
		throttle_quota_short(cpus, &q, &p);
	else
		throttle_quota(cpus, &q, &p);
	snprintf(buf, len, "%ld %ld", q, p);
}

static int set_limit(const struct throttle *t, const char *val)
{
	char q[32], p[32];
	int ret;

	if (t->v2)
		return kfile_write(t->tcg[0] ? t->tcg : t->cg, "cpu.max", val);
	if (sscanf(val, "%31s %31s", q, p) != 2)
		return -EINVAL;
	if (!strcmp(q, "max"))
		strcpy(q, "-1");
	/* Shrinking the period below the quota is refused: quota first when lifting. */
	ret = kfile_write(t->cg, "cpu.cfs_period_us", p);
	if (ret == -EINVAL) {
		ret = kfile_write(t->cg, "cpu.cfs_quota_us", q);
		return ret ? ret : kfile_write(t->cg, "cpu.cfs_period_us", p);
	}
	return ret ? ret : kfile_write(t->cg, "cpu.cfs_quota_us", q);
}

static int get_limit(const struct throttle *t, char *buf, size_t len)
{
	char q[32], p[32];
	int ret;

	if (t->v2)
		return cgroup_read_line(t->cg, "cpu.max", buf, len);
	ret = cgroup_read_line(t->cg, "cpu.cfs_quota_us", q, sizeof(q));
	if (!ret)
		ret = cgroup_read_line(t->cg, "cpu.cfs_period_us", p, sizeof(p));
	if (!ret)
		snprintf(buf, len, "%s %s", !strcmp(q, "-1") ? "max" : q, p);
	return ret;
}

/* cgroup v2: the threads of tcg back into cg, tcg removed, +cpu taken back. */
static int threads_join(struct throttle *t)
{
	int ret = 0, r;

	if (t->tcg[0])
		ret = cgroup_empty_into(t->tcg, t->cg, "cgroup.threads");
	if (!ret && t->subtree_cpu) {
		r = kfile_write(t->cg, "cgroup.subtree_control", "-cpu");
		if (r && r != -ENOENT)
			ret = r;
	}
	if (!ret) {
		t->tcg[0] = 0;
		t->subtree_cpu = false;
	}
	return ret;
}

/*
 * cgroup v2 holds single threads only in threaded cgroups: a child of cg
 * made "threaded" (cg becomes a threaded domain, which may hold both the
 * process and threaded children using the threaded cpu controller), with
 * +cpu in cg's subtree_control.  The threads that write move into it and
 * get the limit; the rest of the process stays in cg, unlimited.
 */
static int threads_split(struct throttle *t)
{
	char buf[256], num[16];
	bool moved = false;
	int ret;

	snprintf(t->tcg, sizeof(t->tcg), "%s/lmig-threads", t->cg);
	if (cgroup_read_line(t->cg, "cgroup.subtree_control", buf, sizeof(buf)))
		buf[0] = 0;
	/* Recorded first: whatever happens next can be undone. */
	if (throttle_state_save(t))
		goto fail;
	if (mkdir(t->tcg, 0755) && errno != EEXIST) {
		ret = -errno;
		goto fail_ret;
	}
	ret = kfile_write(t->tcg, "cgroup.type", "threaded");
	if (ret)
		goto fail_ret;
	if (!strstr(buf, "cpu")) {
		t->subtree_cpu = true;
		if (throttle_state_save(t))
			goto fail;
		ret = kfile_write(t->cg, "cgroup.subtree_control", "+cpu");
		if (ret)
			goto fail_ret;
	}
	for (unsigned int i = 0; i < t->ntids; i++) {
		snprintf(num, sizeof(num), "%d", (int)t->tids[i]);
		ret = kfile_write(t->tcg, "cgroup.threads", num);
		if (ret && ret != -ESRCH)
			goto fail_ret;
		moved |= !ret;
	}
	if (!moved)
		goto fail;
	t->per_thread = true;
	return 0;
fail_ret:
	lmig_err_errno(-ret, "cannot put threads of process %d into threaded cgroup %s",
		       (int)t->pid, t->tcg);
fail:
	if (threads_join(t))
		return -1;	/* the state file keeps what is left to undo */
	t->subtree_cpu = false;
	t->tcg[0] = 0;
	throttle_state_save(t);
	return -1;
}

int throttle_init(struct throttle *t, pid_t pid, const pid_t *tids, unsigned int ntids)
{
	bool root = false;
	int ret;

	*t = (struct throttle){ .pid = pid };
	if (find_cpu_cgroup(pid, t->home, sizeof(t->home), &t->v2, &root))
		return -1;
	snprintf(t->state, sizeof(t->state), "%s/throttle-%d", THROTTLE_STATE_DIR, (int)pid);
	if (!access(t->state, F_OK))
		return lmig_err("%s exists: another lmig throttles process %d, or one died (lmig throttle --restore)",
				t->state, (int)pid);
	if (ntids > THROTTLE_MAX_TIDS)
		ntids = THROTTLE_MAX_TIDS;
	memcpy(t->tids, tids, ntids * sizeof(*tids));
	t->ntids = ntids;
	ret = t->v2 && ntids ? throttle_vcpu_find(t, t->tids, ntids) : 0;
	if (ret < 0)
		return -1;
	if (ret > 0) {
		/* Limited in place on each thread's own cgroup: nothing moves. */
		t->per_thread = true;
		snprintf(t->cg, sizeof(t->cg), "%s", t->vcg[0].dir);
		snprintf(t->saved, sizeof(t->saved), "%s", t->vcg[0].saved);
		if (throttle_state_save(t))
			return -1;
		t->applied = true;
		return 0;
	}
	/* v2: the threads go into a threaded child once the process is placed. */
	t->per_thread = !t->v2 && ntids;
	if (!t->per_thread && !root && alone_in(t->home, pid)) {
		snprintf(t->cg, sizeof(t->cg), "%s", t->home);
		if (get_limit(t, t->saved, sizeof(t->saved)))
			return lmig_err("cannot read the CPU limit of %s", t->cg);
	} else {
		/*
		 * v1: a child of the workload's cgroup (threads may move there).
		 * v2: a sibling, since a cgroup with processes cannot have
		 * children with controllers; under the root, a child.
		 */
		char parent[512];

		snprintf(parent, sizeof(parent), "%s", t->home);
		if (t->v2 && !root)
			dirname(parent);
		snprintf(t->cg, sizeof(t->cg), "%s/lmig-throttle-%d", parent, (int)pid);
		t->transient = true;
		snprintf(t->saved, sizeof(t->saved), "max %d", THROTTLE_PERIOD_US);
	}
	/* Written before anything changes: a crash from here on can be undone. */
	if (throttle_state_save(t))
		return -1;
	if (t->transient) {
		if (mkdir(t->cg, 0755) && errno != EEXIST) {
			lmig_err_errno(errno, "cannot create cgroup %s", t->cg);
			goto err;
		}
		ret = cgroup_move(t->cg, pid, t->tids, t->per_thread ? t->ntids : 0);
		if (ret) {
			lmig_err_errno(-ret, "cannot move process %d into %s", (int)pid, t->cg);
			rmdir(t->cg);
			goto err;
		}
	}
	t->applied = true;
	if (t->v2 && ntids && !root && threads_split(t)) {
		/* The whole process is limited instead: still a limit that works. */
		lmig_err_clear();
	}
	return 0;
err:
	unlink(t->state);
	return -1;
}

int throttle_set(struct throttle *t, double cpus)
{
	char val[64];
	int ret;

	if (cpus <= 0)
		snprintf(val, sizeof(val), "max %d", THROTTLE_PERIOD_US);
	else
		quota_str(t, val, sizeof(val), cpus);
	if (t->nvcg) {
		if (throttle_vcpu_set(t, cpus))
			return -1;
		t->share = cpus;
		return 0;
	}
	ret = set_limit(t, val);
	if (ret)
		return lmig_err_errno(-ret, "cannot set the CPU limit of %s", t->cg);
	t->share = cpus;
	return 0;
}

enum throttle_kind throttle_kind(const struct throttle *t)
{
	if (!t->applied)
		return THROTTLE_KIND_NONE;
	if (t->nvcg)
		return THROTTLE_KIND_VCPU_CGROUPS;
	if (t->tcg[0])
		return THROTTLE_KIND_THREADED_CHILD;
	if (!t->v2 && t->per_thread)
		return THROTTLE_KIND_V1_THREADS;
	return t->transient ? THROTTLE_KIND_TRANSIENT : THROTTLE_KIND_IN_PLACE;
}

int throttle_cpu_undo(struct throttle *t)
{
	int ret;

	if (t->nvcg)
		return throttle_vcpu_undo(t);
	ret = t->v2 ? threads_join(t) : 0;

	if (ret)
		return lmig_err_errno(-ret, "cannot move the threads of %s back (state kept in %s)",
				      t->tcg, t->state);
	if (t->transient) {
		/* Everything in the transient cgroup goes home, new threads too. */
		ret = cgroup_empty_into(t->cg, t->home, t->v2 ? "cgroup.procs" : "tasks");
	} else {
		ret = set_limit(t, t->saved);
		if (ret == -ENOENT)
			ret = 0;	/* the cgroup went away with its workload */
	}
	if (ret)
		return lmig_err_errno(-ret, "cannot restore the CPU limit of %s (state kept in %s)",
				      t->cg, t->state);
	return 0;
}

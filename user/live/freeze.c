// SPDX-License-Identifier: GPL-2.0-only
/* Pausing and resuming the source workload: see freeze.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "live/freeze.h"
#include "host/procfs.h"
#include "host/guard.h"

#define FREEZE_LIMIT_S	5.0	/* a workload that takes longer to stop is stuck */

const char *freezer_name(const struct freezer *f)
{
	if (f->method == FREEZE_NONE && f->hook)
		return f->hook->name;
	return f->method == FREEZE_SIGNAL ? "signal" :
	       f->method == FREEZE_CGROUP ? (f->v1 ? "cgroup-v1" : "cgroup-v2") : "none";
}

/* The cgroup tree walk below looks for this pid among the members. */
static pid_t walk_pid;
static bool walk_found;

static int find_member(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	char buf[65536], *p, *end;

	if (type != FTW_D)
		return 0;
	if (kfile_read(path, "cgroup.procs", buf, sizeof(buf)))
		return 0;
	for (p = buf; *p; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		if (v == walk_pid) {
			walk_found = true;
			return 1;
		}
	}
	return 0;
}

static int start_guard(struct freezer *f);

int freezer_init(struct freezer *f, const char *spec, pid_t pid)
{
	char buf[64];

	*f = (struct freezer){ .pid = pid, .pidfd = -1, .guard = { .fd = -1 } };
	if (!strcmp(spec, "none")) {
		f->method = FREEZE_NONE;
	} else if (!strcmp(spec, "signal")) {
		f->method = FREEZE_SIGNAL;
	} else if (!strncmp(spec, "cgroup:", 7) && spec[7]) {
		struct stat sb;

		f->method = FREEZE_CGROUP;
		if (strlen(spec + 7) >= sizeof(f->dir))
			return lmig_err("--freeze: cgroup path too long");
		snprintf(f->dir, sizeof(f->dir), "%s", spec + 7);
		if (stat(f->dir, &sb) || !S_ISDIR(sb.st_mode))
			return lmig_err("--freeze cgroup:%s: no such cgroup directory", f->dir);
		if (!kfile_read(f->dir, "cgroup.freeze", buf, sizeof(buf)))
			f->v1 = false;
		else if (!kfile_read(f->dir, "freezer.state", buf, sizeof(buf)))
			f->v1 = true;
		else
			return lmig_err("--freeze cgroup:%s: neither cgroup.freeze (v2) nor freezer.state (v1 freezer) is there",
					f->dir);
		if (f->v1 && !strncmp(buf, "FROZEN", 6))
			return lmig_err("--freeze cgroup:%s: the cgroup is already frozen", f->dir);
		walk_pid = pid;
		walk_found = false;
		nftw(f->dir, find_member, 16, FTW_PHYS);
		if (!walk_found)
			return lmig_err("--freeze cgroup:%s: process %d is not in that cgroup", f->dir,
					(int)pid);
	} else {
		return lmig_err("--freeze: '%s' is not signal, cgroup:DIR or none", spec);
	}
	f->pidfd = pidfd_of(pid);
	if (f->pidfd < 0)
		return lmig_err_errno(errno, "--pid %d", (int)pid);
	/*
	 * The guard is forked now, while lmig is small: a fork at freeze time
	 * would copy the engine's page tables and pinned buffers inside the
	 * downtime.  Until the freeze, its resume is a no-op.
	 */
	return f->method == FREEZE_NONE ? 0 : start_guard(f);
}

/* Are all threads of the process stopped (state T or t)? */
static int threads_stopped(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int all = 1;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && all) {
		char st;

		if (de->d_name[0] == '.')
			continue;
		st = proc_thread_state(pid, atoi(de->d_name));
		if (st && st != 'T' && st != 't' && st != 'Z' && st != 'X')
			all = 0;	/* (a thread that exited meanwhile has no state) */
	}
	closedir(d);
	return all;
}

static int cgroup_frozen(const struct freezer *f)
{
	char buf[4096];

	if (f->v1)
		return kfile_read(f->dir, "freezer.state", buf, sizeof(buf)) ? -1 :
		       !strncmp(buf, "FROZEN", 6);
	if (kfile_read(f->dir, "cgroup.events", buf, sizeof(buf)))
		return -1;
	return strstr(buf, "frozen 1") != NULL;
}

static int do_thaw(const struct freezer *f)
{
	switch (f->method) {
	case FREEZE_SIGNAL:
		return pidfd_signal(f->pidfd, SIGCONT) && errno != ESRCH ? -errno : 0;
	case FREEZE_CGROUP:
		return kfile_write(f->dir, f->v1 ? "freezer.state" : "cgroup.freeze",
				  f->v1 ? "THAWED" : "0");
	default:
		return 0;
	}
}

/*
 * The guard's last action (host/guard.h), once it undid the CPU limits:
 * resume the workload, unless the receiver may have committed a copy of
 * it.  The workload's pidfd is the descriptor the guard kept.
 */
static int guard_resume(void *ctx, int kept_fd, bool committing)
{
	struct freezer *f = ctx;

	if (committing)
		return 0;
	f->pidfd = kept_fd;
	return do_thaw(f) ? 1 : 0;
}

static int start_guard(struct freezer *f)
{
	return guard_start(&f->guard, f->pid, f->pidfd, guard_resume, f);
}

int freezer_freeze(struct freezer *f)
{
	double t0 = now_s();
	int ret;

	if (f->method == FREEZE_NONE) {
		f->frozen = true;
		f->freeze_s = 0;
		if (!f->hook)
			return 0;
		ret = f->hook->pause(f->hook->ctx);
		f->freeze_s = now_s() - t0;
		return ret;
	}
	if (f->method == FREEZE_SIGNAL)
		ret = pidfd_signal(f->pidfd, SIGSTOP) ? -errno : 0;
	else
		ret = kfile_write(f->dir, f->v1 ? "freezer.state" : "cgroup.freeze",
				 f->v1 ? "FROZEN" : "1");
	f->frozen = true;	/* even half-done, it must be undone on failure */
	if (ret)
		return lmig_err_errno(-ret, "cannot freeze the workload (%s)", freezer_name(f));
	for (;;) {
		int done = f->method == FREEZE_SIGNAL ? threads_stopped(f->pid) : cgroup_frozen(f);

		if (done < 0)
			return lmig_err("the workload vanished while it was being frozen");
		if (done)
			break;
		if (now_s() - t0 > FREEZE_LIMIT_S)
			return lmig_err("the workload did not stop within %.0f s (%s)",
					FREEZE_LIMIT_S, freezer_name(f));
		nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 }, NULL);
	}
	f->freeze_s = now_s() - t0;
	return 0;
}

int freezer_thaw(struct freezer *f)
{
	int ret = 0;

	if (f->frozen && f->method == FREEZE_NONE && f->hook) {
		f->frozen = false;
		guard_stop(&f->guard);
		return f->hook->resume(f->hook->ctx);
	}
	if (f->frozen) {
		ret = do_thaw(f);
		f->frozen = false;
	}
	guard_stop(&f->guard);
	if (ret)
		return lmig_err_errno(-ret, "cannot resume the workload (%s)", freezer_name(f));
	return 0;
}

void freezer_commit_point(struct freezer *f)
{
	if (f->method == FREEZE_NONE && f->hook && f->hook->commit_point)
		f->hook->commit_point(f->hook->ctx);
	guard_commit_point(&f->guard);
}

void freezer_commit(struct freezer *f, bool kill_it)
{
	guard_stop(&f->guard);
	if (!kill_it)
		return;
	pidfd_signal(f->pidfd, SIGKILL);
	/* A v1-frozen task cannot act on SIGKILL until it is thawed. */
	if (f->method == FREEZE_CGROUP && f->v1)
		do_thaw(f);
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Undoing a throttle (throttle.h): the disk-write limit, then the CPU
 * limit, then the state file; and the state files a dead lmig left.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "host/procfs.h"
#include "host/throttle.h"
#include "host/throttle_cpu.h"
#include "host/throttle_state.h"

int throttle_restore(struct throttle *t)
{
	int r;

	if (!t->applied)
		return 0;
	r = throttle_io_restore(&t->io);
	if (r)
		return lmig_err_errno(-r, "cannot restore the disk write limits of %s (state kept in %s)",
				      t->io.cg, t->state);
	if (throttle_cpu_undo(t))
		return -1;
	unlink(t->state);
	t->applied = false;
	t->share = 0;
	return 0;
}

int throttle_restore_pid(pid_t pid)
{
	struct throttle t;
	char path[64];
	unsigned long long owner_start;
	pid_t owner;

	snprintf(path, sizeof(path), "%s/throttle-%d", THROTTLE_STATE_DIR, (int)pid);
	if (access(path, F_OK))
		return 0;
	if (throttle_state_read(path, &t, &owner, &owner_start))
		return -1;
	return throttle_restore(&t);
}

/*
 * Does the lmig that wrote a state file still run (and so will undo it
 * itself)?  Its pid alone cannot tell: once it died, the number may be
 * another process's.  The pid with its start time names one process; a
 * file without the start time (an older lmig's) has only the pid.
 */
static bool owner_runs(pid_t owner, unsigned long long owner_start)
{
	if (owner <= 0)
		return false;
	if (!owner_start)
		return kill(owner, 0) == 0;
	return proc_start_time(owner) == owner_start;
}

int throttle_restore_files(bool only_stale,
			   void (*restored)(void *ctx, const struct throttle_restored *r),
			   void *ctx)
{
	DIR *d = opendir(THROTTLE_STATE_DIR);
	struct dirent *de;
	int n = 0, ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : lmig_err_errno(errno, "cannot open %s", THROTTLE_STATE_DIR);
	while ((de = readdir(d))) {
		struct throttle t;
		char path[600], iocg[640];
		unsigned long long owner_start;
		pid_t owner = 0;
		enum throttle_kind kind;
		bool io;

		if (strncmp(de->d_name, "throttle-", 9) || strchr(de->d_name, '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", THROTTLE_STATE_DIR, de->d_name);
		if (throttle_state_read(path, &t, &owner, &owner_start)) {
			ret = -1;
			continue;
		}
		if (only_stale && owner_runs(owner, owner_start))
			continue;	/* its lmig still runs and will restore it */
		io = t.io.on;
		kind = throttle_kind(&t);
		snprintf(iocg, sizeof(iocg), "%s", t.io.cg);
		if (throttle_restore(&t)) {
			ret = -1;
			continue;
		}
		if (restored)
			restored(ctx, &(struct throttle_restored){ .pid = t.pid, .cg = t.cg,
								   .io_cg = io ? iocg : NULL,
								   .kind = kind, .ncg = t.nvcg,
								   .vcg = t.vcg });
		n++;
	}
	closedir(d);
	return ret ? -1 : n;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pausing the source workload for the switch-over, and making sure it runs
 * again if the migration fails — even if lmig itself dies.
 *
 *   signal      SIGSTOP / SIGCONT to the whole thread group of --pid
 *   cgroup:DIR  cgroup v2 cgroup.freeze, or the v1 freezer's freezer.state
 *   none        the caller keeps the workload quiet itself
 *
 * When the freezer is set up, a guard process is forked (host/guard.h).
 * It waits: when lmig reports a verified commit (or a failure it handled
 * itself) it exits and leaves things as they are; when lmig is gone
 * without that (killed), it undoes lmig's CPU limits (throttle.h) and
 * resumes the workload — unless lmig told it the
 * commit point was reached (freezer_commit_point()): then the workload
 * stays paused, since a copy of it may run elsewhere.  The guard inherits the
 * pidfd taken before the fork: if the workload exited and its pid was
 * reused, its SIGCONT reaches nobody.
 */
#ifndef LMIG_FREEZE_H
#define LMIG_FREEZE_H

#include <stdbool.h>
#include <sys/types.h>

#include "host/guard.h"

enum freeze_method { FREEZE_NONE, FREEZE_SIGNAL, FREEZE_CGROUP };

/*
 * With FREEZE_NONE, something else may pause the workload: lmig qemu's
 * source takes QEMU's own migration to pre-switchover (guest stopped)
 * and cancels it to resume.  Each returns 0, or -1 with lmig_err().  No
 * guard process of the freezer's stands behind a hook: its owner
 * answers for a dead lmig, and hears of the commit point (may be NULL).
 */
struct freeze_hook {
	const char *name;		/* what freezer_name() says */
	int (*pause)(void *ctx);
	int (*resume)(void *ctx);
	void (*commit_point)(void *ctx);
	/* The receiver committed: the session's end is only its clean-up (may be NULL). */
	void (*committed)(void *ctx);
	/*
	 * Asked while the pre-copy runs (may be NULL): -1 with lmig_err()
	 * when the owner has no use for the session any more (another part
	 * of the same migration failed), and it gives up at once.
	 */
	int (*abandoned)(void *ctx);
	void *ctx;
};

struct freezer {
	enum freeze_method method;
	pid_t pid;
	int pidfd;		/* pidfd_of(pid), taken when pid is checked; every signal goes here */
	char dir[512];		/* FREEZE_CGROUP: the cgroup directory */
	bool v1;		/* freezer.state rather than cgroup.freeze */
	bool frozen;
	struct guard guard;	/* resumes it if lmig dies (host/guard.h) */
	double freeze_s;	/* how long the last freeze took to take hold */
	const struct freeze_hook *hook;	/* FREEZE_NONE only; NULL: none */
};

/*
 * Parse "signal", "none" or "cgroup:DIR" for pid, check that it can work
 * (the process exists: its pidfd is opened and kept; DIR is a cgroup with
 * a freezer) and start the guard.  Returns 0, or -1 with lmig_err() set.
 */
int freezer_init(struct freezer *f, const char *spec, pid_t pid);
/* Pause the workload and wait until every thread is stopped. */
int freezer_freeze(struct freezer *f);
/* Resume it (a no-op unless frozen); the guard is told to stand down. */
int freezer_thaw(struct freezer *f);
/*
 * The commit point: from now on the receiver may commit, so the guard must
 * never resume the workload, even if lmig dies (it still undoes the CPU
 * limits).  freezer_thaw() afterwards still resumes it: lmig knows then
 * that the receiver did not commit.
 */
void freezer_commit_point(struct freezer *f);
/* After a verified commit: leave it paused for good (or kill it). */
void freezer_commit(struct freezer *f, bool kill_it);
const char *freezer_name(const struct freezer *f);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A guard: a small process forked by lmig that outlives it.  It holds the
 * read end of a pipe whose write end only lmig has; when lmig stands it
 * down ('k') it exits and changes nothing; when the pipe closes without
 * that (lmig was killed, even with SIGKILL), it undoes lmig's CPU and disk
 * limits on the workload (throttle_restore_pid()) and then runs the
 * caller's last action, if any (the freeze's guard resumes the workload
 * there, unless lmig told it the commit point was reached: 'c').
 *
 * It ignores the terminal's signals, so a ^C that ends lmig still finds
 * it there, and it keeps no descriptor of lmig's but the pipe and one the
 * caller names (stdin, stdout and stderr become /dev/null): a migration's
 * sockets and QEMU's pipe must close with lmig.  Fork it while lmig is
 * small and has no other thread.
 */
#ifndef LMIG_GUARD_H
#define LMIG_GUARD_H

#include <stdbool.h>
#include <sys/types.h>

struct guard {
	pid_t pid;		/* the guard process, 0 if none */
	int fd;			/* write end of its pipe, -1 if none */
};

/*
 * What the guard does after the limits are undone, in the guard process:
 * ctx as given to guard_start(), kept_fd the caller's descriptor there (or
 * -1), committing: lmig had reached the commit point.  Its return value
 * becomes the guard's exit status.
 */
typedef int (*guard_last_fn)(void *ctx, int kept_fd, bool committing);

/*
 * Fork the guard for the limits of workload pid (0: none to undo).
 * keep_fd (or -1) stays open in it.  0, or -1 with lmig_err().
 */
int guard_start(struct guard *g, pid_t pid, int keep_fd, guard_last_fn last, void *ctx);
/* The commit point: the guard will not run its last action's resume. */
void guard_commit_point(struct guard *g);
/* lmig handled everything itself: the guard exits, changing nothing. */
void guard_stop(struct guard *g);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/* The guard that undoes lmig's limits when lmig dies (guard.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "host/guard.h"
#include "host/throttle.h"

/* The descriptors the guard keeps: its pipe and the caller's. */
#define GUARD_PIPE_FD	3
#define GUARD_KEPT_FD	4

/* In the guard: wait for lmig's word or its end. */
static void __attribute__((noreturn)) guard_main(pid_t pid, int kept_fd, guard_last_fn last,
						 void *ctx)
{
	bool committing = false;
	char c = 0;
	ssize_t n;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "lmig-guard");
	for (;;) {
		do
			n = read(GUARD_PIPE_FD, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 && c == 'k')
			_exit(0);
		if (n == 1 && c == 'c') {
			committing = true;	/* the receiver may commit from now on */
			continue;
		}
		break;
	}
	/* lmig is gone: its limits first, so the workload runs at full speed ... */
	if (pid > 0)
		throttle_restore_pid(pid);
	/* ... then what the caller wants done (resuming a paused workload). */
	_exit(last ? last(ctx, kept_fd, committing) : 0);
}

int guard_start(struct guard *g, pid_t pid, int keep_fd, guard_last_fn last, void *ctx)
{
	int p[2], null;
	pid_t child;

	*g = (struct guard){ .pid = 0, .fd = -1 };
	if (pipe2(p, O_CLOEXEC))
		return lmig_err_errno(errno, "pipe");
	child = fork();
	if (child < 0) {
		close(p[0]);
		close(p[1]);
		return lmig_err_errno(errno, "fork");
	}
	if (child == 0) {
		/* Above the two kept numbers first, then into place. */
		int rfd = fcntl(p[0], F_DUPFD_CLOEXEC, 5);
		int kfd = keep_fd >= 0 ? fcntl(keep_fd, F_DUPFD_CLOEXEC, 5) : -1;

		if (rfd < 0 || dup2(rfd, GUARD_PIPE_FD) < 0)
			_exit(1);
		if (kfd >= 0 && dup2(kfd, GUARD_KEPT_FD) < 0)
			_exit(1);
		for (int fd = 5; fd < 1024; fd++)
			close(fd);
		/*
		 * Not lmig's stdio: a pipe to QEMU (lmig pipe send's stdin) or
		 * a reader waiting for the report's end must see lmig go.
		 */
		null = open("/dev/null", O_RDWR);
		for (int fd = 0; fd < 3 && null >= 0; fd++)
			if (fd != null)
				dup2(null, fd);
		if (null > 2)
			close(null);
		guard_main(pid, kfd >= 0 ? GUARD_KEPT_FD : -1, last, ctx);
	}
	close(p[0]);
	g->pid = child;
	g->fd = p[1];
	return 0;
}

void guard_commit_point(struct guard *g)
{
	if (g->fd >= 0 && write(g->fd, "c", 1) != 1)
		(void)0;	/* a guard that is gone resumes nothing */
}

void guard_stop(struct guard *g)
{
	if (g->fd >= 0) {
		if (write(g->fd, "k", 1) != 1)
			(void)0;	/* a guard that is gone has nothing to stand down */
		close(g->fd);
		g->fd = -1;
	}
	if (g->pid > 0) {
		waitpid(g->pid, NULL, 0);
		g->pid = 0;
	}
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Running the real lmig binary: spawn it with its stdout and stderr on
 * pipes, wait for it with a deadline, and keep what it printed.
 */
#ifndef SELFTEST_PROC_H
#define SELFTEST_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* The descriptor number `lmig recv --ready-fd` gets in the child. */
#define PROC_READY_FD	3

#define PROC_OUT_MAX	8192

struct proc {
	pid_t pid;		/* 0: never started */
	int out_fd, err_fd;	/* read ends of the child's stdout, stderr */
	int status;		/* wait status, valid once exited */
	bool exited;
	double t_start, t_exit;	/* monotonic seconds */
	char out[PROC_OUT_MAX], err[PROC_OUT_MAX];
	size_t out_len, err_len;
	/* err with newlines shown as \n, so a log line stays one TAP line */
	char err_log[PROC_OUT_MAX];
};

struct spawn_opts {
	int *ready_fd;		/* if set: pipe on PROC_READY_FD, read end returned here */
	uid_t uid;		/* if non-zero: setgid/setuid to it before exec */
};

/* Monotonic seconds. */
double mono_s(void);

/*
 * Path of the lmig binary under test: $LMIG, else ../../user/lmig from
 * this test binary (selftests/build/).
 */
const char *lmig_path(void);
/*
 * REL (under 64 bytes) taken from the directory of this test binary
 * (selftests/build/), into buf; NULL if /proc/self/exe cannot be read.
 */
const char *beside_test(const char *rel, char *buf, size_t len);
/*
 * A driver script of selftests/qemu (NAME, e.g. "qmig.py"), found from
 * the lmig under test (user/lmig of the same tree), into buf; NULL when
 * that path has no directory or does not fit.
 */
const char *qemu_driver(const char *name, char *buf, size_t len);
/* The python3 to run the drivers with. */
const char *python3_path(void);

int proc_spawn(struct proc *p, char *const argv[], const struct spawn_opts *o);
/*
 * Wait up to timeout_s for the child to exit, collecting its output.
 * Returns 0 once it exited, -1 on timeout (it is left running).
 */
int proc_wait(struct proc *p, double timeout_s);
/* SIGKILL and reap the child if it still runs; close the pipes. */
void proc_kill(struct proc *p);
/* Exit code, or -1 if it did not exit normally. */
int proc_exit_code(const struct proc *p);

/*
 * Start `lmig recv --listen 127.0.0.1:0 --ready-fd N --out OUT --no-sync
 * --json EXTRA...` (extra is NULL-terminated, may be NULL) and return the
 * port it listens on, or -1.
 */
int recv_start(struct proc *p, const char *out, const char *const extra[], uid_t uid);
/* The same, listening on listen ("[::1]:0"). */
int recv_start_on(struct proc *p, const char *listen, const char *out,
		  const char *const extra[], uid_t uid);
/*
 * Read one line from fd within timeout_s into line (without the newline)
 * and close fd.  Returns 0, or -1 if no whole line came.
 */
int ready_line(int fd, char *line, size_t len, double timeout_s);
/*
 * Start lmig ARGS... --ready-fd 3 (args NULL-terminated, at most 28) and
 * wait, up to 10 s, for its ready line, which goes into line.  0 or -1.
 */
int lmig_start_ready(struct proc *p, const char *const args[], char *line, size_t len);
/*
 * Start `lmig dirty --ready-fd N --json --no-progress ARGS...` and wait
 * until it reports its object (filled), whose path goes into path.
 */
int dirty_start(struct proc *p, const char *const args[], char *path, size_t len);
/* Start `lmig send --mem MEM --to 127.0.0.1:PORT --json EXTRA...`. */
int send_start(struct proc *p, const char *mem, int port, const char *const extra[]);
/* The same, sending to HOST:PORT. */
int send_start_to(struct proc *p, const char *mem, const char *to, const char *const extra[]);

/* The state letter of /proc/PID/stat ('T' stopped), or 0 when there is none. */
char pid_state(pid_t pid);

/*
 * True when s is exactly one non-empty line ending in '\n': lmig's
 * contract for an error message on stderr.
 */
bool one_line(const char *s);

#endif

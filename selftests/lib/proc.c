// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *beside_test(const char *rel, char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len > 64 ? len - 64 : 0);
	char *slash;

	if (n <= 0 || strlen(rel) >= 64)
		return NULL;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	strcpy(slash ? slash + 1 : buf, rel);
	return buf;
}

const char *qemu_driver(const char *name, char *buf, size_t len)
{
	const char *bin = lmig_path(), *slash = strrchr(bin, '/');
	int n;

	if (!slash)
		return NULL;
	n = snprintf(buf, len, "%.*s/../selftests/qemu/%s", (int)(slash - bin), bin, name);
	return n > 0 && (size_t)n < len ? buf : NULL;
}

const char *python3_path(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

const char *lmig_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("LMIG");

	if (env && *env)
		return env;
	if (path[0])
		return path;
	return beside_test("../../user/lmig", path, sizeof(path)) ?: "lmig";
}

/* Only async-signal-safe calls between fork and exec: the test may have threads. */
static void child_fail(const char *what)
{
	const char *msg = "selftest: spawning lmig failed at ";

	if (write(STDERR_FILENO, msg, strlen(msg)) < 0 ||
	    write(STDERR_FILENO, what, strlen(what)) < 0 ||
	    write(STDERR_FILENO, "\n", 1) < 0)
		_exit(127);
	_exit(127);
}

static void child(char *const argv[], int out, int err, int ready, int devnull, uid_t uid)
{
	if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		child_fail("dup2");
	if (ready >= 0) {
		/* dup2 onto itself would keep O_CLOEXEC, so clear it explicitly. */
		if (ready != PROC_READY_FD && dup2(ready, PROC_READY_FD) < 0)
			child_fail("dup2 ready");
		if (fcntl(PROC_READY_FD, F_SETFD, 0) < 0)
			child_fail("fcntl ready");
	}
	if (uid && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
		child_fail("setuid");
	execv(argv[0], argv);
	child_fail("execv");
}

int proc_spawn(struct proc *p, char *const argv[], const struct spawn_opts *o)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rdy[2] = { -1, -1 }, devnull;
	uid_t uid = o ? o->uid : 0;
	bool want_ready = o && o->ready_fd;

	memset(p, 0, sizeof(*p));
	p->out_fd = p->err_fd = -1;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
	    (want_ready && pipe2(rdy, O_CLOEXEC)))
		goto fail;
	fflush(stdout);
	fflush(stderr);
	p->t_start = mono_s();
	p->pid = fork();
	if (p->pid < 0) {
		p->pid = 0;
		goto fail;
	}
	if (p->pid == 0)
		child(argv, out[1], err[1], rdy[1], devnull, uid);
	close(out[1]);
	close(err[1]);
	close(devnull);
	p->out_fd = out[0];
	p->err_fd = err[0];
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
	if (want_ready) {
		close(rdy[1]);
		*o->ready_fd = rdy[0];
	}
	return 0;
fail:
	fprintf(stderr, "# spawning %s: %s\n", argv[0], strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (rdy[i] >= 0)
			close(rdy[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return -1;
}

/*
 * Read what is there; beyond PROC_OUT_MAX it is dropped, but still read
 * so the child never blocks on a full pipe.
 */
static void drain(int *fd, char *buf, size_t *len)
{
	char tmp[4096];

	while (*fd >= 0) {
		ssize_t n = read(*fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(*fd);
			*fd = -1;
			return;
		}
		size_t room = PROC_OUT_MAX - 1 - *len;
		size_t k = (size_t)n < room ? (size_t)n : room;

		memcpy(buf + *len, tmp, k);
		*len += k;
		buf[*len] = 0;
	}
}

static void make_log(struct proc *p)
{
	size_t n = 0;

	for (const char *c = p->err; *c && n < sizeof(p->err_log) - 3; c++) {
		if (*c == '\n') {
			p->err_log[n++] = '\\';
			p->err_log[n++] = 'n';
		} else {
			p->err_log[n++] = *c;
		}
	}
	p->err_log[n] = 0;
}

int proc_wait(struct proc *p, double timeout_s)
{
	double deadline = mono_s() + timeout_s;

	if (p->exited)
		return 0;
	if (!p->pid)
		return -1;
	for (;;) {
		struct pollfd pf[2] = { { .fd = p->out_fd, .events = POLLIN },
					{ .fd = p->err_fd, .events = POLLIN } };
		pid_t r;

		drain(&p->out_fd, p->out, &p->out_len);
		drain(&p->err_fd, p->err, &p->err_len);
		r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid) {
			p->t_exit = mono_s();
			p->exited = true;
			/* The child is gone, so both pipes reach EOF now. */
			while (p->out_fd >= 0 || p->err_fd >= 0) {
				poll(pf, 2, 100);
				drain(&p->out_fd, p->out, &p->out_len);
				drain(&p->err_fd, p->err, &p->err_len);
				pf[0].fd = p->out_fd;
				pf[1].fd = p->err_fd;
			}
			make_log(p);
			return 0;
		}
		if (mono_s() > deadline)
			return -1;
		/* A short poll bounds how late an exit is noticed. */
		poll(pf, 2, 5);
	}
}

void proc_kill(struct proc *p)
{
	/* A zeroed struct proc was never started: its fds are not ours. */
	if (!p->pid)
		return;
	if (!p->exited) {
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
			;
		p->exited = true;
		p->t_exit = mono_s();
	}
	if (p->out_fd >= 0)
		close(p->out_fd);
	if (p->err_fd >= 0)
		close(p->err_fd);
	p->out_fd = p->err_fd = -1;
}

int proc_exit_code(const struct proc *p)
{
	if (!p->exited || !WIFEXITED(p->status))
		return -1;
	return WEXITSTATUS(p->status);
}

static int build_argv(const char **argv, size_t max, const char *const head[],
		      const char *const extra[])
{
	size_t n = 0;

	argv[n++] = lmig_path();
	for (; *head; head++)
		argv[n++] = *head;
	for (; extra && *extra && n < max - 1; extra++)
		argv[n++] = *extra;
	if (extra && *extra)
		return -1;
	argv[n] = NULL;
	return 0;
}

int recv_start(struct proc *p, const char *out, const char *const extra[], uid_t uid)
{
	return recv_start_on(p, "127.0.0.1:0", out, extra, uid);
}

int ready_line(int fd, char *line, size_t len, double timeout_s)
{
	size_t got = 0;
	double deadline = mono_s() + timeout_s;
	char *nl = NULL;

	while (got < len - 1 && !nl && mono_s() < deadline) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = read(fd, line + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
		nl = memchr(line, '\n', got);
	}
	close(fd);
	line[got] = 0;
	if (!nl)
		return -1;
	*nl = 0;
	return 0;
}

int recv_start_on(struct proc *p, const char *listen, const char *out,
		  const char *const extra[], uid_t uid)
{
	const char *const head[] = { "recv", "--listen", listen, "--ready-fd", "3",
				     "--out", out, "--no-sync", "--json", NULL };
	const char *argv[32];
	int rfd = -1, port = -1;
	struct spawn_opts o = { .ready_fd = &rfd, .uid = uid };
	char line[32];

	_Static_assert(PROC_READY_FD == 3, "--ready-fd argument above");
	if (build_argv(argv, 32, head, extra) || proc_spawn(p, (char *const *)argv, &o))
		return -1;
	/* lmig writes "PORT\n" once it listens and closes the descriptor. */
	if (ready_line(rfd, line, sizeof(line), 5) == 0)
		port = atoi(line);
	if (port <= 0 || port > 65535) {
		proc_wait(p, 1);
		fprintf(stderr, "# lmig recv did not report a port (got '%s'); stderr: %s\n",
			line, p->err);
		return -1;
	}
	return port;
}

int dirty_start(struct proc *p, const char *const args[], char *path, size_t len)
{
	const char *const head[] = { "dirty", "--ready-fd", "3", "--json", "--no-progress", NULL };
	const char *argv[32];
	int rfd = -1;
	struct spawn_opts o = { .ready_fd = &rfd };

	if (build_argv(argv, 32, head, args) || proc_spawn(p, (char *const *)argv, &o))
		return -1;
	if (ready_line(rfd, path, len, 30)) {
		proc_wait(p, 1);
		fprintf(stderr, "# lmig dirty did not report its object (got '%s'); stderr: %s\n",
			path, p->err);
		return -1;
	}
	return 0;
}

int send_start(struct proc *p, const char *mem, int port, const char *const extra[])
{
	char to[32];

	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	return send_start_to(p, mem, to, extra);
}

int send_start_to(struct proc *p, const char *mem, const char *to, const char *const extra[])
{
	const char *const head[] = { "send", "--mem", mem, "--to", to, "--json", NULL };
	const char *argv[32];

	if (build_argv(argv, 32, head, extra))
		return -1;
	return proc_spawn(p, (char *const *)argv, NULL);
}

bool one_line(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1;
}

char pid_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

int lmig_start_ready(struct proc *p, const char *const args[], char *line, size_t len)
{
	const char *argv[32];
	int rfd, n = 0;
	struct spawn_opts o = { .ready_fd = &rfd };

	argv[n++] = lmig_path();
	for (; *args && n < 29; args++)
		argv[n++] = *args;
	argv[n++] = "--ready-fd";
	argv[n++] = "3";
	argv[n] = NULL;
	if (proc_spawn(p, (char *const *)argv, &o))
		return -1;
	return ready_line(rfd, line, len, 10);
}

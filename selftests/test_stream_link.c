// SPDX-License-Identifier: GPL-2.0-only
/*
 * What `lmig pipe` and `lmig proxy` hold back from a slow link, against
 * a direct socket over the same link, side by side.
 *
 * QEMU decides when to stop its guest for the switch-over from how fast
 * its own writes complete, and then waits, guest stopped, until the last
 * byte is across.  Whatever a transport accepts from QEMU and keeps in
 * its buffers instead of handing it to the link shows QEMU a faster link
 * than there is, and must still cross the link after QEMU's last write
 * returned.  So the measure here is the lag: from the writer's last
 * write returning to that byte's arrival at the reader, and the rate the
 * writer saw against the rate the reader got.
 *
 * The link is the test's own forwarder on loopback (lib/fwd.c), passing
 * LINK_RATE bytes/s from sender to receiver with LINK_BUF bytes of
 * receive buffer at its entrance; replies pass unshaped.  Each round a
 * writer puts TOTAL bytes through it, once straight into a TCP socket
 * (as QEMU's own tcp: migration does) and once through lmig with one
 * channel: into the stdin pipe of `lmig pipe send`, whose `lmig pipe
 * recv` writes them to a pipe the reader reads (QEMU's exec: migration),
 * or into a unix connection to `lmig proxy send`, whose `lmig proxy recv`
 * connects to the reader (QEMU's unix: migration).  Rounds alternate the
 * order; the medians over ROUNDS are compared.  Every byte is checked
 * against the writer's, and both lmigs must exit 0.
 *
 * The direct socket hides what the kernel lets its send buffer grow to;
 * lmig's pipe, its block being read, what it framed and has not handed
 * to the kernel, and its socket's unsent bytes must together hide no
 * more: the test fails if lmig's median lag exceeds LAG_RATIO times the
 * direct one (an lmig that read its whole stream window ahead, or let
 * its socket buffer what the kernel allows, lags about twice as long).
 * About 13 s a variant on 2 CPUs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/fwd.h"
#include "lib/proc.h"
#include "lib/sock.h"

#define MiB		(1024ULL * 1024)
#define LINK_RATE	(24e6)			/* bytes/s */
#define LINK_BUF	(256 * 1024)
#define TOTAL		(40 * MiB)
#define CHUNK		(64 * 1024)
#define ROUNDS		3
#define LAG_RATIO	1.0

/* ---- the link ------------------------------------------------------------ */

struct link {
	struct fwd f;
	double t0;		/* start of the current busy period */
	uint64_t passed;	/* bytes passed since t0 */
};

static void sleep_until(double t)
{
	double d = t - mono_s();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* Sender to receiver (side 0) at LINK_RATE: each chunk leaves when the link would have carried it. */
static int link_pass(struct fwd *f, struct fwd_pair *c, int s, uint8_t *buf, size_t n)
{
	struct link *l = f->ctx;

	if (s == 0) {
		double now = mono_s();

		/* An idle link saves up no credit. */
		if (!l->t0 || now > l->t0 + l->passed / LINK_RATE) {
			l->t0 = now;
			l->passed = 0;
		}
		l->passed += n;
		sleep_until(l->t0 + l->passed / LINK_RATE);
	}
	return fwd_write(c, s, buf, n);
}

static int link_start(struct link *l, int target_port)
{
	int rb = LINK_BUF;

	memset(l, 0, sizeof(*l));
	l->f.pass = link_pass;
	l->f.ctx = l;
	if (fwd_start(&l->f, target_port))
		return -1;
	/* Accepted connections inherit it: the link's entrance buffers no more. */
	return setsockopt(l->f.lfd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
}

/* ---- the writer and the reader --------------------------------------------- */

static uint64_t gen(uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

/* TOTAL bytes of the sequence gen(0), gen(1)... written to fd in CHUNKs. */
struct writer {
	int fd;
	double t_start, t_last;	/* before the first write, after the last returned */
	int err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t buf[CHUNK / 8], k = 0;

	w->t_start = mono_s();
	for (uint64_t off = 0; off < TOTAL; off += CHUNK) {
		for (size_t i = 0; i < CHUNK / 8; i++)
			buf[i] = gen(k++);
		for (size_t done = 0; done < CHUNK;) {
			ssize_t n = write(w->fd, (uint8_t *)buf + done, CHUNK - done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				w->err = n < 0 ? errno : EIO;
				goto out;
			}
			done += n;
		}
	}
out:
	w->t_last = mono_s();
	close(w->fd);
	return NULL;
}

struct reader {
	int lfd;		/* if >= 0: accept fd from it first */
	int fd;
	double t_last;		/* when the last byte arrived */
	uint64_t got;
	bool same;		/* every byte as written */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static __thread uint8_t buf[CHUNK];
	uint64_t carry[1];
	ssize_t n;

	r->same = true;
	if (r->lfd >= 0) {
		r->fd = sock_accept(r->lfd, 20);
		close(r->lfd);
		if (r->fd < 0)
			return NULL;
	}
	while ((n = read(r->fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		for (ssize_t i = 0; i < n; i++, r->got++) {
			if (r->got % 8 == 0)
				carry[0] = gen(r->got / 8);
			if (buf[i] != ((uint8_t *)carry)[r->got % 8])
				r->same = false;
		}
		if (n > 0)
			r->t_last = mono_s();
	}
	close(r->fd);
	return NULL;
}

struct result {
	double lag;		/* s from the last write returning to the last byte read */
	double seen, got;	/* bytes/s: as the writer saw it, as the reader got it */
};

static void result_of(struct result *res, const struct writer *w, const struct reader *r)
{
	res->lag = r->t_last - w->t_last;
	res->seen = TOTAL / (w->t_last - w->t_start);
	res->got = TOTAL / (r->t_last - w->t_start);
}

/* ---- one run each way --------------------------------------------------------- */

static int run_direct(struct __test_metadata *_metadata, struct result *res)
{
	struct writer w = { 0 };
	struct reader r = { .lfd = -1 };
	pthread_t wt, rt;
	struct link l;
	int port, lfd = sock_listen(&port);

	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, link_start(&l, port));
	w.fd = sock_connect(l.f.port);
	ASSERT_LE(0, w.fd);
	r.fd = sock_accept(lfd, 10);
	ASSERT_LE(0, r.fd);
	close(lfd);
	ASSERT_EQ(0, pthread_create(&rt, NULL, reader_main, &r));
	ASSERT_EQ(0, pthread_create(&wt, NULL, writer_main, &w));
	pthread_join(wt, NULL);
	pthread_join(rt, NULL);
	fwd_stop(&l.f);
	ASSERT_EQ(0, w.err);
	ASSERT_EQ(TOTAL, r.got);
	ASSERT_TRUE(r.same);
	result_of(res, &w, &r);
	return 0;
}

/* An lmig of ours: stdin and stdout given, stderr kept for the log. */
struct child {
	pid_t pid;
	int err_fd;
	char err[2048];
};

/* lmig ARGS with stdin in and stdout out (both closed here), --ready-fd 3 to *ready. */
static int child_start(struct child *c, const char *const args[], int in, int out, int *ready)
{
	const char *argv[16];
	int e[2], r[2] = { -1, -1 }, n = 0;

	argv[n++] = lmig_path();
	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (pipe2(e, O_CLOEXEC) || (ready && pipe2(r, O_CLOEXEC)))
		return -1;
	fflush(stdout);
	fflush(stderr);
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (!c->pid) {
		/* Out of the way first, so no dup2 below overwrites a source. */
		int fi = fcntl(in, F_DUPFD_CLOEXEC, 100), fo = fcntl(out, F_DUPFD_CLOEXEC, 100);
		int fe = fcntl(e[1], F_DUPFD_CLOEXEC, 100);
		int fr = ready ? fcntl(r[1], F_DUPFD_CLOEXEC, 100) : -1;

		if (dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0 ||
		    (ready && dup2(fr, 3) < 0))
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(e[1]);
	close(in);
	close(out);
	c->err_fd = e[0];
	if (ready) {
		close(r[1]);
		*ready = r[0];
	}
	return 0;
}

/* Its exit code once it exited within timeout_s (else it is killed: -1), stderr read. */
static int child_end(struct child *c, double timeout_s)
{
	double end = mono_s() + timeout_s;
	int st = 0, code = -1;
	ssize_t got = 0, n;

	while (waitpid(c->pid, &st, WNOHANG) == 0) {
		if (mono_s() > end) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	if (WIFEXITED(st))
		code = WEXITSTATUS(st);
	while (got < (ssize_t)sizeof(c->err) - 1 &&
	       (n = read(c->err_fd, c->err + got, sizeof(c->err) - 1 - got)) > 0)
		got += n;
	c->err[got] = 0;
	for (char *q = c->err; *q; q++)
		if (*q == '\n')
			*q = ' ';
	close(c->err_fd);
	return code;
}

/* A unix socket path of this process's own. */
static void unix_path(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/lmig-stream-link-%d.sock", (int)getpid());
}

/*
 * Through lmig: `pipe send` from a pipe to `pipe recv` into a pipe, or
 * `proxy send` from a unix connection (as QEMU's unix: migration) to
 * `proxy recv` into a TCP connection to the reader.
 */
static int run_lmig(struct __test_metadata *_metadata, bool proxy, struct result *res)
{
	struct writer w = { 0 };
	struct reader r = { .lfd = -1 };
	struct child tx, rx;
	pthread_t wt, rt;
	struct link l;
	char to[32], dst[48], path[64], line[80];
	int inp[2], outp[2], null, ready, port, rport, tx_rc, rx_rc;

	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, null);
	if (proxy) {
		r.lfd = sock_listen(&rport);
		ASSERT_LE(0, r.lfd);
		snprintf(dst, sizeof(dst), "tcp:127.0.0.1:%d", rport);
		ASSERT_EQ(0, child_start(&rx, (const char *const[]){ "proxy", "recv", "--listen",
					 "127.0.0.1:0", "--to", dst, "--ready-fd", "3", NULL },
					 dup(null), dup(null), &ready));
	} else {
		ASSERT_EQ(0, pipe2(outp, O_CLOEXEC));
		r.fd = outp[0];
		ASSERT_EQ(0, child_start(&rx, (const char *const[]){ "pipe", "recv", "--listen",
					 "127.0.0.1:0", "--ready-fd", "3", NULL }, dup(null),
					 outp[1], &ready));
	}
	ASSERT_EQ(0, ready_line(ready, line, sizeof(line), 10));
	port = atoi(line);
	ASSERT_LT(0, port);
	ASSERT_EQ(0, link_start(&l, port));
	snprintf(to, sizeof(to), "127.0.0.1:%d", l.f.port);
	if (proxy) {
		char lsn[80];

		unix_path(path, sizeof(path));
		snprintf(lsn, sizeof(lsn), "unix:%s", path);
		ASSERT_EQ(0, child_start(&tx, (const char *const[]){ "proxy", "send", "--listen", lsn,
					 "--to", to, "--streams", "1", "--channels", "1",
					 "--compress", "none", "--ready-fd", "3", NULL },
					 dup(null), dup(null), &ready));
		ASSERT_EQ(0, ready_line(ready, line, sizeof(line), 10));
		w.fd = sock_unix_connect(path);
		ASSERT_LE(0, w.fd);
	} else {
		ASSERT_EQ(0, pipe2(inp, O_CLOEXEC));
		ASSERT_EQ(0, child_start(&tx, (const char *const[]){ "pipe", "send", "--to", to,
					 "--channels", "1", "--compress", "none", NULL },
					 inp[0], dup(null), NULL));
		w.fd = inp[1];
	}
	close(null);
	ASSERT_EQ(0, pthread_create(&rt, NULL, reader_main, &r));
	ASSERT_EQ(0, pthread_create(&wt, NULL, writer_main, &w));
	pthread_join(wt, NULL);
	pthread_join(rt, NULL);
	tx_rc = child_end(&tx, 20);
	rx_rc = child_end(&rx, 20);
	fwd_stop(&l.f);
	ASSERT_EQ(0, tx_rc) TH_LOG("send: %s", tx.err);
	ASSERT_EQ(0, rx_rc) TH_LOG("recv: %s", rx.err);
	ASSERT_EQ(0, w.err);
	ASSERT_EQ(TOTAL, r.got);
	ASSERT_TRUE(r.same);
	result_of(res, &w, &r);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_of(const struct result *r, size_t off)
{
	double v[ROUNDS];

	for (int i = 0; i < ROUNDS; i++)
		v[i] = *(const double *)((const char *)&r[i] + off);
	qsort(v, ROUNDS, sizeof(v[0]), cmp_double);
	return v[ROUNDS / 2];
}

FIXTURE(link) {
};

FIXTURE_VARIANT(link) {
	bool proxy;
	const char *name;
};

FIXTURE_VARIANT_ADD(link, pipe) { .proxy = false, .name = "lmig pipe" };
FIXTURE_VARIANT_ADD(link, proxy) { .proxy = true, .name = "lmig proxy" };

FIXTURE_SETUP(link)
{
}

FIXTURE_TEARDOWN(link)
{
	char path[64];

	unix_path(path, sizeof(path));
	unlink(path);
}

TEST_F(link, lag_against_direct_socket)
{
	struct result d[ROUNDS], m[ROUNDS];
	const char *name = variant->name;
	double ld, lm;

	for (int i = 0; i < ROUNDS; i++) {
		if (i % 2) {
			ASSERT_EQ(0, run_lmig(_metadata, variant->proxy, &m[i]));
			ASSERT_EQ(0, run_direct(_metadata, &d[i]));
		} else {
			ASSERT_EQ(0, run_direct(_metadata, &d[i]));
			ASSERT_EQ(0, run_lmig(_metadata, variant->proxy, &m[i]));
		}
		TH_LOG("round %d: lag direct %.0f ms, %s %.0f ms; writer saw %.1f / %.1f MB/s, link gave %.1f / %.1f MB/s",
		       i, d[i].lag * 1e3, name, m[i].lag * 1e3, d[i].seen / 1e6, m[i].seen / 1e6,
		       d[i].got / 1e6, m[i].got / 1e6);
	}
	ld = median_of(d, offsetof(struct result, lag));
	lm = median_of(m, offsetof(struct result, lag));
	TH_LOG("median lag: direct %.0f ms, %s %.0f ms (%.2fx); writer's rate over the link's: direct %.2f, %s %.2f",
	       ld * 1e3, name, lm * 1e3, lm / ld, median_of(d, offsetof(struct result, seen)) /
	       median_of(d, offsetof(struct result, got)), name,
	       median_of(m, offsetof(struct result, seen)) / median_of(m, offsetof(struct result, got)));
	/* The comparison means something only if the link, not the machine, set the pace. */
	ASSERT_GT(ld, 0);
	ASSERT_LE(lm, LAG_RATIO * ld);
}

TEST_HARNESS_MAIN

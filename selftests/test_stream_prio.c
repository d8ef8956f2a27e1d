// SPDX-License-Identifier: GPL-2.0-only
/*
 * Post-copy scheduling in `lmig proxy` (user/stream/stream_sched.c), with
 * the real lmig binaries over loopback and the test's own unix sockets
 * standing in for the two QEMUs: a client writes a stream into `proxy
 * send` as fast as it is taken, and the server behind `proxy recv` reads
 * it slowly (2 MB/s), as a destination QEMU slower than the link does.
 *
 *   requests  the server also writes a short message back every 20 ms
 *             (page requests on the return direction), starting before
 *             the client writes: latency mode, so the stream may run only
 *             512 KiB ahead of what the destination wrote, and what the
 *             client got taken beyond what the server read (the bytes
 *             queued in lmig and its sockets) stays under 2 MiB
 *   quiet     nothing comes back: the stream's whole 16 MiB window is
 *             used, over 8 MiB queued (so the check above can fail)
 *
 * Either way every byte arrives, compared byte for byte at both ends, and
 * both lmigs exit 0 with the counts they report.  About 3 s each.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/sock.h"

#define MiB		(1024ULL * 1024)
#define DATA		(40 * MiB)
#define REQ		16		/* bytes of one message back */
#define WATCH_S		2.0		/* the server reads slowly this long */

struct client {
	int fd;
	const uint8_t *data;
	atomic_ullong taken;		/* bytes the writes returned */
	atomic_bool stop;
	long long back;			/* bytes read back, -1 when they differ */
	const uint8_t *req;
};

static void fill(uint8_t *d, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		d[i] = (uint8_t)(x >> 24);
	}
}

static void *writer_main(void *arg)
{
	struct client *c = arg;
	size_t off = 0;

	while (off < DATA && !atomic_load(&c->stop)) {
		ssize_t k = write(c->fd, c->data + off, DATA - off < 65536 ? DATA - off : 65536);

		if (k <= 0)
			break;
		off += k;
		atomic_store(&c->taken, off);
	}
	shutdown(c->fd, SHUT_WR);
	return NULL;
}

/* The return direction, to its end: every message the same REQ bytes. */
static void *back_main(void *arg)
{
	struct client *c = arg;
	uint8_t buf[4096];
	ssize_t k;

	c->back = 0;
	while ((k = read(c->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < k && c->back >= 0; i++)
			if (buf[i] != c->req[(c->back + i) % REQ])
				c->back = -1 - c->back;
		if (c->back < 0)
			break;
		c->back += k;
	}
	return NULL;
}

FIXTURE(prio) {
	char dir[256], srcsock[300], dstsock[300];
	struct proc tx, rx;
	int lfd, sv;
	struct client cl;
	uint8_t *data;
};

FIXTURE_VARIANT(prio) {
	bool requests;
};

FIXTURE_VARIANT_ADD(prio, requests) { .requests = true };
FIXTURE_VARIANT_ADD(prio, quiet) { .requests = false };

FIXTURE_SETUP(prio)
{
	signal(SIGPIPE, SIG_IGN);
	self->lfd = self->sv = self->cl.fd = -1;
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	snprintf(self->srcsock, sizeof(self->srcsock), "%s/src.sock", self->dir);
	snprintf(self->dstsock, sizeof(self->dstsock), "%s/dst.sock", self->dir);
	self->data = malloc(DATA);
	ASSERT_NE(NULL, self->data);
	fill(self->data, DATA, 7);
}

FIXTURE_TEARDOWN(prio)
{
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	if (self->lfd >= 0)
		close(self->lfd);
	if (self->sv >= 0)
		close(self->sv);
	if (self->cl.fd >= 0)
		close(self->cl.fd);
	free(self->data);
	scratch_remove(self->dir);
}

/* Read what is there, at most max bytes, checked against data; bytes or -1. */
static long long take(int fd, const uint8_t *data, long long got, size_t max, int flags)
{
	static uint8_t buf[1 << 20];
	ssize_t k = recv(fd, buf, max < sizeof(buf) ? max : sizeof(buf), flags);

	if (k < 0)
		return flags ? 0 : -1;
	if (got + k > (long long)DATA || memcmp(buf, data + got, k))
		return -1;
	return k;
}

TEST_F_TIMEOUT(prio, held, 60)
{
	char rxport[32], to[64], dst[320], src[320], line[320];
	const char *rargs[] = { "proxy", "recv", "--listen", "127.0.0.1:0", "--to", dst, "--json",
				NULL };
	const char *sargs[] = { "proxy", "send", "--listen", src, "--to", to, "--channels", "2",
				"--streams", "1", "--json", NULL };
	uint8_t req[REQ];
	pthread_t wt, bt;
	long long got = 0, k, sent_back = 0, held_max = 0;
	double t0, next_req = 0;

	memcpy(req, "page request 00", REQ);
	self->cl.req = req;
	self->cl.data = self->data;
	self->lfd = sock_unix_listen(self->dstsock);
	ASSERT_LE(0, self->lfd);
	snprintf(dst, sizeof(dst), "unix:%s", self->dstsock);
	ASSERT_EQ(0, lmig_start_ready(&self->rx, rargs, rxport, sizeof(rxport)));
	snprintf(to, sizeof(to), "127.0.0.1:%s", rxport);
	snprintf(src, sizeof(src), "unix:%s", self->srcsock);
	ASSERT_EQ(0, lmig_start_ready(&self->tx, sargs, line, sizeof(line))) TH_LOG("%s", self->tx.err_log);
	self->cl.fd = sock_unix_connect(self->srcsock);
	ASSERT_LE(0, self->cl.fd);
	self->sv = sock_accept(self->lfd, 10);
	ASSERT_LE(0, self->sv) TH_LOG("%s %s", self->tx.err_log, self->rx.err_log);
	ASSERT_EQ(0, pthread_create(&bt, NULL, back_main, &self->cl));
	/* Requests first: a stream that ran ahead before would take long to drain. */
	for (int i = 0; variant->requests && i < 10; i++, sent_back += REQ) {
		ASSERT_EQ(0, sock_write_full(self->sv, req, REQ));
		usleep(20000);
	}
	ASSERT_EQ(0, pthread_create(&wt, NULL, writer_main, &self->cl));
	t0 = mono_s();
	while (mono_s() - t0 < WATCH_S) {
		double t = mono_s() - t0;

		k = take(self->sv, self->data, got, 20000, MSG_DONTWAIT);
		ASSERT_LE(0, k) TH_LOG("the stream differs at %lld", got);
		got += k;
		/* The steady state, once the first reads (light, so urgent) went. */
		if (t >= 1.0 && (long long)atomic_load(&self->cl.taken) - got > held_max)
			held_max = (long long)atomic_load(&self->cl.taken) - got;
		if (variant->requests && t >= next_req) {
			ASSERT_EQ(0, sock_write_full(self->sv, req, REQ));
			sent_back += REQ;
			next_req = t + 0.02;
		}
		usleep(10000);
	}
	atomic_store(&self->cl.stop, true);
	/* The rest at full speed, to the end. */
	while ((k = take(self->sv, self->data, got, 1 << 20, 0)) > 0)
		got += k;
	ASSERT_EQ(0, k) TH_LOG("the stream differs at %lld", got);
	shutdown(self->sv, SHUT_WR);
	pthread_join(wt, NULL);
	pthread_join(bt, NULL);
	TH_LOG("%s: %lld bytes, at most %.2f MiB taken beyond what the destination read",
	       variant->requests ? "requests" : "quiet", got, held_max / (double)MiB);
	EXPECT_EQ((long long)atomic_load(&self->cl.taken), got);
	EXPECT_EQ(sent_back, self->cl.back);
	if (variant->requests) {
		EXPECT_GT(2 * (long long)MiB, held_max);
	} else {
		EXPECT_LT(8 * (long long)MiB, held_max);
	}
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 20));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("%s", self->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("%s", self->rx.err_log);
	EXPECT_EQ(got, json_num(self->tx.out, "bytes_in"));
	EXPECT_EQ(sent_back, json_num(self->tx.out, "bytes_returned"));
}

TEST_HARNESS_MAIN

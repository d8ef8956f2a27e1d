// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig proxy` carrying each connection both ways (LMIG_CAP_RETURN,
 * include/lmig/stream.h), with the real lmig binary over loopback and the
 * test's own sockets standing in for the two QEMUs:
 *
 *  - both: clients connect to `proxy send`, a server behind `proxy recv`
 *    accepts; each connection carries its own data forward and other data
 *    back, compared byte for byte at both ends, with each side's half-close
 *    (shutdown SHUT_WR) arriving as an end of data on the other while the
 *    opposite direction still flows:
 *      fwd_first   the client ends first, the server answers after that
 *      ret_first   the server answers and ends before the client sent a
 *                  byte; the client sends only after it read the end
 *      blocked_ret the server writes 24 MiB back at once (more than every
 *                  buffer on the way holds), the client reads
 *                  none of it until its 64 MiB went forward: a return
 *                  direction nobody reads must not hold the forward one
 *    over unix and tcp, 1 and 3 connections, 1 and 2 channels, and with
 *    TLS (a pre-shared key: userspace records both ways); both lmigs exit
 *    0 and report both_ways and the same bytes_returned.
 *  - oneway: `pipe send` into `proxy recv` is one way; a destination that
 *    writes back (QEMU with a return path) fails it at once, both lmigs
 *    exit 1, the receiver with one line naming it.
 *  - liar: a receiver played here (hello, ack granting LMIG_CAP_RETURN)
 *    sends back a frame that lies: out of order, a wrong hash, a wrong
 *    digest, a stream that is not there, a bad sequence number, a length
 *    too large to hold, a frame the ack did not grant.  `proxy send` exits
 *    1 with one line within 2 s, and nothing of a rejected block reaches
 *    the client.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "kselftest_harness.h"

#include <lmig/stream.h>
#include "chan/wire.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/sock.h"

#define MiB		(1024ULL * 1024)
#define MAXC		3

enum order { FWD_FIRST, RET_FIRST, BLOCKED_RET };

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

/* Read until the end of data (0) into buf; bytes read, or -1 (error, too much, 30 s). */
static long long read_to_end(int fd, uint8_t *buf, size_t cap)
{
	size_t have = 0;
	double end = mono_s() + 30;

	while (mono_s() < end) {
		ssize_t r = read(fd, buf + have, cap - have ? cap - have : 1);

		if (r == 0)
			return have;
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0 && (have += r) > cap)
			return -1;
	}
	return -1;
}

static int write_all(int fd, const uint8_t *d, size_t n)
{
	while (n) {
		ssize_t w = write(fd, d, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		d += w;
		n -= w;
	}
	return 0;
}

/* One end of one connection: what it sends, what it must get, what it got. */
struct end {
	enum order order;
	bool server;
	int fd;
	uint8_t *out, *in, *want;
	size_t out_len, want_len;
	long long got;
	bool ok;
	double t_sent;		/* when its last byte was written */
};

static void *writer_main(void *arg)
{
	struct end *e = arg;

	e->ok = !write_all(e->fd, e->out, e->out_len) && !shutdown(e->fd, SHUT_WR);
	e->t_sent = mono_s();
	return NULL;
}

static void *end_main(void *arg)
{
	struct end *e = arg;
	bool wrote = true, first_out;
	pthread_t w;

	/* Who writes first: the client with fwd_first, the server with ret_first. */
	first_out = e->order == FWD_FIRST ? !e->server : e->server;
	if (e->order == BLOCKED_RET && e->server) {
		/* Back at once, in a thread: it blocks until the client reads. */
		if (pthread_create(&w, NULL, writer_main, e))
			return NULL;
		e->got = read_to_end(e->fd, e->in, e->want_len);
		pthread_join(w, NULL);
		wrote = e->ok;
	} else if (first_out || e->order == BLOCKED_RET) {
		writer_main(e);
		wrote = e->ok;
		e->got = read_to_end(e->fd, e->in, e->want_len);
	} else {
		e->got = read_to_end(e->fd, e->in, e->want_len);
		writer_main(e);
		wrote = e->ok;
	}
	e->ok = wrote && e->got == (long long)e->want_len && !memcmp(e->in, e->want, e->want_len);
	close(e->fd);
	e->fd = -1;
	return NULL;
}

FIXTURE(both) {
	char dir[256], srcsock[300], dstsock[300], psk[300];
	struct proc tx, rx;
	int lfd;
	uint8_t *fwd[MAXC], *ret[MAXC];
	struct end cl[MAXC], sv[MAXC];
};

FIXTURE_VARIANT(both) {
	enum order order;
	unsigned int conns;
	const char *channels;
	bool tcp, tls;
	size_t fwd_len, ret_len;
};

FIXTURE_VARIANT_ADD(both, fwd_first_unix_1ch) { .order = FWD_FIRST, .conns = 1, .channels = "1", .fwd_len = 8 * MiB + 77, .ret_len = 3 * MiB + 5 };
FIXTURE_VARIANT_ADD(both, ret_first_unix_3conns_2ch) { .order = RET_FIRST, .conns = 3, .channels = "2", .fwd_len = 2 * MiB + 1, .ret_len = 5 * MiB + 3 };
FIXTURE_VARIANT_ADD(both, fwd_first_tcp_3conns_tls) { .order = FWD_FIRST, .conns = 3, .channels = "2", .tcp = true, .tls = true, .fwd_len = 4 * MiB, .ret_len = 2 * MiB + 9 };
FIXTURE_VARIANT_ADD(both, blocked_ret_tcp) { .order = BLOCKED_RET, .conns = 1, .channels = "2", .tcp = true, .fwd_len = 64 * MiB, .ret_len = 24 * MiB };
FIXTURE_VARIANT_ADD(both, blocked_ret_unix_tls) { .order = BLOCKED_RET, .conns = 1, .channels = "1", .tls = true, .fwd_len = 32 * MiB, .ret_len = 24 * MiB };

FIXTURE_SETUP(both)
{
	signal(SIGPIPE, SIG_IGN);
	self->lfd = -1;
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	snprintf(self->srcsock, sizeof(self->srcsock), "%s/src.sock", self->dir);
	snprintf(self->dstsock, sizeof(self->dstsock), "%s/dst.sock", self->dir);
	snprintf(self->psk, sizeof(self->psk), "%s/keys.psk", self->dir);
	for (unsigned int i = 0; i < MAXC; i++)
		self->cl[i].fd = self->sv[i].fd = -1;
}

FIXTURE_TEARDOWN(both)
{
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	if (self->lfd >= 0)
		close(self->lfd);
	for (unsigned int i = 0; i < MAXC; i++) {
		free(self->fwd[i]);
		free(self->ret[i]);
		free(self->cl[i].in);
		free(self->sv[i].in);
	}
	scratch_remove(self->dir);
}

static int write_psk(const char *path)
{
	uint8_t key[32];
	char line[160];
	int n;

	if (getrandom(key, sizeof(key), 0) != sizeof(key))
		return -1;
	n = snprintf(line, sizeof(line), "lmig:");
	for (int i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - n, "%02x", key[i]);
	line[n++] = '\n';
	return file_write(path, line, n) ? -1 : chmod(path, 0600);
}

TEST_F_TIMEOUT(both, carried, 90)
{
	char rxport[32], to[64], dst[320], src[320], line[320], buf[64];
	const char *tls[] = { "--psk-file", self->psk };
	const char *rargs[16] = { "proxy", "recv", "--listen", "127.0.0.1:0", "--to", dst, "--json" };
	const char *sargs[20] = { "proxy", "send", "--listen", src, "--to", to, "--channels",
				  variant->channels, "--streams", NULL, "--json" };
	pthread_t ct[MAXC], st[MAXC];
	unsigned int n = variant->conns;
	long long back = 0;
	char nstreams[8];
	int port = 0, sport = 0;

	snprintf(nstreams, sizeof(nstreams), "%u", n);
	sargs[9] = nstreams;
	if (variant->tls) {
		ASSERT_EQ(0, write_psk(self->psk));
		rargs[7] = tls[0];
		rargs[8] = tls[1];
		sargs[11] = tls[0];
		sargs[12] = tls[1];
	}
	/* The destination QEMU: our server. */
	if (variant->tcp) {
		self->lfd = sock_listen(&port);
		snprintf(dst, sizeof(dst), "tcp:127.0.0.1:%d", port);
	} else {
		self->lfd = sock_unix_listen(self->dstsock);
		snprintf(dst, sizeof(dst), "unix:%s", self->dstsock);
	}
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, lmig_start_ready(&self->rx, rargs, rxport, sizeof(rxport)));
	snprintf(to, sizeof(to), "127.0.0.1:%s", rxport);
	if (variant->tcp)
		snprintf(src, sizeof(src), "tcp:127.0.0.1:0");
	else
		snprintf(src, sizeof(src), "unix:%s", self->srcsock);
	ASSERT_EQ(0, lmig_start_ready(&self->tx, sargs, line, sizeof(line))) TH_LOG("%s", self->tx.err_log);
	if (variant->tcp)
		sport = atoi(line);

	for (unsigned int i = 0; i < n; i++) {
		self->fwd[i] = malloc(variant->fwd_len);
		self->ret[i] = malloc(variant->ret_len);
		ASSERT_TRUE(self->fwd[i] && self->ret[i]);
		fill(self->fwd[i], variant->fwd_len, 2 * i + 1);
		fill(self->ret[i], variant->ret_len, 2 * i + 2);
		self->cl[i] = (struct end){ .order = variant->order, .out = self->fwd[i],
					    .out_len = variant->fwd_len, .want = self->ret[i],
					    .want_len = variant->ret_len,
					    .in = malloc(variant->ret_len + 1) };
		self->sv[i] = (struct end){ .order = variant->order, .server = true,
					    .out = self->ret[i], .out_len = variant->ret_len,
					    .want = self->fwd[i], .want_len = variant->fwd_len,
					    .in = malloc(variant->fwd_len + 1) };
		/* One at a time, so that client i is server i (streams open in accept order). */
		self->cl[i].fd = variant->tcp ? sock_connect(sport) : sock_unix_connect(self->srcsock);
		ASSERT_LE(0, self->cl[i].fd);
		self->sv[i].fd = sock_accept(self->lfd, 10);
		ASSERT_LE(0, self->sv[i].fd) TH_LOG("%s %s", self->tx.err_log, self->rx.err_log);
	}
	for (unsigned int i = 0; i < n; i++) {
		ASSERT_EQ(0, pthread_create(&st[i], NULL, end_main, &self->sv[i]));
		ASSERT_EQ(0, pthread_create(&ct[i], NULL, end_main, &self->cl[i]));
	}
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(ct[i], NULL);
		pthread_join(st[i], NULL);
		EXPECT_TRUE(self->sv[i].ok) TH_LOG("connection %u forward: %lld of %zu bytes, %s",
						   i, self->sv[i].got, variant->fwd_len,
						   self->sv[i].got == (long long)variant->fwd_len ?
						   "differing" : "short");
		EXPECT_TRUE(self->cl[i].ok) TH_LOG("connection %u back: %lld of %zu bytes, %s", i,
						   self->cl[i].got, variant->ret_len,
						   self->cl[i].got == (long long)variant->ret_len ?
						   "differing" : "short");
		back += variant->ret_len;
	}
	if (variant->order == BLOCKED_RET) {
		/* The forward direction went whole while the return one was held up. */
		TH_LOG("forward done %.3f s before the return's last byte was written",
		       self->sv[0].t_sent - self->cl[0].t_sent);
		EXPECT_LT(self->cl[0].t_sent, self->sv[0].t_sent);
	}
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 20));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("%s", self->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("%s", self->rx.err_log);
	EXPECT_EQ(1, json_bool(self->tx.out, "both_ways"));
	EXPECT_EQ(1, json_bool(self->rx.out, "both_ways"));
	EXPECT_EQ(back, json_num(self->tx.out, "bytes_returned"));
	EXPECT_EQ(back, json_num(self->rx.out, "bytes_returned"));
	EXPECT_EQ((long long)n * variant->fwd_len, json_num(self->tx.out, "bytes_in"));
	EXPECT_EQ(variant->tls, !!strcmp("off", json_str_or(self->tx.out, "tls", buf, sizeof(buf))));
}

/* ---- one way: a destination that writes back ------------------------------ */

FIXTURE(oneway) {
	char dir[256], dstsock[300];
	struct proc tx, rx;
	int lfd, in;
};

FIXTURE_SETUP(oneway)
{
	signal(SIGPIPE, SIG_IGN);
	self->lfd = self->in = -1;
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	snprintf(self->dstsock, sizeof(self->dstsock), "%s/dst.sock", self->dir);
}

FIXTURE_TEARDOWN(oneway)
{
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	if (self->in >= 0)
		close(self->in);
	if (self->lfd >= 0)
		close(self->lfd);
	scratch_remove(self->dir);
}

/*
 * `pipe send` (stdin has no way back) into `proxy recv`: the session is
 * one way, and a destination that writes back, as QEMU with a return
 * path does, fails it at once on both sides, before the stream is whole.
 */
TEST_F_TIMEOUT(oneway, return_path_refused, 30)
{
	char dst[320], rxport[32], to[64];
	const char *rargs[] = { "proxy", "recv", "--listen", "127.0.0.1:0", "--to", dst, "--json",
				NULL };
	const char *argv[] = { lmig_path(), "pipe", "send", "--to", to, "--json", NULL };
	static uint8_t d[1 << 20];
	int p[2], fd, dfd;
	pid_t pid;
	double t;

	self->lfd = sock_unix_listen(self->dstsock);
	ASSERT_LE(0, self->lfd);
	snprintf(dst, sizeof(dst), "unix:%s", self->dstsock);
	ASSERT_EQ(0, lmig_start_ready(&self->rx, rargs, rxport, sizeof(rxport)));
	snprintf(to, sizeof(to), "127.0.0.1:%s", rxport);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	/* pipe send's stdin is our pipe: the child gets its read end as fd 0. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		dup2(p[0], 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	/* Ours to kill in the teardown, with no pipes of its output to close. */
	self->tx.pid = pid;
	self->tx.out_fd = self->tx.err_fd = -1;
	close(p[0]);
	self->in = p[1];
	fill(d, sizeof(d), 9);
	ASSERT_EQ(0, write_all(self->in, d, 4096));
	dfd = sock_accept(self->lfd, 10);
	ASSERT_LE(0, dfd);
	t = mono_s();
	ASSERT_EQ(4, write(dfd, "PONG", 4));
	ASSERT_EQ(0, proc_wait(&self->rx, 5)) TH_LOG("proxy recv is still running");
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_TRUE(one_line(self->rx.err)) TH_LOG("%s", self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->rx.err, "carries one way")) TH_LOG("%s", self->rx.err_log);
	EXPECT_GT(t + 2, self->rx.t_exit);
	/* The source hears it: its write end fails, it exits 1. */
	write_all(self->in, d, sizeof(d));
	close(self->in);
	self->in = -1;
	fd = -1;
	for (double end = mono_s() + 10; mono_s() < end; usleep(20000)) {
		int st;

		if (waitpid(self->tx.pid, &st, WNOHANG) == self->tx.pid) {
			fd = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			self->tx.pid = 0;
			break;
		}
	}
	EXPECT_EQ(1, fd);
	close(dfd);
}

/* ---- a lying receiver ------------------------------------------------------ */

enum rlie {
	RL_OUT_OF_ORDER,	/* RDATA at offset 5, nothing before it */
	RL_BAD_HASH,		/* RDATA whose hash is not its bytes' */
	RL_BAD_DIGEST,		/* a good RDATA, then REND with another digest */
	RL_STREAM,		/* RDATA for stream 7 of 1 */
	RL_SEQ,			/* RDATA numbered 3, the first */
	RL_HUGE,		/* RDATA saying 4 GiB - 1 bytes follow */
	RL_NOT_GRANTED,		/* RDATA though the ack did not grant LMIG_CAP_RETURN */
	RL_AFTER_END,		/* REND, then RDATA */
};

FIXTURE(liar) {
	char dir[256], srcsock[300];
	struct proc tx;
	int lfd, fd, cl;
};

FIXTURE_VARIANT(liar) {
	enum rlie lie;
	const char *word;
};

FIXTURE_VARIANT_ADD(liar, out_of_order) { .lie = RL_OUT_OF_ORDER, .word = "outside what is due" };
FIXTURE_VARIANT_ADD(liar, bad_hash) { .lie = RL_BAD_HASH, .word = "checksum mismatch" };
FIXTURE_VARIANT_ADD(liar, bad_digest) { .lie = RL_BAD_DIGEST, .word = "digest mismatch" };
FIXTURE_VARIANT_ADD(liar, no_such_stream) { .lie = RL_STREAM, .word = "not carried both ways" };
FIXTURE_VARIANT_ADD(liar, bad_seq) { .lie = RL_SEQ, .word = "expected 0" };
FIXTURE_VARIANT_ADD(liar, huge) { .lie = RL_HUGE, .word = "malformed" };
FIXTURE_VARIANT_ADD(liar, not_granted) { .lie = RL_NOT_GRANTED, .word = "corrupted reply" };
FIXTURE_VARIANT_ADD(liar, after_end) { .lie = RL_AFTER_END, .word = "after its end" };

FIXTURE_SETUP(liar)
{
	signal(SIGPIPE, SIG_IGN);
	self->lfd = self->fd = self->cl = -1;
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	snprintf(self->srcsock, sizeof(self->srcsock), "%s/src.sock", self->dir);
}

FIXTURE_TEARDOWN(liar)
{
	proc_kill(&self->tx);
	if (self->cl >= 0)
		close(self->cl);
	if (self->fd >= 0)
		close(self->fd);
	if (self->lfd >= 0)
		close(self->lfd);
	scratch_remove(self->dir);
}

/* A return frame as include/lmig/stream.h has it: valid checksum, lies only in what it says. */
static int rframe(int fd, unsigned int type, uint32_t stream, uint64_t seq, uint64_t off,
		  const void *pay, uint32_t len, uint64_t hash)
{
	struct lmig_sframe h = {
		.magic = htole32(LMIG_SFRAME_MAGIC), .type = htole16(type),
		.stream = htole32(stream), .len = htole32(len), .seq = htole64(seq),
		.offset = htole64(off), .raw_len = htole32(type == LMIG_SF_RDATA ? len : 0),
		.hash = htole64(hash),
	};

	h.checksum = htole64(XXH3_64bits(&h, sizeof(h)));
	if (sock_write_full(fd, &h, sizeof(h)))
		return -1;
	return len && len < 1024 ? sock_write_full(fd, pay, len) : 0;
}

static uint64_t h64(const void *d, size_t n)
{
	return XXH3_64bits(d, n);
}

static int rend(int fd, uint64_t seq, uint64_t off, const void *d, size_t n)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(d, n));
	return rframe(fd, LMIG_SF_REND, 0, seq, off, c.digest, 16, 0);
}

/*
 * `proxy send --channels 1` to a receiver played here: hello, an ack
 * granting the return direction, the source's OPEN of the client's
 * connection, then a lie on channel 0.  The sender must exit 1 with one
 * line, and the client must get none of the rejected bytes.
 */
TEST_F_TIMEOUT(liar, refused, 30)
{
	char to[32], src[320], line[320], got[64];
	const char *args[] = { "proxy", "send", "--listen", src, "--to", to, "--channels", "1",
			       "--timeout", "2", NULL };
	const char good[] = "PONG", bad[] = "forged bytes";
	struct lmig_hello h;
	struct lmig_hello_ack a;
	struct lmig_sframe f;
	uint8_t pay[LMIG_STREAM_BLOCK_MAX];
	int port, fd = -1;
	long long n;
	double t;

	self->lfd = sock_listen(&port);
	ASSERT_LE(0, self->lfd);
	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	snprintf(src, sizeof(src), "unix:%s", self->srcsock);
	/* The sender dials before it says it is ready: answer its hello meanwhile. */
	{
		const char *argv[16];
		struct spawn_opts o = { .ready_fd = &fd };
		int k = 0;

		argv[k++] = lmig_path();
		for (const char *const *p = args; *p; p++)
			argv[k++] = *p;
		argv[k++] = "--ready-fd";
		argv[k++] = "3";
		argv[k] = NULL;
		ASSERT_EQ(0, proc_spawn(&self->tx, (char *const *)argv, &o));
	}
	self->fd = sock_accept(self->lfd, 10);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, sock_read_full(self->fd, &h, sizeof(h), 10));
	wire_ack_build(&a, LMIG_CAP_STREAM | (variant->lie == RL_NOT_GRANTED ? 0 : LMIG_CAP_RETURN),
		       LMIG_ST_OK, NULL);
	ASSERT_EQ(0, sock_write_full(self->fd, &a, sizeof(a)));
	ASSERT_EQ(0, ready_line(fd, line, sizeof(line), 10));
	self->cl = sock_unix_connect(self->srcsock);
	ASSERT_LE(0, self->cl);
	/* The source's frames until the connection's OPEN. */
	do {
		ASSERT_EQ(0, sock_read_full(self->fd, &f, sizeof(f), 10));
		ASSERT_GE(sizeof(pay), le32toh(f.len));
		if (f.len)
			ASSERT_EQ(0, sock_read_full(self->fd, pay, le32toh(f.len), 10));
	} while (le16toh(f.type) != LMIG_SF_OPEN);

	t = mono_s();
	switch (variant->lie) {
	case RL_OUT_OF_ORDER:
		rframe(self->fd, LMIG_SF_RDATA, 0, 0, 5, bad, sizeof(bad), h64(bad, sizeof(bad)));
		break;
	case RL_BAD_HASH:
		rframe(self->fd, LMIG_SF_RDATA, 0, 0, 0, bad, sizeof(bad), h64(good, sizeof(good)));
		break;
	case RL_BAD_DIGEST:
		rframe(self->fd, LMIG_SF_RDATA, 0, 0, 0, good, sizeof(good), h64(good, sizeof(good)));
		rend(self->fd, 1, sizeof(good), bad, sizeof(good));
		break;
	case RL_STREAM:
		rframe(self->fd, LMIG_SF_RDATA, 7, 0, 0, bad, sizeof(bad), h64(bad, sizeof(bad)));
		break;
	case RL_SEQ:
		rframe(self->fd, LMIG_SF_RDATA, 0, 3, 0, bad, sizeof(bad), h64(bad, sizeof(bad)));
		break;
	case RL_HUGE:
		rframe(self->fd, LMIG_SF_RDATA, 0, 0, 0, NULL, UINT32_MAX, 0);
		break;
	case RL_NOT_GRANTED:
		rframe(self->fd, LMIG_SF_RDATA, 0, 0, 0, bad, sizeof(bad), h64(bad, sizeof(bad)));
		break;
	case RL_AFTER_END:
		rend(self->fd, 0, 0, NULL, 0);
		rframe(self->fd, LMIG_SF_RDATA, 0, 1, 0, bad, sizeof(bad), h64(bad, sizeof(bad)));
		break;
	}
	ASSERT_EQ(0, proc_wait(&self->tx, 5)) TH_LOG("the sender is still running");
	EXPECT_TRUE(WIFEXITED(self->tx.status)) TH_LOG("wait status 0x%x (a crash)", self->tx.status);
	EXPECT_EQ(1, proc_exit_code(&self->tx));
	EXPECT_TRUE(one_line(self->tx.err)) TH_LOG("not one line: %s", self->tx.err_log);
	EXPECT_NE(NULL, strstr(self->tx.err, variant->word)) TH_LOG("%s", self->tx.err_log);
	EXPECT_GT(t + 2.5, self->tx.t_exit);
	TH_LOG("failed after %.3f s: %s", self->tx.t_exit - t, self->tx.err_log);
	/* The client: what a good frame carried at most, never the forged bytes. */
	n = read_to_end(self->cl, (uint8_t *)got, sizeof(got) - 1);
	EXPECT_GE((long long)sizeof(good), n);
	if (n > 0)
		EXPECT_EQ(0, memcmp(got, good, n));
}

TEST_HARNESS_MAIN

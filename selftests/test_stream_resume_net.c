// SPDX-License-Identifier: GPL-2.0-only
/*
 * A resume over real TCP connections destroyed with `ss -K` (root): a
 * source carries 48 MiB of known bytes to a destination on loopback
 * through the resume buffer (user/stream/resume_buf.c), the destination
 * acknowledges what it took, and when the connection breaks the source
 * comes back with resume_dial() (backoff, same-session proof, under
 * --resume-timeout) and replays from what the destination says it has.
 * The carrying loop is this test's; the parts that make it survive are
 * lmig's.
 *
 * The resets land at even steps of the destination's progress.
 *
 *   resets_once            one reset mid-stream: the bytes arrive
 *                          identical, one reconnect
 *   resets_repeatedly      eight resets: identical, the resume buffer
 *                          never held more than its size
 *   intruder_refused       a connection with the wrong secret waiting on
 *                          the listener is refused, the session goes on
 *                          and none of its bytes get in
 *   budget_spent           the destination gone: resume_dial() gives up
 *                          after --resume-timeout with one line
 *   proxy_resets           the real `lmig proxy send` and `proxy recv`
 *                          (2 channels) carry 64 MiB of known bytes from a
 *                          client to a destination and 4 MiB back while
 *                          their channels are reset three times (and a
 *                          reconnect for another session, with another
 *                          secret, is tried at the receiver meanwhile):
 *                          both directions arrive identical, both lmigs
 *                          exit 0 and count the same reconnects, the
 *                          stranger is refused and counted
 *   proxy_resets_tls       the same through TLS (a pre-shared key)
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "kselftest_harness.h"

#include "lib/proc.h"

#include "chan/channel.h"
#include "chan/net.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "stream/resume_buf.h"
#include "stream/resume_dial.h"
#include "stream/resume_proof.h"

#define TOTAL		(48ULL << 20)
#define RBUF_CAP	(1U << 20)
#define ACK_EVERY	(128U << 10)

static uint8_t pat(uint64_t off)
{
	return (uint8_t)((off * 2654435761ULL) >> 13);
}

struct dst {
	int lfd;
	const struct resume_sess *ss;
	uint8_t *out;
	uint64_t have;
	unsigned int accepted, refused;
	bool stop_after_first;	/* budget_spent: close the listener at the first break */
	int err;
};

static bool wants(void *arg, uint16_t channel, uint64_t *have)
{
	struct dst *d = arg;

	*have = d->have;
	return channel == 0;
}

static int ack(int fd, uint64_t have)
{
	uint64_t le = htole64(have);

	return net_write_full(fd, &le, sizeof(le), 5000, "ack");
}

/* The destination: take bytes, acknowledge, and take a proven reconnect after a break. */
static void *dst_run(void *arg)
{
	struct dst *d = arg;
	struct chan c = { .fd = net_accept(d->lfd, 5000, NULL, 0) };
	uint64_t acked = 0;

	while (c.fd >= 0 && d->have < TOTAL) {
		ssize_t n = read(c.fd, d->out + d->have,
				 TOTAL - d->have < 65536 ? TOTAL - d->have : 65536);
		uint16_t ch;
		uint64_t ph;

		if (n > 0) {
			__atomic_store_n(&d->have, d->have + n, __ATOMIC_RELAXED);
			if (d->have - acked >= ACK_EVERY || d->have == TOTAL) {
				if (ack(c.fd, d->have) == 0)
					acked = d->have;
			}
			usleep(1000);	/* a slow consumer: the resets land mid-stream */
			continue;
		}
		close(c.fd);
		if (d->stop_after_first) {
			close(d->lfd);
			return NULL;
		}
		for (;;) {	/* a break: wait for the source to come back */
			c = (struct chan){ .fd = net_accept(d->lfd, 10000, NULL, 0) };
			if (c.fd < 0) {
				d->err = 1;
				return NULL;
			}
			if (resume_server(&c, d->ss, wants, d, &ch, &ph, 5000) == RP_OK)
				break;
			d->refused++;
			close(c.fd);
		}
		d->accepted++;
		acked = d->have;
	}
	if (c.fd >= 0) {
		char x;

		shutdown(c.fd, SHUT_WR);
		while (read(c.fd, &x, 1) > 0)
			;
		close(c.fd);
	}
	return NULL;
}

struct src {
	struct resume_dial dial;
	struct resume_buf b;
	unsigned int reconnects, tries;
	size_t held_max;
	long long t_break, t_gave;	/* the last break seen, the give-up: ms */
	volatile int port;		/* the local port of the source's connection */
	/*
	 * With resets to make: the killer's attempts so far, and how many it
	 * makes.  The source puts no byte past the next attempt's point until
	 * the attempt is made, so every reset meets a transfer still going,
	 * however the threads are scheduled.
	 */
	const volatile unsigned int *tried;
	unsigned int resets;
	char err[512];
};

/* How far the source may put: the point of the killer's next attempt. */
static uint64_t src_gate(const struct src *s)
{
	unsigned int t = s->tried ? __atomic_load_n(s->tried, __ATOMIC_RELAXED) : s->resets;

	return t >= s->resets ? TOTAL : (uint64_t)(t + 1) * TOTAL / (s->resets + 2);
}

static int local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	return getsockname(fd, (struct sockaddr *)&a, &len) ? 0 : ntohs(a.sin_port);
}

/* The source: put known bytes in the resume buffer, send them, take acks, resume on a break. */
static int src_run(struct src *s)
{
	struct chan c = { .fd = net_connect(s->dial.to, 5000) };
	uint64_t put = 0, wire = 0, ackbuf = 0;
	size_t ackhave = 0;
	uint8_t chunk[65536];

	if (c.fd < 0 || rbuf_init(&s->b, RBUF_CAP))
		return -1;
	s->port = local_port(c.fd);
	fcntl(c.fd, F_SETFL, O_NONBLOCK);
	while (s->b.base < TOTAL) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };
		struct iovec iov[2];
		bool broken = false;
		ssize_t n;
		int k;

		uint64_t gate = src_gate(s);

		while (put < gate && rbuf_room(&s->b)) {
			size_t m = rbuf_room(&s->b);

			m = m < sizeof(chunk) ? m : sizeof(chunk);
			m = gate - put < m ? gate - put : m;
			for (size_t i = 0; i < m; i++)
				chunk[i] = pat(put + i);
			if (rbuf_put(&s->b, chunk, m) != RBUF_OK)
				return -1;
			put += m;
		}
		if (s->b.end - s->b.base > s->held_max)
			s->held_max = s->b.end - s->b.base;
		if (wire < s->b.end)
			p.events |= POLLOUT;
		/* Held at the gate: look at it again soon. */
		poll(&p, 1, put < TOTAL && put == gate ? 10 : 1000);
		if (p.revents & POLLOUT && rbuf_span(&s->b, wire, iov, &k) == RBUF_OK && k) {
			n = write(c.fd, iov[0].iov_base, iov[0].iov_len);
			if (n > 0)
				wire += n;
			else if (n < 0 && errno != EAGAIN)
				broken = true;
		}
		n = read(c.fd, (uint8_t *)&ackbuf + ackhave, sizeof(ackbuf) - ackhave);
		if (n > 0 && (ackhave += n) == sizeof(ackbuf)) {
			if (rbuf_ack(&s->b, le64toh(ackbuf)) != RBUF_OK)
				return -1;
			ackhave = 0;
		} else if (n == 0 || (n < 0 && errno != EAGAIN)) {
			broken = true;
		}
		if (!broken)
			continue;
		close(c.fd);
		{
			uint64_t ph;
			unsigned int tries;

			s->t_break = now_ms();
			if (resume_dial(&s->dial, 0, &c, &ph, &tries)) {
				s->t_gave = now_ms();
				snprintf(s->err, sizeof(s->err), "%s", lmig_errmsg());
				return -1;
			}
			s->tries += tries;
			if (rbuf_replay(&s->b, ph, iov, &k) != RBUF_OK)
				return -1;
			wire = ph;
			ackhave = 0;
			s->port = local_port(c.fd);
			__atomic_store_n(&s->reconnects, s->reconnects + 1, __ATOMIC_RELAXED);
			fcntl(c.fd, F_SETFL, O_NONBLOCK);
		}
	}
	close(c.fd);
	return 0;
}

struct killer {
	int port;
	volatile int *sport;	/* the source's end, not an intruder's */
	unsigned int n, done;
	volatile unsigned int tried;	/* attempts made, whatever they destroyed */
	const uint64_t *have;	/* the destination's progress ... */
	const unsigned int *reconnects;	/* ... and the source's */
	volatile bool *over;
};

#define LOAD(p)	__atomic_load_n(p, __ATOMIC_RELAXED)

/*
 * `ss -K` the source's connection (the end whose peer port is the
 * listener's) n times, at even steps of the destination's progress, each
 * once the source came back from the one before.
 */
static void *kill_run(void *arg)
{
	struct killer *k = arg;
	char cmd[128];

	for (unsigned int i = 0; i < k->n && !*k->over; i++) {
		char line[512];
		FILE *f;

		while (!*k->over && (LOAD(k->reconnects) < k->done ||
				     LOAD(k->have) < (i + 1) * TOTAL / (k->n + 2)))
			usleep(1000);
		snprintf(cmd, sizeof(cmd),
			 "ss -K -H -t state established dst 127.0.0.1 dport = :%d sport = :%d",
			 k->port, *k->sport);
		/* One line for each socket destroyed: 0 while the source reconnects. */
		if (!*k->over && (f = popen(cmd, "r"))) {
			while (fgets(line, sizeof(line), f))
				k->done++;
			pclose(f);
		}
		__atomic_store_n(&k->tried, i + 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&k->tried, k->n, __ATOMIC_RELAXED);
	return NULL;
}

struct run {
	struct dst d;
	struct src s;
	struct resume_sess ss;
	char to[32];
	int rc;
};

static int setup(struct run *r)
{
	uint8_t id[32];

	memset(r, 0, sizeof(*r));
	if (resume_secret_new(r->ss.secret) || resume_secret_new(id))
		return -1;
	memcpy(r->ss.session, id, sizeof(r->ss.session));
	r->d.lfd = net_listen("127.0.0.1:0", 8);
	if (r->d.lfd < 0)
		return -1;
	snprintf(r->to, sizeof(r->to), "127.0.0.1:%d", net_local_port(r->d.lfd));
	r->d.ss = &r->ss;
	r->d.out = malloc(TOTAL);
	r->s.dial = (struct resume_dial){ .to = r->to, .ss = &r->ss, .channel = 0,
					  .budget_ms = 30000, .step_ms = 5000 };
	return r->d.out ? 0 : -1;
}

static bool identical(const uint8_t *out, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (out[i] != pat(i))
			return false;
	return true;
}

static void *src_thread(void *arg)
{
	struct run *r = arg;

	r->rc = src_run(&r->s);
	return NULL;
}

static void carry(struct __test_metadata *_metadata, unsigned int resets, bool intruder)
{
	struct run r;
	volatile bool over = false;
	struct killer k = { .n = resets, .over = &over };
	pthread_t td, tk, ts;

	if (geteuid())
		SKIP(return, "ss -K needs root");
	ASSERT_EQ(0, setup(&r));
	k.port = net_local_port(r.d.lfd);
	k.sport = &r.s.port;
	k.have = &r.d.have;
	k.reconnects = &r.s.reconnects;
	r.s.tried = &k.tried;
	r.s.resets = resets;
	r.s.tried = &k.tried;
	r.s.resets = resets;
	ASSERT_EQ(0, pthread_create(&td, NULL, dst_run, &r.d));
	ASSERT_EQ(0, pthread_create(&ts, NULL, src_thread, &r));
	if (intruder) {
		struct resume_sess bad = r.ss;
		char why[LMIG_REASON_LEN];
		uint64_t ph;
		int ifd;

		while (!r.d.have)	/* the source's connection is the session's */
			usleep(1000);
		/* Waits on the listener's backlog: it is the first taken at the break. */
		bad.secret[0] ^= 1;
		ifd = net_connect(r.to, 5000);
		ASSERT_GE(ifd, 0);
		ASSERT_EQ(0, pthread_create(&tk, NULL, kill_run, &k));
		EXPECT_EQ(RP_REFUSED, resume_client(&(struct chan){ .fd = ifd }, &bad, 0, 0, &ph,
						    10000, why));
		EXPECT_STREQ("resume refused: wrong session secret", why);
		close(ifd);
	} else {
		ASSERT_EQ(0, pthread_create(&tk, NULL, kill_run, &k));
	}
	pthread_join(ts, NULL);
	over = true;
	pthread_join(tk, NULL);
	pthread_join(td, NULL);
	EXPECT_EQ(0, r.rc) TH_LOG("%s", r.s.err);
	EXPECT_EQ(0, r.d.err);
	EXPECT_EQ(TOTAL, r.d.have);
	EXPECT_TRUE(identical(r.d.out, r.d.have));
	EXPECT_EQ(resets, k.done);
	EXPECT_EQ(k.done, r.s.reconnects);
	EXPECT_EQ(r.d.accepted, r.s.reconnects);
	EXPECT_EQ(intruder ? 1 : 0, r.d.refused);
	EXPECT_LE(r.s.held_max, RBUF_CAP);
	TH_LOG("%u resets, %u reconnects in %u tries, resume buffer at most %zu of %u bytes",
	       k.done, r.s.reconnects, r.s.tries, r.s.held_max, RBUF_CAP);
	rbuf_free(&r.s.b);
	free(r.d.out);
	close(r.d.lfd);
}

TEST(resets_once)
{
	carry(_metadata, 1, false);
}

TEST(resets_repeatedly)
{
	carry(_metadata, 8, false);
}

TEST(intruder_refused)
{
	carry(_metadata, 2, true);
}

#define GAVE_UP	"channel 0 broke and did not come back within 1 s (--resume-timeout): "

TEST(budget_spent)
{
	struct run r;
	volatile bool over = false;
	struct killer k = { .n = 1, .over = &over };
	pthread_t td, tk;

	if (geteuid())
		SKIP(return, "ss -K needs root");
	ASSERT_EQ(0, setup(&r));
	r.d.stop_after_first = true;
	r.s.dial.budget_ms = 1000;
	r.s.dial.step_ms = 500;
	k.port = net_local_port(r.d.lfd);
	k.sport = &r.s.port;
	k.have = &r.d.have;
	k.reconnects = &r.s.reconnects;
	r.s.tried = &k.tried;
	r.s.resets = 1;
	ASSERT_EQ(0, pthread_create(&td, NULL, dst_run, &r.d));
	ASSERT_EQ(0, pthread_create(&tk, NULL, kill_run, &k));
	r.rc = src_run(&r.s);
	over = true;
	pthread_join(tk, NULL);
	pthread_join(td, NULL);
	EXPECT_EQ(1, k.done);
	EXPECT_EQ(-1, r.rc);
	EXPECT_LT(r.d.have, TOTAL);
	EXPECT_GE(r.s.t_gave - r.s.t_break, 1000);
	EXPECT_EQ(0, strncmp(r.s.err, GAVE_UP, strlen(GAVE_UP)));
	EXPECT_EQ(NULL, strchr(r.s.err, '\n'));
	TH_LOG("%s", r.s.err);
	rbuf_free(&r.s.b);
	free(r.d.out);
}

/* ---- the real proxies ---------------------------------------------------- */

#define PX_TOTAL	(64ULL << 20)
#define PX_RET		(4ULL << 20)
#define PX_RESETS	3

/* The destination QEMU's part: one connection, everything read, PX_RET written back. */
struct px_dst {
	int lfd;
	uint8_t *got;
	uint64_t n;		/* bytes read, LOAD()ed by the killer */
	bool same;
	int err;
};

static void *px_dst_back(void *arg)
{
	int fd = *(int *)arg;
	uint8_t b[64 << 10];

	for (uint64_t off = 0; off < PX_RET; off += sizeof(b)) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = pat(off + i) ^ 0x5a;
		if (net_write_full(fd, b, sizeof(b), 20000, "back"))
			return NULL;
		usleep(2000);	/* spread over the run, so resets hit it too */
	}
	shutdown(fd, SHUT_WR);
	return NULL;
}

static void *px_dst_run(void *arg)
{
	struct px_dst *d = arg;
	int fd = net_accept(d->lfd, 20000, NULL, 0);
	pthread_t tb;
	ssize_t k;

	if (fd < 0) {
		d->err = -1;
		return NULL;
	}
	pthread_create(&tb, NULL, px_dst_back, &fd);
	while ((k = recv(fd, d->got + (d->n < PX_TOTAL ? d->n : PX_TOTAL),
			 d->n < PX_TOTAL ? PX_TOTAL - d->n : 1, 0)) > 0)
		__atomic_store_n(&d->n, d->n + k, __ATOMIC_RELAXED);
	pthread_join(tb, NULL);
	close(fd);
	d->same = d->n == PX_TOTAL && identical(d->got, PX_TOTAL);
	return NULL;
}

/* QEMU's source: PX_TOTAL known bytes in, and what comes back read and checked. */
struct px_cli {
	int fd;
	uint64_t back;
	bool back_same;
};

static void *px_cli_read(void *arg)
{
	struct px_cli *c = arg;
	uint8_t b[64 << 10];
	ssize_t k;

	c->back_same = true;
	while ((k = recv(c->fd, b, sizeof(b), 0)) > 0) {
		for (ssize_t i = 0; i < k; i++)
			c->back_same &= b[i] == (pat(c->back + i) ^ 0x5a);
		c->back += k;
	}
	return NULL;
}

/* A number in a --json report (lib/jfield's twin; lmig's own JSON writer is linked here). */
static long long jnum(const char *json, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(json, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static int px_write_psk(const char *path)
{
	char line[80];
	int n = snprintf(line, sizeof(line), "lmig:"), fd;

	for (int i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - n, "%02x", 0x40 + i);
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, line, n) != n)
		return -1;
	return close(fd);
}

static int spawn_ready(struct proc *p, const char *const argv[], char *line, size_t len)
{
	int rfd;
	struct spawn_opts o = { .ready_fd = &rfd };

	if (proc_spawn(p, (char *const *)argv, &o))
		return -1;
	return ready_line(rfd, line, len, 20);
}

static void proxy_run(struct __test_metadata *_metadata, bool tls)
{
	char rport[16], sport[16], to[64], dst_ep[64], psk[64], kill_cmd[160];
	struct px_dst d = { .got = malloc(PX_TOTAL) };
	struct proc pr = { 0 }, ps = { 0 };
	struct px_cli cl = { .fd = -1 };
	struct resume_sess stranger = { { 0x11 }, { 0x22 } };
	unsigned int resets = 0, refused = 0;
	pthread_t tdst, tcli;
	uint8_t buf[256 << 10];

	if (geteuid())
		SKIP(return, "ss -K needs root");
	ASSERT_NE(NULL, d.got);
	d.lfd = net_listen("127.0.0.1:0", 4);
	ASSERT_LE(0, d.lfd);
	snprintf(dst_ep, sizeof(dst_ep), "tcp:127.0.0.1:%d", net_local_port(d.lfd));
	snprintf(psk, sizeof(psk), "/dev/shm/lmig-resume-net-%d.psk", getpid());
	if (tls)
		ASSERT_EQ(0, px_write_psk(psk));
	{
		const char *argv[] = { lmig_path(), "proxy", "recv", "--listen", "127.0.0.1:0",
				       "--to", dst_ep, "--ready-fd", "3", "--json",
				       tls ? "--psk-file" : NULL, psk, NULL };

		ASSERT_EQ(0, spawn_ready(&pr, argv, rport, sizeof(rport)));
	}
	snprintf(to, sizeof(to), "127.0.0.1:%d", atoi(rport));
	{
		const char *argv[] = { lmig_path(), "proxy", "send", "--listen", "tcp:127.0.0.1:0",
				       "--to", to, "--channels", "2", "--streams", "1",
				       "--ready-fd", "3", "--json", tls ? "--psk-file" : NULL, psk,
				       NULL };

		ASSERT_EQ(0, spawn_ready(&ps, argv, sport, sizeof(sport)));
	}
	ASSERT_EQ(0, pthread_create(&tdst, NULL, px_dst_run, &d));
	snprintf(to, sizeof(to), "127.0.0.1:%d", atoi(sport));
	cl.fd = net_connect(to, 5000);
	ASSERT_LE(0, cl.fd);
	ASSERT_EQ(0, pthread_create(&tcli, NULL, px_cli_read, &cl));
	snprintf(kill_cmd, sizeof(kill_cmd),
		 "ss -K -H -t state established dst 127.0.0.1 dport = :%d", atoi(rport));
	for (uint64_t off = 0; off < PX_TOTAL; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pat(off + i);
		ASSERT_EQ(0, net_write_full(cl.fd, buf, sizeof(buf), 30000, "client"));
		/* A reset once the destination has each quarter, counting only those that hit. */
		if (resets < PX_RESETS &&
		    LOAD(&d.n) >= (resets + 1) * PX_TOTAL / (PX_RESETS + 1)) {
			char line[256];
			FILE *f = popen(kill_cmd, "r");
			unsigned int k = 0;

			while (f && fgets(line, sizeof(line), f))
				k++;
			if (f)
				pclose(f);
			resets += k > 0;
		}
		if (resets == 1 && !refused) {
			char why[LMIG_REASON_LEN] = "";
			uint64_t ph;
			char rto[32];
			struct chan c = { .fd = -1 };

			/* Without TLS through a TLS receiver: refused before the proof. */
			snprintf(rto, sizeof(rto), "127.0.0.1:%d", atoi(rport));
			c.fd = net_connect(rto, 5000);
			ASSERT_LE(0, c.fd);
			refused = resume_client(&c, &stranger, 0, 0, &ph, 5000, why) != RP_OK;
			TH_LOG("a stranger's reconnect: %s", why[0] ? why : lmig_errmsg());
			lmig_err_clear();
			close(c.fd);
		}
		usleep(500);	/* about 0.2 s in all: time for the resets to land mid-stream */
	}
	shutdown(cl.fd, SHUT_WR);
	ASSERT_EQ(0, proc_wait(&ps, 60));
	ASSERT_EQ(0, proc_wait(&pr, 60));
	pthread_join(tcli, NULL);
	pthread_join(tdst, NULL);
	close(cl.fd);
	close(d.lfd);
	if (tls)
		unlink(psk);
	TH_LOG("send: %s", ps.out);
	TH_LOG("recv: %s", pr.out);
	EXPECT_EQ(0, proc_exit_code(&ps)) TH_LOG("%s", ps.err_log);
	EXPECT_EQ(0, proc_exit_code(&pr)) TH_LOG("%s", pr.err_log);
	EXPECT_EQ(PX_RESETS, resets);
	EXPECT_TRUE(refused);
	EXPECT_TRUE(d.same) TH_LOG("the destination got %llu bytes", (unsigned long long)d.n);
	EXPECT_EQ(PX_RET, cl.back);
	EXPECT_TRUE(cl.back_same);
	EXPECT_LE(PX_RESETS, jnum(ps.out, "reconnects"));
	EXPECT_EQ(jnum(ps.out, "reconnects"), jnum(pr.out, "reconnects"));
	EXPECT_LE(1, jnum(pr.out, "resume_refused"));
	EXPECT_EQ(PX_RET, jnum(pr.out, "bytes_returned"));
	free(d.got);
}

TEST(proxy_resets)
{
	proxy_run(_metadata, false);
}

TEST(proxy_resets_tls)
{
	proxy_run(_metadata, true);
}

TEST_HARNESS_MAIN

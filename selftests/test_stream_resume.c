// SPDX-License-Identifier: GPL-2.0-only
/*
 * The parts of a resume after a broken channel (LMIG_CAP_RESUME): the
 * resume buffer (user/stream/resume_buf.c), the receiver's and the
 * reconnect's decisions (resume_policy.c), and the same-session proof
 * (resume_proof.c) over real loopback TCP connections.
 *
 *   buf_bounded            the buffer never holds more than its size: a
 *                          put that does not fit is refused whole
 *                          (the sender waits), an ACK makes room
 *   buf_ack_rules          old acks are no news, an ack past what was sent
 *                          and a replay point below what is held are errors
 *   buf_span_changes_nothing  rbuf_span reads, rbuf_replay acknowledges
 *   buf_replay_wraps       a replay across the ring's end gives the bytes
 *                          sent from that point, byte for byte
 *   buf_breaks_stream      64 MiB of known bytes through a 256 KiB buffer
 *                          with a break every few hundred KiB at a random
 *                          point between the last ack and the end: the
 *                          receiver's copy is identical, the buffer bounded
 *   take_cases             resume_take: new, duplicate, partly new, gap
 *   backoff_doubles        50 ms doubling to 2 s, clipped to the budget,
 *                          -1 once it is spent
 *   proof_ok               the right secret: both ends agree, each learns
 *                          what the other took
 *   proof_wrong_secret     refused with a one-line reason; the
 *                          destination never asks for the channel
 *   proof_other_session    a session the destination does not know
 *   proof_channel_not_missing  a channel that is not broken stays with
 *                          its connection
 *   proof_fake_destination a destination that does not know the secret
 *                          is caught by the source
 *   proof_garbage          bytes that are not a proof are refused
 *   proof_hello            a fresh peer's hello is told apart (RP_HELLO)
 *   proof_tls              resume_dial() through a TLS session (PSK): the
 *                          proof runs inside it
 *   proof_tls_wrong_key    a peer with another key never reaches the
 *                          proof; the dial gives up after its budget
 *   secret_message         lmig_ssecret checksums and refuses damage
 *   dial_budget_from_break resume_dial() counts its budget from the break
 *                          (since_ms): a break older than the budget gets
 *                          no attempt, one line naming --resume-timeout
 */
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "kselftest_harness.h"

#include "chan/channel.h"
#include "chan/net.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/xxh.h"
#include "stream/resume_buf.h"
#include "stream/resume_dial.h"
#include "stream/resume_policy.h"
#include "stream/resume_proof.h"

static uint8_t pat(uint64_t off)
{
	return (uint8_t)((off * 2654435761ULL) >> 13);
}

static void fill(uint8_t *p, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

TEST(buf_bounded)
{
	struct resume_buf b;
	uint8_t x[1000];

	fill(x, 0, sizeof(x));
	ASSERT_EQ(RBUF_OK, rbuf_init(&b, 1000));
	EXPECT_EQ(RBUF_OK, rbuf_put(&b, x, 600));
	EXPECT_EQ(400, rbuf_room(&b));
	EXPECT_EQ(RBUF_FULL, rbuf_put(&b, x, 401));
	EXPECT_EQ(600, b.end);		/* nothing of a refused put is kept */
	EXPECT_EQ(RBUF_OK, rbuf_put(&b, x, 400));
	EXPECT_EQ(0, rbuf_room(&b));
	EXPECT_EQ(RBUF_FULL, rbuf_put(&b, x, 1));
	EXPECT_EQ(RBUF_OK, rbuf_ack(&b, 300));
	EXPECT_EQ(300, rbuf_room(&b));
	EXPECT_EQ(RBUF_OK, rbuf_put(&b, x, 300));
	EXPECT_EQ(1300, b.end);
	EXPECT_EQ(1000, b.end - b.base);
	rbuf_free(&b);
}

TEST(buf_ack_rules)
{
	struct resume_buf b;
	struct iovec iov[2];
	uint8_t x[100] = { 0 };
	int n;

	ASSERT_EQ(RBUF_OK, rbuf_init(&b, 100));
	EXPECT_EQ(RBUF_OK, rbuf_put(&b, x, 80));
	EXPECT_EQ(RBUF_AHEAD, rbuf_ack(&b, 81));
	EXPECT_EQ(RBUF_OK, rbuf_ack(&b, 50));
	EXPECT_EQ(RBUF_OK, rbuf_ack(&b, 20));	/* an older ack, overtaken */
	EXPECT_EQ(50, b.base);
	EXPECT_EQ(RBUF_LOST, rbuf_replay(&b, 49, iov, &n));
	EXPECT_EQ(0, n);
	EXPECT_EQ(RBUF_AHEAD, rbuf_replay(&b, 81, iov, &n));
	EXPECT_EQ(RBUF_OK, rbuf_replay(&b, 80, iov, &n));
	EXPECT_EQ(0, n);			/* the peer has it all */
	EXPECT_EQ(80, b.base);			/* ... which acknowledges it */
	rbuf_free(&b);
}

TEST(buf_span_changes_nothing)
{
	struct resume_buf b;
	struct iovec iov[2];
	uint8_t x[64];
	int n;

	fill(x, 0, 64);
	ASSERT_EQ(RBUF_OK, rbuf_init(&b, 64));
	ASSERT_EQ(RBUF_OK, rbuf_put(&b, x, 64));
	ASSERT_EQ(RBUF_OK, rbuf_span(&b, 10, iov, &n));
	ASSERT_EQ(1, n);
	EXPECT_EQ(54, iov[0].iov_len);
	EXPECT_EQ(0, memcmp(iov[0].iov_base, x + 10, 54));
	EXPECT_EQ(0, b.base);
	EXPECT_EQ(RBUF_OK, rbuf_replay(&b, 10, iov, &n));
	EXPECT_EQ(10, b.base);
	EXPECT_EQ(RBUF_AHEAD, rbuf_span(&b, 65, iov, &n));
	rbuf_free(&b);
}

TEST(buf_replay_wraps)
{
	struct resume_buf b;
	struct iovec iov[2];
	uint8_t x[750], got[750];
	int n;

	ASSERT_EQ(RBUF_OK, rbuf_init(&b, 1000));
	fill(x, 0, 700);
	ASSERT_EQ(RBUF_OK, rbuf_put(&b, x, 700));
	ASSERT_EQ(RBUF_OK, rbuf_ack(&b, 600));
	fill(x, 700, 700);
	ASSERT_EQ(RBUF_OK, rbuf_put(&b, x, 700));	/* 700..1399: wraps at 1000 */
	ASSERT_EQ(RBUF_OK, rbuf_replay(&b, 650, iov, &n));
	ASSERT_EQ(2, n);
	EXPECT_EQ(350, iov[0].iov_len);
	EXPECT_EQ(400, iov[1].iov_len);
	memcpy(got, iov[0].iov_base, iov[0].iov_len);
	memcpy(got + iov[0].iov_len, iov[1].iov_base, iov[1].iov_len);
	fill(x, 650, 750);
	EXPECT_EQ(0, memcmp(got, x, 750));
	EXPECT_EQ(pat(1399), ((uint8_t *)iov[1].iov_base)[399]);
	rbuf_free(&b);
}

/*
 * A sender puts chunks of the pattern while there is room; the "wire"
 * delivers a random part of what is unacknowledged; now and then the
 * receiver acks what it has, and now and then the connection breaks: the
 * receiver has some point between the last ack and the end, and the
 * sender replays from there.  The receiver writes what it takes at its
 * offsets, dropping what it has by resume_take().
 */
TEST(buf_breaks_stream)
{
	const uint64_t total = 64ULL << 20;
	const size_t cap = 256 * 1024;
	uint8_t *out = malloc(total), chunk[70000];
	uint64_t sent = 0, have = 0, wire = 0;	/* wire: delivered up to here */
	unsigned int breaks = 0, fulls = 0;
	struct resume_buf b;

	ASSERT_NE(NULL, out);
	srandom(27);
	ASSERT_EQ(RBUF_OK, rbuf_init(&b, cap));
	while (have < total) {
		size_t n = 1 + random() % sizeof(chunk);
		struct iovec iov[2];
		int k;

		if (n > total - sent)
			n = total - sent;
		if (n) {
			fill(chunk, sent, n);
			if (rbuf_put(&b, chunk, n) == RBUF_OK)
				sent += n;
			else
				fulls++;
		}
		ASSERT_LE(b.end - b.base, cap);
		/* The wire carries part of what was sent; the receiver takes it. */
		wire += (sent - wire) ? random() % (sent - wire + 1) : 0;
		ASSERT_EQ(RBUF_OK, rbuf_span(&b, have, iov, &k));
		for (int j = 0; j < k && have < wire; j++) {
			uint64_t off = have;
			uint32_t len = iov[j].iov_len, skip;

			if (off + len > wire)
				len = wire - off;
			ASSERT_EQ(RT_NEW, resume_take(have, off, len, &skip));
			memcpy(out + off, iov[j].iov_base, len);
			have += len;
		}
		if (random() % 8 == 0) {		/* a break: resend from what it has */
			uint64_t back = have - b.base ? random() % (have - b.base + 1) : 0;
			uint32_t skip;

			/* Blocks sent before the break arrive again. */
			if (back) {
				EXPECT_EQ(RT_DUP, resume_take(have, have - back, back, &skip));
				EXPECT_EQ(RT_PART, resume_take(have, have - back, back + 1, &skip));
				EXPECT_EQ(back, skip);
			}
			ASSERT_EQ(RBUF_OK, rbuf_replay(&b, have - back, iov, &k));
			ASSERT_EQ(have - back, b.base);
			have -= back;	/* it dropped a partial frame: a frame boundary */
			wire = have;
			breaks++;
		} else if (random() % 16 == 0) {
			ASSERT_EQ(RBUF_OK, rbuf_ack(&b, have));
		}
	}
	EXPECT_EQ(total, have);
	for (uint64_t o = 0; o < total; o += sizeof(chunk)) {
		size_t n = total - o < sizeof(chunk) ? total - o : sizeof(chunk);

		fill(chunk, o, n);
		ASSERT_EQ(0, memcmp(out + o, chunk, n));
	}
	EXPECT_GT(breaks, 100);
	EXPECT_GT(fulls, 100);		/* the sender did wait for room */
	TH_LOG("%u breaks, %u waits for room", breaks, fulls);
	rbuf_free(&b);
	free(out);
}

TEST(take_cases)
{
	uint32_t skip = 99;

	EXPECT_EQ(RT_NEW, resume_take(1000, 1000, 10, &skip));
	EXPECT_EQ(0, skip);
	EXPECT_EQ(RT_DUP, resume_take(1000, 990, 10, &skip));
	EXPECT_EQ(RT_DUP, resume_take(1000, 0, 1000, &skip));
	EXPECT_EQ(RT_PART, resume_take(1000, 990, 11, &skip));
	EXPECT_EQ(10, skip);
	EXPECT_EQ(RT_GAP, resume_take(1000, 1001, 10, &skip));
	EXPECT_EQ(RT_NEW, resume_take(0, 0, 1, &skip));
}

TEST(backoff_doubles)
{
	static const int want[] = { 50, 100, 200, 400, 800, 1600, 2000, 2000 };

	for (unsigned int i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		EXPECT_EQ(want[i], resume_backoff_ms(i, 0, 30000));
	EXPECT_EQ(2000, resume_backoff_ms(100, 0, 30000));
	EXPECT_EQ(300, resume_backoff_ms(6, 29700, 30000));
	EXPECT_EQ(-1, resume_backoff_ms(0, 30000, 30000));
	EXPECT_EQ(-1, resume_backoff_ms(3, 31000, 30000));
	EXPECT_EQ(1, resume_backoff_ms(0, 29999, 30000));
}

/* ---- the proof, over loopback TCP ---- */

struct srv {
	int lfd;
	struct resume_sess ss;
	bool missing;		/* the channel asked for is broken */
	uint64_t have;		/* what this end took of it */
	int wants_called;
	enum rproof r;
	uint16_t channel;
	uint64_t peer_have;
	bool fake;		/* answer a proof with a mac under another secret */
};

static bool wants(void *arg, uint16_t channel, uint64_t *have)
{
	struct srv *s = arg;

	s->wants_called++;
	*have = s->have;
	return s->missing && channel == 3;
}

static void *serve(void *arg)
{
	struct srv *s = arg;
	struct chan c = { .fd = net_accept(s->lfd, 5000, NULL, 0) };

	if (c.fd < 0) {
		s->r = RP_IO;
	} else if (s->fake) {
		struct lmig_sresume first, m, p;
		uint8_t other[32];

		memset(other, 0x5a, sizeof(other));
		net_read_full(c.fd, &first, sizeof(first), 5000, "resume");
		sresume_build(&m, LMIG_SU_CHALLENGE, 0, first.session, 3, 0);
		memset(m.nonce, 7, sizeof(m.nonce));
		m.checksum = htole64(XXH3_64bits(&m, sizeof(m)));
		net_write_full(c.fd, &m, sizeof(m), 5000, "resume");
		net_read_full(c.fd, &p, sizeof(p), 5000, "resume");
		sresume_build(&m, LMIG_SU_RESUMED, 0, first.session, 3, 0);
		resume_mac(other, false, first.session, 3, m.nonce, p.nonce, m.mac);
		m.checksum = htole64(XXH3_64bits(&m, sizeof(m)));
		net_write_full(c.fd, &m, sizeof(m), 5000, "resume");
		s->r = RP_OK;
	} else {
		s->r = resume_server(&c, &s->ss, wants, s, &s->channel, &s->peer_have, 5000);
	}
	if (c.fd >= 0)
		close(c.fd);
	return NULL;
}

static enum rproof run_proof(struct srv *s, const struct resume_sess *client, uint64_t have,
			     uint64_t *peer_have, char *why)
{
	char addr[32];
	pthread_t t;
	enum rproof r;
	int fd;

	s->lfd = net_listen("127.0.0.1:0", 4);
	if (s->lfd < 0)
		return RP_IO;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", net_local_port(s->lfd));
	pthread_create(&t, NULL, serve, s);
	fd = net_connect(addr, 5000);
	r = fd < 0 ? RP_IO : resume_client(&(struct chan){ .fd = fd }, client, 3, have, peer_have,
					   5000, why);
	pthread_join(t, NULL);
	if (fd >= 0)
		close(fd);
	close(s->lfd);
	return r;
}

static void sess(struct resume_sess *ss, uint8_t id, uint8_t key)
{
	memset(ss->session, id, sizeof(ss->session));
	memset(ss->secret, key, sizeof(ss->secret));
}

TEST(proof_ok)
{
	struct srv s = { .missing = true, .have = 123456789 };
	struct resume_sess c;
	char why[LMIG_REASON_LEN];
	uint64_t ph = 0;

	ASSERT_EQ(0, resume_secret_new(s.ss.secret));
	memset(s.ss.session, 1, 16);
	c = s.ss;
	ASSERT_EQ(RP_OK, run_proof(&s, &c, 987654321, &ph, why));
	EXPECT_EQ(RP_OK, s.r);
	EXPECT_EQ(3, s.channel);
	EXPECT_EQ(123456789, ph);
	EXPECT_EQ(987654321, s.peer_have);
	EXPECT_EQ(1, s.wants_called);
}

TEST(proof_wrong_secret)
{
	struct srv s = { .missing = true };
	struct resume_sess c;
	char why[LMIG_REASON_LEN];
	uint64_t ph = 77;

	sess(&s.ss, 1, 0x11);
	sess(&c, 1, 0x12);
	c.secret[31] = 0x11;
	ASSERT_EQ(RP_REFUSED, run_proof(&s, &c, 0, &ph, why));
	EXPECT_EQ(RP_MAC, s.r);
	EXPECT_STREQ("resume refused: wrong session secret", why);
	EXPECT_EQ(0, s.wants_called);
	EXPECT_EQ(77, ph);
}

TEST(proof_other_session)
{
	struct srv s = { .missing = true };
	struct resume_sess c;
	char why[LMIG_REASON_LEN];
	uint64_t ph;

	sess(&s.ss, 1, 0x11);
	sess(&c, 2, 0x11);
	ASSERT_EQ(RP_REFUSED, run_proof(&s, &c, 0, &ph, why));
	EXPECT_EQ(RP_SESSION, s.r);
	EXPECT_STREQ("resume for another session", why);
	EXPECT_EQ(0, s.wants_called);
}

TEST(proof_channel_not_missing)
{
	struct srv s = { .missing = false };
	struct resume_sess c;
	char why[LMIG_REASON_LEN];
	uint64_t ph;

	sess(&s.ss, 1, 0x11);
	c = s.ss;
	ASSERT_EQ(RP_REFUSED, run_proof(&s, &c, 0, &ph, why));
	EXPECT_EQ(RP_CHANNEL, s.r);
	EXPECT_STREQ("resume refused: channel is not missing", why);
}

TEST(proof_fake_destination)
{
	struct srv s = { .fake = true };
	struct resume_sess c;
	char why[LMIG_REASON_LEN];
	uint64_t ph = 5;

	sess(&c, 1, 0x11);
	ASSERT_EQ(RP_PEER_MAC, run_proof(&s, &c, 0, &ph, why));
	EXPECT_EQ(5, ph);
}

TEST(proof_garbage)
{
	struct srv s = { .missing = true };
	struct lmig_sresume m;
	uint64_t ph;
	int fd, lfd;
	pthread_t t;
	char addr[32];

	sess(&s.ss, 1, 0x11);
	lfd = s.lfd = net_listen("127.0.0.1:0", 4);
	ASSERT_GE(lfd, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", net_local_port(lfd));
	pthread_create(&t, NULL, serve, &s);
	fd = net_connect(addr, 5000);
	ASSERT_GE(fd, 0);
	sresume_build(&m, LMIG_SU_RESUME, 0, s.ss.session, 3, 0);
	m.checksum = htole64(XXH3_64bits(&m, sizeof(m)) ^ 1);	/* damaged */
	ASSERT_EQ(0, net_write_full(fd, &m, sizeof(m), 5000, "t"));
	ASSERT_EQ(0, net_read_full(fd, &m, sizeof(m), 5000, "t"));
	pthread_join(t, NULL);
	EXPECT_EQ(RP_PROTOCOL, s.r);
	EXPECT_TRUE(sresume_ok(&m, LMIG_SU_RESUMED));
	EXPECT_EQ(LMIG_ST_PROTOCOL, le16toh(m.status));
	EXPECT_STREQ("malformed resume request", m.reason);
	EXPECT_EQ(0, s.wants_called);
	(void)ph;
	close(fd);
	close(lfd);
}

/* A fresh peer's hello on the listener of a session under way. */
TEST(proof_hello)
{
	struct srv s = { .missing = true };
	struct lmig_hello h = { .magic = htole32(LMIG_WIRE_MAGIC) };
	int fd, lfd;
	pthread_t t;
	char addr[32];

	sess(&s.ss, 1, 0x11);
	lfd = s.lfd = net_listen("127.0.0.1:0", 4);
	ASSERT_GE(lfd, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", net_local_port(lfd));
	pthread_create(&t, NULL, serve, &s);
	fd = net_connect(addr, 5000);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, net_write_full(fd, &h, sizeof(h), 5000, "t"));
	pthread_join(t, NULL);
	EXPECT_EQ(RP_HELLO, s.r);
	EXPECT_EQ(0, s.wants_called);
	close(fd);
	close(lfd);
}

/* ---- the same through TLS (a pre-shared key), with resume_dial() ---- */

struct tsrv {
	int lfd;
	struct tls_conf conf;
	struct resume_sess ss;
	enum rproof r;
	int tls_rc;
	uint16_t channel;
	uint64_t peer_have;
	bool tls_used;
};

static bool wants_any(void *arg, uint16_t channel, uint64_t *have)
{
	*have = 4242;
	return true;
}

static void *tls_serve(void *arg)
{
	struct tsrv *t = arg;
	struct chan c = { .fd = net_accept(t->lfd, 5000, NULL, 0) };

	t->r = RP_IO;
	if (c.fd < 0)
		return NULL;
	t->tls_rc = tls_handshake(&t->conf, c.fd, 5000, "source", &c.tls);
	if (!t->tls_rc) {
		t->tls_used = c.tls.ssl != NULL;
		t->r = resume_server(&c, &t->ss, wants_any, t, &t->channel, &t->peer_have, 5000);
	}
	tls_chan_free(&c.tls);
	close(c.fd);
	return NULL;
}

static int write_psk(const char *path, uint8_t fill)
{
	char line[80];
	int n = snprintf(line, sizeof(line), "lmig:"), fd;

	for (int i = 0; i < 32; i++)
		n += snprintf(line + n, sizeof(line) - n, "%02x", fill + i);
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, line, n) != n)
		return -1;
	return close(fd);
}

static enum rproof tls_dial(uint8_t srv_key, uint8_t cli_key, struct tsrv *t, char *err,
			    size_t errlen, uint64_t *ph)
{
	char sp[64], cp[64], to[32];
	struct tls_conf cc = { 0 };
	struct resume_dial d;
	struct chan c;
	unsigned int tries;
	pthread_t th;
	int rc;

	snprintf(sp, sizeof(sp), "/dev/shm/r27-resume-%d-s.psk", getpid());
	snprintf(cp, sizeof(cp), "/dev/shm/r27-resume-%d-c.psk", getpid());
	if (write_psk(sp, srv_key) || write_psk(cp, cli_key) ||
	    tls_conf_init(&t->conf, true, NULL, sp, NULL, NULL) ||
	    tls_conf_init(&cc, false, NULL, cp, NULL, "127.0.0.1"))
		return RP_PROTOCOL;
	unlink(sp);
	unlink(cp);
	t->lfd = net_listen("127.0.0.1:0", 4);
	snprintf(to, sizeof(to), "127.0.0.1:%d", net_local_port(t->lfd));
	pthread_create(&th, NULL, tls_serve, t);
	d = (struct resume_dial){ .to = to, .tls = &cc, .ss = &t->ss, .channel = 2,
				  .budget_ms = 1000, .step_ms = 2000 };
	rc = resume_dial(&d, 777, &c, ph, &tries);
	if (rc)
		snprintf(err, errlen, "%s", lmig_errmsg());
	pthread_join(th, NULL);
	close(t->lfd);
	if (!rc) {
		tls_chan_free(&c.tls);
		close(c.fd);
	}
	tls_conf_free(&cc);
	tls_conf_free(&t->conf);
	return rc ? RP_IO : RP_OK;
}

TEST(proof_tls)
{
	struct tsrv t = { 0 };
	char err[512] = "";
	uint64_t ph = 0;

	sess(&t.ss, 4, 0x44);
	ASSERT_EQ(RP_OK, tls_dial(1, 1, &t, err, sizeof(err), &ph)) TH_LOG("%s", err);
	EXPECT_TRUE(t.tls_used);
	EXPECT_EQ(RP_OK, t.r);
	EXPECT_EQ(2, t.channel);
	EXPECT_EQ(777, t.peer_have);
	EXPECT_EQ(4242, ph);
}

TEST(proof_tls_wrong_key)
{
	struct tsrv t = { 0 };
	char err[512] = "";
	uint64_t ph = 0;

	sess(&t.ss, 4, 0x44);
	ASSERT_EQ(RP_IO, tls_dial(1, 2, &t, err, sizeof(err), &ph));
	EXPECT_NE(0, t.tls_rc);
	EXPECT_EQ(RP_IO, t.r);		/* never reached the proof */
	EXPECT_EQ(0, strncmp(err, "channel 2 broke and did not come back within 1 s", 48));
	EXPECT_EQ(NULL, strchr(err, '\n'));
	TH_LOG("%s", err);
}

TEST(secret_message)
{
	struct lmig_ssecret m;
	uint8_t a[32], b[32];

	ASSERT_EQ(0, resume_secret_new(a));
	ASSERT_EQ(0, resume_secret_new(b));
	EXPECT_NE(0, memcmp(a, b, 32));
	ssecret_build(&m, a);
	EXPECT_TRUE(ssecret_ok(&m));
	EXPECT_EQ(0, memcmp(m.secret, a, 32));
	m.secret[5] ^= 1;
	EXPECT_FALSE(ssecret_ok(&m));
	EXPECT_EQ(48, sizeof(struct lmig_ssecret));
	EXPECT_EQ(0, sizeof(struct lmig_sresume) % 8);
}

TEST(dial_budget_from_break)
{
	struct resume_sess ss = { { 1 }, { 2 } };
	struct resume_dial d = {
		.to = "127.0.0.1:9", .ss = &ss, .channel = 3, .budget_ms = 1000, .step_ms = 500,
		.since_ms = now_ms() - 5000,
	};
	unsigned int tries = 99;
	uint64_t ph = 0;
	struct chan c;

	lmig_err_clear();
	ASSERT_EQ(-1, resume_dial(&d, 0, &c, &ph, &tries));
	EXPECT_EQ(0, tries);
	EXPECT_NE(NULL, strstr(lmig_errmsg(),
			       "channel 3 broke and did not come back within 1 s (--resume-timeout)"))
		TH_LOG("%s", lmig_errmsg());
	lmig_err_clear();
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receiver's lz4 and zstd pages under load: many channels sending
 * nothing but compressed pages at once, over several live rounds, so that many decodes are
 * in flight when a round ends and when a bad page arrives (on a machine
 * with more than one CPU the receiver decodes on worker threads: the
 * report's decode_threads says so, and the test checks it).
 *
 * Rounds: round 0 sends every page with content A as lz4, round 1 every
 * page with content B as lz4 (a few as zero runs, punched over A), round
 * 2 every page again: every third back to A as raw pages, some zeroed,
 * the pages zeroed in round 1 back to A as lz4, the rest B as lz4.  Raw
 * and zero pages are written as soon as they are parsed, so a receiver
 * that let round 2 in before round 1's decodes were done and written
 * would store a stale page: the honest stream must come out byte for
 * byte.
 *
 * The lying streams carry one bad lz4 page in the middle of round 1, with
 * the rest of the round around it: one that does not decompress, one
 * whose content does not match its hash.  The receiver must fail with the
 * same status and one-line message as for a page decoded inline, leave
 * nothing committed and no .partial, and not hang.
 *
 * The _one_cpu variants start the receiver on one CPU: it then has no
 * workers and decodes inline, and must do all of the above the same way.
 *
 * The _zstd variants offer LMIG_CAP_ZSTD and send every odd page that
 * lz4 would carry as zstd instead (BAD_PAGE among them), so both decoders
 * run side by side in the workers and inline.  zstd_not_offered sends
 * BAD_PAGE alone as zstd without the cap: a bad descriptor, refused.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "chan/codec.h"
#include "lib/err.h"
#include "image/image_decode.h"
#include "chan/wire.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/sock.h"

#define PAGE		LMIG_PAGE_SIZE
#define NPAGES		4096		/* 16 MiB */
#define NCH		8
#define NROUNDS		3
#define PER_FRAME	128
#define BAD_PAGE	(NPAGES / 2 + 37)	/* in round 1 */
#define DEADLINE_S	20.0

enum lie {
	LIE_NONE,
	LIE_GARBAGE,	/* BAD_PAGE's lz4 bytes do not decompress */
	LIE_HASH,	/* BAD_PAGE decompresses, its hash is not its content's */
	LIE_NO_CAP,	/* BAD_PAGE is zstd, and the hello did not offer LMIG_CAP_ZSTD */
};

struct chan_stream {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	uint64_t seq, pages, frames;
	pthread_t th;
};

FIXTURE(decode) {
	char dir[256], src[320], out[320], partial[340];
	uint8_t *a, *b, *final;		/* NPAGES pages each */
	struct chan_stream ch[NCH];
	struct proc rx;
};

FIXTURE_VARIANT(decode) {
	enum lie lie;
	const char *says;
	uint32_t status;
	bool one_cpu;	/* the receiver may run on one CPU only: it decodes inline */
	bool zstd;	/* odd pages as zstd (LMIG_CAP_ZSTD offered) */
};

FIXTURE_VARIANT_ADD(decode, honest) { .lie = LIE_NONE, .status = LMIG_ST_OK };
FIXTURE_VARIANT_ADD(decode, honest_one_cpu) {
	.lie = LIE_NONE, .status = LMIG_ST_OK, .one_cpu = true,
};
FIXTURE_VARIANT_ADD(decode, garbage_mid_round) {
	.lie = LIE_GARBAGE, .says = "does not decompress", .status = LMIG_ST_CHECKSUM,
};
FIXTURE_VARIANT_ADD(decode, wrong_hash_mid_round) {
	.lie = LIE_HASH, .says = "checksum mismatch", .status = LMIG_ST_CHECKSUM,
};
FIXTURE_VARIANT_ADD(decode, garbage_mid_round_one_cpu) {
	.lie = LIE_GARBAGE, .says = "does not decompress", .status = LMIG_ST_CHECKSUM,
	.one_cpu = true,
};
FIXTURE_VARIANT_ADD(decode, honest_zstd) { .lie = LIE_NONE, .status = LMIG_ST_OK, .zstd = true };
FIXTURE_VARIANT_ADD(decode, honest_zstd_one_cpu) {
	.lie = LIE_NONE, .status = LMIG_ST_OK, .one_cpu = true, .zstd = true,
};
FIXTURE_VARIANT_ADD(decode, garbage_zstd_mid_round) {
	.lie = LIE_GARBAGE, .says = "does not decompress", .status = LMIG_ST_CHECKSUM, .zstd = true,
};
FIXTURE_VARIANT_ADD(decode, wrong_hash_zstd_mid_round) {
	.lie = LIE_HASH, .says = "checksum mismatch", .status = LMIG_ST_CHECKSUM, .zstd = true,
};
FIXTURE_VARIANT_ADD(decode, garbage_zstd_mid_round_one_cpu) {
	.lie = LIE_GARBAGE, .says = "does not decompress", .status = LMIG_ST_CHECKSUM,
	.one_cpu = true, .zstd = true,
};
FIXTURE_VARIANT_ADD(decode, zstd_not_offered) {
	.lie = LIE_NO_CAP, .says = "bad page descriptor", .status = LMIG_ST_PROTOCOL,
};

/* Half random, half a repeat of the random part's start: lz4 keeps about half. */
static void fill_page(uint8_t *p)
{
	if (getrandom(p, PAGE / 2, 0) != PAGE / 2)
		abort();
	for (size_t i = PAGE / 2; i < PAGE; i++)
		p[i] = p[i % 64];
}

/* Pages zeroed in round 1 (and lz4 data again in round 2). */
static bool zeroed(uint64_t i)
{
	return i % 97 == 5;
}

/* Round 2: back to A as raw pages, which are written as they come. */
static bool raw_again(uint64_t i)
{
	return i % 3 == 0 && !zeroed(i);
}

/* Round 2: zeroed (punched) as they come. */
static bool zero_again(uint64_t i)
{
	return i % 7 == 2 && !raw_again(i) && !zeroed(i);
}

FIXTURE_SETUP(decode)
{
	for (int c = 0; c < NCH; c++)
		self->ch[c].fd = -1;
	codec_init();
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 64 << 20));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	self->a = malloc((size_t)NPAGES * PAGE);
	self->b = malloc((size_t)NPAGES * PAGE);
	self->final = malloc((size_t)NPAGES * PAGE);
	ASSERT_TRUE(self->a && self->b && self->final);
	for (uint64_t i = 0; i < NPAGES; i++) {
		fill_page(self->a + i * PAGE);
		fill_page(self->b + i * PAGE);
		if (zero_again(i))
			memset(self->final + i * PAGE, 0, PAGE);
		else
			memcpy(self->final + i * PAGE,
			       (raw_again(i) || zeroed(i) ? self->a : self->b) + i * PAGE, PAGE);
	}
	ASSERT_EQ(0, file_write(self->src, self->final, (size_t)NPAGES * PAGE));
}

FIXTURE_TEARDOWN(decode)
{
	proc_kill(&self->rx);
	for (int c = 0; c < NCH; c++) {
		if (self->ch[c].fd >= 0)
			close(self->ch[c].fd);
		free(self->ch[c].buf);
	}
	free(self->a);
	free(self->b);
	free(self->final);
	scratch_remove(self->dir);
}

static void put(struct chan_stream *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf)
			abort();
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void frame(struct chan_stream *s, uint16_t type, const struct lmig_page_desc *d,
		  unsigned int nd, const void *payload, size_t plen)
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(type),
		.ndesc = htole32(nd), .payload_len = htole32(plen), .seq = htole64(s->seq++),
	};

	f.checksum = htole64(type == LMIG_FRAME_BATCH ? wire_frame_checksum(&f, d, nd) :
				 wire_frame_checksum(&f, NULL, 0));
	put(s, &f, sizeof(f));
	put(s, d, nd * sizeof(*d));
	put(s, payload, plen);
}

/* Pages first..first+n of one round as one BATCH frame, lz4 where they are data. */
/* The variant's: odd compressed pages as zstd. */
static bool zstd_pages;

static void batch(struct chan_stream *s, enum lie lie, unsigned int round, const uint8_t *img,
		  uint64_t first, unsigned int n)
{
	static uint8_t payload[PER_FRAME * PAGE];
	struct lmig_page_desc d[PER_FRAME];
	size_t plen = 0;

	for (unsigned int k = 0; k < n; k++) {
		uint64_t i = first + k;
		const uint8_t *p = img + i * PAGE;
		unsigned int len;
		bool z;

		if ((round == 1 && zeroed(i)) || (round == 2 && zero_again(i))) {
			d[k] = (struct lmig_page_desc){ .index = htole64(i), .enc = htole16(LMIG_ENC_ZERO),
							.len = htole32(1) };
			s->pages++;
			continue;
		}
		if (round == 2 && raw_again(i)) {
			d[k] = (struct lmig_page_desc){ .index = htole64(i), .enc = htole16(LMIG_ENC_RAW),
							.len = htole32(PAGE),
							.hash = htole64(codec_page_hash(p)) };
			memcpy(payload + plen, p, PAGE);
			plen += PAGE;
			s->pages++;
			continue;
		}
		z = (zstd_pages && (i & 1)) || (lie == LIE_NO_CAP && round == 1 && i == BAD_PAGE);
		len = z ? codec_zstd_page(p, payload + plen, -1) : codec_lz4_page(p, payload + plen);
		if (!len)
			abort();	/* fill_page() pages always compress */
		d[k] = (struct lmig_page_desc){ .index = htole64(i),
						.enc = htole16(z ? LMIG_ENC_ZSTD : LMIG_ENC_LZ4),
						.len = htole32(len), .hash = htole64(codec_page_hash(p)) };
		if (round == 1 && i == BAD_PAGE && lie == LIE_GARBAGE)
			memset(payload + plen, 0xff, len);
		if (round == 1 && i == BAD_PAGE && lie == LIE_HASH)
			d[k].hash ^= htole64(1);
		plen += len;
		s->pages++;
	}
	frame(s, LMIG_FRAME_BATCH, d, n, payload, plen);
	s->frames++;
}

static void *writer(void *arg)
{
	struct chan_stream *s = arg;

	/* The receiver stops reading at a bad page: an error here is expected then. */
	sock_write_full(s->fd, s->buf, s->len);
	return NULL;
}

TEST_F(decode, rounds)
{
	struct hello_info hi = { .caps = LMIG_CAPS_V1 | LMIG_CAP_ROUNDS, .nchannels = NCH,
				 .image_size = (uint64_t)NPAGES * PAGE };
	struct timeval tv = { .tv_sec = (long)DEADLINE_S };
	uint64_t hashes[NPAGES], nthreads = 0, nzstd = 0;
	uint8_t digest[16];
	struct lmig_result res;
	unsigned int f = 0, ackd = 0;
	cpu_set_t all, cpus;
	int port, want_threads;

	zstd_pages = variant->zstd;
	if (variant->zstd)
		hi.caps |= LMIG_CAP_ZSTD;
	/* Every channel's whole stream, built before the receiver starts. */
	for (unsigned int round = 0; round < NROUNDS; round++) {
		/* Round 2 sends what the image ends as. */
		const uint8_t *img = round == 0 ? self->a : round == 1 ? self->b : self->final;

		/*
		 * Round 2 from the top down: its first frames, on every
		 * channel, carry the pages whose round-1 frames came last.
		 */
		for (uint64_t k = 0; k < NPAGES / PER_FRAME; k++, f++) {
			uint64_t first = (round == 2 ? NPAGES / PER_FRAME - 1 - k : k) * PER_FRAME;

			batch(&self->ch[f % NCH], variant->lie, round, img, first, PER_FRAME);
		}
		if (round + 1 == NROUNDS)
			break;
		for (int c = 0; c < NCH; c++) {
			struct chan_stream *s = &self->ch[c];
			struct lmig_round rd = { .round = htole64(round), .pages = htole64(s->pages),
						 .frames = htole64(s->frames) };

			frame(s, LMIG_FRAME_ROUND, NULL, 0, &rd, sizeof(rd));
		}
	}
	for (uint64_t i = 0; i < NPAGES; i++)
		hashes[i] = codec_page_hash(self->final + i * PAGE);
	codec_digest(hashes, NPAGES, digest);
	for (int c = 0; c < NCH; c++) {
		struct chan_stream *s = &self->ch[c];
		struct lmig_end e = { .pages = htole64(s->pages), .frames = htole64(s->frames) };

		memcpy(e.digest, digest, sizeof(digest));
		frame(s, LMIG_FRAME_END, NULL, 0, &e, sizeof(e));
	}

	ASSERT_EQ(sizeof(hi.session), getrandom(hi.session, sizeof(hi.session), 0));
	/* The receiver inherits this affinity: one CPU, or what the test has. */
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(all), &all));
	cpus = all;
	if (variant->one_cpu) {
		int c = 0;

		while (!CPU_ISSET(c, &all))
			c++;
		CPU_ZERO(&cpus);
		CPU_SET(c, &cpus);
		ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));
	}
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(all), &all));
	ASSERT_GT(port, 0);
	for (unsigned int c = 0; c < NCH; c++) {
		struct lmig_hello h;
		struct lmig_hello_ack a;
		uint32_t caps;

		hi.channel = c;
		wire_hello_build(&h, &hi);
		self->ch[c].fd = sock_connect(port);
		ASSERT_GE(self->ch[c].fd, 0);
		/* A receiver that stopped reading must not hold a writer forever. */
		setsockopt(self->ch[c].fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		ASSERT_EQ(0, sock_write_full(self->ch[c].fd, &h, sizeof(h)));
		ASSERT_EQ(0, sock_read_full(self->ch[c].fd, &a, sizeof(a), DEADLINE_S));
		lmig_err_clear();
		ASSERT_EQ(0, wire_ack_parse(&a, &caps)) TH_LOG("%s", lmig_errmsg());
		ASSERT_TRUE(caps & LMIG_CAP_ROUNDS);
		ASSERT_EQ(variant->zstd, !!(caps & LMIG_CAP_ZSTD));
	}
	/* All channels at once, as a sender does. */
	for (int c = 0; c < NCH; c++)
		ASSERT_EQ(0, pthread_create(&self->ch[c].th, NULL, writer, &self->ch[c]));
	for (;;) {
		ASSERT_EQ(0, sock_read_full(self->ch[0].fd, &res, sizeof(res), DEADLINE_S))
			TH_LOG("no verdict from the receiver");
		if (le32toh(res.magic) != LMIG_ROUND_ACK_MAGIC)
			break;
		ackd++;
	}
	for (int c = 0; c < NCH; c++)
		pthread_join(self->ch[c].th, NULL);
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S)) TH_LOG("the receiver hangs");
	EXPECT_EQ(LMIG_RESULT_MAGIC, le32toh(res.magic));
	EXPECT_EQ(variant->status, le32toh(res.status)) TH_LOG("verdict: %.96s", res.reason);

	if (variant->lie == LIE_NONE) {
		EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
		EXPECT_EQ(NROUNDS - 1, ackd);
		EXPECT_EQ(1, files_equal(self->src, self->out)) TH_LOG("a stale page was stored");
		EXPECT_FALSE(path_exists(self->partial));
		/* With a CPU to spare the pages went through the decode workers. */
		json_u64_field(self->rx.out, "decode_threads", &nthreads);
		want_threads = CPU_COUNT(&cpus) - 1 > 8 ? 8 : CPU_COUNT(&cpus) - 1;
		EXPECT_EQ(want_threads, (int)nthreads) TH_LOG("recv: %s", self->rx.out);
		TH_LOG("%llu decode threads", (unsigned long long)nthreads);
		/* Odd pages of lz4 rounds: half of rounds 0 and 1, most of round 2's B pages. */
		ASSERT_EQ(0, json_u64_field(self->rx.out, "pages_zstd", &nzstd));
		if (variant->zstd) {
			EXPECT_GT(nzstd, NPAGES) TH_LOG("%llu zstd pages", (unsigned long long)nzstd);
		} else {
			EXPECT_EQ(0, nzstd);
		}
		return;
	}
	TH_LOG("recv: %.*s", (int)strcspn(self->rx.err, "\n"), self->rx.err);
	EXPECT_EQ(1, ackd) TH_LOG("the bad page is in round 1");
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_TRUE(one_line(self->rx.err)) TH_LOG("stderr: '%s'", self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->rx.err, variant->says))
		TH_LOG("stderr does not say '%s': %s", variant->says, self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->rx.err, "page 2085 "))
		TH_LOG("stderr does not name page %d: %s", BAD_PAGE, self->rx.err_log);
	EXPECT_NE(NULL, strstr(res.reason, variant->says)) TH_LOG("verdict: %.96s", res.reason);
	EXPECT_FALSE(path_exists(self->out)) TH_LOG("a lie was committed");
	EXPECT_FALSE(path_exists(self->partial));
}

/*
 * The workers' wake rule, on the decoder itself (user/image/image_decode.c):
 * they write the eventfd when a write run's worth of pages is back or
 * when no job is left to take, not after every batch.  Whatever the count
 * of jobs queued at once (fewer than a run, exactly one, many runs), every
 * job must come back behind a wake: the receiver would otherwise find it
 * only when it next wakes for something else.  Real lz4 pages, one of
 * them garbage, real threads; each decoded page is compared with its
 * source.
 */
#define WAKE_DEPTH	512

static int wake_wait(int efd)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	uint64_t v;

	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	return read(efd, &v, sizeof(v)) == sizeof(v) ? 0 : -1;
}

TEST(decoder_wakes_for_every_job)
{
	static const unsigned int counts[] = { 1, 7, 63, 64, 65, 200, WAKE_DEPTH };
	uint8_t *src = malloc((size_t)WAKE_DEPTH * PAGE);
	uint8_t *lz = malloc((size_t)WAKE_DEPTH * PAGE);
	uint8_t *dst = malloc((size_t)WAKE_DEPTH * PAGE);
	unsigned int lens[WAKE_DEPTH];
	struct decode_job done[64];

	ASSERT_TRUE(src && lz && dst);
	codec_init();
	for (unsigned int i = 0; i < WAKE_DEPTH; i++) {
		fill_page(src + (size_t)i * PAGE);
		lens[i] = codec_lz4_page(src + (size_t)i * PAGE, lz + (size_t)i * PAGE);
		ASSERT_NE(0, lens[i]);
	}
	for (unsigned int nth = 1; nth <= 3; nth++) {
		struct decoder *d = decoder_start(nth, WAKE_DEPTH);

		ASSERT_NE(NULL, d);
		for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
			unsigned int n = counts[k], got = 0, bad = n / 2;

			memset(dst, 0xa5, (size_t)n * PAGE);
			for (unsigned int i = 0; i < n; i++) {
				struct decode_job j = {
					.src = lz + (size_t)i * PAGE, .dst = dst + (size_t)i * PAGE,
					.len = lens[i], .tag = i, .keep = PAGE,
					.want = codec_page_hash(src + (size_t)i * PAGE),
				};

				if (i == bad)
					j.src = src;	/* not lz4: does not decompress */
				decoder_push(d, &j);
			}
			decoder_kick(d);
			while (got < n) {
				unsigned int r;

				ASSERT_EQ(0, wake_wait(decoder_fd(d)))
					TH_LOG("%u threads, %u jobs: %u came back, then no wake",
					       nth, n, got);
				while ((r = decoder_reap(d, done, 64))) {
					for (unsigned int i = 0; i < r; i++) {
						unsigned int t = done[i].tag;

						ASSERT_LT(t, n);
						if (t == bad) {
							EXPECT_EQ(PAGE_BAD_DECODE, done[i].verdict);
							continue;
						}
						EXPECT_EQ(PAGE_OK, done[i].verdict) TH_LOG("job %u", t);
						EXPECT_EQ(0, memcmp(dst + (size_t)t * PAGE,
								    src + (size_t)t * PAGE, PAGE));
					}
					got += r;
				}
			}
			EXPECT_EQ(n, got);
		}
		decoder_stop(d);
	}
	free(src);
	free(lz);
	free(dst);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receiver's verified commit, tested against a sender that speaks
 * the protocol correctly but lies: pages missing, sent twice, outside the
 * image, with wrong hashes or a wrong image digest.  Every frame is well
 * formed and carries a valid checksum, so only the receiver's own
 * accounting stands between a lie and a corrupt image under PATH.
 *
 * The "honest" variant sends the same image truthfully and must succeed:
 * it shows the forged streams fail because of the lie, not the forging.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "chan/codec.h"
#include "lib/err.h"
#include "chan/wire.h"

#include "lib/files.h"
#include "lib/proc.h"
#include "lib/sock.h"

#define PAGE		LMIG_PAGE_SIZE
#define NPAGES		6
#define DEADLINE_S	2.0

enum lie {
	LIE_NONE,
	LIE_MISSING_PAGE,	/* the last page is never sent, and END counts honestly */
	LIE_DUPLICATE_PAGE,	/* page 1 is sent twice, page 2 not at all */
	LIE_OUTSIDE_IMAGE,	/* a page index past the end */
	LIE_PAGE_HASH,		/* page 3's descriptor hash does not match its data */
	LIE_DIGEST,		/* every page right, the END digest wrong */
	LIE_END_COUNT,		/* END claims one page more than was described */
	LIE_SEQ,		/* the first frame is numbered 1 */
	LIE_LZ4_GARBAGE,	/* an "lz4" page that does not decompress */
};

FIXTURE(forged) {
	char dir[256], src[320], out[320], partial[340];
	uint8_t image[NPAGES * PAGE];
	uint64_t hash[NPAGES];
	struct proc rx;
	int fd;
};

FIXTURE_VARIANT(forged) {
	enum lie lie;
	const char *says;	/* what the receiver's message must contain */
	uint32_t status;	/* what its verdict must carry */
};

FIXTURE_VARIANT_ADD(forged, honest) {
	.lie = LIE_NONE, .status = LMIG_ST_OK,
};
FIXTURE_VARIANT_ADD(forged, missing_page) {
	.lie = LIE_MISSING_PAGE, .says = "never arrived", .status = LMIG_ST_INCOMPLETE,
};
FIXTURE_VARIANT_ADD(forged, duplicate_page) {
	.lie = LIE_DUPLICATE_PAGE, .says = "twice", .status = LMIG_ST_INCOMPLETE,
};
FIXTURE_VARIANT_ADD(forged, page_outside_image) {
	.lie = LIE_OUTSIDE_IMAGE, .says = "outside", .status = LMIG_ST_PROTOCOL,
};
FIXTURE_VARIANT_ADD(forged, wrong_page_hash) {
	.lie = LIE_PAGE_HASH, .says = "checksum", .status = LMIG_ST_CHECKSUM,
};
FIXTURE_VARIANT_ADD(forged, wrong_digest) {
	.lie = LIE_DIGEST, .says = "digest", .status = LMIG_ST_DIGEST,
};
FIXTURE_VARIANT_ADD(forged, wrong_end_count) {
	.lie = LIE_END_COUNT, .says = "pages", .status = LMIG_ST_INCOMPLETE,
};
FIXTURE_VARIANT_ADD(forged, frame_out_of_sequence) {
	.lie = LIE_SEQ, .says = "expected", .status = LMIG_ST_PROTOCOL,
};
FIXTURE_VARIANT_ADD(forged, lz4_garbage) {
	.lie = LIE_LZ4_GARBAGE, .says = "decompress", .status = LMIG_ST_CHECKSUM,
};

FIXTURE_SETUP(forged)
{
	self->fd = -1;
	codec_init();
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 1 << 20));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	ASSERT_EQ(sizeof(self->image), getrandom(self->image, sizeof(self->image), 0));
	/* One zero page, so the stream has a zero descriptor too. */
	memset(self->image + 4 * PAGE, 0, PAGE);
	for (int i = 0; i < NPAGES; i++)
		self->hash[i] = codec_page_hash(self->image + i * PAGE);
	/* What the honest variant must produce. */
	ASSERT_EQ(0, file_write(self->src, self->image, sizeof(self->image)));
}

FIXTURE_TEARDOWN(forged)
{
	proc_kill(&self->rx);
	if (self->fd >= 0)
		close(self->fd);
	scratch_remove(self->dir);
}

/* Frame header, descriptors and payload in one buffer; returns its length. */
static size_t batch(uint8_t *buf, uint64_t seq, const struct lmig_page_desc *d,
		    unsigned int nd, const uint8_t *payload, size_t plen)
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(LMIG_FRAME_BATCH),
		.ndesc = htole32(nd), .payload_len = htole32(plen), .seq = htole64(seq),
	};

	f.checksum = htole64(wire_frame_checksum(&f, d, nd));
	memcpy(buf, &f, sizeof(f));
	memcpy(buf + sizeof(f), d, nd * sizeof(*d));
	memcpy(buf + sizeof(f) + nd * sizeof(*d), payload, plen);
	return sizeof(f) + nd * sizeof(*d) + plen;
}

static size_t end_frame(uint8_t *buf, uint64_t seq, uint64_t pages, uint64_t frames,
			const uint8_t digest[16])
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(LMIG_FRAME_END),
		.payload_len = htole32(sizeof(struct lmig_end)), .seq = htole64(seq),
	};
	struct lmig_end e = { .pages = htole64(pages), .frames = htole64(frames) };

	f.checksum = htole64(wire_frame_checksum(&f, NULL, 0));
	memcpy(e.digest, digest, 16);
	memcpy(buf, &f, sizeof(f));
	memcpy(buf + sizeof(f), &e, sizeof(e));
	return sizeof(f) + sizeof(e);
}

static struct lmig_page_desc raw(uint64_t index, uint64_t hash)
{
	return (struct lmig_page_desc){ .index = htole64(index), .enc = htole16(LMIG_ENC_RAW),
					.len = htole32(PAGE), .hash = htole64(hash) };
}

/*
 * The whole stream of one channel: a BATCH frame with every page (page 4
 * as a zero descriptor), then END, both bent by the variant's lie.
 */
static size_t forge(FIXTURE_DATA(forged) *self, enum lie lie, uint8_t *buf)
{
	static uint8_t payload[NPAGES * PAGE];
	struct lmig_page_desc d[NPAGES + 1];
	uint8_t digest[16];
	unsigned int nd = 0;
	uint64_t described = 0;
	size_t plen = 0, len;

	for (uint64_t i = 0; i < NPAGES; i++) {
		uint64_t idx = i;

		if (lie == LIE_MISSING_PAGE && i == NPAGES - 1)
			break;
		if (lie == LIE_DUPLICATE_PAGE && i == 2)
			idx = 1;
		if (lie == LIE_OUTSIDE_IMAGE && i == NPAGES - 1)
			idx = NPAGES;
		described++;
		if (i == 4) {
			d[nd++] = (struct lmig_page_desc){ .index = htole64(idx),
							   .enc = htole16(LMIG_ENC_ZERO),
							   .len = htole32(1) };
			continue;
		}
		if (lie == LIE_LZ4_GARBAGE && i == 2) {
			memset(payload + plen, 0xff, 100);
			d[nd] = raw(idx, self->hash[i]);
			d[nd].enc = htole16(LMIG_ENC_LZ4);
			d[nd++].len = htole32(100);
			plen += 100;
			continue;
		}
		d[nd++] = raw(idx, self->hash[i] ^ (lie == LIE_PAGE_HASH && i == 3));
		memcpy(payload + plen, self->image + i * PAGE, PAGE);
		plen += PAGE;
	}
	len = batch(buf, lie == LIE_SEQ, d, nd, payload, plen);
	codec_digest(self->hash, NPAGES, digest);
	digest[7] ^= lie == LIE_DIGEST;
	len += end_frame(buf + len, 1, described + (lie == LIE_END_COUNT), 1, digest);
	return len;
}

TEST_F(forged, commit)
{
	static uint8_t stream[2 * NPAGES * PAGE];
	struct hello_info hi = { .caps = LMIG_CAPS_V1, .nchannels = 1,
				 .image_size = sizeof(self->image) };
	struct lmig_hello h;
	struct lmig_hello_ack a;
	struct lmig_result res;
	size_t len;
	double t0;
	int port;

	ASSERT_EQ(sizeof(hi.session), getrandom(hi.session, sizeof(hi.session), 0));
	wire_hello_build(&h, &hi);
	len = forge(self, variant->lie, stream);

	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	self->fd = sock_connect(port);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, sock_write_full(self->fd, &h, sizeof(h)));
	ASSERT_EQ(0, sock_read_full(self->fd, &a, sizeof(a), DEADLINE_S));
	lmig_err_clear();
	ASSERT_EQ(0, wire_ack_parse(&a, &hi.caps)) TH_LOG("%s", lmig_errmsg());
	/* The receiver may stop reading at the lie; the verdict comes anyway. */
	sock_write_full(self->fd, stream, len);
	t0 = mono_s();
	ASSERT_EQ(0, sock_read_full(self->fd, &res, sizeof(res), DEADLINE_S))
		TH_LOG("no verdict from the receiver");
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S));
	EXPECT_EQ(le64toh(res.checksum),
		  wire_checksum(&res, sizeof(res), offsetof(struct lmig_result, checksum)));
	EXPECT_EQ(LMIG_RESULT_MAGIC, le32toh(res.magic));
	EXPECT_EQ(variant->status, le32toh(res.status)) TH_LOG("verdict: %.96s", res.reason);

	if (variant->lie == LIE_NONE) {
		EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
		EXPECT_EQ(NPAGES, le64toh(res.pages));
		EXPECT_EQ(1, files_equal(self->src, self->out));
		EXPECT_FALSE(path_exists(self->partial));
		return;
	}
	TH_LOG("recv: %.*s", (int)strcspn(self->rx.err, "\n"), self->rx.err);
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_LE(self->rx.t_exit - t0, DEADLINE_S);
	EXPECT_TRUE(one_line(self->rx.err)) TH_LOG("stderr: '%s'", self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->rx.err, variant->says))
		TH_LOG("stderr does not say '%s': %s", variant->says, self->rx.err_log);
	EXPECT_NE(NULL, strstr(res.reason, variant->says)) TH_LOG("verdict: %.96s", res.reason);
	EXPECT_FALSE(path_exists(self->out)) TH_LOG("a lie was committed");
	EXPECT_FALSE(path_exists(self->partial));
}

/*
 * Live streams (LMIG_CAP_ROUNDS): the same image, sent in two rounds on
 * two channels.  Round 0 carries every page, page 1 with an older
 * content, on channel 1 (pages 0-2) and channel 0 (pages 3-5); round 1
 * carries the final page 1 on channel 0.  Channel 0's whole stream is
 * written first and channel 1's only later, so a receiver without the
 * round barrier would apply the final page 1 before the stale one.
 */
enum rlie {
	RLIE_NONE,
	RLIE_TWICE_IN_ROUND,	/* round 1 sends page 1 twice */
	RLIE_ROUND_NUMBER,	/* channel 0 ends "round 5" first */
	RLIE_ROUND_COUNT,	/* channel 0's ROUND frame miscounts its pages */
	RLIE_STALE_DIGEST,	/* END digest over the round-0 content */
	RLIE_NO_CAP,		/* ROUND frames without negotiating them */
};

FIXTURE(rounds) {
	char dir[256], src[320], out[320], partial[340];
	uint8_t image[NPAGES * PAGE], old1[PAGE];
	uint64_t hash[NPAGES];
	struct proc rx;
	int fd[2];
};

FIXTURE_VARIANT(rounds) {
	enum rlie lie;
	const char *says;
	uint32_t status;
};

FIXTURE_VARIANT_ADD(rounds, honest) { .lie = RLIE_NONE, .status = LMIG_ST_OK };
FIXTURE_VARIANT_ADD(rounds, twice_in_one_round) {
	.lie = RLIE_TWICE_IN_ROUND, .says = "twice in one round", .status = LMIG_ST_INCOMPLETE,
};
FIXTURE_VARIANT_ADD(rounds, wrong_round_number) {
	.lie = RLIE_ROUND_NUMBER, .says = "end of round 5", .status = LMIG_ST_PROTOCOL,
};
FIXTURE_VARIANT_ADD(rounds, wrong_round_count) {
	.lie = RLIE_ROUND_COUNT, .says = "round 0: sender sent", .status = LMIG_ST_INCOMPLETE,
};
FIXTURE_VARIANT_ADD(rounds, stale_digest) {
	.lie = RLIE_STALE_DIGEST, .says = "digest", .status = LMIG_ST_DIGEST,
};
FIXTURE_VARIANT_ADD(rounds, rounds_not_negotiated) {
	.lie = RLIE_NO_CAP, .says = "malformed frame", .status = LMIG_ST_PROTOCOL,
};

FIXTURE_SETUP(rounds)
{
	self->fd[0] = self->fd[1] = -1;
	codec_init();
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 1 << 20));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	ASSERT_EQ(sizeof(self->image), getrandom(self->image, sizeof(self->image), 0));
	ASSERT_EQ(sizeof(self->old1), getrandom(self->old1, sizeof(self->old1), 0));
	for (int i = 0; i < NPAGES; i++)
		self->hash[i] = codec_page_hash(self->image + i * PAGE);
	ASSERT_EQ(0, file_write(self->src, self->image, sizeof(self->image)));
}

FIXTURE_TEARDOWN(rounds)
{
	proc_kill(&self->rx);
	for (int i = 0; i < 2; i++)
		if (self->fd[i] >= 0)
			close(self->fd[i]);
	scratch_remove(self->dir);
}

static size_t round_frame(uint8_t *buf, uint64_t seq, uint64_t round, uint64_t pages,
			  uint64_t frames)
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(LMIG_FRAME_ROUND),
		.payload_len = htole32(sizeof(struct lmig_round)), .seq = htole64(seq),
	};
	struct lmig_round r = { .round = htole64(round), .pages = htole64(pages),
				.frames = htole64(frames) };

	f.checksum = htole64(wire_frame_checksum(&f, NULL, 0));
	memcpy(buf, &f, sizeof(f));
	memcpy(buf + sizeof(f), &r, sizeof(r));
	return sizeof(f) + sizeof(r);
}

/* A BATCH frame of raw pages idx[0..n) whose data comes from data[i]. */
static size_t raw_batch(uint8_t *buf, uint64_t seq, const uint64_t *idx,
			const uint8_t *const *data, unsigned int n)
{
	static uint8_t payload[NPAGES * PAGE];
	struct lmig_page_desc d[NPAGES];

	for (unsigned int i = 0; i < n; i++) {
		d[i] = raw(idx[i], codec_page_hash(data[i]));
		memcpy(payload + (size_t)i * PAGE, data[i], PAGE);
	}
	return batch(buf, seq, d, n, payload, (size_t)n * PAGE);
}

TEST_F(rounds, commit)
{
	static uint8_t s0[4 * NPAGES * PAGE], s1[4 * NPAGES * PAGE];
	enum rlie lie = variant->lie;
	struct hello_info hi = { .caps = LMIG_CAPS_V1 | (lie == RLIE_NO_CAP ? 0 : LMIG_CAP_ROUNDS),
				 .nchannels = 2, .image_size = sizeof(self->image) };
	const uint8_t *img = self->image;
	uint64_t i0[] = { 3, 4, 5 }, i1[] = { 0, 1, 2 }, again[] = { 1, 1 };
	const uint8_t *d0[] = { img + 3 * PAGE, img + 4 * PAGE, img + 5 * PAGE };
	const uint8_t *d1[] = { img, self->old1, img + 2 * PAGE };
	const uint8_t *dn[] = { img + PAGE, img + PAGE };
	uint64_t stale[NPAGES];
	uint8_t digest[16];
	struct lmig_result res;
	size_t l0 = 0, l1 = 0;
	int port;

	/* Channel 0: pages 3-5, ROUND(0), the final page 1, END. */
	l0 += raw_batch(s0 + l0, 0, i0, d0, 3);
	l0 += round_frame(s0 + l0, 1, lie == RLIE_ROUND_NUMBER ? 5 : 0,
			  3 + (lie == RLIE_ROUND_COUNT), 1);
	l0 += raw_batch(s0 + l0, 2, again, dn, lie == RLIE_TWICE_IN_ROUND ? 2 : 1);
	memcpy(stale, self->hash, sizeof(stale));
	stale[1] = codec_page_hash(self->old1);
	codec_digest(lie == RLIE_STALE_DIGEST ? stale : self->hash, NPAGES, digest);
	l0 += end_frame(s0 + l0, 3, lie == RLIE_TWICE_IN_ROUND ? 5 : 4, 2, digest);
	/* Channel 1: pages 0-2 with the old page 1, ROUND(0), END. */
	l1 += raw_batch(s1 + l1, 0, i1, d1, 3);
	l1 += round_frame(s1 + l1, 1, 0, 3, 1);
	l1 += end_frame(s1 + l1, 2, 3, 1, digest);

	ASSERT_EQ(sizeof(hi.session), getrandom(hi.session, sizeof(hi.session), 0));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	for (unsigned int c = 0; c < 2; c++) {
		struct lmig_hello h;
		struct lmig_hello_ack a;
		uint32_t caps;

		hi.channel = c;
		wire_hello_build(&h, &hi);
		self->fd[c] = sock_connect(port);
		ASSERT_GE(self->fd[c], 0);
		ASSERT_EQ(0, sock_write_full(self->fd[c], &h, sizeof(h)));
		ASSERT_EQ(0, sock_read_full(self->fd[c], &a, sizeof(a), DEADLINE_S));
		lmig_err_clear();
		ASSERT_EQ(0, wire_ack_parse(&a, &caps)) TH_LOG("%s", lmig_errmsg());
		if (lie != RLIE_NO_CAP)
			ASSERT_TRUE(caps & LMIG_CAP_ROUNDS);
	}
	/* The receiver may stop reading at the lie; the verdict comes anyway. */
	sock_write_full(self->fd[0], s0, l0);
	usleep(200 * 1000);
	sock_write_full(self->fd[1], s1, l1);
	ASSERT_EQ(0, sock_read_full(self->fd[0], &res, sizeof(res), DEADLINE_S))
		TH_LOG("no verdict from the receiver");
	if (le32toh(res.magic) == LMIG_ROUND_ACK_MAGIC) {
		/* Round 0 applied: only an honest-so-far stream gets that far. */
		EXPECT_EQ(0, le64toh(res.pages));
		ASSERT_EQ(0, sock_read_full(self->fd[0], &res, sizeof(res), DEADLINE_S));
	}
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S));
	EXPECT_EQ(LMIG_RESULT_MAGIC, le32toh(res.magic));
	EXPECT_EQ(variant->status, le32toh(res.status)) TH_LOG("verdict: %.96s", res.reason);
	if (lie == RLIE_NONE) {
		EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
		EXPECT_EQ(1, files_equal(self->src, self->out)) TH_LOG("the stale page 1 won");
		EXPECT_FALSE(path_exists(self->partial));
		return;
	}
	TH_LOG("recv: %.*s", (int)strcspn(self->rx.err, "\n"), self->rx.err);
	EXPECT_EQ(1, proc_exit_code(&self->rx));
	EXPECT_TRUE(one_line(self->rx.err)) TH_LOG("stderr: '%s'", self->rx.err_log);
	EXPECT_NE(NULL, strstr(self->rx.err, variant->says))
		TH_LOG("stderr does not say '%s': %s", variant->says, self->rx.err_log);
	EXPECT_FALSE(path_exists(self->out)) TH_LOG("a lie was committed");
	EXPECT_FALSE(path_exists(self->partial));
}

TEST_HARNESS_MAIN

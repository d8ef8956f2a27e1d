// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/chan/wire.c: the handshake, commit and frame structures
 * of include/lmig/wire.h, as built and checked by both engines.
 */
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "kselftest_harness.h"

#include "lib/err.h"
#include "chan/wire.h"

#define CSUM(p, type)	wire_checksum(p, sizeof(type), offsetof(type, checksum))

static void sample_info(struct hello_info *hi)
{
	memset(hi, 0, sizeof(*hi));
	hi->caps = LMIG_CAPS_V1;
	for (int i = 0; i < 16; i++)
		hi->session[i] = 0xa0 + i;
	hi->channel = 2;
	hi->nchannels = 5;
	hi->image_size = 0x123456789ULL;	/* more than 32 bits, not a page multiple */
}

/* Re-seal a hello after a test edits a field, so only that field is wrong. */
static void reseal(struct lmig_hello *h)
{
	h->checksum = htole64(CSUM(h, struct lmig_hello));
}

static int parse(struct lmig_hello *h, struct hello_info *out, uint32_t *status)
{
	lmig_err_clear();
	return wire_hello_parse(h, out, status);
}

TEST(hello_round_trip)
{
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status = 99;

	sample_info(&in);
	wire_hello_build(&h, &in);
	memset(&out, 0x55, sizeof(out));
	ASSERT_EQ(0, parse(&h, &out, &status));
	EXPECT_EQ(LMIG_ST_OK, status);
	EXPECT_EQ(in.caps, out.caps);
	EXPECT_EQ(0, memcmp(in.session, out.session, sizeof(in.session)));
	EXPECT_EQ(in.channel, out.channel);
	EXPECT_EQ(in.nchannels, out.nchannels);
	EXPECT_EQ(in.image_size, out.image_size);
}

/* The bytes on the wire, as include/lmig/wire.h documents them. */
TEST(hello_wire_layout)
{
	struct hello_info in;
	struct lmig_hello h, z;
	uint8_t *b = (uint8_t *)&h;

	sample_info(&in);
	wire_hello_build(&h, &in);
	ASSERT_EQ(72, sizeof(h));
	EXPECT_EQ(0, memcmp(b, "LMIG", 4));
	EXPECT_EQ(1, b[4]);	/* version, le16 */
	EXPECT_EQ(0, b[5]);
	EXPECT_EQ(72, b[6]);	/* length, le16 */
	EXPECT_EQ(LMIG_PAGE_SHIFT, b[offsetof(struct lmig_hello, page_shift)]);
	EXPECT_EQ(0x89, b[offsetof(struct lmig_hello, image_size)]);	/* little-endian */
	EXPECT_EQ(0x01, b[offsetof(struct lmig_hello, image_size) + 4]);
	/* XXH3-64, seed 0, over the structure with its checksum zeroed. */
	z = h;
	z.checksum = 0;
	EXPECT_EQ(XXH3_64bits(&z, sizeof(z)), le64toh(h.checksum));
}

TEST(hello_wrong_magic)
{
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status;

	sample_info(&in);
	wire_hello_build(&h, &in);
	h.magic = htole32(0x50545448);	/* "HTTP": someone else's protocol */
	reseal(&h);
	ASSERT_EQ(-1, parse(&h, &out, &status));
	EXPECT_EQ(LMIG_ST_PROTOCOL, status);
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "magic"));
}

TEST(hello_wrong_version)
{
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status;

	sample_info(&in);
	wire_hello_build(&h, &in);
	h.version = htole16(LMIG_WIRE_VERSION + 1);
	reseal(&h);
	ASSERT_EQ(-1, parse(&h, &out, &status));
	EXPECT_EQ(LMIG_ST_VERSION, status);
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "version"));
}

TEST(hello_wrong_length)
{
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status;

	sample_info(&in);
	wire_hello_build(&h, &in);
	h.length = htole16(sizeof(h) + 8);
	reseal(&h);
	ASSERT_EQ(-1, parse(&h, &out, &status));
	EXPECT_EQ(LMIG_ST_PROTOCOL, status);
}

/*
 * Every single flipped byte after magic, version and length must be caught
 * by the checksum (those three are checked, and named, before it).
 */
TEST(hello_flipped_byte)
{
	struct hello_info in, out;
	struct lmig_hello h, bad;
	uint32_t status;

	sample_info(&in);
	wire_hello_build(&h, &in);
	for (size_t i = offsetof(struct lmig_hello, caps); i < sizeof(h); i++) {
		bad = h;
		((uint8_t *)&bad)[i] ^= 0x01;
		ASSERT_EQ(-1, parse(&bad, &out, &status))
			TH_LOG("flip at byte %zu accepted", i);
		ASSERT_EQ(LMIG_ST_CHECKSUM, status)
			TH_LOG("flip at byte %zu: status %u", i, status);
		ASSERT_NE(NULL, strstr(lmig_errmsg(), "checksum"));
	}
}

TEST(hello_reserved_nonzero)
{
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status;

	sample_info(&in);
	for (int i = 0; i < 3; i++) {
		wire_hello_build(&h, &in);
		h.reserved[i] = htole32(1);
		reseal(&h);
		EXPECT_EQ(-1, parse(&h, &out, &status)) TH_LOG("reserved[%d] accepted", i);
		EXPECT_EQ(LMIG_ST_PROTOCOL, status);
	}
	wire_hello_build(&h, &in);
	h.flags = htole32(1);
	reseal(&h);
	EXPECT_EQ(-1, parse(&h, &out, &status)) TH_LOG("flags accepted");
	wire_hello_build(&h, &in);
	h.auth_len = htole32(32);
	reseal(&h);
	EXPECT_EQ(-1, parse(&h, &out, &status)) TH_LOG("auth_len accepted");
}

TEST(hello_bad_page_shift)
{
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status;

	sample_info(&in);
	wire_hello_build(&h, &in);
	h.page_shift = htole32(16);
	reseal(&h);
	ASSERT_EQ(-1, parse(&h, &out, &status));
	EXPECT_EQ(LMIG_ST_PROTOCOL, status);
}

TEST(hello_bad_channel)
{
	static const struct { unsigned int channel, nchannels; bool ok; } c[] = {
		{ 0, 1, true }, { 63, 64, true },
		{ 1, 1, false },	/* index == count */
		{ 7, 4, false },
		{ 0, 0, false },	/* no channels at all */
		{ 0, LMIG_MAX_CHANNELS + 1, false },
	};
	struct hello_info in, out;
	struct lmig_hello h;
	uint32_t status;

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		sample_info(&in);
		in.channel = c[i].channel;
		in.nchannels = c[i].nchannels;
		wire_hello_build(&h, &in);
		EXPECT_EQ(c[i].ok ? 0 : -1, parse(&h, &out, &status))
			TH_LOG("channel %u of %u", c[i].channel, c[i].nchannels);
		EXPECT_EQ(c[i].ok ? LMIG_ST_OK : LMIG_ST_PROTOCOL, status);
	}
}

TEST(ack_accept)
{
	struct lmig_hello_ack a;
	uint32_t caps = 0;

	wire_ack_build(&a, LMIG_CAP_LZ4, LMIG_ST_OK, NULL);
	ASSERT_EQ(120, sizeof(a));
	EXPECT_EQ(0, memcmp(&a, "LMIG", 4));
	lmig_err_clear();
	ASSERT_EQ(0, wire_ack_parse(&a, &caps));
	EXPECT_EQ(LMIG_CAP_LZ4, caps);
	EXPECT_FALSE(lmig_has_err());
}

TEST(ack_refusal_carries_reason)
{
	struct lmig_hello_ack a;
	uint32_t caps;

	wire_ack_build(&a, 0, LMIG_ST_SIZE, "image size mismatch: 5 vs 6");
	EXPECT_EQ(LMIG_ST_SIZE, le32toh(a.status));
	lmig_err_clear();
	ASSERT_EQ(-1, wire_ack_parse(&a, &caps));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "refused"));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "image size mismatch: 5 vs 6"));

	/* Without a reason, the status is named. */
	wire_ack_build(&a, 0, LMIG_ST_VERSION, NULL);
	lmig_err_clear();
	ASSERT_EQ(-1, wire_ack_parse(&a, &caps));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), wire_status_name(LMIG_ST_VERSION)));
}

TEST(ack_long_reason_truncated)
{
	struct lmig_hello_ack a;
	char reason[300];
	uint32_t caps;

	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = 0;
	wire_ack_build(&a, 0, LMIG_ST_IO, reason);
	EXPECT_EQ(LMIG_REASON_LEN - 1, strnlen(a.reason, LMIG_REASON_LEN));
	lmig_err_clear();
	ASSERT_EQ(-1, wire_ack_parse(&a, &caps));
}

TEST(ack_damaged)
{
	struct lmig_hello_ack a, bad;
	uint32_t caps;

	wire_ack_build(&a, LMIG_CAPS_V1, LMIG_ST_OK, NULL);
	bad = a;
	bad.magic = htole32(0xdeadbeef);
	bad.checksum = htole64(CSUM(&bad, struct lmig_hello_ack));
	lmig_err_clear();
	EXPECT_EQ(-1, wire_ack_parse(&bad, &caps));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "magic"));

	for (size_t i = 4; i < sizeof(a); i++) {
		bad = a;
		((uint8_t *)&bad)[i] ^= 0x80;
		lmig_err_clear();
		ASSERT_EQ(-1, wire_ack_parse(&bad, &caps)) TH_LOG("flip at byte %zu accepted", i);
		ASSERT_NE(NULL, strstr(lmig_errmsg(), "checksum"));
	}
}

TEST(result_round_trip)
{
	struct lmig_result r;
	uint64_t pages = 0;

	wire_result_build(&r, LMIG_ST_OK, 123456789012ULL, NULL);
	ASSERT_EQ(120, sizeof(r));
	lmig_err_clear();
	ASSERT_EQ(0, wire_result_parse(&r, &pages));
	EXPECT_EQ(123456789012ULL, pages);
}

TEST(result_rejection_carries_reason)
{
	struct lmig_result r;
	uint64_t pages;

	wire_result_build(&r, LMIG_ST_IO, 0, "writing x.partial: No space left on device");
	lmig_err_clear();
	ASSERT_EQ(-1, wire_result_parse(&r, &pages));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "No space left on device"));

	wire_result_build(&r, LMIG_ST_DIGEST, 0, NULL);
	lmig_err_clear();
	ASSERT_EQ(-1, wire_result_parse(&r, &pages));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), wire_status_name(LMIG_ST_DIGEST)));
}

TEST(result_damaged)
{
	struct lmig_result r, bad;
	uint64_t pages;

	wire_result_build(&r, LMIG_ST_OK, 42, NULL);
	/* An ack where a result belongs: same size, other magic. */
	bad = r;
	bad.magic = htole32(LMIG_WIRE_MAGIC);
	bad.checksum = htole64(CSUM(&bad, struct lmig_result));
	lmig_err_clear();
	EXPECT_EQ(-1, wire_result_parse(&bad, &pages));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "magic"));

	for (size_t i = 4; i < sizeof(r); i++) {
		bad = r;
		((uint8_t *)&bad)[i] ^= 0x01;
		lmig_err_clear();
		ASSERT_EQ(-1, wire_result_parse(&bad, &pages)) TH_LOG("flip at byte %zu accepted", i);
	}
}

/*
 * The confirmed commit's messages: a CONFIRM counts for exactly the
 * verified image, a verdict or a CONFIRM is never taken for a FINAL, and
 * any flipped bit of either is refused.
 */
TEST(confirm_and_final)
{
	struct lmig_result c, f, bad;
	uint32_t st = 99;

	wire_result_build_as(&c, LMIG_CONFIRM_MAGIC, LMIG_ST_OK, 256, NULL);
	lmig_err_clear();
	EXPECT_EQ(0, wire_confirm_parse(&c, 256));
	EXPECT_EQ(-1, wire_confirm_parse(&c, 255));
	wire_result_build(&bad, LMIG_ST_OK, 256, NULL);	/* a verdict echoed back */
	lmig_err_clear();
	EXPECT_EQ(-1, wire_confirm_parse(&bad, 256));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "magic"));

	wire_result_build_as(&f, LMIG_FINAL_MAGIC, LMIG_ST_OK, 256, NULL);
	EXPECT_EQ(0, wire_final_parse(&f, &st));
	EXPECT_EQ(LMIG_ST_OK, st);
	EXPECT_EQ(-1, wire_final_parse(&bad, &st));
	EXPECT_EQ(-1, wire_final_parse(&c, &st));

	wire_result_build_as(&f, LMIG_FINAL_MAGIC, LMIG_ST_IO, 0, "cannot link the image");
	lmig_err_clear();
	EXPECT_EQ(0, wire_final_parse(&f, &st));
	EXPECT_EQ(LMIG_ST_IO, st);
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "cannot link the image"));

	for (size_t i = 0; i < sizeof(c); i++) {
		bad = c;
		((uint8_t *)&bad)[i] ^= 0x01;
		ASSERT_EQ(-1, wire_confirm_parse(&bad, 256)) TH_LOG("confirm: flip at byte %zu accepted", i);
		bad = f;
		((uint8_t *)&bad)[i] ^= 0x01;
		ASSERT_EQ(-1, wire_final_parse(&bad, &st)) TH_LOG("final: flip at byte %zu accepted", i);
	}
}

TEST(frame_checksum_covers_descriptors)
{
	struct lmig_page_desc d[3], e[3];
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(LMIG_FRAME_BATCH),
		.ndesc = htole32(3), .payload_len = htole32(2 * LMIG_PAGE_SIZE), .seq = htole64(7),
	};
	struct lmig_frame g;
	uint64_t sum;

	ASSERT_EQ(sizeof(d), getrandom(d, sizeof(d), 0));
	sum = wire_frame_checksum(&f, d, 3);
	/* Deterministic, and the header's own checksum field is not an input. */
	EXPECT_EQ(sum, wire_frame_checksum(&f, d, 3));
	g = f;
	g.checksum = htole64(sum);
	EXPECT_EQ(sum, wire_frame_checksum(&g, d, 3));

	for (size_t i = 0; i < sizeof(d); i++) {
		memcpy(e, d, sizeof(d));
		((uint8_t *)e)[i] ^= 0x01;
		ASSERT_NE(sum, wire_frame_checksum(&f, e, 3))
			TH_LOG("descriptor byte %zu not covered", i);
	}
	for (size_t i = 0; i < offsetof(struct lmig_frame, checksum); i++) {
		g = f;
		((uint8_t *)&g)[i] ^= 0x01;
		ASSERT_NE(sum, wire_frame_checksum(&g, d, 3))
			TH_LOG("header byte %zu not covered", i);
	}
	/* Dropping a descriptor changes it too (ndesc is the same field). */
	EXPECT_NE(sum, wire_frame_checksum(&f, d, 2));
}

TEST(frame_checksum_end_frame)
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(LMIG_FRAME_END),
		.payload_len = htole32(sizeof(struct lmig_end)),
	};
	struct lmig_frame z = f;

	/* No descriptors: XXH3-64 of the header alone. */
	EXPECT_EQ(XXH3_64bits(&z, sizeof(z)), wire_frame_checksum(&f, NULL, 0));
}

TEST(status_names)
{
	EXPECT_STREQ("ok", wire_status_name(LMIG_ST_OK));
	EXPECT_STREQ("checksum mismatch", wire_status_name(LMIG_ST_CHECKSUM));
	EXPECT_STREQ("pages missing or duplicated", wire_status_name(LMIG_ST_INCOMPLETE));
	EXPECT_STREQ("unknown status", wire_status_name(LMIG_ST_INCOMPLETE + 1));
	EXPECT_STREQ("unknown status", wire_status_name(0xffffffffU));
}

TEST_HARNESS_MAIN

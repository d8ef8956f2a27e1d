// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/chan/codec.c and codec_zstd.c (what a page becomes on
 * the wire), of the page hash's builds codec.c picks from
 * (user/chan/page_hash*.c) and of the command-line value parsers in
 * user/lib/parse.c.
 */
#include <endian.h>
#include <lz4.h>
#include <string.h>
#include <zstd.h>
#include <sys/random.h>
#include <xxhash.h>

#include "kselftest_harness.h"

#include "chan/codec.h"
#include "chan/page_hash.h"
#include "lib/err.h"
#include "lib/parse.h"

#define PAGE	LMIG_PAGE_SIZE

static void random_fill(void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t k = getrandom(b, n, 0);

		if (k <= 0)
			abort();
		b += k;
		n -= k;
	}
}

/* Text a real guest might hold: lz4 shrinks it well below CODEC_LZ4_MAX. */
static void text_fill(uint8_t *p, size_t n, unsigned int seed)
{
	size_t off = 0;

	while (off < n) {
		char line[64];
		int len = snprintf(line, sizeof(line), "line %u of the guest's log file\n", seed++);

		if ((size_t)len > n - off)
			len = n - off;
		memcpy(p + off, line, len);
		off += len;
	}
}

/* ---- zero detection --------------------------------------------------- */

TEST(zero_page_is_zero)
{
	static uint64_t page[PAGE / 8];

	EXPECT_TRUE(codec_page_is_zero(page));
}

TEST(zero_page_last_byte)
{
	static uint64_t page[PAGE / 8];

	((uint8_t *)page)[PAGE - 1] = 1;
	EXPECT_FALSE(codec_page_is_zero(page));
}

TEST(zero_page_first_byte)
{
	static uint64_t page[PAGE / 8];

	((uint8_t *)page)[0] = 0x80;
	EXPECT_FALSE(codec_page_is_zero(page));
}

/* The check is unrolled over words: a single set bit anywhere must count. */
TEST(zero_page_any_byte)
{
	static uint64_t page[PAGE / 8];
	uint8_t *b = (uint8_t *)page;

	for (size_t i = 0; i < PAGE; i++) {
		b[i] = 1u << (i % 8);
		ASSERT_FALSE(codec_page_is_zero(page)) TH_LOG("byte %zu set, page called zero", i);
		b[i] = 0;
	}
	EXPECT_TRUE(codec_page_is_zero(page));
}

/* ---- hashes and digest ------------------------------------------------ */

TEST(page_hash)
{
	static uint64_t zero[PAGE / 8];
	uint64_t page[PAGE / 8];

	codec_init();
	EXPECT_EQ(XXH3_64bits(zero, PAGE), codec_zero_hash());
	EXPECT_EQ(codec_zero_hash(), codec_page_hash(zero));
	random_fill(page, PAGE);
	EXPECT_EQ(XXH3_64bits(page, PAGE), codec_page_hash(page));
	((uint8_t *)page)[PAGE - 1] ^= 1;
	EXPECT_EQ(XXH3_64bits(page, PAGE), codec_page_hash(page));
}

/* ---- the page hash's builds ------------------------------------------ */

/*
 * Every build of the page hash this CPU runs, against libxxhash's own
 * XXH3_64bits() (compiled apart, for the baseline) on one page.
 */
static int builds_disagree(struct __test_metadata *_metadata, const uint8_t *page,
			   const char *what, unsigned int k)
{
	const page_hash_fn builds[] = { page_hash_generic, page_hash_avx2, page_hash_avx512,
					page_hash_picked };
	static const char *const names[] = { "generic", "avx2", "avx512", "picked" };
	uint64_t want = XXH3_64bits(page, PAGE);
	int bad = 0;

	for (size_t i = 0; i < ARRAY_SIZE(builds); i++) {
		if (!page_hash_cpu_has(builds[i]))
			continue;
		if (builds[i](page) != want) {
			TH_LOG("%s page %u: %s build differs", what, k, names[i]);
			bad++;
		}
	}
	if (codec_page_hash(page) != want) {
		TH_LOG("%s page %u: codec_page_hash() differs", what, k);
		bad++;
	}
	return bad;
}

/*
 * Pages at XXH3's edges: one byte set in an otherwise uniform page at
 * every offset (stripes of 64 bytes, blocks of 1 KiB, the last stripe
 * that overlaps the one before), each byte value and each 32-bit lane's
 * sign in every word.
 */
TEST(page_hash_builds_agree_edges)
{
	static const uint8_t fills[] = { 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff };
	static const uint64_t words[] = { 0xffffffff00000000ULL, 0x00000000ffffffffULL,
					  0x8000000080000000ULL, 0x7fffffff7fffffffULL,
					  0x0123456789abcdefULL };
	uint8_t *page = aligned_alloc(PAGE, PAGE);
	int bad = 0;

	ASSERT_NE(NULL, page);
	for (size_t f = 0; f < ARRAY_SIZE(fills); f++) {
		memset(page, fills[f], PAGE);
		bad += builds_disagree(_metadata, page, "uniform", f);
		for (unsigned int off = 0; off < PAGE; off++) {
			page[off] = (uint8_t)~fills[f];
			bad += builds_disagree(_metadata, page, "one byte", off);
			page[off] = fills[f];
		}
	}
	for (size_t w = 0; w < ARRAY_SIZE(words); w++) {
		for (size_t i = 0; i < PAGE / 8; i++)
			memcpy(page + i * 8, &words[w], 8);
		bad += builds_disagree(_metadata, page, "word", w);
	}
	for (unsigned int b = 0; b < 256; b++) {
		for (size_t i = 0; i < PAGE; i++)
			page[i] = (uint8_t)(i + b);
		bad += builds_disagree(_metadata, page, "counting", b);
	}
	EXPECT_EQ(0, bad);
	free(page);
}

/* Random pages, dense and sparse, aligned and not. */
TEST(page_hash_builds_agree_random)
{
	enum { N = 4096 };
	uint8_t *buf = aligned_alloc(PAGE, (N + 1) * PAGE), *page = buf;
	uint64_t r[2];
	int bad = 0;

	ASSERT_NE(NULL, buf);
	random_fill(buf, (N + 1) * PAGE);
	for (unsigned int k = 0; k < N; k++)
		bad += builds_disagree(_metadata, buf + (size_t)k * PAGE, "random", k);
	/* The hash reads unaligned: a page may start anywhere in a buffer. */
	for (unsigned int k = 1; k < 256; k++)
		bad += builds_disagree(_metadata, buf + k * 17, "unaligned", k);
	for (unsigned int k = 0; k < N; k++) {
		memset(page, 0, PAGE);
		random_fill(r, sizeof(r));
		for (unsigned int i = 0; i < 1 + r[0] % 8; i++, r[1] = r[1] * 6364136223846793005ULL + 1)
			page[r[1] % PAGE] = (uint8_t)(r[1] >> 56 | 1);
		bad += builds_disagree(_metadata, page, "sparse", k);
	}
	EXPECT_EQ(0, bad);
	free(buf);
}

/* The build codec_page_hash() runs is the widest the CPU has. */
TEST(page_hash_picks_the_widest)
{
	EXPECT_TRUE(page_hash_pick() == page_hash_picked);
	EXPECT_TRUE(page_hash_cpu_has(page_hash_picked));
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
	/* gcc builds both: this CPU runs the one it has. */
	ASSERT_NE(NULL, page_hash_avx2);
	ASSERT_NE(NULL, page_hash_avx512);
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		EXPECT_TRUE(page_hash_picked == page_hash_avx512);
	} else if (__builtin_cpu_supports("avx2")) {
		EXPECT_TRUE(page_hash_picked == page_hash_avx2);
	} else {
		EXPECT_TRUE(page_hash_picked == page_hash_generic);
	}
#endif
}

/* The digest as wire.h defines it, computed without codec.c. */
static void reference_digest(const uint64_t *h, size_t n, uint8_t out[16])
{
	uint64_t *le = malloc(n * 8 + 1);
	XXH128_canonical_t c;

	for (size_t i = 0; i < n; i++)
		le[i] = htole64(h[i]);
	XXH128_canonicalFromHash(&c, XXH3_128bits(le, n * 8));
	memcpy(out, c.digest, 16);
	free(le);
}

TEST(digest_matches_definition)
{
	/* Sizes around the 512-hash chunks codec_digest() works in. */
	static const size_t sizes[] = { 1, 2, 511, 512, 513, 1024, 1500, 4099 };
	uint64_t *h = malloc(4099 * 8);
	uint8_t got[16], want[16];

	ASSERT_NE(NULL, h);
	random_fill(h, 4099 * 8);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		codec_digest(h, sizes[i], got);
		reference_digest(h, sizes[i], want);
		EXPECT_EQ(0, memcmp(got, want, 16)) TH_LOG("%zu hashes", sizes[i]);
	}
	free(h);
}

TEST(digest_depends_on_order_and_every_hash)
{
	enum { N = 1100 };
	uint64_t *h = malloc(N * 8);
	uint8_t base[16], d[16];

	ASSERT_NE(NULL, h);
	random_fill(h, N * 8);
	codec_digest(h, N, base);
	codec_digest(h, N, d);
	EXPECT_EQ(0, memcmp(base, d, 16));

	for (size_t i = 0; i < N; i++) {
		h[i] ^= 1ULL << (i % 64);
		codec_digest(h, N, d);
		h[i] ^= 1ULL << (i % 64);
		ASSERT_NE(0, memcmp(base, d, 16)) TH_LOG("hash %zu does not count", i);
	}
	/* Same hashes, two pages swapped: a different image. */
	for (size_t i = 0; i + 1 < N; i += 97) {
		uint64_t t = h[i];

		h[i] = h[i + 1];
		h[i + 1] = t;
		codec_digest(h, N, d);
		h[i + 1] = h[i];
		h[i] = t;
		ASSERT_NE(0, memcmp(base, d, 16)) TH_LOG("swapping %zu and %zu", i, i + 1);
	}
	/* And the length counts: one page less is not the same image. */
	codec_digest(h, N - 1, d);
	EXPECT_NE(0, memcmp(base, d, 16));
	free(h);
}

/* ---- lz4 -------------------------------------------------------------- */

TEST(lz4_round_trip)
{
	uint8_t page[PAGE], comp[CODEC_LZ4_MAX], back[PAGE];

	for (unsigned int seed = 0; seed < 64; seed++) {
		unsigned int n;

		text_fill(page, PAGE, seed * 1000);
		n = codec_lz4_page(page, comp);
		ASSERT_GT(n, 0) TH_LOG("text page %u did not compress", seed);
		ASSERT_LE(n, CODEC_LZ4_MAX);
		memset(back, 0xaa, sizeof(back));
		ASSERT_EQ(0, codec_unlz4_page(comp, n, back));
		ASSERT_EQ(0, memcmp(page, back, PAGE));
	}
	/* A zero page, in case a sender is told to compress rather than skip it. */
	memset(page, 0, PAGE);
	ASSERT_GT(codec_lz4_page(page, comp), 0);
}

/*
 * Every acceleration the policy uses round-trips, and a higher one trades
 * size for speed: over 64 text pages, 16 never comes out smaller than 1.
 */
TEST(lz4_accel_round_trip)
{
	uint8_t page[PAGE], comp[CODEC_LZ4_MAX], back[PAGE];
	unsigned long total[5] = { 0 };

	for (unsigned int a = 0; a < 5; a++) {
		for (unsigned int seed = 0; seed < 64; seed++) {
			unsigned int n;

			text_fill(page, PAGE, seed * 1000);
			n = codec_lz4_page_accel(page, comp, 1 << a);
			ASSERT_GT(n, 0) TH_LOG("accel %u: text page %u did not compress", 1 << a, seed);
			ASSERT_EQ(0, codec_unlz4_page(comp, n, back));
			ASSERT_EQ(0, memcmp(page, back, PAGE));
			total[a] += n;
		}
	}
	TH_LOG("64 text pages: %lu bytes at accel 1, %lu at 4, %lu at 16", total[0], total[2],
	       total[4]);
	EXPECT_GE(total[4], total[0]);
}

TEST(lz4_random_page_refused)
{
	uint8_t page[PAGE], comp[CODEC_LZ4_MAX];

	for (int i = 0; i < 16; i++) {
		random_fill(page, PAGE);
		ASSERT_EQ(0, codec_lz4_page(page, comp));
	}
}

/* A page that compresses, but by less than 1/16, is sent raw. */
TEST(lz4_small_gain_refused)
{
	uint8_t page[PAGE], comp[CODEC_LZ4_MAX];

	random_fill(page, PAGE);
	memset(page + PAGE - 128, 0, 128);
	EXPECT_EQ(0, codec_lz4_page(page, comp));
	/* Half zero is plenty. */
	memset(page + PAGE / 2, 0, PAGE / 2);
	EXPECT_GT(codec_lz4_page(page, comp), 0);
}

TEST(unlz4_rejects_bad_input)
{
	uint8_t page[PAGE], comp[CODEC_LZ4_MAX], back[PAGE], junk[PAGE], half[PAGE / 2];
	unsigned int n;
	int k;

	text_fill(page, PAGE, 7);
	n = codec_lz4_page(page, comp);
	ASSERT_GT(n, 16);
	EXPECT_EQ(-1, codec_unlz4_page(comp, n - 1, back));
	EXPECT_EQ(-1, codec_unlz4_page(comp, n / 2, back));
	EXPECT_EQ(-1, codec_unlz4_page(comp, 1, back));
	EXPECT_EQ(-1, codec_unlz4_page(comp, 0, back));

	memset(junk, 0xff, sizeof(junk));
	EXPECT_EQ(-1, codec_unlz4_page(junk, 100, back));
	EXPECT_EQ(-1, codec_unlz4_page(junk, PAGE - 1, back));

	/* Valid lz4, but not one page: half a page must not pass as a page. */
	text_fill(half, sizeof(half), 3);
	k = LZ4_compress_default((const char *)half, (char *)comp, sizeof(half), CODEC_LZ4_MAX);
	ASSERT_GT(k, 0);
	EXPECT_EQ(-1, codec_unlz4_page(comp, k, back));
}

/* ---- zstd ------------------------------------------------------------- */

TEST(zstd_round_trip)
{
	static const int levels[] = { -1, 1, 3 };
	uint8_t page[PAGE], comp[CODEC_ZSTD_MAX], back[PAGE];
	unsigned long total[3] = { 0 }, lz4 = 0;

	for (unsigned int l = 0; l < 3; l++) {
		for (unsigned int seed = 0; seed < 64; seed++) {
			unsigned int n;

			text_fill(page, PAGE, seed * 1000);
			n = codec_zstd_page(page, comp, levels[l]);
			ASSERT_GT(n, 0) TH_LOG("level %d: text page %u did not compress", levels[l], seed);
			ASSERT_LE(n, CODEC_ZSTD_MAX);
			/* What the wire format asks: the content size, one page. */
			ASSERT_EQ(PAGE, ZSTD_getFrameContentSize(comp, n));
			memset(back, 0xaa, sizeof(back));
			ASSERT_EQ(0, codec_unzstd_page(comp, n, back));
			ASSERT_EQ(0, memcmp(page, back, PAGE));
			total[l] += n;
			if (!l)
				lz4 += codec_lz4_page(page, comp);
		}
	}
	TH_LOG("64 text pages: lz4 %lu bytes, zstd -1 %lu, 1 %lu, 3 %lu", lz4, total[0],
	       total[1], total[2]);
	EXPECT_LT(total[0], lz4);
	memset(page, 0, PAGE);
	ASSERT_GT(codec_zstd_page(page, comp, -1), 0);
}

/* Random pages, and a gain under 1/16, go raw as with lz4. */
TEST(zstd_small_gain_refused)
{
	uint8_t page[PAGE], comp[CODEC_ZSTD_MAX];

	for (int i = 0; i < 16; i++) {
		random_fill(page, PAGE);
		ASSERT_EQ(0, codec_zstd_page(page, comp, 1));
	}
	memset(page + PAGE - 128, 0, 128);
	EXPECT_EQ(0, codec_zstd_page(page, comp, 1));
	memset(page + PAGE / 2, 0, PAGE / 2);
	EXPECT_GT(codec_zstd_page(page, comp, 1), 0);
}

/* A frame of len bytes of src made by zstd itself, content size on or off. */
static size_t zframe(void *dst, size_t cap, const void *src, size_t len, int content_size)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t n;

	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, content_size);
	n = ZSTD_compress2(c, dst, cap, src, len);
	ZSTD_freeCCtx(c);
	return ZSTD_isError(n) ? 0 : n;
}

TEST(unzstd_rejects_bad_input)
{
	uint8_t page[2 * PAGE], comp[2 * PAGE], back[PAGE], junk[PAGE];
	unsigned int n, fcs;
	size_t k, e;

	text_fill(page, sizeof(page), 7);
	n = codec_zstd_page(page, comp, 1);
	ASSERT_GT(n, 16);
	ASSERT_EQ(0, codec_unzstd_page(comp, n, back));
	/* Truncated. */
	EXPECT_EQ(-1, codec_unzstd_page(comp, n - 1, back));
	EXPECT_EQ(-1, codec_unzstd_page(comp, n / 2, back));
	EXPECT_EQ(-1, codec_unzstd_page(comp, 5, back));
	EXPECT_EQ(-1, codec_unzstd_page(comp, 1, back));
	EXPECT_EQ(-1, codec_unzstd_page(comp, 0, back));
	/* Garbage, with and without the magic. */
	memset(junk, 0xff, sizeof(junk));
	EXPECT_EQ(-1, codec_unzstd_page(junk, 100, back));
	EXPECT_EQ(-1, codec_unzstd_page(junk, PAGE - 1, back));
	memcpy(junk, comp, 6);
	EXPECT_EQ(-1, codec_unzstd_page(junk, n, back));
	/* One byte after the frame, and a second (empty) frame after it. */
	comp[n] = 0;
	EXPECT_EQ(-1, codec_unzstd_page(comp, n + 1, back));
	e = zframe(comp + n, sizeof(comp) - n, page, 0, 1);
	ASSERT_GT(e, 0);
	EXPECT_EQ(-1, codec_unzstd_page(comp, n + e, back));
	/* Valid frames that are not one page: half, two, and no content size. */
	k = zframe(comp, sizeof(comp), page, PAGE / 2, 1);
	ASSERT_GT(k, 0);
	EXPECT_EQ(-1, codec_unzstd_page(comp, k, back));
	k = zframe(comp, sizeof(comp), page, 2 * PAGE, 1);
	ASSERT_GT(k, 0);
	EXPECT_EQ(-1, codec_unzstd_page(comp, k, back));
	k = zframe(comp, sizeof(comp), page, PAGE, 0);
	ASSERT_GT(k, 0);
	ASSERT_EQ(ZSTD_CONTENTSIZE_UNKNOWN, ZSTD_getFrameContentSize(comp, k));
	EXPECT_EQ(-1, codec_unzstd_page(comp, k, back));
	/*
	 * A frame that declares one page and holds one byte less: 4095 bytes
	 * with its 2-byte content size field (value - 256) raised by one.
	 */
	k = zframe(comp, sizeof(comp), page, PAGE - 1, 1);
	ASSERT_GT(k, 0);
	ASSERT_EQ(0x60, comp[4]);	/* single segment, 2-byte content size */
	fcs = (uint16_t)(comp[5] | comp[6] << 8) + 1;
	comp[5] = fcs & 0xff;
	comp[6] = fcs >> 8;
	ASSERT_EQ(PAGE, ZSTD_getFrameContentSize(comp, k));
	EXPECT_EQ(-1, codec_unzstd_page(comp, k, back));
}

/*
 * The page's own frame (single segment, 2-byte content size) rewritten
 * with a window descriptor wd: the same blocks, now in a frame that asks
 * for a window of its own.
 */
static size_t with_window(uint8_t *dst, const uint8_t *frame, size_t n, uint8_t wd)
{
	memcpy(dst, frame, 4);
	dst[4] = 0x40;		/* 2-byte content size, not single segment */
	dst[5] = wd;
	memcpy(dst + 6, frame + 5, n - 5);
	return n + 1;
}

TEST(unzstd_window_bounded)
{
	uint8_t page[PAGE], comp[CODEC_ZSTD_MAX], big[CODEC_ZSTD_MAX + 1], back[PAGE];
	unsigned int n;
	size_t k;

	text_fill(page, PAGE, 11);
	n = codec_zstd_page(page, comp, 1);
	ASSERT_GT(n, 0);
	ASSERT_EQ(0x60, comp[4]);
	/* A window of exactly 4 KiB (exponent 2): still a page's frame. */
	k = with_window(big, comp, n, 2 << 3);
	ASSERT_EQ(0, codec_unzstd_page(big, k, back));
	ASSERT_EQ(0, memcmp(page, back, PAGE));
	/* 4 KiB + 1/8: refused. */
	k = with_window(big, comp, n, 2 << 3 | 1);
	EXPECT_EQ(-1, codec_unzstd_page(big, k, back));
	/* 1 GiB (exponent 20) and the largest a header can say: refused, nothing allocated. */
	k = with_window(big, comp, n, 20 << 3);
	EXPECT_EQ(-1, codec_unzstd_page(big, k, back));
	k = with_window(big, comp, n, 0xff);
	EXPECT_EQ(-1, codec_unzstd_page(big, k, back));
	TH_LOG("this thread's zstd contexts: %zu bytes", codec_zstd_mem());
	EXPECT_LT(codec_zstd_mem(), 2 << 20);
	/* zstd itself would take the 1 GiB frame: the refusal is ours. */
	k = with_window(big, comp, n, 20 << 3);
	EXPECT_EQ(PAGE, ZSTD_decompress(back, PAGE, big, k));
}

/* ---- parse_bytes ------------------------------------------------------ */

static int bytes(const char *s, uint64_t *v)
{
	lmig_err_clear();
	return parse_bytes("--test", s, v);
}

TEST(parse_bytes_accepts)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "4096", 4096 },
		{ "125M", 125000000 }, { "1G", 1000000000 }, { "1.5G", 1500000000 },
		{ "1Gbit", 125000000 }, { "8bit", 1 }, { "100Mbit", 12500000 },
		{ "64Ki", 65536 }, { "1Mi", 1048576 }, { "2GiB", 2147483648ULL },
		{ "1k", 1000 }, { "3MB", 3000000 }, { "1T", 1000000000000ULL },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint64_t v = 12345;

		EXPECT_EQ(0, bytes(ok[i].s, &v)) TH_LOG("'%s' refused: %s", ok[i].s, lmig_errmsg());
		EXPECT_EQ(ok[i].v, v) TH_LOG("'%s'", ok[i].s);
	}
}

TEST(parse_bytes_rejects)
{
	static const char *const bad[] = {
		"abc", "12X", "", "-5", " 5", "5 M", "M", "1Gbits", "1e", ".", "99999999999T",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t v = 777;

		EXPECT_EQ(-1, bytes(bad[i], &v)) TH_LOG("'%s' accepted as %llu", bad[i],
							 (unsigned long long)v);
		EXPECT_EQ(777, v) TH_LOG("'%s' changed the output", bad[i]);
		EXPECT_TRUE(lmig_has_err());
	}
}

/* ---- parse_hostport --------------------------------------------------- */

static int hp(const char *s, char *host, char *port)
{
	lmig_err_clear();
	host[0] = port[0] = 0;
	return parse_hostport("--to", s, host, 64, port, 16);
}

TEST(parse_hostport_accepts)
{
	static const struct { const char *s, *host, *port; } ok[] = {
		{ "host.example:80", "host.example", "80" },
		{ "10.0.0.1:65535", "10.0.0.1", "65535" },
		{ "[::1]:80", "::1", "80" },
		{ "[fe80::1%eth0]:7000", "fe80::1%eth0", "7000" },
		{ ":9000", "", "9000" },	/* wildcard listen */
		{ "127.0.0.1:0", "127.0.0.1", "0" },
	};
	char host[64], port[16];

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		EXPECT_EQ(0, hp(ok[i].s, host, port)) TH_LOG("'%s': %s", ok[i].s, lmig_errmsg());
		EXPECT_STREQ(ok[i].host, host);
		EXPECT_STREQ(ok[i].port, port);
	}
}

TEST(parse_hostport_rejects)
{
	static const struct { const char *s, *why; } bad[] = {
		{ "host", "port" },		/* missing port */
		{ "host:", "port" },
		{ "host:70000", "port" },
		{ "host:65536", "port" },
		{ "host:8o", "port" },
		{ "host:-1", "port" },
		{ "::1:80", "brackets" },	/* bare IPv6 */
		{ "fe80::1", "brackets" },
		{ "[::1]80", "ADDR" },
		{ "[::1", "ADDR" },
		{ "", "empty" },
	};
	char host[64], port[16];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-1, hp(bad[i].s, host, port)) TH_LOG("'%s' accepted", bad[i].s);
		EXPECT_NE(NULL, strstr(lmig_errmsg(), bad[i].why))
			TH_LOG("'%s': message '%s' does not say '%s'", bad[i].s, lmig_errmsg(),
			       bad[i].why);
	}
}

TEST(parse_hostport_long_host)
{
	char s[200], host[64], port[16];

	memset(s, 'h', 100);
	strcpy(s + 100, ":80");
	EXPECT_EQ(-1, hp(s, host, port));
}

TEST_HARNESS_MAIN

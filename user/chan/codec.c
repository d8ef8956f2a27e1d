// SPDX-License-Identifier: GPL-2.0-only
#include <endian.h>
#include <lz4.h>
#include <string.h>
#include "lib/xxh.h"

#include "chan/codec.h"
#include "chan/page_hash.h"

static uint64_t zero_hash;

void codec_init(void)
{
	static const char zero[LMIG_PAGE_SIZE];

	zero_hash = XXH3_64bits(zero, sizeof(zero));
}

bool codec_page_is_zero(const void *page)
{
	const uint64_t *w = page;
	uint64_t acc = 0;

	/* Most data pages fail on the first word; only zero pages are read whole. */
	if (w[0])
		return false;
	for (size_t i = 0; i < LMIG_PAGE_SIZE / 8; i += 8)
		acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] |
		       w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
	return acc == 0;
}

/* By the widest vector unit the CPU has: the same value on every path. */
uint64_t codec_page_hash(const void *page)
{
	return page_hash_picked(page);
}

uint64_t codec_zero_hash(void)
{
	return zero_hash;
}

unsigned int codec_lz4_page_accel(const void *page, void *dst, int accel)
{
	int n = LZ4_compress_fast(page, dst, LMIG_PAGE_SIZE, CODEC_LZ4_MAX, accel);

	return n > 0 ? (unsigned int)n : 0;
}

unsigned int codec_lz4_page(const void *page, void *dst)
{
	return codec_lz4_page_accel(page, dst, 1);
}

int codec_unlz4_page(const void *src, unsigned int len, void *page)
{
	int n = LZ4_decompress_safe(src, page, (int)len, LMIG_PAGE_SIZE);

	return n == LMIG_PAGE_SIZE ? 0 : -1;
}

void codec_digest(const uint64_t *hashes, uint64_t n, uint8_t out[16])
{
	XXH3_state_t st;
	XXH128_canonical_t c;
	uint64_t buf[512];

	XXH3_128bits_reset(&st);
	while (n) {
		size_t k = n < 512 ? n : 512;

		for (size_t i = 0; i < k; i++)
			buf[i] = htole64(hashes[i]);
		XXH3_128bits_update(&st, buf, k * 8);
		hashes += k;
		n -= k;
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(out, c.digest, 16);
}

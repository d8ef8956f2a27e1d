// SPDX-License-Identifier: GPL-2.0-only
/*
 * The page codec's decoding side (user/chan/codec.c, codec_zstd.c): what
 * a receiver does with an lz4 or zstd page from the wire, and the
 * zero-page test.
 *
 * Input: the payload of a compressed page, tried both as an LMIG_ENC_LZ4
 * page (lz4 block data) and as an LMIG_ENC_ZSTD page (one zstd frame).
 * Each decoder writes into an exact page-sized heap buffer (ASan sees a
 * write one byte past it).  A page that decodes is compressed again with
 * the same codec and must decode to the same bytes; a page the fuzzer
 * makes all-zero must be seen as zero, and a non-zero one never.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan/codec.h"

/* A page that decoded: zero test, and the round trip through the same codec. */
static void check_page(const uint8_t *page, bool zstd)
{
	uint8_t *again = malloc(CODEC_LZ4_MAX), *back = malloc(LMIG_PAGE_SIZE);
	unsigned int len;
	bool zero = true;

	for (size_t i = 0; i < LMIG_PAGE_SIZE; i++)
		zero &= !page[i];
	if (codec_page_is_zero(page) != zero)
		abort();
	len = zstd ? codec_zstd_page(page, again, 1) : codec_lz4_page(page, again);
	if (len > CODEC_LZ4_MAX)
		abort();
	if (len && ((zstd ? codec_unzstd_page(again, len, back) : codec_unlz4_page(again, len, back)) ||
		    memcmp(page, back, LMIG_PAGE_SIZE)))
		abort();
	free(again);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint8_t *src, *page;

	if (n > 2 * LMIG_PAGE_SIZE)
		return -1;
	src = malloc(n ? n : 1);
	memcpy(src, d, n);
	page = malloc(LMIG_PAGE_SIZE);
	if (codec_unlz4_page(src, (unsigned int)n, page) == 0)
		check_page(page, false);
	if (codec_unzstd_page(src, (unsigned int)n, page) == 0)
		check_page(page, true);
	free(src);
	free(page);
	return 0;
}

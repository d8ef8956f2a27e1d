// SPDX-License-Identifier: GPL-2.0-only
/*
 * The page codec's decoding side (user/chan/codec.c): what a receiver does
 * with an lz4 page from the wire, and the zero-page test.
 *
 * Input: lz4 block data as a sender would put in an LMIG_ENC_LZ4 page.
 * The decoder writes into an exact page-sized heap buffer (ASan sees a
 * write one byte past it).  A page that decodes is compressed again and
 * must decode to the same bytes; a page the fuzzer makes all-zero must be
 * seen as zero, and a non-zero one never.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint8_t *src, *page, *again, *back;
	unsigned int len;
	bool zero = true;

	if (n > 2 * LMIG_PAGE_SIZE)
		return -1;
	src = malloc(n ? n : 1);
	memcpy(src, d, n);
	page = malloc(LMIG_PAGE_SIZE);
	again = malloc(CODEC_LZ4_MAX);
	back = malloc(LMIG_PAGE_SIZE);
	if (codec_unlz4_page(src, (unsigned int)n, page) == 0) {
		for (size_t i = 0; i < LMIG_PAGE_SIZE; i++)
			zero &= !page[i];
		if (codec_page_is_zero(page) != zero)
			abort();
		len = codec_lz4_page(page, again);
		if (len > CODEC_LZ4_MAX)
			abort();
		if (len && (codec_unlz4_page(again, len, back) || memcmp(page, back, LMIG_PAGE_SIZE)))
			abort();
		if (codec_page_hash(page) != codec_page_hash(back) && len)
			abort();
	}
	free(src);
	free(page);
	free(again);
	free(back);
	return 0;
}

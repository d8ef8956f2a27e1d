/* SPDX-License-Identifier: GPL-2.0-only */
/* Per-page encoding: zero detection, hashing, lz4 and zstd, and the image digest. */
#ifndef LMIG_CODEC_H
#define LMIG_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmig/wire.h>

/*
 * An lz4 page is kept only when it saves at least this much; a page that
 * barely compresses costs the receiver a decompression for nothing.
 */
#define CODEC_LZ4_MAX	(LMIG_PAGE_SIZE - LMIG_PAGE_SIZE / 16)

void codec_init(void);
bool codec_page_is_zero(const void *page);
uint64_t codec_page_hash(const void *page);
/* Hash of an all-zero page, for digest slots of zero pages. */
uint64_t codec_zero_hash(void);
/* Compress one page into dst (CODEC_LZ4_MAX bytes); returns the length, or 0
 * when the page does not compress enough. */
unsigned int codec_lz4_page(const void *page, void *dst);
/* The same with lz4's acceleration (1 = default; higher: faster, larger). */
unsigned int codec_lz4_page_accel(const void *page, void *dst, int accel);
/* Decompress into a full page; -1 unless exactly one page comes out. */
int codec_unlz4_page(const void *src, unsigned int len, void *page);

/* A zstd page is kept on the same terms as an lz4 one. */
#define CODEC_ZSTD_MAX	CODEC_LZ4_MAX
/*
 * The page as one zstd frame at level into dst (CODEC_ZSTD_MAX bytes);
 * the length, or 0 when the page does not compress enough (codec_zstd.c).
 */
unsigned int codec_zstd_page(const void *page, void *dst, int level);
/*
 * Decode one zstd frame into a full page: -1 unless src is exactly one
 * frame that declares one page of content and at most a page of window,
 * and decodes to exactly one page.
 */
int codec_unzstd_page(const void *src, unsigned int len, void *page);
/* Bytes the calling thread's zstd contexts hold. */
size_t codec_zstd_mem(void);
/* XXH3-128 over hashes[0..n) as le64, canonical big-endian bytes. */
void codec_digest(const uint64_t *hashes, uint64_t n, uint8_t out[16]);

#endif

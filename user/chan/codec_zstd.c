// SPDX-License-Identifier: GPL-2.0-only
/*
 * zstd pages (LMIG_ENC_ZSTD): one zstd frame per page.
 *
 * Each thread keeps its own compression and decompression context,
 * created on first use and freed when the thread ends: a context costs
 * hundreds of KiB and its set-up more than compressing a page, and the
 * receiver decodes on several worker threads at once.
 *
 * Decoding takes only frames a sender of ours makes: exactly one frame,
 * with its content size, which is one page, and a window of at most one
 * page.  zstd's one-shot decoder writes straight into the page and never
 * allocates a window, whatever the frame declares; the window check is
 * there so that a frame that could not have come from a page is refused
 * rather than decoded, and the decoder's window limit so that no later
 * change of API could make a hostile frame allocate a large window.
 */
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>

#include "chan/codec.h"

/* Windows above 4 KiB (2^12) are refused: a page never needs more. */
#define ZSTD_WINDOW_LOG_MAX	LMIG_PAGE_SHIFT

struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static __thread struct zctx tz;

static void zctx_free(void *arg)
{
	struct zctx *z = arg;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	z->c = NULL;
	z->d = NULL;
}

static void zkey_make(void)
{
	pthread_key_create(&zkey, zctx_free);
}

/* This thread's contexts, registered for freeing at its exit. */
static struct zctx *zctx_get(void)
{
	if (!tz.c && !tz.d) {
		pthread_once(&zonce, zkey_make);
		pthread_setspecific(zkey, &tz);
	}
	return &tz;
}

unsigned int codec_zstd_page(const void *page, void *dst, int level)
{
	struct zctx *z = zctx_get();
	size_t n;

	if (!z->c && !(z->c = ZSTD_createCCtx()))
		return 0;
	n = ZSTD_compressCCtx(z->c, dst, CODEC_ZSTD_MAX, page, LMIG_PAGE_SIZE, level);
	/* Too large for CODEC_ZSTD_MAX is an error too: the page goes raw. */
	return ZSTD_isError(n) ? 0 : (unsigned int)n;
}

/* The frame header's window, as RFC 8878 section 3.1.1.1 defines it. */
static int window_ok(const uint8_t *src, unsigned int len)
{
	uint8_t fhd, wd;
	uint64_t base;

	if (len < 6)
		return 0;
	fhd = src[4];
	if (fhd & 0x20)		/* single segment: the window is the content size */
		return 1;
	wd = src[5];
	base = 1ULL << (10 + (wd >> 3));
	return base + base / 8 * (wd & 7) <= LMIG_PAGE_SIZE;
}

static ZSTD_DCtx *dctx_get(void)
{
	struct zctx *z = zctx_get();

	if (!z->d) {
		z->d = ZSTD_createDCtx();
		if (z->d && ZSTD_isError(ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax,
								 ZSTD_WINDOW_LOG_MAX))) {
			ZSTD_freeDCtx(z->d);
			z->d = NULL;
		}
	}
	return z->d;
}

int codec_unzstd_page(const void *src, unsigned int len, void *page)
{
	ZSTD_DCtx *d;
	size_t n;

	if (ZSTD_getFrameContentSize(src, len) != LMIG_PAGE_SIZE ||
	    ZSTD_findFrameCompressedSize(src, len) != len || !window_ok(src, len))
		return -1;
	d = dctx_get();
	if (!d)
		return -1;
	n = ZSTD_decompressDCtx(d, page, LMIG_PAGE_SIZE, src, len);
	return n == LMIG_PAGE_SIZE ? 0 : -1;
}

size_t codec_zstd_mem(void)
{
	return ZSTD_sizeof_CCtx(tz.c) + ZSTD_sizeof_DCtx(tz.d);
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The scan tracker: read every page, hash it (XXH3-64, as the wire does)
 * and report the pages whose hash differs from that of the content last
 * sent.  It needs nothing from the kernel but the right to read the
 * memory, so it is the tracker of last resort; it costs a full read of
 * the memory per round, at memory speed.
 */
#include <stdlib.h>

#include <lmig/wire.h>

#include "chan/codec.h"
#include "lib/err.h"
#include "live/track.h"

#define CHUNK	(1 << 20)	/* bytes read at a time: hashed while in the cache */

static int scan_probe(const struct track_target *tg)
{
	uint8_t page[LMIG_PAGE_SIZE];

	if (!tg->sent)
		return lmig_err("the scan tracker needs the hashes of what was sent");
	return track_read(tg, 0, page, sizeof(page));
}

static int scan_start(struct tracker *t)
{
	t->priv = aligned_alloc(LMIG_PAGE_SIZE, CHUNK);
	if (!t->priv)
		return lmig_err("out of memory for the scan buffer");
	return 0;
}

static int scan_harvest(struct tracker *t, uint64_t *bitmap)
{
	const uint8_t *buf = t->priv;

	for (uint64_t off = 0; off < t->tg.size; off += CHUNK) {
		size_t len = t->tg.size - off < CHUNK ? t->tg.size - off : CHUNK;
		uint64_t first = off / LMIG_PAGE_SIZE;
		unsigned int pages = (len + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;

		/* A partial last page is hashed padded with zeros, as it was sent. */
		if (track_read(&t->tg, off, t->priv, (size_t)pages * LMIG_PAGE_SIZE))
			return -1;
		t->bytes_read += len;
		for (unsigned int i = 0; i < pages; i++)
			if (codec_page_hash(buf + (size_t)i * LMIG_PAGE_SIZE) != t->tg.sent[first + i])
				bitmap_set(bitmap, first + i);
	}
	return 0;
}

static void scan_stop(struct tracker *t)
{
	free(t->priv);
	t->priv = NULL;
}

const struct tracker_ops track_scan_ops = {
	.name = "scan",
	.probe = scan_probe,
	.start = scan_start,
	.harvest = scan_harvest,
	.stop = scan_stop,
};

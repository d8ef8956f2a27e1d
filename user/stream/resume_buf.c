// SPDX-License-Identifier: GPL-2.0-only
/* The resume buffer: see resume_buf.h. */
#include <stdlib.h>
#include <string.h>

#include "stream/resume_buf.h"

enum rbuf_result rbuf_init(struct resume_buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->ring = malloc(cap);
	if (!b->ring)
		return RBUF_NOMEM;
	b->cap = cap;
	return RBUF_OK;
}

void rbuf_free(struct resume_buf *b)
{
	free(b->ring);
	b->ring = NULL;
}

enum rbuf_result rbuf_put(struct resume_buf *b, const void *p, size_t n)
{
	size_t at, first;

	if (n > rbuf_room(b))
		return RBUF_FULL;
	at = (size_t)(b->end % b->cap);
	first = b->cap - at < n ? b->cap - at : n;
	memcpy(b->ring + at, p, first);
	memcpy(b->ring, (const uint8_t *)p + first, n - first);
	b->end += n;
	return RBUF_OK;
}

enum rbuf_result rbuf_ack(struct resume_buf *b, uint64_t off)
{
	if (off > b->end)
		return RBUF_AHEAD;
	if (off > b->base)
		b->base = off;
	return RBUF_OK;
}

enum rbuf_result rbuf_span(const struct resume_buf *b, uint64_t off, struct iovec iov[2], int *n)
{
	size_t at, len, first;

	*n = 0;
	if (off < b->base)
		return RBUF_LOST;
	if (off > b->end)
		return RBUF_AHEAD;
	len = (size_t)(b->end - off);
	if (!len)
		return RBUF_OK;
	at = (size_t)(off % b->cap);
	first = b->cap - at < len ? b->cap - at : len;
	iov[0] = (struct iovec){ b->ring + at, first };
	*n = 1;
	if (len > first) {
		iov[1] = (struct iovec){ b->ring, len - first };
		*n = 2;
	}
	return RBUF_OK;
}

enum rbuf_result rbuf_replay(struct resume_buf *b, uint64_t off, struct iovec iov[2], int *n)
{
	enum rbuf_result r = rbuf_span(b, off, iov, n);

	if (r == RBUF_OK)
		b->base = off > b->base ? off : b->base;
	return r;
}

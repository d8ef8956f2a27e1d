/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What one direction of one channel sent and the peer has not yet
 * acknowledged (LMIG_CAP_RESUME), kept to be replayed after a reconnect.
 * Offsets are absolute in the direction's byte count; the buffer holds
 * [base, end) in a ring of fixed size, so it never grows: a sender that
 * finds no room stops sending until an ACK frees some.
 */
#ifndef LMIG_RESUME_BUF_H
#define LMIG_RESUME_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* --resume-buffer: bytes a channel a direction, its default and least. */
#define RESUME_BUF_DEFAULT	(4ULL << 20)
/* The least: one frame of the largest block, and the control frames around it. */
#define RESUME_BUF_MIN		(2ULL * 256 * 1024)
/* The most: a source replays through its send buffers (stream_resume_send.c). */
#define RESUME_BUF_MAX		(4ULL << 20)

struct resume_buf {
	uint8_t *ring;
	size_t cap;
	uint64_t base;		/* the oldest byte held: acknowledged up to here */
	uint64_t end;		/* the next byte to be sent */
};

enum rbuf_result {
	RBUF_OK = 0,
	RBUF_FULL,		/* no room: wait for an ACK */
	RBUF_AHEAD,		/* an ack or replay point past what was sent */
	RBUF_LOST,		/* a replay point below what is held */
	RBUF_NOMEM,
};

enum rbuf_result rbuf_init(struct resume_buf *b, size_t cap);
void rbuf_free(struct resume_buf *b);
static inline size_t rbuf_room(const struct resume_buf *b)
{
	return b->cap - (size_t)(b->end - b->base);
}
/* Keep n sent bytes (all or none). */
enum rbuf_result rbuf_put(struct resume_buf *b, const void *p, size_t n);
/* The peer took everything below off; an old ack (below base) is no news. */
enum rbuf_result rbuf_ack(struct resume_buf *b, uint64_t off);
/* The bytes held from off to the end, as 0..2 iovecs into the ring; changes nothing. */
enum rbuf_result rbuf_span(const struct resume_buf *b, uint64_t off, struct iovec iov[2], int *n);
/*
 * What to send again from off: [off, end) as *n iovecs (0..2) into the
 * ring; everything below off is acknowledged by it.
 */
enum rbuf_result rbuf_replay(struct resume_buf *b, uint64_t off, struct iovec iov[2], int *n);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Destination side of the stream transport: the streams.  Blocks wait
 * in their stream's reorder tree until they continue it, then in its
 * output queue for the write to the destination QEMU; written bytes go
 * back to the source as CREDIT.
 */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream_recv.h"
#include "stream/stream_resume.h"
#include "lib/parse.h"

/* What a failure of this side (LMIG_ST_IO) tells an unauthenticated source. */
void stream_io_why(struct stream_receiver *r, const char *why, int err)
{
	if (!r->fail_status) {
		r->fail_why = why;
		r->fail_err = err;
	}
}

struct stream_out *stream_get_stream(struct stream_receiver *r, uint32_t i)
{
	struct stream_out *s;

	if (i >= LMIG_STREAM_MAX)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u is beyond the limit of %u", i,
			    LMIG_STREAM_MAX), NULL;
	if (r->o->to.kind == SEP_STDIO && i > 0)
		return fail(r, LMIG_ST_PROTOCOL,
			    "the source has more than one stream; 'lmig pipe recv' writes one (use 'lmig proxy recv')"),
		       NULL;
	if (r->nstreams >= 0 && i >= r->nstreams)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u after the source said it had %lld", i,
			    (long long)r->nstreams), NULL;
	s = r->s[i];
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return fail(r, LMIG_ST_IO, "out of memory"), NULL;
		s->fd = -1;
		XXH3_128bits_reset(&s->dig);
		r->s[i] = s;
		r->st->streams++;
	}
	s->seen = true;
	return s;
}

void stream_send_reply(struct stream_receiver *r, unsigned int type, unsigned int status,
		       uint32_t stream, uint64_t bytes, const char *reason, int timeout_ms)
{
	struct lmig_sreply rep;

	sreply_build(&rep, type, status, stream, bytes, reason);
	if (r->rv) {
		if (!stream_resume_rx_send(r, &rep, sizeof(rep)))
			r->st->bytes_wire += sizeof(rep);
		return;
	}
	/* Replies are small and rare: the socket's buffer always has room. */
	if (!chan_write_full(r->link[0].fd, &r->link[0].tls, &rep, sizeof(rep), timeout_ms,
			     "replying to the source"))
		r->st->bytes_wire += sizeof(rep);
}

/* ---- output ------------------------------------------------------------ */

void stream_submit_write(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];
	struct io_uring_sqe *sqe;
	unsigned int n = 0;

	if (!s->opened || s->writing || !s->outq || s->closed)
		return;
	for (struct blk *b = s->outq; b && n < WIOV; b = b->next, n++)
		s->iov[n] = (struct iovec){ b->data, b->len };
	s->iov[0].iov_base = (uint8_t *)s->iov[0].iov_base + s->out_pos;
	s->iov[0].iov_len -= s->out_pos;
	sqe = uring_get_sqe(&r->ring);
	io_uring_prep_writev(sqe, s->fd, s->iov, n, -1);
	io_uring_sqe_set_data64(sqe, UD(UD_WRITE, i, 0));
	s->writing = true;
}

/* End a stream's destination cleanly once it is whole, verified and written. */
static bool maybe_close(struct stream_receiver *r, struct stream_out *s)
{
	if (s->closed || !s->verified || !s->opened || s->written != s->end_len)
		return false;
	s->closed = true;
	if (r->o->to.kind == SEP_STDIO) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* Keep fd 1 taken, so nothing else lands on it. */
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			close(null);
		} else {
			close(STDOUT_FILENO);
		}
	} else {
		shutdown(s->fd, SHUT_WR);
		/* Both ways: the destination's half stays open until it ends it. */
		if (s->ret && !s->rend_sent)
			return true;
		close(s->fd);
	}
	s->fd = -1;
	return true;
}

/* ---- held blocks ------------------------------------------------------- */

/*
 * Blocks never overlap in a tree, so "overlaps" is "equal": tsearch()
 * finds the block a new one would overlap, and tfind() of the one byte
 * next_off finds the block that starts there (none lies below it).
 */
int stream_blk_cmp(const void *a, const void *b)
{
	const struct blk *x = a, *y = b;

	if (x->off + x->len <= y->off)
		return -1;
	if (y->off + y->len <= x->off)
		return 1;
	return 0;
}

static uint64_t blk_cost(const struct blk *b)
{
	return b->len + BLK_COST;
}

/* Charge a block to its stream and the total, or fail if either would go over. */
int stream_hold(struct stream_receiver *r, unsigned int i, struct stream_out *s,
		const struct blk *b)
{
	uint64_t c = blk_cost(b), max = r->o->max_pending;
	char a[32], l[32];

	if (s->held + c > STREAM_HELD_MAX)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u: the source made this side hold %s of blocks not yet written, over the per-stream limit of %s",
			    i, fmt_bytes(a, sizeof(a), (double)(s->held + c)),
			    fmt_bytes(l, sizeof(l), (double)STREAM_HELD_MAX));
	if (r->held + c > max)
		return fail(r, LMIG_ST_PROTOCOL, "the source made this side hold %s of blocks not yet written, over --max-pending %s",
			    fmt_bytes(a, sizeof(a), (double)(r->held + c)),
			    fmt_bytes(l, sizeof(l), (double)max));
	s->held += c;
	r->held += c;
	return 0;
}

void stream_unhold(struct stream_receiver *r, struct stream_out *s, const struct blk *b)
{
	s->held -= blk_cost(b);
	r->held -= blk_cost(b);
}

int stream_write_done(struct stream_receiver *r, unsigned int i, int res)
{
	struct stream_out *s = r->s[i];

	s->writing = false;
	if (res < 0) {
		stream_io_why(r, "the receiver cannot write to its destination", -res);
		return fail(r, LMIG_ST_IO, "stream %u: writing to %s: %s", i,
			    r->o->to.kind == SEP_STDIO ? "stdout" : "the destination", strerror(-res));
	}
	if (res == 0) {
		stream_io_why(r, "the receiver's destination takes no more data", 0);
		return fail(r, LMIG_ST_IO, "stream %u: the destination takes no more data", i);
	}
	s->written += res;
	r->st->bytes_stream += res;
	r->t_progress = now_s();
	res += s->out_pos;
	while (s->outq && (size_t)res >= s->outq->len) {
		struct blk *b = s->outq;

		res -= b->len;
		s->outq = b->next;
		stream_unhold(r, s, b);
		free(b);
	}
	if (!s->outq)
		s->outq_tail = NULL;
	s->out_pos = res;
	if (maybe_close(r, s))
		return 0;
	/*
	 * Every CREDIT_STEP (LMIG_STREAM_FINE_STEP when the source asked:
	 * it may keep little in flight), and each half second of slower
	 * progress: the source's stall clock.
	 */
	if (s->written - s->credited >= (r->fine_credit ? LMIG_STREAM_FINE_STEP : CREDIT_STEP) ||
	    r->t_progress - s->t_credit >= 0.5) {
		stream_send_reply(r, LMIG_SR_CREDIT, 0, i, s->written, NULL, 5000);
		s->credited = s->written;
		s->t_credit = r->t_progress;
	}
	return 0;
}

/* Move what continues the stream to its output; check the digest at the end. */
int stream_deliver(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];

	for (;;) {
		struct blk key = { .off = s->next_off, .len = 1 }, **at, *b;

		at = s->pend ? tfind(&key, &s->pend, stream_blk_cmp) : NULL;
		if (!at)
			break;
		b = *at;
		tdelete(b, &s->pend, stream_blk_cmp);
		XXH3_128bits_update(&s->dig, b->data, b->len);
		s->next_off += b->len;
		b->next = NULL;
		if (s->outq_tail)
			s->outq_tail->next = b;
		else
			s->outq = b;
		s->outq_tail = b;
	}
	if (s->end_seen && s->next_off == s->end_len && !s->verified) {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&s->dig));
		if (memcmp(c.digest, s->end_digest, 16))
			return fail(r, LMIG_ST_DIGEST, "stream %u: digest mismatch: the bytes differ from the source's",
				    i);
		s->verified = true;
	}
	maybe_close(r, s);
	return 0;
}

int stream_open_streams(struct stream_receiver *r)
{
	while (r->opened_upto < LMIG_STREAM_MAX && r->s[r->opened_upto] &&
	       r->s[r->opened_upto]->open_seen) {
		struct stream_out *s = r->s[r->opened_upto];

		if (r->o->to.kind == SEP_STDIO) {
			s->fd = STDOUT_FILENO;
			fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
		} else {
			s->fd = sendpoint_connect(&r->o->to, r->o->timeout_ms);
			if (s->fd < 0) {
				/* The error names the socket: the source hears errno only. */
				stream_io_why(r, "the receiver cannot connect to its destination", errno);
				if (!r->fail_status)
					r->fail_status = LMIG_ST_IO;
				return -1;
			}
		}
		s->opened = true;
		if (stream_ret_open(r, r->opened_upto))
			return -1;
		if (!r->t0)
			r->t0 = now_s();
		r->opened_upto++;
	}
	return 0;
}

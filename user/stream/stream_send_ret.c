// SPDX-License-Identifier: GPL-2.0-only
/*
 * Source side of the stream transport: what comes back on channel 0.
 *
 * The destination's replies (CREDIT, the verdict) and, with
 * LMIG_CAP_RETURN, its return frames (RDATA, REND: what the destination
 * QEMU wrote on its connections) share channel 0's receiving direction;
 * each starts with its magic, which says how long its header is.  One
 * receive is in flight on channel 0 at all times, whatever the streams
 * do, so a source QEMU that stops reading its return direction holds up
 * nothing but that direction: its returned blocks wait in the stream's
 * queue, at most LMIG_STREAM_RWINDOW bytes beyond what was written to it,
 * because credit (RCREDIT frames, placed with the other frames) goes back
 * only for bytes written; small frames share blocks (struct rblk), so
 * their count does not multiply that.  A frame beyond that window, out of order, or
 * failing its hash is the destination's error, never held.
 *
 * Each stream has one write of its queued blocks in flight to its QEMU
 * connection.  Once REND came and its digest matched, and every byte is
 * written, the connection's writing half is shut down: the source QEMU
 * reads the end of its return direction as the destination QEMU made it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream_resume.h"
#include "stream/stream_send.h"

int back_init(struct stream_sender *s)
{
	struct back_rx *b = &s->back;

	b->need = sizeof(uint32_t);
	b->buf = malloc(BACK_SIZE);
	if (!b->buf)
		return lmig_err("out of memory");
	if (s->ch[0].link.tls.rmem && !(b->plain = malloc(BACK_PLAIN)))
		return lmig_err("out of memory");
	return 0;
}

void back_free(struct stream_sender *s)
{
	free(s->back.buf);
	free(s->back.plain);
	free(s->back.blk);
	s->back.buf = s->back.plain = NULL;
	s->back.blk = NULL;
}

void back_reset(struct stream_sender *s)
{
	struct back_rx *b = &s->back;

	if (b->in_pay)
		b->seq--;	/* counted when its header came */
	free(b->blk);
	b->blk = NULL;
	b->in_pay = false;
	b->have = 0;
	b->need = sizeof(uint32_t);
	b->pay_have = 0;
}

void back_arm(struct stream_sender *s)
{
	struct io_uring_sqe *sqe;

	if (s->back.armed || s->verdict_in || s->ch[0].broken)
		return;
	sqe = uring_get_sqe(&s->ring);
	io_uring_prep_recv(sqe, s->ch[0].link.fd, s->back.buf, BACK_SIZE, 0);
	io_uring_sqe_set_data64(sqe, UD(UD_REPLY, 0, 0));
	s->back.armed = true;
}

/* A whole reply: a CREDIT, or the verdict. */
static int reply_got(struct stream_sender *s, const struct lmig_sreply *r)
{
	uint32_t i;

	if (!sreply_csum_ok(r))
		return lmig_err("receiver sent a corrupted reply");
	if (le16toh(r->type) == LMIG_SR_VERDICT) {
		char why[LMIG_REASON_LEN];

		/* The receiver's words reach a terminal: printable characters only. */
		wire_printable(why, sizeof(why), r->reason, sizeof(r->reason));
		if (le16toh(r->status) != LMIG_ST_OK)
			return lmig_err("receiver failed: %s",
					why[0] ? why : wire_status_name(le16toh(r->status)));
		/* Success only for what was sent: every stream ended, every channel with DONE. */
		for (unsigned int c = 0; c < s->nch; c++)
			if (!s->input_done || !s->ch[c].done_placed)
				return lmig_err("receiver confirmed the streams before they ended");
		if (le64toh(r->bytes) != s->st->bytes_stream)
			return lmig_err("receiver confirmed %llu bytes, %llu were sent",
					(unsigned long long)le64toh(r->bytes),
					(unsigned long long)s->st->bytes_stream);
		s->verdict_in = true;
		return 0;
	}
	i = le32toh(r->stream);
	if (le16toh(r->type) != LMIG_SR_CREDIT || i >= s->ns || le64toh(r->bytes) > s->s[i]->off)
		return lmig_err("receiver sent an unexpected reply (type %u, stream %u)",
				le16toh(r->type), i);
	if (le64toh(r->bytes) > s->s[i]->acked)
		s->s[i]->acked = le64toh(r->bytes);
	s->t_receiver = now_s();
	return 0;
}

/* A return frame's header: checked against its stream's state before any payload is taken. */
static int rframe_check(struct stream_sender *s, struct back_rx *b)
{
	const struct lmig_sframe *f = &b->fr;
	unsigned int type = le16toh(f->type);
	uint32_t i = le32toh(f->stream), len = le32toh(f->len), raw = le32toh(f->raw_len);
	uint64_t off = le64toh(f->offset);
	struct stream_in *ss;
	bool ok;

	if (!sframe_csum_ok(f))
		return lmig_err("receiver sent a corrupted return frame (%llu)",
				(unsigned long long)b->seq);
	if (type == LMIG_SF_ACK && s->rs)
		return stream_resume_tx_ack(s, f, b->seq);
	if (le64toh(f->seq) != b->seq)
		return lmig_err("receiver sent return frame %llu, expected %llu",
				(unsigned long long)le64toh(f->seq), (unsigned long long)b->seq);
	b->seq++;
	if (type == LMIG_SF_RDATA)
		ok = raw && raw <= LMIG_STREAM_BLOCK_MAX && len == raw;
	else if (type == LMIG_SF_REND)
		ok = len == 16 && !raw && !f->hash;
	else
		ok = false;
	if (!ok || f->flags || f->reserved)
		return lmig_err("receiver sent a malformed return frame (type %u, %u bytes)", type,
				len);
	if (i >= s->ns || !s->s[i]->ret)
		return lmig_err("receiver returned bytes for stream %u, which is not carried both ways",
				i);
	ss = s->s[i];
	if (ss->rend_seen)
		return lmig_err("receiver returned bytes for stream %u after its end", i);
	/* In order, and inside the window: ss->rnext <= rcredited + RWINDOW always holds. */
	if (off != ss->rnext ||
	    (type == LMIG_SF_RDATA && raw > ss->rcredited + LMIG_STREAM_RWINDOW - off))
		return lmig_err("receiver returned stream %u's bytes at %llu+%u, outside what is due (next %llu, window to %llu)",
				i, (unsigned long long)off, raw, (unsigned long long)ss->rnext,
				(unsigned long long)(ss->rcredited + LMIG_STREAM_RWINDOW));
	if (type != LMIG_SF_RDATA) {
		b->to = b->digest;
		return 0;
	}
	/* Behind the last block's bytes, past what a write under way covers. */
	if (ss->rq_tail && ss->rq_tail->cap - ss->rq_tail->len >= raw) {
		b->to = ss->rq_tail->data + ss->rq_tail->len;
		return 0;
	}
	b->blk = malloc(sizeof(*b->blk) + (raw < RBLK_MIN ? RBLK_MIN : raw));
	if (!b->blk)
		return lmig_err("out of memory");
	*b->blk = (struct rblk){ .cap = raw < RBLK_MIN ? RBLK_MIN : raw };
	b->to = b->blk->data;
	return 0;
}

/* A whole return frame: its block queued for QEMU, or its end checked. */
static int rframe_got(struct stream_sender *s, struct back_rx *b)
{
	const struct lmig_sframe *f = &b->fr;
	uint32_t i = le32toh(f->stream), raw = le32toh(f->raw_len);
	struct stream_in *ss = s->s[i];
	struct rblk *k = b->blk;

	s->t_receiver = now_s();
	if (le16toh(f->type) == LMIG_SF_REND) {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&ss->rdig));
		if (memcmp(c.digest, b->digest, 16))
			return lmig_err("stream %u: the returned bytes differ from what the destination's QEMU wrote (digest mismatch)",
					i);
		ss->rend_seen = true;
		return 0;
	}
	if (XXH3_64bits(b->to, raw) != le64toh(f->hash))
		return lmig_err("stream %u: returned block at %llu checksum mismatch (corrupted stream)",
				i, (unsigned long long)ss->rnext);
	XXH3_128bits_update(&ss->rdig, b->to, raw);
	ss->rnext += raw;
	if (!k) {
		ss->rq_tail->len += raw;	/* appended */
		return 0;
	}
	k->len = raw;
	b->blk = NULL;
	if (ss->rq_tail)
		ss->rq_tail->next = k;
	else
		ss->rq = k;
	ss->rq_tail = k;
	return 0;
}

/* Bytes of channel 0, plaintext: messages parsed as they complete. */
static int back_parse(struct stream_sender *s, const uint8_t *p, size_t n)
{
	struct back_rx *b = &s->back;

	while (n && !s->verdict_in) {
		size_t k;

		if (b->in_pay) {
			uint32_t len = le32toh(b->fr.len);

			k = len - b->pay_have < n ? len - b->pay_have : n;
			memcpy(b->to + b->pay_have, p, k);
			b->pay_have += k;
			p += k;
			n -= k;
			if (b->pay_have < len)
				return 0;
			b->in_pay = false;
			b->have = 0;
			b->need = sizeof(uint32_t);
			b->taken += SFRAME + len;
			if (rframe_got(s, b))
				return -1;
			continue;
		}
		k = b->need - b->have < n ? b->need - b->have : n;
		memcpy(b->area + b->have, p, k);
		b->have += k;
		p += k;
		n -= k;
		if (b->have < b->need)
			return 0;
		if (b->need == sizeof(uint32_t)) {
			uint32_t magic = le32toh(b->rep.magic);

			if (magic == LMIG_SREPLY_MAGIC)
				b->need = sizeof(struct lmig_sreply);
			else if (magic == LMIG_SFRAME_MAGIC && (s->ret || s->rs))
				b->need = SFRAME;
			else
				return lmig_err("receiver sent a corrupted reply");
			continue;
		}
		b->have = 0;
		if (b->need == sizeof(struct lmig_sreply)) {
			b->need = sizeof(uint32_t);
			b->taken += sizeof(struct lmig_sreply);
			if (reply_got(s, &b->rep))
				return -1;
			continue;
		}
		if (rframe_check(s, b))
			return -1;
		if (!b->fr.len) {	/* an ACK: whole already */
			b->need = sizeof(uint32_t);
			b->taken += SFRAME;
			continue;
		}
		b->in_pay = true;
		b->pay_have = 0;
	}
	return 0;
}

int back_in(struct stream_sender *s, int res)
{
	struct back_rx *b = &s->back;
	const uint8_t *in = b->buf;
	ssize_t n;

	b->armed = false;
	if (res <= 0 && s->rs && !s->verdict_in)
		return stream_resume_tx_broken(s, 0);
	if (res == 0 || res == -ECONNRESET)
		return lmig_err("receiver closed the connection before confirming the streams");
	if (res < 0)
		return lmig_err_errno(-res, "channel 0: waiting for the receiver");
	s->st->bytes_wire += res;
	if (!b->plain) {
		if (back_parse(s, in, res))
			return -1;
	} else {
		/* Userspace TLS: open what the chunk completes, parse it piece by piece. */
		for (; (n = chan_open(&s->ch[0].link, in, res, b->plain, BACK_PLAIN)); in = NULL)
			if (n < 0 || back_parse(s, b->plain, n))
				return -1;
	}
	back_arm(s);
	return 0;
}

/* ---- the return direction written to QEMU -------------------------------- */

void ret_submit_writes(struct stream_sender *s)
{
	for (unsigned int i = 0; i < s->ns; i++) {
		struct stream_in *ss = s->s[i];
		struct io_uring_sqe *sqe;
		unsigned int n = 0;

		if (!ss->ret || ss->rwriting || ss->rshut)
			continue;
		if (!ss->rq) {
			if (ss->rend_seen) {
				/* As the destination's QEMU did: it may have closed already. */
				shutdown(ss->fd, SHUT_WR);
				ss->rshut = true;
			}
			continue;
		}
		for (struct rblk *k = ss->rq; k && n < RIOV; k = k->next, n++)
			ss->riov[n] = (struct iovec){ k->data, k->len };
		ss->riov[0].iov_base = (uint8_t *)ss->riov[0].iov_base + ss->rq_pos;
		ss->riov[0].iov_len -= ss->rq_pos;
		sqe = uring_get_sqe(&s->ring);
		io_uring_prep_writev(sqe, ss->fd, ss->riov, n, 0);
		io_uring_sqe_set_data64(sqe, UD(UD_WRITE, i, 0));
		ss->rwriting = true;
	}
}

int ret_write_done(struct stream_sender *s, unsigned int i, int res)
{
	struct stream_in *ss = s->s[i];

	ss->rwriting = false;
	if (res < 0)
		return lmig_err_errno(-res, "connection %u: writing what its peer sent back", i);
	if (res == 0)
		return lmig_err("connection %u: takes nothing of what its peer sent back", i);
	ss->rwritten += res;
	s->st->bytes_return += res;
	res += ss->rq_pos;
	while (ss->rq && (size_t)res >= ss->rq->len) {
		struct rblk *k = ss->rq;

		res -= k->len;
		ss->rq = k->next;
		free(k);
	}
	if (!ss->rq)
		ss->rq_tail = NULL;
	ss->rq_pos = res;
	return 0;
}

/* Credit every RCREDIT_STEP written: the destination sends up to a window beyond it. */
void ret_place_credits(struct stream_sender *s)
{
	for (unsigned int i = 0; i < s->ns; i++) {
		struct stream_in *ss = s->s[i];
		uint8_t *at;
		int c;

		if (!ss->ret || ss->rend_seen || ss->rwritten - ss->rcredited < RCREDIT_STEP)
			continue;
		c = stream_pick_channel(s, SFRAME, &at);
		if (c < 0)
			return;
		sframe_build((struct lmig_sframe *)at, LMIG_SF_RCREDIT, 0, i, 0, s->ch[c].seq,
			     ss->rwritten, 0, 0);
		stream_commit(&s->ch[c], SFRAME);
		ss->rcredited = ss->rwritten;
	}
}

bool ret_all_shut(const struct stream_sender *s)
{
	for (unsigned int i = 0; i < s->ns; i++)
		if (s->s[i]->ret && !s->s[i]->rshut)
			return false;
	return true;
}

void ret_free(struct stream_in *ss)
{
	for (struct rblk *k = ss->rq, *nk; k; k = nk) {
		nk = k->next;
		free(k);
	}
	ss->rq = ss->rq_tail = NULL;
}

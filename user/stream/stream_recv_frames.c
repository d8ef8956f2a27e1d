// SPDX-License-Identifier: GPL-2.0-only
/*
 * Destination side of the stream transport: a channel's frames, parsed
 * as they come in whatever pieces TCP cut them; each block checked and
 * decoded, then handed to its stream (stream_recv_out.c).
 */
#include <lz4.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream_recv.h"
#include "stream/stream_resume.h"

/* ---- frames ------------------------------------------------------------ */

static int check_header(struct stream_receiver *r, unsigned int c, struct stream_rx_chan *ch)
{
	const struct lmig_sframe *f = &ch->fr;
	unsigned int type = le16toh(f->type), flags = le16toh(f->flags);
	uint32_t len = le32toh(f->len), raw = le32toh(f->raw_len);
	bool ok;

	if (le32toh(f->magic) != LMIG_SFRAME_MAGIC)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: bad frame magic 0x%08x (corrupted stream)",
			    c, le32toh(f->magic));
	if (!sframe_csum_ok(f))
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: frame %llu checksum mismatch (corrupted stream)",
			    c, (unsigned long long)ch->seq);
	if (le64toh(f->seq) != ch->seq)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: frame %llu arrived, expected %llu", c,
			    (unsigned long long)le64toh(f->seq), (unsigned long long)ch->seq);
	switch (type) {
	case LMIG_SF_DATA:
		ok = raw && raw <= LMIG_STREAM_BLOCK_MAX && !(flags & ~LMIG_SF_LZ4) &&
		     ((flags & LMIG_SF_LZ4) ? len && len < raw : len == raw);
		break;
	case LMIG_SF_END:
		ok = !flags && len == 16 && !raw && !f->hash;
		break;
	case LMIG_SF_ACK:
		if (!r->rv)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: an acknowledgement, but the session does not resume",
				    c);
		/* fall through */
	case LMIG_SF_OPEN:
	case LMIG_SF_DONE:
	case LMIG_SF_RCREDIT:
		ok = !flags && !len && !raw && !f->hash;
		break;
	default:
		ok = false;
	}
	if (!ok || f->reserved)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: malformed frame (type %u, flags 0x%x, %u bytes; corrupted stream)",
			    c, type, flags, len);
	return 0;
}

static int data_frame(struct stream_receiver *r, unsigned int c, struct stream_rx_chan *ch)
{
	const struct lmig_sframe *f = &ch->fr;
	uint32_t i = le32toh(f->stream), raw = le32toh(f->raw_len), len = le32toh(f->len);
	uint64_t off = le64toh(f->offset);
	struct stream_out *s = stream_get_stream(r, i);
	struct blk *b = ch->blk;
	uint64_t lim;
	void **at;

	ch->blk = NULL;
	if (!(le16toh(f->flags) & LMIG_SF_LZ4))
		ch->pay = NULL;		/* the block's own data, now b's */
	if (!s) {
		free(b);
		return -1;
	}
	/* The window's end, or the stream's; off + raw is never computed before this. */
	lim = s->written + LMIG_STREAM_WINDOW;
	if (s->end_seen && s->end_len < lim)
		lim = s->end_len;
	if (off < s->next_off || off > lim || raw > lim - off)
		return free(b), fail(r, LMIG_ST_PROTOCOL, "stream %u: block at %llu+%u is outside what is due (next %llu, window to %llu)",
			    i, (unsigned long long)off, raw, (unsigned long long)s->next_off,
			    (unsigned long long)lim);
	b->off = off;
	b->len = raw;
	if (le16toh(f->flags) & LMIG_SF_LZ4) {
		if (LZ4_decompress_safe((const char *)ch->pay, (char *)b->data, (int)len, (int)raw) != (int)raw) {
			free(b);
			return fail(r, LMIG_ST_CHECKSUM, "stream %u: block at %llu does not decompress (corrupted stream)",
				    i, (unsigned long long)off);
		}
		r->st->blocks_lz4++;
	}
	if (XXH3_64bits(b->data, raw) != le64toh(f->hash)) {
		free(b);
		return fail(r, LMIG_ST_CHECKSUM, "stream %u: block at %llu checksum mismatch (corrupted stream)",
			    i, (unsigned long long)off);
	}
	r->st->blocks++;
	if (stream_hold(r, i, s, b))
		return free(b), -1;
	at = tsearch(b, &s->pend, stream_blk_cmp);
	if (!at || *at != b) {
		stream_unhold(r, s, b);
		free(b);
		return at ? fail(r, LMIG_ST_PROTOCOL, "stream %u: block at %llu overlaps another", i,
				 (unsigned long long)off) :
			    fail(r, LMIG_ST_IO, "out of memory");
	}
	if (off + raw > s->pend_hi)
		s->pend_hi = off + raw;
	if (stream_deliver(r, i))
		return -1;
	stream_submit_write(r, i);
	return 0;
}

static int frame_done(struct stream_receiver *r, unsigned int c, struct stream_rx_chan *ch)
{
	const struct lmig_sframe *f = &ch->fr;
	uint32_t i = le32toh(f->stream);
	struct stream_out *s;
	int ret = 0;

	ch->seq++;
	ch->taken += SFRAME + le32toh(f->len);
	if (!r->t_progress)
		r->t_progress = now_s();
	switch (le16toh(f->type)) {
	case LMIG_SF_DATA:
		ret = data_frame(r, c, ch);
		break;
	case LMIG_SF_OPEN:
		if (!(s = stream_get_stream(r, i)))
			return -1;
		if (s->open_seen)
			return fail(r, LMIG_ST_PROTOCOL, "stream %u opened twice", i);
		s->open_seen = true;
		ret = stream_open_streams(r);
		for (unsigned int k = 0; k < r->opened_upto && !ret; k++) {
			ret = stream_deliver(r, k);
			stream_submit_write(r, k);
		}
		break;
	case LMIG_SF_END:
		if (!(s = stream_get_stream(r, i)))
			return -1;
		if (s->end_seen || le64toh(f->offset) < s->pend_hi)
			return fail(r, LMIG_ST_PROTOCOL, "stream %u: unexpected end at %llu", i,
				    (unsigned long long)le64toh(f->offset));
		s->end_seen = true;
		s->end_len = le64toh(f->offset);
		memcpy(s->end_digest, ch->pay, 16);
		ret = stream_deliver(r, i);
		break;
	case LMIG_SF_RCREDIT:
		ret = stream_ret_credit(r, f);
		break;
	case LMIG_SF_ACK:
		ret = stream_resume_rx_ack(r, f);
		break;
	case LMIG_SF_DONE:
		if (le64toh(f->offset) != ch->seq - 1)
			return fail(r, LMIG_ST_INCOMPLETE, "channel %u: source sent %llu frames, %llu arrived",
				    c, (unsigned long long)le64toh(f->offset),
				    (unsigned long long)ch->seq - 1);
		if (r->o->to.kind == SEP_STDIO && i != 1)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: the source says it had %u streams; 'lmig pipe recv' writes exactly one",
				    c, i);
		if (i > LMIG_STREAM_MAX)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: the source says it had %u streams, more than the limit of %u",
				    c, i, LMIG_STREAM_MAX);
		if (r->nstreams >= 0 && r->nstreams != i)
			return fail(r, LMIG_ST_PROTOCOL, "channels disagree on the number of streams");
		r->nstreams = i;
		for (unsigned int k = i; k < LMIG_STREAM_MAX; k++)
			if (r->s[k])
				return fail(r, LMIG_ST_PROTOCOL, "stream %u after the source said it had %u", k, i);
		ch->ps = PS_DONE;
		r->done_chans++;
		break;
	}
	if (ch->blk && ch->pay == ch->blk->data)
		ch->pay = NULL;		/* it was the block's own data */
	free(ch->blk);
	ch->blk = NULL;
	free(ch->pay);
	ch->pay = NULL;
	return ret;
}

/* Parse one received chunk; everything is copied out, so the buffer is free after. */
int stream_parse(struct stream_receiver *r, unsigned int c, const uint8_t *p, size_t n)
{
	struct stream_rx_chan *ch = &r->ch[c];

	while (n) {
		size_t k;

		if (ch->ps == PS_DONE)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: data after its last frame", c);
		if (ch->ps == PS_HDR) {
			k = SFRAME - ch->have < n ? SFRAME - ch->have : n;
			memcpy(ch->area + ch->have, p, k);
			ch->have += k;
			p += k;
			n -= k;
			if (ch->have < SFRAME)
				return 0;
			ch->have = 0;
			if (check_header(r, c, ch))
				return -1;
			if (!ch->fr.len) {
				if (frame_done(r, c, ch))
					return -1;
				continue;
			}
			/* Raw block data goes straight into its block; lz4 data into a bounce. */
			if (le16toh(ch->fr.type) == LMIG_SF_DATA) {
				ch->blk = malloc(sizeof(struct blk) + le32toh(ch->fr.raw_len));
				if (!ch->blk)
					return fail(r, LMIG_ST_IO, "out of memory");
			}
			ch->pay = ch->blk && !(le16toh(ch->fr.flags) & LMIG_SF_LZ4) ? ch->blk->data :
				  malloc(le32toh(ch->fr.len));
			if (!ch->pay)
				return fail(r, LMIG_ST_IO, "out of memory");
			ch->pay_have = 0;
			ch->ps = PS_PAY;
			continue;
		}
		k = le32toh(ch->fr.len) - ch->pay_have;
		if (k > n)
			k = n;
		memcpy(ch->pay + ch->pay_have, p, k);
		ch->pay_have += k;
		p += k;
		n -= k;
		if (ch->pay_have < le32toh(ch->fr.len))
			return 0;
		ch->ps = PS_HDR;
		if (frame_done(r, c, ch))
			return -1;
	}
	return 0;
}

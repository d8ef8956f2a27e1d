// SPDX-License-Identifier: GPL-2.0-only
/*
 * Receiver engine: a channel's frames, parsed as they come in whatever
 * pieces TCP cut them: headers and descriptors checked, pages checked and
 * handed to the writes (lz4 and zstd pages to the decode workers), the ROUND
 * barrier and the END frame.
 */
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/codec.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image_recv.h"
#include "chan/wire.h"

/* ---- parser ----------------------------------------------------------- */

static int check_frame_header(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	const struct lmig_frame *f = &ch->fr;
	uint32_t type = le16toh(f->type), nd = le32toh(f->ndesc), pl = le32toh(f->payload_len);

	if (le32toh(f->magic) != LMIG_FRAME_MAGIC)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: bad frame magic 0x%08x (corrupted stream)",
			    c, le32toh(f->magic));
	if (type == LMIG_FRAME_BATCH && nd <= LMIG_MAX_FRAME_DESC && pl <= LMIG_MAX_PAYLOAD)
		return 0;
	if (type == LMIG_FRAME_END && nd == 0 && pl == sizeof(struct lmig_end))
		return 0;
	if (type == LMIG_FRAME_ROUND && r->live && nd == 0 && pl == sizeof(struct lmig_round))
		return 0;
	return fail(r, LMIG_ST_PROTOCOL,
		    "channel %u: malformed frame (type %u, %u descriptors, %u bytes; corrupted stream)",
		    c, type, nd, pl);
}

/* After the checksum matched: a frame out of sequence is lost or replayed. */
static int check_seq(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	if (le64toh(ch->fr.seq) != ch->seq)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: frame %llu arrived, expected %llu",
			    c, (unsigned long long)le64toh(ch->fr.seq), (unsigned long long)ch->seq);
	return 0;
}

static int check_descs(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	const struct lmig_page_desc *d = (const void *)(ch->area + sizeof(struct lmig_frame));
	unsigned int nd = le32toh(ch->fr.ndesc);
	uint64_t sum = 0;

	if (le64toh(ch->fr.checksum) != wire_frame_checksum(&ch->fr, d, nd))
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: frame %llu checksum mismatch (corrupted stream)",
			    c, (unsigned long long)ch->seq);
	if (check_seq(r, c, ch))
		return -1;
	for (unsigned int i = 0; i < nd; i++) {
		uint64_t idx = le64toh(d[i].index), n = 1;
		uint32_t enc = le16toh(d[i].enc), len = le32toh(d[i].len);

		if (enc == LMIG_ENC_ZERO)
			n = len;
		else if (enc == LMIG_ENC_RAW && len == LMIG_PAGE_SIZE)
			sum += len;
		else if ((enc == LMIG_ENC_LZ4 || (enc == LMIG_ENC_ZSTD && r->zstd)) &&
			 len && len < LMIG_PAGE_SIZE)
			sum += len;
		else
			return fail(r, LMIG_ST_PROTOCOL,
				    "channel %u: bad page descriptor for page %llu (encoding %u, length %u)",
				    c, (unsigned long long)idx, enc, len);
		if (!n || idx >= r->npages || n > r->npages - idx)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: page %llu+%llu is outside the %llu-page image",
				    c, (unsigned long long)idx, (unsigned long long)n,
				    (unsigned long long)r->npages);
		for (uint64_t p = idx; p < idx + n; p++) {
			if (r->seen[p] == r->round + 1)
				return fail(r, LMIG_ST_INCOMPLETE, "page %llu received twice%s",
					    (unsigned long long)p, r->live ? " in one round" : "");
			r->seen[p] = r->round + 1;
		}
		ch->pages += n;
	}
	if (sum != le32toh(ch->fr.payload_len))
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: descriptors cover %llu bytes, frame carries %u",
			    c, (unsigned long long)sum, le32toh(ch->fr.payload_len));
	return 0;
}

static const struct lmig_page_desc *cur_desc(struct image_rx_chan *ch)
{
	return (const struct lmig_page_desc *)(ch->area + sizeof(struct lmig_frame)) + ch->di;
}

/*
 * Apply zero descriptors from di on, up to the next page with data.  In
 * round 0 the output is a freshly sized (sparse) file and no page comes
 * twice in a round: it already reads as zeros there.  In a later round
 * the page may hold an earlier round's data, so it is zeroed (punched)
 * like any other write (and in every round of an output written in
 * place, which holds whatever was there before), and like them completes before the round
 * barrier lets the next round in.  Returns 1 when a write slot is
 * missing (di stays on the zero descriptor: retried by image_parse()).
 */
static int apply_zero_descs(struct image_receiver *r, struct image_rx_chan *ch)
{
	unsigned int nd = le32toh(ch->fr.ndesc);

	while (ch->di < nd && le16toh(cur_desc(ch)->enc) == LMIG_ENC_ZERO) {
		const struct lmig_page_desc *d = cur_desc(ch);
		uint64_t idx = le64toh(d->index), n = le32toh(d->len);

		if (r->round || r->o->in_place) {
			if (r->wop_free < 0)
				return 1;
			image_add_zero(r, idx, n);
		}
		/* What the output holds there now, as for a page with data. */
		for (uint64_t p = idx; p < idx + n; p++)
			r->hashes[p] = codec_zero_hash();
		r->st->pages_zero += n;
		r->pages_done += n;
		ch->di++;
	}
	return 0;
}

static int frame_done(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch);

/*
 * After a page: on to the frame's next page with data, applying the zero
 * runs on the way; the frame is done when none is left.  Returns 1 when
 * it has to wait for a write slot, -1 on a stream error.
 */
static int next_page(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	if (apply_zero_descs(r, ch))
		return 1;
	if (ch->di == le32toh(ch->fr.ndesc))
		return frame_done(r, c, ch);
	return 0;
}

void image_start_frame(struct image_rx_chan *ch)
{
	ch->ps = PS_HDR;
	ch->have = 0;
	ch->need = sizeof(struct lmig_frame);
}

/* A page check's verdict as the stream error it is. */
static int page_fail(struct image_receiver *r, unsigned int c, uint64_t pg, enum page_verdict v)
{
	if (v == PAGE_BAD_DECODE)
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: page %llu does not decompress (corrupted stream)",
			    c, (unsigned long long)pg);
	if (v == PAGE_BAD_HASH)
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: page %llu checksum mismatch (corrupted stream)",
			    c, (unsigned long long)pg);
	return fail(r, LMIG_ST_PROTOCOL, "channel %u: page %llu has data past the end of the image",
		    c, (unsigned long long)pg);
}

/*
 * An lz4 or zstd page goes to a decode worker: it joins the channel's write run
 * now (its pool page is where the decoded bytes will be), and the run is
 * submitted once every page in it came back checked (decode_done()).
 */
static void queue_decode(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch,
			 uint64_t pg, const uint8_t *p, struct ref ref)
{
	const struct lmig_page_desc *d = cur_desc(ch);
	int dec = image_pool_get(r);
	struct decode_job j = {
		.src = p, .dst = image_pool_page(r, dec), .len = le32toh(d->len), .tag = (uint32_t)dec,
		.zstd = le16toh(d->enc) == LMIG_ENC_ZSTD, .keep = image_page_len(r, pg),
		.want = le64toh(d->hash),
	};

	image_add_write(r, ch, pg, image_pool_page(r, dec), (struct ref){ REF_POOL, (uint32_t)dec });
	r->wops[ch->wop].decoding++;
	r->decp[dec] = (struct dec_page){ .pg = pg, .src = ref, .wop = ch->wop, .chan = (uint16_t)c };
	r->decodes_inflight++;
	decoder_push(r->dec, &j);
}

/* A page came back from a decode worker. */
static int decode_done(struct image_receiver *r, const struct decode_job *j)
{
	struct dec_page *dp = &r->decp[j->tag];
	struct wop *op = &r->wops[dp->wop];

	r->decodes_inflight--;
	image_ref_put(r, dp->src);	/* the compressed bytes are no longer needed */
	if (j->verdict != PAGE_OK)
		return page_fail(r, dp->chan, dp->pg, j->verdict);
	/* As in take_page(): these are the bytes the run's write stores. */
	r->hashes[dp->pg] = j->want;
	if (!--op->decoding && op->closed)
		image_wop_submit(r, dp->wop);
	return 0;
}

int image_reap_decodes(struct image_receiver *r)
{
	struct decode_job done[64];
	unsigned int n;

	while ((n = decoder_reap(r->dec, done, 64)))
		for (unsigned int i = 0; i < n; i++)
			if (decode_done(r, &done[i]))
				return -1;
	return 0;
}

/*
 * One complete page's bytes are at p (in a receive buffer, or a pool page).
 * Returns 0 when the page was taken (with the reference), 1 when a pool
 * page or write slot is missing (nothing changed: retry later), -1 on error.
 */
static int take_page(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch,
		     const uint8_t *p, struct ref ref)
{
	const struct lmig_page_desc *d = cur_desc(ch);
	uint64_t pg = le64toh(d->index), want = le64toh(d->hash);
	uint16_t enc = le16toh(d->enc);
	/* lz4 or zstd: decoded into a pool page */
	bool packed = enc == LMIG_ENC_LZ4 || enc == LMIG_ENC_ZSTD;
	const uint8_t *page = p;
	enum page_verdict v;
	int dec = -1;

	if (image_write_blocked(r, ch, pg) || (packed && !r->npool_free))
		return 1;
	if (packed && r->dec) {
		queue_decode(r, c, ch, pg, p, ref);
		r->st->pages_compressed++;
		r->st->pages_zstd += enc == LMIG_ENC_ZSTD;
		r->pages_done++;
		ch->di++;
		return 0;
	}
	if (packed) {
		struct decode_job j = { .src = p, .len = le32toh(d->len), .zstd = enc == LMIG_ENC_ZSTD,
					.keep = image_page_len(r, pg), .want = want };

		dec = image_pool_get(r);
		page = j.dst = image_pool_page(r, dec);
		decode_job_run(&j);
		v = j.verdict;
	} else {
		v = page_check(page, image_page_len(r, pg), want);
	}
	if (v != PAGE_OK)
		return page_fail(r, c, pg, v);
	/*
	 * The bytes just hashed are the bytes the write below stores (the
	 * buffer is held until the write completed): the table records what
	 * the output holds, and the digest is computed from it.
	 */
	r->hashes[pg] = want;
	if (packed) {
		image_ref_put(r, ref);	/* the compressed bytes are no longer needed */
		ref = (struct ref){ -1, (uint32_t)dec };
		r->st->pages_compressed++;
		r->st->pages_zstd += enc == LMIG_ENC_ZSTD;
	} else {
		r->st->pages_raw++;
	}
	image_add_write(r, ch, pg, page, ref);
	r->pages_done++;
	ch->di++;
	return 0;
}

static int round_done(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	struct lmig_round rd;

	memcpy(&rd, ch->area + sizeof(struct lmig_frame), sizeof(rd));
	if (le64toh(rd.round) != r->round || rd.reserved)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: end of round %llu arrived in round %u",
			    c, (unsigned long long)le64toh(rd.round), r->round);
	if (le64toh(rd.pages) != ch->pages || le64toh(rd.frames) != ch->frames)
		return fail(r, LMIG_ST_INCOMPLETE,
			    "channel %u: round %u: sender sent %llu pages in %llu frames, %llu in %llu arrived",
			    c, r->round, (unsigned long long)le64toh(rd.pages),
			    (unsigned long long)le64toh(rd.frames), (unsigned long long)ch->pages,
			    (unsigned long long)ch->frames);
	ch->ps = PS_BARRIER;
	r->at_barrier++;
	return 0;
}

/*
 * Every channel reached the end of the round and its writes are done:
 * the next round's pages may now overwrite this round's.
 */
int image_next_round(struct image_receiver *r)
{
	struct lmig_result ack;

	if (r->ended)
		return fail(r, LMIG_ST_PROTOCOL, "channels disagree on the number of rounds");
	wire_round_ack_build(&ack, r->round);
	if (chan_write_full(r->link[0].fd, &r->link[0].tls, &ack, sizeof(ack), r->o->timeout_ms,
			    "acknowledging a round"))
		return -1;
	for (unsigned int c = 0; c < r->nch; c++)
		image_start_frame(&r->ch[c]);
	r->at_barrier = 0;
	r->round++;
	r->st->rounds = r->round + 1;
	return 0;
}

static int frame_done(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	ch->seq++;
	if (ch->ps == PS_ROUNDPAY)
		return round_done(r, c, ch);
	if (ch->ps == PS_ENDPAY) {
		memcpy(&ch->end, ch->area + sizeof(struct lmig_frame), sizeof(ch->end));
		if (le64toh(ch->end.pages) != ch->pages || le64toh(ch->end.frames) != ch->frames)
			return fail(r, LMIG_ST_INCOMPLETE,
				    "channel %u: sender sent %llu pages in %llu frames, %llu in %llu arrived",
				    c, (unsigned long long)le64toh(ch->end.pages),
				    (unsigned long long)le64toh(ch->end.frames),
				    (unsigned long long)ch->pages, (unsigned long long)ch->frames);
		ch->ps = PS_DONE;
		r->ended++;
		return 0;
	}
	ch->frames++;
	image_start_frame(ch);
	return 0;
}

/* A frame header is complete: what comes after it, descriptors or a payload. */
static int header_done(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch)
{
	uint16_t type;

	if (check_frame_header(r, c, ch))
		return -1;
	type = le16toh(ch->fr.type);
	if (type == LMIG_FRAME_END || type == LMIG_FRAME_ROUND) {
		if (le64toh(ch->fr.checksum) != wire_frame_checksum(&ch->fr, NULL, 0))
			return fail(r, LMIG_ST_CHECKSUM,
				    "channel %u: %s frame checksum mismatch (corrupted stream)",
				    c, type == LMIG_FRAME_END ? "end" : "round");
		if (check_seq(r, c, ch))
			return -1;
		ch->ps = type == LMIG_FRAME_END ? PS_ENDPAY : PS_ROUNDPAY;
		ch->need += le32toh(ch->fr.payload_len);
		return 0;
	}
	ch->ps = PS_DESC;
	ch->need += le32toh(ch->fr.ndesc) * sizeof(struct lmig_page_desc);
	return 0;
}

/*
 * A header, its descriptors, or an END/ROUND payload: up to avail bytes
 * from p into the channel's area, and on once it is complete.  Returns 0
 * to go on, 1 to wait for a write slot, -1 on a stream error.
 */
static int take_meta(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch,
		     struct chunk *k, const uint8_t *p, size_t avail)
{
	size_t n = ch->need - ch->have;

	if (n > avail)
		n = avail;
	memcpy(ch->area + ch->have, p, n);
	ch->have += n;
	k->pos += n;
	if (ch->have < ch->need)
		return 0;
	if (ch->ps == PS_HDR) {
		if (header_done(r, c, ch))
			return -1;
		if (ch->have < ch->need)
			return 0;
	}
	if (ch->ps == PS_ENDPAY || ch->ps == PS_ROUNDPAY)
		return frame_done(r, c, ch);
	/* The descriptors are complete. */
	if (check_descs(r, c, ch))
		return -1;
	ch->di = 0;
	ch->ps = PS_PAGE;
	ch->bounce = -1;
	return next_page(r, c, ch);
}

/*
 * The bytes of descriptor di: used in place when the chunk holds them
 * all, else gathered in a bounce page.  Returns 0 to go on, 1 to wait for
 * a pool page or a write slot, -1 on a stream error.
 */
static int take_bytes(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch,
		      struct chunk *k, const uint8_t *p, size_t avail)
{
	size_t len = le32toh(cur_desc(ch)->len), n;
	int rc;

	if (ch->bounce < 0 && avail >= len) {
		ch->refs[k->bid]++;
		rc = take_page(r, c, ch, p, (struct ref){ (int32_t)c, k->bid });
		if (rc > 0)
			ch->refs[k->bid]--;
		if (rc)
			return rc;
		k->pos += len;
		return next_page(r, c, ch);
	}
	if (ch->bounce < 0) {
		ch->bounce = image_pool_get(r);
		ch->bounce_have = 0;
		if (ch->bounce < 0)
			return 1;
	}
	n = len - ch->bounce_have;
	if (n > avail)
		n = avail;
	memcpy(image_pool_page(r, ch->bounce) + ch->bounce_have, p, n);
	ch->bounce_have += n;
	k->pos += n;
	if (ch->bounce_have < len)
		return 0;
	rc = take_page(r, c, ch, image_pool_page(r, ch->bounce), (struct ref){ -1, (uint32_t)ch->bounce });
	if (rc)
		return rc;	/* 1: image_retry_bounce() takes it later */
	ch->bounce = -1;
	return next_page(r, c, ch);
}

/*
 * Consume queued chunks of channel c.  Returns 0 when it ran out of data
 * or must wait for write completions (resources), -1 on a stream error.
 */
int image_parse(struct image_receiver *r, unsigned int c)
{
	struct image_rx_chan *ch = &r->ch[c];
	int rc = 0;

	/* Zero runs that waited for a write slot come first. */
	if (ch->ps == PS_PAGE && ch->bounce < 0)
		rc = next_page(r, c, ch);
	while (!rc && ch->qlen) {
		struct chunk *k = &ch->q[ch->qhead];
		const uint8_t *base = chan_rx_buf(&ch->rx, k->bid);

		while (!rc && k->pos < k->len) {
			if (ch->ps == PS_BARRIER)
				rc = 1;	/* the other channels catch up first */
			else if (ch->ps == PS_DONE)
				return fail(r, LMIG_ST_PROTOCOL, "channel %u: data after the end frame", c);
			else if (ch->ps != PS_PAGE)
				rc = take_meta(r, c, ch, k, base + k->pos, k->len - k->pos);
			else
				rc = take_bytes(r, c, ch, k, base + k->pos, k->len - k->pos);
		}
		if (rc)
			break;
		/* Chunk consumed: drop the parser's reference. */
		ch->qhead = (ch->qhead + 1) % CHAN_NRBUF;
		ch->qlen--;
		image_rbuf_put(r, c, k->bid);
	}
	if (rc < 0)
		return -1;
	image_flush_write(r, ch);
	if (r->dec)
		decoder_kick(r->dec);
	return 0;
}

/* A page that was fully gathered in a bounce page but could not be taken. */
int image_retry_bounce(struct image_receiver *r, unsigned int c)
{
	struct image_rx_chan *ch = &r->ch[c];
	int rc;

	if (ch->ps != PS_PAGE || ch->bounce < 0 ||
	    ch->bounce_have < le32toh(cur_desc(ch)->len))
		return 0;
	rc = take_page(r, c, ch, image_pool_page(r, ch->bounce), (struct ref){ -1, (uint32_t)ch->bounce });
	if (rc < 0)
		return -1;
	if (rc)
		return 1;
	ch->bounce = -1;
	return next_page(r, c, ch);
}

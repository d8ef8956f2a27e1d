// SPDX-License-Identifier: GPL-2.0-only
/*
 * The sender engine's pages: which go out next (the todo bitmap), reading
 * them into a channel's free buffer, encoding them in place into a frame,
 * and the ROUND and END markers between rounds.
 */
#include <errno.h>
#include <signal.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "lib/clock.h"
#include "chan/codec.h"
#include "lib/err.h"
#include "image/image_file.h"
#include "chan/channel.h"
#include "lib/parse.h"
#include "chan/policy.h"
#include "chan/ratelimit.h"
#include "live/precopy.h"
#include "chan/tls.h"
#include "live/track.h"
#include "host/tracemark.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image.h"
#include "image/image_send.h"

/* ---- reading and encoding pages --------------------------------------- */

/* Image bytes from page pg to the end of page pg + n - 1 (the last page may be partial). */
static size_t run_bytes(struct sender *s, uint64_t pg, unsigned int n)
{
	uint64_t end = (pg + n) * LMIG_PAGE_SIZE;

	return (end > s->im.size ? s->im.size : end) - pg * LMIG_PAGE_SIZE;
}

static int shrank(struct sender *s, uint64_t at)
{
	struct stat sb;

	if (fstat(s->im.fd, &sb))
		sb.st_size = at;
	return lmig_err("%s shrank from %llu to %llu bytes during the migration", s->o->mem,
			(unsigned long long)s->im.size, (unsigned long long)sb.st_size);
}

/* Read n bytes at image offset off into dst, from the object or from the process. */
static int read_run(struct sender *s, uint64_t off, uint8_t *dst, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r;

		if (s->im.fd >= 0) {
			r = pread(s->im.fd, dst + done, n - done, off + done);
		} else {
			struct iovec l = { dst + done, n - done };
			struct iovec rv = { (void *)(uintptr_t)(s->o->anon_start + off + done),
					    n - done };

			r = process_vm_readv(s->o->pid, &l, 1, &rv, 1, 0);
			if (r == 0)
				errno = EFAULT;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && s->im.fd >= 0)
			return shrank(s, off + done);
		if (r <= 0)
			return lmig_err_errno(errno, "cannot read %s at %llu", s->o->mem,
					      (unsigned long long)(off + done));
		done += r;
	}
	return 0;
}

static void encode_batch(struct sender *s, unsigned int c, struct sbuf *b);

/*
 * Memory (tmpfs, memfd, a process's pages) is read right here: such a read
 * is a memory copy that cannot block, and io_uring would hand it to a
 * worker thread, because shmem has no non-blocking read path, costing a
 * wake-up and a thread switch per frame.  The pages of one frame may lie
 * anywhere; each run of consecutive pages is one read.
 */
static int read_sync(struct sender *s, unsigned int c, struct sbuf *b)
{
	uint8_t *payload = b->mem + DESC_AREA;

	for (unsigned int i = 0, j; i < b->npages; i = j) {
		size_t n;

		for (j = i + 1; j < b->npages && b->idx[j] == b->idx[j - 1] + 1; j++)
			;
		n = run_bytes(s, b->idx[i], j - i);
		if (read_run(s, b->idx[i] * LMIG_PAGE_SIZE, payload + (size_t)i * LMIG_PAGE_SIZE, n))
			return -1;
		/* The tail of a partial last page is sent as zeros. */
		memset(payload + (size_t)i * LMIG_PAGE_SIZE + n, 0,
		       (size_t)(j - i) * LMIG_PAGE_SIZE - n);
	}
	b->got = (size_t)b->npages * LMIG_PAGE_SIZE;
	encode_batch(s, c, b);
	return 0;
}

/*
 * A file on disk is read through the ring, so that the sends go on while
 * it waits for the device; such a frame holds one run of pages.
 */
static void submit_read(struct sender *s, unsigned int c, unsigned int bi)
{
	struct sbuf *b = &s->ch[c].buf[bi];
	struct io_uring_sqe *sqe = uring_get_sqe(&s->ring);
	uint64_t off = b->idx[0] * LMIG_PAGE_SIZE + b->got;
	size_t n = run_bytes(s, b->idx[0], b->npages) - b->got;
	uint8_t *dst = b->mem + DESC_AREA + b->got;

	if (s->tx.fixed)
		io_uring_prep_read_fixed(sqe, s->im.fd, dst, n, off, c * NBUF + bi);
	else
		io_uring_prep_read(sqe, s->im.fd, dst, n, off);
	io_uring_sqe_set_data64(sqe, UD(UD_READ, c, bi));
}

int send_read_done(struct sender *s, unsigned int c, unsigned int bi, int res)
{
	struct sbuf *b = &s->ch[c].buf[bi];
	size_t want = run_bytes(s, b->idx[0], b->npages);

	if (res < 0)
		return lmig_err_errno(-res, "cannot read %s at %llu", s->o->mem,
				      (unsigned long long)(b->idx[0] * LMIG_PAGE_SIZE + b->got));
	if (res == 0)
		return shrank(s, b->idx[0] * LMIG_PAGE_SIZE + b->got);
	b->got += res;
	if (b->got < want) {
		submit_read(s, c, bi);	/* short read: the rest next */
		return 0;
	}
	s->reading--;
	encode_batch(s, c, b);
	return 0;
}

/*
 * Encode the pages read into buffer b in place: each page is hashed while
 * it is cache-hot; zero pages become (runs of) ZERO descriptors and leave
 * the payload; the others are packed behind each other, compressed (lz4
 * or zstd) when the policy says so.  Pages only move towards the start of the
 * payload, so a page is never overwritten before it was encoded.
 */
static void encode_batch(struct sender *s, unsigned int c, struct sbuf *b)
{
	struct lmig_page_desc d[LMIG_MAX_FRAME_DESC];
	uint8_t *payload = b->mem + DESC_AREA;
	unsigned int nd = 0;
	size_t plen = 0, nonzero = 0;
	struct lmig_frame *f;

	if (b->got < (size_t)b->npages * LMIG_PAGE_SIZE)
		memset(payload + b->got, 0, (size_t)b->npages * LMIG_PAGE_SIZE - b->got);
	for (unsigned int i = 0; i < b->npages; i++) {
		uint64_t pg = b->idx[i];
		uint8_t *p = payload + (size_t)i * LMIG_PAGE_SIZE;
		/* Hash first: only a page with the zero page's hash needs the zero check. */
		uint64_t h = codec_page_hash(p);
		unsigned int n = 0;
		bool zstd = false;

		s->hashes[pg] = h;
		if (h == codec_zero_hash() && codec_page_is_zero(p)) {
			struct lmig_page_desc *last = nd ? &d[nd - 1] : NULL;

			if (last && le16toh(last->enc) == LMIG_ENC_ZERO &&
			    le64toh(last->index) + le32toh(last->len) == pg)
				last->len = htole32(le32toh(last->len) + 1);
			else
				d[nd++] = (struct lmig_page_desc){ .index = htole64(pg),
								   .enc = htole16(LMIG_ENC_ZERO),
								   .len = htole32(1) };
			s->st->pages_zero++;
			continue;
		}
		nonzero += LMIG_PAGE_SIZE;
		if (cpolicy_try_lz4(&s->pol)) {
			double t = now_s();

			zstd = cpolicy_enc(&s->pol) == CENC_ZSTD;
			n = zstd ? codec_zstd_page(p, s->lz4_out, CPOLICY_ZSTD_LEVEL) :
				   codec_lz4_page_accel(p, s->lz4_out, cpolicy_accel(&s->pol));
			cpolicy_sampled(&s->pol, LMIG_PAGE_SIZE, n ? n : LMIG_PAGE_SIZE, now_s() - t);
		}
		if (n) {
			memcpy(payload + plen, s->lz4_out, n);
			d[nd++] = (struct lmig_page_desc){ .index = htole64(pg),
							   .enc = htole16(zstd ? LMIG_ENC_ZSTD :
									       LMIG_ENC_LZ4),
							   .len = htole32(n), .hash = htole64(h) };
			s->st->pages_compressed++;
			s->st->pages_zstd += zstd;
		} else {
			n = LMIG_PAGE_SIZE;
			if (payload + plen != p)
				memmove(payload + plen, p, n);
			d[nd++] = (struct lmig_page_desc){ .index = htole64(pg),
							   .enc = htole16(LMIG_ENC_RAW),
							   .len = htole32(n), .hash = htole64(h) };
			s->st->pages_raw++;
		}
		plen += n;
	}
	/* Header and descriptors go right before the payload: one contiguous send. */
	f = (struct lmig_frame *)(payload - sizeof(*f) - nd * sizeof(d[0]));
	b->data = (const uint8_t *)f;
	memcpy(f + 1, d, nd * sizeof(d[0]));
	*f = (struct lmig_frame){ .magic = htole32(LMIG_FRAME_MAGIC),
				  .type = htole16(LMIG_FRAME_BATCH),
				  .ndesc = htole32(nd), .payload_len = htole32(plen),
				  .seq = htole64(s->ch[c].seq++) };
	f->checksum = htole64(wire_frame_checksum(f, d, nd));
	b->len = sizeof(*f) + nd * sizeof(d[0]) + plen;
	b->state = SB_READY;
	s->ch[c].pages += b->npages;
	s->ch[c].frames++;
	cpolicy_frame(&s->pol, (size_t)b->npages * LMIG_PAGE_SIZE, nonzero, b->len);
	ratelimit_take(&s->rl, b->len);
	s->pages_done += b->npages;
	s->round_wire += b->len;
}

/* The ROUND (or END) frame of channel c into buffer b. */
static void build_marker(struct sender *s, unsigned int c, struct sbuf *b)
{
	struct lmig_frame *f = (struct lmig_frame *)b->mem;
	bool end = !s->ch[c].rounds_due;

	if (end) {
		struct lmig_end *e = (struct lmig_end *)(f + 1);

		*e = (struct lmig_end){ .pages = htole64(s->ch[c].pages),
					.frames = htole64(s->ch[c].frames) };
		memcpy(e->digest, s->digest, sizeof(e->digest));
		s->ch[c].end_built = true;
	} else {
		struct lmig_round *r = (struct lmig_round *)(f + 1);

		*r = (struct lmig_round){ .round = htole64(s->ch[c].round_seq++),
					  .pages = htole64(s->ch[c].pages),
					  .frames = htole64(s->ch[c].frames) };
	}
	*f = (struct lmig_frame){ .magic = htole32(LMIG_FRAME_MAGIC),
				  .type = htole16(end ? LMIG_FRAME_END : LMIG_FRAME_ROUND),
				  .payload_len = htole32(end ? sizeof(struct lmig_end) :
							       sizeof(struct lmig_round)),
				  .seq = htole64(s->ch[c].seq++) };
	f->checksum = htole64(wire_frame_checksum(f, NULL, 0));
	b->data = b->mem;
	b->len = sizeof(*f) + le32toh(f->payload_len);
	b->state = SB_READY;
	if (end)
		s->ch[c].end_due = false;
	else
		s->ch[c].rounds_due--;
	s->round_wire += b->len;
}

/* ---- the todo bitmap -------------------------------------------------- */

/* The first page at or after the cursor still to send this round, or npages. */
uint64_t send_next_todo(struct sender *s)
{
	uint64_t w = s->cursor / 64, nw = bitmap_words(s->im.npages), word;

	if (w >= nw)
		return s->im.npages;
	word = s->todo[w] & (~0ULL << (s->cursor % 64));
	while (!word) {
		if (++w >= nw)
			return s->im.npages;
		word = s->todo[w];
	}
	return w * 64 + __builtin_ctzll(word);
}

/* Take up to batch_pages todo pages into b (one run of pages for ring reads). */
static void gather(struct sender *s, struct sbuf *b)
{
	b->npages = 0;
	while (b->npages < s->batch_pages) {
		uint64_t p = send_next_todo(s);

		if (p >= s->im.npages)
			break;
		if (!s->sync_read && b->npages && p != b->idx[b->npages - 1] + 1)
			break;
		b->idx[b->npages++] = p;
		s->todo[p / 64] &= ~(1ULL << (p % 64));
		s->cursor = p + 1;
	}
}

/*
 * Start filling every free buffer we may fill now: a channel's due
 * ROUND/END frame first, then reads of the next todo pages.  Returns
 * seconds to wait for --bandwidth tokens (0 if none), or -1 after an error.
 */
double send_fill(struct sender *s, bool *blocked)
{
	*blocked = false;
	for (unsigned int c = 0; c < s->nch; c++) {
		struct image_tx_chan *ch = &s->ch[c];

		while ((ch->rounds_due || ch->end_due) && ch->buf[ch->fill].state == SB_FREE) {
			struct sbuf *b = &ch->buf[ch->fill];

			b->off = b->notifs = 0;
			b->sent = b->sealed = false;
			build_marker(s, c, b);
			ch->fill = (ch->fill + 1) % NBUF;
			ch->queued++;
		}
	}
	for (;;) {
		unsigned int c, tries;
		double w;
		struct sbuf *b = NULL;

		if (send_next_todo(s) >= s->im.npages)
			return 0;
		if ((w = ratelimit_wait(&s->rl)) > 0)
			return w;
		for (tries = 0; tries < s->nch; tries++) {
			c = (s->rr + tries) % s->nch;
			/* A page of the next round must not overtake this channel's ROUND frame. */
			if (!s->ch[c].rounds_due && s->ch[c].buf[s->ch[c].fill].state == SB_FREE) {
				b = &s->ch[c].buf[s->ch[c].fill];
				break;
			}
		}
		if (!b) {
			*blocked = true;
			return 0;
		}
		s->rr = (c + 1) % s->nch;
		b->off = b->notifs = 0;
		b->sent = b->sealed = false;
		b->got = 0;
		gather(s, b);
		s->round_pages += b->npages;
		b->state = SB_READING;
		s->ch[c].fill = (s->ch[c].fill + 1) % NBUF;
		s->ch[c].queued++;
		if (s->sync_read) {
			if (read_sync(s, c, b))
				return -1;
		} else {
			s->reading++;
			submit_read(s, c, b - s->ch[c].buf);
		}
	}
}


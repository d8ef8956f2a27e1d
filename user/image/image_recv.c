// SPDX-License-Identifier: GPL-2.0-only
/*
 * Receiver engine: one thread, one io_uring.
 *
 * Each channel has a multishot receive with a ring of provided buffers
 * (plain receives into the same buffers where the kernel lacks them).
 * Received chunks end wherever TCP cut them, so the parser walks them as
 * a stream: frame headers and descriptors are assembled in a small
 * per-channel area, while page data is used in place — hashed, and
 * written to the output with IORING_OP_WRITEV straight from the receive
 * buffer.  Only a page split across two chunks, or an lz4 page, passes
 * through a page of the bounce pool.  lz4 pages are decoded and checked
 * on worker threads where there are CPUs to spare (user/image/image_decode.c):
 * a write run that holds such pages goes out when they all came back.
 * A receive buffer goes back to the kernel when the parser has left it
 * and every write that points into it has completed (a reference count
 * per buffer).
 *
 * With TLS the kernel (kTLS) hands over plaintext as before.  Without
 * kTLS each received chunk of records is opened by OpenSSL in place: the
 * kernel receives into a buffer from TLS_SLACK on, and the plaintext is
 * written from the buffer's start.  A chunk can complete a record whose
 * start came with the previous one, so its plaintext may be longer than
 * its ciphertext, but by less than one record: it never overtakes the
 * ciphertext still to be read, and always fits.  A chunk that completes
 * no record goes straight back to the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/falloc.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/channel.h"
#include "chan/codec.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image.h"
#include "image/image_decode.h"
#include "image/image_file.h"

#define NPOOL		1024		/* bounce/decode pages */
#define NWOP		256		/* writes in flight */
#define WOP_IOV		64
#define DESC_AREA	(sizeof(struct lmig_frame) + LMIG_MAX_FRAME_DESC * sizeof(struct lmig_page_desc))
#define TLS_SLACK	(32 * 1024)
_Static_assert(TLS_SLACK >= TLS_RECORD_MAX, "a chunk's plaintext must fit before its records");

/* What a write holds on to: a receive buffer or a pool page. */
struct ref {
	int32_t chan;		/* REF_POOL: pool page, REF_NONE: the zero page */
	uint32_t id;
};
#define REF_POOL	(-1)
#define REF_NONE	(-2)

/*
 * A write slot: pages from buffers (WOP_DATA), or a run of zero pages that
 * is punched out of the file (WOP_PUNCH) or, where the filesystem cannot
 * punch, written from the zero page (WOP_ZERO).
 */
enum wop_kind { WOP_DATA, WOP_PUNCH, WOP_ZERO };

struct wop {
	struct iovec iov[WOP_IOV];
	struct ref ref[WOP_IOV];	/* one per page */
	unsigned int niov, first_iov, nref;
	unsigned int decoding;		/* pages of it still being decoded */
	bool closed;			/* complete: submitted when decoding reaches 0 */
	enum wop_kind kind;
	uint64_t off;
	size_t len;
	int next_free;
};

struct chunk {
	uint16_t bid;
	uint32_t len, pos;
};

/*
 * PS_ROUNDPAY gathers a ROUND frame's payload; PS_BARRIER holds a channel
 * at the end of a round until every channel got there and every write of
 * the round completed (see include/lmig/wire.h).
 */
enum image_pstate { PS_HDR, PS_DESC, PS_PAGE, PS_ENDPAY, PS_ROUNDPAY, PS_BARRIER, PS_DONE };

/* A channel from the sender: its receive buffers, what they hold, and its frame parser. */
struct image_rx_chan {
	struct chan_rx rx;
	unsigned int refs[CHAN_NRBUF];
	/* fallback (no provided buffers): free buffer stack */
	uint16_t free_bid[CHAN_NRBUF];
	unsigned int nfree;
	/* received, not yet parsed */
	struct chunk q[CHAN_NRBUF];
	unsigned int qhead, qlen;
	/* parser */
	enum image_pstate ps;
	union {
		uint8_t area[DESC_AREA];
		struct lmig_frame fr;
	};
	size_t have, need;
	unsigned int di;			/* current descriptor */
	int bounce;				/* pool page gathering a split page, or -1 */
	size_t bounce_have;
	uint64_t seq, pages, frames;
	struct lmig_end end;
	/* write being built */
	int wop;
};

struct image_receiver {
	const struct recv_opts *o;
	struct image_stats *st;
	struct io_uring ring;
	bool ring_ok, ms;
	struct chan *link;		/* the channels' sockets and sessions */
	struct image_rx_chan *ch;	/* ... and what is received on them */
	unsigned int nch;
	struct hello_info hi;
	struct dst_image out;
	bool out_ok;
	bool confirm;			/* LMIG_CAP_CONFIRM: commit only when the sender confirms */
	bool verdict_sent;		/* ... the verdict "verified" is out: FINAL follows */
	uint64_t npages, pages_done;
	uint64_t *hashes;
	uint32_t *seen;			/* per page: 1 + the round it last arrived in, 0 never */
	bool live;			/* LMIG_CAP_ROUNDS: pages come again in later rounds */
	uint32_t round;			/* the round being received */
	unsigned int at_barrier;	/* channels in PS_BARRIER */
	bool no_punch;			/* the output's filesystem cannot punch holes */
	uint8_t *pool;
	int pool_free[NPOOL];
	unsigned int npool_free;
	struct wop *wops;
	int wop_free;
	unsigned int writes_inflight;
	/* lz4 pages decoded by workers (user/image/image_decode.c), or NULL: inline */
	struct decoder *dec;
	unsigned int decodes_inflight;
	struct dec_page {			/* per pool page decoded into */
		uint64_t pg;
		struct ref src;			/* the compressed bytes */
		int wop;			/* the write it belongs to */
		uint16_t chan;
	} *decp;
	uint64_t efd_buf;
	unsigned int ended;
	uint32_t fail_status;
	double t0, last_progress, last_data;
};

/* An error, and the status the peer's verdict will carry (the first one stands). */
#define fail(r, status, ...)	chan_fail(&(r)->fail_status, status, __VA_ARGS__)

/* ---- buffers ---------------------------------------------------------- */

static void rbuf_put(struct image_receiver *r, unsigned int c, unsigned int bid)
{
	struct image_rx_chan *ch = &r->ch[c];

	if (--ch->refs[bid])
		return;
	if (r->ms)
		chan_rx_give(&ch->rx, bid);
	else
		ch->free_bid[ch->nfree++] = bid;
}

static int pool_get(struct image_receiver *r)
{
	return r->npool_free ? r->pool_free[--r->npool_free] : -1;
}

static uint8_t *pool_page(struct image_receiver *r, int id)
{
	return r->pool + (size_t)id * LMIG_PAGE_SIZE;
}

static void ref_put(struct image_receiver *r, struct ref ref)
{
	if (ref.chan == REF_POOL)
		r->pool_free[r->npool_free++] = ref.id;
	else if (ref.chan >= 0)
		rbuf_put(r, ref.chan, ref.id);
}

/* ---- writes ----------------------------------------------------------- */

/* Read-only, so a write from it can never carry anything but zeros. */
static const uint8_t zero_page[LMIG_PAGE_SIZE] __attribute__((aligned(LMIG_PAGE_SIZE)));

/* A WOP_ZERO slot's next piece: up to WOP_IOV zero pages from op->off on. */
static void zero_iovs(struct wop *op)
{
	size_t left = op->len;

	op->niov = op->first_iov = op->nref = 0;
	while (left && op->niov < WOP_IOV) {
		size_t n = left < LMIG_PAGE_SIZE ? left : LMIG_PAGE_SIZE;

		op->iov[op->niov++] = (struct iovec){ (void *)zero_page, n };
		left -= n;
	}
}

static void wop_submit(struct image_receiver *r, int w)
{
	struct wop *op = &r->wops[w];
	struct io_uring_sqe *sqe = uring_get_sqe(&r->ring);

	if (op->kind == WOP_PUNCH)
		io_uring_prep_fallocate(sqe, r->out.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					op->off, op->len);
	else
		io_uring_prep_writev(sqe, r->out.fd, op->iov + op->first_iov,
				     op->niov - op->first_iov, op->off);
	io_uring_sqe_set_data64(sqe, UD(UD_WRITE, 0, w));
	r->writes_inflight++;
	r->st->write_ops++;
}

static void flush_write(struct image_receiver *r, struct image_rx_chan *ch)
{
	if (ch->wop < 0)
		return;
	/* A run with pages still being decoded goes out when the last one is. */
	if (r->wops[ch->wop].decoding)
		r->wops[ch->wop].closed = true;
	else
		wop_submit(r, ch->wop);
	ch->wop = -1;
}

static size_t page_len(struct image_receiver *r, uint64_t pg)
{
	uint64_t off = pg * LMIG_PAGE_SIZE;

	/* The image's last page may be partial. */
	return off + LMIG_PAGE_SIZE > r->hi.image_size ? r->hi.image_size - off : LMIG_PAGE_SIZE;
}

/* Would add_write() for page pg need a write slot that is not there? */
static bool write_blocked(struct image_receiver *r, struct image_rx_chan *ch, uint64_t pg)
{
	struct wop *op = ch->wop >= 0 ? &r->wops[ch->wop] : NULL;

	if (op && op->nref < WOP_IOV && op->off + op->len == pg * LMIG_PAGE_SIZE)
		return false;
	return r->wop_free < 0;
}

/* Queue page pg from p, taking over one reference; write_blocked() was false. */
static void add_write(struct image_receiver *r, struct image_rx_chan *ch, uint64_t pg, const void *p,
		      struct ref ref)
{
	uint64_t off = pg * LMIG_PAGE_SIZE;
	size_t len = page_len(r, pg);
	struct wop *op = ch->wop >= 0 ? &r->wops[ch->wop] : NULL;

	if (op && (op->nref == WOP_IOV || op->off + op->len != off))
		flush_write(r, ch);
	if (ch->wop < 0) {
		ch->wop = r->wop_free;
		op = &r->wops[ch->wop];
		r->wop_free = op->next_free;
		op->kind = WOP_DATA;
		op->niov = op->first_iov = op->nref = 0;
		op->decoding = 0;
		op->closed = false;
		op->off = off;
		op->len = 0;
	}
	op = &r->wops[ch->wop];
	/*
	 * Pages that follow each other in memory too (a receive buffer's run
	 * of raw pages, pool pages handed out in order) make one iovec: the
	 * kernel then copies a run into the page cache in one piece.
	 */
	if (op->niov && (uint8_t *)op->iov[op->niov - 1].iov_base + op->iov[op->niov - 1].iov_len == p)
		op->iov[op->niov - 1].iov_len += len;
	else
		op->iov[op->niov++] = (struct iovec){ (void *)p, len };
	op->ref[op->nref++] = ref;
	op->len += len;
}

/*
 * Zero pages idx..idx+n-1 over whatever the output holds there: a hole
 * where the filesystem can punch one (a sparse image stays sparse),
 * written zeros where it cannot.  Needs a free write slot (r->wop_free >= 0).
 */
static void add_zero(struct image_receiver *r, uint64_t idx, uint64_t n)
{
	int w = r->wop_free;
	struct wop *op = &r->wops[w];
	uint64_t off = idx * LMIG_PAGE_SIZE, end = (idx + n) * LMIG_PAGE_SIZE;

	if (end > r->hi.image_size)
		end = r->hi.image_size;
	r->wop_free = op->next_free;
	op->off = off;
	op->len = end - off;
	op->kind = r->no_punch ? WOP_ZERO : WOP_PUNCH;
	op->niov = op->first_iov = op->nref = 0;
	if (op->kind == WOP_ZERO)
		zero_iovs(op);
	wop_submit(r, w);
}

static int write_done(struct image_receiver *r, int w, int res)
{
	struct wop *op = &r->wops[w];

	r->writes_inflight--;
	if (op->kind == WOP_PUNCH) {
		if (res == -EOPNOTSUPP || res == -ENOSYS || res == -EINVAL) {
			/* No holes here (or no fallocate in io_uring): write the zeros. */
			r->no_punch = true;
			op->kind = WOP_ZERO;
			zero_iovs(op);
			wop_submit(r, w);
			return 0;
		}
		if (res < 0)
			return fail(r, LMIG_ST_IO, "zeroing pages of %s: %s", r->out.tmp,
				    strerror(-res));
		op->len = 0;
		res = 0;
	}
	if (res < 0)
		return fail(r, LMIG_ST_IO, "writing %s: %s", r->out.tmp, strerror(-res));
	if (res == 0 && op->len)
		return fail(r, LMIG_ST_IO, "writing %s: no progress", r->out.tmp);
	/* Short write: skip what was written and submit the rest. */
	op->off += res;
	op->len -= res;
	while (op->first_iov < op->niov && (size_t)res >= op->iov[op->first_iov].iov_len)
		res -= op->iov[op->first_iov++].iov_len;
	if (op->len && op->kind == WOP_ZERO) {
		zero_iovs(op);	/* the next piece of the run, or the rest of a short one */
		wop_submit(r, w);
		return 0;
	}
	if (op->len) {
		op->iov[op->first_iov].iov_base = (char *)op->iov[op->first_iov].iov_base + res;
		op->iov[op->first_iov].iov_len -= res;
		wop_submit(r, w);
		return 0;
	}
	/* Backwards: the pool hands its pages out again in ascending order. */
	for (unsigned int i = op->nref; i-- > 0;)
		ref_put(r, op->ref[i]);
	op->next_free = r->wop_free;
	r->wop_free = w;
	return 0;
}

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
		else if (enc == LMIG_ENC_LZ4 && len && len < LMIG_PAGE_SIZE)
			sum += len;
		else
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: bad page descriptor (encoding %u, length %u)",
				    c, enc, len);
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
 * like any other write, and like them completes before the round
 * barrier lets the next round in.  Returns 1 when a write slot is
 * missing (di stays on the zero descriptor: retried by parse()).
 */
static int apply_zero_descs(struct image_receiver *r, struct image_rx_chan *ch)
{
	unsigned int nd = le32toh(ch->fr.ndesc);

	while (ch->di < nd && le16toh(cur_desc(ch)->enc) == LMIG_ENC_ZERO) {
		const struct lmig_page_desc *d = cur_desc(ch);
		uint64_t idx = le64toh(d->index), n = le32toh(d->len);

		if (r->round) {
			if (r->wop_free < 0)
				return 1;
			add_zero(r, idx, n);
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

static void start_frame(struct image_rx_chan *ch)
{
	ch->ps = PS_HDR;
	ch->have = 0;
	ch->need = sizeof(struct lmig_frame);
}

/* A page check's verdict as the stream error it is. */
static int page_fail(struct image_receiver *r, unsigned int c, uint64_t pg, enum page_verdict v)
{
	if (v == PAGE_BAD_LZ4)
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: page %llu does not decompress (corrupted stream)",
			    c, (unsigned long long)pg);
	if (v == PAGE_BAD_HASH)
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: page %llu checksum mismatch (corrupted stream)",
			    c, (unsigned long long)pg);
	return fail(r, LMIG_ST_PROTOCOL, "channel %u: page %llu has data past the end of the image",
		    c, (unsigned long long)pg);
}

/*
 * An lz4 page goes to a decode worker: it joins the channel's write run
 * now (its pool page is where the decoded bytes will be), and the run is
 * submitted once every page in it came back checked (decode_done()).
 */
static void queue_decode(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch, uint64_t pg,
			 const uint8_t *p, struct ref ref)
{
	const struct lmig_page_desc *d = cur_desc(ch);
	int dec = pool_get(r);
	struct decode_job j = {
		.src = p, .dst = pool_page(r, dec), .len = le32toh(d->len), .tag = (uint32_t)dec,
		.keep = page_len(r, pg), .want = le64toh(d->hash),
	};

	add_write(r, ch, pg, pool_page(r, dec), (struct ref){ REF_POOL, (uint32_t)dec });
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
	ref_put(r, dp->src);	/* the compressed bytes are no longer needed */
	if (j->verdict != PAGE_OK)
		return page_fail(r, dp->chan, dp->pg, j->verdict);
	/* As in take_page(): these are the bytes the run's write stores. */
	r->hashes[dp->pg] = j->want;
	if (!--op->decoding && op->closed)
		wop_submit(r, dp->wop);
	return 0;
}

static int reap_decodes(struct image_receiver *r)
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
static int take_page(struct image_receiver *r, unsigned int c, struct image_rx_chan *ch, const uint8_t *p,
		     struct ref ref)
{
	const struct lmig_page_desc *d = cur_desc(ch);
	uint64_t pg = le64toh(d->index), want = le64toh(d->hash);
	bool lz4 = le16toh(d->enc) == LMIG_ENC_LZ4;
	const uint8_t *page = p;
	enum page_verdict v;
	int dec = -1;

	if (write_blocked(r, ch, pg) || (lz4 && !r->npool_free))
		return 1;
	if (lz4 && r->dec) {
		queue_decode(r, c, ch, pg, p, ref);
		r->st->pages_compressed++;
		r->pages_done++;
		ch->di++;
		return 0;
	}
	if (lz4) {
		struct decode_job j = { .src = p, .len = le32toh(d->len), .keep = page_len(r, pg),
					.want = want };

		dec = pool_get(r);
		page = j.dst = pool_page(r, dec);
		decode_job_run(&j);
		v = j.verdict;
	} else {
		v = page_check(page, page_len(r, pg), want);
	}
	if (v != PAGE_OK)
		return page_fail(r, c, pg, v);
	/*
	 * The bytes just hashed are the bytes the write below stores (the
	 * buffer is held until the write completed): the table records what
	 * the output holds, and the digest is computed from it.
	 */
	r->hashes[pg] = want;
	if (lz4) {
		ref_put(r, ref);	/* the compressed bytes are no longer needed */
		ref = (struct ref){ -1, (uint32_t)dec };
		r->st->pages_compressed++;
	} else {
		r->st->pages_raw++;
	}
	add_write(r, ch, pg, page, ref);
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
static int next_round(struct image_receiver *r)
{
	struct lmig_result ack;

	if (r->ended)
		return fail(r, LMIG_ST_PROTOCOL, "channels disagree on the number of rounds");
	wire_round_ack_build(&ack, r->round);
	if (chan_write_full(r->link[0].fd, &r->link[0].tls, &ack, sizeof(ack), r->o->timeout_ms,
			    "acknowledging a round"))
		return -1;
	for (unsigned int c = 0; c < r->nch; c++)
		start_frame(&r->ch[c]);
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
	start_frame(ch);
	return 0;
}

/*
 * Consume queued chunks of channel c.  Returns 0 when it ran out of data
 * or must wait for write completions (resources), -1 on a stream error.
 */
static int parse(struct image_receiver *r, unsigned int c)
{
	struct image_rx_chan *ch = &r->ch[c];
	int rc;

	/* Zero runs that waited for a write slot come first. */
	if (ch->ps == PS_PAGE && ch->bounce < 0) {
		rc = next_page(r, c, ch);
		if (rc < 0)
			return -1;
		if (rc)
			goto wait;
	}
	while (ch->qlen) {
		struct chunk *k = &ch->q[ch->qhead];
		uint8_t *base = chan_rx_buf(&ch->rx, k->bid);

		while (k->pos < k->len) {
			size_t avail = k->len - k->pos;
			uint8_t *p = base + k->pos;

			if (ch->ps == PS_BARRIER)
				goto wait;	/* the other channels catch up first */
			if (ch->ps == PS_DONE)
				return fail(r, LMIG_ST_PROTOCOL, "channel %u: data after the end frame", c);
			if (ch->ps != PS_PAGE) {
				size_t n = ch->need - ch->have;

				if (n > avail)
					n = avail;
				memcpy(ch->area + ch->have, p, n);
				ch->have += n;
				k->pos += n;
				if (ch->have < ch->need)
					continue;
				if (ch->ps == PS_HDR) {
					if (check_frame_header(r, c, ch))
						return -1;
					uint16_t type = le16toh(ch->fr.type);

					if (type == LMIG_FRAME_END || type == LMIG_FRAME_ROUND) {
						if (le64toh(ch->fr.checksum) !=
						    wire_frame_checksum(&ch->fr, NULL, 0))
							return fail(r, LMIG_ST_CHECKSUM,
								    "channel %u: %s frame checksum mismatch (corrupted stream)",
								    c, type == LMIG_FRAME_END ? "end" : "round");
						if (check_seq(r, c, ch))
							return -1;
						ch->ps = type == LMIG_FRAME_END ? PS_ENDPAY : PS_ROUNDPAY;
						ch->need += le32toh(ch->fr.payload_len);
						continue;
					}
					ch->ps = PS_DESC;
					ch->need += le32toh(ch->fr.ndesc) * sizeof(struct lmig_page_desc);
					if (ch->have < ch->need)
						continue;
				}
				if (ch->ps == PS_ENDPAY || ch->ps == PS_ROUNDPAY) {
					if (frame_done(r, c, ch))
						return -1;
					continue;
				}
				/* PS_DESC complete */
				if (check_descs(r, c, ch))
					return -1;
				ch->di = 0;
				ch->ps = PS_PAGE;
				ch->bounce = -1;
				rc = next_page(r, c, ch);
				if (rc < 0)
					return -1;
				if (rc)
					goto wait;
				continue;
			}
			/* PS_PAGE: the bytes of descriptor di */
			size_t len = le32toh(cur_desc(ch)->len);

			if (ch->bounce < 0 && avail >= len) {
				ch->refs[k->bid]++;
				rc = take_page(r, c, ch, p, (struct ref){ (int32_t)c, k->bid });
				if (rc < 0)
					return -1;
				if (rc) {
					ch->refs[k->bid]--;
					goto wait;
				}
				k->pos += len;
			} else {
				if (ch->bounce < 0) {
					ch->bounce = pool_get(r);
					ch->bounce_have = 0;
					if (ch->bounce < 0)
						goto wait;
				}
				size_t n = len - ch->bounce_have;

				if (n > avail)
					n = avail;
				memcpy(pool_page(r, ch->bounce) + ch->bounce_have, p, n);
				ch->bounce_have += n;
				k->pos += n;
				if (ch->bounce_have < len)
					continue;
				rc = take_page(r, c, ch, pool_page(r, ch->bounce),
					       (struct ref){ -1, (uint32_t)ch->bounce });
				if (rc < 0)
					return -1;
				if (rc)
					goto wait;	/* retry_bounce() takes it later */
				ch->bounce = -1;
			}
			rc = next_page(r, c, ch);
			if (rc < 0)
				return -1;
			if (rc)
				goto wait;
		}
		/* Chunk consumed: drop the parser's reference. */
		ch->qhead = (ch->qhead + 1) % CHAN_NRBUF;
		ch->qlen--;
		rbuf_put(r, c, k->bid);
	}
wait:
	flush_write(r, ch);
	if (r->dec)
		decoder_kick(r->dec);
	return 0;
}

/* A page that was fully gathered in a bounce page but could not be taken. */
static int retry_bounce(struct image_receiver *r, unsigned int c)
{
	struct image_rx_chan *ch = &r->ch[c];
	int rc;

	if (ch->ps != PS_PAGE || ch->bounce < 0 ||
	    ch->bounce_have < le32toh(cur_desc(ch)->len))
		return 0;
	rc = take_page(r, c, ch, pool_page(r, ch->bounce), (struct ref){ -1, (uint32_t)ch->bounce });
	if (rc < 0)
		return -1;
	if (rc)
		return 1;
	ch->bounce = -1;
	return next_page(r, c, ch);
}

/* ---- receives --------------------------------------------------------- */

static void arm_recv(struct image_receiver *r, unsigned int c)
{
	struct image_rx_chan *ch = &r->ch[c];

	if (ch->rx.armed || ch->rx.eof || ch->ps == PS_DONE)
		return;
	/* Data only queues up behind a barrier: let TCP hold it instead. */
	if (ch->ps == PS_BARRIER && ch->qlen)
		return;
	if (r->ms && !ch->rx.inring)
		return;
	if (!r->ms && (!ch->nfree || ch->qlen == CHAN_NRBUF))
		return;
	chan_rx_arm(&r->ring, &r->link[c], &ch->rx, c, r->ms, r->ms ? 0 : ch->free_bid[--ch->nfree]);
}

static int recv_done(struct image_receiver *r, unsigned int c, struct io_uring_cqe *cqe,
		     unsigned int id)
{
	struct image_rx_chan *ch = &r->ch[c];
	int res = cqe->res;
	unsigned int bid = chan_rx_done(&ch->rx, cqe, r->ms, id);

	if (res == -ENOBUFS)
		return 0;	/* re-armed when buffers come back */
	if (res < 0 && r->ms && res == -EINVAL && !ch->frames && !ch->have && !ch->qlen)
		return fail(r, LMIG_ST_IO, "multishot receive not supported");
	if (res < 0)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: %s", c,
			    res == -ECONNRESET ? "sender reset the connection mid-transfer" :
			    strerror(-res));
	if (res == 0) {
		if (!r->ms)
			ch->free_bid[ch->nfree++] = bid;
		ch->rx.eof = true;	/* judged once the queued data is parsed */
		return 0;
	}
	r->st->bytes_wire += res;
	r->last_data = now_s();
	ch->refs[bid] = 1;
	if (r->link[c].tls.rmem) {
		/* Userspace TLS: open the records in place; a partial one waits for more. */
		ssize_t n = chan_open(&r->link[c], chan_rx_buf(&ch->rx, bid) + ch->rx.roff, res,
				      chan_rx_buf(&ch->rx, bid), CHAN_RBUF_SIZE);

		if (n < 0) {
			r->fail_status = LMIG_ST_CHECKSUM;
			return -1;
		}
		if (!n) {
			rbuf_put(r, c, bid);
			return 0;
		}
		res = n;
	}
	ch->q[(ch->qhead + ch->qlen) % CHAN_NRBUF] = (struct chunk){ .bid = bid, .len = res };
	ch->qlen++;
	return 0;
}

/* ---- set-up ----------------------------------------------------------- */

static int setup_rings(struct image_receiver *r)
{
	int ret;

	ret = io_uring_queue_init(NWOP + 4 * r->nch + 16, &r->ring, 0);
	if (ret)
		return lmig_err_errno(-ret, "io_uring_queue_init");
	r->ring_ok = true;
	r->ms = true;
	for (unsigned int c = 0; c < r->nch; c++) {
		struct image_rx_chan *ch = &r->ch[c];

		if (chan_rx_setup(&r->ring, &ch->rx, c, r->link[c].tls.rmem ? TLS_SLACK : 0, &r->ms))
			return -1;
		for (unsigned int b = 0; b < CHAN_NRBUF; b++)
			ch->free_bid[ch->nfree++] = CHAN_NRBUF - 1 - b;
	}
	r->st->multishot = r->ms;
	/*
	 * Buffered writes to one file serialise on its inode lock: more than
	 * one io-wq worker per ring only adds lock contention.
	 */
	io_uring_register_iowq_max_workers(&r->ring, (unsigned int[2]){ 1, 1 });
	r->pool = mmap(NULL, (size_t)NPOOL * LMIG_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	r->wops = calloc(NWOP, sizeof(*r->wops));
	if (r->pool == MAP_FAILED || !r->wops) {
		if (r->pool == MAP_FAILED)
			r->pool = NULL;
		return lmig_err("out of memory for write buffers");
	}
	for (int i = 0; i < NPOOL; i++)
		r->pool_free[r->npool_free++] = NPOOL - 1 - i;
	for (int i = 0; i < NWOP; i++)
		r->wops[i].next_free = i + 1 < NWOP ? i + 1 : -1;
	r->wop_free = 0;
	/*
	 * lz4 pages are decoded on the other CPUs this process may use; with
	 * none (or no threads to be had) they are decoded here, as they come.
	 */
	unsigned int nth = decoder_threads();

	if (nth) {
		r->decp = calloc(NPOOL, sizeof(*r->decp));
		if (r->decp)
			r->dec = decoder_start(nth, NPOOL);
	}
	r->st->decode_threads = r->dec ? decoder_nthreads(r->dec) : 0;
	return 0;
}

/*
 * The failure result's text.  A fault in the sender's own stream (status
 * set by fail(), other than LMIG_ST_IO) is described from that stream:
 * page numbers, frame numbers, counts.  A failure of the receiver itself
 * may name its files: the sender hears what wire_peer_text() allows.
 */
static const char *result_text(const struct image_receiver *r)
{
	static char text[LMIG_REASON_LEN];

	if (r->fail_status && r->fail_status != LMIG_ST_IO)
		return lmig_errmsg();
	return wire_peer_text(r->link[0].tls.ssl, LMIG_ST_IO, NULL, 0, text, sizeof(text));
}

/* The image the first hello announces: within the limits, and its output created. */
static int take_image(struct image_receiver *r, const struct hello_info *hi, const char **why,
		      int *err)
{
	if (!hi->image_size) {
		lmig_err("sender announced an empty image");
		return *why = "empty image", LMIG_ST_SIZE;
	}
	if (r->o->expect_size && hi->image_size != r->o->expect_size) {
		lmig_err("image size mismatch: sender has %llu bytes, --size expects %llu",
			 (unsigned long long)hi->image_size, (unsigned long long)r->o->expect_size);
		return *why = "image size mismatch: the receiver expects another size (--size)",
		       LMIG_ST_SIZE;
	}
	if (r->o->max_size && hi->image_size > r->o->max_size) {
		lmig_err("the sender announced %llu bytes, more than --max-size %llu",
			 (unsigned long long)hi->image_size, (unsigned long long)r->o->max_size);
		return *why = "image larger than the receiver accepts (--max-size)", LMIG_ST_SIZE;
	}
	/*
	 * 12 bytes a page, zero-filled on demand (calloc of this size is a
	 * fresh mapping): memory grows with the pages that arrive, and
	 * --max-size bounds it.
	 */
	r->hashes = calloc(r->npages, sizeof(*r->hashes));
	r->seen = calloc(r->npages, sizeof(*r->seen));
	if (!r->hashes || !r->seen) {
		lmig_err("out of memory for a %llu-page image", (unsigned long long)r->npages);
		return *why = "image too large for the receiver's memory", LMIG_ST_SIZE;
	}
	switch (dst_image_create(&r->out, r->o->out, hi->image_size)) {
	case 0:
		r->out_ok = true;
		return 0;
	case -2:
		return *why = "image larger than the free space at the receiver", LMIG_ST_SIZE;
	default:
		if (r->out.not_regular)
			*why = "the receiver's output exists and is not a regular file";
		else
			*why = "the receiver cannot create the image", *err = r->out.err;
		return LMIG_ST_IO;
	}
}

/* Each hello (chan_accept()): the first one says what comes. */
static int check_hello(void *arg, const struct hello_info *hi, bool first, const char **why,
		       int *err)
{
	struct image_receiver *r = arg;

	if (!first)
		return 0;
	r->hi = *hi;
	r->nch = hi->nchannels;
	r->npages = (hi->image_size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;
	r->live = hi->caps & LMIG_CAP_ROUNDS;
	r->confirm = hi->caps & LMIG_CAP_CONFIRM;
	r->ch = calloc(r->nch, sizeof(*r->ch));
	if (!r->ch)
		return lmig_err("out of memory");
	return take_image(r, hi, why, err);
}

static int handshake(struct image_receiver *r, int lfd)
{
	struct chan_accept a = {
		.tls = r->o->tls, .timeout_ms = r->o->timeout_ms,
		.accept_timeout_ms = r->o->accept_timeout_ms, .peer = "sender",
		.whole = "migration", .caps = LMIG_CAPS_V1 | LMIG_CAP_ROUNDS | LMIG_CAP_CONFIRM,
		.check = check_hello, .arg = r,
	};
	struct hello_info first;

	return chan_accept(&a, lfd, &r->link, &first);
}

/* ---- main loop -------------------------------------------------------- */

static void show_progress(struct image_receiver *r, bool final)
{
	double t = now_s();
	uint64_t done = r->pages_done * LMIG_PAGE_SIZE;
	char extra[32];

	if (!r->o->progress || (!final && t - r->last_progress < 0.5))
		return;
	r->last_progress = t;
	snprintf(extra, sizeof(extra), "round %u", r->round);
	progress_show("received", done > r->hi.image_size ? r->hi.image_size : done,
		      r->hi.image_size, t - r->t0, r->live ? extra : NULL, final);
}

/* Wait for done decodes in the ring, with the other completions. */
static void arm_decode_wait(struct image_receiver *r)
{
	struct io_uring_sqe *sqe = uring_get_sqe(&r->ring);

	io_uring_prep_read(sqe, decoder_fd(r->dec), &r->efd_buf, sizeof(r->efd_buf), 0);
	io_uring_sqe_set_data64(sqe, UD(UD_DECODE, 0, 0));
}

static int decode_wake(struct image_receiver *r, int res)
{
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		return fail(r, LMIG_ST_IO, "waiting for decode workers: %s", strerror(-res));
	arm_decode_wait(r);
	return reap_decodes(r);
}

static int run(struct image_receiver *r)
{
	r->last_data = now_s();
	if (r->dec)
		arm_decode_wait(r);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_nsec = 500 * 1000 * 1000 };
		unsigned int head, n = 0;
		int ret;

		/* Decodes that came back without a wake (see DECODE_WAKE): their runs go out now. */
		if (r->dec && reap_decodes(r))
			return -1;
		for (unsigned int c = 0; c < r->nch; c++) {
			ret = retry_bounce(r, c);
			if (ret < 0)
				return -1;
			if (ret == 0 && parse(r, c))
				return -1;
			if (r->ch[c].rx.eof && !r->ch[c].qlen && r->ch[c].ps != PS_DONE)
				return fail(r, LMIG_ST_INCOMPLETE,
					    "channel %u: sender closed the connection mid-stream (truncated after frame %llu)",
					    c, (unsigned long long)r->ch[c].seq);
			arm_recv(r, c);
		}
		/* A page being decoded is a write still to come. */
		if (r->ended == r->nch && !r->writes_inflight && !r->decodes_inflight)
			return 0;
		if (r->at_barrier && r->at_barrier + r->ended == r->nch && !r->writes_inflight &&
		    !r->decodes_inflight) {
			if (next_round(r))
				return -1;
			continue;	/* parse what waited behind the barrier */
		}
		io_uring_submit(&r->ring);
		ret = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);
		if (ret == -ETIME) {
			if (now_s() - r->last_data > r->o->timeout_ms / 1000.0 && r->ended < r->nch)
				return fail(r, LMIG_ST_INCOMPLETE, "no data from the sender for %d s",
					    r->o->timeout_ms / 1000);
			show_progress(r, false);
			continue;
		}
		if (ret < 0 && ret != -EINTR)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			unsigned int kind = ud_kind(ud), c = ud_a(ud), id = ud_b(ud);

			n++;
			if (kind == UD_DECODE)
				ret = decode_wake(r, cqe->res);
			else
				ret = kind == UD_RECV ? recv_done(r, c, cqe, id) : write_done(r, id, cqe->res);
			if (ret) {
				io_uring_cq_advance(&r->ring, n);
				return -1;
			}
		}
		io_uring_cq_advance(&r->ring, n);
		show_progress(r, false);
	}
}

/*
 * --verify-readback: read the output back through a descriptor of its own
 * and hash every page again.  The digest of those hashes must be the
 * sender's; a page that differs from what was written is named.
 */
static int verify_readback(struct image_receiver *r, const uint8_t want[16])
{
	const size_t chunk = 4u << 20;
	uint64_t *got = malloc(r->npages * sizeof(*got));
	uint8_t *buf = malloc(chunk), digest[16];
	char path[64];
	double t0 = now_s();
	int fd, ret = -1;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->out.fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !got || !buf) {
		if (fd < 0)
			lmig_err_errno(errno, "cannot re-open %s to read it back", r->out.tmp);
		else
			lmig_err("out of memory for reading back %s", r->out.tmp);
		r->fail_status = LMIG_ST_IO;
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (uint64_t off = 0; off < r->hi.image_size;) {
		size_t want_len = r->hi.image_size - off < chunk ? r->hi.image_size - off : chunk;
		ssize_t n = pread(fd, buf, want_len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(r, LMIG_ST_IO, "reading back %s: %s", r->out.tmp,
			     n ? strerror(errno) : "file is shorter than the image");
			goto out;
		}
		/* Whole pages only, except at the image's end (zero-padded, as sent). */
		if ((size_t)n < want_len && n % LMIG_PAGE_SIZE)
			n -= n % LMIG_PAGE_SIZE;
		if (n % LMIG_PAGE_SIZE) {
			memset(buf + n, 0, LMIG_PAGE_SIZE - n % LMIG_PAGE_SIZE);
			n += LMIG_PAGE_SIZE - n % LMIG_PAGE_SIZE;
		}
		for (ssize_t i = 0; i < n; i += LMIG_PAGE_SIZE)
			got[(off + i) / LMIG_PAGE_SIZE] = codec_page_hash(buf + i);
		off += n;
	}
	codec_digest(got, r->npages, digest);
	if (memcmp(digest, want, 16)) {
		uint64_t p = 0;

		while (p < r->npages && got[p] == r->hashes[p])
			p++;
		if (p < r->npages)
			fail(r, LMIG_ST_DIGEST, "read back %s: page %llu differs from what was received",
			     r->out.tmp, (unsigned long long)p);
		else
			fail(r, LMIG_ST_DIGEST, "read back %s: image digest mismatch", r->out.tmp);
		goto out;
	}
	ret = 0;
out:
	r->st->readback_s = now_s() - t0;
	if (fd >= 0)
		close(fd);
	free(got);
	free(buf);
	return ret;
}

/*
 * LMIG_CAP_CONFIRM: the image is verified.  Say so, and commit only when
 * the sender confirms: a sender that never learnt of the verdict resumes
 * its source, so the image must then never appear.  The data is flushed
 * before the verdict, so the commit the sender waits for is only the link
 * and the directory's flush.
 */
/*
 * The ring's receive on channel 0 would take the sender's CONFIRM: cancel
 * it before the verdict goes out (the sender sends nothing before it has
 * the verdict), and wait until it has ended.
 */
static int stop_receiving(struct image_receiver *r)
{
	struct image_rx_chan *ch = &r->ch[0];
	struct io_uring_sqe *sqe;
	bool cancelled = false;
	double t0 = now_s();

	if (!ch->rx.armed)
		return 0;
	sqe = uring_get_sqe(&r->ring);
	io_uring_prep_cancel_fd(sqe, r->link[0].fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
	io_uring_submit(&r->ring);
	while (ch->rx.armed || !cancelled) {
		struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
		struct io_uring_cqe *cqe;
		uint64_t ud;
		int ret = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);

		if (ret == -ETIME || ret == -EINTR) {
			if (now_s() - t0 > 1)
				return fail(r, LMIG_ST_IO, "cannot stop receiving on channel 0");
			continue;
		}
		if (ret < 0)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		ud = io_uring_cqe_get_data64(cqe);
		if (!ud) {
			cancelled = true;
		} else if (ud_kind(ud) == UD_RECV && !ud_a(ud)) {
			chan_rx_done(&ch->rx, cqe, r->ms, 0);
			if (cqe->res > 0) {
				io_uring_cqe_seen(&r->ring, cqe);
				return fail(r, LMIG_ST_PROTOCOL, "channel 0: data after the end frame");
			}
		}
		io_uring_cqe_seen(&r->ring, cqe);
	}
	return 0;
}

static int confirmed_commit(struct image_receiver *r)
{
	struct lmig_result res;

	if (stop_receiving(r))
		return -1;

	if (r->o->sync && fdatasync(r->out.fd)) {
		r->fail_status = LMIG_ST_IO;
		return lmig_err_errno(errno, "cannot flush %s", r->out.tmp);
	}
	wire_result_build(&res, LMIG_ST_OK, r->npages, NULL);
	if (chan_write_full(r->link[0].fd, &r->link[0].tls, &res, sizeof(res), r->o->timeout_ms,
			    "sending the verdict"))
		return -1;
	r->verdict_sent = true;
	if (chan_read_full(r->link[0].fd, &r->link[0].tls, &res, sizeof(res), r->o->timeout_ms,
			   "waiting for the sender to confirm the commit") ||
	    wire_confirm_parse(&res, r->npages)) {
		r->fail_status = LMIG_ST_PROTOCOL;
		return -1;
	}
	if (dst_image_commit(&r->out, r->o->sync)) {
		r->fail_status = LMIG_ST_IO;
		return -1;
	}
	r->out_ok = false;
	/* Committed: a FINAL that gets lost leaves the source paused, never running. */
	wire_result_build_as(&res, LMIG_FINAL_MAGIC, LMIG_ST_OK, r->npages, NULL);
	chan_write_full(r->link[0].fd, &r->link[0].tls, &res, sizeof(res), r->o->timeout_ms,
			"sending the final result");
	return 0;
}

static int verify_and_commit(struct image_receiver *r)
{
	uint8_t digest[16];

	for (unsigned int c = 1; c < r->nch; c++)
		if (memcmp(r->ch[c].end.digest, r->ch[0].end.digest, 16))
			return fail(r, LMIG_ST_PROTOCOL, "channels disagree on the image digest");
	for (uint64_t p = 0; p < r->npages; p++)
		if (!r->seen[p])
			return fail(r, LMIG_ST_INCOMPLETE, "page %llu never arrived",
				    (unsigned long long)p);
	codec_digest(r->hashes, r->npages, digest);
	memcpy(r->st->digest, digest, sizeof(digest));
	if (memcmp(digest, r->ch[0].end.digest, 16))
		return fail(r, LMIG_ST_DIGEST, "image digest mismatch: the received image differs from the source");
	if (r->o->verify_readback && verify_readback(r, r->ch[0].end.digest))
		return -1;
	if (r->confirm)
		return confirmed_commit(r);
	if (dst_image_commit(&r->out, r->o->sync)) {
		r->fail_status = LMIG_ST_IO;
		return -1;
	}
	r->out_ok = false;
	return 0;
}

int image_recv(const struct recv_opts *o, struct image_stats *st)
{
	struct image_receiver r = { .o = o, .st = st };
	struct lmig_result res;
	int lfd, ret = -1;

	st->tls = o->tls ? NULL : "off";	/* null: no TLS session came up */
	codec_init();
	lfd = chan_listen(o->listen, 16, o->ready_fd);
	if (lfd < 0)
		return -1;
	if (handshake(&r, lfd))
		goto out;
	close(lfd);
	lfd = -1;
	r.t0 = now_s();
	st->channels = r.nch;
	st->tls = tls_mode(&r.link[0].tls, false);
	tls_binding(&r.link[0].tls, st->tls_binding);
	st->bytes_total = r.hi.image_size;
	st->pages_total = r.npages;
	for (unsigned int c = 0; c < r.nch; c++) {
		r.ch[c].wop = -1;
		r.ch[c].bounce = -1;
		start_frame(&r.ch[c]);
	}
	if (setup_rings(&r) || run(&r) || verify_and_commit(&r))
		goto out;
	if (!r.confirm) {
		wire_result_build(&res, LMIG_ST_OK, r.npages, NULL);
		/* The image is committed; a sender that vanished now cannot undo that. */
		chan_write_full(r.link[0].fd, &r.link[0].tls, &res, sizeof(res), o->timeout_ms,
				"sending the commit");
	}
	show_progress(&r, true);
	ret = 0;
out:
	/* After the verdict the sender waits for FINAL: the image goes before it is told. */
	if (ret && r.verdict_sent && r.out_ok) {
		dst_image_abort(&r.out);
		r.out_ok = false;
	}
	if (ret && r.link && r.link[0].fd >= 0) {
		wire_result_build_as(&res, r.verdict_sent ? LMIG_FINAL_MAGIC : LMIG_RESULT_MAGIC,
				     r.fail_status ? r.fail_status : LMIG_ST_IO, 0, result_text(&r));
		chan_say_last(&r.link[0], &res, sizeof(res));
	}
	if (r.out_ok)
		dst_image_abort(&r.out);
	st->total_s = r.t0 ? now_s() - r.t0 : 0;
	/* Workers hold pointers into the pool and the receive buffers. */
	decoder_stop(r.dec);
	free(r.decp);
	if (r.ring_ok)
		io_uring_queue_exit(&r.ring);
	if (lfd >= 0)
		close(lfd);
	/* After a failure, let the sender read the verdict before the connections go. */
	chan_close_all(r.link, r.nch, ret ? 300 : 0);
	for (unsigned int c = 0; r.ch && c < r.nch; c++)
		chan_rx_free(&r.ch[c].rx);
	free(r.link);
	if (r.pool)
		munmap(r.pool, (size_t)NPOOL * LMIG_PAGE_SIZE);
	free(r.wops);
	free(r.ch);
	free(r.hashes);
	free(r.seen);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sender engine: one thread, one io_uring.
 *
 * Each channel owns NBUF registered buffers, and a buffer goes round:
 *
 *   free -> READING: a read of the next run of pages lands at the
 *           payload end of the buffer (IORING_OP_READ_FIXED);
 *   READY: the pages were encoded in place — hashed while cache-hot,
 *          zero pages dropped, lz4 output or raw pages packed behind
 *          each other — and the header and descriptors written right
 *          before them, so the frame is one contiguous block;
 *   sent with IORING_OP_SEND_ZC from the registered buffer (plain send
 *   where the kernel lacks it, or on loopback where it only costs).
 *
 * Reading through the kernel rather than through a mapping of the image
 * costs one copy from the page cache, which is cheaper than faulting in
 * and walking a mapping of every page, and every page is hashed and sent
 * from the same private copy: what the digest covers is what was sent,
 * even if the image changes meanwhile.
 *
 * A channel has at most one send in flight, so its frames stay in order
 * on the stream; a buffer is reused only after its send completed AND
 * every zero-copy notification for it arrived, because until then the
 * kernel may still read it.  With TLS the kernel (kTLS) encrypts what the
 * sends carry; without kTLS a frame is sealed into its buffer's twin,
 * cipher, just before it is sent (records must leave in the order they
 * were sealed, and frames leave a channel in buffer order).  Channel 0
 * also has a receive armed for the
 * receiver's verdict from the start, so an early rejection (checksum,
 * disk full) is reported as such.
 *
 * Which pages go out is a bitmap, "todo": every page in a cold send; in a
 * live send (--pid) every page in round 0 and then, round after round, the
 * pages a dirty tracker harvested.  A round ends with a ROUND frame on
 * every channel (END frames after the last round).  The live controller
 * (live_*() below) harvests, predicts the downtime, and decides when to
 * freeze the workload for the final round.
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
#include "live/freeze.h"
#include "image/image_file.h"
#include "chan/channel.h"
#include "lib/parse.h"
#include "chan/policy.h"
#include "host/probes.h"
#include "chan/ratelimit.h"
#include "host/throttle.h"
#include "live/track.h"
#include "host/tracemark.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "cli/report.h"
#include "image/image.h"


#define NBUF		4
#define BATCH_TARGET	(256 * 1024)	/* image bytes per frame */
#define BATCH_MIN	(64 * 1024)	/* ... but at most 0.1 s of --bandwidth, down to this */
#define BATCH_MAX	(BATCH_TARGET / LMIG_PAGE_SIZE)
#define DESC_AREA	(sizeof(struct lmig_frame) + LMIG_MAX_FRAME_DESC * sizeof(struct lmig_page_desc))
#define BUF_SIZE	(DESC_AREA + LMIG_MAX_PAYLOAD)
/* Switch-over costs besides harvesting and sending: freeze, commit round trip. */
#define SWITCH_OVERHEAD_S	0.003
/* A round smaller than this says little about the rate of the link. */
#define RATE_SAMPLE_MIN		(2 << 20)

enum sbuf_state { SB_FREE, SB_READING, SB_READY };

/* A send buffer: one frame (data, len: inside mem, or its records once sealed). */
struct sbuf {
	CHAN_SBUF;
	enum sbuf_state state;
	uint64_t idx[BATCH_MAX];	/* the pages in the payload, in order */
	unsigned int npages;
	size_t got;		/* ring reads (one run of pages): bytes read so far */
};

/* A channel to the receiver. */
struct image_tx_chan {
	struct chan link;
	struct sbuf buf[NBUF];
	unsigned int fill;	/* next buffer to fill */
	unsigned int head;	/* oldest queued buffer not yet fully sent */
	unsigned int queued;	/* filled or being filled, not fully sent */
	bool inflight;
	/*
	 * ROUND frames (and the END frame) due before any more pages: a
	 * channel may still owe one for a round when the next one closes.
	 */
	unsigned int rounds_due;
	bool end_due, end_built;
	uint64_t round_seq;	/* the round its next ROUND frame ends */
	uint64_t seq, pages, frames;
};

struct sender {
	const struct send_opts *o;
	struct image_stats *st;
	struct src_image im;
	struct io_uring ring;
	struct chan_tx tx;		/* the ring's channel side, the send buffers */
	bool sync_read;			/* memory: read right here, any pages per frame */
	unsigned int batch_pages;	/* pages read into one frame */
	struct image_tx_chan *ch;
	unsigned int nch, rr;
	uint64_t *hashes;		/* per page: hash of what was last sent */
	uint64_t *todo;			/* this round's pages not yet read */
	uint64_t cursor;		/* no todo bit is set below it */
	unsigned int reading;		/* buffers with a ring read in flight */
	uint64_t pages_done;		/* pages encoded, all rounds */
	bool digest_done;
	uint8_t digest[16];
	uint8_t lz4_out[LMIG_PAGE_SIZE];
	struct lmig_result result;
	struct chan_reply rp;		/* receives result on channel 0 */
	bool result_in, result_armed;
	bool confirm;			/* LMIG_CAP_CONFIRM: the verdict, CONFIRM, then FINAL */
	bool unknown;			/* CONFIRM sent, no valid FINAL: outcome unknown */
	struct cpolicy pol;
	struct ratelimit rl;
	double t0, last_progress;
	/* rounds */
	bool final;			/* the current round is the last */
	bool round_closed;		/* its pages are all encoded */
	uint64_t round_pages, round_wire;
	double round_t0;
	/* the live controller */
	bool live;
	bool freeze_next;		/* freeze once this round is on the wire */
	bool draining;			/* ... and it is not yet */
	struct track_target tg;
	struct tracker trk;
	bool trk_ok;
	struct freezer fz;
	uint64_t *harvested;
	double t_harvest;		/* when the last harvest began */
	double link_rate;		/* wire bytes per second, estimated */
	double wire_per_page;		/* wire bytes per page sent, recent rounds */
	double predicted_s;		/* of the latest harvest */
	double dirty_mbps;		/* of the latest harvest */
	double t_freeze;
	uint64_t rounds_acked;		/* rounds the receiver applied */
	/* convergence: the CPU throttle (throttle.h) */
	struct tsnap snap[2];		/* per-thread counters at the last two harvests */
	unsigned int bad_rounds;	/* harvests in a row that did not converge */
	double prev_pred;
	double hs_min;			/* the cheapest harvest so far */
	struct throttle th;
	bool th_on, th_off;		/* applied; given up on (cannot, or useless) */
	unsigned int th_fails;		/* attempts to apply a limit that failed */
	pid_t th_tids[THROTTLE_MAX_TIDS];
	unsigned int th_ntids;		/* 0: the whole process */
	double cpu_base;		/* CPUs the throttled set used before the limit */
	struct probes pr;		/* fault and steal counters of the workload */
	struct probe_sample ps;
	bool ps_ok;			/* ps holds the sample of the last harvest */
	double d_before;		/* dirty rate before the limit */
	double io_base;			/* disk write rate (bytes/s) of the limited set before */
};

static int channels_connect(struct sender *s)
{
	uint32_t want = LMIG_CAPS_V1 | LMIG_CAP_CONFIRM | (s->live ? LMIG_CAP_ROUNDS : 0);
	struct hello_info hi = { .caps = want, .nchannels = s->nch, .image_size = s->im.size };
	uint32_t caps;

	if (chan_session(&hi))
		return -1;
	for (unsigned int i = 0; i < s->nch; i++) {
		hi.channel = i;
		if (chan_dial(&s->ch[i].link, s->o->to, s->o->timeout_ms, s->o->tls, false, &hi,
			      &caps))
			return -1;
		if ((caps & LMIG_CAPS_V1) != LMIG_CAPS_V1)
			return lmig_err("receiver lacks lz4 or zero-run support (caps 0x%x)", caps);
		if (s->live && !(caps & LMIG_CAP_ROUNDS))
			return lmig_err("receiver cannot take a live migration (no rounds; caps 0x%x): upgrade its lmig",
					caps);
		if (i == 0)
			s->confirm = caps & LMIG_CAP_CONFIRM;
	}
	return 0;
}

static int result_got(void *arg);

static int ring_setup(struct sender *s)
{
	if (chan_tx_setup(&s->tx, &s->ring, 4 * s->nch * NBUF + 8, s->o->zerocopy,
			  s->ch[0].link.fd, s->nch, NBUF, BUF_SIZE))
		return -1;
	for (unsigned int c = 0; c < s->nch; c++)
		for (unsigned int b = 0; b < NBUF; b++)
			if (chan_tx_buf(&s->tx, &s->ch[c].link, c, b, &s->ch[c].buf[b].sb))
				return -1;
	s->rp = (struct chan_reply){ .ch = &s->ch[0].link, .msg = &s->result,
				     .len = sizeof(s->result), .stop = &s->result_in,
				     .got = result_got, .arg = s, .what = "verdict",
				     .waiting = "waiting for the receiver's verdict" };
	return chan_reply_init(&s->rp);
}

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

static int handle_read(struct sender *s, unsigned int c, unsigned int bi, int res)
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
 * the payload; the others are packed behind each other, lz4-compressed
 * when the policy says so.  Pages only move towards the start of the
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

			n = codec_lz4_page_accel(p, s->lz4_out, cpolicy_accel(&s->pol));
			cpolicy_sampled(&s->pol, LMIG_PAGE_SIZE, n ? n : LMIG_PAGE_SIZE, now_s() - t);
		}
		if (n) {
			memcpy(payload + plen, s->lz4_out, n);
			d[nd++] = (struct lmig_page_desc){ .index = htole64(pg),
							   .enc = htole16(LMIG_ENC_LZ4),
							   .len = htole32(n), .hash = htole64(h) };
			s->st->pages_compressed++;
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

/* ---- sending ---------------------------------------------------------- */

static int submit_send(struct sender *s, unsigned int c)
{
	struct image_tx_chan *ch = &s->ch[c];

	if (chan_send(&s->tx, &ch->link, c, ch->head, &ch->buf[ch->head].sb))
		return -1;
	ch->inflight = true;
	return 0;
}

static void arm_result(struct sender *s)
{
	if (s->result_armed)
		return;
	chan_reply_arm(&s->rp, &s->ring);
	s->result_armed = true;
}

static bool all_sent(struct sender *s);

static void release_if_done(struct sbuf *b)
{
	if (chan_sbuf_idle(&b->sb))
		b->state = SB_FREE;
}

/* A whole reply is in s->result: a round acknowledged, or the verdict. */
static int result_got(void *arg)
{
	struct sender *s = arg;
	uint64_t round;
	int ack = wire_round_ack_parse(&s->result, &round);

	if (ack < 0)
		return -1;
	if (ack == 0) {
		if (!s->live || round != s->rounds_acked)
			return lmig_err("receiver acknowledged round %llu out of turn",
					(unsigned long long)round);
		s->rounds_acked++;
		return 0;
	}
	s->result_in = true;
	return 0;
}

/* A send's completion on channel c. */
static int send_done(struct sender *s, unsigned int c, unsigned int bi,
		     const struct io_uring_cqe *cqe)
{
	struct image_tx_chan *ch = &s->ch[c];
	struct sbuf *b = &ch->buf[bi];
	int rc = chan_send_done(&s->tx, &b->sb, cqe, c, "mid-transfer", &s->st->bytes_wire);

	if (rc != CHAN_NOTIF)
		ch->inflight = false;
	if (rc == CHAN_NO_ZC)
		s->st->zerocopy = false;
	if (rc == CHAN_SENT) {
		ch->head = (ch->head + 1) % NBUF;
		ch->queued--;
	}
	/* A short send or a refused zero-copy stays READY: run() sends it again. */
	if (rc == CHAN_NOTIF || rc == CHAN_SENT)
		release_if_done(b);
	return rc < 0 ? -1 : 0;
}

static int handle_cqe(struct sender *s, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int kind = ud_kind(ud), c = ud_a(ud), bi = ud_b(ud);

	if (kind == UD_REPLY) {
		s->result_armed = false;
		if (chan_reply_in(&s->rp, cqe->res, all_sent(s) ?
				  "receiver closed the connection before it committed the image" :
				  "receiver closed the connection mid-transfer"))
			return -1;
		if (!s->result_in)
			arm_result(s);
		return 0;
	}
	if (kind == UD_READ)
		return handle_read(s, c, bi, cqe->res);
	return send_done(s, c, bi, cqe);
}

/* ---- the todo bitmap -------------------------------------------------- */

/* The first page at or after the cursor still to send this round, or npages. */
static uint64_t next_todo(struct sender *s)
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
		uint64_t p = next_todo(s);

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
static double fill_buffers(struct sender *s, bool *blocked)
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

		if (next_todo(s) >= s->im.npages)
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

static bool all_sent(struct sender *s)
{
	if (!s->round_closed || !s->final)
		return false;
	for (unsigned int c = 0; c < s->nch; c++)
		if (!s->ch[c].end_built || s->ch[c].queued)
			return false;
	return true;
}

static bool drained(struct sender *s)
{
	for (unsigned int c = 0; c < s->nch; c++)
		if (s->ch[c].rounds_due || s->ch[c].queued)
			return false;
	return true;
}

/* ---- rounds and the live controller ----------------------------------- */

static void set_markers(struct sender *s, bool end)
{
	for (unsigned int c = 0; c < s->nch; c++) {
		if (end)
			s->ch[c].end_due = true;
		else
			s->ch[c].rounds_due++;
	}
}

/*
 * Begin round st->rounds with the pages in the todo bitmap: its record
 * gets what the harvest that produced it measured.
 */
static int round_begin(struct sender *s, uint64_t pages, double harvest_s, bool final)
{
	struct round_stat *r;
	unsigned int n = s->st->rounds;

	r = realloc(s->st->round, (n + 1) * sizeof(*r));
	if (!r)
		return lmig_err("out of memory");
	s->st->round = r;
	r += n;
	*r = (struct round_stat){ .round = n, .dirty_pages = pages,
				  .dirty_mbps = n ? s->dirty_mbps : 0,
				  .predicted_downtime_ms = n ? s->predicted_s * 1000 : 0,
				  .harvest_ms = harvest_s * 1000, .frozen = final && s->live,
				  .start_s = now_s() - s->t0, .faults_per_s = -1,
				  .write_faults_per_s = -1, .guest_faults_per_s = -1,
				  .guest_exits_per_s = -1, .steal_pct = -1 };
	s->st->rounds = n + 1;
	s->final = final;
	s->round_closed = false;
	s->cursor = 0;
	s->round_pages = 0;
	s->round_wire = 0;
	s->round_t0 = now_s();
	if (s->live)
		tracemark("round %u begins: %llu pages%s", n, (unsigned long long)pages,
			  final ? ", workload paused" : "");
	return 0;
}

/* Round over: learn the link's rate and what a page costs on the wire. */
static void round_account(struct sender *s)
{
	struct round_stat *r = &s->st->round[s->st->rounds - 1];
	double secs = now_s() - s->round_t0;

	r->bytes_wire = s->round_wire;
	if (s->round_pages) {
		double wpp = (double)s->round_wire / s->round_pages;

		s->wire_per_page = s->wire_per_page ? (s->wire_per_page + wpp) / 2 : wpp;
	}
	if (secs > 0 && (s->round_wire >= RATE_SAMPLE_MIN || !s->link_rate)) {
		double rate = s->round_wire / secs;

		if (s->o->bandwidth && rate > s->o->bandwidth)
			rate = s->o->bandwidth;
		s->link_rate = s->link_rate ? (s->link_rate + rate) / 2 : rate;
	}
	r->rate_mbps = s->wire_per_page > 0 ? s->link_rate / s->wire_per_page *
					      LMIG_PAGE_SIZE / 1e6 : 0;
}

static int harvest(struct sender *s, uint64_t *pages, double *secs)
{
	double t = now_s(), since = t - s->t_harvest;

	memset(s->harvested, 0, bitmap_words(s->im.npages) * 8);
	if (tracker_harvest(&s->trk, s->harvested))
		return -1;
	*secs = now_s() - t;
	*pages = bitmap_count(s->harvested, s->im.npages);
	s->ps_ok = s->pr.ok && !probes_sample(&s->pr, &s->ps);
	s->dirty_mbps = since > 0 ? *pages * (double)LMIG_PAGE_SIZE / since / 1e6 : 0;
	s->t_harvest = t;
	/* The harvested pages are the next round's todo (this round's are all taken). */
	uint64_t *t2 = s->todo;

	s->todo = s->harvested;
	s->harvested = t2;
	return 0;
}

static void show_progress(struct sender *s, bool final);

/*
 * Convergence (--throttle auto).  After two harvests in a row where the
 * workload dirtied at least 90 % of what the link carries, or the
 * predicted downtime did not fall by a quarter (one, if it watched for
 * LONG_LOOK_S), the workload gets a CPU limit aimed at a dirty rate of a
 * third of the link's (DIRTY_TARGET), and every later harvest corrects
 * it from the newly measured rate (limit x target / measured, dirty-limit
 * style, not fixed steps), never below what --throttle-max leaves it.
 * Where the tracker's write faults tell which threads write, only those
 * are limited (v1: moved; v2: a threaded child cgroup).  A limit
 * that halves the CPU without lowering the dirty rate is useless — the
 * writer does not need the CPU to write — and is said so, not tightened.
 */
/*
 * The threads that took 80 % of the write faults the probes counted since
 * the last harvest, into th_tids; 0 (the whole process) when they are most
 * of its threads or the faults are too few to tell.
 */
static unsigned int probe_dirtiers(struct sender *s)
{
	const struct probe_sample *ps = &s->ps;
	uint64_t total = 0, taken = 0;
	bool used[1024] = { false };
	unsigned int n = 0, nt = ps->nthreads < 1024 ? ps->nthreads : 1024;

	for (unsigned int i = 0; i < nt; i++)
		total += ps->threads[i].c.write_faults;
	if (total < 64)
		return tsnap_dirtiers(&s->snap[0], &s->snap[1], s->th_tids, THROTTLE_MAX_TIDS);
	while (n < THROTTLE_MAX_TIDS && taken * 10 < total * 8) {
		int best = -1;

		for (unsigned int i = 0; i < nt; i++)
			if (!used[i] && (best < 0 || ps->threads[i].c.write_faults >
						      ps->threads[best].c.write_faults))
				best = i;
		if (best < 0)
			break;
		used[best] = true;
		taken += ps->threads[best].c.write_faults;
		s->th_tids[n++] = ps->threads[best].tid;
	}
	return n * 2 > nt ? 0 : n;
}

/*
 * With the CPU limit in place: a workload that also writes to disk at
 * least THROTTLE_IO_MIN_BPS gets its disk writes limited as well (v1:
 * the threads that did most of them).  Why not, if not, goes to the
 * report; the CPU limit stays either way.
 */
static void throttle_io_start(struct sender *s)
{
	double wbps = tsnap_wbps(&s->snap[0], &s->snap[1], NULL, 0);
	pid_t tids[THROTTLE_MAX_TIDS];
	unsigned int n;
	char *note = s->st->throttle_io_note;
	size_t len = sizeof(s->st->throttle_io_note);

	if (wbps < THROTTLE_IO_MIN_BPS)
		return;
	n = tsnap_diskwriters(&s->snap[0], &s->snap[1], tids, THROTTLE_MAX_TIDS);
	if (throttle_io_init(&s->th, tids, n)) {
		snprintf(note, len, "disk writes (%.1f MB/s) not limited: %s", wbps / 1e6,
			 lmig_errmsg());
		lmig_err_clear();
		return;
	}
	s->io_base = s->th.io.per_thread ? tsnap_wbps(&s->snap[0], &s->snap[1], tids, n) : wbps;
	if (s->io_base < THROTTLE_IO_MIN_BPS)
		s->io_base = THROTTLE_IO_MIN_BPS;
	snprintf(note, len, "disk writes of the %s (%.1f MB/s) limited on %u device%s (cgroup %s%.120s)",
		 s->th.io.per_thread ? "threads that write to disk" : "process", s->io_base / 1e6,
		 s->th.io.ndev, s->th.io.ndev == 1 ? "" : "s", s->th.io.v2 ? "v2 io.max " :
		 "v1 blkio ", s->th.io.cg);
}

/* No more disk limit (the CPU limit stays until the end). */
static void throttle_io_lift(struct sender *s)
{
	if (s->th_on && s->th.io.on && !throttle_io_restore(&s->th.io))
		throttle_state_save(&s->th);
}

/*
 * Applying a limit failed (the error goes to the report): tried again at
 * the next bad harvest, since a thread that moved or exited meanwhile is
 * enough to fail one attempt; after THROTTLE_TRIES, given up.
 */
#define THROTTLE_TRIES	3
static void throttle_failed(struct sender *s)
{
	snprintf(s->st->throttle_note, sizeof(s->st->throttle_note), "cannot throttle%s: %s",
		 ++s->th_fails < THROTTLE_TRIES ? " (will try again)" : "", lmig_errmsg());
	lmig_err_clear();
	s->th_off = s->th_fails >= THROTTLE_TRIES;
	if (s->o->progress)
		fprintf(stderr, "\nlmig send: %s\n", s->st->throttle_note);
}

#define LONG_LOOK_S	3.0
/*
 * The dirty rate a limit aims at, as a fraction of the link: each round
 * then sends about this fraction of the one before.  A half took 12
 * rounds (89 s) for a 1 GiB writer at twice the link; the measured rate
 * counts distinct pages and reads low over long rounds, so the limit
 * comes out looser than aimed.
 */
#define DIRTY_TARGET	(1.0 / 3)

/* Returns true when it lifted a limit: the workload now writes faster than pred assumed. */
static bool throttle_round(struct sender *s, double pred, uint64_t pages)
{
	struct round_stat *last = &s->st->round[s->st->rounds - 1];
	double link = last->rate_mbps, d = s->dirty_mbps, used, share, floor;
	/*
	 * Rounds shrinking by less than a quarter each converge too slowly
	 * to wait for (from 2 s to 300 ms takes 7 of them).
	 */
	bool bad;

	s->snap[0] = s->snap[1];
	tsnap_take(s->o->pid, &s->snap[1]);
	/*
	 * Round 0 sent the whole image: what it took is the "prediction" the
	 * first harvest is compared with.  (Its dirty rate counts distinct
	 * pages, which saturates over a long round: a writer at twice the
	 * link shows below it, but the round does not shrink.)
	 */
	if (!s->prev_pred)
		s->prev_pred = s->snap[1].t - s->snap[0].t;
	bad = d >= 0.9 * link || (s->prev_pred > 0 && pred > 0.75 * s->prev_pred);
	used = tsnap_cpus(&s->snap[0], &s->snap[1], s->th_tids, s->th_ntids);
	s->prev_pred = pred;
	s->bad_rounds = bad && pred * 1000 > s->o->downtime_ms ? s->bad_rounds + 1 : 0;
	if (!s->o->throttle || s->th_off)
		return false;
	if (!s->th_on) {
		/*
		 * Two bad harvests in a row; or one that watched the workload
		 * for LONG_LOOK_S or more — round 0 of a large image lasts many
		 * seconds, and waiting for a second such round costs as long
		 * again (a 1 GiB image at 40 MB/s: 24 s).
		 */
		bool long_look = s->snap[1].t - s->snap[0].t >= LONG_LOOK_S;

		if (s->bad_rounds < 2 && !(s->bad_rounds && long_look))
			return false;
		s->th_ntids = s->ps_ok ? probe_dirtiers(s) :
			      tsnap_dirtiers(&s->snap[0], &s->snap[1], s->th_tids, THROTTLE_MAX_TIDS);
		if (throttle_init(&s->th, s->o->pid, s->th_tids, s->th_ntids)) {
			throttle_failed(s);
			return false;
		}
		if (!s->th.per_thread)
			s->th_ntids = 0;
		used = tsnap_cpus(&s->snap[0], &s->snap[1], s->th_tids, s->th_ntids);
		s->cpu_base = used > 0.02 ? used : 0.02;
		s->d_before = d;
		s->th_on = true;
		s->st->throttled = true;
		snprintf(s->st->throttle_note, sizeof(s->st->throttle_note), "%s %s (cgroup %s%.150s)",
			 s->th_ntids ? "threads" : "process", s->th_ntids ? "that write" : "whole",
			 s->th.v2 ? "v2 " : "v1 ", s->th.tcg[0] ? s->th.tcg : s->th.cg);
		throttle_io_start(s);
	} else if (s->th.share > 0 && used <= 0.5 * s->cpu_base && d >= 0.8 * s->d_before &&
		   pages < s->im.npages / 2) {
		/*
		 * The CPU it used, measured, not the limit set: a limit takes a
		 * while to bite (the first round under it used up to twice its
		 * share), and until it does, an undiminished dirty rate says
		 * nothing.  (A workload that rewrites most of the memory every
		 * round keeps its count of distinct pages up even when it
		 * writes less: no verdict from that either.)
		 */
		snprintf(s->st->throttle_note, sizeof(s->st->throttle_note),
			 "ineffective: %.0f%% of its CPU taken, dirty rate still %.1f of %.1f MB/s; the writer does not need the CPU to write",
			 100 - 100 * used / s->cpu_base, d, s->d_before);
		s->th_off = true;
		/* It only slows the workload: lift it. */
		if (throttle_restore(&s->th))
			lmig_err_clear();
		s->th_on = false;
		if (s->o->progress)
			fprintf(stderr, "\nlmig send: throttle %s\n", s->st->throttle_note);
		return true;
	}
	share = used > 0 ? used * DIRTY_TARGET * link / (d > 0.1 ? d : 0.1) : s->cpu_base;
	floor = s->cpu_base * (100 - s->o->throttle_max_pct) / 100.0;
	if (share > s->cpu_base)
		share = s->cpu_base;
	if (share < floor)
		share = floor;
	if (share < 0.01)
		share = 0.01;
	/*
	 * The switch-over comes after one more round, predicted at the dirty
	 * rate just measured under the current limit: a looser limit now
	 * would let the workload dirty faster than that and overrun the
	 * budget (seen: 5.9 % raised to 18.3 %, 2.8x the pages, 500 ms).
	 */
	if (pred * 1000 <= s->o->downtime_ms && s->th.share > 0 && share > s->th.share)
		share = s->th.share;
	if (throttle_set(&s->th, share)) {
		throttle_failed(s);
		/*
		 * Put back what was applied, so the next bad harvest can start
		 * afresh; if that fails too, no more tries: the end restores it.
		 */
		if (throttle_restore(&s->th)) {
			lmig_err_clear();
			s->th_off = true;
		} else {
			s->th_on = false;
		}
		return false;
	}
	/* Disk writes are held to the same fraction of what they were as the CPU. */
	if (s->th.io.on && throttle_io_set(&s->th, s->io_base * share / s->cpu_base)) {
		snprintf(s->st->throttle_io_note, sizeof(s->st->throttle_io_note), "%s",
			 lmig_errmsg());
		lmig_err_clear();
		if (throttle_io_restore(&s->th.io) == 0)
			throttle_state_save(&s->th);
	}
	return false;
}

/* The workload's CPU and limit, into the record of the round just begun. */
static void throttle_record(struct sender *s)
{
	struct round_stat *r = &s->st->round[s->st->rounds - 1];

	r->cpu_used = tsnap_cpus(&s->snap[0], &s->snap[1], s->th_tids, s->th_ntids);
	r->throttle_cpus = s->th_on ? s->th.share : 0;
	r->io_limit_mbps = s->th_on && s->th.io.on ? s->th.io.bps / 1e6 : 0;
	r->disk_write_mbps = tsnap_wbps(&s->snap[0], &s->snap[1], NULL, 0) / 1e6;
	if (s->ps_ok && s->ps.interval_s > 0) {
		double iv = s->ps.interval_s;

		r->faults_per_s = s->ps.c.faults / iv;
		r->write_faults_per_s = s->ps.c.write_faults / iv;
		r->guest_faults_per_s = s->ps.c.guest_faults / iv;
		r->guest_exits_per_s = s->ps.c.guest_exits / iv;
		r->steal_pct = s->ps.steal_pct;
	}
}

/*
 * Between two live rounds: harvest, predict the downtime of a switch-over
 * now, and either go on, or arrange to freeze after one more round, or
 * give up because the migration does not converge.
 */
/*
 * The object check's content comparison (--object-writes any) can be most
 * of a harvest, and so of the predicted downtime: say so, since the remedy
 * is the operator's knowledge of who writes the object, not a throttle.
 */
static bool compare_bound(const struct sender *s)
{
	return s->trk.obj_rescans && s->hs_min * 1000 > s->o->downtime_ms / 2.0;
}

static const char *converge_hint(const struct sender *s)
{
	if (s->trk.obj_rescans)
		return "most of each harvest compares every page in case a system call wrote the object: "
		       "--object-writes mapped if only mappings write it, or a larger --downtime-ms";
	return "use a cheaper tracker or a larger budget";
}

static int live_next_round(struct sender *s)
{
	uint64_t pages;
	double hs, pred;
	unsigned int next = s->st->rounds;
	bool lifted;

	if (harvest(s, &pages, &hs))
		return -1;
	/*
	 * The final harvest runs with the workload paused; a harvest while it
	 * runs can cost more (write-protecting pages it is using means TLB
	 * shootdowns on its CPUs).  The cheapest harvest seen so far is the
	 * better guess of what the paused one will cost.
	 */
	if (!s->hs_min || hs < s->hs_min)
		s->hs_min = hs;
	pred = (s->link_rate > 0 ? pages * s->wire_per_page / s->link_rate : 0) + s->hs_min +
	       SWITCH_OVERHEAD_S;
	s->predicted_s = pred;
	/* A limit lifted now makes this prediction stale: wait for the next harvest. */
	lifted = throttle_round(s, pred, pages);
	if (pred * 1000 <= s->o->downtime_ms && !lifted) {
		s->freeze_next = true;
		/* The disk limit goes a round early: see live_switch_over(). */
		throttle_io_lift(s);
	} else if (next >= 6 && (pred - s->hs_min) * 1000 < s->o->downtime_ms / 10.0 &&
		   (s->hs_min + SWITCH_OVERHEAD_S) * 1000 > s->o->downtime_ms) {
		/* Little left to send, yet over budget: the harvest itself is. */
		return lmig_err("cannot converge: the %s tracker's harvest alone takes %.0f ms, more than --downtime-ms %u (%s)",
				s->trk.ops->name, s->hs_min * 1000, s->o->downtime_ms,
				converge_hint(s));
	} else if (next >= s->o->max_rounds) {
		return lmig_err("did not converge in %u rounds: %.1f MB/s dirtied, %.1f MB/s carried, predicted downtime %.0f ms > --downtime-ms %u%s%s%s",
				s->o->max_rounds, s->dirty_mbps,
				s->st->round[next - 1].rate_mbps, pred * 1000, s->o->downtime_ms,
				compare_bound(s) ? " (" : "", compare_bound(s) ? converge_hint(s) : "",
				compare_bound(s) ? ")" : "");
	} else if (s->o->live_timeout_ms &&
		   (now_s() - s->t0) * 1000 >= s->o->live_timeout_ms) {
		return lmig_err("did not converge within --timeout %d s: %.1f MB/s dirtied, %.1f MB/s carried, predicted downtime %.0f ms > --downtime-ms %u%s%s%s",
				s->o->live_timeout_ms / 1000, s->dirty_mbps,
				s->st->round[next - 1].rate_mbps, pred * 1000, s->o->downtime_ms,
				compare_bound(s) ? " (" : "", compare_bound(s) ? converge_hint(s) : "",
				compare_bound(s) ? ")" : "");
	}
	if (round_begin(s, pages, hs, false))
		return -1;
	throttle_record(s);
	show_progress(s, false);
	return 0;
}

/* Everything sent: pause the workload, harvest one last time, send the rest. */
static int live_switch_over(struct sender *s)
{
	uint64_t pages;
	double hs;

	s->draining = false;
	/*
	 * A thread whose write waits in the disk throttle cannot stop until
	 * the write is done (1 MiB at 3 MB/s: a third of a second of
	 * downtime): the disk limit is lifted when the switch-over is
	 * decided, a round before, so the queued writes are done by now.
	 */
	throttle_io_lift(s);
	/*
	 * A thread that used up its CPU quota cannot take the stop signal (or
	 * the cgroup freezer) until the next period: with a 10 % limit that
	 * is up to 90 ms of downtime.  Lifted just before the freeze; what it
	 * writes in those microseconds is in the final harvest.
	 */
	if (s->th_on && throttle_set(&s->th, 0))
		lmig_err_clear();
	s->t_freeze = now_s();
	tracemark("freeze (%s)", freezer_name(&s->fz));
	if (freezer_freeze(&s->fz))
		return -1;
	s->st->freeze_s = s->fz.freeze_s;
	if (harvest(s, &pages, &hs))
		return -1;
	s->st->final_harvest_s = hs;
	if (round_begin(s, pages, hs, true))
		return -1;
	throttle_record(s);
	show_progress(s, false);
	return 0;
}

/* The current round's pages are all encoded: mark its end, decide what next. */
static int round_close(struct sender *s)
{
	s->round_closed = true;
	round_account(s);
	if (s->final) {
		codec_digest(s->hashes, s->im.npages, s->digest);
		s->digest_done = true;
		set_markers(s, true);
		return 0;
	}
	set_markers(s, false);
	if (s->freeze_next) {
		s->draining = true;	/* live_switch_over() once it is all on the wire */
		return 0;
	}
	return live_next_round(s);
}

static void show_progress(struct sender *s, bool final)
{
	double t = now_s(), el = t - s->t0;
	char a[32], line[256];

	if (!s->o->progress || (!final && t - s->last_progress < 0.5 && !s->o->plain_progress))
		return;
	if (!s->live) {
		char extra[64];

		s->last_progress = t;
		snprintf(extra, sizeof(extra), "lz4 %s", s->pol.lz4 ? "on" : "off");
		progress_show("sent", s->pages_done * LMIG_PAGE_SIZE > s->im.size ? s->im.size :
				      s->pages_done * LMIG_PAGE_SIZE,
			      s->im.size, el, extra, final);
		return;
	}
	/* Plain lines (not a terminal): one per round, not a redraw twice a second. */
	if (s->o->plain_progress && !final && s->last_progress >= s->round_t0 && s->last_progress)
		return;
	s->last_progress = t;
	{
		struct round_stat *r = &s->st->round[s->st->rounds - 1];
		double rate = s->link_rate > 0 && s->wire_per_page > 0 ?
			      s->link_rate / s->wire_per_page * LMIG_PAGE_SIZE / 1e6 : 0;
		uint64_t todo = r->dirty_pages > s->round_pages ? r->dirty_pages - s->round_pages : 0;
		double eta = rate > 0 ? todo * (double)LMIG_PAGE_SIZE / (rate * 1e6) : 0;

		char th[128] = "";

		if (s->th_on)
			snprintf(th, sizeof(th), "  throttle %.0f%% CPU", s->th.share * 100);
		if (s->th_on && s->th.io.on)
			snprintf(th + strlen(th), sizeof(th) - strlen(th), " %.0f MB/s disk",
				 s->th.io.bps / 1e6);
		if (s->ps_ok && s->ps.interval_s > 0)
			snprintf(th + strlen(th), sizeof(th) - strlen(th), "  wf %.0f/s steal %.0f%%",
				 s->ps.c.write_faults / s->ps.interval_s, s->ps.steal_pct);
		snprintf(line, sizeof(line),
			 "round %u%s  dirty %.1f MB/s  sent %s  %.1f MB/s  ETA %.1f s  predicted downtime %.0f ms%s",
			 r->round, r->frozen ? " (frozen)" : "", s->dirty_mbps,
			 fmt_bytes(a, sizeof(a), (double)s->st->bytes_wire), rate, eta,
			 s->predicted_s * 1000, th);
	}
	if (s->o->plain_progress)
		fprintf(stderr, "%.1f s  %s%s\n", el, line, final ? "  done" : "");
	else
		fprintf(stderr, "\r%.1f s  %s\033[K%s", el, line, final ? "\n" : "");
	fflush(stderr);
}

/* SIGINT/SIGTERM/SIGHUP end a live send through its normal failure path. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static int confirm_commit(struct sender *s);

static int run(struct sender *s)
{
	int stall_ms = s->o->timeout_ms;
	double last_event = now_s();

	arm_result(s);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts;
		bool blocked;
		double wait = fill_buffers(s, &blocked), t;
		bool rate_wait = wait > 0;
		int ret;

		if (wait < 0)
			return -1;
		if (!s->round_closed && !s->reading && next_todo(s) >= s->im.npages) {
			if (round_close(s))
				return -1;
			continue;	/* markers and the next round's pages */
		}
		if (s->draining && drained(s) && s->rounds_acked == s->st->rounds) {
			if (live_switch_over(s))
				return -1;
			continue;
		}
		for (unsigned int c = 0; c < s->nch; c++)
			if (!s->ch[c].inflight && s->ch[c].queued &&
			    s->ch[c].buf[s->ch[c].head].state == SB_READY &&
			    submit_send(s, c))
				return -1;
		if (s->result_in)
			break;
		if (all_sent(s) && !s->result_armed)
			break;
		if (stop_signal)
			return lmig_err("interrupted by signal %d", (int)stop_signal);
		/* --timeout bounds pre-copy even inside a long round. */
		if (s->live && !s->fz.frozen && s->o->live_timeout_ms &&
		    (now_s() - s->t0) * 1000 >= s->o->live_timeout_ms) {
			char a[32], b[32];

			if (s->st->rounds == 1)
				return lmig_err("did not converge within --timeout %d s: still in round 0, %s of %s sent",
						s->o->live_timeout_ms / 1000,
						fmt_bytes(a, sizeof(a), (double)s->round_pages * LMIG_PAGE_SIZE),
						fmt_bytes(b, sizeof(b), (double)s->im.size));
			return lmig_err("did not converge within --timeout %d s (round %u, %.1f MB/s dirtied, predicted downtime %.0f ms > --downtime-ms %u)",
					s->o->live_timeout_ms / 1000, s->st->rounds - 1, s->dirty_mbps,
					s->predicted_s * 1000, s->o->downtime_ms);
		}

		io_uring_submit(&s->ring);
		if (wait <= 0 || wait > 0.5)
			wait = 0.5;
		ts.tv_sec = (long long)wait;
		ts.tv_nsec = (long long)((wait - ts.tv_sec) * 1e9);
		t = now_s();
		/* Waiting for our own --bandwidth tokens is not a stall of the receiver. */
		if (rate_wait)
			last_event = t;
		ret = io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts);
		if (blocked || rate_wait || all_sent(s))
			cpolicy_waited(&s->pol, now_s() - t);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		if (ret == 0) {
			unsigned int head, n = 0;

			io_uring_for_each_cqe(&s->ring, head, cqe) {
				n++;
				if (handle_cqe(s, cqe)) {
					io_uring_cq_advance(&s->ring, n);
					return -1;
				}
			}
			io_uring_cq_advance(&s->ring, n);
			last_event = now_s();
		} else if (now_s() - last_event > stall_ms / 1000.0) {
			return lmig_err("no progress for %d s: receiver stalled", stall_ms / 1000);
		}
		cpolicy_tick(&s->pol, now_s());
		show_progress(s, false);
	}
	if (!s->result_in)
		return lmig_err("receiver sent no verdict");
	if (wire_result_parse(&s->result, &(uint64_t){ 0 }))
		return -1;
	/* Before anything else: a kill of lmig from now on must not resume the source. */
	freezer_commit_point(&s->fz);
	if (s->confirm && confirm_commit(s))
		return -1;
	if (s->live) {
		s->st->downtime_s = now_s() - s->t_freeze;
		s->st->converged = true;
	}
	/* The kernel may still hold zero-copy references: wait for every notification. */
	for (;;) {
		bool pending = false;
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = 2 };

		for (unsigned int c = 0; c < s->nch; c++)
			for (unsigned int b = 0; b < NBUF; b++)
				pending |= s->ch[c].buf[b].notifs > 0;
		if (!pending)
			break;
		if (io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts))
			break;
		handle_cqe(s, cqe);
		io_uring_cqe_seen(&s->ring, cqe);
	}
	show_progress(s, true);
	return 0;
}

/*
 * LMIG_CAP_CONFIRM: the verdict said "verified, ready to commit", and the
 * guard knows that the source must not run again on its own (a kill of
 * lmig from here on leaves it paused).  Now the receiver is told to
 * commit, and its final result decides.  A FINAL that does not
 * come, or comes damaged, leaves the outcome unknown: the image may or
 * may not be committed, so the source stays paused.
 */
static int confirm_commit(struct sender *s)
{
	struct lmig_result m;
	uint32_t status;
	char why[300];

	wire_result_build_as(&m, LMIG_CONFIRM_MAGIC, LMIG_ST_OK, s->im.npages, NULL);
	if (chan_write_full(s->ch[0].link.fd, &s->ch[0].link.tls, &m, sizeof(m), s->o->timeout_ms,
			    "confirming the commit") == 0) {
		if (chan_read_full(s->ch[0].link.fd, &s->ch[0].link.tls, &m, sizeof(m), s->o->timeout_ms,
				   "waiting for the receiver's final result") == 0 &&
		    wire_final_parse(&m, &status) == 0)
			return status == LMIG_ST_OK ? 0 : -1;	/* not committed: resume */
	}
	/* Even a CONFIRM that failed to go out whole may have reached the receiver. */
	snprintf(why, sizeof(why), "%s", lmig_errmsg());
	lmig_err_clear();
	s->unknown = true;
	return lmig_err("outcome unknown: the receiver verified the image and was told to commit it, but no valid final result came (%s); the source stays paused: check --out on the receiver",
			why);
}

/* ---- set-up ----------------------------------------------------------- */

static int source_open(struct sender *s)
{
	const struct send_opts *o = s->o;

	if (o->anon_size) {
		/* A process's private memory: read with process_vm_readv. */
		s->im = (struct src_image){ .fd = -1, .size = o->anon_size, .in_memory = true,
					    .npages = o->anon_size / LMIG_PAGE_SIZE };
		return 0;
	}
	return src_image_open(&s->im, o->mem);
}

static int live_setup(struct sender *s)
{
	const struct send_opts *o = s->o;

	/* Limits a killed lmig left behind go first (its guard may have done it). */
	if (throttle_restore_files(true, o->progress) < 0) {
		fprintf(stderr, "lmig send: warning: %s\n", lmig_errmsg());
		lmig_err_clear();
	}
	tsnap_take(o->pid, &s->snap[1]);
	/* Fault rates and steal per round, if eBPF works here: optional. */
	probes_open(&s->pr, o->pid, 0);
	s->st->probes = s->pr.status;
	if (freezer_init(&s->fz, o->freeze, o->pid))
		return -1;
	s->st->frozen = freezer_name(&s->fz);
	s->tg = (struct track_target){ .fd = s->im.fd, .pid = o->pid, .pidfd = s->fz.pidfd,
				       .start = o->anon_start,
				       .mapped_writes_only = o->mapped_writes_only,
				       .size = s->im.size, .sent = s->hashes };
	s->harvested = calloc(bitmap_words(s->im.npages), 8);
	if (!s->harvested)
		return lmig_err("out of memory for the dirty bitmap");
	if (tracker_open_choice(&s->trk, o->tracker, &s->tg, &s->st->tracker_why))
		return -1;
	s->trk_ok = true;
	s->st->tracker = s->trk.ops->name;
	s->t_harvest = now_s();
	/* The workload's counters from the start: round 0 is a measurement too. */
	tsnap_take(o->pid, &s->snap[1]);
	if (o->progress) {
		char why[256];

		report_tracker_words(&s->st->tracker_why, why, sizeof(why));
		if (why[0])
			fprintf(stderr, "lmig send: tracker %s (%s)\n", s->st->tracker, why);
	}
	return 0;
}

int image_send(const struct send_opts *o, struct image_stats *st)
{
	struct sender s = { .o = o, .st = st, .nch = o->channels, .live = o->pid > 0 };
	uint64_t nw;
	int ret = -1;

	codec_init();
	s.t0 = now_s();
	st->tls = o->tls ? NULL : "off";	/* null: no TLS session came up */
	st->channels = o->channels;
	st->live = s.live;
	s.fz.guard_fd = -1;
	if (source_open(&s))
		return -1;
	s.sync_read = s.im.in_memory;
	st->bytes_total = s.im.size;
	st->pages_total = s.im.npages;
	nw = bitmap_words(s.im.npages);
	s.ch = calloc(s.nch, sizeof(*s.ch));
	s.hashes = calloc(s.im.npages, sizeof(*s.hashes));
	s.todo = calloc(nw, 8);
	if (!s.ch || !s.hashes || !s.todo) {
		lmig_err("out of memory for %llu page hashes", (unsigned long long)s.im.npages);
		goto out;
	}
	/* Round 0: every page. */
	memset(s.todo, 0xff, nw * 8);
	if (s.im.npages % 64)
		s.todo[nw - 1] = (1ULL << (s.im.npages % 64)) - 1;
	for (unsigned int c = 0; c < s.nch; c++)
		s.ch[c].link.fd = -1;
	cpolicy_init(&s.pol, o->compress);
	ratelimit_init(&s.rl, o->bandwidth);
	/*
	 * A slow --bandwidth gets smaller frames, so the receiver sees data
	 * often enough not to take the link for a stalled sender.
	 */
	s.batch_pages = BATCH_TARGET / LMIG_PAGE_SIZE;
	if (o->bandwidth && o->bandwidth / 10 < BATCH_TARGET)
		s.batch_pages = (o->bandwidth / 10 > BATCH_MIN ? o->bandwidth / 10 : BATCH_MIN) /
				LMIG_PAGE_SIZE;
	/* The tracker starts before round 0 reads anything: no write goes unseen. */
	if (s.live) {
		struct sigaction sa = { .sa_handler = on_stop };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		if (live_setup(&s))
			goto out;
	}
	if (channels_connect(&s) || ring_setup(&s))
		goto out;
	st->zerocopy = s.tx.zc;
	st->tls = tls_mode(o->tls ? &s.ch[0].link.tls : NULL, true);
	tls_binding(o->tls ? &s.ch[0].link.tls : NULL, st->tls_binding);
	if (round_begin(&s, s.im.npages, 0, !s.live))
		goto out;
	ret = run(&s);
	memcpy(st->digest, s.digest, sizeof(st->digest));
	st->outcome = ret == 0 ? "committed" : s.unknown ? "unknown" : NULL;
out:
	/*
	 * A live source is resumed unless the receiver acknowledged a
	 * verified commit; after one it must never run next to its copy,
	 * nor after a commit whose outcome is unknown.
	 */
	if ((s.th_on || s.th.applied) && throttle_restore(&s.th)) {
		/* The migration's own outcome stands; the operator must know, though. */
		fprintf(stderr, "lmig send: warning: %s; run 'lmig throttle --restore'\n",
			lmig_errmsg());
	}
	if (s.live) {
		tracemark("%s", ret ? "abort" : "commit");
		probes_close(&s.pr);
		st->source_state = "running";
		if (ret == 0) {
			freezer_commit(&s.fz, o->then_kill);
			st->source_state = o->then_kill ? "killed" : "paused";
		} else if (s.unknown) {
			/* Never next to a copy that may exist: paused, not killed either. */
			freezer_commit(&s.fz, false);
			st->source_state = s.fz.frozen ? "paused" : "running";
		} else {
			bool was_frozen = s.fz.frozen;

			if (freezer_thaw(&s.fz))
				st->source_state = "frozen";	/* the error says why */
			else if (was_frozen)
				st->source_state = "resumed";
		}
	}
	if (s.trk_ok) {
		st->object_check = s.trk.obj != NULL;
		st->object_walk_s = s.trk.obj_walk_s;
		st->object_rescans = s.trk.obj_rescans;
		st->map_rescans = s.trk.map_rescans;
		st->pages_holed = s.trk.pages_holed;
		tracker_close(&s.trk);
	}
	st->lz4_switches = s.pol.switches;
	st->lz4_accel_max = s.pol.accel_max;
	st->total_s = now_s() - s.t0;
	chan_tx_end(&s.tx);
	if (s.ch)
		for (unsigned int c = 0; c < s.nch; c++) {
			tls_chan_free(&s.ch[c].link.tls);
			if (s.ch[c].link.fd >= 0)
				close(s.ch[c].link.fd);
		}
	chan_reply_free(&s.rp);
	chan_tx_free(&s.tx);
	free(s.ch);
	free(s.hashes);
	free(s.todo);
	free(s.harvested);
	if (s.im.fd >= 0)
		src_image_close(&s.im);
	return ret;
}

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
 * kernel may still read it.  Channel 0 also has a receive armed for the
 * receiver's verdict from the start, so an early rejection (checksum,
 * disk full) is reported as such.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "image.h"
#include "net.h"
#include "policy.h"
#include "ratelimit.h"
#include "uring.h"
#include "wire.h"
#include "xfer.h"

#define NBUF		4
#define BATCH_TARGET	(256 * 1024)	/* image bytes per frame */
#define BATCH_MIN	(64 * 1024)	/* ... but at most 0.1 s of --bandwidth, down to this */
#define DESC_AREA	(sizeof(struct lmig_frame) + LMIG_MAX_FRAME_DESC * sizeof(struct lmig_page_desc))
#define BUF_SIZE	(DESC_AREA + LMIG_MAX_PAYLOAD)

enum { UD_SEND = 1, UD_RESULT = 2, UD_READ = 3 };
#define UD(kind, ch, b)	((uint64_t)(kind) | ((uint64_t)(b) << 8) | ((uint64_t)(ch) << 16))

enum sbuf_state { SB_FREE, SB_READING, SB_READY };

struct sbuf {
	uint8_t *mem;
	uint8_t *frame;		/* start of the frame inside mem */
	size_t len, off;	/* frame length, bytes already sent */
	enum sbuf_state state;
	uint64_t first;		/* READING: first page, pages, bytes read so far */
	unsigned int npages;
	size_t got;
	bool sent;		/* every byte handed to the kernel */
	unsigned int notifs;	/* zero-copy notifications still to come */
};

struct schan {
	int fd;
	struct sbuf buf[NBUF];
	unsigned int fill;	/* next buffer to fill */
	unsigned int head;	/* oldest queued buffer not yet fully sent */
	unsigned int queued;	/* filled or being filled, not fully sent */
	bool inflight;
	bool end_built;
	uint64_t seq, pages, frames;
};

struct sender {
	const struct send_opts *o;
	struct xfer_stats *st;
	struct src_image im;
	struct io_uring ring;
	bool ring_ok, fixed, zc;
	unsigned int batch_pages;	/* pages read into one frame */
	struct schan *ch;
	unsigned int nch, rr;
	uint8_t *bufmem;
	uint64_t *hashes;
	uint64_t next_page;	/* next page to read */
	uint64_t pages_done;	/* pages encoded */
	bool digest_done;
	uint8_t digest[16];
	uint8_t lz4_out[LMIG_PAGE_SIZE];
	struct lmig_result result;
	bool result_in, result_armed;
	struct cpolicy pol;
	struct ratelimit rl;
	double t0, last_progress;
};

static int channels_connect(struct sender *s)
{
	struct hello_info hi = { .caps = LMIG_CAPS_V1, .nchannels = s->nch,
				 .image_size = s->im.size };
	struct lmig_hello h;
	struct lmig_hello_ack a;
	uint32_t caps;

	if (getrandom(hi.session, sizeof(hi.session), 0) != sizeof(hi.session))
		return lmig_err_errno(errno, "getrandom");
	for (unsigned int i = 0; i < s->nch; i++) {
		s->ch[i].fd = net_connect(s->o->to, s->o->timeout_ms);
		if (s->ch[i].fd < 0)
			return -1;
		hi.channel = i;
		wire_hello_build(&h, &hi);
		if (net_write_full(s->ch[i].fd, &h, sizeof(h), s->o->timeout_ms, "sending hello") ||
		    net_read_full(s->ch[i].fd, &a, sizeof(a), s->o->timeout_ms,
				  "waiting for the receiver's handshake") ||
		    wire_ack_parse(&a, &caps))
			return -1;
		if ((caps & LMIG_CAPS_V1) != LMIG_CAPS_V1)
			return lmig_err("receiver lacks lz4 or zero-run support (caps 0x%x)", caps);
	}
	return 0;
}

static int ring_setup(struct sender *s)
{
	struct io_uring_probe *probe;
	struct iovec *iov;
	size_t total = (size_t)s->nch * NBUF * BUF_SIZE;
	int ret;

	ret = io_uring_queue_init(4 * s->nch * NBUF + 8, &s->ring, 0);
	if (ret)
		return lmig_err_errno(-ret, "io_uring_queue_init");
	s->ring_ok = true;
	probe = io_uring_get_probe_ring(&s->ring);
	s->zc = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	if (probe)
		io_uring_free_probe(probe);
	/*
	 * Loopback delivers a zero-copy skb by copying it on the receive side
	 * and adds the notification round trip on top: auto turns it off there.
	 */
	if (s->o->zerocopy == 0 || (s->o->zerocopy < 0 && net_is_loopback(s->ch[0].fd)))
		s->zc = false;
	else if (s->o->zerocopy == 1 && !s->zc)
		return lmig_err("--zerocopy on: this kernel has no IORING_OP_SEND_ZC");

	s->bufmem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->bufmem == MAP_FAILED) {
		s->bufmem = NULL;
		return lmig_err_errno(errno, "cannot allocate %zu bytes of send buffers", total);
	}
	iov = calloc((size_t)s->nch * NBUF, sizeof(*iov));
	if (!iov)
		return lmig_err("out of memory");
	for (unsigned int c = 0; c < s->nch; c++)
		for (unsigned int b = 0; b < NBUF; b++) {
			size_t i = (size_t)c * NBUF + b;

			s->ch[c].buf[b].mem = s->bufmem + i * BUF_SIZE;
			iov[i].iov_base = s->ch[c].buf[b].mem;
			iov[i].iov_len = BUF_SIZE;
		}
	/*
	 * Registered buffers spare the kernel a page pin per read and send;
	 * optional (RLIMIT_MEMLOCK may refuse them).
	 */
	s->fixed = io_uring_register_buffers(&s->ring, iov, s->nch * NBUF) == 0;
	free(iov);
	return 0;
}

static int handle_read(struct sender *s, unsigned int c, unsigned int bi, int res);

/*
 * Read (the rest of) buffer b's pages from the image into its payload area.
 * An image in memory (tmpfs, memfd) is read right here: the read is a
 * memory copy that cannot block, and io_uring would hand it to a worker
 * thread, because shmem has no non-blocking read path, costing a wake-up
 * and a thread switch per frame.  A file on disk is read through the ring
 * so that the sends go on while it waits for the device.
 */
static int submit_read(struct sender *s, unsigned int c, unsigned int bi)
{
	struct sbuf *b = &s->ch[c].buf[bi];
	struct io_uring_sqe *sqe;
	uint64_t off = b->first * LMIG_PAGE_SIZE + b->got;
	uint64_t end = (b->first + b->npages) * LMIG_PAGE_SIZE;
	uint8_t *dst = b->mem + DESC_AREA + b->got;

	if (end > s->im.size)
		end = s->im.size;	/* the tail of a last partial page reads as 0 */
	if (s->im.in_memory) {
		ssize_t n = pread(s->im.fd, dst, end - off, off);

		return handle_read(s, c, bi, n < 0 ? -errno : (int)n);
	}
	sqe = uring_get_sqe(&s->ring);
	if (s->fixed)
		io_uring_prep_read_fixed(sqe, s->im.fd, dst, end - off, off, c * NBUF + bi);
	else
		io_uring_prep_read(sqe, s->im.fd, dst, end - off, off);
	io_uring_sqe_set_data64(sqe, UD(UD_READ, c, bi));
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
		uint64_t pg = b->first + i;
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

			n = codec_lz4_page(p, s->lz4_out);
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
	b->frame = payload - sizeof(*f) - nd * sizeof(d[0]);
	f = (struct lmig_frame *)b->frame;
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
	if (s->pages_done == s->im.npages) {
		codec_digest(s->hashes, s->im.npages, s->digest);
		s->digest_done = true;
	}
}

static void build_end(struct sender *s, unsigned int c, struct sbuf *b)
{
	struct lmig_frame *f = (struct lmig_frame *)b->mem;
	struct lmig_end *e = (struct lmig_end *)(f + 1);

	*e = (struct lmig_end){ .pages = htole64(s->ch[c].pages),
				.frames = htole64(s->ch[c].frames) };
	memcpy(e->digest, s->digest, sizeof(e->digest));
	*f = (struct lmig_frame){ .magic = htole32(LMIG_FRAME_MAGIC),
				  .type = htole16(LMIG_FRAME_END),
				  .payload_len = htole32(sizeof(*e)),
				  .seq = htole64(s->ch[c].seq++) };
	f->checksum = htole64(wire_frame_checksum(f, NULL, 0));
	b->frame = b->mem;
	b->len = sizeof(*f) + sizeof(*e);
	b->state = SB_READY;
	s->ch[c].end_built = true;
}

static void submit_send(struct sender *s, unsigned int c)
{
	struct schan *ch = &s->ch[c];
	struct sbuf *b = &ch->buf[ch->head];
	struct io_uring_sqe *sqe = uring_get_sqe(&s->ring);
	int flags = MSG_WAITALL | MSG_NOSIGNAL;
	const uint8_t *p = b->frame + b->off;
	size_t n = b->len - b->off;

	if (s->zc && s->fixed)
		io_uring_prep_send_zc_fixed(sqe, ch->fd, p, n, flags, 0, c * NBUF + ch->head);
	else if (s->zc)
		io_uring_prep_send_zc(sqe, ch->fd, p, n, flags, 0);
	else
		io_uring_prep_send(sqe, ch->fd, p, n, flags);
	io_uring_sqe_set_data64(sqe, UD(UD_SEND, c, ch->head));
	ch->inflight = true;
}

static void arm_result(struct sender *s)
{
	struct io_uring_sqe *sqe = uring_get_sqe(&s->ring);

	io_uring_prep_recv(sqe, s->ch[0].fd, &s->result, sizeof(s->result), MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, UD(UD_RESULT, 0, 0));
	s->result_armed = true;
}

static bool all_sent(struct sender *s);

static void release_if_done(struct sbuf *b)
{
	if (b->sent && !b->notifs)
		b->state = SB_FREE;
}

static int handle_read(struct sender *s, unsigned int c, unsigned int bi, int res)
{
	struct sbuf *b = &s->ch[c].buf[bi];
	uint64_t want = (b->first + b->npages) * LMIG_PAGE_SIZE;

	if (want > s->im.size)
		want = s->im.size;
	want -= b->first * LMIG_PAGE_SIZE;
	if (res < 0)
		return lmig_err_errno(-res, "cannot read %s at %llu", s->o->mem,
				      (unsigned long long)(b->first * LMIG_PAGE_SIZE + b->got));
	if (res == 0) {
		struct stat sb;

		if (fstat(s->im.fd, &sb))
			sb.st_size = b->first * LMIG_PAGE_SIZE + b->got;
		return lmig_err("%s shrank from %llu to %llu bytes during the migration",
				s->o->mem, (unsigned long long)s->im.size,
				(unsigned long long)sb.st_size);
	}
	b->got += res;
	if (b->got < want)
		return submit_read(s, c, bi);	/* short read: the rest next */
	encode_batch(s, c, b);
	return 0;
}

static int handle_cqe(struct sender *s, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int kind = ud & 0xff, bi = (ud >> 8) & 0xff, c = ud >> 16;
	struct schan *ch = &s->ch[c];
	struct sbuf *b = &ch->buf[bi];
	int res = cqe->res;

	if (kind == UD_RESULT) {
		s->result_armed = false;
		if (res == 0 || res == -ECONNRESET)
			return lmig_err("receiver closed the connection %s",
					all_sent(s) ? "before it committed the image" : "mid-transfer");
		if (res < 0)
			return lmig_err_errno(-res, "channel 0: waiting for the receiver's verdict");
		if ((size_t)res < sizeof(s->result))
			return lmig_err("receiver sent a truncated verdict");
		s->result_in = true;
		return 0;
	}
	if (kind == UD_READ)
		return handle_read(s, c, bi, res);
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		b->notifs--;
		release_if_done(b);
		return 0;
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		b->notifs++;
	ch->inflight = false;
	if (res < 0) {
		if (res == -EPIPE || res == -ECONNRESET)
			return lmig_err("channel %u: receiver closed the connection mid-transfer", c);
		return lmig_err_errno(-res, "channel %u: send", c);
	}
	b->off += res;
	s->st->bytes_wire += res;
	if (b->off < b->len)
		return 0;	/* short send: the rest goes next */
	b->sent = true;
	ch->head = (ch->head + 1) % NBUF;
	ch->queued--;
	release_if_done(b);
	return 0;
}

/*
 * Start filling every free buffer we may fill now: a read of the next
 * pages, or a channel's END frame once every page is encoded.  Returns
 * seconds to wait for --bandwidth tokens (0 if none), or -1 after an error.
 */
static double fill_buffers(struct sender *s, bool *blocked)
{
	*blocked = false;
	for (;;) {
		bool pages_left = s->next_page < s->im.npages;
		unsigned int c, tries;
		double w;
		struct sbuf *b = NULL;

		if (!pages_left) {
			bool all_ended = true;

			for (c = 0; c < s->nch; c++)
				all_ended &= s->ch[c].end_built;
			if (all_ended || !s->digest_done)
				return 0;
		}
		if (pages_left && (w = ratelimit_wait(&s->rl)) > 0)
			return w;
		for (tries = 0; tries < s->nch; tries++) {
			c = (s->rr + tries) % s->nch;
			if (!pages_left && s->ch[c].end_built)
				continue;
			if (s->ch[c].buf[s->ch[c].fill].state == SB_FREE) {
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
		b->sent = false;
		if (pages_left) {
			b->first = s->next_page;
			b->npages = s->batch_pages;
			if (b->first + b->npages > s->im.npages)
				b->npages = s->im.npages - b->first;
			b->got = 0;
			b->state = SB_READING;
			s->next_page += b->npages;
			if (submit_read(s, c, s->ch[c].fill))
				return -1;
		} else {
			build_end(s, c, b);
		}
		s->ch[c].fill = (s->ch[c].fill + 1) % NBUF;
		s->ch[c].queued++;
	}
}

static bool all_sent(struct sender *s)
{
	if (s->next_page < s->im.npages)
		return false;
	for (unsigned int c = 0; c < s->nch; c++)
		if (!s->ch[c].end_built || s->ch[c].queued)
			return false;
	return true;
}

static void show_progress(struct sender *s, bool final)
{
	double t = now_s();
	char extra[64];

	if (!s->o->progress || (!final && t - s->last_progress < 0.5))
		return;
	s->last_progress = t;
	snprintf(extra, sizeof(extra), "lz4 %s", s->pol.lz4 ? "on" : "off");
	progress_show("sent", s->next_page * LMIG_PAGE_SIZE > s->im.size ? s->im.size :
			      s->next_page * LMIG_PAGE_SIZE,
		      s->im.size, t - s->t0, extra, final);
}

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
		for (unsigned int c = 0; c < s->nch; c++)
			if (!s->ch[c].inflight && s->ch[c].queued &&
			    s->ch[c].buf[s->ch[c].head].state == SB_READY)
				submit_send(s, c);
		if (s->result_in)
			break;
		if (all_sent(s) && !s->result_armed)
			break;

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

int xfer_send(const struct send_opts *o, struct xfer_stats *st)
{
	struct sender s = { .o = o, .st = st, .nch = o->channels };
	int ret = -1;

	codec_init();
	s.t0 = now_s();
	st->channels = o->channels;
	if (src_image_open(&s.im, o->mem))
		return -1;
	st->bytes_total = s.im.size;
	st->pages_total = s.im.npages;
	s.ch = calloc(s.nch, sizeof(*s.ch));
	s.hashes = calloc(s.im.npages, sizeof(*s.hashes));
	if (!s.ch || !s.hashes) {
		lmig_err("out of memory for %llu page hashes", (unsigned long long)s.im.npages);
		goto out;
	}
	for (unsigned int c = 0; c < s.nch; c++)
		s.ch[c].fd = -1;
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
	if (channels_connect(&s) || ring_setup(&s))
		goto out;
	st->zerocopy = s.zc;
	ret = run(&s);
	memcpy(st->digest, s.digest, sizeof(st->digest));
out:
	st->lz4_switches = s.pol.switches;
	st->total_s = now_s() - s.t0;
	if (s.ring_ok)
		io_uring_queue_exit(&s.ring);
	if (s.ch)
		for (unsigned int c = 0; c < s.nch; c++)
			if (s.ch[c].fd >= 0)
				close(s.ch[c].fd);
	if (s.bufmem)
		munmap(s.bufmem, (size_t)s.nch * NBUF * BUF_SIZE);
	free(s.ch);
	free(s.hashes);
	src_image_close(&s.im);
	return ret;
}

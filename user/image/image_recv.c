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
 * buffer.  Only a page split across two chunks, or an lz4 or zstd page,
 * passes through a page of the bounce pool.  Those are decoded and checked
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/codec.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image_recv.h"
#include "chan/wire.h"

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
			image_rbuf_put(r, c, bid);
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
	 * lz4 and zstd pages are decoded on the other CPUs this process may use; with
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
	switch (r->o->in_place ? dst_image_open_in_place(&r->out, r->o->out, hi->image_size) :
		dst_image_create(&r->out, r->o->out, hi->image_size)) {
	case 0:
		r->out_ok = true;
		if (image_map_output(r)) {
			*err = r->out.err;
			return *why = "the receiver cannot map the image (hugetlbfs)", LMIG_ST_IO;
		}
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
	r->zstd = hi->caps & LMIG_CAP_ZSTD;
	r->ch = calloc(r->nch, sizeof(*r->ch));
	if (!r->ch)
		return lmig_err("out of memory");
	return take_image(r, hi, why, err);
}

static int handshake(struct image_receiver *r)
{
	struct chan_accept a = {
		.listen = r->o->listen, .backlog = 16, .ready_fd = r->o->ready_fd,
		.tls = r->o->tls, .timeout_ms = r->o->timeout_ms,
		.accept_timeout_ms = r->o->accept_timeout_ms, .peer = "sender",
		.whole = "migration", .caps = LMIG_CAPS_V1 | LMIG_CAP_ROUNDS | LMIG_CAP_CONFIRM | LMIG_CAP_ZSTD,
		.check = check_hello, .arg = r,
	};
	struct hello_info first;

	return chan_accept(&a, &r->link, &first);
}

/* ---- main loop -------------------------------------------------------- */

static void show_progress(struct image_receiver *r, bool final)
{
	double t = now_s();
	uint64_t done = r->pages_done * LMIG_PAGE_SIZE;
	struct image_progress p = { .final = final, .elapsed = t - r->t0,
				    .total = r->hi.image_size,
				    .done = done > r->hi.image_size ? r->hi.image_size : done,
				    .live = r->live, .round = r->round };

	if (!r->o->progress || (!final && t - r->last_progress < 0.5))
		return;
	r->last_progress = t;
	image_tell(r->o->events, IMAGE_EV_PROGRESS, &p, r->st);
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
	return image_reap_decodes(r);
}

static int handle_cqe(void *arg, struct io_uring_cqe *cqe)
{
	struct image_receiver *r = arg;
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	switch (ud_kind(ud)) {
	case UD_DECODE:
		return decode_wake(r, cqe->res);
	case UD_RECV:
		return recv_done(r, ud_a(ud), cqe, ud_b(ud));
	default:
		return image_write_done(r, ud_b(ud), cqe->res);
	}
}

static int run(struct image_receiver *r)
{
	r->last_data = now_s();
	if (r->dec)
		arm_decode_wait(r);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_nsec = 500 * 1000 * 1000 };
		int ret;

		/* Decodes that came back without a wake (see DECODE_WAKE): their runs go out now. */
		if (r->dec && image_reap_decodes(r))
			return -1;
		for (unsigned int c = 0; c < r->nch; c++) {
			ret = image_retry_bounce(r, c);
			if (ret < 0)
				return -1;
			if (ret == 0 && image_parse(r, c))
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
			if (image_next_round(r))
				return -1;
			continue;	/* image_parse what waited behind the barrier */
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
		if (chan_reap(&r->ring, handle_cqe, r))
			return -1;
		show_progress(r, false);
	}
}

int image_recv(const struct recv_opts *o, struct image_stats *st)
{
	struct image_receiver r = { .o = o, .st = st };
	struct lmig_result res;
	int ret = -1;

	st->tls = o->tls ? NULL : "off";	/* null: no TLS session came up */
	codec_init();
	if (handshake(&r))
		goto out;
	r.t0 = now_s();
	st->channels = r.nch;
	st->tls = tls_mode(&r.link[0].tls, false);
	tls_binding(&r.link[0].tls, st->tls_binding);
	st->bytes_total = r.hi.image_size;
	st->pages_total = r.npages;
	for (unsigned int c = 0; c < r.nch; c++) {
		r.ch[c].wop = -1;
		r.ch[c].bounce = -1;
		image_start_frame(&r.ch[c]);
	}
	if (setup_rings(&r) || run(&r) || image_verify_and_commit(&r))
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
	/* After a failure, let the sender read the verdict before the connections go. */
	chan_close_all(r.link, r.nch, ret ? 300 : 0);
	for (unsigned int c = 0; r.ch && c < r.nch; c++)
		chan_rx_free(&r.ch[c].rx);
	free(r.link);
	if (r.pool)
		munmap(r.pool, (size_t)NPOOL * LMIG_PAGE_SIZE);
	image_unmap_output(&r);
	free(r.wops);
	free(r.ch);
	free(r.hashes);
	free(r.seen);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Destination side of the stream transport (`lmig pipe recv`, `lmig
 * proxy recv`): one thread, one io_uring.
 *
 * Each channel has a multishot receive fed from a ring of provided
 * buffers (plain receives where the kernel lacks them).  A received chunk
 * is parsed at once and its buffer goes straight back to the ring: frame
 * headers are gathered in a small area, block payloads are copied out
 * into a block of their own (LZ4 blocks decoded into one), every block's
 * hash is checked, and the block is put in its stream's reorder tree by
 * offset (a red-black tree, tsearch(3): O(log n) whatever order blocks
 * come in).  Blocks that continue a stream move to its output queue, and
 * each stream has one IORING_OP_WRITEV in flight to its destination
 * (stdout, or its own connection to the destination QEMU) covering as
 * many queued blocks as are there.
 *
 * Destinations are opened in stream order, so the destination QEMU
 * accepts its connections in the order the source accepted QEMU's.  Bytes
 * written out return as CREDIT to the source (the stream's window, see
 * include/lmig/stream.h).  When every channel ended with DONE and every
 * stream was written whole and matched its END digest, the destination
 * connections are closed cleanly and the verdict goes back.  On any error
 * they are reset instead (TCP) or closed early, never ended as if whole.
 *
 * What a source can make this side hold is bounded: a block must lie in
 * its stream's window (checked without overflow), and every block held,
 * out of order or waiting for its write, is charged its bytes plus
 * BLK_COST against a per-stream limit (STREAM_HELD_MAX) and against
 * --max-pending for all streams; going over is a protocol error.  And a
 * source must keep the streams moving: --timeout without a byte written
 * to the destination fails, whatever arrives meanwhile.
 */
#include <errno.h>
#include <malloc.h>
#include <search.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream_recv.h"
#include "stream/stream_resume.h"

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* ---- receives ---------------------------------------------------------- */

static void arm_recv(struct stream_receiver *r, unsigned int c)
{
	struct stream_rx_chan *ch = &r->ch[c];

	if (r->rv && (ch->broken || ch->replacing))
		return;		/* its connection is gone, or going */
	if (!ch->rx.armed && !ch->rx.eof)
		chan_rx_arm(&r->ring, &r->link[c], &ch->rx, c, r->ms, 0);
}

static int recv_done(struct stream_receiver *r, unsigned int c, struct io_uring_cqe *cqe)
{
	struct stream_rx_chan *ch = &r->ch[c];
	int res = cqe->res;
	unsigned int bid = chan_rx_done(&ch->rx, cqe, r->ms, 0);
	const uint8_t *in;
	ssize_t n;
	int ret = 0;

	if (res == -ENOBUFS)
		return 0;
	if (r->rv && (ret = stream_resume_rx_recv(r, c, res, bid)) <= 0)
		return ret;
	ret = 0;
	if (res < 0 || res == 0) {
		if (ch->ps == PS_DONE && res == 0) {
			ch->rx.eof = true;
			return 0;
		}
		return fail(r, LMIG_ST_INCOMPLETE, "channel %u: the source %s before the end of the streams",
			    c, res == 0 ? "closed the connection" :
			    res == -ECONNRESET ? "reset the connection" : strerror(-res));
	}
	r->st->bytes_wire += res;
	in = chan_rx_buf(&ch->rx, bid);
	if (!r->link[c].tls.rmem) {
		ret = stream_parse(r, c, in, res);
	} else {
		/* Userspace TLS: open what the chunk completes, stream_parse it piece by piece. */
		for (; !ret && (n = chan_open(&r->link[c], in, res, r->plain, PLAIN_SIZE)); in = NULL)
			ret = n < 0 ? fail(r, LMIG_ST_CHECKSUM, "%s", lmig_errmsg()) :
			      stream_parse(r, c, r->plain, n);
	}
	if (r->ms)
		chan_rx_give(&ch->rx, bid);
	if (!ret && r->rv)
		ret = stream_resume_rx_acks(r, c);
	return ret;
}

/* ---- set-up ------------------------------------------------------------ */

static int setup_ring(struct stream_receiver *r)
{
	int ret = io_uring_queue_init(2 * LMIG_STREAM_MAX + 4 * r->nch + 16, &r->ring, 0);

	if (ret)
		return lmig_err_errno(-ret, "io_uring_queue_init");
	r->ring_ok = true;
	r->ms = true;
	for (unsigned int c = 0; c < r->nch; c++)
		if (chan_rx_setup(&r->ring, &r->ch[c].rx, c, 0, &r->ms))
			return -1;
	r->st->multishot = r->ms;
	return 0;
}

/*
 * The failure verdict's text.  A fault in the source's own stream (status
 * set by fail(), other than LMIG_ST_IO) is described from that stream:
 * stream, frame and block numbers, counts.  A failure of this side may
 * name its sockets and files: an unauthenticated source gets fail_why
 * (and the system's error) instead.
 */
static const char *verdict_text(const struct stream_receiver *r, char *buf, size_t len)
{
	if (r->fail_status && r->fail_status != LMIG_ST_IO)
		return lmig_errmsg();
	return wire_peer_text(r->link[0].tls.ssl, LMIG_ST_IO,
			      r->fail_why ? r->fail_why : "the receiver failed", r->fail_err, buf,
			      len);
}

/* Each hello: a stream source's, and the first sizes the channels. */
static int check_hello(void *arg, const struct hello_info *hi, bool first, const char **why,
		       int *err)
{
	struct stream_receiver *r = arg;

	if (!(hi->caps & LMIG_CAP_STREAM) || hi->image_size) {
		lmig_err("the source sends a memory image ('lmig send'), not streams: use 'lmig recv'");
		*why = "this receiver takes streams, not a memory image";
		return LMIG_ST_PROTOCOL;
	}
	if (first) {
		/* Both ways when both ends take it: the ack grants what both have. */
		r->ret = (hi->caps & LMIG_CAP_RETURN) && r->o->to.kind != SEP_STDIO;
		r->fine_credit = hi->caps & LMIG_CAP_FINE_CREDIT;
		r->nch = hi->nchannels;
		r->ch = calloc(r->nch, sizeof(*r->ch));
		if (!r->ch)
			return lmig_err("out of memory");
	}
	return 0;
}

static int handshake(struct stream_receiver *r)
{
	struct chan_accept a = {
		.listen = r->o->listen, .backlog = 64, .ready_fd = r->o->ready_fd,
		.tls = r->o->tls, .timeout_ms = r->o->timeout_ms,
		.accept_timeout_ms = r->o->accept_timeout_ms, .peer = "source", .whole = "session",
		.caps = LMIG_CAP_STREAM | LMIG_CAP_LZ4 | LMIG_CAP_FINE_CREDIT |
			(r->o->to.kind != SEP_STDIO ? LMIG_CAP_RETURN : 0),
		.keepalive = true, .watch = true,
		.check = check_hello, .arg = r,
	};
	struct hello_info first;
	int lfd = -1;

	if (r->o->resume_timeout_ms > 0 && r->o->to.kind != SEP_STDIO) {
		a.caps |= LMIG_CAP_RESUME;
		a.keep_lfd = &lfd;
	}
	if (chan_accept(&a, &r->link, &first))
		return -1;
	if (!(first.caps & a.caps & LMIG_CAP_RESUME)) {
		if (lfd >= 0)
			close(lfd);
		return 0;
	}
	return stream_resume_rx_init(r, lfd, first.session);
}

static bool finished(struct stream_receiver *r)
{
	if (r->done_chans < r->nch)
		return false;
	for (int64_t i = 0; i < r->nstreams; i++)
		if (!r->s[i] || !stream_ret_over(r->s[i]))
			return false;
	return true;
}

static int check_end(struct stream_receiver *r)
{
	for (int64_t i = 0; i < r->nstreams; i++) {
		struct stream_out *s = r->s[i];

		if (!s || !s->open_seen || !s->end_seen)
			return fail(r, LMIG_ST_INCOMPLETE, "stream %lld was never %s", (long long)i,
				    !s || !s->open_seen ? "opened" : "ended");
		if (s->next_off < s->end_len)
			return fail(r, LMIG_ST_INCOMPLETE, "stream %lld: bytes %llu.. never arrived",
				    (long long)i, (unsigned long long)s->next_off);
	}
	return 0;
}

static int handle_cqe(void *arg, struct io_uring_cqe *cqe)
{
	struct stream_receiver *r = arg;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int a = ud_a(ud);
	int ret;

	if (ud_kind(ud) == UD_RECV)
		return recv_done(r, a, cqe);
	if (ud_kind(ud) == UD_READ)
		return stream_ret_read_done(r, a, cqe->res);
	if (ud_kind(ud) == UD_ACCEPT)
		return stream_resume_rx_accept(r, cqe->res);
	ret = stream_write_done(r, a, cqe->res);
	if (!ret && !r->s[a]->closed) {
		ret = stream_deliver(r, a);
		stream_submit_write(r, a);
	}
	return ret;
}

static int run(struct stream_receiver *r)
{
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_nsec = 500 * 1000 * 1000 };
		int ret;

		if (finished(r) && (!r->rv || stream_resume_rx_linger(r)))
			return 0;
		if (r->rv && stream_resume_rx_tick(r))
			return -1;
		if (r->done_chans == r->nch && check_end(r))
			return -1;
		if (stop_signal) {
			stream_io_why(r, "the receiver was stopped by a signal", 0);
			return fail(r, LMIG_ST_IO, "interrupted by signal %d", (int)stop_signal);
		}
		/*
		 * Only bytes written count: frames that stream_deliver nothing do not
		 * keep a stream alive.  The clock starts with the first frame:
		 * a 'proxy send' connects before QEMU starts its migration.
		 */
		if (r->t_progress && (now_s() - r->t_progress) * 1000 > r->o->timeout_ms &&
		    !(r->rv && (stream_resume_rx_broken(r) || r->rv->verdict_sent)))
			return fail(r, LMIG_ST_INCOMPLETE, "no byte written to %s for %d s (--timeout): the streams stalled",
				    r->o->to.kind == SEP_STDIO ? "stdout" : "the destination",
				    r->o->timeout_ms / 1000);
		for (unsigned int c = 0; c < r->nch; c++)
			arm_recv(r, c);
		ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		if (chan_reap(&r->ring, handle_cqe, r))
			return -1;
	}
}

int stream_recv(const struct stream_recv_opts *o, struct stream_stats *st)
{
	struct stream_receiver r = { .o = o, .st = st, .nstreams = -1 };
	struct sigaction sa = { .sa_handler = on_stop };
	int ret = -1;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	st->tls = o->tls ? NULL : "off";
	/*
	 * Blocks are malloc'ed and freed all the time: keep the heap instead
	 * of mapping and faulting in fresh pages for every block.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	if (handshake(&r))
		goto out;
	st->channels = r.nch;
	st->both_ways = r.ret;
	st->tls = tls_mode(&r.link[0].tls, false);
	tls_binding(&r.link[0].tls, st->tls_binding);
	if (o->tls && !(r.plain = malloc(PLAIN_SIZE))) {
		lmig_err("out of memory");
		goto out;
	}
	if (setup_ring(&r) || run(&r))
		goto out;
	if (!r.rv)
		stream_send_reply(&r, LMIG_SR_VERDICT, LMIG_ST_OK, 0, st->bytes_stream, NULL,
				  o->timeout_ms);
	ret = 0;
out:
	st->total_s = r.t0 ? now_s() - r.t0 : 0;
	if (ret && r.link && r.link[0].fd >= 0) {
		struct lmig_sreply rep;
		char text[LMIG_REASON_LEN];

		sreply_build(&rep, LMIG_SR_VERDICT, r.fail_status ? r.fail_status : LMIG_ST_IO, 0, 0,
			     verdict_text(&r, text, sizeof(text)));
		chan_say_last(&r.link[0], &rep, sizeof(rep));
	}
	if (r.ring_ok)
		io_uring_queue_exit(&r.ring);
	stream_resume_rx_free(&r);
	for (unsigned int i = 0; i < LMIG_STREAM_MAX; i++) {
		struct stream_out *s = r.s[i];

		if (!s)
			continue;
		if (s->fd >= 0 && !stream_ret_over(s)) {
			/* Never ended as if whole: a reset on TCP; an early end otherwise. */
			if (o->to.kind == SEP_STDIO)
				close(s->fd);
			else
				sock_abort_close(s->fd);
		}
		free(s->rbuf);
		tdestroy(s->pend, free);
		for (struct blk *b = s->outq, *nb; b; b = nb) {
			nb = b->next;
			free(b);
		}
		free(s);
	}
	for (unsigned int c = 0; r.ch && c < r.nch; c++) {
		struct stream_rx_chan *ch = &r.ch[c];

		/* pay is the block's own data unless an lz4 payload was being gathered. */
		if (ch->blk && ch->pay == ch->blk->data)
			ch->pay = NULL;
		free(ch->blk);
		free(ch->pay);
	}
	/* Let the source read the verdict before the connections go. */
	chan_close_all(r.link, r.nch, ret ? 300 : 1000);
	for (unsigned int c = 0; r.ch && c < r.nch; c++)
		chan_rx_free(&r.ch[c].rx);
	free(r.link);
	free(r.ch);
	free(r.plain);
	return ret;
}

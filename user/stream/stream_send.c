// SPDX-License-Identifier: GPL-2.0-only
/*
 * Source side of the stream transport (`lmig pipe send`, `lmig proxy
 * send`): one thread, one io_uring.
 *
 * Streams are stdin, or the connections accepted on a listening socket
 * (IORING_OP_ACCEPT), numbered in accept order.  Each stream has one read
 * in flight into its own block buffer; a read returns whatever QEMU has
 * written so far, up to LMIG_STREAM_BLOCK_MAX bytes, so a block never
 * waits for more data.  A block read is hashed (XXH3-64) while it is
 * cache-hot and encoded straight into the send buffer of a channel with
 * room: LZ4-compressed into place when the policy says so (user/chan/policy.c),
 * copied otherwise.  Then the next read of that stream is submitted.
 *
 * Each channel owns NOBUF registered send buffers of OBUF_SIZE bytes;
 * frames are appended to the one being filled, and a channel with no send
 * in flight sends what has accumulated (IORING_OP_SEND_ZC from the
 * registered buffer where available and not on loopback), so frames that
 * arrive while a send is in flight go out together in the next one.  A
 * buffer is reused after its send completed and every zero-copy
 * notification came.
 *
 * A stream is read only LMIG_STREAM_WINDOW bytes ahead of what the
 * destination acknowledged writing (CREDIT replies on channel 0), so a
 * slow consumer stalls only its own stream.  Channel 0 also brings the
 * final verdict and, with LMIG_CAP_RETURN, what the destination QEMU
 * wrote back on each connection (stream_send_ret.c): DONE waits until
 * every stream ended both ways.
 *
 * What QEMU has written but the link has not taken stays small: QEMU
 * times its writes to estimate the bandwidth, and from that estimate
 * decides when the rest fits in its downtime limit, then stops the
 * guest until every byte has arrived.  Bytes that only sit in a buffer
 * on this side make the link look faster than it is, and must still
 * cross it once the guest is stopped.  So no stream is read while the
 * channels hold UNSENT_MAX bytes per channel not yet handed to the
 * kernel, each channel's socket keeps at most SOCK_UNSENT bytes it has
 * not sent (TCP_NOTSENT_LOWAT: a send waits until the link took the
 * rest), and QEMU's pipe is one block deep: about half of what the
 * kernel lets a socket of QEMU's own hold unsent.  Less leaves the link
 * idle whenever a busy machine keeps lmig off the CPU for a few
 * milliseconds: the bytes banked here are what the link sends
 * meanwhile.  Bytes sent and not yet acknowledged are the link's own
 * and not limited here; the window above is for those.  Nothing waits
 * for more data: a read returns what QEMU wrote, and the frames go as
 * soon as the channel's send before them did.
 *
 * Post-copy turns that around: the destination's guest waits on pages it
 * asked for, and every byte queued ahead of an answer is waited for.  So
 * the streams are served in the order stream_sched.c decides (applied in
 * stream_send_sched.c): a stream QEMU writes little to (postcopy-preempt's)
 * first, past the limit above, and while requests flow on the return
 * direction onto a channel of its own; and when no such stream carries
 * the answers, the bulk stream that does runs only a little ahead of what
 * the destination wrote out, so its backlog stays in QEMU, which answers
 * requests before sending the rest.
 *
 * With TLS (user/chan/tls.h) a kTLS channel is used as it is; otherwise a
 * buffer is sealed into its twin, cipher, when it is handed to the
 * kernel (buffers leave a channel in order, as TLS records must), and the
 * replies on channel 0 are opened as they come.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <lz4.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/channel.h"
#include "chan/net.h"
#include "chan/policy.h"
#include "chan/ratelimit.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "lib/xxh.h"
#include "stream/stream_resume.h"
#include "stream/stream_send.h"

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static int channels_connect(struct stream_sender *s)
{
	struct hello_info hi = { .caps = LMIG_CAP_STREAM | LMIG_CAP_LZ4, .nchannels = s->nch };
	int lowat = SOCK_UNSENT;
	uint32_t caps;

	/* QEMU's connections can be carried both ways; stdin cannot. */
	if (s->o->from.kind != SEP_STDIO)
		hi.caps |= LMIG_CAP_RETURN;
	if (s->o->from.kind != SEP_STDIO && s->o->resume_timeout_ms > 0)
		hi.caps |= LMIG_CAP_RESUME;
	hi.caps |= LMIG_CAP_FINE_CREDIT;
	if (chan_session(&hi))
		return -1;
	for (unsigned int i = 0; i < s->nch; i++) {
		hi.channel = i;
		if (chan_dial(&s->ch[i].link, s->o->to, s->o->timeout_ms, s->o->tls, true, &hi, &caps))
			return -1;
		if (!(caps & LMIG_CAP_STREAM))
			return lmig_err("%s is not a stream receiver (run 'lmig pipe recv' or 'lmig proxy recv' there)",
					s->o->to);
		/* Both ways when both ends take it (every channel's ack grants the same). */
		s->ret = caps & LMIG_CAP_RETURN;
		s->sched.fine_credit = caps & LMIG_CAP_FINE_CREDIT;
		/* Best effort: without it the socket's own buffer hides the link longer. */
		setsockopt(s->ch[i].link.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	}
	return stream_resume_tx_init(s, hi.session, caps);
}

static int ring_setup(struct stream_sender *s)
{
	if (chan_tx_setup(&s->tx, &s->ring, 4 * s->nch * NOBUF + 3 * LMIG_STREAM_MAX + 16,
			  s->o->zerocopy, s->ch[0].link.fd, s->nch, NOBUF, OBUF_SIZE))
		return -1;
	for (unsigned int c = 0; c < s->nch; c++)
		for (unsigned int b = 0; b < NOBUF; b++)
			if (chan_tx_buf(&s->tx, &s->ch[c].link, c, b, &s->ch[c].buf[b].sb))
				return -1;
	return back_init(s);
}

/* ---- placing frames in send buffers ------------------------------------ */

/* Room for need bytes in channel c's buffer being filled: its frame area, or NULL. */
uint8_t *stream_room(struct stream_tx_chan *ch, size_t need)
{
	/* With resume, a frame goes only where it can be kept until acknowledged. */
	if (ch->rb && rbuf_room(ch->rb) < need)
		return NULL;
	for (int tries = 0; tries < 2; tries++) {
		struct obuf *b = &ch->buf[ch->fill];

		if (b->state == OB_FREE) {
			b->state = OB_FILL;
			chan_sbuf_reset(&b->sb);
			b->data = b->mem;
		}
		if (b->state != OB_FILL)
			return NULL;
		if (OBUF_SIZE - b->len >= need)
			return b->mem + b->len;
		if (!b->len)
			return NULL;
		b->state = OB_READY;	/* full: the next buffer */
		ch->fill = (ch->fill + 1) % NOBUF;
	}
	return NULL;
}

void stream_commit(struct stream_tx_chan *ch, size_t len)
{
	if (ch->rb)	/* room() saw to it that it fits */
		rbuf_put(ch->rb, ch->buf[ch->fill].mem + ch->buf[ch->fill].len, len);
	ch->buf[ch->fill].len += len;
	ch->seq++;
}

/* A channel with room for need bytes, round robin; -1 when all are full. */
int stream_pick_channel(struct stream_sender *s, size_t need, uint8_t **at)
{
	for (unsigned int t = 0; t < s->nch; t++) {
		unsigned int c = (s->rr + t) % s->nch;

		if (s->ch[c].done_placed)
			continue;
		*at = stream_room(&s->ch[c], need);
		if (*at) {
			s->rr = (c + 1) % s->nch;
			return (int)c;
		}
	}
	return -1;
}

static void queue_ctrl(struct stream_sender *s, uint16_t type, uint32_t stream, uint64_t offset,
		       const uint8_t *digest)
{
	struct ctrl *k = &s->ctrl[(s->ctrl_head + s->nctrl++) % NCTRL];

	*k = (struct ctrl){ .type = type, .stream = stream, .offset = offset };
	if (digest)
		memcpy(k->digest, digest, 16);
}

static void place_ctrls(struct stream_sender *s)
{
	while (s->nctrl) {
		struct ctrl *k = &s->ctrl[s->ctrl_head];
		uint32_t plen = k->type == LMIG_SF_END ? 16 : 0;
		uint8_t *at;
		int c = stream_pick_channel(s, SFRAME + plen, &at);

		if (c < 0)
			return;
		sframe_build((struct lmig_sframe *)at, k->type, 0, k->stream, plen, s->ch[c].seq,
			     k->offset, 0, 0);
		memcpy(at + SFRAME, k->digest, plen);
		stream_commit(&s->ch[c], SFRAME + plen);
		s->ctrl_head = (s->ctrl_head + 1) % NCTRL;
		s->nctrl--;
	}
}

/* Every stream is finished and announced: each channel ends with DONE. */
static void place_done(struct stream_sender *s)
{
	if (!s->input_done || s->nctrl || !ret_all_shut(s))
		return;
	for (unsigned int i = 0; i < s->ns; i++)
		if (s->s[i]->have || !s->s[i]->end_queued)
			return;
	for (unsigned int c = 0; c < s->nch; c++) {
		struct stream_tx_chan *ch = &s->ch[c];
		uint8_t *at;

		if (ch->done_placed || !(at = stream_room(ch, SFRAME)))
			continue;
		sframe_build((struct lmig_sframe *)at, LMIG_SF_DONE, 0, s->ns, 0, ch->seq, ch->seq, 0, 0);
		stream_commit(ch, SFRAME);
		ch->done_placed = true;
	}
}

/* Encode the block read into stream i into a channel; false when no channel has room. */
static bool encode_block(struct stream_sender *s, unsigned int i)
{
	struct stream_in *ss = s->s[i];
	size_t n = ss->have;
	uint8_t *at, *payload;
	uint32_t flags = 0, len = 0;
	uint64_t h;
	int c = stream_pick_class(s, ss->cls, SFRAME + n, &at);

	if (c < 0)
		return false;
	payload = at + SFRAME;
	h = XXH3_64bits(ss->ibuf, n);
	XXH3_128bits_update(&ss->dig, ss->ibuf, n);
	/* A tiny block gains nothing from lz4. */
	if (n >= 512 && cpolicy_try_lz4(&s->pol)) {
		double t = now_s();
		int k = LZ4_compress_fast((const char *)ss->ibuf, (char *)payload, (int)n,
					  (int)(n - n / 16), cpolicy_accel(&s->pol));

		cpolicy_sampled(&s->pol, n, k > 0 ? (unsigned int)k : n, now_s() - t);
		if (k > 0) {
			len = k;
			flags = LMIG_SF_LZ4;
			s->st->blocks_lz4++;
		}
	}
	if (!flags) {
		memcpy(payload, ss->ibuf, n);
		len = n;
	}
	sframe_build((struct lmig_sframe *)at, LMIG_SF_DATA, flags, i, len, s->ch[c].seq, ss->off,
		     n, h);
	stream_commit(&s->ch[c], SFRAME + len);
	cpolicy_frame(&s->pol, n, n, SFRAME + len);
	ratelimit_take(&s->rl, SFRAME + len);
	s->st->blocks++;
	ss->off += n;
	ss->have = 0;
	return true;
}

/* ---- io_uring requests -------------------------------------------------- */

/* Framed bytes not yet handed to the kernel: filling, ready, or in a send under way. */
static size_t unsent(const struct stream_sender *s)
{
	size_t n = 0;

	for (unsigned int c = 0; c < s->nch; c++)
		n += stream_chan_unsent(&s->ch[c]);
	return n;
}

static void submit_read(struct stream_sender *s, unsigned int i)
{
	struct stream_in *ss = s->s[i];
	struct io_uring_sqe *sqe;
	size_t n;

	if (ss->reading || ss->eof || ss->have)
		return;
	n = ssched_read_room(&s->sched, ss->cls, s->mode, ss->off, ss->acked, unsent(s), s->nch);
	if (!n)
		return;
	sqe = uring_get_sqe(&s->ring);
	if (ss->sock)
		io_uring_prep_recv(sqe, ss->fd, ss->ibuf, n, 0);
	else
		io_uring_prep_read(sqe, ss->fd, ss->ibuf, n, -1);
	io_uring_sqe_set_data64(sqe, UD(UD_READ, i, 0));
	ss->reading = true;
}

static int submit_send(struct stream_sender *s, unsigned int c)
{
	struct stream_tx_chan *ch = &s->ch[c];
	struct obuf *b = &ch->buf[ch->head];

	if (ch->inflight || ch->broken)
		return 0;
	if (b->state == OB_FILL && b->len && ch->fill == ch->head) {
		/* Whatever accumulated goes now; later frames go to the next buffer. */
		b->state = OB_READY;
		ch->fill = (ch->fill + 1) % NOBUF;
	}
	if (b->state != OB_READY)
		return 0;
	if (chan_send(&s->tx, &ch->link, c, ch->head, &b->sb))
		return -1;
	b->state = OB_BUSY;
	ch->inflight = true;
	return 0;
}

static void arm_accept(struct stream_sender *s)
{
	struct io_uring_sqe *sqe;

	if (s->accept_armed || !s->accepting)
		return;
	sqe = uring_get_sqe(&s->ring);
	io_uring_prep_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, 0, 0));
	s->accept_armed = true;
}

static void stop_accepting(struct stream_sender *s)
{
	if (!s->accepting)
		return;
	s->accepting = false;
	if (s->accept_armed) {
		struct io_uring_sqe *sqe = uring_get_sqe(&s->ring);

		io_uring_prep_cancel64(sqe, UD(UD_ACCEPT, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, UD(UD_CANCEL, 0, 0));
	}
}

static int add_stream(struct stream_sender *s, int fd, bool sock)
{
	struct stream_in *ss;

	if (s->ns == LMIG_STREAM_MAX) {
		close(fd);
		return lmig_err("more than %u connections", LMIG_STREAM_MAX);
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss || !(ss->ibuf = malloc(LMIG_STREAM_BLOCK_MAX))) {
		free(ss);
		close(fd);
		return lmig_err("out of memory");
	}
	ss->fd = fd;
	ss->sock = sock;
	ss->ret = sock && s->ret;
	XXH3_128bits_reset(&ss->rdig);
	XXH3_128bits_reset(&ss->dig);
	if (!s->ns)
		s->t0 = now_s();
	s->s[s->ns] = ss;
	queue_ctrl(s, LMIG_SF_OPEN, s->ns, 0, NULL);
	s->ns++;
	s->st->streams = s->ns;
	s->t_all_ended = 0;
	if (s->o->streams && s->ns == s->o->streams)
		stop_accepting(s);
	return 0;
}

static void stream_ended(struct stream_sender *s, unsigned int i)
{
	struct stream_in *ss = s->s[i];
	XXH128_canonical_t c;

	ss->eof = true;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&ss->dig));
	queue_ctrl(s, LMIG_SF_END, i, ss->off, c.digest);
	ss->end_queued = true;
}

static void release_if_done(struct obuf *b)
{
	if (chan_sbuf_idle(&b->sb))
		b->state = OB_FREE;
}

/*
 * True while only the receiver can move things on: a stream that has
 * more to read has its whole window unacknowledged, or everything was
 * sent and the verdict is due.  Waiting for QEMU, for the network or
 * for our own --bandwidth is not waiting for the receiver.
 */
static bool receiver_due(const struct stream_sender *s)
{
	bool all_done = s->input_done;

	for (unsigned int c = 0; c < s->nch; c++)
		all_done &= s->ch[c].done_placed && !s->ch[c].inflight;
	if (all_done)
		return true;
	for (unsigned int i = 0; i < s->ns; i++) {
		const struct stream_in *ss = s->s[i];

		if (!ss->eof && !ss->have &&
		    ss->off - ss->acked >= ssched_window(&s->sched, ss->cls, s->mode))
			return true;
	}
	return false;
}

/* A send's completion on channel c. */
static int send_done(struct stream_sender *s, unsigned int c, unsigned int bi,
		     const struct io_uring_cqe *cqe)
{
	struct stream_tx_chan *ch = &s->ch[c];
	struct obuf *b = &ch->buf[bi];
	int rc = chan_send_done(&s->tx, &b->sb, cqe, c, "mid-stream", &s->st->bytes_wire);

	if (rc == CHAN_NOTIF) {
		release_if_done(b);
		return 0;
	}
	ch->inflight = false;
	if (rc < 0)
		return stream_resume_tx_broken(s, c);
	if (rc == CHAN_NO_ZC)
		s->st->zerocopy = false;
	if (rc != CHAN_SENT) {
		b->state = OB_READY;	/* the rest, or all of it again, next */
		return 0;
	}
	ch->head = (ch->head + 1) % NOBUF;
	release_if_done(b);
	return 0;
}

static int handle_cqe(void *arg, struct io_uring_cqe *cqe)
{
	struct stream_sender *s = arg;
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int a = ud_a(ud);
	int res = cqe->res;

	switch (ud_kind(ud)) {
	case UD_SEND:
		return send_done(s, a, ud_b(ud), cqe);
	case UD_REPLY:
		return a ? stream_resume_tx_watch(s, a, res) : back_in(s, res);
	case UD_WRITE:
		return ret_write_done(s, a, res);
	case UD_READ: {
		struct stream_in *ss = s->s[a];

		ss->reading = false;
		if (res == -ECONNRESET && ss->sock)
			return lmig_err("connection %u was reset by its client mid-stream", a);
		if (res < 0)
			return lmig_err_errno(-res, "%s %u: read", ss->sock ? "connection" : "stdin", a);
		if (res == 0) {
			stream_ended(s, a);
			return 0;
		}
		ss->have = res;
		s->st->bytes_stream += res;
		ssched_read(&ss->sch, now_s(), res);
		ssched_stream_read(&s->sched, now_s(), ss->cls, ss->rnext > 0);
		return 0;
	}
	case UD_ACCEPT:
		s->accept_armed = false;
		if (res == -ECANCELED || !s->accepting) {
			if (res >= 0)
				close(res);	/* came in as the listener closed: refused */
			return 0;
		}
		if (res < 0)
			return lmig_err_errno(-res, "accept");
		return add_stream(s, res, true);
	case UD_CANCEL:
		return 0;
	}
	return 0;
}

static void check_input_done(struct stream_sender *s, double now)
{
	bool all_eof = s->ns > 0;

	if (s->input_done)
		return;
	for (unsigned int i = 0; i < s->ns; i++)
		all_eof &= s->s[i]->eof;
	if (s->lfd < 0) {
		s->input_done = all_eof;	/* stdin */
		return;
	}
	if (!all_eof) {
		s->t_all_ended = 0;
		return;
	}
	if (s->accepting) {
		/* Grace: QEMU opens every channel at the start, so none should come now. */
		if (!s->t_all_ended)
			s->t_all_ended = now;
		if (now - s->t_all_ended < s->o->grace_ms / 1000.0)
			return;
		stop_accepting(s);
	}
	s->input_done = true;
}

static int run(struct stream_sender *s)
{
	double t_start = now_s();
	const unsigned int *order = s->order;

	s->t_receiver = t_start;
	back_arm(s);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts;
		double wait = 0.5, rw = 0, t;
		bool blocked = false;
		int ret;

		if (stream_resume_tx_poll(s))
			return -1;
		stream_schedule(s, now_s());
		/* Page requests first: QEMU waits on them. */
		ret_submit_writes(s);
		/* Encode what was read, then read on: urgent streams first. */
		for (unsigned int k = 0; k < s->ns; k++) {
			unsigned int i = order[k];
			struct stream_in *ss = s->s[i];
			double w;

			if (ss->have) {
				/* An urgent block goes now: --bandwidth takes it from the next. */
				w = ss->cls == SSCHED_URGENT ? 0 : ratelimit_wait(&s->rl);
				if (w > 0)
					rw = w;
				if (w > 0 || !encode_block(s, i)) {
					blocked = true;
					continue;
				}
			}
			submit_read(s, i);
		}
		place_ctrls(s);
		ret_place_credits(s);
		check_input_done(s, now_s());
		place_done(s);
		for (unsigned int c = 0; c < s->nch; c++)
			if (submit_send(s, c))
				return -1;
		arm_accept(s);
		if (s->verdict_in)
			return 0;
		if (stop_signal)
			return lmig_err("interrupted by signal %d", (int)stop_signal);
		/* The receiver credits at least every half second while it writes. */
		if (!receiver_due(s))
			s->t_receiver = now_s();
		else if ((now_s() - s->t_receiver) * 1000 > s->o->timeout_ms)
			return lmig_err("no word from the receiver for %d s (--timeout): it stalled",
					s->o->timeout_ms / 1000);
		if (!s->ns && s->o->accept_timeout_ms >= 0 &&
		    (now_s() - t_start) * 1000 > s->o->accept_timeout_ms)
			return lmig_err("no connection within %d s", s->o->accept_timeout_ms / 1000);
		if (rw > 0 && rw < wait)
			wait = rw;
		if (s->t_all_ended && s->accepting)
			wait = s->o->grace_ms / 1000.0 / 4 + 0.001;
		if (stream_resume_tx_waiting(s))
			wait = 0.02;
		ts.tv_sec = (long long)wait;
		ts.tv_nsec = (long long)((wait - ts.tv_sec) * 1e9);
		t = now_s();
		ret = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts, NULL);
		if (blocked)
			cpolicy_waited(&s->pol, now_s() - t);
		else
			cpolicy_idle(&s->pol, now_s() - t);	/* waiting for QEMU */
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		if (chan_reap(&s->ring, handle_cqe, s))
			return -1;
		cpolicy_tick(&s->pol, now_s());
	}
}

/* Zero-copy notifications or sends still due: the kernel may still read a buffer. */
static bool sends_due(void *arg)
{
	const struct stream_sender *s = arg;

	for (unsigned int c = 0; c < s->nch; c++) {
		if (s->ch[c].inflight)
			return true;
		for (unsigned int b = 0; b < NOBUF; b++)
			if (s->ch[c].buf[b].notifs)
				return true;
	}
	return false;
}

int stream_send(const struct stream_send_opts *o, struct stream_stats *st)
{
	struct stream_sender s = { .o = o, .st = st, .nch = o->channels, .lfd = -1 };
	struct sigaction sa = { .sa_handler = on_stop };
	int ret = -1;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	st->channels = s.nch;
	st->tls = o->tls ? NULL : "off";
	s.ch = calloc(s.nch, sizeof(*s.ch));
	if (!s.ch)
		return lmig_err("out of memory");
	for (unsigned int c = 0; c < s.nch; c++)
		s.ch[c].link.fd = -1;
	cpolicy_init(&s.pol, o->compress);
	s.sched = (struct ssched){ .window = LMIG_STREAM_WINDOW, .block = LMIG_STREAM_BLOCK_MAX,
				   .unsent = UNSENT_MAX, .lowat = SOCK_UNSENT };
	ratelimit_init(&s.rl, o->bandwidth);
	if (o->from.kind != SEP_STDIO) {
		s.lfd = sendpoint_listen(&o->from);
		if (s.lfd < 0)
			goto out;
	}
	if (channels_connect(&s) || ring_setup(&s))
		goto out;
	st->zerocopy = s.tx.zc;
	st->both_ways = s.ret && o->from.kind != SEP_STDIO;
	st->tls = tls_mode(o->tls ? &s.ch[0].link.tls : NULL, true);
	tls_binding(o->tls ? &s.ch[0].link.tls : NULL, st->tls_binding);
	if (s.lfd >= 0) {
		s.accepting = true;
		/* Announce only once the receiver is there: a client may connect now. */
		sendpoint_ready(&o->from, s.lfd, o->ready_fd);
	} else {
		/*
		 * QEMU's pipe: one block deep, so a read takes a whole block
		 * while QEMU's write completes only about when lmig has it
		 * (best effort: the pipe's default is 64 KiB).
		 */
		fcntl(STDIN_FILENO, F_SETPIPE_SZ, LMIG_STREAM_BLOCK_MAX);
		if (add_stream(&s, STDIN_FILENO, false))
			goto out;
	}
	ret = run(&s);
out:
	st->lz4_switches = s.pol.switches;
	st->lz4_accel_max = s.pol.accel_max;
	st->total_s = s.t0 ? now_s() - s.t0 : 0;
	if (ret) {
		/*
		 * QEMU's side first, while the engine still holds the files:
		 * shut down its connections so a blocked write fails now.
		 */
		for (unsigned int i = 0; i < s.ns; i++)
			if (s.s[i]->sock)
				shutdown(s.s[i]->fd, SHUT_RDWR);
	}
	if (!ret)
		chan_tx_drain(&s.tx, sends_due, handle_cqe, &s);
	chan_tx_end(&s.tx);
	for (unsigned int i = 0; i < s.ns; i++) {
		if (ret && s.s[i]->sock)
			sock_abort_close(s.s[i]->fd);
		else
			close(s.s[i]->fd);	/* stdin too: a writer still writing gets EPIPE */
		ret_free(s.s[i]);
		free(s.s[i]->ibuf);
		free(s.s[i]);
	}
	if (s.lfd >= 0) {
		close(s.lfd);
		if (o->from.kind == SEP_UNIX)
			unlink(o->from.addr);
	}
	for (unsigned int c = 0; c < s.nch; c++) {
		tls_chan_free(&s.ch[c].link.tls);
		if (s.ch[c].link.fd >= 0) {
			/* With resume a reset is a break to wait for: giving up ends cleanly. */
			if (ret && !s.rs)
				sock_abort_close(s.ch[c].link.fd);
			else if (ret)
				shutdown(s.ch[c].link.fd, SHUT_WR);
			if (!ret || s.rs)
				close(s.ch[c].link.fd);
		}
	}
	back_free(&s);
	stream_resume_tx_free(&s);
	chan_tx_free(&s.tx);
	free(s.ch);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Source side of a resume (LMIG_CAP_RESUME): see stream_resume.h.
 *
 * Every frame placed in a channel's send buffers is also kept in its
 * resume buffer (stream_commit()), and no frame is placed where the
 * resume buffer has no room for it, so the source never holds more than
 * --resume-buffer a channel and never drops: it waits for the
 * destination's ACKs (on channel 0, among the replies).
 *
 * A break shows as a failed send, the end of channel 0's receive, or (for
 * the other channels, which carry nothing back) the end of a poll armed
 * on each.  The channel is then shut down so every request on it ends,
 * and once none is left the source connects again (resume_dial(): with a
 * backoff, TLS when on, the same-session proof) until --resume-timeout
 * from the break is spent.  The send buffers' contents are dropped (they
 * are all in the resume buffer) and what the destination did not take is
 * copied back into them, to go as any frames do, so the source goes on
 * reading channel 0 while it replays: both ends may have much to replay.
 * The resume buffer is never larger than the send buffers for that.
 *
 * The reconnect itself blocks the engine (as the first connect does):
 * nothing of the session can go on without the broken channel anyway.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/resume_dial.h"
#include "stream/resume_policy.h"
#include "stream/stream_resume.h"
#include "stream/stream_send.h"

_Static_assert(RESUME_BUF_MAX <= (unsigned long long)NOBUF * OBUF_SIZE,
	       "a replay must fit in the send buffers");

int stream_resume_tx_init(struct stream_sender *s, const uint8_t session[16], uint32_t caps)
{
	struct stream_resume_tx *rs;
	struct lmig_ssecret m;

	if (!(caps & LMIG_CAP_RESUME) || s->o->resume_timeout_ms <= 0)
		return 0;
	if (s->o->resume_buf < RESUME_BUF_MIN || s->o->resume_buf > RESUME_BUF_MAX)
		return lmig_err("resume buffer of %llu bytes out of range",
				(unsigned long long)s->o->resume_buf);
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return lmig_err("out of memory");
	s->rs = rs;
	memcpy(rs->ss.session, session, sizeof(rs->ss.session));
	if (chan_read_full(s->ch[0].link.fd, &s->ch[0].link.tls, &m, sizeof(m), s->o->timeout_ms,
			   "waiting for the session secret"))
		return -1;
	if (!ssecret_ok(&m))
		return lmig_err("receiver sent a corrupted session secret");
	memcpy(rs->ss.secret, m.secret, sizeof(rs->ss.secret));
	memset(&m, 0, sizeof(m));
	for (unsigned int c = 0; c < s->nch; c++) {
		struct resume_buf *rb = calloc(1, sizeof(*rb));

		if (!rb || rbuf_init(rb, s->o->resume_buf)) {
			free(rb);
			return lmig_err("out of memory");
		}
		s->ch[c].rb = rb;
	}
	s->st->resume = true;
	return 0;
}

void stream_resume_tx_free(struct stream_sender *s)
{
	for (unsigned int c = 0; s->ch && c < s->nch; c++) {
		if (s->ch[c].rb)
			rbuf_free(s->ch[c].rb);
		free(s->ch[c].rb);
		s->ch[c].rb = NULL;
	}
	if (s->rs)
		memset(s->rs->ss.secret, 0, sizeof(s->rs->ss.secret));
	free(s->rs);
	s->rs = NULL;
}

int stream_resume_tx_broken(struct stream_sender *s, unsigned int c)
{
	struct stream_tx_chan *ch = &s->ch[c];

	if (!s->rs)
		return -1;	/* without resume a break fails, lmig_err() says how */
	lmig_err_clear();
	if (ch->broken)
		return 0;
	ch->broken = true;
	ch->t_break = now_s();
	/* Every request on it ends now (a send, the receive, the poll). */
	shutdown(ch->link.fd, SHUT_RDWR);
	return 0;
}

int stream_resume_tx_watch(struct stream_sender *s, unsigned int c, int res)
{
	(void)res;	/* whatever it says: the destination sends nothing on it */
	s->ch[c].watching = false;
	if (s->verdict_in)
		return 0;
	return stream_resume_tx_broken(s, c);
}

int stream_resume_tx_ack(struct stream_sender *s, const struct lmig_sframe *f, uint64_t seq)
{
	uint32_t c = le32toh(f->stream);

	/* Not a return frame: not counted, it carries the count so far. */
	if (le64toh(f->seq) != seq || f->flags || f->len || f->raw_len || f->hash || f->reserved ||
	    c >= s->nch)
		return lmig_err("receiver sent a malformed acknowledgement (channel %u)", c);
	if (rbuf_ack(s->ch[c].rb, le64toh(f->offset)))
		return lmig_err("receiver acknowledged %llu bytes of channel %u, %llu were sent",
				(unsigned long long)le64toh(f->offset), c,
				(unsigned long long)s->ch[c].rb->end);
	return 0;
}

/* No request on channel c is left to complete: its buffers and socket are ours. */
static bool drained(const struct stream_sender *s, unsigned int c)
{
	const struct stream_tx_chan *ch = &s->ch[c];

	if (ch->inflight || ch->watching || (!c && s->back.armed))
		return false;
	for (unsigned int b = 0; b < NOBUF; b++)
		if (ch->buf[b].notifs)
			return false;
	return true;
}

/* What the destination did not take, back into the emptied send buffers. */
static int replay(struct stream_sender *s, unsigned int c, uint64_t peer_have)
{
	struct stream_tx_chan *ch = &s->ch[c];
	struct iovec iov[2];
	int n;

	for (unsigned int b = 0; b < NOBUF; b++) {
		chan_sbuf_reset(&ch->buf[b].sb);
		ch->buf[b].data = ch->buf[b].mem;
		ch->buf[b].state = OB_FREE;
	}
	ch->fill = ch->head = 0;
	if (rbuf_replay(ch->rb, peer_have, iov, &n))
		return lmig_err("channel %u: the receiver says it took %llu bytes, %llu..%llu are held",
				c, (unsigned long long)peer_have,
				(unsigned long long)ch->rb->base, (unsigned long long)ch->rb->end);
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			struct obuf *b = &ch->buf[ch->fill];
			size_t k = OBUF_SIZE - b->len < left ? OBUF_SIZE - b->len : left;

			if (b->state == OB_FREE)
				b->state = OB_FILL;
			memcpy(b->mem + b->len, p, k);
			b->len += k;
			p += k;
			left -= k;
			if (b->len == OBUF_SIZE) {
				b->state = OB_READY;
				ch->fill = (ch->fill + 1) % NOBUF;
			}
		}
	}
	return 0;
}

static int reconnect(struct stream_sender *s, unsigned int c)
{
	struct stream_tx_chan *ch = &s->ch[c];
	struct resume_dial d = {
		.to = s->o->to, .tls = s->o->tls, .ss = &s->rs->ss, .channel = c,
		.budget_ms = s->o->resume_timeout_ms, .step_ms = s->o->timeout_ms,
		.since_ms = (long long)(ch->t_break * 1000),
	};
	int lowat = SOCK_UNSENT;
	uint64_t peer_have = 0;
	unsigned int tries;
	struct chan nc;

	if (resume_dial(&d, c ? 0 : s->back.taken, &nc, &peer_have, &tries))
		return -1;
	tls_chan_free(&ch->link.tls);
	close(ch->link.fd);
	ch->link = nc;
	setsockopt(nc.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	if (!c)
		back_reset(s);
	if (replay(s, c, peer_have))
		return -1;
	ch->broken = false;
	s->st->reconnects++;
	s->st->reconnect_s += now_s() - ch->t_break;
	s->t_receiver = now_s();
	return 0;
}

static void arm_watch(struct stream_sender *s, unsigned int c)
{
	struct stream_tx_chan *ch = &s->ch[c];
	struct io_uring_sqe *sqe;

	if (ch->watching || ch->broken || s->verdict_in)
		return;
	sqe = uring_get_sqe(&s->ring);
	io_uring_prep_poll_add(sqe, ch->link.fd, POLLRDHUP | POLLERR | POLLHUP);
	io_uring_sqe_set_data64(sqe, UD(UD_REPLY, c, 0));
	ch->watching = true;
}

/* Channel 0's return direction taken: the destination may drop it from its buffer. */
static void place_ack(struct stream_sender *s)
{
	struct stream_resume_tx *rs = s->rs;
	uint8_t *at;
	int c;

	if (s->back.taken - rs->ret_acked < RESUME_ACK_STEP)
		return;
	c = stream_pick_channel(s, SFRAME, &at);
	if (c < 0)
		return;
	sframe_build((struct lmig_sframe *)at, LMIG_SF_ACK, 0, 0, 0, s->ch[c].seq, s->back.taken,
		     0, 0);
	stream_commit(&s->ch[c], SFRAME);
	rs->ret_acked = s->back.taken;
}

int stream_resume_tx_poll(struct stream_sender *s)
{
	double now = now_s();

	if (!s->rs)
		return 0;
	for (unsigned int c = 0; c < s->nch; c++) {
		struct stream_tx_chan *ch = &s->ch[c];

		/*
		 * A first pause in the loop: what channel 0 still brings (a
		 * failed verdict, say) is read before the engine blocks.
		 */
		if (ch->broken && drained(s, c) &&
		    (now - ch->t_break) * 1000 >= RESUME_BACKOFF_FIRST_MS && reconnect(s, c))
			return -1;
		if (c)
			arm_watch(s, c);
	}
	if (!s->ch[0].broken)
		back_arm(s);
	place_ack(s);
	return 0;
}

bool stream_resume_tx_waiting(const struct stream_sender *s)
{
	for (unsigned int c = 0; s->rs && c < s->nch; c++)
		if (s->ch[c].broken)
			return true;
	return false;
}

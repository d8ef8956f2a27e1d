// SPDX-License-Identifier: GPL-2.0-only
/*
 * Destination side of a resume (LMIG_CAP_RESUME): see stream_resume.h.
 *
 * The listening socket of the first handshake stays open with an accept
 * armed on it.  A connection there runs TLS (when on) and the
 * same-session proof (resume_server()); one without the proof is
 * refused with its one-line reason and closed, and the session goes on.
 * A proven one takes its channel's place once the old connection's
 * receive has ended (a channel the source reconnects before this side
 * saw it break is shut down first): its frame parser drops the frame the
 * break cut, and the source replays from what this side said it took,
 * so every frame arrives once, in order, with its sequence number.
 *
 * Everything this side sends goes on channel 0 and is kept in one resume
 * buffer until the source's ACK: replies and ACKs always (the buffer has
 * RESUME_CTRL_SLACK for them beyond --resume-buffer; a source that
 * acknowledges nothing fills it and fails the session), return frames
 * only while there is room, so what the destination QEMU writes waits in
 * its socket instead.  On a reconnect of channel 0 what the source did
 * not take is written again, before anything else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/net.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream_recv.h"
#include "stream/stream_resume.h"

int stream_resume_rx_init(struct stream_receiver *r, int lfd, const uint8_t session[16])
{
	struct stream_resume_rx *rv = calloc(1, sizeof(*rv));
	struct lmig_ssecret m;
	int ret;

	if (!rv) {
		close(lfd);
		return lmig_err("out of memory");
	}
	rv->lfd = lfd;
	r->rv = rv;
	for (unsigned int c = 0; c < r->nch; c++)
		r->ch[c].next.fd = -1;
	memcpy(rv->ss.session, session, sizeof(rv->ss.session));
	if (r->o->resume_buf < RESUME_BUF_MIN || r->o->resume_buf > RESUME_BUF_MAX)
		return lmig_err("resume buffer of %llu bytes out of range",
				(unsigned long long)r->o->resume_buf);
	if (rbuf_init(&rv->rb, r->o->resume_buf + RESUME_CTRL_SLACK))
		return lmig_err("out of memory");
	if (resume_secret_new(rv->ss.secret))
		return -1;
	ssecret_build(&m, rv->ss.secret);
	ret = chan_write_full(r->link[0].fd, &r->link[0].tls, &m, sizeof(m), r->o->timeout_ms,
			      "sending the session secret");
	memset(&m, 0, sizeof(m));
	r->st->resume = true;
	return ret;
}

void stream_resume_rx_free(struct stream_receiver *r)
{
	struct stream_resume_rx *rv = r->rv;

	if (!rv)
		return;
	for (unsigned int c = 0; c < r->nch; c++) {
		if (r->ch[c].next.fd < 0)
			continue;
		tls_chan_free(&r->ch[c].next.tls);
		close(r->ch[c].next.fd);
	}
	if (rv->lfd >= 0)
		close(rv->lfd);
	rbuf_free(&rv->rb);
	memset(rv->ss.secret, 0, sizeof(rv->ss.secret));
	free(rv);
	r->rv = NULL;
}

/* The old connection of channel c, once nothing of the engine uses it. */
static void close_old(struct stream_receiver *r, unsigned int c)
{
	struct chan *l = &r->link[c];

	if (l->fd < 0)
		return;
	tls_chan_free(&l->tls);
	close(l->fd);
	l->fd = -1;
}

/* Channel c broke: wait for its source; its receive ends on the shut-down socket. */
static void set_broken(struct stream_receiver *r, unsigned int c)
{
	struct stream_rx_chan *ch = &r->ch[c];

	if (!ch->broken && !ch->replacing)
		ch->t_break = now_s();
	ch->broken = true;
	if (r->link[c].fd >= 0)
		shutdown(r->link[c].fd, SHUT_RDWR);
	if (!ch->rx.armed)
		close_old(r, c);
}

int stream_resume_rx_send(struct stream_receiver *r, const void *p, size_t n)
{
	struct stream_resume_rx *rv = r->rv;

	if (rbuf_put(&rv->rb, p, n))
		return fail(r, LMIG_ST_PROTOCOL, "the source acknowledges nothing of channel 0: %llu bytes held",
			    (unsigned long long)(rv->rb.end - rv->rb.base));
	if (r->ch[0].broken || r->ch[0].replacing)
		return 0;	/* replayed once it is back */
	if (chan_write_full(r->link[0].fd, &r->link[0].tls, p, n, r->o->timeout_ms,
			    "replying to the source")) {
		lmig_err_clear();
		set_broken(r, 0);
	}
	return 0;
}

bool stream_resume_rx_room(const struct stream_receiver *r)
{
	return rbuf_room(&r->rv->rb) >= SFRAME + RBLOCK + RESUME_CTRL_SLACK;
}

/* A proven reconnect of channel c takes its place; channel 0 replays from peer_have. */
static int install(struct stream_receiver *r, unsigned int c, struct chan nc, uint64_t peer_have)
{
	struct stream_rx_chan *ch = &r->ch[c];
	struct iovec iov[2];
	int n;

	close_old(r, c);
	r->link[c] = nc;
	chan_keepalive(nc.fd);
	/* What the break cut of a frame is dropped: it comes again whole. */
	if (ch->blk && ch->pay == ch->blk->data)
		ch->pay = NULL;
	free(ch->blk);
	free(ch->pay);
	ch->blk = NULL;
	ch->pay = NULL;
	ch->have = 0;
	ch->pay_have = 0;
	if (ch->ps == PS_PAY)
		ch->ps = PS_HDR;
	ch->rx.eof = false;
	ch->broken = ch->replacing = false;
	r->st->reconnects++;
	r->st->reconnect_s += now_s() - ch->t_break;
	if (r->t_progress)
		r->t_progress = now_s();
	if (c)
		return 0;
	if (rbuf_replay(&r->rv->rb, peer_have, iov, &n))
		return fail(r, LMIG_ST_PROTOCOL, "channel 0: the source says it took %llu bytes, %llu..%llu are held",
			    (unsigned long long)peer_have, (unsigned long long)r->rv->rb.base,
			    (unsigned long long)r->rv->rb.end);
	for (int i = 0; i < n; i++)
		if (chan_write_full(nc.fd, &r->link[0].tls, iov[i].iov_base, iov[i].iov_len,
				    r->o->timeout_ms, "replaying to the source")) {
			lmig_err_clear();
			set_broken(r, 0);
			return 0;
		}
	return 0;
}

int stream_resume_rx_recv(struct stream_receiver *r, unsigned int c, int res, unsigned int bid)
{
	struct stream_rx_chan *ch = &r->ch[c];

	if (ch->broken || ch->replacing) {
		/* The old connection: what it still brings was not counted as taken. */
		if (res > 0) {
			if (r->ms)
				chan_rx_give(&ch->rx, bid);
			return 0;
		}
		if (ch->rx.armed)
			return 0;
		close_old(r, c);
		if (!ch->replacing)
			return 0;
		ch->replacing = false;
		return install(r, c, ch->next, ch->next_have);
	}
	if (res > 0)
		return 1;
	if (ch->ps == PS_DONE && c) {
		ch->rx.eof = true;	/* nothing more comes on it, however it ended */
		return 0;
	}
	/*
	 * A clean end is the source's doing: after the verdict (channel 0),
	 * or before DONE when it gave up (it ends its channels so); as
	 * without resume.  A break is an error: a reset, a timeout.
	 */
	if (res == 0)
		return 1;
	set_broken(r, c);
	return 0;
}

int stream_resume_rx_acks(struct stream_receiver *r, unsigned int c)
{
	struct stream_rx_chan *ch = &r->ch[c];
	struct lmig_sframe f;

	if (ch->taken == ch->acked ||
	    (ch->taken - ch->acked < RESUME_ACK_STEP && ch->ps != PS_DONE))
		return 0;
	sframe_build(&f, LMIG_SF_ACK, 0, c, 0, r->rseq, ch->taken, 0, 0);
	ch->acked = ch->taken;
	if (stream_resume_rx_send(r, &f, sizeof(f)))
		return -1;
	r->st->bytes_wire += sizeof(f);
	return 0;
}

int stream_resume_rx_ack(struct stream_receiver *r, const struct lmig_sframe *f)
{
	if (le32toh(f->stream))
		return fail(r, LMIG_ST_PROTOCOL, "an acknowledgement of channel %u, which carries nothing back",
			    le32toh(f->stream));
	if (rbuf_ack(&r->rv->rb, le64toh(f->offset)))
		return fail(r, LMIG_ST_PROTOCOL, "the source acknowledged %llu bytes of channel 0, %llu were sent",
			    (unsigned long long)le64toh(f->offset),
			    (unsigned long long)r->rv->rb.end);
	for (unsigned int i = 0; i < LMIG_STREAM_MAX; i++)
		if (r->s[i])
			stream_ret_arm(r, i);
	return 0;
}

static bool wants(void *arg, uint16_t channel, uint64_t *have)
{
	struct stream_receiver *r = arg;

	if (channel >= r->nch)
		return false;
	*have = r->ch[channel].taken;
	return true;
}

/* A proven reconnect: in place now, or once the old connection's receive ended. */
static int take(struct stream_receiver *r, unsigned int c, struct chan nc, uint64_t peer_have)
{
	struct stream_rx_chan *ch = &r->ch[c];

	if (ch->replacing) {	/* a reconnect that was waiting: this one is newer */
		tls_chan_free(&ch->next.tls);
		close(ch->next.fd);
	}
	if (!ch->broken && !ch->replacing)
		ch->t_break = now_s();
	if (ch->rx.armed) {
		/* The source saw the break first: end the old receive, then take over. */
		ch->next = nc;
		ch->next_have = peer_have;
		ch->replacing = true;
		ch->broken = false;
		shutdown(r->link[c].fd, SHUT_RDWR);
		return 0;
	}
	ch->replacing = false;
	return install(r, c, nc, peer_have);
}

/*
 * A source that comes back speaks at once: a connection that does not
 * finish its handshake within this (or --timeout, if shorter) is
 * dropped, so a stray client holds the session up only that long.
 */
#define RESUME_HANDSHAKE_MS	3000

int stream_resume_rx_accept(struct stream_receiver *r, int res)
{
	int timeout = r->o->timeout_ms < RESUME_HANDSHAKE_MS ? r->o->timeout_ms :
		      RESUME_HANDSHAKE_MS;
	struct chan nc = { .fd = res };
	double t0 = now_s();
	uint64_t peer_have = 0;
	uint16_t c = 0;
	enum rproof rp;

	r->rv->accept_armed = false;
	if (res < 0)
		return 0;	/* no connection after all (aborted, out of files): armed again */
	if (r->o->tls && tls_handshake(r->o->tls, nc.fd, timeout, "source", &nc.tls)) {
		rp = RP_IO;
	} else {
		rp = resume_server(&nc, &r->rv->ss, wants, r, &c, &peer_have, timeout);
		if (rp == RP_OK)
			return take(r, c, nc, peer_have);
	}
	/* The engine waited on a stranger: that time is not the streams' stall. */
	if (r->t_progress)
		r->t_progress += now_s() - t0;
	lmig_err_clear();
	r->st->resume_refused++;
	if (rp == RP_HELLO) {
		chan_refuse(nc.fd, &nc.tls, LMIG_ST_SESSION, NULL, 0);
	} else {
		tls_chan_free(&nc.tls);
		net_close_draining(&nc.fd, 1, 100);
	}
	lmig_err_clear();
	return 0;
}

int stream_resume_rx_tick(struct stream_receiver *r)
{
	struct stream_resume_rx *rv = r->rv;
	double now = now_s();

	if (r->fail_status)
		return -1;	/* a failure that could not end the session where it happened */
	if (!rv->accept_armed) {
		struct io_uring_sqe *sqe = uring_get_sqe(&r->ring);

		io_uring_prep_accept(sqe, rv->lfd, NULL, NULL, SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, 0, 0));
		rv->accept_armed = true;
	}
	for (unsigned int c = 0; c < r->nch; c++) {
		const struct stream_rx_chan *ch = &r->ch[c];

		if ((ch->broken || ch->replacing) &&
		    (now - ch->t_break) * 1000 > r->o->resume_timeout_ms)
			return fail(r, LMIG_ST_INCOMPLETE, "channel %u broke and did not come back within %d s (--resume-timeout)",
				    c, r->o->resume_timeout_ms / 1000);
	}
	return 0;
}

bool stream_resume_rx_broken(const struct stream_receiver *r)
{
	for (unsigned int c = 0; c < r->nch; c++)
		if (r->ch[c].broken || r->ch[c].replacing)
			return true;
	return false;
}

bool stream_resume_rx_linger(struct stream_receiver *r)
{
	struct stream_resume_rx *rv = r->rv;

	if (!rv->verdict_sent) {
		stream_send_reply(r, LMIG_SR_VERDICT, LMIG_ST_OK, 0, r->st->bytes_stream, NULL,
				  r->o->timeout_ms);
		rv->verdict_sent = true;
		rv->t_verdict = now_s();
	}
	/* The source closes once it has the verdict; a break meanwhile waits for it. */
	return r->ch[0].rx.eof ||
	       (now_s() - rv->t_verdict) * 1000 > r->o->resume_timeout_ms;
}

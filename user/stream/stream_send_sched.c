// SPDX-License-Identifier: GPL-2.0-only
/*
 * Source side of the stream transport: the scheduling decision
 * (stream_sched.c) applied.  Each turn of the loop the streams get their
 * class and their order, latency mode follows the return direction, and
 * the sockets' unsent limit follows the mode; a frame of an urgent stream
 * takes the channel with the least framed bytes ahead of it.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "stream/stream_send.h"

size_t stream_chan_unsent(const struct stream_tx_chan *ch)
{
	size_t n = 0;

	for (unsigned int b = 0; b < NOBUF; b++) {
		const struct obuf *o = &ch->buf[b];

		if (o->state == OB_FILL || o->state == OB_READY ||
		    (o->state == OB_BUSY && !o->sent))
			n += o->len - o->off;
	}
	return n;
}

int stream_pick_class(struct stream_sender *s, enum ssched_class cls, size_t need, uint8_t **at)
{
	bool ok[LMIG_MAX_CHANNELS];
	size_t queued[LMIG_MAX_CHANNELS];
	int c;

	if (cls == SSCHED_BULK && s->mode == SSCHED_NORMAL)
		return stream_pick_channel(s, need, at);
	for (unsigned int k = 0; k < s->nch; k++) {
		ok[k] = !s->ch[k].done_placed && stream_room(&s->ch[k], need);
		queued[k] = stream_chan_unsent(&s->ch[k]);
	}
	c = ssched_channel(cls, ok, queued, s->nch, s->rr, s->mode);
	if (c < 0)
		return -1;
	*at = stream_room(&s->ch[c], need);
	if (cls == SSCHED_BULK)
		s->rr = (c + 1) % s->nch;
	return c;
}

/*
 * Each turn: the streams' classes and their order, and latency mode from
 * the return direction (stream_sched.h); the sockets' unsent limit
 * follows the mode.
 */
void stream_schedule(struct stream_sender *s, double now)
{
	enum ssched_class cls[LMIG_STREAM_MAX];
	enum ssched_mode mode;
	bool returned = false;

	for (unsigned int i = 0; i < s->ns; i++) {
		struct stream_in *ss = s->s[i];

		returned |= ss->rnext != ss->rseen;
		ss->rseen = ss->rnext;
		cls[i] = ss->cls = ssched_class(&ss->sch, now);
	}
	if (returned)
		ssched_returned(&s->sched, now);
	mode = ssched_mode(&s->sched, now);
	if (mode != s->mode) {
		int lowat = ssched_lowat(&s->sched, mode, s->nch);

		for (unsigned int c = 0; c < s->nch; c++)
			setsockopt(s->ch[c].link.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
				   sizeof(lowat));
		s->mode = mode;
	}
	if (s->ns)
		ssched_order(cls, s->ns, s->srr++ % s->ns, s->order);
}

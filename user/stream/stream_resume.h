/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The stream engine's channels surviving a break (LMIG_CAP_RESUME,
 * include/lmig/stream.h), wired from the parts (resume_buf.h,
 * resume_proof.h, resume_dial.h) into both engines through small hooks:
 *
 *   stream_resume_send.c   the source: every frame placed is kept in its
 *                          channel's resume buffer until the destination's
 *                          ACK; a broken channel is connected again with
 *                          resume_dial() and replayed from what the
 *                          destination says it took
 *   stream_resume_recv.c   the destination: the listening socket stays
 *                          open, a reconnect is proven (resume_server())
 *                          and takes its channel's place; channel 0's
 *                          direction to the source (replies, return
 *                          frames, ACKs) is kept and replayed the same way
 *
 * A break is any error or early end of a channel; the session waits for
 * it to come back for --resume-timeout, then fails as a reset does
 * without resume.
 */
#ifndef LMIG_STREAM_RESUME_H
#define LMIG_STREAM_RESUME_H

#include <stdbool.h>
#include <stdint.h>

#include "chan/channel.h"
#include "stream/resume_buf.h"
#include "stream/resume_proof.h"

/*
 * An ACK goes back after this many bytes of a channel were taken (and at
 * a channel's DONE): a quarter of the least resume buffer, so a source
 * whose buffer is full always hears of room before it waits long.
 */
#define RESUME_ACK_STEP		(RESUME_BUF_MIN / 4)
/*
 * The destination's buffer for channel 0 holds this much beyond
 * --resume-buffer for its replies and ACKs, which never wait: return
 * frames are read from QEMU only while the buffer has this room left.
 */
#define RESUME_CTRL_SLACK	(256U * 1024)

struct stream_sender;
struct stream_receiver;

/* ---- source (stream_resume_send.c) ---- */

struct stream_resume_tx {
	struct resume_sess ss;
	uint64_t ret_acked;	/* the last ACK placed of channel 0's return direction */
};

/* caps granted by channel 0's ack: read the secret, set up the buffers.  0 or -1. */
int stream_resume_tx_init(struct stream_sender *s, const uint8_t session[16], uint32_t caps);
void stream_resume_tx_free(struct stream_sender *s);
/* Channel c failed (a send, its receive, its watch): 0 when it will be resumed, else -1. */
int stream_resume_tx_broken(struct stream_sender *s, unsigned int c);
/* A watch of channel c > 0 (UD_REPLY, c) completed. */
int stream_resume_tx_watch(struct stream_sender *s, unsigned int c, int res);
/* An ACK from the destination (channel 0's return direction): 0, or -1. */
int stream_resume_tx_ack(struct stream_sender *s, const struct lmig_sframe *f, uint64_t seq);
/* Before the loop waits: reconnect what broke, place ACKs, arm watches.  0, or -1. */
int stream_resume_tx_poll(struct stream_sender *s);
/* A channel is broken: the loop should wake up soon. */
bool stream_resume_tx_waiting(const struct stream_sender *s);

/* ---- destination (stream_resume_recv.c) ---- */

struct stream_resume_rx {
	struct resume_sess ss;
	struct resume_buf rb;		/* channel 0 towards the source */
	int lfd;			/* kept listening for reconnects */
	bool accept_armed;
	bool verdict_sent;
	double t_verdict;
};

/* After the handshake: keep lfd, send the secret, set up the buffer.  0 or -1. */
int stream_resume_rx_init(struct stream_receiver *r, int lfd, const uint8_t session[16]);
void stream_resume_rx_free(struct stream_receiver *r);
/*
 * Every byte the destination sends on channel 0 (replies, return frames,
 * ACKs): kept, and written unless the channel is broken.  0, or -1.
 */
int stream_resume_rx_send(struct stream_receiver *r, const void *p, size_t n);
/* Room for a return frame (the return direction is read only then). */
bool stream_resume_rx_room(const struct stream_receiver *r);
/*
 * A receive completion on channel c (res, its buffer bid): 1 to handle
 * it as without resume, 0 handled, -1 failed.
 */
int stream_resume_rx_recv(struct stream_receiver *r, unsigned int c, int res, unsigned int bid);
/* After a chunk of channel c was parsed: its ACK, when due.  0 or -1. */
int stream_resume_rx_acks(struct stream_receiver *r, unsigned int c);
/* An ACK from the source (of channel 0's direction to it).  0 or -1. */
int stream_resume_rx_ack(struct stream_receiver *r, const struct lmig_sframe *f);
/* A connection on the listening socket (UD_ACCEPT): 0, or -1. */
int stream_resume_rx_accept(struct stream_receiver *r, int res);
/* Each turn of the loop: the budget of what is broken, the accept armed.  0 or -1. */
int stream_resume_rx_tick(struct stream_receiver *r);
/* A channel is waiting for its source to come back. */
bool stream_resume_rx_broken(const struct stream_receiver *r);
/*
 * Everything arrived: the verdict goes (once) and the destination stays
 * until the source closed channel 0, so a verdict lost to a break is
 * replayed.  True when it may end.
 */
bool stream_resume_rx_linger(struct stream_receiver *r);

#endif

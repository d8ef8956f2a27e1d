/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The source side of the stream transport (stream_send*.c): its state,
 * and what its files call of each other.
 *
 *   stream_send.c       set-up, QEMU's connections read, frames placed and sent, the main loop
 *   stream_send_sched.c the scheduling decision (stream_sched.c) applied: classes,
 *                       order, latency mode, the channel of an urgent frame
 *   stream_send_ret.c   channel 0 received: replies, and the return direction
 *                       (LMIG_CAP_RETURN) written to QEMU's connections, credited
 */
#ifndef LMIG_STREAM_SEND_H
#define LMIG_STREAM_SEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

#include "chan/channel.h"
#include "chan/policy.h"
#include "chan/ratelimit.h"
#include "lib/xxh.h"
#include "stream/resume_buf.h"
#include "stream/stream.h"
#include "stream/stream_sched.h"

#define NOBUF		4
#define OBUF_SIZE	(1024 * 1024)
#define SFRAME		sizeof(struct lmig_sframe)
#define NCTRL		(2 * LMIG_STREAM_MAX + 8)
/* Per channel: framed bytes not yet handed to the kernel, and what its socket may keep unsent. */
#define UNSENT_MAX	(4 * LMIG_STREAM_BLOCK_MAX)
#define SOCK_UNSENT	UNSENT_MAX
/* Returned blocks in one write to QEMU; credit goes back every RCREDIT_STEP written. */
#define RIOV		64
#define RCREDIT_STEP	(LMIG_STREAM_RWINDOW / 4)
/* Channel 0's receive: what one brings, and (userspace TLS) what it opens to. */
#define BACK_SIZE	(64 * 1024)
#define BACK_PLAIN	(BACK_SIZE + TLS_RECORD_MAX)

enum obuf_state { OB_FREE, OB_FILL, OB_READY, OB_BUSY };

/* A send buffer: frames are appended (len) while it is OB_FILL. */
struct obuf {
	CHAN_SBUF;
	enum obuf_state state;
};

/* A channel to the destination lmig. */
struct stream_tx_chan {
	struct chan link;
	struct obuf buf[NOBUF];
	unsigned int fill, head;
	bool inflight;
	bool done_placed;
	uint64_t seq;
	/* LMIG_CAP_RESUME (stream_resume_send.c): */
	struct resume_buf *rb;	/* every byte placed, until acknowledged; NULL without */
	bool broken;		/* failed: nothing goes until it is connected again */
	bool watching;		/* channel > 0: a poll for its end is armed */
	double t_break;
};

/*
 * Bytes the destination QEMU wrote, to write to the source QEMU.  Small
 * RDATA payloads (QEMU's return messages are tens of bytes) are appended
 * to the last block while it has room, so what a block costs beyond its
 * bytes is paid once per RBLK_MIN, however small the frames.
 */
struct rblk {
	struct rblk *next;
	uint32_t len, cap;
	uint8_t data[];
};
#define RBLK_MIN	4096

/* A stream read from QEMU. */
struct stream_in {
	int fd;
	bool sock;		/* a connection (reset on failure), not stdin */
	uint8_t *ibuf;
	size_t have;		/* bytes read, not yet encoded */
	bool reading, eof, end_queued;
	uint64_t off;		/* bytes encoded */
	uint64_t acked;		/* bytes the destination wrote out */
	XXH3_state_t dig;
	/* The return direction, with LMIG_CAP_RETURN (ret). */
	bool ret;
	bool rwriting;		/* a write to fd in flight */
	bool rend_seen;		/* REND came, its digest matched */
	bool rshut;		/* ... and every byte is written: fd's writing half is shut */
	struct rblk *rq, *rq_tail;	/* returned blocks to write, in order */
	size_t rq_pos;		/* bytes of rq already written */
	uint64_t rnext;		/* returned bytes received */
	uint64_t rwritten;	/* ... and written to fd */
	uint64_t rcredited;	/* the last RCREDIT placed */
	XXH3_state_t rdig;
	struct iovec riov[RIOV];
	/* Scheduling (stream_sched.h): what was read lately, and the return bytes last seen. */
	struct ssched_stream sch;
	enum ssched_class cls;
	uint64_t rseen;
};

struct ctrl {
	uint16_t type;
	uint32_t stream;
	uint64_t offset;
	uint8_t digest[16];
};

/* Channel 0's receive: replies (struct lmig_sreply) and return frames, told apart by magic. */
struct back_rx {
	uint8_t *buf;		/* what a receive brings */
	uint8_t *plain;		/* userspace TLS: its records opened */
	bool armed;
	union {
		uint8_t area[sizeof(struct lmig_sreply)];
		struct lmig_sreply rep;
		struct lmig_sframe fr;
	};
	size_t have, need;	/* of area: the header being gathered */
	bool in_pay;		/* gathering fr's payload */
	struct rblk *blk;	/* RDATA's new block, or NULL ... */
	uint8_t *to;		/* ... where its payload goes (a new block, or the stream's last) */
	uint8_t digest[16];	/* REND's payload */
	uint32_t pay_have;
	uint64_t seq;		/* return frames so far */
	uint64_t taken;		/* LMIG_CAP_RESUME: bytes of whole messages parsed */
};

struct stream_sender {
	const struct stream_send_opts *o;
	struct stream_stats *st;
	struct io_uring ring;
	struct chan_tx tx;
	struct stream_tx_chan *ch;
	unsigned int nch, rr;
	struct stream_in *s[LMIG_STREAM_MAX];
	unsigned int ns;
	bool ret;			/* LMIG_CAP_RETURN granted */
	int lfd;			/* listening socket while accepting */
	bool accept_armed, accepting;
	double t_all_ended;		/* every accepted stream at EOF since, or 0 */
	struct ctrl ctrl[NCTRL];
	unsigned int nctrl, ctrl_head;
	bool input_done;		/* no stream will come or send more */
	struct back_rx back;
	bool verdict_in;
	struct cpolicy pol;
	struct ratelimit rl;
	struct ssched sched;
	enum ssched_mode mode;		/* post-copy: requests on the return direction */
	unsigned int srr;		/* the stream served first, in turn */
	unsigned int order[LMIG_STREAM_MAX];	/* this turn's order of the streams */
	double t0;
	double t_receiver;		/* the last reply, or the last time none was due */
	struct stream_resume_tx *rs;	/* LMIG_CAP_RESUME granted, or NULL */
};

/* stream_send.c */
/* Room for need bytes in the channel's buffer being filled: where they go, or NULL. */
uint8_t *stream_room(struct stream_tx_chan *ch, size_t need);
int stream_pick_channel(struct stream_sender *s, size_t need, uint8_t **at);
void stream_commit(struct stream_tx_chan *ch, size_t len);

/* stream_send_sched.c */
/* Framed bytes of a channel not yet handed to the kernel. */
size_t stream_chan_unsent(const struct stream_tx_chan *ch);
/* A channel for a frame of class cls (stream_sched.h): -1 when none has room. */
int stream_pick_class(struct stream_sender *s, enum ssched_class cls, size_t need, uint8_t **at);
/* Classes, order (s->order), latency mode and the sockets' limit, at the start of a turn. */
void stream_schedule(struct stream_sender *s, double now);

/* stream_send_ret.c */
int back_init(struct stream_sender *s);
void back_free(struct stream_sender *s);
void back_arm(struct stream_sender *s);
/* A receive on channel 0 completed with res: 0, or -1 with lmig_err(). */
int back_in(struct stream_sender *s, int res);
/* Writes of returned bytes to QEMU, and their credit: after each turn of the loop. */
void ret_submit_writes(struct stream_sender *s);
void ret_place_credits(struct stream_sender *s);
/* A write of stream i's returned bytes completed: 0, or -1 with lmig_err(). */
int ret_write_done(struct stream_sender *s, unsigned int i, int res);
/* Every stream's return direction ended and was written (true without LMIG_CAP_RETURN). */
bool ret_all_shut(const struct stream_sender *s);
void ret_free(struct stream_in *ss);
/* Forget a message cut by a break of channel 0 (LMIG_CAP_RESUME). */
void back_reset(struct stream_sender *s);

#endif

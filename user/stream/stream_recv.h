/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The destination side of the stream transport (stream_recv*.c): its
 * state, and what its files call of each other.
 *
 *   stream_recv.c          set-up, the handshake, receives, the main loop
 *   stream_recv_frames.c   a channel's frames: checked, decoded, put in order
 *   stream_recv_out.c      the streams: held blocks, writes to the destination, credit
 *   stream_recv_ret.c      the return direction (LMIG_CAP_RETURN): the destination's
 *                          bytes read and sent back, RCREDIT
 */
#ifndef LMIG_STREAM_RECV_H
#define LMIG_STREAM_RECV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <liburing.h>

#include "chan/channel.h"
#include "lib/xxh.h"
#include "stream/stream.h"

#define SFRAME		sizeof(struct lmig_sframe)
#define WIOV		64		/* blocks in one write */
#define CREDIT_STEP	(LMIG_STREAM_WINDOW / 8)
#define PLAIN_SIZE	(CHAN_RBUF_SIZE + TLS_RECORD_MAX)	/* userspace TLS: a chunk's records, opened */
/* The most read from the destination for one return frame. */
#define RBLOCK		(64 * 1024)
/* What a held block costs beyond its bytes: its header, malloc's, the tree node. */
#define BLK_COST	64

struct blk {
	struct blk *next;		/* in outq */
	uint64_t off;
	uint32_t len;
	uint8_t data[];
};

/* A stream written to the destination QEMU. */
struct stream_out {
	bool seen, open_seen, opened, end_seen, verified, closed, writing;
	int fd;
	void *pend;			/* out of order: tsearch(3) tree by offset */
	uint64_t pend_hi;		/* the end of the furthest block received */
	uint64_t held;			/* cost of the blocks in pend and outq */
	struct blk *outq, *outq_tail;	/* in order, to write */
	size_t out_pos;			/* bytes of outq already written */
	uint64_t next_off;		/* the next byte to move to outq */
	uint64_t written, credited;
	double t_credit;		/* when credited was sent */
	uint64_t end_len;
	uint8_t end_digest[16];
	XXH3_state_t dig;
	struct iovec iov[WIOV];
	/* The return direction, with LMIG_CAP_RETURN (ret). */
	bool ret, rreading;
	bool rend_sent;			/* the destination's end went back as REND */
	uint8_t *rbuf;			/* SFRAME + RBLOCK: a return frame, built in place */
	uint64_t roff;			/* bytes read from the destination and sent back */
	uint64_t racked;		/* the source's last RCREDIT */
	XXH3_state_t rdig;
};

enum stream_pstate { PS_HDR, PS_PAY, PS_DONE };

/* A channel from the source lmig: its receive buffers and its frame parser. */
struct stream_rx_chan {
	struct chan_rx rx;
	enum stream_pstate ps;
	union {
		uint8_t area[SFRAME];
		struct lmig_sframe fr;
	};
	size_t have;
	uint8_t *pay;			/* payload being gathered */
	struct blk *blk;		/* the DATA block being built */
	uint32_t pay_have;
	uint64_t seq;
	/* LMIG_CAP_RESUME (stream_resume_recv.c): */
	uint64_t taken;			/* bytes of whole frames parsed */
	uint64_t acked;			/* ... the last ACK sent */
	bool broken;			/* waiting for the source to connect again */
	bool replacing;			/* a reconnect waits for the old receive to end */
	double t_break;
	struct chan next;		/* ... that reconnect */
	uint64_t next_have;		/* ... and what the source took of channel 0 */
};

struct stream_receiver {
	const struct stream_recv_opts *o;
	struct stream_stats *st;
	struct io_uring ring;
	bool ring_ok, ms;
	struct chan *link;		/* the channels' sockets and sessions */
	struct stream_rx_chan *ch;	/* ... and what is received on them */
	unsigned int nch;
	bool ret;			/* LMIG_CAP_RETURN granted */
	bool fine_credit;		/* LMIG_CAP_FINE_CREDIT: CREDIT every LMIG_STREAM_FINE_STEP */
	uint64_t rseq;			/* return frames sent on channel 0 */
	struct stream_out *s[LMIG_STREAM_MAX];
	unsigned int opened_upto;	/* streams below have their destination open */
	unsigned int done_chans;
	int64_t nstreams;		/* from DONE, -1 before */
	uint8_t *plain;			/* PLAIN_SIZE, with userspace TLS */
	uint32_t fail_status;
	const char *fail_why;		/* LMIG_ST_IO: what a plain peer is told, see verdict_text() */
	int fail_err;			/* and the system's error, or 0 */
	uint64_t held;			/* cost of every stream's held blocks */
	double t0;
	double t_progress;		/* the last byte written to a destination, or
					 * the first frame; 0 before */
	struct stream_resume_rx *rv;	/* LMIG_CAP_RESUME granted, or NULL */
};

/* An error, and the status the peer's verdict will carry (the first one stands). */
#define fail(r, status, ...)	chan_fail(&(r)->fail_status, status, __VA_ARGS__)

/* stream_recv_out.c */
void stream_io_why(struct stream_receiver *r, const char *why, int err);
struct stream_out *stream_get_stream(struct stream_receiver *r, uint32_t i);
void stream_send_reply(struct stream_receiver *r, unsigned int type, unsigned int status,
		       uint32_t stream, uint64_t bytes, const char *reason, int timeout_ms);
void stream_submit_write(struct stream_receiver *r, unsigned int i);
int stream_blk_cmp(const void *a, const void *b);
int stream_hold(struct stream_receiver *r, unsigned int i, struct stream_out *s,
		const struct blk *b);
void stream_unhold(struct stream_receiver *r, struct stream_out *s, const struct blk *b);
int stream_write_done(struct stream_receiver *r, unsigned int i, int res);
int stream_deliver(struct stream_receiver *r, unsigned int i);
int stream_open_streams(struct stream_receiver *r);

/* stream_recv_ret.c */
int stream_ret_open(struct stream_receiver *r, unsigned int i);
void stream_ret_arm(struct stream_receiver *r, unsigned int i);
int stream_ret_read_done(struct stream_receiver *r, unsigned int i, int res);
int stream_ret_credit(struct stream_receiver *r, const struct lmig_sframe *f);
/* Both directions of stream s are over (its forward one closed, its return one ended). */
bool stream_ret_over(const struct stream_out *s);

/* stream_recv_frames.c */
int stream_parse(struct stream_receiver *r, unsigned int c, const uint8_t *p, size_t n);

#endif

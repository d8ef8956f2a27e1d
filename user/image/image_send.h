/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The sender engine's state, shared by its files: image_send.c (set-up,
 * channels, sending, rounds, the commit) and image_send_pages.c (reading
 * and encoding pages into frames, the todo bitmap).
 */
#ifndef LMIG_IMAGE_SEND_H
#define LMIG_IMAGE_SEND_H

#include <stdbool.h>
#include <stdint.h>

#include "chan/channel.h"
#include "chan/policy.h"
#include "chan/ratelimit.h"
#include "image/image.h"
#include "image/image_file.h"
#include "live/precopy.h"

#define NBUF		4
#define BATCH_TARGET	(256 * 1024)	/* image bytes per frame */
#define BATCH_MIN	(64 * 1024)	/* ... but at most 0.1 s of --bandwidth, down to this */
#define BATCH_MAX	(BATCH_TARGET / LMIG_PAGE_SIZE)
#define DESC_AREA	(sizeof(struct lmig_frame) + LMIG_MAX_FRAME_DESC * sizeof(struct lmig_page_desc))
#define BUF_SIZE	(DESC_AREA + LMIG_MAX_PAYLOAD)

enum sbuf_state { SB_FREE, SB_READING, SB_READY };

/* A send buffer: one frame (data, len: inside mem, or its records once sealed). */
struct sbuf {
	CHAN_SBUF;
	enum sbuf_state state;
	uint64_t idx[BATCH_MAX];	/* the pages in the payload, in order */
	unsigned int npages;
	size_t got;		/* ring reads (one run of pages): bytes read so far */
};

/* A channel to the receiver. */
struct image_tx_chan {
	struct chan link;
	struct sbuf buf[NBUF];
	unsigned int fill;	/* next buffer to fill */
	unsigned int head;	/* oldest queued buffer not yet fully sent */
	unsigned int queued;	/* filled or being filled, not fully sent */
	bool inflight;
	/*
	 * ROUND frames (and the END frame) due before any more pages: a
	 * channel may still owe one for a round when the next one closes.
	 */
	unsigned int rounds_due;
	bool end_due, end_built;
	uint64_t round_seq;	/* the round its next ROUND frame ends */
	uint64_t seq, pages, frames;
};

struct sender {
	const struct send_opts *o;
	struct image_stats *st;
	struct src_image im;
	struct io_uring ring;
	struct chan_tx tx;		/* the ring's channel side, the send buffers */
	bool sync_read;			/* memory: read right here, any pages per frame */
	unsigned int batch_pages;	/* pages read into one frame */
	struct image_tx_chan *ch;
	unsigned int nch, rr;
	uint64_t *hashes;		/* per page: hash of what was last sent */
	uint64_t *todo;			/* this round's pages not yet read */
	uint64_t cursor;		/* no todo bit is set below it */
	unsigned int reading;		/* buffers with a ring read in flight */
	uint64_t pages_done;		/* pages encoded, all rounds */
	bool digest_done;
	uint8_t digest[16];
	uint8_t lz4_out[LMIG_PAGE_SIZE];	/* a page compressed, lz4 or zstd */
	struct lmig_result result;
	struct chan_reply rp;		/* receives result on channel 0 */
	bool result_in, result_armed;
	bool confirm;			/* LMIG_CAP_CONFIRM: the verdict, CONFIRM, then FINAL */
	bool unknown;			/* CONFIRM sent, no valid FINAL: outcome unknown */
	struct cpolicy pol;
	struct ratelimit rl;
	double t0, last_progress;
	/* rounds */
	bool final;			/* the current round is the last */
	bool round_closed;		/* its pages are all encoded */
	uint64_t round_pages, round_wire;
	double round_t0;
	/* a live send: the pre-copy controller decides what follows a round */
	bool live;
	struct live_ctl *lv;
	bool draining;			/* switch over once all is on the wire */
	bool harvesting;		/* the final round's harvest is still in parts */
	uint64_t rounds_acked;		/* rounds the receiver applied */
};


/* image_send_pages.c */
/* The first page still to send at or after the cursor (npages: none). */
uint64_t send_next_todo(struct sender *s);
/*
 * Fill every free buffer: due markers first, then pages of the todo
 * bitmap (read synchronously or by the ring).  Returns the seconds the
 * rate limit asks to wait (0: none), or -1; *blocked when every channel
 * was busy.
 */
double send_fill(struct sender *s, bool *blocked);
/* A ring read of buffer bi on channel c completed with res. */
int send_read_done(struct sender *s, unsigned int c, unsigned int bi, int res);

#endif

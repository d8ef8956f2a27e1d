/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The stream sender's scheduling decision, without the mechanism
 * (stream_send.c): which stream is read and encoded next, how far each
 * may run ahead of what the destination wrote out, how much framed data
 * may wait in the send buffers and sockets, and which channel an urgent
 * frame takes.  Numbers in, a decision out: no I/O, no clock (the time is
 * an argument), so every branch is tested with exact inputs
 * (selftests/test_stream_sched.c).
 *
 * Why.  QEMU's post-copy makes the destination's guest wait on pages it
 * asks for: a request goes back on the return direction, the page comes
 * on the main stream (or, with postcopy-preempt, on a stream of its own),
 * and every byte queued ahead of that page in lmig is waited for.  lmig
 * with lz4 outruns the destination QEMU, so without a limit the main
 * stream's whole window (16 MiB) piles up at the destination, ahead of
 * every answer; held back at the source instead, those bytes stay in
 * QEMU, which sends requested pages before the rest.
 *
 * Classes.  A stream QEMU writes little to (less than SSCHED_LIGHT bytes
 * over the last two periods of SSCHED_PERIOD_S) is URGENT: the
 * postcopy-preempt channel, which carries requested pages only.  Any
 * other is BULK.  Urgent streams are read and encoded first, are not held
 * by the send buffers' limit (their own window still holds), and their
 * frames go to the channel with the least queued ahead of them (in
 * latency mode, to a channel of their own).
 *
 * Latency mode.  It starts with the second return frame within
 * SSCHED_HOLD_S of the one before (QEMU's return path is silent in
 * pre-copy but for a word or two; in post-copy every remote fault sends
 * a request) and lasts SSCHED_HOLD_S after the last.  While it lasts,
 * with two channels or more the last one carries URGENT frames only, so
 * they wait behind no bulk data in lmig or in a socket; with one channel
 * the send buffers hold at most SSCHED_LAT_UNSENT of framed bulk data and
 * the socket keeps at most SSCHED_LAT_LOWAT unsent instead.  Two kinds:
 *
 * - SHARED: the answers come on a bulk stream (post-copy without
 *   preempt).  A BULK stream may run only SSCHED_LAT_WINDOW ahead of what
 *   the destination wrote out (SSCHED_LAT_WINDOW_COARSE with a
 *   destination that credits only every 2 MiB: twice its step, so the
 *   credit never stalls it), in reads of at most SSCHED_LAT_BLOCK: what
 *   QEMU wrote beyond that waits in QEMU, behind the answers it sends
 *   first.
 * - SPLIT: an URGENT stream that never carried bytes back (the return
 *   direction's requests come on the main stream, so this is another
 *   one: postcopy-preempt's) read data within SSCHED_HOLD_S.  The answers
 *   have their own stream, a backlog of the bulk stream at the
 *   destination is not ahead of them, and a bulk stream keeps its window:
 *   QEMU 7.2 sends both from one thread, which must not wait on a bulk
 *   stream lmig stopped reading before it can send an answer.
 */
#ifndef LMIG_STREAM_SCHED_H
#define LMIG_STREAM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSCHED_PERIOD_S		0.1
#define SSCHED_LIGHT		(256 * 1024)
#define SSCHED_HOLD_S		1.0
#define SSCHED_LAT_WINDOW	(512 * 1024)
#define SSCHED_LAT_WINDOW_COARSE	(4U << 20)
#define SSCHED_LAT_BLOCK	(64 * 1024)
#define SSCHED_LAT_UNSENT	(128 * 1024)
#define SSCHED_LAT_LOWAT	(128 * 1024)

enum ssched_class { SSCHED_BULK, SSCHED_URGENT };
enum ssched_mode { SSCHED_NORMAL, SSCHED_SHARED, SSCHED_SPLIT };

/* What was read from one stream lately. */
struct ssched_stream {
	double t_period;		/* the current period began, 0: none yet */
	uint64_t cur, prev;		/* bytes read in it, and in the one before */
};

/* The session: the limits of its normal mode, and the return direction's activity. */
struct ssched {
	uint64_t window;		/* a stream's window (LMIG_STREAM_WINDOW) */
	size_t block;			/* the most one read takes (LMIG_STREAM_BLOCK_MAX) */
	size_t unsent;			/* framed bytes a channel may hold unsent */
	int lowat;			/* a socket's unsent bytes (TCP_NOTSENT_LOWAT) */
	bool fine_credit;		/* the destination credits every LMIG_STREAM_FINE_STEP */
	double t_return;		/* the last return frame, 0: none */
	unsigned int returns;		/* return frames, each within SSCHED_HOLD_S of the last */
	double t_split;			/* an urgent stream without a return read, in latency mode */
};

/* n bytes were read from a stream at now. */
void ssched_read(struct ssched_stream *st, double now, size_t n);
enum ssched_class ssched_class(const struct ssched_stream *st, double now);

/* A return frame (bytes the destination QEMU wrote back) came at now. */
void ssched_returned(struct ssched *s, double now);
/*
 * A stream of class cls read data at now; returned: it has carried bytes
 * back.  Call after ssched_returned() for the same turn.
 */
void ssched_stream_read(struct ssched *s, double now, enum ssched_class cls, bool returned);
enum ssched_mode ssched_mode(const struct ssched *s, double now);

/* How far a stream may run ahead of what the destination wrote out. */
uint64_t ssched_window(const struct ssched *s, enum ssched_class cls, enum ssched_mode mode);

/*
 * How many bytes a stream may read now (0: none): within its window
 * (off sent, acked written out at the destination), at most a block, and
 * for a BULK stream only while the channels' framed bytes not yet handed
 * to the kernel (unsent, over nch channels) are under the limit.
 */
size_t ssched_read_room(const struct ssched *s, enum ssched_class cls, enum ssched_mode mode,
			uint64_t off, uint64_t acked, size_t unsent, unsigned int nch);

/* What each of nch sockets may keep unsent (TCP_NOTSENT_LOWAT). */
int ssched_lowat(const struct ssched *s, enum ssched_mode mode, unsigned int nch);

/*
 * The order in which n streams are served: URGENT ones first, each class
 * in round robin from rr.  order[] gets the n stream numbers.
 */
void ssched_order(const enum ssched_class *cls, unsigned int n, unsigned int rr,
		  unsigned int *order);

/*
 * The channel for a frame: BULK round robin from rr over the channels
 * with room; URGENT the one with room and the fewest bytes queued
 * (queued[c]: framed and not yet sent), the first of equals from rr.  In
 * latency mode with two channels or more the last one is kept for URGENT
 * frames (they take it whenever it has room; BULK frames never do), so
 * no bulk data waits in its socket ahead of them.  -1: no channel has
 * room.
 */
int ssched_channel(enum ssched_class cls, const bool *room, const size_t *queued,
		   unsigned int nch, unsigned int rr, enum ssched_mode mode);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/stream/stream_sched.c, the stream sender's
 * scheduling decision, with exact inputs: what was read from each stream
 * and when, the return frames and their times, bytes in flight and
 * queued, and what must follow.
 *
 *   class_by_recent_reads     light (under 256 KiB over two periods) is
 *                             urgent, heavy is bulk, and the reads age out
 *   class_period_edges        a period rolls over at exactly 100 ms; a
 *                             read after two idle periods starts afresh
 *   latency_needs_two         one return frame is not post-copy, a second
 *                             within 1 s is; it lasts 1 s after the last
 *   latency_chain_breaks      a gap of 1 s or more starts the count again
 *   mode_split_by_urgent_stream  latency mode is SPLIT while an urgent
 *                             stream that never carried bytes back reads
 *                             (postcopy-preempt's), SHARED otherwise
 *   window_by_mode            bulk in SHARED latency mode: 512 KiB with
 *                             fine credit, 4 MiB without; otherwise (SPLIT
 *                             too) the window
 *   read_room_window          the room is what the window leaves, at most
 *                             a block (64 KiB for bulk in SHARED mode)
 *   read_room_unsent          full send buffers stop bulk reads only, and
 *                             in latency mode over one channel at 128 KiB
 *   read_room_bad_ack         credit beyond what was sent reads nothing
 *   lowat_by_mode             128 KiB in latency mode over one channel,
 *                             never above normal
 *   order_urgent_first        urgent streams before bulk, each in turn
 *                             from rr
 *   channel_bulk_round_robin  bulk: the first channel with room from rr
 *   channel_urgent_least      urgent: the least queued with room, ties
 *                             from rr; none with room: -1
 *   channel_kept_for_urgent   latency mode, two channels or more: the
 *                             last is the urgent frames' alone
 */
#include "kselftest_harness.h"

#include "stream/stream_sched.h"

/* Latency mode, of either kind. */
#define LAT(s, now)	(ssched_mode(s, now) != SSCHED_NORMAL)

static struct ssched normal(bool fine)
{
	return (struct ssched){ .window = 16U << 20, .block = 256 * 1024, .unsent = 1 << 20,
				.lowat = 1 << 20, .fine_credit = fine };
}

TEST(class_by_recent_reads)
{
	struct ssched_stream st = { 0 };

	EXPECT_EQ(SSCHED_URGENT, ssched_class(&st, 5.0));	/* nothing read yet */
	ssched_read(&st, 10.0, 4096);
	EXPECT_EQ(SSCHED_URGENT, ssched_class(&st, 10.0));
	ssched_read(&st, 10.05, SSCHED_LIGHT - 4097);
	EXPECT_EQ(SSCHED_URGENT, ssched_class(&st, 10.05));	/* one byte short */
	ssched_read(&st, 10.06, 1);
	EXPECT_EQ(SSCHED_BULK, ssched_class(&st, 10.06));
	/* The next period still sees the one before ... */
	EXPECT_EQ(SSCHED_BULK, ssched_class(&st, 10.15));
	ssched_read(&st, 10.15, 100);
	EXPECT_EQ(SSCHED_BULK, ssched_class(&st, 10.2));
	/* ... the one after no longer. */
	EXPECT_EQ(SSCHED_URGENT, ssched_class(&st, 10.26));
	EXPECT_EQ(100, st.cur);
	EXPECT_EQ(SSCHED_LIGHT, st.prev);
}

TEST(class_period_edges)
{
	struct ssched_stream st = { 0 };

	ssched_read(&st, 1.0, SSCHED_LIGHT);
	EXPECT_EQ(1.0, st.t_period);
	ssched_read(&st, 1.0 + SSCHED_PERIOD_S, 7);	/* exactly one period: rolls over */
	EXPECT_EQ(7, st.cur);
	EXPECT_EQ(SSCHED_LIGHT, st.prev);
	EXPECT_EQ(SSCHED_BULK, ssched_class(&st, 1.15));
	ssched_read(&st, 1.5, 9);			/* two idle periods: afresh */
	EXPECT_EQ(9, st.cur);
	EXPECT_EQ(0, st.prev);
	EXPECT_EQ(1.5, st.t_period);
	EXPECT_EQ(SSCHED_URGENT, ssched_class(&st, 1.5));
}

TEST(latency_needs_two)
{
	struct ssched s = normal(true);

	EXPECT_FALSE(LAT(&s, 0.0));
	ssched_returned(&s, 3.0);
	EXPECT_FALSE(LAT(&s, 3.0));	/* QEMU's one word in pre-copy */
	ssched_returned(&s, 3.9);
	EXPECT_TRUE(LAT(&s, 3.9));
	EXPECT_TRUE(LAT(&s, 4.89));
	EXPECT_FALSE(LAT(&s, 4.9));	/* SSCHED_HOLD_S after the last */
	EXPECT_EQ(2, s.returns);
}

TEST(latency_chain_breaks)
{
	struct ssched s = normal(true);

	ssched_returned(&s, 1.0);
	ssched_returned(&s, 2.0);		/* exactly the hold later: a new chain */
	EXPECT_EQ(1, s.returns);
	EXPECT_FALSE(LAT(&s, 2.0));
	ssched_returned(&s, 2.5);
	ssched_returned(&s, 2.6);
	EXPECT_EQ(3, s.returns);
	EXPECT_TRUE(LAT(&s, 3.0));
}

TEST(mode_split_by_urgent_stream)
{
	struct ssched s = normal(true);

	/* Not in latency mode: an urgent stream's reads change nothing. */
	ssched_stream_read(&s, 1.0, SSCHED_URGENT, false);
	EXPECT_EQ(SSCHED_NORMAL, ssched_mode(&s, 1.0));
	EXPECT_EQ(0, s.t_split);
	ssched_returned(&s, 2.0);
	ssched_returned(&s, 2.1);
	EXPECT_EQ(SSCHED_SHARED, ssched_mode(&s, 2.1));
	/* The stream that carries the requests back, or a bulk one: still shared. */
	ssched_stream_read(&s, 2.2, SSCHED_URGENT, true);
	ssched_stream_read(&s, 2.2, SSCHED_BULK, false);
	EXPECT_EQ(SSCHED_SHARED, ssched_mode(&s, 2.2));
	/* Another, urgent, that never returned a byte: the answers' own stream. */
	ssched_stream_read(&s, 2.3, SSCHED_URGENT, false);
	EXPECT_EQ(SSCHED_SPLIT, ssched_mode(&s, 2.3));
	ssched_returned(&s, 3.0);
	EXPECT_EQ(SSCHED_SPLIT, ssched_mode(&s, 3.29));
	EXPECT_EQ(SSCHED_SHARED, ssched_mode(&s, 3.31));	/* a hold after its last read */
	EXPECT_EQ(SSCHED_NORMAL, ssched_mode(&s, 4.0));	/* and after the last request */
}

TEST(window_by_mode)
{
	struct ssched fine = normal(true), coarse = normal(false), small = normal(true);

	EXPECT_EQ(16U << 20, ssched_window(&fine, SSCHED_BULK, SSCHED_NORMAL));
	EXPECT_EQ(16U << 20, ssched_window(&fine, SSCHED_URGENT, SSCHED_SHARED));
	EXPECT_EQ(SSCHED_LAT_WINDOW, ssched_window(&fine, SSCHED_BULK, SSCHED_SHARED));
	EXPECT_EQ(512 * 1024, ssched_window(&fine, SSCHED_BULK, SSCHED_SHARED));
	EXPECT_EQ(4U << 20, ssched_window(&coarse, SSCHED_BULK, SSCHED_SHARED));
	small.window = 100000;			/* never above the session's window */
	EXPECT_EQ(100000, ssched_window(&small, SSCHED_BULK, SSCHED_SHARED));
	/* Split: the bulk stream keeps its window. */
	EXPECT_EQ(16U << 20, ssched_window(&fine, SSCHED_BULK, SSCHED_SPLIT));
}

TEST(read_room_window)
{
	struct ssched s = normal(true);

	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_NORMAL, 0, 0, 0, 2));
	EXPECT_EQ(1000, ssched_read_room(&s, SSCHED_BULK, SSCHED_NORMAL, (16U << 20) - 1000 + 5000,
					 5000, 0, 2));
	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_BULK, SSCHED_NORMAL, (16U << 20) + 5000, 5000, 0, 2));
	/* Latency mode: 64 KiB reads, 512 KiB ahead. */
	EXPECT_EQ(64 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 1000, 1000, 0, 2));
	EXPECT_EQ(10000, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 512 * 1024 - 10000, 0, 0, 2));
	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 512 * 1024, 0, 0, 2));
	/* Split: the bulk stream as it is. */
	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_SPLIT, 512 * 1024, 0, 0, 2));
	/* An urgent stream keeps its window and its block. */
	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_URGENT, SSCHED_SHARED, 512 * 1024, 0, 0, 2));
}

TEST(read_room_unsent)
{
	struct ssched s = normal(true);

	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_NORMAL, 0, 0, (2 << 20) - 1, 2));
	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_BULK, SSCHED_NORMAL, 0, 0, 2 << 20, 2));
	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_URGENT, SSCHED_NORMAL, 0, 0, 8 << 20, 2));
	/* Latency mode, two channels: urgent frames have their own; bulk as it is. */
	EXPECT_EQ(64 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 0, 0, (2 << 20) - 1, 2));
	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 0, 0, 2 << 20, 2));
	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_SPLIT, 0, 0, (2 << 20) - 1, 2));
	/* One channel: bulk stops at 128 KiB framed and unsent, urgent never. */
	EXPECT_EQ(64 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 0, 0, 128 * 1024 - 1, 1));
	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_BULK, SSCHED_SHARED, 0, 0, 128 * 1024, 1));
	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_BULK, SSCHED_SPLIT, 0, 0, 128 * 1024, 1));
	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_BULK, SSCHED_NORMAL, 0, 0, 128 * 1024, 1));
	EXPECT_EQ(256 * 1024, ssched_read_room(&s, SSCHED_URGENT, SSCHED_SPLIT, 0, 0, 8 << 20, 1));
}

TEST(read_room_bad_ack)
{
	struct ssched s = normal(true);

	EXPECT_EQ(0, ssched_read_room(&s, SSCHED_URGENT, SSCHED_NORMAL, 10, 11, 0, 1));
}

TEST(lowat_by_mode)
{
	struct ssched s = normal(true);

	EXPECT_EQ(1 << 20, ssched_lowat(&s, SSCHED_NORMAL, 1));
	EXPECT_EQ(128 * 1024, ssched_lowat(&s, SSCHED_SHARED, 1));
	EXPECT_EQ(128 * 1024, ssched_lowat(&s, SSCHED_SPLIT, 1));
	/* Two channels: the urgent frames have one of their own. */
	EXPECT_EQ(1 << 20, ssched_lowat(&s, SSCHED_SPLIT, 2));
	s.lowat = 4096;
	EXPECT_EQ(4096, ssched_lowat(&s, SSCHED_SHARED, 1));
}

TEST(order_urgent_first)
{
	enum ssched_class cls[5] = { SSCHED_BULK, SSCHED_URGENT, SSCHED_BULK, SSCHED_BULK,
				     SSCHED_URGENT };
	unsigned int order[5];
	const unsigned int want0[5] = { 1, 4, 0, 2, 3 }, want3[5] = { 4, 1, 3, 0, 2 };

	ssched_order(cls, 5, 0, order);
	for (int k = 0; k < 5; k++)
		EXPECT_EQ(want0[k], order[k]);
	ssched_order(cls, 5, 3, order);
	for (int k = 0; k < 5; k++)
		EXPECT_EQ(want3[k], order[k]);
}

TEST(channel_bulk_round_robin)
{
	bool room[4] = { true, false, true, true };
	size_t queued[4] = { 900, 0, 50, 700 };

	EXPECT_EQ(0, ssched_channel(SSCHED_BULK, room, queued, 4, 0, SSCHED_NORMAL));
	EXPECT_EQ(2, ssched_channel(SSCHED_BULK, room, queued, 4, 1, SSCHED_NORMAL));
	EXPECT_EQ(3, ssched_channel(SSCHED_BULK, room, queued, 4, 3, SSCHED_NORMAL));
}

TEST(channel_urgent_least)
{
	bool room[4] = { true, false, true, true }, none[4] = { false };
	size_t queued[4] = { 900, 0, 50, 50 };

	EXPECT_EQ(2, ssched_channel(SSCHED_URGENT, room, queued, 4, 0, SSCHED_NORMAL));	/* 1 is full */
	EXPECT_EQ(3, ssched_channel(SSCHED_URGENT, room, queued, 4, 3, SSCHED_NORMAL));	/* tie: from rr */
	EXPECT_EQ(-1, ssched_channel(SSCHED_URGENT, none, queued, 4, 0, SSCHED_NORMAL));
	EXPECT_EQ(-1, ssched_channel(SSCHED_BULK, none, queued, 4, 0, SSCHED_NORMAL));
}

TEST(channel_kept_for_urgent)
{
	bool room[3] = { true, true, true };
	size_t queued[3] = { 0, 10, 500 };

	/* Latency mode: urgent frames take the last channel, however queued ... */
	EXPECT_EQ(2, ssched_channel(SSCHED_URGENT, room, queued, 3, 0, SSCHED_SHARED));
	/* ... bulk frames never. */
	EXPECT_EQ(0, ssched_channel(SSCHED_BULK, room, queued, 3, 0, SSCHED_SHARED));
	EXPECT_EQ(1, ssched_channel(SSCHED_BULK, room, queued, 3, 1, SSCHED_SPLIT));
	EXPECT_EQ(0, ssched_channel(SSCHED_BULK, room, queued, 3, 2, SSCHED_SHARED));
	room[0] = room[1] = false;
	EXPECT_EQ(-1, ssched_channel(SSCHED_BULK, room, queued, 3, 0, SSCHED_SHARED));
	/* The last one full: the least queued of the others. */
	room[0] = room[1] = true;
	room[2] = false;
	EXPECT_EQ(0, ssched_channel(SSCHED_URGENT, room, queued, 3, 1, SSCHED_SPLIT));
	/* One channel: shared. */
	EXPECT_EQ(0, ssched_channel(SSCHED_BULK, room, queued, 1, 0, SSCHED_SPLIT));
	EXPECT_EQ(0, ssched_channel(SSCHED_URGENT, room, queued, 1, 0, SSCHED_SPLIT));
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/live/switch_plan.c, the final round in parts: the
 * order of the parts and the pause harvest and send take, on exact
 * inputs.
 *
 *   parts_count           parts of a size that cover npages, the last short
 *   order_no_harvest      no counts yet: in order
 *   order_heaviest_first  a part's weight is its pages and its
 *                         predecessor's, heaviest first, ties by index
 *   order_sweep_successor a part written alone: it, then the one after it
 *                         (a writer sweeping upwards), then the rest
 *   pause_one_part        one part: harvest plus send, as without parts
 *   pause_harvest_longer  the harvest longer: it, plus the last part's
 *                         share of the send
 *   pause_send_longer     the send longer: the first part, then all of it
 *   pause_nothing_to_send no pages: the harvest alone
 */
#include <math.h>

#include "kselftest_harness.h"

#include "live/switch_plan.h"

#define NEAR(a, b)	(fabs((a) - (b)) < 1e-12)

TEST(parts_count)
{
	EXPECT_EQ(1, splan_parts(0, 2048));
	EXPECT_EQ(1, splan_parts(100, 0));
	EXPECT_EQ(1, splan_parts(2048, 2048));
	EXPECT_EQ(2, splan_parts(2049, 2048));
	EXPECT_EQ(128, splan_parts(262144, 2048));
}

TEST(order_no_harvest)
{
	unsigned int order[5];

	splan_order(NULL, 5, order);
	for (unsigned int i = 0; i < 5; i++)
		EXPECT_EQ(i, order[i]);
}

TEST(order_heaviest_first)
{
	/* weights: 0, 5, 5+0=5, 0+9=9, 9+1=10, 1+0=1 */
	const uint64_t dirty[6] = { 0, 5, 0, 9, 1, 0 };
	const unsigned int want[6] = { 4, 3, 1, 2, 5, 0 };
	unsigned int order[6];

	splan_order(dirty, 6, order);
	for (unsigned int i = 0; i < 6; i++)
		EXPECT_EQ(want[i], order[i]);
}

TEST(order_sweep_successor)
{
	const uint64_t dirty[5] = { 0, 0, 7, 0, 0 };
	const unsigned int want[5] = { 2, 3, 0, 1, 4 };
	unsigned int order[5];

	splan_order(dirty, 5, order);
	for (unsigned int i = 0; i < 5; i++)
		EXPECT_EQ(want[i], order[i]);
}

TEST(pause_one_part)
{
	EXPECT_TRUE(NEAR(0.35, splan_pause_s(0.15, 0.2, 1)));
	EXPECT_TRUE(NEAR(0.35, splan_pause_s(0.15, 0.2, 0)));
}

TEST(pause_harvest_longer)
{
	/* 0.4 + 0.1 / 4 = 0.425 against 0.4 / 4 + 0.1 = 0.2 */
	EXPECT_TRUE(NEAR(0.425, splan_pause_s(0.4, 0.1, 4)));
}

TEST(pause_send_longer)
{
	/* 0.2 + 0.3 / 8 = 0.2375 against 0.2 / 8 + 0.3 = 0.325 */
	EXPECT_TRUE(NEAR(0.325, splan_pause_s(0.2, 0.3, 8)));
}

TEST(pause_nothing_to_send)
{
	EXPECT_TRUE(NEAR(0.18, splan_pause_s(0.18, 0, 128)));
}

TEST_HARNESS_MAIN

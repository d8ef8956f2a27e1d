// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/live/track_pick.c, --tracker auto's decision by
 * cost, fed calibration harvests with chosen numbers so that each case is
 * exact.  The candidates come in auto's order of preference (kmod,
 * soft-dirty, uffd, scan), only those that can watch the memory.
 *
 *   none                    no candidate: -1, TRACK_PICK_NONE
 *   only                    one candidate: it, without a cost
 *   cost_doubles_stopped    a harvest that stops the writer costs twice
 *                           its time; one that does not, its time
 *   near_tie_keeps_order    a later tracker at 0.51x the first: the first
 *   cheaper_by_half         at 0.49x and saving >= 10 ms: the later one
 *   min_saving              0.1x but saving under 10 ms: the first
 *   cheapest_of_several     two later ones beat the first: the cheaper
 *   equal_later_keeps_first two later ones, equally cheap: the earlier
 *   kvm_guest_4k            the paced 4 KiB nested-KVM guest's numbers
 *                           (Documentation/benchmarks.md): kmod 544 ms,
 *                           soft-dirty 73 ms stopping QEMU, scan 1124 ms:
 *                           soft-dirty
 *   kvm_guest_quiet         kmod 55 ms, soft-dirty 51 ms, scan 1819 ms
 *                           (the same guest, another run): kmod
 *   small_keeps_order       a 1 MiB object: uffd 4 ms, scan 0.3 ms: uffd
 *   huge_keeps_kmod         the flat-out guest in THP (its calibration:
 *                           kmod 607 ms, soft-dirty 102 ms stopping QEMU,
 *                           scan 4477 ms): soft-dirty in 4 KiB pages, kmod
 *                           in huge folios, where soft-dirty slowed it most
 *   huge_others_still_pick  in huge folios a cheaper tracker that does not
 *                           stop the writer is still picked, and soft-dirty
 *                           stays picked where it comes first
 */
#include "kselftest_harness.h"

#include "live/track_pick.h"

#define MS(x)	((x) / 1000.0)

TEST(none)
{
	enum track_pick_why why = TRACK_PICK_ONLY;

	EXPECT_EQ(-1, track_pick(NULL, 0, false, &why));
	EXPECT_EQ(TRACK_PICK_NONE, why);
}

TEST(only)
{
	struct track_cost c[] = { { 0 } };
	enum track_pick_why why;

	EXPECT_EQ(0, track_pick(c, 1, false, &why));
	EXPECT_EQ(TRACK_PICK_ONLY, why);
	EXPECT_EQ(0, track_pick(c, 1, false, NULL));
}

TEST(cost_doubles_stopped)
{
	struct track_cost run = { .harvest_s = MS(30), .cpu_s = MS(29) };
	struct track_cost stop = { .harvest_s = MS(30), .cpu_s = MS(5), .stops_writer = true };

	EXPECT_EQ(MS(30), track_pick_cost(&run));
	EXPECT_EQ(MS(60), track_pick_cost(&stop));
}

TEST(near_tie_keeps_order)
{
	struct track_cost c[] = { { .harvest_s = MS(100) }, { .harvest_s = MS(51) } };
	enum track_pick_why why;

	EXPECT_EQ(0, track_pick(c, 2, false, &why));
	EXPECT_EQ(TRACK_PICK_PREFERRED, why);
	/* Exactly half is not less than half. */
	c[1].harvest_s = MS(50);
	EXPECT_EQ(0, track_pick(c, 2, false, &why));
}

TEST(cheaper_by_half)
{
	struct track_cost c[] = { { .harvest_s = MS(100) }, { .harvest_s = MS(49) } };
	enum track_pick_why why;

	EXPECT_EQ(1, track_pick(c, 2, false, &why));
	EXPECT_EQ(TRACK_PICK_CHEAPER, why);
	/* The first stopping the writer: 2 x 30 ms against 29 ms. */
	c[0] = (struct track_cost){ .harvest_s = MS(30), .stops_writer = true };
	c[1].harvest_s = MS(29);
	EXPECT_EQ(1, track_pick(c, 2, false, &why));
	c[1].harvest_s = MS(30);
	EXPECT_EQ(0, track_pick(c, 2, false, &why));
}

TEST(min_saving)
{
	struct track_cost c[] = { { .harvest_s = MS(9.9) }, { .harvest_s = MS(0.1) } };
	enum track_pick_why why;

	EXPECT_EQ(0, track_pick(c, 2, false, &why));
	EXPECT_EQ(TRACK_PICK_PREFERRED, why);
	c[0].harvest_s = MS(10.2);
	EXPECT_EQ(1, track_pick(c, 2, false, &why));
	EXPECT_EQ(TRACK_PICK_CHEAPER, why);
	/* Stopping the writer counts in the saving: 2 x 5.1 ms against 0.1 ms. */
	c[0] = (struct track_cost){ .harvest_s = MS(5.1), .stops_writer = true };
	EXPECT_EQ(1, track_pick(c, 2, false, &why));
}

TEST(cheapest_of_several)
{
	struct track_cost c[] = { { .harvest_s = MS(100) }, { .harvest_s = MS(40) },
				  { .harvest_s = MS(10) }, { .harvest_s = MS(60) } };
	enum track_pick_why why;

	EXPECT_EQ(2, track_pick(c, 4, false, &why));
	EXPECT_EQ(TRACK_PICK_CHEAPER, why);
}

TEST(equal_later_keeps_first)
{
	struct track_cost c[] = { { .harvest_s = MS(100) }, { .harvest_s = MS(10) },
				  { .harvest_s = MS(10) } };

	EXPECT_EQ(1, track_pick(c, 3, false, NULL));
}

/* kmod, soft-dirty, scan (uffd cannot watch QEMU: no userfaultfd of its own). */
TEST(kvm_guest_4k)
{
	struct track_cost c[] = { { .harvest_s = MS(544.34), .cpu_s = MS(520.47) },
				  { .harvest_s = MS(72.73), .cpu_s = MS(68.18), .stops_writer = true },
				  { .harvest_s = MS(1123.9), .cpu_s = MS(1117.49) } };
	enum track_pick_why why;

	EXPECT_EQ(1, track_pick(c, 3, false, &why));
	EXPECT_EQ(TRACK_PICK_CHEAPER, why);
}

TEST(kvm_guest_quiet)
{
	struct track_cost c[] = { { .harvest_s = MS(55.19) },
				  { .harvest_s = MS(51.16), .stops_writer = true },
				  { .harvest_s = MS(1818.86) } };
	enum track_pick_why why;

	EXPECT_EQ(0, track_pick(c, 3, false, &why));
	EXPECT_EQ(TRACK_PICK_PREFERRED, why);
}

TEST(small_keeps_order)
{
	struct track_cost c[] = { { .harvest_s = MS(4) }, { .harvest_s = MS(0.3) } };
	enum track_pick_why why;

	EXPECT_EQ(0, track_pick(c, 2, false, &why));
	EXPECT_EQ(TRACK_PICK_PREFERRED, why);
}

TEST(huge_keeps_kmod)
{
	struct track_cost c[] = { { .harvest_s = MS(607.4) },
				  { .harvest_s = MS(102.0), .stops_writer = true },
				  { .harvest_s = MS(4477.0) } };
	enum track_pick_why why;

	EXPECT_EQ(1, track_pick(c, 3, false, &why));
	EXPECT_EQ(TRACK_PICK_CHEAPER, why);
	EXPECT_EQ(0, track_pick(c, 3, true, &why));
	EXPECT_EQ(TRACK_PICK_PREFERRED, why);
}

TEST(huge_others_still_pick)
{
	struct track_cost c[] = { { .harvest_s = MS(600) },
				  { .harvest_s = MS(10), .stops_writer = true },
				  { .harvest_s = MS(100) } };
	struct track_cost sd_first[] = { { .harvest_s = MS(30), .stops_writer = true },
					 { .harvest_s = MS(40) } };
	enum track_pick_why why;

	EXPECT_EQ(1, track_pick(c, 3, false, &why));
	EXPECT_EQ(2, track_pick(c, 3, true, &why));
	EXPECT_EQ(TRACK_PICK_CHEAPER, why);
	EXPECT_EQ(0, track_pick(sd_first, 2, true, &why));
	EXPECT_EQ(TRACK_PICK_PREFERRED, why);
	EXPECT_EQ(0, track_pick(sd_first, 1, true, &why));
	EXPECT_EQ(TRACK_PICK_ONLY, why);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/chan/policy.c, the --compress auto decision, fed windows
 * of a transfer with chosen rates so that each case is exact and
 * repeatable: what the engine tells the policy (bytes taken in and put on
 * the wire, time blocked on the network, time waiting for input, samples
 * of lz4) and the clock it ticks with.
 *
 *   link_bound_turns_lz4_on     a 1 Gbit/s link that keeps the sender
 *                               waiting: lz4 on within a few windows
 *   header_window_no_delay      the same after a first window that carried
 *                               only a few hundred bytes in 3.5 ms of CPU
 *                               (QEMU's header through the proxy): lz4 as
 *                               soon as without it (the policy that took
 *                               every window's CPU cost waited 13 here)
 *   cpu_bound_stays_raw         loopback at 2 GB/s with lz4 at 400 MB/s:
 *                               lz4 never pays, never chosen
 *   fixed_modes                 none and lz4 are never changed
 *
 * And the step below lz4 (zstd), each as the exact sequence of encodings
 * window by window (n none, l lz4, z zstd):
 *
 *   slow_link_steps_to_zstd     250 Mbit/s: lz4 at accel 1 still waits on
 *                               the link, zstd moves more and stays
 *   zstd_cpu_bound_steps_back   1 Gbit/s with a zstd slower than the link:
 *                               zstd tried once, lz4 again two windows
 *                               later, and not tried again
 *   zstd_not_offered            a receiver without the cap: never zstd, in
 *                               auto or with --compress zstd
 *   zero_run_keeps_zstd         a run of windows 99 % zero pages on that
 *                               link: CPU-bound with either codec, zstd
 *                               kept; the data after it still zstd
 *   zstd_fixed_mode             --compress zstd: zstd from the first page;
 *                               --compress lz4 never steps down
 *
 * And of user/live/mapwatch_policy.c, the mapping watch's verdicts, on chosen
 * counter samples:
 *
 *   mapwatch_first_primes       the sample taken at start says clean
 *   mapwatch_each_counter       a call started or ended, process_madvise:
 *                               one rescan each, clean again after
 *   mapwatch_fork_sticks        a fork makes every later harvest rescan
 *   mapwatch_moved_in_flight    a call started and not ended counts as a
 *                               move even with the counters unchanged
 *   mapwatch_shared_needs_it    required for a shared object only
 */
#include "kselftest_harness.h"

#include "live/mapwatch.h"
#include "chan/policy.h"

#define WIN	0.05		/* a window a little over the policy's */

struct link {
	double rate;		/* bytes/s the network drains (wire bytes) */
	double lz4_rate;	/* bytes/s lz4 compresses */
	double ratio;		/* lz4 output / input */
	double cpu_rate;	/* bytes/s the sender handles without lz4 */
	double zstd_rate;	/* bytes/s zstd compresses */
	double zstd_ratio;	/* zstd output / input */
};

/*
 * One window of a sender that is never short of input: it is limited by
 * the network or by its CPU, whichever is slower in its current mode, and
 * spends the rest of the window blocked on the network.  While lz4 is
 * off, it samples 1 page in 16 as the engine does.
 */
static void window_fz(struct cpolicy *p, const struct link *l, double fz, double *t)
{
	bool z = p->lz4 && cpolicy_enc(p) == CENC_ZSTD;
	double ratio = z ? l->zstd_ratio : l->ratio, comp_rate = z ? l->zstd_rate : l->lz4_rate;
	double wire_per_byte = fz * (p->lz4 ? ratio : 1);
	double cpu_per_byte = 1 / l->cpu_rate + (p->lz4 ? fz / comp_rate : 0);
	double by_net = l->rate / wire_per_byte, by_cpu = 1 / cpu_per_byte;
	double rate = by_net < by_cpu ? by_net : by_cpu;
	uint64_t img = (uint64_t)(rate * WIN), nonzero = (uint64_t)(img * fz);
	uint64_t comp_in = p->lz4 ? nonzero : nonzero / 16;

	cpolicy_frame(p, img, nonzero, (uint64_t)(img * wire_per_byte));
	cpolicy_sampled(p, comp_in, (unsigned int)(comp_in * ratio), comp_in / comp_rate);
	cpolicy_waited(p, WIN - img * cpu_per_byte);
	*t += WIN + 1e-6;
	cpolicy_tick(p, *t);
}

/* ... every byte of it data (a fraction fz of non-zero bytes above). */
static void window(struct cpolicy *p, const struct link *l, double *t)
{
	window_fz(p, l, 1, t);
}

/* Windows until lz4 is on, or -1 if it is not within @max. */
static int windows_to_lz4(struct cpolicy *p, const struct link *l, double *t, int max)
{
	for (int i = 1; i <= max; i++) {
		window(p, l, t);
		if (p->lz4)
			return i;
	}
	return -1;
}

static const struct link gbit = {
	.rate = 118e6, .lz4_rate = 400e6, .ratio = 0.55, .cpu_rate = 3e9,
};

static void start(struct cpolicy *p, enum compress_mode m, double *t)
{
	cpolicy_init(p, m);
	*t = 1000;
	p->win_start = *t;
}

TEST(link_bound_turns_lz4_on)
{
	struct cpolicy p;
	double t;
	int n;

	start(&p, COMPRESS_AUTO, &t);
	n = windows_to_lz4(&p, &gbit, &t, 40);
	TH_LOG("lz4 on after %d windows", n);
	ASSERT_GT(n, 0);
	EXPECT_LE(n, 4);
	/* And it stays on while the link is the limit. */
	for (int i = 0; i < 40; i++)
		window(&p, &gbit, &t);
	EXPECT_TRUE(p.lz4);
	EXPECT_EQ(1, p.switches);
}

TEST(header_window_no_delay)
{
	struct cpolicy p;
	double t;
	int n;

	start(&p, COMPRESS_AUTO, &t);
	/* 300 bytes of header in a window the sender spent 3.5 ms on. */
	cpolicy_frame(&p, 300, 300, 300);
	cpolicy_idle(&p, WIN - 0.0035);
	t += WIN + 1e-6;
	cpolicy_tick(&p, t);
	n = windows_to_lz4(&p, &gbit, &t, 40);
	TH_LOG("lz4 on after %d windows", n);
	ASSERT_GT(n, 0);
	EXPECT_LE(n, 4);
}

TEST(cpu_bound_stays_raw)
{
	const struct link lo = {
		.rate = 2e9, .lz4_rate = 400e6, .ratio = 0.55, .cpu_rate = 3e9,
	};
	struct cpolicy p;
	double t;

	start(&p, COMPRESS_AUTO, &t);
	EXPECT_EQ(-1, windows_to_lz4(&p, &lo, &t, 100));
	EXPECT_EQ(0, p.switches);
}

TEST(fixed_modes)
{
	struct cpolicy p;
	double t;

	start(&p, COMPRESS_NONE, &t);
	EXPECT_EQ(-1, windows_to_lz4(&p, &gbit, &t, 40));
	start(&p, COMPRESS_LZ4, &t);
	EXPECT_TRUE(p.lz4);
	for (int i = 0; i < 40; i++)
		window(&p, &gbit, &t);
	EXPECT_TRUE(p.lz4);
	EXPECT_EQ(0, p.switches);
}

/* ---- zstd, the step below lz4 ------------------------------------------ */

/* lz4 and zstd -1 on guest pages: 2.5 times the CPU for 16 % fewer bytes. */
#define ZSTD_LINK(r) { .rate = (r), .lz4_rate = 400e6, .ratio = 0.57, .cpu_rate = 3e9, \
		       .zstd_rate = 180e6, .zstd_ratio = 0.48 }

/* The encoding after each of n windows: n none, l lz4, z zstd. */
static void encodings(struct cpolicy *p, const struct link *l, double *t, int n, char *out)
{
	for (int i = 0; i < n; i++) {
		window(p, l, t);
		out[i] = !p->lz4 ? 'n' : cpolicy_enc(p) == CENC_ZSTD ? 'z' : 'l';
	}
	out[n] = 0;
}

TEST(slow_link_steps_to_zstd)
{
	const struct link slow = ZSTD_LINK(31e6);
	struct cpolicy p;
	char seq[41];
	double t;

	start(&p, COMPRESS_AUTO, &t);
	cpolicy_allow_zstd(&p);
	encodings(&p, &slow, &t, 40, seq);
	TH_LOG("%s", seq);
	/* lz4 from the second window, zstd from the fourth, and there it stays. */
	EXPECT_STREQ("nllzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", seq);
	EXPECT_EQ(1, p.switches);
	EXPECT_EQ(1, p.zstd_switches);
	EXPECT_EQ(1, p.accel_max);
}

TEST(zstd_cpu_bound_steps_back)
{
	const struct link gbit_z = ZSTD_LINK(118e6);
	struct cpolicy p;
	char seq[41];
	double t;

	start(&p, COMPRESS_AUTO, &t);
	cpolicy_allow_zstd(&p);
	encodings(&p, &gbit_z, &t, 40, seq);
	TH_LOG("%s", seq);
	/*
	 * zstd moves 170 MB/s of image here, lz4 the link's 207: zstd is tried
	 * (nothing is known of it yet), left when the link idles, and the
	 * prediction from what it measured keeps it off after.
	 */
	EXPECT_STREQ("nllzzlllllllllllllllllllllllllllllllllll", seq);
	EXPECT_EQ(2, p.zstd_switches);
	EXPECT_TRUE(p.have_Pz);
}

TEST(zero_run_keeps_zstd)
{
	const struct link slow = ZSTD_LINK(31e6);
	struct cpolicy p;
	char seq[41];
	double t;

	start(&p, COMPRESS_AUTO, &t);
	cpolicy_allow_zstd(&p);
	encodings(&p, &slow, &t, 10, seq);
	ASSERT_EQ('z', seq[9]);
	for (int i = 0; i < 20; i++) {
		window_fz(&p, &slow, 0.01, &t);
		seq[i] = !p.lz4 ? 'n' : cpolicy_enc(&p) == CENC_ZSTD ? 'z' : 'l';
	}
	seq[20] = 0;
	EXPECT_STREQ("zzzzzzzzzzzzzzzzzzzz", seq);
	encodings(&p, &slow, &t, 10, seq);
	EXPECT_STREQ("zzzzzzzzzz", seq);
	EXPECT_EQ(1, p.zstd_switches);
}

TEST(zstd_not_offered)
{
	const struct link slow = ZSTD_LINK(31e6);
	struct cpolicy p;
	char seq[41];
	double t;

	start(&p, COMPRESS_AUTO, &t);
	encodings(&p, &slow, &t, 40, seq);
	EXPECT_STREQ("nlllllllllllllllllllllllllllllllllllllll", seq);
	EXPECT_EQ(0, p.zstd_switches);
	/* --compress zstd to such a receiver: lz4. */
	start(&p, COMPRESS_ZSTD, &t);
	encodings(&p, &slow, &t, 10, seq);
	EXPECT_STREQ("llllllllll", seq);
}

TEST(zstd_fixed_mode)
{
	const struct link fast = ZSTD_LINK(2e9), slow = ZSTD_LINK(31e6);
	struct cpolicy p;
	char seq[11];
	double t;

	/* zstd even where it is the bottleneck: the mode was asked for. */
	start(&p, COMPRESS_ZSTD, &t);
	cpolicy_allow_zstd(&p);
	encodings(&p, &fast, &t, 10, seq);
	EXPECT_STREQ("zzzzzzzzzz", seq);
	EXPECT_EQ(0, p.zstd_switches);
	start(&p, COMPRESS_LZ4, &t);
	cpolicy_allow_zstd(&p);
	encodings(&p, &slow, &t, 10, seq);
	EXPECT_STREQ("llllllllll", seq);
}

static enum mapwatch_verdict mw(struct mapwatch_state *st, uint64_t enters, uint64_t exits,
				 uint64_t forks, uint64_t foreign, const char **why)
{
	struct mapwatch_sample s = { enters, exits, forks, foreign };

	return mapwatch_policy(st, &s, why);
}

TEST(mapwatch_first_primes)
{
	struct mapwatch_state st = { 0 };
	const char *why = "x";

	/* Whatever the counters hold at start (other calls of the writer before). */
	EXPECT_EQ(MAPWATCH_CLEAN, mw(&st, 40, 39, 2, 7, &why));
	EXPECT_EQ(NULL, why);
	EXPECT_TRUE(st.primed);
	EXPECT_FALSE(st.forked);
	EXPECT_EQ(MAPWATCH_CLEAN, mw(&st, 40, 39, 2, 7, &why));
}

TEST(mapwatch_each_counter)
{
	struct mapwatch_state st = { 0 };
	const char *why;

	mw(&st, 0, 0, 0, 0, NULL);
	EXPECT_EQ(MAPWATCH_RESCAN, mw(&st, 1, 0, 0, 0, &why));
	EXPECT_NE(NULL, strstr(why, "mapping"));
	EXPECT_EQ(MAPWATCH_RESCAN, mw(&st, 1, 1, 0, 0, &why));
	EXPECT_EQ(MAPWATCH_CLEAN, mw(&st, 1, 1, 0, 0, &why));
	EXPECT_EQ(NULL, why);
	EXPECT_EQ(MAPWATCH_RESCAN, mw(&st, 1, 1, 0, 2, &why));
	EXPECT_NE(NULL, strstr(why, "process_madvise"));
	EXPECT_EQ(MAPWATCH_CLEAN, mw(&st, 1, 1, 0, 2, &why));
	/* Both ends between two harvests: one rescan. */
	EXPECT_EQ(MAPWATCH_RESCAN, mw(&st, 2, 2, 0, 2, &why));
	EXPECT_EQ(MAPWATCH_CLEAN, mw(&st, 2, 2, 0, 2, &why));
}

TEST(mapwatch_fork_sticks)
{
	struct mapwatch_state st = { 0 };
	const char *why;

	mw(&st, 5, 5, 0, 0, NULL);
	EXPECT_EQ(MAPWATCH_RESCAN, mw(&st, 5, 5, 1, 0, &why));
	EXPECT_NE(NULL, strstr(why, "forked"));
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(MAPWATCH_RESCAN, mw(&st, 5, 5, 1, 0, &why));
		EXPECT_NE(NULL, strstr(why, "forked"));
	}
	EXPECT_TRUE(st.forked);
}

TEST(mapwatch_moved_in_flight)
{
	struct mapwatch_state st = { 0 };
	struct mapwatch_sample s = { 3, 2, 0, 0 }, done = { 3, 3, 0, 0 };

	EXPECT_TRUE(mapwatch_moved(&st, &done));	/* not primed */
	mapwatch_policy(&st, &s, NULL);
	EXPECT_TRUE(mapwatch_moved(&st, &s));		/* started, not ended */
	mapwatch_policy(&st, &done, NULL);
	EXPECT_FALSE(mapwatch_moved(&st, &done));
	s = done;
	s.foreign++;
	EXPECT_TRUE(mapwatch_moved(&st, &s));
	s = done;
	s.forks++;
	EXPECT_TRUE(mapwatch_moved(&st, &s));
}

TEST(mapwatch_shared_needs_it)
{
	const char *why = NULL;

	EXPECT_FALSE(mapwatch_optional(true, &why));
	EXPECT_NE(NULL, why);
	EXPECT_TRUE(mapwatch_optional(false, &why));
	EXPECT_EQ(NULL, why);
}

TEST_HARNESS_MAIN

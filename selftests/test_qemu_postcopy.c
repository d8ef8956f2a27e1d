// SPDX-License-Identifier: GPL-2.0-only
/*
 * QEMU's return path through lmig proxy: a real QEMU 7.2 (TCG) guest
 * migrated with `return-path`, `postcopy-ram` and `postcopy-preempt`,
 * natively and through lmig proxy side by side in the same run.
 *
 * qemu/postcopy.py boots the guest of qemu/guest.c once (512 MiB, 128 MiB
 * of it written, 8 MB/s rewritten, a tick on its console every 100 ms)
 * and migrates it along a chain, each hop's destination the next hop's
 * source:
 *
 *   rp-proxy          precopy with return-path, lmig proxy (unix: both ends)
 *   rp-multifd-proxy  the same with multifd, 2 channels: three connections
 *   postcopy-tcp      postcopy-ram, native tcp
 *   postcopy-proxy    postcopy-ram through lmig proxy
 *   preempt-tcp       postcopy-ram + postcopy-preempt, native tcp
 *   preempt-proxy     the same through lmig proxy: the preempt channel is
 *                     a second stream
 *   preempt-proxy-tcp the same with tcp: at both QEMUs
 *   rp-pipe           return-path through lmig pipe (exec:), which carries
 *                     one way: `pipe recv` sees the destination QEMU write
 *                     to its stdin and fails the migration at once; the
 *                     destination must not run the guest, the source must
 *                     run it on
 *
 * A postcopy hop switches to postcopy in its first pass (postcopy.py
 * says why).  Every hop must complete with the destination running and
 * its guest counting on from the source's count; a postcopy hop must
 * have gone through postcopy-active; a proxy hop must have been carried
 * both ways, both lmig processes exiting 0 and agreeing on the bytes
 * the destination QEMU wrote back; the postcopy hops through lmig must
 * have carried page requests (the source's postcopy-requests).  Native
 * and lmig hops are logged side by side, never compared with a
 * threshold.  SKIP when QEMU, the kernel or a static libc is missing.
 * About 50-70 s on 2 CPUs, half of it the boot.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define CASE_TIMEOUT	240
#define RUN_TIMEOUT	220
#define LINE_MAX_	2048

static const char *const hops[] = {
	"rp-proxy", "rp-multifd-proxy", "postcopy-tcp", "postcopy-proxy", "preempt-tcp",
	"preempt-proxy", "preempt-proxy-tcp", "rp-pipe",
};
/* The last hop, through lmig pipe, must fail: the others complete. */
#define NDONE	(NHOPS - 1)
#define NHOPS	(sizeof(hops) / sizeof(hops[0]))

FIXTURE(postcopy) {
	char dir[PATH_MAX];
	struct proc p;
	char line[NHOPS][LINE_MAX_];
};

FIXTURE_SETUP(postcopy)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	memset(&self->p, 0, sizeof(self->p));
}

FIXTURE_TEARDOWN(postcopy)
{
	proc_kill(&self->p);
	scratch_remove(self->dir);
}

static bool is_proxy(const char *name)
{
	return strstr(name, "-proxy") != NULL;
}

TEST_F_TIMEOUT(postcopy, chain, CASE_TIMEOUT)
{
	char drv[PATH_MAX], buf[256];
	const char *argv[] = {
		python3_path(), drv, "--work", self->dir, "--lmig", lmig_path(), NULL,
	};

	ASSERT_NE(NULL, qemu_driver("postcopy.py", drv, sizeof(drv)));
	ASSERT_EQ(0, proc_spawn(&self->p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&self->p, RUN_TIMEOUT)) {
		proc_kill(&self->p);
		TH_LOG("postcopy.py still running");
	}
	if (proc_exit_code(&self->p) == 4)
		SKIP(return, "cannot boot a QEMU guest here: %.900s", self->p.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->p)) TH_LOG("postcopy.py: %s %s", self->p.out,
						     self->p.err_log);
	ASSERT_EQ(NULL, strstr(self->p.out, "\"harness_error\":"))
		TH_LOG("harness error: %s", self->p.out);

	for (size_t h = 0; h < NDONE; h++) {
		const char *r = json_line_of(self->p.out, "hop", hops[h], self->line[h], LINE_MAX_);

		ASSERT_NE(NULL, r) TH_LOG("no hop %s: %s %s", hops[h], self->p.out, self->p.err_log);
		TH_LOG("%s", r);
		ASSERT_STREQ("completed", json_str_or(r, "status", buf, sizeof(buf)))
			TH_LOG("hop %s", hops[h]);
		ASSERT_STREQ("running", json_str_or(r, "dst_status", buf, sizeof(buf)))
			TH_LOG("hop %s", hops[h]);
		EXPECT_STREQ("postmigrate", json_str_or(r, "src_status", buf, sizeof(buf)));
		/* The same guest counting on there, not a fresh boot, and going on. */
		ASSERT_LT(0, json_num(r, "src_tick_at_migrate"));
		ASSERT_LT(json_num(r, "src_tick_at_migrate"), json_num(r, "dst_first_tick"));
		ASSERT_LE(json_num(r, "src_last_tick"), json_num(r, "dst_first_tick"));
		ASSERT_LE(json_num(r, "dst_first_tick") + 4, json_num(r, "dst_last_tick"))
			TH_LOG("hop %s: the destination's guest does not count on", hops[h]);
		if (strstr(hops[h], "postcopy") || strstr(hops[h], "preempt"))
			ASSERT_NE(NULL, strstr(r, "\"postcopy-active\""))
				TH_LOG("hop %s never went to postcopy", hops[h]);
		if (!is_proxy(hops[h]))
			continue;
		EXPECT_EQ(0, json_num(r, "proxy_send_exit"));
		EXPECT_EQ(0, json_num(r, "proxy_recv_exit"));
		EXPECT_EQ(1, json_bool(r, "proxy_send_both_ways"));
		EXPECT_EQ(1, json_bool(r, "proxy_recv_both_ways"));
		/* QEMU's destination wrote back (a PONG, SHUT at least): all of it arrived. */
		EXPECT_LT(0, json_num(r, "proxy_recv_bytes_returned"));
		EXPECT_EQ(json_num(r, "proxy_recv_bytes_returned"),
			  json_num(r, "proxy_send_bytes_returned"));
		if (strstr(hops[h], "postcopy") || strstr(hops[h], "preempt"))
			EXPECT_LT(0, json_num(r, "postcopy_requests"))
				TH_LOG("hop %s: no page request came back", hops[h]);
	}
	{
		const char *r = json_line_of(self->p.out, "hop", "rp-pipe", self->line[NDONE], LINE_MAX_);

		ASSERT_NE(NULL, r) TH_LOG("no hop rp-pipe: %s", self->p.out);
		TH_LOG("%s", r);
		ASSERT_STREQ("failed", json_str_or(r, "status", buf, sizeof(buf)));
		ASSERT_STRNE("running", json_str_or(r, "dst_status", buf, sizeof(buf)));
		ASSERT_STREQ("running", json_str_or(r, "src_status", buf, sizeof(buf)));
		ASSERT_LE(json_num(r, "src_tick_after_failure") + 4, json_num(r, "src_tick_later"));
		EXPECT_EQ(1, json_num(r, "pipe_recv_exit"));
		EXPECT_EQ(1, json_num(r, "pipe_send_exit"));
		EXPECT_NE(NULL, strstr(json_str_or(r, "pipe_recv_error", buf, sizeof(buf)),
				       "return path"));
	}
	EXPECT_EQ(3, json_num(self->line[1], "proxy_send_streams"));
	EXPECT_EQ(2, json_num(self->line[5], "proxy_send_streams"));
	EXPECT_EQ(2, json_num(self->line[6], "proxy_send_streams"));
	for (size_t h = 2; h + 1 < NDONE - 1; h += 2)
		TH_LOG("%s / %s: total %lld / %lld ms, downtime %lld / %lld ms, page requests %lld / %lld, back %lld bytes through lmig",
		       hops[h], hops[h + 1], (long long)json_num(self->line[h], "total_time_ms"),
		       (long long)json_num(self->line[h + 1], "total_time_ms"),
		       (long long)json_num(self->line[h], "downtime_ms"),
		       (long long)json_num(self->line[h + 1], "downtime_ms"),
		       (long long)json_num(self->line[h], "postcopy_requests"),
		       (long long)json_num(self->line[h + 1], "postcopy_requests"),
		       (long long)json_num(self->line[h + 1], "proxy_send_bytes_returned"));
}

TEST_HARNESS_MAIN

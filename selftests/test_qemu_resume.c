// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig proxy's channels surviving resets under a real QEMU 7.2 (TCG)
 * migration: qemu/resume.py boots the guest of qemu/guest.c once and
 * migrates it along a chain through `lmig proxy send/recv` (2 channels on
 * loopback, QEMU's ends unix sockets) while the connections between the
 * proxies are destroyed with `ss -K` (root):
 *
 *   precopy-reset     return-path on, every channel reset once
 *   precopy-resets    the same, a reset every 0.5 s (4 at most), and a
 *                     fresh `lmig proxy send` at the same receiver meanwhile
 *   postcopy-reset    postcopy-ram, every channel reset once in postcopy
 *   postcopy-resets   the same, a reset every 0.5 s in postcopy
 *   postcopy-recover  --resume-timeout 3, the receiver killed in postcopy:
 *                     both QEMUs pause (postcopy-paused), then recover
 *                     through a new pair of proxies (migrate-recover out
 *                     of band, migrate with resume)
 *   precopy-budget    --resume-timeout 3, the receiver killed mid-precopy
 *
 * The resetting hops must complete with no error from QEMU, the
 * destination running and its guest counting on from the source's
 * count, both proxies exiting 0 and counting the same reconnects (at
 * least one a reset), both directions whole (the bytes the destination
 * QEMU wrote back equal on both sides), the postcopy hops through
 * postcopy-active with page requests carried; the fresh peer is refused
 * (it exits 1, the receiver counts it) without touching the session.
 * The recovered hop must go postcopy-active, postcopy-paused, (maybe
 * postcopy-recover,) postcopy-active, completed, its first `proxy send` exiting 1 past the
 * budget and the second pair 0, the guest counting on at the
 * destination.  The budget hop must fail no sooner than the budget, the source's
 * guest running on, `proxy send` exiting 1 with the one line naming
 * --resume-timeout.  SKIP without root, QEMU, the kernel or a static
 * libc.  About 60-70 s on 2 CPUs, half of it the boot.
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
#define LINE_MAX_	4096
#define BUDGET_S	3

static const char *const hops[] = {
	"precopy-reset", "precopy-resets", "postcopy-reset", "postcopy-resets", "postcopy-recover",
	"precopy-budget",
};
/* The recovered hop: its own checks. */
#define RECOVER	4
#define NHOPS	(sizeof(hops) / sizeof(hops[0]))
/* The last hop must fail: the others complete. */
#define NDONE	(NHOPS - 1)

FIXTURE(resume) {
	char dir[PATH_MAX];
	struct proc p;
	char line[NHOPS][LINE_MAX_];
};

FIXTURE_SETUP(resume)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	memset(&self->p, 0, sizeof(self->p));
}

FIXTURE_TEARDOWN(resume)
{
	proc_kill(&self->p);
	scratch_remove(self->dir);
}

TEST_F_TIMEOUT(resume, chain, CASE_TIMEOUT)
{
	char drv[PATH_MAX], buf[512];
	const char *rb;
	const char *argv[] = {
		python3_path(), drv, "--work", self->dir, "--lmig", lmig_path(), NULL,
	};

	ASSERT_NE(NULL, qemu_driver("resume.py", drv, sizeof(drv)));
	ASSERT_EQ(0, proc_spawn(&self->p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&self->p, RUN_TIMEOUT)) {
		proc_kill(&self->p);
		TH_LOG("resume.py still running");
	}
	if (proc_exit_code(&self->p) == 4)
		SKIP(return, "cannot run here: %.900s", self->p.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->p)) TH_LOG("resume.py: %s %s", self->p.out,
						     self->p.err_log);
	ASSERT_EQ(NULL, strstr(self->p.out, "\"harness_error\":"))
		TH_LOG("harness error: %s", self->p.out);

	for (size_t h = 0; h < NDONE; h++) {
		const char *r = json_line_of(self->p.out, "hop", hops[h], self->line[h], LINE_MAX_);
		bool postcopy = !strncmp(hops[h], "postcopy", 8);

		ASSERT_NE(NULL, r) TH_LOG("no hop %s: %s %s", hops[h], self->p.out, self->p.err_log);
		TH_LOG("%s", r);
		ASSERT_STREQ("completed", json_str_or(r, "status", buf, sizeof(buf)))
			TH_LOG("hop %s", hops[h]);
		ASSERT_EQ(NULL, strstr(r, "\"qemu_error\"")) TH_LOG("hop %s", hops[h]);
		ASSERT_STREQ("running", json_str_or(r, "dst_status", buf, sizeof(buf)))
			TH_LOG("hop %s", hops[h]);
		EXPECT_STREQ("postmigrate", json_str_or(r, "src_status", buf, sizeof(buf)));
		/* The same guest counting on there, not a fresh boot, and going on. */
		ASSERT_LT(0, json_num(r, "src_tick_at_migrate"));
		ASSERT_LT(json_num(r, "src_tick_at_migrate"), json_num(r, "dst_first_tick"));
		ASSERT_LE(json_num(r, "src_last_tick"), json_num(r, "dst_first_tick"));
		ASSERT_LE(json_num(r, "dst_first_tick") + 4, json_num(r, "dst_last_tick"))
			TH_LOG("hop %s: the destination's guest does not count on", hops[h]);
		if (h == RECOVER) {
			/* postcopy-recover lasts milliseconds: the polling may see it or not. */
			ASSERT_TRUE(strstr(r, "\"postcopy-active\",\"postcopy-paused\",\"postcopy-active\",\"completed\"") ||
				    strstr(r, "\"postcopy-active\",\"postcopy-paused\",\"postcopy-recover\",\"postcopy-active\",\"completed\""))
				TH_LOG("hop %s did not pause and recover", hops[h]);
			EXPECT_EQ(1, json_num(r, "proxy_send_exit"));
			EXPECT_NE(NULL, strstr(json_str_or(r, "proxy_send_error", buf, sizeof(buf)),
					       "(--resume-timeout)"));
			EXPECT_EQ(0, json_num(r, "proxy_send2_exit"));
			EXPECT_EQ(0, json_num(r, "proxy_recv2_exit"));
			EXPECT_LT(0, json_num(r, "proxy_recv2_bytes_returned"));
			EXPECT_EQ(json_num(r, "proxy_recv2_bytes_returned"),
				  json_num(r, "proxy_send2_bytes_returned"));
			continue;
		}
		/* The resets happened, and each one was survived. */
		ASSERT_LE(strstr(hops[h], "resets") ? 2 : 1, json_num(r, "resets"))
			TH_LOG("hop %s: the migration ended before its resets", hops[h]);
		EXPECT_EQ(0, json_num(r, "proxy_send_exit"));
		EXPECT_EQ(0, json_num(r, "proxy_recv_exit"));
		EXPECT_EQ(1, json_bool(r, "proxy_send_resume"));
		EXPECT_LE(json_num(r, "resets"), json_num(r, "proxy_send_reconnects"));
		EXPECT_EQ(json_num(r, "proxy_send_reconnects"), json_num(r, "proxy_recv_reconnects"));
		EXPECT_LT(0, json_num(r, "proxy_recv_bytes_returned"));
		EXPECT_EQ(json_num(r, "proxy_recv_bytes_returned"),
			  json_num(r, "proxy_send_bytes_returned"));
		if (postcopy) {
			ASSERT_NE(NULL, strstr(r, "\"postcopy-active\""))
				TH_LOG("hop %s never went to postcopy", hops[h]);
			EXPECT_LT(0, json_num(r, "postcopy_requests"));
		}
	}
	/* A new session's peer at the receiver mid-session: refused, nothing else. */
	EXPECT_EQ(1, json_num(self->line[1], "proxy_intruder_exit"));
	EXPECT_LE(1, json_num(self->line[1], "proxy_recv_resume_refused"));
	EXPECT_EQ(0, json_num(self->line[0], "proxy_recv_resume_refused"));
	rb = json_line_of(self->p.out, "hop", "precopy-budget", self->line[NDONE], LINE_MAX_);
	ASSERT_NE(NULL, rb) TH_LOG("no hop precopy-budget: %s", self->p.out);
	TH_LOG("%s", rb);
	ASSERT_STREQ("failed", json_str_or(rb, "status", buf, sizeof(buf)));
	ASSERT_STREQ("running", json_str_or(rb, "src_status", buf, sizeof(buf)));
	ASSERT_LE(json_num(rb, "src_tick_after_failure") + 4, json_num(rb, "src_tick_later"));
	EXPECT_EQ(1, json_num(rb, "proxy_send_exit"));
	EXPECT_NE(NULL, strstr(json_str_or(rb, "proxy_send_error", buf, sizeof(buf)),
			       "did not come back within 3 s (--resume-timeout)"));
	/* It waited for the budget (the kill is seen within a poll of 20 ms). */
	EXPECT_LE(BUDGET_S * 1000 - 100, (long long)(json_dbl(rb, "fail_after_kill_s") * 1000));
	for (size_t h = 0; h < RECOVER; h++)
		TH_LOG("%s: total %lld ms, downtime %lld ms, %lld resets, %lld reconnects, %lld ms reconnecting (source)",
		       hops[h], (long long)json_num(self->line[h], "total_time_ms"),
		       (long long)json_num(self->line[h], "downtime_ms"),
		       (long long)json_num(self->line[h], "resets"),
		       (long long)json_num(self->line[h], "proxy_send_reconnects"),
		       (long long)json_num(self->line[h], "proxy_send_reconnect_ms"));
}

TEST_HARNESS_MAIN

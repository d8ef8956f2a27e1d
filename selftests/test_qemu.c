// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig as the migration transport of a real, unmodified QEMU.
 *
 * Each case boots a small guest under QEMU (TCG): Debian's kernel and an
 * initramfs whose /init (qemu/guest.c) fills 256 MiB of its 512 MiB with
 * text, binary and zero pages, then rewrites 4 MB/s of it and prints a
 * counter on its serial port every 100 ms.  A destination QEMU waits with
 * -incoming; qemu/qmig.py joins the two through the transport under test,
 * migrates over QMP and prints one JSON line of what happened, which the
 * case checks here:
 *
 *   tcp            native QEMU migration: validates the harness itself
 *   pipe           migrate "exec:lmig pipe send --to 127.0.0.1:PORT",
 *                  -incoming "exec:lmig pipe recv --listen 127.0.0.1:PORT"
 *   proxy          lmig proxy send/recv between unix: sockets, one channel
 *   proxy_multifd  the same with multifd (3 channels): four connections
 *   proxy_killed   lmig proxy send killed mid-migration (max-bandwidth
 *                  16 MiB/s so it lasts): the source reports failed, and
 *                  its guest goes on running there
 *
 * A completed case must have QEMU report completed, the destination reach
 * running, and the destination's counter continue from where the source's
 * was (above it: the same guest, not a fresh boot) and advance; the lmig
 * processes must exit 0.  A destination that runs but prints nothing
 * after a completed migration (QEMU under TCG does that now and then, also
 * natively) gets the case run once more; a second one fails it.  SKIP only
 * when QEMU, the kernel or a static libc is missing.  About 15-25 s a case
 * on 2 CPUs, most of it the boot.
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

/*
 * Seconds: the driver gives up on its own (boot, migration, then 15 s for
 * ticks) before an attempt's limit, and two attempts fit the harness's.
 */
#define CASE_TIMEOUT	300
#define ATTEMPT_TIMEOUT	140
#define BOOT_TIMEOUT	"60"
#define MIG_TIMEOUT	"45"


FIXTURE(qemu) {
	char dir[PATH_MAX];
	char line[PROC_OUT_MAX];
	const char *res;
	int skip;
};

FIXTURE_SETUP(qemu)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	self->res = NULL;
	self->skip = 0;
}

FIXTURE_TEARDOWN(qemu)
{
	scratch_remove(self->dir);
}

/* QEMU completed, the destination runs, and its guest printed no tick. */
static bool silent_destination(const char *res)
{
	char buf[64];

	return !strcmp(json_str_or(res, "status", buf, sizeof(buf)), "completed") &&
	       !strcmp(json_str_or(res, "dst_status", buf, sizeof(buf)), "running") &&
	       json_num(res, "dst_ticks") == 0;
}

/*
 * Run qmig.py --transport T EXTRA... (NULL-terminated) and leave its JSON
 * line in self->res; self->skip = 1 when it cannot run here.
 */
static void run_case(struct __test_metadata *_metadata, FIXTURE_DATA(qemu) *self,
		     const char *name, const char *transport, const char *const extra[])
{
	char qmig[PATH_MAX], lmig[PATH_MAX];
	const char *argv[40];
	struct proc p = { 0 };
	int n = 0;

	ASSERT_NE(NULL, qemu_driver("qmig.py", qmig, sizeof(qmig)));
	snprintf(lmig, sizeof(lmig), "%s", lmig_path());
	argv[n++] = python3_path();
	argv[n++] = qmig;
	argv[n++] = "--name";
	argv[n++] = name;
	argv[n++] = "--transport";
	argv[n++] = transport;
	argv[n++] = "--work";
	argv[n++] = self->dir;
	argv[n++] = "--lmig";
	argv[n++] = lmig;
	argv[n++] = "--boot-timeout";
	argv[n++] = BOOT_TIMEOUT;
	argv[n++] = "--timeout";
	argv[n++] = MIG_TIMEOUT;
	for (int i = 0; extra && extra[i] && n < 38; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	for (int attempt = 1;; attempt++) {
		ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
		ASSERT_EQ(0, proc_wait(&p, ATTEMPT_TIMEOUT)) {
			proc_kill(&p);
			TH_LOG("qmig.py still running");
		}
		if (proc_exit_code(&p) == 4) {
			self->skip = 1;
			SKIP(return, "cannot boot a QEMU guest here: %.900s", p.err_log);
		}
		ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("qmig.py: %s %s", p.out, p.err_log);
		self->res = json_last_line(p.out, self->line, sizeof(self->line));
		ASSERT_NE(NULL, self->res) TH_LOG("no result from qmig.py: %s %s", p.out,
						  p.err_log);
		TH_LOG("%s", self->res);
		if (attempt > 1 || !silent_destination(self->res))
			break;
		/*
		 * QEMU under TCG leaves about one destination in 60 stuck
		 * after a completed migration, native or through lmig
		 * (Documentation/qemu.md): the case runs once more, and a
		 * second silent destination fails it.
		 */
		TH_LOG("the destination guest printed nothing after a completed migration: once more");
	}
}

/* Completed, destination running, the guest's counter going on there. */
static void check_completed(struct __test_metadata *_metadata, const char *res)
{
	char buf[256];

	ASSERT_EQ(NULL, strstr(res, "\"harness_error\":")) TH_LOG("harness error: %s", res);
	ASSERT_STREQ("completed", json_str_or(res, "status", buf, sizeof(buf)));
	ASSERT_STREQ("running", json_str_or(res, "dst_status", buf, sizeof(buf)));
	EXPECT_STREQ("postmigrate", json_str_or(res, "src_status", buf, sizeof(buf)));
	/* The destination goes on from the source's count: the same guest. */
	ASSERT_LT(0, json_num(res, "src_tick_at_migrate"));
	ASSERT_LT(json_num(res, "src_tick_at_migrate"), json_num(res, "dst_first_tick"));
	ASSERT_LE(json_num(res, "src_last_tick"), json_num(res, "dst_first_tick"));
	/* ... and keeps counting. */
	ASSERT_LE(json_num(res, "dst_first_tick") + 5, json_num(res, "dst_last_tick"));
	ASSERT_LT(0, json_num(res, "total_time_ms"));
	ASSERT_LE(0, json_num(res, "downtime_ms"));
	/* 256 MiB written, about 30 % of it zero pages QEMU sends as flags. */
	ASSERT_LT(150 << 20, json_num(res, "ram_transferred"));
	TH_LOG("total %lld ms, downtime %lld ms, %lld bytes of RAM",
	       (long long)json_num(res, "total_time_ms"), (long long)json_num(res, "downtime_ms"),
	       (long long)json_num(res, "ram_transferred"));
}

TEST_F_TIMEOUT(qemu, tcp, CASE_TIMEOUT)
{
	run_case(_metadata, self, "tcp", "tcp", NULL);
	if (self->skip)
		return;
	check_completed(_metadata, self->res);
}

TEST_F_TIMEOUT(qemu, pipe, CASE_TIMEOUT)
{
	run_case(_metadata, self, "pipe", "pipe", NULL);
	if (self->skip)
		return;
	check_completed(_metadata, self->res);
	EXPECT_EQ(0, json_num(self->res, "pipe_send_exit"));
	EXPECT_EQ(0, json_num(self->res, "pipe_recv_exit"));
	TH_LOG("lmig bytes on the wire: %lld", (long long)json_num(self->res, "lmig_bytes_wire"));
}

TEST_F_TIMEOUT(qemu, proxy, CASE_TIMEOUT)
{
	run_case(_metadata, self, "proxy", "proxy", NULL);
	if (self->skip)
		return;
	check_completed(_metadata, self->res);
	EXPECT_EQ(0, json_num(self->res, "proxy_send_exit"));
	EXPECT_EQ(0, json_num(self->res, "proxy_recv_exit"));
	TH_LOG("lmig bytes on the wire: %lld", (long long)json_num(self->res, "lmig_bytes_wire"));
}

TEST_F_TIMEOUT(qemu, proxy_multifd, CASE_TIMEOUT)
{
	run_case(_metadata, self, "proxy-multifd", "proxy",
		 (const char *const[]){ "--multifd", "3", NULL });
	if (self->skip)
		return;
	check_completed(_metadata, self->res);
	/* The pages went over the multifd channels, through the proxies. */
	ASSERT_LT(100 << 20, json_num(self->res, "multifd_bytes"));
	EXPECT_EQ(0, json_num(self->res, "proxy_send_exit"));
	EXPECT_EQ(0, json_num(self->res, "proxy_recv_exit"));
	TH_LOG("lmig bytes on the wire: %lld", (long long)json_num(self->res, "lmig_bytes_wire"));
}

TEST_F_TIMEOUT(qemu, proxy_killed, CASE_TIMEOUT)
{
	const char *t;
	char buf[256];

	run_case(_metadata, self, "proxy-killed", "proxy",
		 (const char *const[]){ "--max-bandwidth", "16777216", "--kill-after", "2",
					NULL });
	if (self->skip)
		return;
	ASSERT_EQ(NULL, strstr(self->res, "\"harness_error\":")) TH_LOG("harness error");
	/* Killed while the pages were still going over. */
	ASSERT_STREQ("active", json_str_or(self->res, "killed_while", buf, sizeof(buf)));
	ASSERT_STREQ("failed", json_str_or(self->res, "status", buf, sizeof(buf)));
	/* The source keeps its guest and runs it. */
	ASSERT_STREQ("running", json_str_or(self->res, "src_status", buf, sizeof(buf)));
	ASSERT_LE(json_num(self->res, "src_tick_after_failure") + 5, json_num(self->res, "src_tick_later"));
	/* The receiving proxy saw its peer go and said so. */
	EXPECT_LT(0, json_num(self->res, "proxy_recv_exit"));
	t = strstr(self->res, "\"noticed_s\":");
	TH_LOG("source noticed the failure %.*s s after the kill, with %lld bytes sent",
	       t ? (int)strcspn(t + 12, ",}") : 1, t ? t + 12 : "?",
	       (long long)json_num(self->res, "killed_at_ram_transferred"));
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig qemu send/recv with real QEMUs 7.2 (TCG): lmig moves the guest's
 * shared RAM with its own pre-copy (--tracker scan), QEMU only the
 * devices (x-ignore-shared), its stream relayed on lmig's control
 * connection.  qemu/qram.py runs the QEMUs and lmig and prints what
 * happened; the cases check it here:
 *
 *   noshared  a QEMU whose RAM is plain -m (not shared): lmig qemu send
 *             fails with one line naming the QEMU options it needs and
 *             lmig pipe
 *   guest     one source guest: mkguest.sh --smp's guest without an
 *             operating system (two vCPUs; vCPU 0 fills 40 MiB from 8 MiB
 *             on and rewrites it at 8 MB/s, printing a counter every
 *             100 ms), its 64 MiB of RAM in two memfd backends, one a NUMA
 *             node, 40 and 24 MiB: two RAM blocks, both written, two page
 *             sessions sharing one pause; four destinations in turn:
 *             - a destination whose backend has another size: recv refuses,
 *               its QEMU quits, send fails with one line, the source runs on;
 *             - at pre-switchover (guest stopped) lmig qemu recv is killed:
 *               send cancels QEMU's migration and the guest runs again;
 *             - the same, but lmig qemu send is SIGKILLed: its guard
 *               process cancels QEMU's migration and the guest runs again;
 *               lmig qemu recv fails with one line and its QEMU quits;
 *               after all three failures x-ignore-shared is off again on
 *               the source (QEMU's own next migration carries all its RAM);
 *             - a migration that completes: QEMU completed on both sides,
 *               the destination's RAM file equals the source's memfd at
 *               the switch-over, block by block (hashed while both are
 *               stopped: the source
 *               in postmigrate, the destination held by -S before `cont`),
 *               and after `cont` the guest's counter goes on from the
 *               source's.
 *   huge      a source of its own: three memfd backends, two of one size
 *             (20 MiB each, which QEMU names alike: told apart by the
 *             inode QEMU maps for each) and one of huge pages (hugetlb=on,
 *             24 MiB, the guest writing its first 8); the destination's
 *             backends created in the other order (its two memfds' numbers
 *             swapped against the source's), the huge one a file on a
 *             hugetlbfs mount of the case's own, filled with 0xaa first (its
 *             zero pages must be stored).  The migration completes; every
 *             block's hash equals the source's, and so does the guest's RAM
 *             as each QEMU reads it (pmemsave: a wrong pairing of the memfds
 *             would show there, where each side's own hashes would agree);
 *             the guest goes on.  The 24 huge pages it needs are reserved
 *             (vm.nr_hugepages) for the case and the old count put back,
 *             by qram.py and again by the teardown here.
 *
 * The same driver runs the Linux guest (qram.py --guest linux, the
 * default: Debian's kernel and guest.c), as bench/qemu_ram.sh does with
 * 1 GiB; its boot under TCG takes 20-50 s here, too long for make check.
 *
 * SKIP only when QEMU, the kernel or gcc's static or -m32 libraries are
 * missing (huge: also when this is not root, who alone can reserve huge
 * pages and mount hugetlbfs).  About 1 s, 10 s and 2-5 s on 2 CPUs at
 * load 3-15.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define CASE_TIMEOUT	240
#define NR_HUGEPAGES	"/proc/sys/vm/nr_hugepages"

FIXTURE(qram) {
	char dir[PATH_MAX];
	char line[PROC_OUT_MAX];
	const char *res;
	int skip;
	long hugepages;		/* vm.nr_hugepages before the huge case, or -1 */
};

FIXTURE_SETUP(qram)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	self->res = NULL;
	self->skip = 0;
	self->hugepages = -1;
}

static long hugepages_now(void)
{
	FILE *f = fopen(NR_HUGEPAGES, "r");
	long n = -1;

	if (f && fscanf(f, "%ld", &n) != 1)
		n = -1;
	if (f)
		fclose(f);
	return n;
}

FIXTURE_TEARDOWN(qram)
{
	char mnt[PATH_MAX + 16];

	/* qram.py puts both back itself; this is for a qram.py that was killed. */
	if (self->hugepages >= 0) {
		snprintf(mnt, sizeof(mnt), "%s/hugetlbfs", self->dir);
		umount2(mnt, MNT_DETACH);
		if (hugepages_now() != self->hugepages) {
			FILE *f = fopen(NR_HUGEPAGES, "w");

			if (f) {
				fprintf(f, "%ld\n", self->hugepages);
				fclose(f);
			}
		}
	}
	scratch_remove(self->dir);
}

static void run_qram(struct __test_metadata *_metadata, FIXTURE_DATA(qram) *self,
		     const char *cases, const char *const extra[])
{
	const char *bin = lmig_path(), *slash = strrchr(bin, '/');
	char script[PATH_MAX], lmig[PATH_MAX];
	struct proc p = { 0 };

	ASSERT_NE(NULL, slash);
	snprintf(script, sizeof(script), "%.*s/../selftests/qemu/qram.py", (int)(slash - bin), bin);
	snprintf(lmig, sizeof(lmig), "%s", bin);
	const char *argv[24] = { access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3",
				 script, "--work", self->dir, "--lmig", lmig, "--cases", cases };
	int n = 8;

	for (int i = 0; extra[i] && n < 23; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&p, CASE_TIMEOUT - 20)) {
		proc_kill(&p);
		TH_LOG("qram.py still running");
	}
	if (proc_exit_code(&p) == 4) {
		self->skip = 1;
		SKIP(return, "cannot boot a QEMU guest here: %.900s", p.err_log);
	}
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("qram.py: %s %s", p.out, p.err_log);
	self->res = json_last_line(p.out, self->line, sizeof(self->line));
	ASSERT_NE(NULL, self->res) TH_LOG("no result from qram.py: %s %s", p.out, p.err_log);
	TH_LOG("%s", self->res);
	ASSERT_EQ(NULL, strstr(self->res, "\"harness_error\":")) TH_LOG("%s", p.out);
}

TEST_F_TIMEOUT(qram, noshared, CASE_TIMEOUT)
{
	static const char *const none[] = { NULL };

	run_qram(_metadata, self, "noshared", none);
	if (self->skip)
		return;
	EXPECT_EQ(1, json_num(self->res, "noshared_exit"));
	EXPECT_EQ(1, json_num(self->res, "noshared_lines"));
	EXPECT_EQ(1, json_bool(self->res, "noshared_says_how"));
}

static void check_refused(struct __test_metadata *_metadata, const char *res)
{
	char buf[64];

	EXPECT_EQ(1, json_num(res, "refused_send_exit"));
	EXPECT_EQ(1, json_num(res, "refused_recv_exit"));
	EXPECT_EQ(1, json_num(res, "refused_send_lines"));
	EXPECT_EQ(1, json_bool(res, "refused_dst_exited"));	/* told to quit */
	EXPECT_STREQ("running", json_str_or(res, "refused_src_status", buf, sizeof(buf)));
	EXPECT_LT(0, json_num(res, "refused_src_tick"));
	/* QEMU's own next migration would carry the shared RAM again. */
	EXPECT_EQ(1, json_bool(res, "refused_caps_off"));
}

static void check_cancel(struct __test_metadata *_metadata, const char *res)
{
	char buf[64];

	/* The failure came while QEMU held the guest stopped at pre-switchover. */
	ASSERT_EQ(1, json_bool(res, "cancel_seen"));
	EXPECT_STRNE("running", json_str_or(res, "cancel_status_then", buf, sizeof(buf)));
	EXPECT_EQ(1, json_num(res, "cancel_send_exit"));
	EXPECT_EQ(1, json_num(res, "cancel_send_lines"));
	EXPECT_STREQ("resumed", json_str_or(res, "cancel_source", buf, sizeof(buf)));
	EXPECT_STREQ("cancelled", json_str_or(res, "cancel_src_migration", buf, sizeof(buf)));
	EXPECT_STREQ("running", json_str_or(res, "cancel_src_status", buf, sizeof(buf)));
	EXPECT_LT(0, json_num(res, "cancel_src_tick"));	/* its counter advanced again */
	EXPECT_EQ(1, json_bool(res, "cancel_caps_off"));
}

static void check_killed(struct __test_metadata *_metadata, const char *res)
{
	char buf[64];

	ASSERT_EQ(1, json_bool(res, "killed_seen"));
	/* The receiver notices, says so in one line, and its QEMU quits. */
	EXPECT_EQ(1, json_num(res, "killed_recv_exit"));
	EXPECT_EQ(1, json_num(res, "killed_recv_lines"));
	EXPECT_EQ(1, json_bool(res, "killed_dst_exited"));
	/* The guard of the dead lmig qemu send cancelled QEMU's migration. */
	EXPECT_STREQ("cancelled", json_str_or(res, "killed_src_migration", buf, sizeof(buf)));
	EXPECT_STREQ("running", json_str_or(res, "killed_src_status", buf, sizeof(buf)));
	EXPECT_LT(0, json_num(res, "killed_src_tick"));
	EXPECT_EQ(1, json_bool(res, "killed_caps_off"));
}

static void check_migrate(struct __test_metadata *_metadata, const char *res)
{
	char buf[64];

	ASSERT_EQ(0, json_num(res, "migrate_send_exit"));
	ASSERT_EQ(0, json_num(res, "migrate_recv_exit"));
	EXPECT_STREQ("completed", json_str_or(res, "migrate_qemu_status", buf, sizeof(buf)));
	EXPECT_STREQ("completed", json_str_or(res, "migrate_recv_qemu_status", buf, sizeof(buf)));
	EXPECT_STREQ("postmigrate", json_str_or(res, "migrate_src_status", buf, sizeof(buf)));
	EXPECT_STREQ("scan", json_str_or(res, "migrate_tracker", buf, sizeof(buf)));
	/* Both stopped when hashed: the destination had not run yet. */
	EXPECT_STREQ("paused", json_str_or(res, "migrate_dst_before", buf, sizeof(buf)));
	EXPECT_STREQ("paused", json_str_or(res, "migrate_dst_after_hash", buf, sizeof(buf)));
	ASSERT_EQ(2, json_num(res, "migrate_blocks"));
	ASSERT_EQ(1, json_bool(res, "migrate_hash_equal"));	/* every block */
	/* The same guest goes on there. */
	ASSERT_LT(0, json_num(res, "migrate_src_last_tick"));
	ASSERT_LE(json_num(res, "migrate_src_last_tick"), json_num(res, "migrate_dst_first_tick"));
	ASSERT_LT(json_num(res, "migrate_dst_first_tick"), json_num(res, "migrate_dst_tick"));
	EXPECT_STREQ("running", json_str_or(res, "migrate_dst_status", buf, sizeof(buf)));
	/* Each round of the first block in its report: round 0 every page, the last the paused one. */
	EXPECT_EQ(json_num(res, "migrate_rounds"), json_num(res, "migrate_round_stats"));
	EXPECT_EQ(json_num(res, "migrate_block0_size"), json_num(res, "migrate_round0_bytes"));
	EXPECT_EQ(1, json_bool(res, "migrate_last_round_frozen"));
	EXPECT_LE(0, json_dbl(res, "migrate_ram_start_ms"));
	EXPECT_GT(json_num(res, "migrate_total_ms"), json_dbl(res, "migrate_ram_start_ms"));
	/* QEMU's own stream is small: the shared RAM is not in it. */
	EXPECT_LT(0, json_num(res, "migrate_device_bytes"));
	EXPECT_GT(16 << 20, json_num(res, "migrate_device_bytes"));
	TH_LOG("migrated in %.2f s, %lld rounds, QEMU's downtime %lld ms, its stream %lld bytes,"
	       " %lld bytes on the wire", json_dbl(res, "migrate_secs"),
	       (long long)json_num(res, "migrate_rounds"),
	       (long long)json_num(res, "migrate_qemu_downtime_ms"),
	       (long long)json_num(res, "migrate_device_bytes"),
	       (long long)json_num(res, "migrate_bytes_wire"));
}

TEST_F_TIMEOUT(qram, guest, CASE_TIMEOUT)
{
	/*
	 * The guest without an OS (mkguest.sh --smp): it boots in a second.
	 * The completed case switches over once 2 s of downtime are
	 * predicted: it checks what arrives, and under a heavy load a 300 ms
	 * budget can take the rounds past the case's time.
	 */
	static const char *const guest[] = { "--guest", "smp", "--mem", "64", "--touch", "40",
					     "--blocks", "2", "--cancel-bw", "6M",
					     "--send-args", "--downtime-ms 2000", NULL };

	run_qram(_metadata, self, "refused,cancel,killed,migrate", guest);
	if (self->skip)
		return;
	check_refused(_metadata, self->res);
	check_cancel(_metadata, self->res);
	check_killed(_metadata, self->res);
	check_migrate(_metadata, self->res);
}

TEST_F_TIMEOUT(qram, huge, CASE_TIMEOUT)
{
	static const char *const guest[] = { "--guest", "smp", "--mem", "64", "--touch", "40",
					     "--send-args", "--downtime-ms 2000", NULL };
	char buf[64];

	if (geteuid() || access(NR_HUGEPAGES, W_OK))
		SKIP(return, "huge pages are reserved and hugetlbfs mounted by root only");
	self->hugepages = hugepages_now();
	run_qram(_metadata, self, "huge", guest);
	if (self->skip)
		return;
	EXPECT_EQ(self->hugepages, hugepages_now());	/* given back */
	ASSERT_EQ(0, json_num(self->res, "huge_send_exit"));
	ASSERT_EQ(0, json_num(self->res, "huge_recv_exit"));
	EXPECT_STREQ("completed", json_str_or(self->res, "huge_qemu_status", buf, sizeof(buf)));
	EXPECT_STREQ("completed", json_str_or(self->res, "huge_recv_qemu_status", buf, sizeof(buf)));
	ASSERT_EQ(3, json_num(self->res, "huge_blocks"));
	/* The huge-page block is ram2 on both sides; the two of one size are memfds there too. */
	EXPECT_STREQ("ram2", json_str_or(self->res, "huge_src_hugetlb", buf, sizeof(buf)));
	EXPECT_STREQ("ram2", json_str_or(self->res, "huge_dst_hugetlb", buf, sizeof(buf)));
	EXPECT_STREQ("ram0,ram1", json_str_or(self->res, "huge_dst_memfds", buf, sizeof(buf)));
	EXPECT_EQ(1, json_bool(self->res, "huge_dst_fds_differ"));
	/* Its 16 MiB the guest does not write went as zero pages, onto the 0xaa. */
	EXPECT_LE(4000, json_num(self->res, "huge_zero_pages"));
	/* Both stopped when hashed: the source in postmigrate, the destination held by -S. */
	EXPECT_STREQ("postmigrate", json_str_or(self->res, "huge_src_status", buf, sizeof(buf)));
	EXPECT_STREQ("paused", json_str_or(self->res, "huge_dst_before", buf, sizeof(buf)));
	EXPECT_STREQ("paused", json_str_or(self->res, "huge_dst_after_hash", buf, sizeof(buf)));
	ASSERT_EQ(1, json_bool(self->res, "huge_hash_equal"));
	ASSERT_EQ(1, json_bool(self->res, "huge_pmem_equal"));
	ASSERT_LT(0, json_num(self->res, "huge_src_last_tick"));
	ASSERT_LE(json_num(self->res, "huge_src_last_tick"), json_num(self->res, "huge_dst_first_tick"));
	ASSERT_LT(json_num(self->res, "huge_dst_first_tick"), json_num(self->res, "huge_dst_tick"));
	EXPECT_STREQ("running", json_str_or(self->res, "huge_dst_status", buf, sizeof(buf)));
	TH_LOG("huge pages and same-size memfds: migrated in %.2f s, %lld rounds, QEMU's"
	       " downtime %lld ms", json_dbl(self->res, "huge_secs"),
	       (long long)json_num(self->res, "huge_rounds"),
	       (long long)json_num(self->res, "huge_qemu_downtime_ms"));
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The uffd dirty tracker.
 *
 * Unit tests drive track_uffd_ops directly against a child process that
 * registered its memory with a userfaultfd of its own and writes exactly
 * the pages it is told to: each harvest must return exactly those pages,
 * through both harvest ways, and with an object mapped in two pieces at
 * different file offsets.  End-to-end tests run `lmig dirty --uffd` and
 * `lmig dirtyrate --tracker uffd` and compare the measured rate with the
 * rate written and with what the scan tracker measures.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "kselftest_harness.h"

#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/uffd.h"

#include "cli/report.h"
#include "lib/err.h"
#include "live/track.h"

#define PAGE	4096ULL
#define MiB	(1024ULL * 1024)
#define NPAGES	64		/* of the unit tests' memory */
#define UNREGISTER	0xffffffffu	/* not a page: tells the writer to unregister it */

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM	(1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)
#endif

/* How the unit tests' child sets up its memory. */
enum layout {
	L_ANON,		/* NPAGES of private anonymous memory, registered */
	L_SPLIT,	/* the memfd mapped as its upper half, then its lower half; both registered */
	L_HALF_REG,	/* L_SPLIT with only the lower half's mapping registered */
	L_PART,		/* only the lower half of the memfd mapped, registered */
	L_NO_UFFD,	/* L_SPLIT without any userfaultfd */
};

struct writer {
	pid_t pid;
	int cmd, ack;		/* pipes to and from it */
	uint64_t start;		/* L_ANON: its address */
};

static int uffd_wp_register(int uffd, void *a, uint64_t len)
{
	struct uffdio_register r = { .range = { (uintptr_t)a, len }, .mode = UFFDIO_REGISTER_MODE_WP };

	return ioctl(uffd, UFFDIO_REGISTER, &r);
}

/* The child: set up the memory, then write page N for each N read from the pipe. */
static void writer_main(enum layout l, int memfd, int cmd, int ack)
{
	uint8_t *lo = NULL, *hi = NULL;
	uint32_t page;
	int uffd = -1;
	size_t lolen = (l == L_ANON ? NPAGES : NPAGES / 2) * PAGE;

	if (l == L_ANON) {
		lo = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	} else {
		/* The upper half at the lower address: two mappings that cannot merge. */
		uint8_t *base = mmap(NULL, NPAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
				     -1, 0);

		if (base == MAP_FAILED)
			_exit(2);
		if (l != L_PART)
			hi = mmap(base, NPAGES / 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				  memfd, NPAGES / 2 * PAGE);
		lo = mmap(base + NPAGES / 2 * PAGE, NPAGES / 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_FIXED, memfd, 0);
	}
	if (lo == MAP_FAILED || hi == MAP_FAILED)
		_exit(2);
	if (l != L_NO_UFFD) {
		struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC |
				(l == L_ANON ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM) };

		uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
			_exit(3);
		if (uffd_wp_register(uffd, lo, lolen))
			_exit(4);
		if (hi && l != L_HALF_REG && uffd_wp_register(uffd, hi, NPAGES / 2 * PAGE))
			_exit(5);
	}
	memset(lo, 1, lolen);
	if (hi)
		memset(hi, 1, NPAGES / 2 * PAGE);
	/* First message: where the anonymous memory is. */
	uint64_t where = (uintptr_t)lo;

	if (write(ack, &where, sizeof(where)) != sizeof(where))
		_exit(6);
	while (read(cmd, &page, sizeof(page)) == sizeof(page)) {
		uint8_t *p = l == L_ANON || page < NPAGES / 2 ? lo + page * PAGE :
			     hi + (page - NPAGES / 2) * PAGE;
		struct uffdio_range lor = { (uintptr_t)lo, lolen };

		if (page == UNREGISTER) {
			if (ioctl(uffd, UFFDIO_UNREGISTER, &lor))
				_exit(8);
		} else {
			p[page % PAGE]++;
		}
		if (write(ack, &page, sizeof(page)) != sizeof(page))
			_exit(7);
	}
	_exit(0);
}

static int writer_start(struct writer *w, enum layout l, int memfd)
{
	int cmd[2], ack[2];

	if (pipe(cmd) || pipe(ack))
		return -1;
	w->pid = fork();
	if (w->pid < 0)
		return -1;
	if (w->pid == 0) {
		close(cmd[1]);
		close(ack[0]);
		writer_main(l, memfd, cmd[0], ack[1]);
	}
	close(cmd[0]);
	close(ack[1]);
	w->cmd = cmd[1];
	w->ack = ack[0];
	return read(w->ack, &w->start, sizeof(w->start)) == sizeof(w->start) ? 0 : -1;
}

static int writer_write(struct writer *w, uint32_t page)
{
	uint32_t done;

	if (write(w->cmd, &page, sizeof(page)) != sizeof(page))
		return -1;
	return read(w->ack, &done, sizeof(done)) == sizeof(done) && done == page ? 0 : -1;
}

static void writer_stop(struct writer *w)
{
	if (w->pid <= 0)
		return;
	close(w->cmd);
	close(w->ack);
	kill(w->pid, SIGKILL);
	waitpid(w->pid, NULL, 0);
	w->pid = 0;
}

FIXTURE(uffd) {
	int memfd;
	struct writer w;
	struct tracker t;
	uint64_t bitmap[(NPAGES + 63) / 64];
};

FIXTURE_SETUP(uffd)
{
	self->memfd = -1;
	if (!have_wp_async())
		SKIP(return, "this kernel has no async userfaultfd write-protection");
	self->memfd = memfd_create("lmig-track-test", MFD_CLOEXEC);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, ftruncate(self->memfd, NPAGES * PAGE));
}

FIXTURE_TEARDOWN(uffd)
{
	if (self->t.priv)
		track_uffd_ops.stop(&self->t);
	writer_stop(&self->w);
	if (self->memfd >= 0)
		close(self->memfd);
	unsetenv("LMIG_UFFD_TWO_STEP");
}

static struct track_target target(FIXTURE_DATA(uffd) *self, enum layout l)
{
	if (l == L_ANON)
		return (struct track_target){ .fd = -1, .pid = self->w.pid, .start = self->w.start,
					      .size = NPAGES * PAGE };
	return (struct track_target){ .fd = self->memfd, .pid = self->w.pid, .size = NPAGES * PAGE };
}

/* Start the tracker as tracker_open() would. */
static int start(FIXTURE_DATA(uffd) *self, enum layout l)
{
	struct track_target tg = target(self, l);

	lmig_err_clear();
	if (track_uffd_ops.probe(&tg))
		return -1;
	self->t = (struct tracker){ .ops = &track_uffd_ops, .tg = tg, .npages = NPAGES };
	return track_uffd_ops.start(&self->t);
}

/* Harvest and compare with exactly the pages in want (terminated by -1). */
static void expect_harvest(struct __test_metadata *_metadata, FIXTURE_DATA(uffd) *self,
			   const int *want)
{
	uint64_t expect[(NPAGES + 63) / 64] = { 0 };

	for (int i = 0; want[i] >= 0; i++)
		bitmap_set(expect, want[i]);
	memset(self->bitmap, 0, sizeof(self->bitmap));
	ASSERT_EQ(0, track_uffd_ops.harvest(&self->t, self->bitmap)) TH_LOG("%s", lmig_errmsg());
	for (int p = 0; p < NPAGES; p++) {
		EXPECT_EQ(bitmap_test(expect, p), bitmap_test(self->bitmap, p))
			TH_LOG("page %d", p);
	}
}

/* Writes pages, harvests exactly them, then nothing, in rounds. */
static void exact_rounds(struct __test_metadata *_metadata, FIXTURE_DATA(uffd) *self)
{
	static const int none[] = { -1 };
	static const int r1[] = { 0, 5, 31, 32, 40, 63, -1 };
	static const int r2[] = { 5, 33, -1 };

	/* The fill happened before start: start protected it all. */
	expect_harvest(_metadata, self, none);
	for (int i = 0; r1[i] >= 0; i++)
		ASSERT_EQ(0, writer_write(&self->w, r1[i]));
	expect_harvest(_metadata, self, r1);
	expect_harvest(_metadata, self, none);
	/* A page written twice in a round is reported once. */
	ASSERT_EQ(0, writer_write(&self->w, 5));
	ASSERT_EQ(0, writer_write(&self->w, 33));
	ASSERT_EQ(0, writer_write(&self->w, 5));
	expect_harvest(_metadata, self, r2);
	expect_harvest(_metadata, self, none);
}

TEST_F(uffd, exact_pages_anon)
{
	ASSERT_EQ(0, writer_start(&self->w, L_ANON, -1));
	ASSERT_EQ(0, start(self, L_ANON)) TH_LOG("%s", lmig_errmsg());
	exact_rounds(_metadata, self);
}

/* The object's halves are mapped in swapped order: page indexes follow the file offsets. */
TEST_F(uffd, exact_pages_split_memfd)
{
	ASSERT_EQ(0, writer_start(&self->w, L_SPLIT, self->memfd));
	ASSERT_EQ(0, start(self, L_SPLIT)) TH_LOG("%s", lmig_errmsg());
	exact_rounds(_metadata, self);
}

/* The two-step harvest (scan, then UFFDIO_WRITEPROTECT through the writer's uffd). */
TEST_F(uffd, exact_pages_two_step)
{
	ASSERT_EQ(0, setenv("LMIG_UFFD_TWO_STEP", "1", 1));
	ASSERT_EQ(0, writer_start(&self->w, L_SPLIT, self->memfd));
	ASSERT_EQ(0, start(self, L_SPLIT)) TH_LOG("%s", lmig_errmsg());
	exact_rounds(_metadata, self);
}

TEST_F(uffd, two_step_anon)
{
	ASSERT_EQ(0, setenv("LMIG_UFFD_TWO_STEP", "1", 1));
	ASSERT_EQ(0, writer_start(&self->w, L_ANON, -1));
	ASSERT_EQ(0, start(self, L_ANON)) TH_LOG("%s", lmig_errmsg());
	exact_rounds(_metadata, self);
}

/* A writer that unregisters its memory while tracked: the next harvest fails, saying so. */
static void lose_registration(struct __test_metadata *_metadata, FIXTURE_DATA(uffd) *self)
{
	ASSERT_EQ(0, writer_start(&self->w, L_ANON, -1));
	ASSERT_EQ(0, start(self, L_ANON)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, writer_write(&self->w, 3));
	ASSERT_EQ(0, writer_write(&self->w, UNREGISTER));
	lmig_err_clear();
	EXPECT_EQ(-1, track_uffd_ops.harvest(&self->t, self->bitmap));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "is not registered")) TH_LOG("%s", lmig_errmsg());
}

TEST_F(uffd, unregistered_while_tracked)
{
	lose_registration(_metadata, self);
}

TEST_F(uffd, unregistered_while_tracked_two_step)
{
	ASSERT_EQ(0, setenv("LMIG_UFFD_TWO_STEP", "1", 1));
	lose_registration(_metadata, self);
}

static void expect_refused(struct __test_metadata *_metadata, FIXTURE_DATA(uffd) *self,
			   enum layout l, const char *why)
{
	struct track_target tg;

	ASSERT_EQ(0, writer_start(&self->w, l, self->memfd));
	tg = target(self, l);
	lmig_err_clear();
	EXPECT_EQ(-1, track_uffd_ops.probe(&tg));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), why)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(NULL, strchr(lmig_errmsg(), '\n'));
}

TEST_F(uffd, refuses_without_uffd)
{
	expect_refused(_metadata, self, L_NO_UFFD, "holds no userfaultfd");
}

TEST_F(uffd, refuses_unregistered_mapping)
{
	expect_refused(_metadata, self, L_HALF_REG, "is not registered");
}

TEST_F(uffd, refuses_partly_mapped_object)
{
	expect_refused(_metadata, self, L_PART, "maps only part of the object");
}

TEST_F(uffd, refuses_without_pid)
{
	struct track_target tg = { .fd = self->memfd, .size = NPAGES * PAGE };

	lmig_err_clear();
	EXPECT_EQ(-1, track_uffd_ops.probe(&tg));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "needs --pid")) TH_LOG("%s", lmig_errmsg());
}

/* End to end, with the real binary. */
FIXTURE(e2e) {
	struct proc dw, dr;
	char path[512], pid[16];
};

FIXTURE_SETUP(e2e)
{
	if (!have_wp_async())
		SKIP(return, "this kernel has no async userfaultfd write-protection");
}

FIXTURE_TEARDOWN(e2e)
{
	proc_kill(&self->dr);
	proc_kill(&self->dw);
	unsetenv("LMIG_UFFD_TWO_STEP");
}

static void dirty(struct __test_metadata *_metadata, FIXTURE_DATA(e2e) *self, const char *mem,
		  const char *rate, bool uffd)
{
	const char *const args[] = { "--mem", mem, "--size", "64Mi", "--rate", rate,
				     uffd ? "--uffd" : NULL, NULL };

	ASSERT_EQ(0, dirty_start(&self->dw, args, self->path, sizeof(self->path)));
	snprintf(self->pid, sizeof(self->pid), "%d", (int)self->dw.pid);
}

/* Run `lmig dirtyrate --json --pid PID --mem PATH ARGS...`; returns its exit code. */
static int dirtyrate(struct __test_metadata *_metadata, FIXTURE_DATA(e2e) *self,
		     const char *const args[], bool with_pid)
{
	const char *argv[24] = { lmig_path(), "dirtyrate", "--json", "--mem", self->path };
	int n = 5;

	if (with_pid) {
		argv[n++] = "--pid";
		argv[n++] = self->pid;
	}
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	proc_kill(&self->dr);
	memset(&self->dr, 0, sizeof(self->dr));
	if (proc_spawn(&self->dr, (char *const *)argv, NULL) || proc_wait(&self->dr, 25))
		return -1;
	return proc_exit_code(&self->dr);
}

static double measure(struct __test_metadata *_metadata, FIXTURE_DATA(e2e) *self,
		      const char *tracker)
{
	const char *const args[] = { "--tracker", tracker, "--interval", "500", "--count", "4",
				     NULL };
	char got[16] = "";

	EXPECT_EQ(0, dirtyrate(_metadata, self, args, true)) TH_LOG("%s", self->dr.err_log);
	EXPECT_EQ(0, json_str_field(self->dr.out, "tracker", got, sizeof(got)));
	EXPECT_STREQ(tracker, got);
	return json_dbl(self->dr.out, "dirty_mbps");
}

/*
 * 8 MB/s of random pages over 64 MiB: 977 pages per half-second interval,
 * of which about 3 % land on a page already written in it and count once.
 * uffd must see what scan sees.
 */
static void rate_vs_scan(struct __test_metadata *_metadata, FIXTURE_DATA(e2e) *self,
			 const char *mem)
{
	double uffd, scan;

	dirty(_metadata, self, mem, "8M", true);
	uffd = measure(_metadata, self, "uffd");
	TH_LOG("uffd: %.2f MB/s, harvest %.2f ms", uffd, json_dbl(self->dr.out, "harvest_ms"));
	scan = measure(_metadata, self, "scan");
	TH_LOG("scan: %.2f MB/s, harvest %.2f ms; 8.00 written", scan,
	       json_dbl(self->dr.out, "harvest_ms"));
	EXPECT_GE(uffd, 0.85 * 8);
	EXPECT_LE(uffd, 1.02 * 8);
	EXPECT_GE(uffd, 0.9 * scan);
	EXPECT_LE(uffd, 1.1 * scan);
	ASSERT_EQ(0, kill(self->dw.pid, SIGTERM));
	ASSERT_EQ(0, proc_wait(&self->dw, 5));
	EXPECT_NE(NULL, strstr(self->dw.out, "\"uffd\":true")) TH_LOG("%s", self->dw.out);
}

TEST_F(e2e, rate_memfd)
{
	rate_vs_scan(_metadata, self, "memfd:lmig-uffd");
}

TEST_F(e2e, rate_anon)
{
	rate_vs_scan(_metadata, self, "anon");
	EXPECT_EQ(0, strncmp(self->path, "anon:", 5)) TH_LOG("%s", self->path);
}

TEST_F(e2e, rate_two_step)
{
	double mbps;

	ASSERT_EQ(0, setenv("LMIG_UFFD_TWO_STEP", "1", 1));
	dirty(_metadata, self, "memfd:lmig-uffd2", "8M", true);
	mbps = measure(_metadata, self, "uffd");
	TH_LOG("uffd two-step: %.2f MB/s, harvest %.2f ms", mbps,
	       json_dbl(self->dr.out, "harvest_ms"));
	EXPECT_GE(mbps, 0.85 * 8);
	EXPECT_LE(mbps, 1.02 * 8);
}

/* Memory nobody writes: every interval empty, though the fill wrote it all. */
TEST_F(e2e, idle_is_clean)
{
	const char *const args[] = { "--tracker", "uffd", "--interval", "200", "--count", "3",
				     NULL };
	uint64_t pages;

	dirty(_metadata, self, "memfd:lmig-uffd-idle", "0", true);
	ASSERT_EQ(0, dirtyrate(_metadata, self, args, true)) TH_LOG("%s", self->dr.err_log);
	for (int i = 0; i < 3; i++) {
		char key[32];

		snprintf(key, sizeof(key), "dirty_pages_%d", i);
		ASSERT_EQ(0, json_u64_field(self->dr.out, key, &pages));
		EXPECT_EQ(0, pages) TH_LOG("%s", key);
	}
}

/* No userfaultfd in the writer: exit 1 and one line saying so. */
TEST_F(e2e, no_uffd_fails)
{
	const char *const args[] = { "--tracker", "uffd", "--count", "1", NULL };
	char status[16];

	dirty(_metadata, self, "anon", "1M", false);
	EXPECT_EQ(1, dirtyrate(_metadata, self, args, true));
	EXPECT_TRUE(one_line(self->dr.err)) TH_LOG("%s", self->dr.err_log);
	EXPECT_NE(NULL, strstr(self->dr.err, "holds no userfaultfd")) TH_LOG("%s", self->dr.err_log);
	ASSERT_EQ(0, json_str_field(self->dr.out, "status", status, sizeof(status)));
	EXPECT_STREQ("failed", status);
}

/*
 * auto prefers uffd where it works (on 1 MiB a scan saves under the 10 ms a
 * harvest that would beat the order), and says why it passed it over where
 * not.  With --object-writes mapped: under the default (any) each uffd
 * harvest after a write also compares every page, as scan does, and costs
 * more than scan, which auto may then pick by cost.
 */
TEST_F(e2e, auto_picks_uffd)
{
	const char *const args[] = { "--interval", "100", "--count", "1", "--object-writes",
				     "mapped", NULL };
	char got[16], why[512];

	dirty(_metadata, self, "memfd:lmig-uffd-auto", "1M", true);
	ASSERT_EQ(0, dirtyrate(_metadata, self, args, true)) TH_LOG("%s", self->dr.err_log);
	ASSERT_EQ(0, json_str_field(self->dr.out, "tracker", got, sizeof(got)));
	EXPECT_STREQ("uffd", got);
	ASSERT_EQ(0, json_str_field(self->dr.out, "tracker_why", why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "auto picked uffd"));
	/* Both could watch: each was calibrated, and the words say what it cost. */
	EXPECT_NE(NULL, strstr(why, "uffd: ")) TH_LOG("%s", why);
	EXPECT_NE(NULL, strstr(why, "scan: ")) TH_LOG("%s", why);
	EXPECT_NE(NULL, strstr(why, " ms a harvest")) TH_LOG("%s", why);

	/* The same object without --pid: uffd cannot watch it, scan can. */
	ASSERT_EQ(0, dirtyrate(_metadata, self, args, false)) TH_LOG("%s", self->dr.err_log);
	ASSERT_EQ(0, json_str_field(self->dr.out, "tracker", got, sizeof(got)));
	EXPECT_STREQ("scan", got);
	ASSERT_EQ(0, json_str_field(self->dr.out, "tracker_why", why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "uffd: needs --pid")) TH_LOG("%s", why);
	EXPECT_NE(NULL, strstr(why, "auto picked scan")) TH_LOG("%s", why);
}

/*
 * --tracker auto's choice, in the report of lmig send, is worded from
 * struct track_choice (cli/report_notes.c): the same words tracker_open()
 * gives its callers, cut at the same length, for a memfd no tracker but
 * scan can watch (no --pid, and a size kmod refuses whether or not the
 * module is loaded), and the error when not even scan can.
 */
TEST(auto_choice_words)
{
	static uint64_t sent[17];
	struct track_target tg = { .fd = memfd_create("lmig-track-choice", MFD_CLOEXEC),
				   .size = 16 * PAGE + 512, .sent = sent };
	char why[2048], words[2048], err[512];
	struct track_choice c;
	struct tracker t;

	ASSERT_LE(0, tg.fd);
	ASSERT_EQ(0, ftruncate(tg.fd, tg.size));
	ASSERT_EQ(0, tracker_open_choice(&t, "auto", &tg, &c)) TH_LOG("%s", lmig_errmsg());
	tracker_close(&t);
	EXPECT_STREQ("scan", c.picked);
	EXPECT_EQ(3, c.nrefused);
	/* All of it, and cut as the report cuts it. */
	for (size_t len = sizeof(why); len >= 256; len = len == 256 ? 0 : 256) {
		ASSERT_EQ(0, tracker_open(&t, "auto", &tg, why, len)) TH_LOG("%s", lmig_errmsg());
		tracker_close(&t);
		report_tracker_words(&c, words, len);
		EXPECT_STREQ(why, words);
	}
	report_tracker_words(&c, words, sizeof(words));
	EXPECT_NE(NULL, strstr(words, "uffd: needs --pid")) TH_LOG("%s", words);
	EXPECT_NE(NULL, strstr(words, "; auto picked scan")) TH_LOG("%s", words);

	/* Nothing to compare with: scan refuses too, and the error quotes the rest. */
	tg.sent = NULL;
	ASSERT_EQ(-1, tracker_open_choice(&t, "auto", &tg, &c));
	snprintf(err, sizeof(err), "%s", lmig_errmsg());
	EXPECT_EQ(NULL, c.picked);
	EXPECT_EQ(4, c.nrefused);
	report_tracker_words(&c, words, 256);	/* the error quotes what the report would */
	EXPECT_NE(NULL, strstr(err, words)) TH_LOG("%s | %s", err, words);
	EXPECT_EQ(0, strncmp(err, "no dirty tracker can watch this memory (", 40)) TH_LOG("%s", err);

	/* A tracker named: no choice to tell. */
	tg.sent = sent;
	ASSERT_EQ(0, tracker_open_choice(&t, "scan", &tg, &c)) TH_LOG("%s", lmig_errmsg());
	tracker_close(&t);
	report_tracker_words(&c, words, sizeof(words));
	EXPECT_STREQ("", words);
	close(tg.fd);
}

/*
 * The scan tracker's exact result on an object large enough to be hashed
 * by several threads (with 2 CPUs or more): writes on both sides of every
 * 64-page boundary (wherever the threads' parts begin and end, a first
 * and a last page of a part is among them), in the partial last page, a
 * page rewritten with what was sent and one with zeros, and holes left
 * alone.  The harvest reports exactly the pages whose content differs
 * from what was sent, leaves the holes unallocated, finds the same pages
 * when it reads the memory from a process instead of mapping the object,
 * and once what it found is "sent", reports nothing.
 */
#define SCAN_PAGES	(256 * MiB / PAGE)	/* + a partial page of 512 bytes */

static uint64_t page_hash(const uint8_t *m, uint64_t p)
{
	uint8_t page[PAGE] = { 0 };

	memcpy(page, m + p * PAGE, p == SCAN_PAGES ? 512 : PAGE);
	return XXH3_64bits(page, PAGE);
}

TEST(scan_exact_parts)
{
	const uint64_t npages = SCAN_PAGES + 1, size = SCAN_PAGES * PAGE + 512;
	uint64_t *sent = calloc(npages, 8), *bm = calloc(npages / 64 + 1, 8);
	uint64_t *want = calloc(npages / 64 + 1, 8), zero = XXH3_64bits((uint8_t[PAGE]){ 0 }, PAGE);
	struct track_target tg = { .fd = memfd_create("lmig-scan-parts", MFD_CLOEXEC),
				   .pid = -1, .size = size, .sent = sent };
	uint64_t written = 0, blocks, wrong;
	struct tracker t;
	struct stat st;
	uint8_t *m;

	ASSERT_NE(NULL, sent);
	ASSERT_NE(NULL, bm);
	ASSERT_NE(NULL, want);
	ASSERT_LE(0, tg.fd);
	ASSERT_EQ(0, ftruncate(tg.fd, size));
	m = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, tg.fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (uint64_t p = 0; p < npages; p++)
		sent[p] = zero;
	/* Page 1 holds what was sent; page 2 was sent non-zero and is zeros (data) now. */
	memset(m + 1 * PAGE, 0x11, PAGE);
	sent[1] = page_hash(m, 1);
	sent[2] = 42;
	m[2 * PAGE] = 0;
	bitmap_set(want, 2);
	written += 2;
	for (uint64_t b = 64; b < SCAN_PAGES; b += 64) {
		m[(b - 1) * PAGE + 7] = (uint8_t)b | 1;
		m[b * PAGE + PAGE - 1] = (uint8_t)(b >> 6) | 1;
		bitmap_set(want, b - 1);
		bitmap_set(want, b);
		written += 2;
	}
	m[SCAN_PAGES * PAGE + 511] = 0x5a;	/* the last byte of the object */
	bitmap_set(want, SCAN_PAGES);
	m[(SCAN_PAGES - 1) * PAGE] = 3;
	bitmap_set(want, SCAN_PAGES - 1);
	written += 2;

	ASSERT_EQ(0, fstat(tg.fd, &st));
	blocks = st.st_blocks;
	ASSERT_EQ(0, tracker_open(&t, "scan", &tg, NULL, 0)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, tracker_harvest(&t, bm)) TH_LOG("%s", lmig_errmsg());
	for (wrong = 0; wrong < npages; wrong++)
		if (bitmap_test(bm, wrong) != bitmap_test(want, wrong))
			break;
	EXPECT_EQ(npages, wrong) TH_LOG("page %llu: %d, want %d", (unsigned long long)wrong,
					 bitmap_test(bm, wrong), bitmap_test(want, wrong));
	EXPECT_EQ(written - 1, bitmap_count(bm, npages));	/* page 1 is as sent */
	/* The harvest read the holes as zeros without filling them. */
	ASSERT_EQ(0, fstat(tg.fd, &st));
	EXPECT_EQ(blocks, (uint64_t)st.st_blocks);
	EXPECT_LE(written * PAGE, blocks * 512);

	/* Read from a process (process_vm_readv, a buffer) instead: the same pages. */
	struct track_target tp = { .fd = -1, .pid = getpid(), .start = (uintptr_t)m,
				   .size = size, .sent = sent };
	struct tracker t2;
	uint64_t *bm2 = calloc(npages / 64 + 1, 8);

	ASSERT_NE(NULL, bm2);
	ASSERT_EQ(0, tracker_open(&t2, "scan", &tp, NULL, 0)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, tracker_harvest(&t2, bm2)) TH_LOG("%s", lmig_errmsg());
	tracker_close(&t2);
	EXPECT_EQ(0, memcmp(bm, bm2, (npages / 64 + 1) * 8));
	free(bm2);

	/* What it found is sent: nothing is left to find. */
	for (uint64_t p = 0; p < npages; p++)
		if (bitmap_test(bm, p))
			sent[p] = page_hash(m, p);
	memset(bm, 0, (npages / 64 + 1) * 8);
	ASSERT_EQ(0, tracker_harvest(&t, bm)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(0, bitmap_count(bm, npages));
	tracker_close(&t);

	/* A shrunk object fails the harvest instead of reading past its end. */
	ASSERT_EQ(0, tracker_open(&t, "scan", &tg, NULL, 0)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, ftruncate(tg.fd, size - PAGE));
	EXPECT_EQ(-1, tracker_harvest(&t, bm));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "shrank")) TH_LOG("%s", lmig_errmsg());
	tracker_close(&t);
	munmap(m, npages * PAGE);
	close(tg.fd);
	free(sent);
	free(bm);
	free(want);
}

/*
 * The scan tracker on a disk file whose pages left the page cache
 * (POSIX_FADV_DONTNEED), which is how a swapped-out tmpfs page looks to
 * mincore(): the harvest takes them for data all the same, and finds
 * exactly the pages changed since they were sent (rewritten, or made a
 * hole), whole and in the 8 MiB parts of a final harvest.
 */
#define COLD_PAGES	(128 * MiB / PAGE)

static uint64_t cold_harvest(struct __test_metadata *_metadata, struct tracker *t, int fd,
			     uint64_t *bm, bool parts)
{
	memset(bm, 0, COLD_PAGES / 8);
	ASSERT_EQ(0, fdatasync(fd));
	ASSERT_EQ(0, posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
	for (uint64_t p = 0; p < COLD_PAGES; p += parts ? 2048 : COLD_PAGES)
		ASSERT_EQ(0, tracker_harvest_part(t, bm, p, p + (parts ? 2048 : COLD_PAGES), p == 0,
						  p + (parts ? 2048 : COLD_PAGES) == COLD_PAGES))
			TH_LOG("%s", lmig_errmsg());
	return bitmap_count(bm, COLD_PAGES);
}

TEST(scan_data_out_of_cache)
{
	char path[] = "/var/tmp/lmig-scan-cold.XXXXXX";
	int fd = mkstemp(path);
	uint64_t *sent = calloc(COLD_PAGES, 8), *bm = calloc(COLD_PAGES / 64, 8);
	uint64_t zero = XXH3_64bits((uint8_t[PAGE]){ 0 }, PAGE);
	static uint8_t page[PAGE];
	struct track_target tg = { .fd = fd, .pid = -1, .size = COLD_PAGES * PAGE, .sent = sent };
	struct tracker t;

	ASSERT_LE(0, fd);
	unlink(path);
	ASSERT_NE(NULL, sent);
	ASSERT_NE(NULL, bm);
	/* Data but for a hole every 1000 pages, sent as it is. */
	for (uint64_t p = 0; p < COLD_PAGES; p++) {
		memset(page, (int)(p % 251) + 1, PAGE);
		if (p % 1000 == 999) {
			sent[p] = zero;
			continue;
		}
		ASSERT_EQ(PAGE, pwrite(fd, page, PAGE, p * PAGE));
		sent[p] = XXH3_64bits(page, PAGE);
	}
	ASSERT_EQ(0, ftruncate(fd, COLD_PAGES * PAGE));
	/* Changed since: three pages rewritten, one a hole now, one hole filled. */
	memset(page, 0xee, PAGE);
	ASSERT_EQ(PAGE, pwrite(fd, page, PAGE, 5 * PAGE));
	ASSERT_EQ(PAGE, pwrite(fd, page, PAGE, 2047 * PAGE));
	ASSERT_EQ(PAGE, pwrite(fd, page, PAGE, (COLD_PAGES - 1) * PAGE));
	ASSERT_EQ(PAGE, pwrite(fd, page, PAGE, 1999 * PAGE));
	ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096 * PAGE, PAGE));

	ASSERT_EQ(0, tracker_open(&t, "scan", &tg, NULL, 0)) TH_LOG("%s", lmig_errmsg());
	for (int parts = 0; parts < 2; parts++) {
		EXPECT_EQ(5, cold_harvest(_metadata, &t, fd, bm, parts)) TH_LOG("parts %d", parts);
		EXPECT_TRUE(bitmap_test(bm, 5) && bitmap_test(bm, 2047) && bitmap_test(bm, 1999) &&
			    bitmap_test(bm, 4096) && bitmap_test(bm, COLD_PAGES - 1));
	}
	tracker_close(&t);
	close(fd);
	free(sent);
	free(bm);
}

/*
 * An object truncated while the scan tracker hashes its mapping raises
 * SIGBUS in the hashing thread: the harvest fails saying so, and lmig
 * lives on.  The truncations race with the harvests, so a harvest may also
 * see the object whole (0) or shrunk before it starts (the same words):
 * what is checked is that every one ends in one of these.
 */
struct shrinker {
	int fd;
	uint64_t size;
	volatile bool stop;
};

static void *shrink_loop(void *arg)
{
	struct shrinker *k = arg;

	static uint8_t data[1 << 20];

	memset(data, 0x44, sizeof(data));
	/* Regrown, the upper half is data again where it is written. */
	while (!k->stop) {
		if (ftruncate(k->fd, k->size / 2))
			break;
		usleep(300);
		if (ftruncate(k->fd, k->size))
			break;
		for (uint64_t off = k->size / 2; off < k->size; off += 4 * sizeof(data))
			if (pwrite(k->fd, data, sizeof(data), off) != sizeof(data))
				return NULL;
		usleep(300);
	}
	return NULL;
}

TEST(scan_survives_shrinking)
{
	const uint64_t size = 32 * MiB, npages = size / PAGE;
	uint64_t *sent = calloc(npages, 8), *bm = calloc(npages / 64, 8);
	struct shrinker k = { .fd = memfd_create("lmig-scan-shrink", MFD_CLOEXEC), .size = size };
	struct track_target tg = { .fd = k.fd, .pid = -1, .size = size, .sent = sent };
	unsigned int failed = 0, in_hash = 0;
	struct tracker t;
	pthread_t th;
	uint8_t *m;

	ASSERT_NE(NULL, sent);
	ASSERT_NE(NULL, bm);
	ASSERT_LE(0, k.fd);
	ASSERT_EQ(0, ftruncate(k.fd, size));
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, k.fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 0x33, size);
	munmap(m, size);
	ASSERT_EQ(0, tracker_open(&t, "scan", &tg, NULL, 0)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, pthread_create(&th, NULL, shrink_loop, &k));
	for (int i = 0; i < 20; i++) {
		lmig_err_clear();
		if (tracker_harvest(&t, bm)) {
			failed++;
			in_hash += !strcmp(lmig_errmsg(), "the memory object shrank during the migration");
			EXPECT_NE(NULL, strstr(lmig_errmsg(), "shrank")) TH_LOG("%s", lmig_errmsg());
		}
	}
	k.stop = true;
	pthread_join(th, NULL);
	tracker_close(&t);
	TH_LOG("%u of 20 harvests saw the object shrink, %u of them while hashing", failed, in_hash);
	close(k.fd);
	free(sent);
	free(bm);
}

TEST_HARNESS_MAIN

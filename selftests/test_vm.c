// SPDX-License-Identifier: GPL-2.0-only
/*
 * The soft-dirty tracker.  The host kernel may lack soft-dirty, so the
 * tracker's own checks run in a VM booting Debian's kernel (vm/run-in-vm.sh
 * with vm/softdirty.sh); here, that it is refused with the reason where
 * the kernel lacks it.
 *
 * Live migrations with the soft-dirty tracker run there too
 * (vm/live.sh): `lmig send --pid` over loopback, checked byte for byte.
 *
 * lmig recv's fallback where the output's filesystem has no O_TMPFILE
 * runs there too (vm/outfile.sh on 6.1's overlayfs), in the boot of the
 * soft-dirty live migrations.
 *
 * The no-lost-write check is this program too (--nolost, run in the VM):
 * a child rewrites pages as fast as it can while the parent migrates the
 * memory the way the live engine does (a full copy after the tracker
 * starts, then harvest and copy the harvested pages, over and over; at
 * the end stop the writer, harvest and copy once more).  The copy must
 * then equal the memory: a write the tracker missed leaves a page behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/err.h"
#include "live/track.h"
#include "lib/jfield.h"
#include "lib/nolost.h"
#include "lib/proc.h"
#include "lib/vm.h"

#define PAGE	4096ULL
#define MiB	(1024ULL * 1024)

/* Does the kernel we run on keep soft-dirty bits?  Clear, write, look. */
static bool softdirty_works(void)
{
	volatile char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	uint64_t e = 0;
	bool ok = false;

	if (p != MAP_FAILED && fd >= 0 && write(fd, "4", 1) == 1) {
		int pm = open("/proc/self/pagemap", O_RDONLY);

		p[0] = 1;
		ok = pm >= 0 && pread(pm, &e, 8, (uintptr_t)p / PAGE * 8) == 8 && (e >> 55 & 1);
		if (pm >= 0)
			close(pm);
	}
	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap((void *)p, PAGE);
	return ok;
}

/*
 * On this kernel: --tracker soft-dirty fails with one line naming the
 * cause where the kernel has no soft-dirty, and measures where it has.
 * Without --pid it is refused either way.
 */
TEST(softdirty_on_this_kernel)
{
	const char *const args[] = { "--mem", "memfd:lmig-sd", "--size", "4Mi", "--rate", "1M",
				     NULL };
	struct proc dw = { 0 }, p = { 0 }, q = { 0 };
	char path[512], pid[16];
	bool works = softdirty_works();

	ASSERT_EQ(0, dirty_start(&dw, args, path, sizeof(path)));
	snprintf(pid, sizeof(pid), "%d", (int)dw.pid);
	ASSERT_EQ(0, proc_spawn(&p, (char *const[]){ (char *)lmig_path(), "dirtyrate", "--pid", pid,
						     "--mem", path, "--tracker", "soft-dirty",
						     "--interval", "100", "--count", "1", NULL },
				NULL));
	ASSERT_EQ(0, proc_wait(&p, 20));
	TH_LOG("kernel %s soft-dirty: %s", works ? "has" : "lacks", works ? p.out : p.err_log);
	if (works) {
		EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	} else {
		EXPECT_EQ(1, proc_exit_code(&p));
		EXPECT_TRUE(one_line(p.err)) TH_LOG("stderr: %s", p.err_log);
		EXPECT_NE(NULL, strstr(p.err, "CONFIG_MEM_SOFT_DIRTY")) TH_LOG("%s", p.err_log);
	}
	ASSERT_EQ(0, proc_spawn(&q, (char *const[]){ (char *)lmig_path(), "dirtyrate", "--mem", path,
						     "--tracker", "soft-dirty", "--count", "1",
						     NULL }, NULL));
	ASSERT_EQ(0, proc_wait(&q, 20));
	EXPECT_EQ(1, proc_exit_code(&q));
	EXPECT_TRUE(one_line(q.err)) TH_LOG("stderr: %s", q.err_log);
	EXPECT_NE(NULL, strstr(q.err, works ? "--pid" : "soft-dirty")) TH_LOG("%s", q.err_log);
	proc_kill(&q);
	proc_kill(&p);
	proc_kill(&dw);
}

/*
 * In the VM: `lmig dirty` writes 4 MB/s into a 32 MiB memfd; soft-dirty
 * must measure what scan measures (both within 25 % of the rate written:
 * a page written twice in an interval counts once), auto must pick it, and
 * no write may be lost, in a shared object or in private memory.
 */
FIXTURE(vm) {
	int unused;
};

FIXTURE_SETUP(vm)
{
}

FIXTURE_TEARDOWN(vm)
{
}

/* vm/softdirty.sh in a VM booting the newest kernel of series (NULL: run-in-vm.sh's default, 6.1). */
static void softdirty(struct __test_metadata *_metadata, const char *series)
{
	char script[PATH_MAX], runner[PATH_MAX], buf[16384], tracker[32];
	const char *line;
	struct proc p = { 0 };
	double sd, scan, want;

	if (series) {
		char pat[64];
		glob_t g;

		snprintf(pat, sizeof(pat), "/boot/vmlinuz-%s.*", series);
		if (glob(pat, 0, NULL, &g) || !g.gl_pathc)
			SKIP(return, "no %s kernel here", pat);
		/* The last in glob's order: the newest of one series, by Debian's names. */
		setenv("KERNEL", g.gl_pathv[g.gl_pathc - 1], 1);
		globfree(&g);
	}
	ASSERT_EQ(0, vm_path("run-in-vm.sh", runner, sizeof(runner)));
	ASSERT_EQ(0, vm_path("softdirty.sh", script, sizeof(script)));
	/* Its own limit goes first, so qemu never outlives the test. */
	setenv("VM_TIMEOUT", "240", 0);
	ASSERT_EQ(0, proc_spawn(&p, (char *const[]){ "/bin/sh", runner, "-v", script, NULL }, NULL));
	ASSERT_EQ(0, proc_wait(&p, 270)) TH_LOG("run-in-vm.sh still running");
	if (proc_exit_code(&p) == 4)
		SKIP(return, "no VM here: %.900s", p.err_log);
	TH_LOG("%s", p.err_log);
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("stdout: %s", p.out);

	ASSERT_NE(NULL, line = vm_result(p.out, "dirty", buf, sizeof(buf))) TH_LOG("%s", p.out);
	want = json_dbl(line, "rate_mbps");
	ASSERT_NE(NULL, line = vm_result(p.out, "softdirty", buf, sizeof(buf))) TH_LOG("%s", p.out);
	sd = json_dbl(line, "dirty_mbps");
	TH_LOG("soft-dirty: %.2f MB/s, harvest %.2f ms", sd, json_dbl(line, "harvest_ms"));
	ASSERT_NE(NULL, line = vm_result(p.out, "scan", buf, sizeof(buf))) TH_LOG("%s", p.out);
	scan = json_dbl(line, "dirty_mbps");
	TH_LOG("scan: %.2f MB/s, harvest %.2f ms; written %.2f MB/s", scan,
	       json_dbl(line, "harvest_ms"), want);
	EXPECT_GE(sd, 0.75 * want);
	EXPECT_LE(sd, 1.1 * want);
	EXPECT_GE(scan, 0.75 * want);
	EXPECT_LE(scan, 1.1 * want);
	EXPECT_GE(sd, 0.85 * scan);
	EXPECT_LE(sd, 1.15 * scan);

	ASSERT_NE(NULL, line = vm_result(p.out, "auto", buf, sizeof(buf))) TH_LOG("%s", p.out);
	ASSERT_EQ(0, json_str_field(line, "tracker", tracker, sizeof(tracker))) TH_LOG("%s", line);
	EXPECT_STREQ("soft-dirty", tracker);

	for (int i = 0; i < 2; i++) {
		const char *tag = i ? "nolost-anon" : "nolost-shared";

		ASSERT_NE(NULL, line = vm_result(p.out, tag, buf, sizeof(buf))) TH_LOG("%s", p.out);
		TH_LOG("%s: %s", tag, line);
		EXPECT_EQ(0, strncmp(line, "ok ", 3)) TH_LOG("%s %s", tag, line);
	}
	/* Through short-lived, new, zapped and moved mappings (test_nolost.c). */
	for (int i = 0; i < 8; i++) {
		static const char *const tags[] = { "nolostmap-shortlived", "nolostmap-newmap",
						    "nolostmap-dontneed", "nolostmap-mremap",
						    "nolostmap-fork", "nolostmap-uring",
						    "nolostmap-pageout", "nolostmap-vfork" };

		ASSERT_NE(NULL, line = vm_result(p.out, tags[i], buf, sizeof(buf))) TH_LOG("%s", p.out);
		TH_LOG("%s: %s", tags[i], line);
		EXPECT_EQ(0, strncmp(line, "ok ", 3)) TH_LOG("%s %s", tags[i], line);
		EXPECT_EQ(NULL, strstr(line, " map_rescans=0 ")) TH_LOG("%s %s", tags[i], line);
	}
	ASSERT_NE(NULL, line = vm_result(p.out, "livemap", buf, sizeof(buf))) TH_LOG("%s", p.out);
	TH_LOG("livemap: %.300s", line);
	EXPECT_EQ(0, strncmp(line, "same ", 5)) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, "\"tracker\":\"soft-dirty\"")) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, "\"source\":\"paused\"")) TH_LOG("%s", line);
	proc_kill(&p);
}

TEST_F_TIMEOUT(vm, softdirty, 280)
{
	softdirty(_metadata, NULL);
}

TEST_F_TIMEOUT(vm, softdirty_6_12, 280)
{
	softdirty(_metadata, "6.12");
}

/*
 * One case of vm/live.sh: `lmig dirty` writing 4 MB/s into 32 MiB, migrated
 * live over loopback by `lmig send --pid --freeze signal` with the
 * soft-dirty tracker (want_auto: picked by --tracker auto).  send and recv
 * must succeed, pre-copy must converge after at least one round that
 * resent what was written, the writer must be left stopped, the received
 * image must equal its memory byte for byte, and that memory must have
 * changed while it was sent.
 */
static void live_check(struct __test_metadata *_metadata, const char *out, const char *name,
		       const char *want_tracker, bool want_auto)
{
	static char send[16384], dirty[2048];
	char tag[64], buf[1024], tracker[32], why[256];
	uint64_t written = 0, resent = 0, largest = 0, v;
	const char *line, *r;
	unsigned int rounds = 0;
	double downtime, harvest;

	snprintf(tag, sizeof(tag), "%s error", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	EXPECT_EQ(NULL, line) TH_LOG("%s: %s", name, line);
	snprintf(tag, sizeof(tag), "%s send-rc", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	ASSERT_NE(NULL, line) TH_LOG("no '%s' line in:\n%s", tag, out);
	EXPECT_STREQ("0", line) {
		snprintf(tag, sizeof(tag), "%s send-err", name);
		TH_LOG("%s: send failed: %s", name, vm_result(out, tag, buf, sizeof(buf)));
	}
	snprintf(tag, sizeof(tag), "%s recv-rc", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	EXPECT_STREQ("0", line ? line : "missing") {
		snprintf(tag, sizeof(tag), "%s recv-err", name);
		TH_LOG("%s: recv failed: %s", name, vm_result(out, tag, buf, sizeof(buf)));
	}

	snprintf(tag, sizeof(tag), "%s send", name);
	ASSERT_NE(NULL, line = vm_result(out, tag, send, sizeof(send))) TH_LOG("%s", out);
	ASSERT_EQ('{', line[0]) TH_LOG("%s: %s", name, line);
	ASSERT_EQ(0, json_str_field(line, "tracker", tracker, sizeof(tracker))) TH_LOG("%s", line);
	EXPECT_STREQ(want_tracker, tracker);
	if (want_auto) {
		EXPECT_EQ(0, json_str_field(line, "tracker_why", why, sizeof(why)));
		EXPECT_NE(NULL, strstr(why, "auto")) TH_LOG("%s: tracker_why %s", name, why);
	}
	EXPECT_NE(NULL, strstr(line, "\"converged\":true")) TH_LOG("%s: %s", name, line);
	EXPECT_NE(NULL, strstr(line, "\"source\":\"paused\"")) TH_LOG("%s: %s", name, line);
	EXPECT_NE(NULL, strstr(line, "\"downtime_ms\":")) TH_LOG("%s: %s", name, line);
	EXPECT_NE(NULL, strstr(line, "\"final_harvest_ms\":")) TH_LOG("%s: %s", name, line);
	downtime = json_dbl(line, "downtime_ms");
	harvest = json_dbl(line, "final_harvest_ms");
	EXPECT_GT(downtime, 0) TH_LOG("%s: %s", name, line);
	EXPECT_GE(harvest, 0) TH_LOG("%s: %s", name, line);
	/* Round 0 sends everything; the later ones what the tracker harvested. */
	r = strstr(line, "\"rounds\":[");
	ASSERT_NE(NULL, r) TH_LOG("%s: %s", name, line);
	for (r = strstr(r, "\"dirty_pages\":"); r; r = strstr(r + 1, "\"dirty_pages\":")) {
		v = strtoull(r + strlen("\"dirty_pages\":"), NULL, 10);
		if (rounds++) {
			resent += v;
			largest = v > largest ? v : largest;
		}
	}
	EXPECT_GE(rounds, 2) TH_LOG("%s: %s", name, line);
	EXPECT_GT(resent, 0) TH_LOG("%s: no page written during pre-copy: %s", name, line);

	snprintf(tag, sizeof(tag), "%s state", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	EXPECT_STREQ("T", line ? line : "missing") TH_LOG("%s: the source is not stopped", name);
	snprintf(tag, sizeof(tag), "%s cmp", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	EXPECT_STREQ("same", line ? line : "missing")
		TH_LOG("%s: the received image is not the source's memory", name);
	snprintf(tag, sizeof(tag), "%s changed", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	EXPECT_STREQ("yes", line ? line : "missing")
		TH_LOG("%s: the memory did not change while it was sent", name);
	snprintf(tag, sizeof(tag), "%s dirty", name);
	line = vm_result(out, tag, dirty, sizeof(dirty));
	EXPECT_NE(NULL, line) TH_LOG("%s: the writer did not report", name);
	if (line) {
		EXPECT_EQ(0, json_u64_field(line, "pages_written", &written)) TH_LOG("%s", line);
		EXPECT_GT(written, 0) TH_LOG("%s", line);
	}
	snprintf(tag, sizeof(tag), "%s thp", name);
	line = vm_result(out, tag, buf, sizeof(buf));
	TH_LOG("live %s: tracker %s, %u rounds, downtime %.1f ms, final harvest %.2f ms, "
	       "resent %llu pages (largest round %llu of 8192), writer wrote %llu pages, THP %s",
	       name, tracker, rounds, downtime, harvest, (unsigned long long)resent,
	       (unsigned long long)largest, (unsigned long long)written, line ? line : "-");
}

/*
 * vm/outfile.sh's lines (in the boot of vm.live, vm/live-outfile.sh): on
 * Debian's 6.1 kernel, whose overlayfs has no O_TMPFILE, lmig recv falls
 * back to a PATH.partial of its own.  A migration completes (a regular
 * file, mode 0600, no PATH.partial left); a symbolic link waiting at
 * PATH.partial is refused, its target unchanged; SIGTERM to the receiver
 * and SIGKILL to the sender mid-transfer leave neither PATH nor
 * PATH.partial.
 */
static void outfile_check(struct __test_metadata *_metadata, const char *out)
{
	char buf[512];
	const char *v;

	ASSERT_EQ(NULL, vm_result(out, "plain error", buf, sizeof(buf))) TH_LOG("%s", buf);
	/* Else the fallback is not what runs here. */
	ASSERT_NE(NULL, v = vm_result(out, "tmpfile", buf, sizeof(buf))) TH_LOG("%s", out);
	ASSERT_STREQ("no", v);
#define EXPECT_RESULT(tag, want)							\
	do {										\
		const char *got_ = vm_result(out, tag, buf, sizeof(buf));		\
		EXPECT_STREQ(want, got_ ? got_ : "(none)") TH_LOG("%s: %s", tag, out);	\
	} while (0)
	EXPECT_RESULT("plain recv-rc", "0");
	EXPECT_RESULT("plain cmp", "same");
	EXPECT_RESULT("plain mode", "8180");	/* S_IFREG | 0600, as stat %f prints it */
	EXPECT_RESULT("plain partial-left", "no");
	EXPECT_RESULT("link recv-rc", "1");
	EXPECT_RESULT("link victim", "same");
	EXPECT_RESULT("link out-left", "no");
	v = vm_result(out, "link recv-err", buf, sizeof(buf));
	EXPECT_TRUE(v && strstr(v, "out.img.partial exists")) TH_LOG("%s", v ? v : out);
	EXPECT_RESULT("term partial-seen", "yes");
	EXPECT_RESULT("term recv-rc", "143");
	EXPECT_RESULT("term partial-left", "no");
	EXPECT_RESULT("term out-left", "no");
	v = vm_result(out, "term recv-err", buf, sizeof(buf));
	EXPECT_TRUE(v && strstr(v, "interrupted")) TH_LOG("%s", v ? v : out);
	EXPECT_RESULT("killed partial-seen", "yes");
	EXPECT_RESULT("killed recv-rc", "1");
	EXPECT_RESULT("killed partial-left", "no");
	EXPECT_RESULT("killed out-left", "no");
#undef EXPECT_RESULT
}

/*
 * In the VM: live migrations with the soft-dirty tracker, one boot for
 * all of vm/live.sh's cases, and then, in the same boot, vm/outfile.sh
 * (outfile_check above; vm/live-outfile.sh runs both):
 *   shared    a memfd, --tracker auto (must pick soft-dirty);
 *   anon      private anonymous memory, transparent huge pages off;
 *   anon-thp  the same with them always on: soft-dirty then marks whole
 *             2 MiB pages, so each round resends most of the image and
 *             the downtime budget is 5 s to let it converge on TCG;
 *   churn     a memfd written with `lmig dirty --pattern churn`: pages
 *             that turn zero, zero pages that get data, pages back to an
 *             earlier content;
 *   holes     `--pattern holes`: holes punched in the memfd;
 *   madvise   `--pattern madvise`: pages zeroed by MADV_REMOVE;
 *   pwrite    `--pattern pwrite`: zeroes and data written by pwrite() to
 *             the memfd, not through the mapping;
 *   anon-madvise  private memory zeroed by MADV_DONTNEED.
 */
TEST_F_TIMEOUT(vm, live, 330)
{
	struct proc p = { 0 };
	char *out;
	int ret = vm_run(&p, "live-outfile.sh", false, 300, 320, &out);

	ASSERT_EQ(0, ret) TH_LOG("run-in-vm.sh still running");
	ASSERT_NE(NULL, out);
	if (proc_exit_code(&p) == 4)
		SKIP({ free(out); return; }, "no VM here: %.900s", p.err_log);
	TH_LOG("%s", p.err_log);
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stdout: %s", out);
	live_check(_metadata, out, "shared", "soft-dirty", true);
	live_check(_metadata, out, "anon", "soft-dirty", false);
	live_check(_metadata, out, "anon-thp", "soft-dirty", false);
	live_check(_metadata, out, "churn", "soft-dirty", false);
	live_check(_metadata, out, "holes", "soft-dirty", false);
	live_check(_metadata, out, "madvise", "soft-dirty", false);
	live_check(_metadata, out, "pwrite", "soft-dirty", false);
	live_check(_metadata, out, "anon-madvise", "soft-dirty", false);
	outfile_check(_metadata, out);
	free(out);
	proc_kill(&p);
}

/*
 * In a VM booting Debian's newest SERIES kernel (6.1, 6.12) with lmig.ko
 * built for it (vm/live-kmod-host.sh SERIES): live migrations of a memfd
 * with --tracker kmod, with 4 KiB shmem pages and with 2 MiB folios (the
 * module reports whole folios; lmig must still send only the pages that
 * changed and arrive at an image equal to the stopped source), and the
 * churn, holes, madvise and pwrite workloads (vm/live.sh's kmod-churn,
 * kmod-holes, kmod-madvise, kmod-pwrite), and a writer whose every write
 * goes through a mapping made and removed for it (kmod-shortmaps,
 * vm/shortmaps.py).
 */
static void live_kmod(struct __test_metadata *_metadata, const char *series)
{
	struct proc p = { 0 };
	char *out;
	int ret = vm_run_arg(&p, "live-kmod-host.sh", series, 290, 330, &out);

	ASSERT_EQ(0, ret) TH_LOG("live-kmod-host.sh still running");
	ASSERT_NE(NULL, out);
	if (proc_exit_code(&p) == 4)
		SKIP({ free(out); return; }, "no VM or %s kernel headers here: %.900s", series,
		     p.err_log);
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stdout: %s stderr: %s", out, p.err_log);
	TH_LOG("kernel %s", series);
	live_check(_metadata, out, "kmod", "kmod", false);
	live_check(_metadata, out, "kmod-thp", "kmod", false);
	live_check(_metadata, out, "kmod-churn", "kmod", false);
	live_check(_metadata, out, "kmod-holes", "kmod", false);
	live_check(_metadata, out, "kmod-madvise", "kmod", false);
	live_check(_metadata, out, "kmod-pwrite", "kmod", false);
	live_check(_metadata, out, "kmod-shortmaps", "kmod", false);
	free(out);
	proc_kill(&p);
}

TEST_F_TIMEOUT(vm, live_kmod, 340)
{
	live_kmod(_metadata, "6.1");
}

TEST_F_TIMEOUT(vm, live_kmod_6_12, 340)
{
	live_kmod(_metadata, "6.12");
}

/* --nolost: the writer, the migration and the comparison. */

#define NL_PAGES	2048		/* 8 MiB */
#define NL_SECONDS	3.0

/*
 * The child: rewrite random pages, each with its index and a new counter;
 * *count (shared with the parent) is the number of writes.
 */
static void nl_writer(uint8_t *mem, volatile uint64_t *count)
{
	uint64_t x = 88172645463325252ULL;

	for (;;) {
		uint64_t *w, c = *count + 1;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w = (uint64_t *)(mem + x % NL_PAGES * PAGE);
		for (unsigned int i = 0; i < PAGE / 8; i++)
			w[i] = c ^ i;
		w[0] = x % NL_PAGES;
		*count = c;
	}
}

static int nl_read(const struct track_target *tg, uint64_t page, void *buf, size_t len)
{
	ssize_t n;

	if (tg->fd >= 0) {
		n = pread(tg->fd, buf, len, page * PAGE);
	} else {
		struct iovec l = { buf, len }, r = { (void *)(uintptr_t)(tg->start + page * PAGE), len };

		n = process_vm_readv(tg->pid, &l, 1, &r, 1, 0);
	}
	return n == (ssize_t)len ? 0 : -1;
}

struct nl_vm {
	struct track_target tg;
	struct tracker t;
	pid_t pid;
};

static int nl_vm_harvest(void *ctx, uint64_t *bitmap)
{
	struct nl_vm *v = ctx;

	return v->t.ops->harvest(&v->t, bitmap);
}

static int nl_vm_read(void *ctx, uint64_t page, uint64_t n, uint8_t *buf)
{
	struct nl_vm *v = ctx;

	for (uint64_t i = 0; i < n; i++)
		if (nl_read(&v->tg, page + i, buf + i * PAGE, PAGE))
			return -1;
	return 0;
}

/* As a VM is at switch-over. */
static void nl_vm_pause(void *ctx)
{
	struct nl_vm *v = ctx;
	int st;

	kill(v->pid, SIGSTOP);
	waitpid(v->pid, &st, WUNTRACED);
}

static int nolost(const char *kind)
{
	bool shared = !strcmp(kind, "shared");
	uint64_t size = NL_PAGES * PAGE;
	struct nl_vm v = { .tg = { .fd = -1, .size = size },
			   .t = { .ops = &track_softdirty_ops, .npages = NL_PAGES } };
	struct nl_rounds r = { .npages = NL_PAGES, .seconds = NL_SECONDS, .harvest = nl_vm_harvest,
			       .read = nl_vm_read, .pause = nl_vm_pause, .ctx = &v };
	volatile uint64_t *count;
	uint8_t *mem, *dst, *src;
	int ret;

	if (shared) {
		v.tg.fd = memfd_create("lmig-nolost", 0);
		if (v.tg.fd < 0 || ftruncate(v.tg.fd, size))
			return printf("memfd: %s\n", strerror(errno)), 1;
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v.tg.fd, 0);
	} else {
		/* The child's copy-on-write copy at the same address is the memory. */
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	dst = malloc(size);
	src = malloc(size);
	if (mem == MAP_FAILED || !dst || !src)
		return printf("out of memory\n"), 1;
	count = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (count == MAP_FAILED)
		return printf("out of memory\n"), 1;
	memset(mem, 0x11, size);
	v.pid = fork();
	if (v.pid == 0) {
		nl_writer(mem, count);
		_exit(0);
	}
	v.tg.pid = v.pid;
	v.tg.start = (uintptr_t)mem;
	v.t.tg = v.tg;
	if (v.t.ops->probe(&v.tg) || v.t.ops->start(&v.t)) {
		printf("soft-dirty: %s\n", lmig_errmsg());
		kill(v.pid, SIGKILL);
		return 1;
	}
	/* The first full copy comes after the start: what changes later is harvested. */
	if (nl_vm_read(&v, 0, NL_PAGES, dst))
		return printf("read: %s\n", strerror(errno)), 1;
	ret = nl_rounds_run(&r, dst, src);
	v.t.ops->stop(&v.t);
	kill(v.pid, SIGKILL);
	waitpid(v.pid, NULL, 0);
	if (ret)
		return 1;
	printf("%s pages=%u writes=%llu harvests=%u copied=%llu differ=%llu\n",
	       r.differ ? "LOST" : "ok", NL_PAGES, (unsigned long long)*count, r.harvests,
	       (unsigned long long)r.copied_pages, (unsigned long long)r.differ);
	return r.differ ? 1 : 0;
}

static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--nolost"))
		return nolost(argv[2]);
	return test_harness_run(argc, argv);
}

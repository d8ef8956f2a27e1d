// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig.ko: every ioctl's bad-input errno, harvest exactness with a second
 * process writing (its mapping in place, unmapped, exited), nothing lost
 * under a concurrent writer, truncation and hole punching, tracepoints,
 * debugfs, THP-backed shmem, and rmmod with a session open.
 *
 * Runs as root on a kernel with lmig.ko loaded (selftests/vm/kmod.sh does
 * it in the VM).  $LMIG_KO names the module file for the rmmod test,
 * which unloads and reloads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/lmig.h>

#include "kselftest_harness.h"
#include "kmod/kfile.h"

#define PAGE		4096UL
#define NPAGES		64
#define WORDS(n)	(((n) + 63) / 64)

/* /dev/lmig, or -1 with a reason to skip. */
static int dev_open(void)
{
	return open(LMIG_DEVICE, O_RDWR | O_CLOEXEC);
}

#define OPEN_DEV(fd) do { \
	fd = dev_open(); \
	if (fd < 0) \
		SKIP(return, "%s: %s (module not loaded?)", LMIG_DEVICE, strerror(errno)); \
} while (0)

/* A memfd of n pages, every page written (so all are in the page cache). */
static int memfd_pages(unsigned long n)
{
	int fd = memfd_create("lmig-kmod", MFD_CLOEXEC);
	char buf[PAGE];

	if (fd < 0 || ftruncate(fd, n * PAGE))
		return -1;
	for (unsigned long p = 0; p < n; p++) {
		memset(buf, (int)p + 1, sizeof(buf));
		if (pwrite(fd, buf, PAGE, p * PAGE) != PAGE)
			return -1;
	}
	return fd;
}

/* 0, or the errno of LMIG_IOC_ATTACH. */
static int attach(int dev, struct lmig_attach *a)
{
	return ioctl(dev, LMIG_IOC_ATTACH, a) ? errno : 0;
}

static int attach_range(int dev, int fd, uint64_t off, uint64_t len)
{
	struct lmig_attach a = { .fd = fd, .offset = off, .length = len };

	return attach(dev, &a);
}

/* The count, or -errno. */
static long harvest(int dev, uint64_t *bm, uint64_t bits, struct lmig_harvest *out)
{
	struct lmig_harvest h = { .bitmap = (uintptr_t)bm, .bitmap_bits = bits };
	int r = ioctl(dev, LMIG_IOC_HARVEST, &h);

	if (out)
		*out = h;
	return r < 0 ? -errno : r;
}

static bool bit(const uint64_t *b, unsigned long i)
{
	return b[i / 64] >> (i % 64) & 1;
}

/* The set bits of b as "3 17 40" (ranges as "0-511"), for messages. */
static const char *bits_str(const uint64_t *b, unsigned long n)
{
	static char s[1024];
	size_t len = 0;

	s[0] = 0;
	for (unsigned long i = 0; i < n && len < sizeof(s) - 32; i++) {
		unsigned long j = i;

		if (!bit(b, i))
			continue;
		while (j + 1 < n && bit(b, j + 1))
			j++;
		len += snprintf(s + len, sizeof(s) - len, j > i ? "%lu-%lu " : "%lu ", i, j);
		i = j;
	}
	return s;
}

/* Is b exactly the pages in want[] (terminated by -1)? */
static bool bits_equal(const uint64_t *b, unsigned long n, const int *want)
{
	uint64_t w[WORDS(NPAGES * 8)] = { 0 };

	for (; *want >= 0; want++)
		w[*want / 64] |= 1ULL << (*want % 64);
	for (unsigned long i = 0; i < n; i++)
		if (bit(b, i) != bit(w, i))
			return false;
	return true;
}

/*
 * A second process driven through a pipe: map the object whole or one
 * page, write a page, unmap everything, exit.  Each command is answered
 * with one byte once done.
 */
struct cmd {
	char op;		/* 'M' map all, 'm' map page, 'W' write, 'R' read, 'U' unmap, 'X' exit */
	uint32_t page;
};

struct child {
	pid_t pid;
	int to, from;
};

static void child_main(int fd, unsigned long npages, int in, int out)
{
	uint8_t *whole = NULL, *one[NPAGES] = { 0 };
	struct cmd c;
	uint32_t gen = 0;

	while (read(in, &c, sizeof(c)) == sizeof(c)) {
		switch (c.op) {
		case 'M':
			whole = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (whole == MAP_FAILED)
				_exit(2);
			break;
		case 'm':
			one[c.page] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
					   c.page * PAGE);
			if (one[c.page] == MAP_FAILED)
				_exit(2);
			break;
		case 'W': {
			uint8_t *p = one[c.page] ? one[c.page] : whole + c.page * PAGE;

			gen++;
			memset(p, 0xa0 + (gen & 0x1f), PAGE);
			break;
		}
		case 'R': {
			volatile uint8_t *p = one[c.page] ? one[c.page] : whole + c.page * PAGE;

			(void)*p;
			break;
		}
		case 'U':
			if (whole)
				munmap(whole, npages * PAGE);
			whole = NULL;
			for (unsigned long i = 0; i < NPAGES; i++) {
				if (one[i])
					munmap(one[i], PAGE);
				one[i] = NULL;
			}
			break;
		case 'X':
			_exit(0);
		}
		if (write(out, "k", 1) != 1)
			_exit(3);
	}
	_exit(0);
}

static int child_start(struct child *ch, int fd, unsigned long npages)
{
	int a[2], b[2];

	if (pipe(a) || pipe(b))
		return -1;
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (ch->pid == 0) {
		close(a[1]);
		close(b[0]);
		child_main(fd, npages, a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	ch->to = a[1];
	ch->from = b[0];
	return 0;
}

static int child_do(struct child *ch, char op, uint32_t page)
{
	struct cmd c = { .op = op, .page = page };
	char k;

	if (write(ch->to, &c, sizeof(c)) != sizeof(c))
		return -1;
	if (op == 'X') {
		int st;

		close(ch->to);
		close(ch->from);
		return waitpid(ch->pid, &st, 0) == ch->pid && WIFEXITED(st) &&
		       !WEXITSTATUS(st) ? 0 : -1;
	}
	return read(ch->from, &k, 1) == 1 ? 0 : -1;
}

static void child_writes(struct child *ch, const int *pages)
{
	for (; *pages >= 0; pages++)
		child_do(ch, 'W', *pages);
}

/* ---- LMIG_IOC_VERSION ---- */

TEST(version)
{
	struct lmig_version v;
	int dev;

	OPEN_DEV(dev);
	memset(&v, 0xff, sizeof(v));
	ASSERT_EQ(0, ioctl(dev, LMIG_IOC_VERSION, &v));
	EXPECT_EQ(LMIG_ABI_VERSION, v.abi);
	EXPECT_EQ(12, v.page_shift);
	EXPECT_TRUE(v.features & LMIG_FEAT_NOTIFIERS);
	EXPECT_TRUE(v.features & LMIG_FEAT_PRESENCE);
	EXPECT_TRUE(v.features & LMIG_FEAT_RESCAN);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(0, v.reserved[i]);
	EXPECT_EQ(-1, ioctl(dev, LMIG_IOC_VERSION, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(dev, _IO(LMIG_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	close(dev);
}

/* ---- LMIG_IOC_ATTACH: what it refuses ---- */

TEST(attach_bad_fd)
{
	int dev, fd;

	OPEN_DEV(dev);
	EXPECT_EQ(EBADF, attach_range(dev, -1, 0, PAGE));
	fd = memfd_pages(1);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(EBADF, attach_range(dev, fd, 0, PAGE));
	fd = open("/proc/self/exe", O_PATH);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EBADF, attach_range(dev, fd, 0, PAGE));
	close(fd);
	close(dev);
}

TEST(attach_wrong_types)
{
	int dev, fd, p[2];

	OPEN_DEV(dev);
	fd = open("/", O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, attach_range(dev, fd, 0, PAGE)) TH_LOG("directory");
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, attach_range(dev, fd, 0, PAGE)) TH_LOG("socket");
	close(fd);
	ASSERT_EQ(0, pipe(p));
	EXPECT_EQ(EINVAL, attach_range(dev, p[0], 0, PAGE)) TH_LOG("pipe");
	close(p[0]);
	close(p[1]);
	EXPECT_EQ(EINVAL, attach_range(dev, dev, 0, PAGE)) TH_LOG("/dev/lmig itself");
	close(dev);
}

TEST(attach_unsupported_memory)
{
	int dev, fd;

	OPEN_DEV(dev);
	fd = eventfd(0, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EOPNOTSUPP, attach_range(dev, fd, 0, PAGE)) TH_LOG("anonymous inode");
	close(fd);
	fd = open("/proc/self/status", O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EOPNOTSUPP, attach_range(dev, fd, 0, PAGE)) TH_LOG("procfs file");
	close(fd);
	/* A file on a disk (or 9p) file system: its writeback cleans entries. */
	fd = open("/proc/self/exe", O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EOPNOTSUPP, attach_range(dev, fd, 0, PAGE)) TH_LOG("not tmpfs");
	close(fd);
	fd = memfd_create("lmig-huge", MFD_HUGETLB);
	if (fd >= 0) {
		ASSERT_EQ(0, ftruncate(fd, 2UL << 20));
		EXPECT_EQ(EOPNOTSUPP, attach_range(dev, fd, 0, PAGE)) TH_LOG("hugetlbfs");
		close(fd);
	} else {
		TH_LOG("no hugetlbfs memfd here (%s): that case not checked", strerror(errno));
	}
	close(dev);
}

TEST(attach_write_only_fd)
{
	char path[] = "/tmp/lmig-kmod.XXXXXX";
	int dev, fd, wo;

	OPEN_DEV(dev);
	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, PAGE));
	wo = open(path, O_WRONLY);
	ASSERT_LE(0, wo);
	EXPECT_EQ(EBADF, attach_range(dev, wo, 0, PAGE));
	/* The same file open for reading is fine: a regular file on tmpfs. */
	EXPECT_EQ(0, attach_range(dev, fd, 0, PAGE));
	unlink(path);
	close(wo);
	close(fd);
	close(dev);
}

TEST(attach_bad_ranges)
{
	int dev, fd;

	OPEN_DEV(dev);
	fd = memfd_pages(4);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, attach_range(dev, fd, 1, PAGE)) TH_LOG("unaligned offset");
	EXPECT_EQ(EINVAL, attach_range(dev, fd, 0, 100)) TH_LOG("unaligned length");
	EXPECT_EQ(EINVAL, attach_range(dev, fd, 0, 0)) TH_LOG("zero length");
	EXPECT_EQ(ERANGE, attach_range(dev, fd, 0, 5 * PAGE)) TH_LOG("past the end");
	EXPECT_EQ(ERANGE, attach_range(dev, fd, 4 * PAGE, PAGE)) TH_LOG("at the end");
	EXPECT_EQ(EOVERFLOW, attach_range(dev, fd, UINT64_MAX & ~(PAGE - 1), 2 * PAGE));
	EXPECT_EQ(EOVERFLOW, attach_range(dev, fd, 1ULL << 63, PAGE)) TH_LOG("past MAX_LFS");
	EXPECT_EQ(0, attach_range(dev, fd, PAGE, 3 * PAGE));
	close(fd);
	close(dev);
}

TEST(attach_flags_reserved_pids)
{
	struct lmig_attach a;
	int32_t pids[LMIG_MAX_PIDS + 1] = { 0 };
	int dev, fd;

	OPEN_DEV(dev);
	fd = memfd_pages(4);
	ASSERT_LE(0, fd);
	a = (struct lmig_attach){ .fd = fd, .length = PAGE, .flags = 1U << 7 };
	EXPECT_EQ(EINVAL, attach(dev, &a)) TH_LOG("unknown flag");
	a = (struct lmig_attach){ .fd = fd, .length = PAGE, .reserved0 = 1 };
	EXPECT_EQ(EINVAL, attach(dev, &a)) TH_LOG("reserved0");
	a = (struct lmig_attach){ .fd = fd, .length = PAGE };
	a.reserved[2] = 1;
	EXPECT_EQ(EINVAL, attach(dev, &a)) TH_LOG("reserved[2]");
	a = (struct lmig_attach){ .fd = fd, .length = PAGE, .pids = (uintptr_t)pids,
				  .npids = LMIG_MAX_PIDS + 1 };
	EXPECT_EQ(E2BIG, attach(dev, &a)) TH_LOG("too many pids");
	pids[0] = -1;
	a.npids = 1;
	EXPECT_EQ(EINVAL, attach(dev, &a)) TH_LOG("pid -1");
	pids[0] = 0x3ffffff0;
	EXPECT_EQ(ESRCH, attach(dev, &a)) TH_LOG("no such pid");
	a.pids = 8;
	EXPECT_EQ(EFAULT, attach(dev, &a)) TH_LOG("bad pids pointer");
	a = (struct lmig_attach){ .fd = fd, .length = PAGE, .flags = LMIG_ATTACH_PIDS_ONLY };
	EXPECT_EQ(EINVAL, attach(dev, &a)) TH_LOG("PIDS_ONLY without pids");
	EXPECT_EQ(-1, ioctl(dev, LMIG_IOC_ATTACH, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	/* None of those attached: this one does, and a second one is refused. */
	pids[0] = getpid();
	a = (struct lmig_attach){ .fd = fd, .length = 4 * PAGE, .pids = (uintptr_t)pids,
				  .npids = 1, .flags = LMIG_ATTACH_PIDS_ONLY };
	EXPECT_EQ(0, attach(dev, &a));
	EXPECT_NE(0, a.session);
	EXPECT_EQ(EBUSY, attach_range(dev, fd, 0, PAGE));
	close(fd);
	close(dev);
}

/* ---- LMIG_IOC_HARVEST and LMIG_IOC_STATS: what they refuse ---- */

TEST(harvest_errors)
{
	uint64_t bm[WORDS(NPAGES)];
	struct lmig_harvest h;
	struct lmig_stats st;
	int dev, fd;
	char *m;

	OPEN_DEV(dev);
	EXPECT_EQ(-ENOTCONN, harvest(dev, bm, NPAGES, NULL)) TH_LOG("before attach");
	EXPECT_EQ(-1, ioctl(dev, LMIG_IOC_STATS, &st));
	EXPECT_EQ(ENOTCONN, errno);
	fd = memfd_pages(NPAGES);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, attach_range(dev, fd, 0, NPAGES * PAGE));
	EXPECT_EQ(-ENOSPC, harvest(dev, bm, NPAGES - 1, NULL)) TH_LOG("bitmap too small");
	h = (struct lmig_harvest){ .bitmap = (uintptr_t)bm, .bitmap_bits = NPAGES, .flags = 1 };
	EXPECT_EQ(-1, ioctl(dev, LMIG_IOC_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno) TH_LOG("flags");
	h = (struct lmig_harvest){ .bitmap = (uintptr_t)bm, .bitmap_bits = NPAGES };
	h.reserved[3] = 1;
	EXPECT_EQ(-1, ioctl(dev, LMIG_IOC_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno) TH_LOG("reserved");
	EXPECT_EQ(-1, ioctl(dev, LMIG_IOC_HARVEST, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* A bitmap the module cannot write to: the bits wait for the next harvest. */
	m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 7 * PAGE);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 1;
	EXPECT_EQ(-EFAULT, harvest(dev, (uint64_t *)8, NPAGES, NULL));
	EXPECT_EQ(1, harvest(dev, bm, NPAGES, NULL));
	EXPECT_TRUE(bit(bm, 7));
	EXPECT_EQ(0, ioctl(dev, LMIG_IOC_STATS, &st));
	EXPECT_EQ(1, st.harvests);
	EXPECT_EQ(NPAGES * PAGE, st.length);
	munmap(m, PAGE);
	close(fd);
	close(dev);
}

/* ---- harvest exactness ---- */

static const int written[] = { 3, 17, 40, -1 };

FIXTURE(exact) {
	int dev, fd;
	struct child ch;
	uint64_t bm[WORDS(NPAGES)];
	struct lmig_harvest h;
};

FIXTURE_SETUP(exact)
{
	self->dev = dev_open();
	if (self->dev < 0)
		SKIP(return, "%s: %s", LMIG_DEVICE, strerror(errno));
	self->fd = memfd_pages(NPAGES);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, child_start(&self->ch, self->fd, NPAGES));
}

FIXTURE_TEARDOWN(exact)
{
	if (self->dev < 0)
		return;
	if (self->ch.pid > 0) {
		kill(self->ch.pid, SIGKILL);
		waitpid(self->ch.pid, NULL, 0);
	}
	close(self->fd);
	close(self->dev);
}

/* The writer's mapping is still in place at the harvest. */
TEST_F(exact, mapped)
{
	static const int again[] = { 5, -1 }, none[] = { -1 };

	ASSERT_EQ(0, child_do(&self->ch, 'M', 0));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL)) TH_LOG("idle");
	child_writes(&self->ch, written);
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, &self->h));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, written)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	EXPECT_EQ(NPAGES, self->h.pages);
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, none));
	child_writes(&self->ch, again);
	child_writes(&self->ch, again);
	EXPECT_EQ(1, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, again)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	/* Reads are not writes. */
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
	ASSERT_EQ(0, child_do(&self->ch, 'X', 0));
	self->ch.pid = 0;
}

/* A sub-range: bit 0 is the range's first page. */
TEST_F(exact, subrange)
{
	static const int want[] = { 0, 9, -1 }, w[] = { 8, 17, 63, 2, -1 };

	ASSERT_EQ(0, child_do(&self->ch, 'M', 0));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 8 * PAGE, 16 * PAGE));
	child_writes(&self->ch, w);
	EXPECT_EQ(2, harvest(self->dev, self->bm, 16, NULL));
	EXPECT_TRUE(bits_equal(self->bm, 16, want)) TH_LOG("got %s", bits_str(self->bm, 16));
}

/* The writer maps exactly the pages it writes, writes and unmaps them. */
TEST_F(exact, unmapped)
{
	for (const int *p = written; *p >= 0; p++)
		ASSERT_EQ(0, child_do(&self->ch, 'm', *p));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	child_writes(&self->ch, written);
	ASSERT_EQ(0, child_do(&self->ch, 'U', 0));
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, &self->h));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, written)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	EXPECT_EQ(3, self->h.notified);
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
}

/* The writer maps exactly the pages it writes, writes and exits. */
TEST_F(exact, exited)
{
	for (const int *p = written; *p >= 0; p++)
		ASSERT_EQ(0, child_do(&self->ch, 'm', *p));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	child_writes(&self->ch, written);
	ASSERT_EQ(0, child_do(&self->ch, 'X', 0));
	self->ch.pid = 0;
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, written)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
}

/*
 * The same with the writer named at attach and LMIG_ATTACH_PIDS_ONLY,
 * which changes nothing: one notifier for the writer's address space.
 */
TEST_F(exact, exited_pids_only)
{
	int32_t pid = self->ch.pid;
	struct lmig_attach a = { .fd = self->fd, .length = NPAGES * PAGE, .pids = (uintptr_t)&pid,
				 .npids = 1, .flags = LMIG_ATTACH_PIDS_ONLY };
	struct lmig_stats st;

	for (const int *p = written; *p >= 0; p++)
		ASSERT_EQ(0, child_do(&self->ch, 'm', *p));
	ASSERT_EQ(0, attach(self->dev, &a));
	ASSERT_EQ(0, ioctl(self->dev, LMIG_IOC_STATS, &st));
	EXPECT_EQ(1, st.mms);
	EXPECT_EQ(1, st.notifiers);
	child_writes(&self->ch, written);
	ASSERT_EQ(0, child_do(&self->ch, 'X', 0));
	self->ch.pid = 0;
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, written)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
}

/*
 * The writer maps the whole object and exits: the entries still present
 * when it goes are reported, not the whole mapping.  It wrote three pages
 * (write faults map one page each), so exactly those.
 */
TEST_F(exact, whole_mapping_torn_down)
{
	ASSERT_EQ(0, child_do(&self->ch, 'M', 0));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	child_writes(&self->ch, written);
	ASSERT_EQ(0, child_do(&self->ch, 'X', 0));
	self->ch.pid = 0;
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, written)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
}

/* A write(2) to a page present at both harvests is reported. */
TEST_F(exact, write_syscall)
{
	static const int want[] = { 9, 10, -1 };
	char buf[PAGE + 2];

	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	memset(buf, 0x5a, sizeof(buf));
	/* Two bytes into page 9's end and page 10 whole: pages 9 and 10. */
	ASSERT_EQ(sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 10 * PAGE - 2));
	EXPECT_EQ(2, harvest(self->dev, self->bm, NPAGES, &self->h));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, want)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	EXPECT_EQ(0, self->h.presence);
	EXPECT_EQ(0, self->h.flags);
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
}

/* A mapping made, written and removed between two harvests. */
TEST_F(exact, short_lived_mapping)
{
	char *m;

	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	m[33 * PAGE + 5] = 7;
	munmap(m, NPAGES * PAGE);
	/* The child maps, writes and unmaps the same way. */
	ASSERT_EQ(0, child_do(&self->ch, 'm', 20));
	child_writes(&self->ch, (const int[]){ 20, -1 });
	ASSERT_EQ(0, child_do(&self->ch, 'U', 0));
	EXPECT_EQ(2, harvest(self->dev, self->bm, NPAGES, &self->h));
	EXPECT_TRUE(bit(self->bm, 20) && bit(self->bm, 33)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	EXPECT_EQ(0, self->h.flags);
}

/* Without CAP_SYS_ADMIN, /dev/lmig does not open (EPERM). */
TEST(needs_cap_sys_admin)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	int st, fd;
	pid_t pid;

	fd = dev_open();
	if (fd < 0)
		SKIP(return, "%s: %s", LMIG_DEVICE, strerror(errno));
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (syscall(SYS_capget, &hdr, data))
			_exit(2);
		data[0].effective &= ~(1U << CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &hdr, data))
			_exit(3);
		fd = dev_open();
		_exit(fd < 0 && errno == EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st)) TH_LOG("1: opened or wrong errno; 2-3: capget/capset");
}

/* A writer that maps the object after the attach is found by the next harvest. */
TEST_F(exact, mapped_after_attach)
{
	static const int w2[] = { 20, -1 };

	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	ASSERT_EQ(0, child_do(&self->ch, 'm', 20));
	child_writes(&self->ch, w2);
	EXPECT_EQ(1, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, w2));
	child_writes(&self->ch, w2);
	ASSERT_EQ(0, child_do(&self->ch, 'X', 0));
	self->ch.pid = 0;
	EXPECT_EQ(1, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, w2)) TH_LOG("got %s", bits_str(self->bm, NPAGES));
}

/* ---- truncation and hole punching ---- */

TEST_F(exact, truncate)
{
	int want[NPAGES + 1], n = 0;
	char page[PAGE] = { 1 };

	ASSERT_EQ(0, child_do(&self->ch, 'M', 0));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	ASSERT_EQ(0, ftruncate(self->fd, 32 * PAGE));
	for (int p = 32; p < NPAGES; p++)
		want[n++] = p;
	want[n] = -1;
	EXPECT_EQ(32, harvest(self->dev, self->bm, NPAGES, &self->h));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, want)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	/* Holes stay holes: nothing new. */
	ASSERT_EQ(0, ftruncate(self->fd, NPAGES * PAGE));
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
	/* A page that appears is reported, even by write(2). */
	ASSERT_EQ(PAGE, pwrite(self->fd, page, PAGE, 50 * PAGE));
	EXPECT_EQ(1, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bit(self->bm, 50));
	/* The writer still maps it all and may write anywhere. */
	child_writes(&self->ch, written);
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, written)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
}

TEST_F(exact, punch_hole)
{
	static const int want[] = { 10, 11, 12, -1 }, w[] = { 11, -1 };
	uint8_t b = 0xff;

	ASSERT_EQ(0, child_do(&self->ch, 'M', 0));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	ASSERT_EQ(0, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       10 * PAGE, 3 * PAGE));
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, want)) TH_LOG("got %s",
		bits_str(self->bm, NPAGES));
	/* Punched, then refilled by a write through the mapping. */
	ASSERT_EQ(0, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       11 * PAGE, PAGE));
	child_writes(&self->ch, w);
	EXPECT_EQ(1, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bits_equal(self->bm, NPAGES, w)) TH_LOG("got %s", bits_str(self->bm, NPAGES));
	/* Refilled by write(2): a page that appears is reported. */
	ASSERT_EQ(1, pwrite(self->fd, &b, 1, 12 * PAGE));
	EXPECT_EQ(1, harvest(self->dev, self->bm, NPAGES, NULL));
	EXPECT_TRUE(bit(self->bm, 12));
	/*
	 * Punched, then faulted back in by a read through the mapping: present
	 * at both harvests, but its content is now zero.  A read fault maps
	 * shmem writable (clean), which folio_mkclean() counts as written, so
	 * the pages fault-around mapped with it may come too (documented).
	 */
	ASSERT_EQ(0, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       12 * PAGE, PAGE));
	ASSERT_EQ(0, child_do(&self->ch, 'R', 12));
	ASSERT_EQ(1, pread(self->fd, &b, 1, 12 * PAGE));
	EXPECT_EQ(0, b);
	EXPECT_LE(1, harvest(self->dev, self->bm, NPAGES, &self->h));
	EXPECT_TRUE(bit(self->bm, 12)) TH_LOG("got %s", bits_str(self->bm, NPAGES));
	TH_LOG("after punch and read fault: %s", bits_str(self->bm, NPAGES));
	/* Read again through the same, now write-protected, entries: nothing. */
	ASSERT_EQ(0, child_do(&self->ch, 'R', 12));
	EXPECT_EQ(0, harvest(self->dev, self->bm, NPAGES, NULL));
}

/* The object's last user closes it: the session keeps it. */
TEST_F(exact, object_closed)
{
	ASSERT_EQ(0, child_do(&self->ch, 'M', 0));
	ASSERT_EQ(0, attach_range(self->dev, self->fd, 0, NPAGES * PAGE));
	close(self->fd);
	self->fd = -1;
	child_writes(&self->ch, written);
	EXPECT_EQ(3, harvest(self->dev, self->bm, NPAGES, NULL));
	ASSERT_EQ(0, child_do(&self->ch, 'X', 0));
	self->ch.pid = 0;
	EXPECT_LE(0, harvest(self->dev, self->bm, NPAGES, NULL));
}

/* ---- nothing lost under a concurrent writer ---- */

#define NL_PAGES	1024

static void nl_writer(uint8_t *mem, volatile uint64_t *count)
{
	uint64_t x = 88172645463325252ULL;

	for (;;) {
		uint64_t *w, c = *count + 1;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w = (uint64_t *)(mem + x % NL_PAGES * PAGE);
		for (unsigned int i = 0; i < PAGE / 8; i += 64)
			w[i] = c ^ i;
		*count = c;
	}
}

static int nolost(struct __test_metadata *_metadata, bool churn)
{
	uint64_t bm[WORDS(NL_PAGES)], copied = 0, differ = 0;
	unsigned int harvests = 0;
	volatile uint64_t *count;
	uint8_t *mem, *dst, *src;
	struct timespec t0, t;
	int dev, fd, st;
	pid_t pid;

	dev = dev_open();
	fd = memfd_pages(NL_PAGES);
	if (dev < 0 || fd < 0)
		return -1;
	dst = malloc(NL_PAGES * PAGE);
	src = malloc(NL_PAGES * PAGE);
	count = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	mem = mmap(NULL, NL_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!dst || !src || count == MAP_FAILED || mem == MAP_FAILED)
		return -1;
	if (attach_range(dev, fd, 0, NL_PAGES * PAGE))
		return -1;
	pid = fork();
	if (pid == 0) {
		if (churn) {
			/* Leave the writes of each mapping to its teardown. */
			munmap(mem, NL_PAGES * PAGE);
			for (;;) {
				uint8_t *m = mmap(NULL, NL_PAGES * PAGE, PROT_READ | PROT_WRITE,
						  MAP_SHARED, fd, 0);

				/* Stay mapped across a harvest, then go. */
				for (int i = 0; i < 200; i++) {
					uint64_t c = *count + 1;

					m[(c * 2654435761ULL) % NL_PAGES * PAGE] = (uint8_t)c;
					*count = c;
				}
				usleep(100000);
				munmap(m, NL_PAGES * PAGE);
			}
		}
		nl_writer(mem, count);
		_exit(0);
	}
	/* The full copy comes after the attach. */
	if (pread(fd, dst, NL_PAGES * PAGE, 0) != NL_PAGES * PAGE)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (bool last = false;; harvests++) {
		long n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		/* At least 3 s and 10 harvests, however slow the machine. */
		if (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 > 3 && harvests >= 10) {
			kill(pid, SIGSTOP);
			waitpid(pid, &st, WUNTRACED);
			last = true;
		}
		n = harvest(dev, bm, NL_PAGES, NULL);
		if (n < 0)
			return -1;
		for (unsigned long p = 0; p < NL_PAGES; p++) {
			if (!bit(bm, p))
				continue;
			if (pread(fd, dst + p * PAGE, PAGE, p * PAGE) != PAGE)
				return -1;
			copied++;
		}
		if (last)
			break;
		usleep(2000);
	}
	if (pread(fd, src, NL_PAGES * PAGE, 0) != NL_PAGES * PAGE)
		return -1;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (unsigned long p = 0; p < NL_PAGES; p++)
		differ += !!memcmp(src + p * PAGE, dst + p * PAGE, PAGE);
	TH_LOG("%s: pages=%u writes=%llu harvests=%u copied=%llu differ=%llu",
	       churn ? "churn" : "steady", NL_PAGES, (unsigned long long)*count, harvests,
	       (unsigned long long)copied, (unsigned long long)differ);
	close(fd);
	close(dev);
	return differ ? 1 : 0;
}

TEST_F_TIMEOUT(exact, nolost_concurrent_writer, 60)
{
	EXPECT_EQ(0, nolost(_metadata, false));
}

/* The writer's mappings come and go while it writes (each lives across a harvest). */
TEST_F_TIMEOUT(exact, nolost_mapping_churn, 60)
{
	EXPECT_EQ(0, nolost(_metadata, true));
}

/* ---- tracepoints and debugfs ---- */

TEST(tracepoints)
{
	const char *tr = "/sys/kernel/tracing";
	static char buf[1 << 16];
	char path[256], want[64];
	uint64_t bm[WORDS(NPAGES)];
	int dev, fd;
	char *m;

	if (access("/sys/kernel/tracing/events", F_OK))
		mount("nodev", tr, "tracefs", 0, NULL);
	OPEN_DEV(dev);
	for (int i = 0; i < 3; i++) {
		static const char *const ev[] = { "lmig_attach", "lmig_detach", "lmig_harvest" };

		snprintf(path, sizeof(path), "%s/events/lmig/%s/format", tr, ev[i]);
		EXPECT_EQ(0, access(path, R_OK)) TH_LOG("%s", path);
	}
	snprintf(path, sizeof(path), "%s/events/lmig/enable", tr);
	ASSERT_EQ(0, kfile_write(path, "1", O_TRUNC));
	snprintf(path, sizeof(path), "%s/trace", tr);
	ASSERT_EQ(0, kfile_write(path, "", O_TRUNC));
	fd = memfd_pages(NPAGES);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, attach_range(dev, fd, 0, NPAGES * PAGE));
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	m[2 * PAGE] = m[9 * PAGE] = 1;
	EXPECT_EQ(2, harvest(dev, bm, NPAGES, NULL));
	close(dev);
	munmap(m, NPAGES * PAGE);
	close(fd);
	snprintf(path, sizeof(path), "%s/events/lmig/enable", tr);
	EXPECT_EQ(0, kfile_write(path, "0", O_TRUNC));
	snprintf(path, sizeof(path), "%s/trace", tr);
	ASSERT_EQ(0, kfile_read(path, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "lmig_attach: ")) TH_LOG("%s", buf);
	snprintf(want, sizeof(want), "folios=%d pages=%d dirty=2 ", NPAGES, NPAGES);
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "lmig_detach: ")) TH_LOG("%s", buf);
}

TEST(debugfs_stats)
{
	static char buf[4096];
	uint64_t bm[WORDS(NPAGES)];
	struct lmig_attach a;
	struct lmig_stats st;
	char path[128];
	int dev, fd;

	if (access("/sys/kernel/debug/lmig", F_OK))
		mount("nodev", "/sys/kernel/debug", "debugfs", 0, NULL);
	OPEN_DEV(dev);
	fd = memfd_pages(NPAGES);
	ASSERT_LE(0, fd);
	a = (struct lmig_attach){ .fd = fd, .offset = PAGE, .length = 8 * PAGE };
	ASSERT_EQ(0, attach(dev, &a));
	EXPECT_EQ(0, harvest(dev, bm, 8, NULL));
	EXPECT_EQ(0, harvest(dev, bm, 8, NULL));
	ASSERT_EQ(0, ioctl(dev, LMIG_IOC_STATS, &st));
	EXPECT_EQ(a.session, st.session);
	EXPECT_EQ(2, st.harvests);
	EXPECT_EQ(16, st.pages);
	EXPECT_EQ(PAGE, st.offset);
	snprintf(path, sizeof(path), "/sys/kernel/debug/lmig/%llu", (unsigned long long)a.session);
	ASSERT_EQ(0, kfile_read(path, buf, sizeof(buf))) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_NE(NULL, strstr(buf, "harvests 2\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "pages 16\n")) TH_LOG("%s", buf);
	close(dev);
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s outlived its session", path);
	close(fd);
}

/* The value of "name N" in a debugfs file's text, or -1. */
static long dbg_value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ' ')
			return atol(l + n + 1);
	return -1;
}

/*
 * The module's probes are placed and fire on this kernel: a new mapping
 * (shmem_mmap), faults (finish_fault for a write fault, filemap_map_pages
 * for fault-around on a read), write(2) (shmem_write_end) and fork of a
 * watched process.  Counted in /sys/kernel/debug/lmig/probes.
 */
TEST(probes_fire)
{
	static const char *const names[] = { "shmem_mmap", "shmem_write_end", "finish_fault",
					     "filemap_map_pages", "sched_process_fork" };
	static char before[1024], after[1024];
	const char *path = "/sys/kernel/debug/lmig/probes";
	uint64_t bm[WORDS(NPAGES)];
	int dev, fd, st;
	char c = 1, *m;
	pid_t pid;

	if (access("/sys/kernel/debug/lmig", F_OK))
		mount("nodev", "/sys/kernel/debug", "debugfs", 0, NULL);
	OPEN_DEV(dev);
	fd = memfd_pages(NPAGES);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, attach_range(dev, fd, 0, NPAGES * PAGE));
	ASSERT_EQ(0, kfile_read(path, before, sizeof(before))) TH_LOG("%s", path);
	EXPECT_EQ(1, dbg_value(before, "probes_ok")) TH_LOG("%s", before);
	/* Not in the page tables yet: the first read maps its neighbours too. */
	ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 32 * PAGE));
	ASSERT_EQ(PAGE, pwrite(fd, (char[PAGE]){ 3 }, PAGE, 8 * PAGE));
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	c = *(volatile char *)(m + 40 * PAGE);
	m[50 * PAGE] = c;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		m[51 * PAGE] = 2;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_LE(0, harvest(dev, bm, NPAGES, NULL));
	EXPECT_TRUE(bit(bm, 8) && bit(bm, 50) && bit(bm, 51)) TH_LOG("got %s", bits_str(bm, NPAGES));
	ASSERT_EQ(0, kfile_read(path, after, sizeof(after)));
	for (int i = 0; i < 5; i++) {
		EXPECT_LT(dbg_value(before, names[i]), dbg_value(after, names[i]))
			TH_LOG("%s did not fire: before %s after %s", names[i], before, after);
	}
	munmap(m, NPAGES * PAGE);
	close(fd);
	close(dev);
}

/* ---- THP-backed shmem: one write reports its whole 2 MiB folio ---- */

TEST(thp_folio)
{
	const char *knob = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
	const unsigned long size = 8UL << 20, huge = 2UL << 20, n = size / PAGE;
	uint64_t bm[WORDS(8UL << 20 >> 12)];
	struct lmig_harvest h;
	char old[256], *sel, *raw, *m;
	int dev, fd;

	if (kfile_read(knob, old, sizeof(old)))
		SKIP(return, "no %s", knob);
	sel = strchr(old, '[');
	ASSERT_NE(NULL, sel);
	*strchr(sel, ']') = 0;
	sel++;
	ASSERT_EQ(0, kfile_write(knob, "always", O_TRUNC));
	OPEN_DEV(dev);
	fd = memfd_create("lmig-thp", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	raw = mmap(NULL, size + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	m = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	m = mmap(m, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 1, size);
	ASSERT_EQ(0, attach_range(dev, fd, 0, size));
	EXPECT_EQ(0, harvest(dev, bm, n, &h));
	TH_LOG("%lu pages in %llu folios", n, (unsigned long long)h.folios);
	EXPECT_EQ(4, h.folios);
	m[5 * PAGE] = 2;
	EXPECT_EQ(512, harvest(dev, bm, n, &h));
	for (unsigned long i = 0; i < n; i++)
		if (bit(bm, i) != (i < 512)) {
			EXPECT_EQ(i < 512, bit(bm, i)) TH_LOG("page %lu", i);
			break;
		}
	m[(3 * 512 + 7) * PAGE] = 3;
	EXPECT_EQ(512, harvest(dev, bm, n, &h));
	EXPECT_TRUE(bit(bm, 3 * 512) && bit(bm, 4 * 512 - 1) && !bit(bm, 3 * 512 - 1));
	close(dev);
	munmap(raw, size + huge);
	close(fd);
	kfile_write(knob, sel, O_TRUNC);
}

/* ---- cost: logged for Documentation/kmod.md, checked only for sanity ---- */

static void cost(struct __test_metadata *_metadata, bool thp)
{
	const char *knob = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
	const unsigned long size = 64UL << 20, huge = 2UL << 20, n = size / PAGE;
	static uint64_t bm[WORDS(64UL << 20 >> 12)];
	char old[256], *sel = NULL, *raw, *m;
	struct lmig_harvest h;
	double idle = 0, one = 0;
	int dev, fd;

	if (thp) {
		if (kfile_read(knob, old, sizeof(old)) || !(sel = strchr(old, '[')))
			SKIP(return, "no %s", knob);
		*strchr(sel, ']') = 0;
		sel++;
		ASSERT_EQ(0, kfile_write(knob, "always", O_TRUNC));
	}
	OPEN_DEV(dev);
	fd = memfd_create("lmig-cost", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	raw = mmap(NULL, size + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	m = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	m = mmap(m, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 1, size);
	ASSERT_EQ(0, attach_range(dev, fd, 0, size));
	for (int r = 0; r < 3; r++) {
		EXPECT_EQ(0, harvest(dev, bm, n, &h));
		idle += h.ns / 3e6;
	}
	for (int r = 0; r < 3; r++) {
		for (unsigned long p = r; p < n; p += 100)
			m[p * PAGE] = (char)r;
		EXPECT_LE(n / 100, harvest(dev, bm, n, &h));
		one += h.ns / 3e6;
	}
	TH_LOG("%s: 64 MiB mapped, %llu folios: idle harvest %.2f ms, 1 %% of pages written %.2f ms "
	       "(%llu pages reported)", thp ? "THP shmem" : "4 KiB folios",
	       (unsigned long long)h.folios, idle, one, (unsigned long long)h.dirty);
	close(dev);
	munmap(raw, size + huge);
	close(fd);
	if (thp)
		kfile_write(knob, sel, O_TRUNC);
}

TEST_F_TIMEOUT(exact, harvest_cost_4k, 120)
{
	cost(_metadata, false);
}

TEST_F_TIMEOUT(exact, harvest_cost_thp, 120)
{
	cost(_metadata, true);
}

/* ---- rmmod with a session open (it unloads and reloads the module) ---- */

TEST(rmmod_with_open_session)
{
	const char *ko = getenv("LMIG_KO");
	uint64_t bm[WORDS(NPAGES)];
	int dev, fd, kfd;
	struct child ch;
	char *m;

	if (!ko)
		SKIP(return, "LMIG_KO (the module file to reload) is not set");
	OPEN_DEV(dev);
	fd = memfd_pages(NPAGES);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, child_start(&ch, fd, NPAGES));
	ASSERT_EQ(0, child_do(&ch, 'M', 0));
	ASSERT_EQ(0, attach_range(dev, fd, 0, NPAGES * PAGE));
	m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);

	EXPECT_NE(0, syscall(SYS_delete_module, "lmig", O_NONBLOCK));
	TH_LOG("delete_module with a session open: %s", strerror(errno));
	EXPECT_TRUE(errno == EBUSY || errno == EAGAIN);
	/* Still working, and the notifiers still fire. */
	m[0] = 1;
	child_writes(&ch, written);
	ASSERT_EQ(0, child_do(&ch, 'X', 0));
	EXPECT_EQ(4, harvest(dev, bm, NPAGES, NULL));
	EXPECT_TRUE(bit(bm, 0) && bits_equal(bm, NPAGES, (const int[]){ 0, 3, 17, 40, -1 }))
		TH_LOG("got %s", bits_str(bm, NPAGES));
	close(dev);
	/* The session's notifiers and file are gone with it: now it unloads. */
	EXPECT_EQ(0, syscall(SYS_delete_module, "lmig", O_NONBLOCK)) TH_LOG("%s", strerror(errno));
	EXPECT_NE(0, access(LMIG_DEVICE, F_OK));
	m[PAGE - 1] = 2;
	munmap(m, PAGE);
	kfd = open(ko, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, kfd) TH_LOG("%s: %s", ko, strerror(errno));
	EXPECT_EQ(0, syscall(SYS_finit_module, kfd, "", 0)) TH_LOG("reload: %s", strerror(errno));
	close(kfd);
	for (int i = 0; i < 50 && access(LMIG_DEVICE, F_OK); i++)
		usleep(20000);
	dev = dev_open();
	EXPECT_LE(0, dev);
	if (dev >= 0)
		close(dev);
	close(fd);
}

/* Tests run in the order of this file: the rmmod test last. */
TEST_HARNESS_MAIN

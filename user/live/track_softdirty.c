// SPDX-License-Identifier: GPL-2.0-only
/*
 * The soft-dirty tracker: the kernel's own per-process dirty bits
 * (CONFIG_MEM_SOFT_DIRTY, Documentation/admin-guide/mm/soft-dirty.rst).
 * Writing 4 to /proc/PID/clear_refs clears the soft-dirty bit of every
 * page table entry of PID and write-protects it; the next write by PID
 * faults and sets the bit again; bit 55 of /proc/PID/pagemap shows it
 * (PAGEMAP_SCAN with PAGE_IS_SOFT_DIRTY reports it as ranges, on 6.7 and
 * later).  A harvest costs a walk of the page tables, not a read of the
 * memory.
 *
 * No write may be lost.  Reading the bits and clearing them are two
 * system calls with no atomic form for soft-dirty (PAGEMAP_SCAN's
 * write-protecting variant works only with userfaultfd), and either
 * order loses something while PID runs:
 *
 *  - read, then clear: a page not yet written when the read passed it but
 *    written before the clear reached it has its bit cleared unseen; it
 *    was not reported, so its new content is never sent;
 *  - clear, then read: every write between the previous read and this
 *    clear is erased unseen.
 *
 * Reading twice around the clear does not help either: the first read
 * misses the window, the second comes after the clear.  So a harvest
 * stops PID (SIGSTOP, and waits until each of its threads is stopped),
 * reads the bits, clears them, and lets PID continue (SIGCONT).  With PID
 * stopped nothing sets a bit between the read and the clear, hence: a
 * write by PID between two harvests' clears sets its page's bit, nothing
 * clears that bit before the second harvest reads it, that harvest
 * reports the page, and the caller reads the page after the harvest
 * returns, i.e. after the write.  start() makes the first clear the same
 * way.  The stop lasts the read and the clear: a page table walk each.
 *
 * What this cannot see, and probe() refuses where it can tell:
 *  - writes by another process: the bits are PID's.  A shared object
 *    written through another process's mapping stays clean here;
 *  - writes that do not go through PID's page tables: write(2) to the
 *    object, DMA, and kernel threads writing into PID's memory while it
 *    is stopped (io_uring workers, vhost);
 *  - a shared page unmapped between harvests loses its bit with its page
 *    table entry: when PID unmaps (or remaps) a mapping of the object,
 *    the next harvest reports every page that mapping covered, and a
 *    mapping made and removed between two harvests, or pages dropped by
 *    madvise, are caught by the mapping watch (mapwatch.h, track.c),
 *    without which a shared object is refused; a shmem page swapped out
 *    loses its bit too, so objects need swap off; file pages on disk can
 *    be written back and reclaimed at any time, so only tmpfs objects and
 *    memfds are accepted;
 *  - content changed without a write fault.  In a shared object (hole
 *    punching, MADV_REMOVE, write(2)) the object check of track.c finds
 *    it.  In private memory MADV_DONTNEED (or MADV_FREE's reclaim) drops
 *    a page, which then reads as zeros; a write just before the drop took
 *    its bit with its entry; a read fault after it maps the zero page,
 *    clean.  So each harvest of private memory also reads what backs
 *    every page (pagemap's present and swapped bits, the page frame or
 *    swap entry), after PID runs again, and reports
 *      - a page that had a page frame or swap entry at the last harvest
 *        and has another or none now (a frame changed by migration or
 *        compaction is reported needlessly: one more send);
 *      - a page backed by nothing or by the zero page (its content is
 *        zeros) whose last sent content (tg.sent) is not zeros;
 *      - a page mapped from a file (the huge zero page shows so, as does
 *        a private file mapping's page that MADV_DONTNEED reverted)
 *        whose content, read and hashed, is not what was sent.
 *    A private page that is none of these and has no soft-dirty bit was
 *    installed before the last clear and not written since: write faults,
 *    copy-on-write, swap-in and migration all set or keep the bit.  The
 *    frame numbers are visible to CAP_SYS_ADMIN only: without them
 *    probe() refuses private memory.  Without tg.sent, pages backed by
 *    nothing, the zero page or a file are reported at every harvest.
 *
 * clear_refs clears the bits of the whole process, so two users of
 * soft-dirty on one process (CRIU, a second lmig) disturb each other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/magic.h>

#include <lmig/wire.h>

#include "chan/codec.h"
#include "lib/err.h"
#include "host/procfs.h"
#include "live/track.h"

#define PM_SOFT_DIRTY	(1ULL << 55)
#define PM_FILE		(1ULL << 61)
#define PM_SWAPPED	(1ULL << 62)
#define PM_PRESENT	(1ULL << 63)
#define PM_PFN		((1ULL << 55) - 1)	/* page frame, or swap type and offset */
/* What backs a page, as pagemap says: compared between harvests. */
#define PM_BACKING	(PM_PRESENT | PM_SWAPPED | PM_PFN)

/* The PAGEMAP_SCAN ioctl (Linux 6.7), for older uapi headers. */
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PAGE_IS_SOFT_DIRTY
#define PAGE_IS_SOFT_DIRTY	(1 << 7)
#endif

#define CHUNK_PAGES	65536	/* pagemap entries per pread: 512 KiB */
#define NREGIONS	1024	/* PAGEMAP_SCAN ranges per call */
#define STOP_WAIT_S	2.0	/* for every thread of PID to stop */

/* Pages [page, page + n) of the target are mapped at va in PID. */
struct seg {
	uint64_t va, page, n;
};

struct sd {
	pid_t pid;
	int pidfd;		/* every signal to pid goes through it */
	bool own_pidfd;
	int pagemap, clear_refs;
	bool scan;		/* PAGEMAP_SCAN works here */
	bool held;		/* PID was stopped before we stopped it: leave it so */
	struct seg *segs;
	unsigned int nsegs;
	uint64_t *backing;	/* private memory: per page, what backed it last harvest */
	uint64_t *buf;
	struct page_region *regs;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Does this kernel keep soft-dirty bits?  Without CONFIG_MEM_SOFT_DIRTY
 * clear_refs still accepts 4 (and does nothing) and bit 55 is never set,
 * so ask the kernel about a page of our own: clear, write, look.
 */
static bool pfn_visible;	/* pagemap shows page frames to us (CAP_SYS_ADMIN) */
static uint64_t zero_pfn;	/* the zero page's frame */

/* The zero page's frame: what a read of a page never written maps. */
static int learn_zero_pfn(void)
{
	volatile char *p = mmap(NULL, LMIG_PAGE_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	int fd;

	if (p == MAP_FAILED)
		return -1;
	(void)p[0];
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &e, sizeof(e), (uintptr_t)p / LMIG_PAGE_SIZE * 8) == sizeof(e) &&
	    (e & PM_PRESENT))
		zero_pfn = e & PM_PFN;
	if (fd >= 0)
		close(fd);
	munmap((void *)p, LMIG_PAGE_SIZE);
	return zero_pfn ? 0 : -1;
}

static int kernel_check(void)
{
	static int known;	/* 1 works, -1 not */
	static char why[160];
	long psz = sysconf(_SC_PAGESIZE);
	volatile char *p;
	uint64_t e = 0;
	int fd, ret = 0;

	if (known)
		return known > 0 ? 0 : lmig_err("%s", why);
	if (psz != LMIG_PAGE_SIZE)
		return lmig_err("soft-dirty needs %d-byte pages, this kernel has %ld",
				LMIG_PAGE_SIZE, psz);
	p = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return lmig_err_errno(errno, "mmap");
	p[0] = 1;
	fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "4", 1) != 1) {
		snprintf(why, sizeof(why), "the kernel does not clear soft-dirty bits "
			 "(/proc/self/clear_refs refuses 4: %s)", strerror(errno));
		ret = -1;
	}
	if (fd >= 0)
		close(fd);
	if (!ret) {
		p[0] = 2;
		fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || pread(fd, &e, sizeof(e), (uintptr_t)p / psz * 8) != sizeof(e)) {
			snprintf(why, sizeof(why), "cannot read /proc/self/pagemap: %s",
				 strerror(errno));
			ret = -1;
		} else if (!(e & PM_SOFT_DIRTY)) {
			snprintf(why, sizeof(why), "the kernel has no soft-dirty tracking "
				 "(CONFIG_MEM_SOFT_DIRTY off: pagemap bit 55 stays clear after a write)");
			ret = -1;
		}
		if (fd >= 0)
			close(fd);
		/* The page is present: a zero frame means they are hidden from us. */
		pfn_visible = !ret && (e & PM_PFN);
		if (pfn_visible && learn_zero_pfn()) {
			snprintf(why, sizeof(why), "cannot find the zero page's frame in "
				 "/proc/self/pagemap");
			ret = -1;
		}
	}
	munmap((void *)p, psz);
	known = ret ? -1 : 1;
	return ret ? lmig_err("%s", why) : 0;
}

/*
 * The mappings of the object in PID: every shared mapping of its inode,
 * read-only ones too (mprotect can make them writable), clipped to the
 * object.  Each is watched: a write through any of them sets a bit in
 * that mapping's page table entries only.  Private mappings never write
 * the object.
 */
static int object_segs(pid_t pid, int fd, uint64_t npages, struct seg **segs,
		       unsigned int *nsegs)
{
	char path[64], line[512];
	struct stat sb;
	unsigned int n = 0, cap = 0;
	struct seg *s = NULL;
	FILE *f;

	if (fstat(fd, &sb))
		return lmig_err_errno(errno, "fstat");
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return lmig_err_errno(errno, "cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, ino;
		unsigned int maj, min;
		char perms[8];
		uint64_t first, last;

		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &maj, &min,
			   &ino) != 7 || perms[3] != 's' || ino != sb.st_ino ||
		    maj != major(sb.st_dev) || min != minor(sb.st_dev))
			continue;
		first = off / LMIG_PAGE_SIZE;
		last = first + (hi - lo) / LMIG_PAGE_SIZE;	/* exclusive */
		if (first >= npages)
			continue;
		if (last > npages)
			last = npages;
		if (n == cap) {
			struct seg *t = realloc(s, (cap = cap ? 2 * cap : 8) * sizeof(*s));

			if (!t) {
				free(s);
				fclose(f);
				return lmig_err("out of memory");
			}
			s = t;
		}
		s[n++] = (struct seg){ .va = lo, .page = first, .n = last - first };
	}
	fclose(f);
	*segs = s;
	*nsegs = n;
	return 0;
}

/* The first page of [0, npages) no segment maps, or npages. */
static uint64_t first_unmapped(const struct seg *s, unsigned int n, uint64_t npages)
{
	uint64_t covered = 0;
	bool grew = true;

	/* Few segments, usually one: extend the covered prefix until it stops growing. */
	while (grew && covered < npages) {
		grew = false;
		for (unsigned int i = 0; i < n; i++)
			if (s[i].page <= covered && s[i].page + s[i].n > covered) {
				covered = s[i].page + s[i].n;
				grew = true;
			}
	}
	return covered < npages ? covered : npages;
}

static int open_proc(pid_t pid, const char *what, int flags)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return lmig_err_errno(errno, "cannot open %s", path);
	return fd;
}

static int sd_probe(const struct track_target *tg)
{
	uint64_t npages = (tg->size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;
	int fd;

	if (tg->pid <= 0)
		return lmig_err("soft-dirty needs the writing process (--pid): its bits are per process");
	if (tg->pid == getpid())
		return lmig_err("soft-dirty cannot watch its own process (it stops the writer to harvest)");
	if (kernel_check())
		return -1;
	fd = tg->pidfd > 0 ? tg->pidfd : pidfd_of(tg->pid);
	if (fd < 0 || pidfd_signal(fd, 0)) {
		int err = errno;

		if (fd >= 0 && fd != tg->pidfd)
			close(fd);
		return lmig_err_errno(err, "cannot signal process %d", (int)tg->pid);
	}
	if (fd != tg->pidfd)
		close(fd);
	if (tg->fd < 0 && !pfn_visible)
		return lmig_err("soft-dirty watches private memory only with the page frame numbers "
				"of /proc/PID/pagemap (CAP_SYS_ADMIN): without them a page dropped "
				"by MADV_DONTNEED and read again is not seen");
	fd = open_proc(tg->pid, "pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	close(fd);
	fd = open_proc(tg->pid, "clear_refs", O_WRONLY);
	if (fd < 0)
		return -1;
	close(fd);
	if (tg->fd >= 0) {
		struct statfs fs;
		struct seg *segs;
		unsigned int n;
		uint64_t hole;
		char line[256];
		int swaps = 0;
		FILE *f;

		if (fstatfs(tg->fd, &fs))
			return lmig_err_errno(errno, "fstatfs");
		if (fs.f_type != TMPFS_MAGIC)
			return lmig_err("soft-dirty watches only tmpfs objects and memfds (a file "
					"page can be reclaimed between harvests and lose its bit)");
		f = fopen("/proc/swaps", "re");
		while (f && fgets(line, sizeof(line), f))
			swaps++;
		if (f)
			fclose(f);
		if (swaps > 1)
			return lmig_err("swap is on: a shmem page swapped out between harvests "
					"loses its soft-dirty bit");
		if (object_segs(tg->pid, tg->fd, npages, &segs, &n))
			return -1;
		hole = first_unmapped(segs, n, npages);
		free(segs);
		if (hole < npages)
			return lmig_err("process %d does not map the object shared at offset %llu: "
					"soft-dirty sees only writes through its mappings",
					(int)tg->pid, (unsigned long long)hole * LMIG_PAGE_SIZE);
	}
	return 0;
}

static int task_state(pid_t pid, int tid, char *state)
{
	*state = proc_thread_state(pid, tid);
	return *state ? 0 : -1;
}

/* 1 if every thread of pid is stopped, 0 if not (*busy names one), -1 if pid is gone. */
static int all_stopped(pid_t pid, char *busy, size_t len)
{
	char path[64];
	struct dirent *d;
	int ret = 1, seen = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		int tid = atoi(d->d_name);
		char st;

		if (tid <= 0 || task_state(pid, tid, &st))
			continue;
		seen++;
		/* T stopped, t traced and stopped, Z/X exited: none writes. */
		if (!strchr("TtZX", st)) {
			snprintf(busy, len, "thread %d in state %c", tid, st);
			ret = 0;
			break;
		}
	}
	closedir(dir);
	return seen ? ret : -1;
}

static void resume(struct sd *sd)
{
	if (!sd->held)
		pidfd_signal(sd->pidfd, SIGCONT);
}

/* Stop every thread of PID and wait until none runs. */
static int stop(struct sd *sd)
{
	double deadline = mono() + STOP_WAIT_S;
	char busy[64] = "";
	int r = all_stopped(sd->pid, busy, sizeof(busy));

	if (r < 0)
		return lmig_err("process %d exited", (int)sd->pid);
	/* Stopped by someone else (job control, a debugger): keep it stopped after. */
	sd->held = r == 1;
	if (!sd->held && pidfd_signal(sd->pidfd, SIGSTOP))
		return lmig_err_errno(errno, "cannot stop process %d", (int)sd->pid);
	while ((r = all_stopped(sd->pid, busy, sizeof(busy))) == 0) {
		struct timespec ts = { 0, 50 * 1000 };

		if (mono() > deadline) {
			resume(sd);
			return lmig_err("process %d did not stop within %.0f s (%s)", (int)sd->pid,
					STOP_WAIT_S, busy);
		}
		nanosleep(&ts, NULL);
	}
	if (r < 0)
		return lmig_err("process %d exited", (int)sd->pid);
	return 0;
}

static int clear(struct sd *sd)
{
	if (write(sd->clear_refs, "4", 1) != 1)
		return lmig_err_errno(errno, "cannot clear the soft-dirty bits of process %d",
				      (int)sd->pid);
	return 0;
}

static void set_range(uint64_t *bitmap, uint64_t first, uint64_t n)
{
	for (uint64_t p = first; p < first + n; p++)
		bitmap_set(bitmap, p);
}

/* OR the soft-dirty pages of one segment into bitmap: pagemap, 8 bytes a page. */
static int read_pagemap(struct sd *sd, const struct seg *s, uint64_t *bitmap)
{
	for (uint64_t done = 0; done < s->n;) {
		uint64_t n = s->n - done < CHUNK_PAGES ? s->n - done : CHUNK_PAGES;
		off_t off = (s->va / LMIG_PAGE_SIZE + done) * 8;
		ssize_t got = pread(sd->pagemap, sd->buf, n * 8, off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 8)
			return lmig_err_errno(got < 0 ? errno : EIO,
					      "cannot read the page map of process %d", (int)sd->pid);
		n = got / 8;
		for (uint64_t i = 0; i < n; i++)
			if (sd->buf[i] & PM_SOFT_DIRTY)
				bitmap_set(bitmap, s->page + done + i);
		done += n;
	}
	return 0;
}

/* The same with PAGEMAP_SCAN: the kernel returns only the dirty ranges. */
static int scan_pagemap(struct sd *sd, const struct seg *s, uint64_t *bitmap)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.start = s->va,
		.end = s->va + s->n * LMIG_PAGE_SIZE,
		.vec = (uintptr_t)sd->regs,
		.vec_len = NREGIONS,
		.category_mask = PAGE_IS_SOFT_DIRTY,
		.return_mask = PAGE_IS_SOFT_DIRTY,
	};

	while (a.start < a.end) {
		long n = ioctl(sd->pagemap, PAGEMAP_SCAN, &a);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return lmig_err_errno(errno, "PAGEMAP_SCAN of process %d", (int)sd->pid);
		for (long i = 0; i < n; i++)
			set_range(bitmap, s->page + (sd->regs[i].start - s->va) / LMIG_PAGE_SIZE,
				  (sd->regs[i].end - sd->regs[i].start) / LMIG_PAGE_SIZE);
		if (a.walk_end <= a.start)
			return lmig_err("PAGEMAP_SCAN of process %d made no progress", (int)sd->pid);
		a.start = a.walk_end;
	}
	return 0;
}

/*
 * Private memory: the pages whose content may have changed without a
 * soft-dirty bit (see the top of this file) into bitmap, and what backs
 * each page now into sd->backing.  With report false, only the latter.
 * Runs with PID going: a page changed after this read is found by the
 * next.
 */
static int backing_check(struct tracker *t, struct sd *sd, uint64_t *bitmap, bool report)
{
	static const uint8_t zero[LMIG_PAGE_SIZE];
	const uint64_t *sent = t->tg.sent, zero_hash = codec_page_hash(zero);
	uint8_t *page = NULL;
	int ret = 0;

	for (uint64_t done = 0; done < t->npages && !ret;) {
		uint64_t n = t->npages - done < CHUNK_PAGES ? t->npages - done : CHUNK_PAGES;
		off_t off = (t->tg.start / LMIG_PAGE_SIZE + done) * 8;
		ssize_t got = pread(sd->pagemap, sd->buf, n * 8, off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 8) {
			ret = lmig_err_errno(got < 0 ? errno : EIO,
					     "cannot read the page map of process %d", (int)sd->pid);
			break;
		}
		n = got / 8;
		for (uint64_t i = 0; i < n && !ret; i++) {
			uint64_t e = sd->buf[i], now = e & PM_BACKING, *was = &sd->backing[done + i];
			uint64_t p = done + i;
			bool mapped = e & (PM_PRESENT | PM_SWAPPED);

			if (!report) {
				*was = now;
				continue;
			}
			if ((*was & (PM_PRESENT | PM_SWAPPED)) && now != *was) {
				bitmap_set(bitmap, p);
			} else if (!mapped || ((e & PM_PRESENT) && (e & PM_PFN) == zero_pfn)) {
				if (!sent || sent[p] != zero_hash)
					bitmap_set(bitmap, p);
			} else if ((e & PM_PRESENT) && (e & PM_FILE) && !bitmap_test(bitmap, p)) {
				if (!sent) {
					bitmap_set(bitmap, p);
				} else {
					if (!page && !(page = malloc(LMIG_PAGE_SIZE)))
						ret = lmig_err("out of memory");
					if (!ret)
						ret = track_read(&t->tg, p * LMIG_PAGE_SIZE, page,
								 LMIG_PAGE_SIZE);
					if (!ret && codec_page_hash(page) != sent[p])
						bitmap_set(bitmap, p);
				}
			}
			*was = now;
		}
		done += n;
	}
	free(page);
	return ret;
}

/* Where the target is mapped now: the object's mappings, or the given range. */
static int current_segs(struct tracker *t, struct seg **segs, unsigned int *n)
{
	if (t->tg.fd >= 0)
		return object_segs(t->tg.pid, t->tg.fd, t->npages, segs, n);
	*segs = malloc(sizeof(**segs));
	if (!*segs)
		return lmig_err("out of memory");
	**segs = (struct seg){ .va = t->tg.start, .page = 0, .n = t->npages };
	*n = 1;
	return 0;
}

static void sd_stop_tracker(struct tracker *t)
{
	struct sd *sd = t->priv;

	if (!sd)
		return;
	if (sd->pagemap >= 0)
		close(sd->pagemap);
	if (sd->clear_refs >= 0)
		close(sd->clear_refs);
	if (sd->own_pidfd && sd->pidfd >= 0)
		close(sd->pidfd);
	free(sd->segs);
	free(sd->backing);
	free(sd->buf);
	free(sd->regs);
	free(sd);
	t->priv = NULL;
}

static int sd_start(struct tracker *t)
{
	struct sd *sd = calloc(1, sizeof(*sd));
	struct pm_scan_arg a = { .size = sizeof(a), .category_mask = PAGE_IS_SOFT_DIRTY,
				 .return_mask = PAGE_IS_SOFT_DIRTY };
	int ret;

	if (!sd)
		return lmig_err("out of memory");
	t->priv = sd;
	sd->pid = t->tg.pid;
	sd->pagemap = sd->clear_refs = -1;
	sd->own_pidfd = t->tg.pidfd <= 0;
	sd->pidfd = sd->own_pidfd ? pidfd_of(sd->pid) : t->tg.pidfd;
	if (sd->pidfd < 0) {
		lmig_err_errno(errno, "pidfd_open of process %d", (int)sd->pid);
		goto fail;
	}
	sd->pagemap = open_proc(sd->pid, "pagemap", O_RDONLY);
	sd->clear_refs = open_proc(sd->pid, "clear_refs", O_WRONLY);
	sd->buf = malloc(CHUNK_PAGES * 8);
	sd->regs = calloc(NREGIONS, sizeof(*sd->regs));
	if (t->tg.fd < 0 && !(sd->backing = calloc(t->npages, 8))) {
		lmig_err("out of memory");
		goto fail;
	}
	/* Still the process of the pidfd: the /proc files opened are its own. */
	if (sd->pagemap >= 0 && !pidfd_alive(sd->pidfd)) {
		lmig_err("process %d exited", (int)sd->pid);
		goto fail;
	}
	if (sd->pagemap < 0 || sd->clear_refs < 0 || !sd->buf || !sd->regs) {
		if (!lmig_has_err())
			lmig_err("out of memory");
		goto fail;
	}
	/*
	 * An empty range: ENOTTY before 6.7, EINVAL where the category is not
	 * known, else success with nothing to undo.
	 */
	sd->scan = ioctl(sd->pagemap, PAGEMAP_SCAN, &a) >= 0;
	if (stop(sd))
		goto fail;
	ret = current_segs(t, &sd->segs, &sd->nsegs);
	if (!ret)
		ret = clear(sd);
	resume(sd);
	if (!ret && sd->backing)
		ret = backing_check(t, sd, NULL, false);
	if (!ret)
		return 0;
fail:
	sd_stop_tracker(t);
	return -1;
}

static int sd_harvest(struct tracker *t, uint64_t *bitmap)
{
	struct sd *sd = t->priv;
	struct seg *segs;
	unsigned int n;
	int ret = 0;

	if (stop(sd))
		return -1;
	if (current_segs(t, &segs, &n)) {
		resume(sd);
		return -1;
	}
	/*
	 * A mapping gone since the last harvest took its bits with it: what
	 * was written through it is unknown, so report all it covered.  A new
	 * mapping needs nothing: the kernel marks a new mapping soft-dirty.
	 */
	for (unsigned int i = 0; i < sd->nsegs; i++) {
		bool kept = false;

		for (unsigned int j = 0; j < n && !kept; j++)
			kept = !memcmp(&sd->segs[i], &segs[j], sizeof(segs[j]));
		if (!kept)
			set_range(bitmap, sd->segs[i].page, sd->segs[i].n);
	}
	for (unsigned int i = 0; i < n && !ret; i++)
		ret = sd->scan ? scan_pagemap(sd, &segs[i], bitmap) :
				 read_pagemap(sd, &segs[i], bitmap);
	/* Only once the bits are read, and before PID runs again. */
	if (!ret)
		ret = clear(sd);
	resume(sd);
	free(sd->segs);
	sd->segs = segs;
	sd->nsegs = n;
	if (!ret && sd->backing)
		ret = backing_check(t, sd, bitmap, true);
	return ret;
}

const struct tracker_ops track_softdirty_ops = {
	.name = "soft-dirty",
	.probe = sd_probe,
	.start = sd_start,
	.harvest = sd_harvest,
	.stop = sd_stop_tracker,
	.watch_maps = true,
};

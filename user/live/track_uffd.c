// SPDX-License-Identifier: GPL-2.0-only
/*
 * The uffd tracker: the writer's page tables say which pages it wrote.
 *
 * The process that writes the memory registers it with a userfaultfd of
 * its own in asynchronous write-protect mode (UFFD_FEATURE_WP_ASYNC,
 * Linux 6.7): a write to a protected page is then resolved by the kernel
 * without any message and just leaves the page's PTE unprotected.  We
 * read those PTEs with the PAGEMAP_SCAN ioctl of /proc/PID/pagemap
 * (PAGE_IS_WRITTEN) and protect them again, so a harvest costs a walk of
 * the page tables instead of a read of the memory.
 *
 * Two ways to harvest, both losing no write:
 *
 *  - atomic: PAGEMAP_SCAN with PM_SCAN_WP_MATCHING reports the written
 *    pages and protects them again under the page-table lock, in one
 *    call.  The default.
 *  - two-step: where the kernel refuses PM_SCAN_WP_MATCHING on another
 *    process's pagemap (EPERM), scan read-only, then protect each
 *    reported range with UFFDIO_WRITEPROTECT on the writer's own
 *    userfaultfd, taken from it with pidfd_getfd().  A write between the
 *    scan and the protection is to a page already reported, which the
 *    caller reads after the harvest; a page not reported is not
 *    protected, so its write shows up in the next harvest.
 *    LMIG_UFFD_TWO_STEP=1 in the environment forces this way.
 *
 * The userfaultfd must belong to the writer: registration is per address
 * space, and a userfaultfd we created would watch ours.  So only a process
 * that set it up itself can be tracked (lmig dirty --uffd, or a VMM that
 * does the same).  For a shared object the pages are watched through the
 * writer's mappings of it, found in /proc/PID/maps; a write through another
 * process's mapping is not seen.  Holes punched in the object and write(2)
 * to it are found by the object check of tracker_harvest() (track.c).
 *
 * A shared object is watched only with the mapping watch (mapwatch.h,
 * track.c): a mapping the writer makes after start is not registered, and
 * one it removes, moves or zaps (MADV_DONTNEED) drops the written state of
 * its entries.  When the watch saw such a change, remap() follows the
 * object's mappings again: it registers the new ones with the writer's
 * userfaultfd (a userfaultfd acts on the address space that created it,
 * whoever calls the ioctl) and protects them, before tracker_harvest()
 * compares every page with what was sent.  Between two harvests the
 * harvest reads the mappings it watched that are still there and leaves
 * the others to that comparison.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/err.h"
#include "live/track.h"
#include "lib/uapi_compat.h"

#define VEC_LEN		1024	/* page regions per PAGEMAP_SCAN call */
#define MAX_UFFDS	8	/* userfaultfds of the process we try */
#define MAX_RANGES	64	/* mappings of one object we follow */

/* Virtual addresses [va, end) of the writer hold the target's pages from page on. */
struct vrange {
	uint64_t va, end, page;
};

struct uffd_priv {
	int pagemap;		/* /proc/PID/pagemap */
	int uffd;		/* the writer's userfaultfd (two-step), or -1 */
	int reg;		/* the one remap() registers with, or -1 */
	bool two_step;
	unsigned int nr;
	struct vrange r[MAX_RANGES];
	struct page_region vec[VEC_LEN];
};

static int range_cmp(const void *a, const void *b)
{
	const struct vrange *x = a, *y = b;

	return x->page < y->page ? -1 : x->page > y->page ? 1 : x->va < y->va ? -1 : x->va > y->va;
}

/*
 * The writer's virtual ranges that hold the target, from /proc/PID/maps:
 * for private memory the range itself, which must be mapped throughout;
 * for a shared object its writable shared mappings, which together must
 * cover every page of it (a page the writer does not map cannot be
 * watched).
 */
static int find_ranges(const struct track_target *tg, struct vrange *r, unsigned int *nr)
{
	uint64_t npages = (tg->size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE, covered = 0;
	uint64_t want = tg->start;	/* private: mapped up to here */
	char path[64], line[4096 + 256];
	struct stat sb;
	unsigned int n = 0;
	FILE *f;

	if (tg->fd >= 0 && fstat(tg->fd, &sb))
		return lmig_err_errno(errno, "cannot stat the memory object");
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)tg->pid);
	f = fopen(path, "re");
	if (!f)
		return lmig_err_errno(errno, "cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long va, end, off, ino;
		unsigned int maj, min;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &va, &end, perms, &off, &maj,
			   &min, &ino) != 7)
			continue;
		if (tg->fd < 0) {
			/* VMAs are listed in address order: follow them from start on. */
			if (va <= want && end > want)
				want = end;
			continue;
		}
		if (ino != (unsigned long long)sb.st_ino || maj != major(sb.st_dev) ||
		    min != minor(sb.st_dev) || perms[1] != 'w' || perms[3] != 's')
			continue;
		/* Clip the mapping to the object's pages. */
		uint64_t first = off / LMIG_PAGE_SIZE, pages = (end - va) / LMIG_PAGE_SIZE;

		if (first >= npages)
			continue;
		if (first + pages > npages)
			pages = npages - first;
		if (n == MAX_RANGES) {
			fclose(f);
			return lmig_err("process %d maps the object more than %d times", (int)tg->pid,
					MAX_RANGES);
		}
		r[n++] = (struct vrange){ va, va + pages * LMIG_PAGE_SIZE, first };
	}
	fclose(f);
	if (tg->fd < 0) {
		if (want < tg->start + tg->size)
			return lmig_err("process %d has nothing mapped at %llx", (int)tg->pid,
					(unsigned long long)want);
		r[0] = (struct vrange){ tg->start, tg->start + tg->size, 0 };
		*nr = 1;
		return 0;
	}
	if (!n)
		return lmig_err("process %d has no writable shared mapping of the object", (int)tg->pid);
	qsort(r, n, sizeof(*r), range_cmp);
	for (unsigned int i = 0; i < n && r[i].page <= covered; i++)
		if (r[i].page + (r[i].end - r[i].va) / LMIG_PAGE_SIZE > covered)
			covered = r[i].page + (r[i].end - r[i].va) / LMIG_PAGE_SIZE;
	if (covered < npages)
		return lmig_err("process %d maps only part of the object (page %llu of %llu is not "
				"mapped), and pages it does not map cannot be watched", (int)tg->pid,
				(unsigned long long)covered, (unsigned long long)npages);
	*nr = n;
	return 0;
}

/* The descriptor numbers of the userfaultfds process pid holds. */
static int find_uffds(pid_t pid, int *fds, unsigned int max)
{
	char dir[64], link[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return lmig_err_errno(errno, "cannot list %s", dir);
	while ((de = readdir(d)) && n < (int)max) {
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (!strcmp(link, "anon_inode:[userfaultfd]"))
			fds[n++] = atoi(de->d_name);
	}
	closedir(d);
	return n;
}

/* A copy of descriptor fd of process pid in ours. */
static int take_fd(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), ret, err;

	if (pidfd < 0)
		return lmig_err_errno(errno, "pidfd_open of process %d", (int)pid);
	ret = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	err = errno;
	close(pidfd);
	if (ret < 0)
		return lmig_err_errno(err, "cannot take the userfaultfd (fd %d) of process %d", fd,
				      (int)pid);
	return ret;
}

static int open_pagemap(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lmig_err_errno(errno, "cannot open %s", path);
	return fd;
}

/*
 * One PAGEMAP_SCAN call from *from to end; advances *from to where the
 * walk stopped.  Returns the regions filled, or -1 with errno set.
 */
static int scan(int pagemap, uint64_t *from, uint64_t end, uint64_t flags, uint64_t inverted,
		uint64_t mask, uint64_t anyof, struct page_region *vec)
{
	struct pm_scan_arg a = {
		.size = sizeof(a), .flags = flags, .start = *from, .end = end,
		.vec = (uintptr_t)vec, .vec_len = VEC_LEN,
		.category_inverted = inverted, .category_mask = mask,
		.category_anyof_mask = anyof, .return_mask = PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED,
	};
	int n = ioctl(pagemap, PAGEMAP_SCAN, &a);

	if (n >= 0) {
		/* A walk that made no progress would loop for ever. */
		if (a.walk_end <= *from && *from < end) {
			errno = EIO;
			return -1;
		}
		*from = a.walk_end;
	}
	return n;
}

static int no_uffd_err(pid_t pid)
{
	return lmig_err("process %d holds no userfaultfd: the writer must create one and register "
			"the memory for async write-protection (e.g. lmig dirty --uffd)", (int)pid);
}

static int not_registered_err(pid_t pid, uint64_t a, uint64_t b)
{
	return lmig_err("%llx-%llx of process %d is not registered with a userfaultfd for async "
			"write-protection", (unsigned long long)a, (unsigned long long)b, (int)pid);
}

static int uffd_probe(const struct track_target *tg)
{
	struct vrange r[MAX_RANGES];
	struct page_region *vec;
	int fds[MAX_UFFDS], pagemap, nfd, ret = -1;
	unsigned int nr;

	if (tg->pid <= 0)
		return lmig_err("needs --pid, the process that writes the memory and holds the "
				"userfaultfd registering it");
	if (find_ranges(tg, r, &nr))
		return -1;
	pagemap = open_pagemap(tg->pid);
	if (pagemap < 0)
		return -1;
	vec = calloc(VEC_LEN, sizeof(*vec));
	if (!vec) {
		close(pagemap);
		return lmig_err("out of memory");
	}
	nfd = find_uffds(tg->pid, fds, MAX_UFFDS);
	if (nfd < 0)
		goto out;
	/* Any page of the ranges the writer's userfaultfd does not protect asynchronously? */
	for (unsigned int i = 0; i < nr; i++) {
		uint64_t from = r[i].va;

		while (from < r[i].end) {
			int n = scan(pagemap, &from, r[i].end, 0, PAGE_IS_WPALLOWED,
				     PAGE_IS_WPALLOWED, 0, vec);

			if (n < 0 && (errno == ENOTTY || errno == EINVAL)) {
				lmig_err("this kernel has no PAGEMAP_SCAN ioctl (Linux 6.7 or later "
					 "needed)");
				goto out;
			}
			if (n < 0) {
				lmig_err_errno(errno, "PAGEMAP_SCAN of process %d", (int)tg->pid);
				goto out;
			}
			if (n > 0) {
				if (nfd == 0)
					no_uffd_err(tg->pid);
				else
					not_registered_err(tg->pid, vec[0].start, vec[0].end);
				goto out;
			}
		}
	}
	if (nfd == 0) {
		/* Registered through a userfaultfd someone else holds: none to protect with. */
		no_uffd_err(tg->pid);
		goto out;
	}
	/* Fail here, with the cause, if we may not take it. */
	int fd = take_fd(tg->pid, fds[0]);

	if (fd < 0)
		goto out;
	close(fd);
	ret = 0;
out:
	free(vec);
	close(pagemap);
	return ret;
}

static void uffd_stop(struct tracker *t)
{
	struct uffd_priv *p = t->priv;

	if (!p)
		return;
	if (p->pagemap >= 0)
		close(p->pagemap);
	if (p->uffd >= 0)
		close(p->uffd);
	if (p->reg >= 0 && p->reg != p->uffd)
		close(p->reg);
	free(p);
	t->priv = NULL;
}

static int protect(int uffd, uint64_t a, uint64_t b)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = a, .len = b - a }, .mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	return 0;
}

/*
 * The two-step way: find which of the writer's userfaultfds registered the
 * memory by protecting all of it (what start must do anyway) with each.
 */
static int start_two_step(struct tracker *t, struct uffd_priv *p)
{
	int fds[MAX_UFFDS], nfd = find_uffds(t->tg.pid, fds, MAX_UFFDS);

	if (nfd < 0)
		return -1;
	for (int i = 0; i < nfd; i++) {
		int fd = take_fd(t->tg.pid, fds[i]);
		unsigned int j;

		if (fd < 0)
			return -1;
		for (j = 0; j < p->nr; j++)
			if (protect(fd, p->r[j].va, p->r[j].end))
				break;
		if (j == p->nr) {
			p->uffd = p->reg = fd;
			return 0;
		}
		close(fd);
		if (errno != ENOENT && errno != EINVAL)
			return lmig_err_errno(errno, "UFFDIO_WRITEPROTECT in process %d",
					      (int)t->tg.pid);
	}
	if (!nfd)
		return no_uffd_err(t->tg.pid);
	return not_registered_err(t->tg.pid, p->r[0].va, p->r[p->nr - 1].end);
}

/*
 * Report the pages of r written since the last harvest and protect them
 * again.  -2 when (part of) r is not registered.
 */
static int harvest_range(struct tracker *t, struct uffd_priv *p, const struct vrange *r,
			 uint64_t *bitmap)
{
	uint64_t from = r->va;

	while (from < r->end) {
		int n;

		if (p->two_step)
			/* Written pages, and any page not registered: those are errors. */
			n = scan(p->pagemap, &from, r->end, 0, PAGE_IS_WPALLOWED, 0,
				 PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED, p->vec);
		else
			n = scan(p->pagemap, &from, r->end, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				 0, PAGE_IS_WRITTEN, 0, p->vec);
		if (n < 0 && errno == EPERM)
			return not_registered_err(t->tg.pid, r->va, r->end), -2;
		if (n < 0)
			return lmig_err_errno(errno, "PAGEMAP_SCAN of process %d", (int)t->tg.pid);
		for (int i = 0; i < n; i++) {
			const struct page_region *v = &p->vec[i];

			if (p->two_step) {
				if (!(v->categories & PAGE_IS_WPALLOWED))
					return not_registered_err(t->tg.pid, v->start, v->end), -2;
				if (protect(p->uffd, v->start, v->end)) {
					if (errno == ENOENT || errno == EINVAL)
						return not_registered_err(t->tg.pid, v->start, v->end), -2;
					return lmig_err_errno(errno, "UFFDIO_WRITEPROTECT in process %d",
							      (int)t->tg.pid);
				}
			}
			for (uint64_t a = v->start; a < v->end; a += LMIG_PAGE_SIZE)
				bitmap_set(bitmap, r->page + (a - r->va) / LMIG_PAGE_SIZE);
		}
	}
	return 0;
}

static int uffd_start(struct tracker *t)
{
	struct uffd_priv *p = calloc(1, sizeof(*p));
	const char *env = getenv("LMIG_UFFD_TWO_STEP");

	if (!p)
		return lmig_err("out of memory");
	p->pagemap = -1;
	p->uffd = -1;
	p->reg = -1;
	t->priv = p;
	if (find_ranges(&t->tg, p->r, &p->nr))
		goto err;
	p->pagemap = open_pagemap(t->tg.pid);
	if (p->pagemap < 0)
		goto err;
	p->two_step = env && *env && strcmp(env, "0");
	/*
	 * Protect every page: what is written from now on is reported.  Try the
	 * atomic way first; an EPERM from it can mean the kernel does not allow
	 * it on another process, which the two-step way tells apart from memory
	 * that is not registered.
	 */
	for (unsigned int i = 0; !p->two_step && i < p->nr; i++) {
		uint64_t from = p->r[i].va;

		while (from < p->r[i].end) {
			if (scan(p->pagemap, &from, p->r[i].end,
				 PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, 0, PAGE_IS_WRITTEN, 0,
				 p->vec) >= 0)
				continue;
			if (errno != EPERM) {
				lmig_err_errno(errno, "PAGEMAP_SCAN of process %d", (int)t->tg.pid);
				goto err;
			}
			p->two_step = true;
			break;
		}
	}
	if (p->two_step && start_two_step(t, p))
		goto err;
	return 0;
err:
	uffd_stop(t);
	return -1;
}

static bool has_range(const struct vrange *v, unsigned int n, const struct vrange *r)
{
	for (unsigned int i = 0; i < n; i++)
		if (!memcmp(&v[i], r, sizeof(*r)))
			return true;
	return false;
}

static int uffd_harvest(struct tracker *t, uint64_t *bitmap)
{
	struct uffd_priv *p = t->priv;
	struct vrange now[MAX_RANGES];
	unsigned int nr, kept = 0;

	if (find_ranges(&t->tg, now, &nr))
		return -1;
	if (!t->mw) {
		/*
		 * Private memory: a writer that remapped it would write where we
		 * do not look.
		 */
		if (nr != p->nr || memcmp(now, p->r, nr * sizeof(*now)))
			return lmig_err("process %d remapped the memory since tracking started",
					(int)t->tg.pid);
		for (unsigned int i = 0; i < p->nr; i++)
			if (harvest_range(t, p, &p->r[i], bitmap))
				return -1;
		return 0;
	}
	/*
	 * The mappings watched that are still there; a new one waits for
	 * remap(), a gone one's writes for the comparison (see track.c).
	 */
	for (unsigned int i = 0; i < p->nr; i++) {
		struct mapwatch_sample s;

		if (!has_range(now, nr, &p->r[i]))
			continue;
		int r = harvest_range(t, p, &p->r[i], bitmap);

		if (!r) {
			p->r[kept++] = p->r[i];
			continue;
		}
		if (r != -2)
			return -1;
		/*
		 * Not registered any more.  Replaced by a counted call (munmap and
		 * mmap at the same place) since the last harvest, or in one now:
		 * this harvest or the next remaps and compares.  Else someone
		 * unregistered it, and its writes would go unseen.
		 */
		mapwatch_read(t->mw, &s);
		if (!mapwatch_moved(&t->mws, &s))
			return -1;
		lmig_err_clear();
	}
	p->nr = kept;
	return 0;
}

/* Register [a, b) with the writer's userfaultfd for write-protection. */
static int do_register(int fd, uint64_t a, uint64_t b)
{
	struct uffdio_register reg = {
		.range = { .start = a, .len = b - a }, .mode = UFFDIO_REGISTER_MODE_WP,
	};

	while (ioctl(fd, UFFDIO_REGISTER, &reg))
		if (errno != EINTR)
			return -1;
	return 0;
}

/*
 * Register r with one of the writer's userfaultfds: the one used before,
 * else the first that accepts it (registering again with the same one is
 * allowed; another one that registered it refuses with EBUSY).
 */
static int register_range(struct tracker *t, struct uffd_priv *p, const struct vrange *r)
{
	int fds[MAX_UFFDS], nfd;

	if (p->reg >= 0 && !do_register(p->reg, r->va, r->end))
		return 0;
	if (p->two_step)
		return lmig_err_errno(errno, "cannot register %llx-%llx of process %d with its "
				      "userfaultfd", (unsigned long long)r->va,
				      (unsigned long long)r->end, (int)t->tg.pid);
	nfd = find_uffds(t->tg.pid, fds, MAX_UFFDS);
	if (nfd < 0)
		return -1;
	for (int i = 0; i < nfd; i++) {
		int fd = take_fd(t->tg.pid, fds[i]);

		if (fd < 0)
			return -1;
		if (!do_register(fd, r->va, r->end)) {
			if (p->reg >= 0)
				close(p->reg);
			p->reg = fd;
			return 0;
		}
		close(fd);
	}
	return lmig_err_errno(errno, "cannot register %llx-%llx of process %d with any of its "
			      "userfaultfds", (unsigned long long)r->va, (unsigned long long)r->end,
			      (int)t->tg.pid);
}

/*
 * Follow the object's mappings anew (the mapping watch saw a change):
 * register every one with the writer's userfaultfd and protect it; what
 * was written through one since is reported.  tracker_harvest() then
 * compares every page, so a write before the protection is not lost.
 */
static int uffd_remap(struct tracker *t, uint64_t *bitmap)
{
	struct uffd_priv *p = t->priv;
	struct vrange now[MAX_RANGES], kept[MAX_RANGES];
	unsigned int nr, nkept = 0;

	if (find_ranges(&t->tg, now, &nr))
		return -1;
	for (unsigned int i = 0; i < nr; i++) {
		struct mapwatch_sample s;
		int r = register_range(t, p, &now[i]);

		if (!r && p->two_step && protect(p->uffd, now[i].va, now[i].end))
			r = lmig_err_errno(errno, "UFFDIO_WRITEPROTECT in process %d",
					   (int)t->tg.pid);
		else if (!r && !p->two_step)
			r = harvest_range(t, p, &now[i], bitmap);
		if (!r) {
			kept[nkept++] = now[i];
			continue;
		}
		/*
		 * Gone or changed since find_ranges(), by a call the watch counts
		 * (the writer unmapped it meanwhile): the next harvest remaps.
		 */
		mapwatch_read(t->mw, &s);
		if (!mapwatch_moved(&t->mws, &s))
			return -1;
		lmig_err_clear();
	}
	memcpy(p->r, kept, nkept * sizeof(*kept));
	p->nr = nkept;
	return 0;
}

const struct tracker_ops track_uffd_ops = {
	.name = "uffd",
	.probe = uffd_probe,
	.start = uffd_start,
	.harvest = uffd_harvest,
	.stop = uffd_stop,
	.watch_maps = true,
	.remap = uffd_remap,
};

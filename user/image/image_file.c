// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/err.h"
#include "image/image_file.h"

/*
 * The named partial file of the one receive in progress (only where the
 * filesystem has no O_TMPFILE, or during the commit's link-and-rename),
 * removed if lmig is interrupted: a stopped receive leaves nothing behind,
 * like a failed one.  An unnamed O_TMPFILE image needs no removal: it goes
 * with lmig's last reference to it.
 */
static volatile int partial_dfd = -1;
static const char *volatile partial_name;

static void on_signal(int sig)
{
	static const char msg[] = "lmig recv: interrupted, partial image removed\n";
	const char *p = partial_name;

	if (p && partial_dfd >= 0)
		unlinkat(partial_dfd, p, 0);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(128 + sig);
	_exit(128 + sig);
}

static void guard_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* The name the handler removes: dfd/name, or nothing (name NULL). */
static void guard_partial(int dfd, const char *name)
{
	partial_name = NULL;
	partial_dfd = dfd;
	partial_name = name;
}

int src_image_open(struct src_image *im, const char *path)
{
	struct stat sb;
	struct statfs fs;

	*im = (struct src_image){ .fd = -1 };
	im->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (im->fd < 0)
		return lmig_err_errno(errno, "cannot open %s", path);
	if (fstat(im->fd, &sb))
		goto err_errno;
	if (!S_ISREG(sb.st_mode)) {
		lmig_err("%s is not a regular file, shm file or memfd", path);
		goto err;
	}
	if (sb.st_size == 0) {
		lmig_err("%s is empty: nothing to migrate", path);
		goto err;
	}
	im->size = sb.st_size;
	im->npages = (im->size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;
	im->in_memory = fstatfs(im->fd, &fs) == 0 &&
			(fs.f_type == TMPFS_MAGIC || fs.f_type == HUGETLBFS_MAGIC);
	/* One sequential pass: let the kernel read ahead on disk-backed images. */
	posix_fadvise(im->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
err_errno:
	lmig_err_errno(errno, "cannot stat %s", path);
err:
	close(im->fd);
	im->fd = -1;
	return -1;
}

void src_image_close(struct src_image *im)
{
	if (im->fd >= 0)
		close(im->fd);
	im->fd = -1;
}

static const char *file_kind(mode_t m)
{
	return S_ISLNK(m) ? "a symbolic link" : S_ISDIR(m) ? "a directory" :
	       S_ISFIFO(m) ? "a fifo" : S_ISSOCK(m) ? "a socket" :
	       S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

/*
 * An existing PATH is replaced at the commit only if it is a regular file:
 * whatever else sits there was put there on purpose, by someone.
 */
static int check_target(struct dst_image *im)
{
	struct stat sb;

	if (fstatat(im->dfd, im->name, &sb, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT)
			return 0;
		im->err = errno;
		return lmig_err_errno(errno, "cannot stat %s", im->path);
	}
	if (S_ISREG(sb.st_mode))
		return 0;
	im->err = EEXIST;
	im->not_regular = true;
	return lmig_err("%s exists and is %s: refusing to replace it", im->path,
			file_kind(sb.st_mode));
}

/* Give the unnamed image the name dfd/name; fails with EEXIST if taken. */
static int link_tmpfile(struct dst_image *im, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", im->fd);
	if (linkat(AT_FDCWD, proc, im->dfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	/* No /proc: the direct way, which needs CAP_DAC_READ_SEARCH. */
	return linkat(im->fd, "", im->dfd, name, AT_EMPTY_PATH);
}

int dst_image_create(struct dst_image *im, const char *path, uint64_t size)
{
	const char *slash = strrchr(path, '/');
	struct statvfs vfs;
	char *dir;

	*im = (struct dst_image){ .fd = -1, .dfd = -1, .size = size };
	im->path = strdup(path);
	im->name = strdup(slash ? slash + 1 : path);
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!im->path || !im->name || !dir) {
		free(dir);
		im->err = ENOMEM;
		lmig_err("out of memory");
		goto err;
	}
	if (!im->name[0] || !strcmp(im->name, ".") || !strcmp(im->name, "..")) {
		free(dir);
		im->err = EISDIR;
		lmig_err("%s names a directory, not a file", path);
		goto err;
	}
	/* Every name below is looked up in this one directory, never through a link. */
	im->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im->dfd < 0) {
		im->err = errno;
		lmig_err_errno(errno, "cannot open the directory %s", dir);
		free(dir);
		goto err;
	}
	free(dir);
	guard_install();
	if (check_target(im))
		goto err;
	/*
	 * Before anything is created: a sparse file of any size is cheap until
	 * written.  A filesystem that keeps no block count (ramfs, f_blocks 0)
	 * has no free space to compare with; --max-size still bounds it.
	 */
	if (fstatvfs(im->dfd, &vfs) == 0 && vfs.f_blocks &&
	    size > (uint64_t)vfs.f_bavail * vfs.f_frsize) {
		im->err = ENOSPC;
		lmig_err("%s: the sender announced %llu bytes, its filesystem has %llu free",
			 path, (unsigned long long)size,
			 (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		dst_image_abort(im);
		return -2;
	}
	im->fd = openat(im->dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (im->fd >= 0) {
		if (asprintf(&im->tmp, "%s (unnamed until the commit)", path) < 0)
			im->tmp = NULL;
	} else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
		/* No O_TMPFILE here: a new name of our own, never an existing file or link. */
		if (asprintf(&im->tmp, "%s.partial", path) < 0 ||
		    asprintf(&im->partial, "%s.partial", im->name) < 0) {
			im->err = ENOMEM;
			lmig_err("out of memory");
			goto err;
		}
		im->fd = openat(im->dfd, im->partial,
				O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (im->fd < 0) {
			im->err = errno;
			if (errno == EEXIST)
				lmig_err("%s exists (another receive, or one that was killed): remove it",
					 im->tmp);
			else
				lmig_err_errno(errno, "cannot create %s", im->tmp);
			free(im->partial);
			im->partial = NULL;
			goto err;
		}
		guard_partial(im->dfd, im->partial);
	} else {
		im->err = errno;
		lmig_err_errno(errno, "cannot create an image file in the directory of %s", path);
		goto err;
	}
	if (!im->tmp) {
		im->err = ENOMEM;
		lmig_err("out of memory");
		goto err;
	}
	if (ftruncate(im->fd, (off_t)size)) {
		im->err = errno;
		lmig_err_errno(errno, "cannot size %s to %llu bytes", im->tmp,
			       (unsigned long long)size);
		goto err;
	}
	return 0;
err:
	dst_image_abort(im);
	return -1;
}

int dst_image_open_in_place(struct dst_image *im, const char *path, uint64_t size)
{
	struct stat sb;

	*im = (struct dst_image){ .fd = -1, .dfd = -1, .size = size, .in_place = true };
	im->path = strdup(path);
	im->tmp = strdup(path);
	if (!im->path || !im->tmp) {
		im->err = ENOMEM;
		lmig_err("out of memory");
		goto err;
	}
	im->fd = open(path, O_RDWR | O_CLOEXEC);
	if (im->fd < 0) {
		im->err = errno;
		lmig_err_errno(errno, "cannot open %s", path);
		goto err;
	}
	if (fstat(im->fd, &sb) || !S_ISREG(sb.st_mode)) {
		im->err = EINVAL;
		im->not_regular = true;
		lmig_err("%s is not a regular file", path);
		goto err;
	}
	if ((uint64_t)sb.st_size != size) {
		im->err = EINVAL;
		lmig_err("%s holds %llu bytes, the sender announced %llu", path,
			 (unsigned long long)sb.st_size, (unsigned long long)size);
		goto err;
	}
	return 0;
err:
	dst_image_abort(im);
	return -1;
}

int dst_image_commit(struct dst_image *im, int sync)
{
	char tmpname[NAME_MAX + 1];

	if (sync && fdatasync(im->fd))
		return lmig_err_errno(errno, "cannot flush %s", im->tmp);
	if (im->in_place) {
		dst_image_abort(im);	/* only closes and frees */
		return 0;
	}
	if (check_target(im))
		return -1;
	if (!im->partial) {
		/* Where PATH is free, one link makes it appear, complete. */
		if (link_tmpfile(im, im->name) == 0)
			goto linked;
		if (errno != EEXIST)
			return lmig_err_errno(errno, "cannot link the image as %s", im->path);
		/*
		 * PATH exists: link under a fresh random name, then rename over
		 * PATH, so PATH is either the old image or the new one.  A name
		 * that exists is never reused: linkat() does not follow it.
		 */
		for (int i = 0;; i++) {
			uint64_t rnd;

			if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
				return lmig_err_errno(errno, "getrandom");
			snprintf(tmpname, sizeof(tmpname), ".%.200s.%016llx", im->name,
				 (unsigned long long)rnd);
			im->partial = tmpname;
			guard_partial(im->dfd, tmpname);
			if (link_tmpfile(im, tmpname) == 0)
				break;
			guard_partial(-1, NULL);
			im->partial = NULL;
			if (errno != EEXIST || i == 100)
				return lmig_err_errno(errno, "cannot link the image in the directory of %s",
						      im->path);
		}
	}
	if (renameat(im->dfd, im->partial, im->dfd, im->name)) {
		lmig_err_errno(errno, "cannot rename %s to %s",
			       im->partial == tmpname ? "the image" : im->tmp, im->path);
		unlinkat(im->dfd, im->partial, 0);
		guard_partial(-1, NULL);
		if (im->partial == tmpname)
			im->partial = NULL;
		return -1;
	}
linked:
	guard_partial(-1, NULL);
	if (im->partial != tmpname)
		free(im->partial);
	im->partial = NULL;
	if (sync)
		fsync(im->dfd);
	dst_image_abort(im);	/* only closes and frees now */
	return 0;
}

void dst_image_abort(struct dst_image *im)
{
	guard_partial(-1, NULL);
	if (im->fd >= 0)
		close(im->fd);
	if (im->partial && im->dfd >= 0)
		unlinkat(im->dfd, im->partial, 0);
	if (im->dfd >= 0)
		close(im->dfd);
	free(im->partial);
	free(im->tmp);
	free(im->path);
	free(im->name);
	*im = (struct dst_image){ .fd = -1, .dfd = -1, .err = im->err,
				  .not_regular = im->not_regular };
}

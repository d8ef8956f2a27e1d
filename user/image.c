// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "err.h"
#include "image.h"

/*
 * The partial file of the one receive in progress, removed if lmig is
 * interrupted: a stopped receive leaves nothing behind, like a failed one.
 */
static char *volatile partial_path;

static void on_signal(int sig)
{
	static const char msg[] = "lmig recv: interrupted, partial image removed\n";
	char *p = partial_path;

	if (p)
		unlink(p);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(128 + sig);
	_exit(128 + sig);
}

static void guard_partial(char *path)
{
	struct sigaction sa = { .sa_handler = on_signal };

	partial_path = path;
	if (path) {
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
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

int dst_image_create(struct dst_image *im, const char *path, uint64_t size)
{
	struct stat sb;

	*im = (struct dst_image){ .fd = -1, .size = size };
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return lmig_err("%s is a directory", path);
	im->path = strdup(path);
	if (asprintf(&im->tmp, "%s.partial", path) < 0 || !im->path)
		return lmig_err("out of memory");
	guard_partial(im->tmp);
	im->fd = open(im->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (im->fd < 0) {
		lmig_err_errno(errno, "cannot create %s", im->tmp);
		goto err;
	}
	if (ftruncate(im->fd, (off_t)size)) {
		lmig_err_errno(errno, "cannot size %s to %llu bytes", im->tmp,
			       (unsigned long long)size);
		dst_image_abort(im);
		return -1;
	}
	return 0;
err:
	guard_partial(NULL);
	free(im->path);
	free(im->tmp);
	im->path = im->tmp = NULL;
	return -1;
}

int dst_image_commit(struct dst_image *im, int sync)
{
	char *dir;
	int dfd;

	if (sync && fdatasync(im->fd))
		return lmig_err_errno(errno, "cannot flush %s", im->tmp);
	if (rename(im->tmp, im->path))
		return lmig_err_errno(errno, "cannot rename %s to %s", im->tmp, im->path);
	guard_partial(NULL);
	dir = strdup(im->path);
	if (sync && dir) {
		dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	free(dir);
	close(im->fd);
	im->fd = -1;
	free(im->tmp);
	free(im->path);
	im->tmp = im->path = NULL;
	return 0;
}

void dst_image_abort(struct dst_image *im)
{
	guard_partial(NULL);
	if (im->fd >= 0)
		close(im->fd);
	if (im->tmp)
		unlink(im->tmp);
	free(im->tmp);
	free(im->path);
	*im = (struct dst_image){ .fd = -1 };
}

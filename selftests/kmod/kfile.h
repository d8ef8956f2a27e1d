/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Small files of /proc, /sys and tracefs for the module's selftests
 * (built for the VM alone, so kept here rather than in selftests/lib).
 */
#ifndef SELFTEST_KMOD_KFILE_H
#define SELFTEST_KMOD_KFILE_H

#include <fcntl.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* path's text, at most len - 1 bytes and a NUL: 0, or -1 (open or read failed). */
static inline int kfile_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0, got = 0;

	if (fd < 0)
		return -1;
	while (got < (ssize_t)len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	return n < 0 ? -1 : 0;
}

/*
 * Write s to path opened O_WRONLY | flags (O_TRUNC where opening with it
 * means something, as tracefs's trace file, which it empties): 0, or -1.
 */
static inline int kfile_write(const char *path, const char *s, int flags)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

#endif

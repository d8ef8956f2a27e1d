// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "files.h"

#define PAGE	4096

int scratch_make(char *dir, size_t len, uint64_t need)
{
	const char *base = getenv("TMPDIR");
	struct statvfs sv;

	if (!statvfs("/dev/shm", &sv) && (uint64_t)sv.f_bavail * sv.f_frsize > need + (64 << 20))
		base = "/dev/shm";
	else if (!base || !*base)
		base = "/tmp";
	if ((size_t)snprintf(dir, len, "%s/lmig-selftest-XXXXXX", base) >= len || !mkdtemp(dir)) {
		fprintf(stderr, "# mkdtemp in %s: %s\n", base, strerror(errno));
		return -1;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (remove(path) && errno != ENOENT)
		fprintf(stderr, "# cleanup: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

void scratch_remove(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int fill_random(uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = getrandom(p, n, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

/*
 * Words and line numbers: repetitive like logs or page tables, but no
 * two pages alike, so lz4 has real work on every page.
 */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *const words[] = {
		"migration", "page", "dirty", "kernel", "vcpu", "memory", "the",
		"of", "and", "guest", "host", "channel", "frame", "checksum",
		"zero", "bitmap",
	};
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t off = 0;
	unsigned long line = 0;

	while (off < n) {
		char buf[160];
		int len = snprintf(buf, sizeof(buf), "%08lu:", line++);

		for (int w = 0; w < 8; w++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			len += snprintf(buf + len, sizeof(buf) - len, " %s", words[x % 16]);
		}
		buf[len++] = '\n';
		if ((size_t)len > n - off)
			len = n - off;
		memcpy(p + off, buf, len);
		off += len;
	}
}

int image_write(const char *path, enum img_kind kind, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	uint8_t *m = MAP_FAILED;
	int ret = -1;

	if (fd < 0 || ftruncate(fd, size))
		goto out;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto out;
	switch (kind) {
	case IMG_RANDOM:
		if (fill_random(m, size))
			goto out;
		break;
	case IMG_ZERO_HEAVY:
		for (uint64_t off = 3 * PAGE; off < size; off += 4 * PAGE)
			if (fill_random(m + off, size - off < PAGE ? size - off : PAGE))
				goto out;
		break;
	case IMG_TEXT:
		fill_text(m, size);
		break;
	case IMG_ZERO:
		break;	/* ftruncate() already made it zero */
	}
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "# writing image %s: %s\n", path, strerror(errno));
	if (m != MAP_FAILED)
		munmap(m, size);
	if (fd >= 0)
		close(fd);
	return ret;
}

static const uint8_t *map_file(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	void *m = MAP_FAILED;

	if (fd < 0)
		return NULL;
	if (!fstat(fd, &sb)) {
		*size = sb.st_size;
		/* mmap() refuses length 0; an empty file maps to a dummy. */
		m = mmap(NULL, sb.st_size ? sb.st_size : 1, PROT_READ, MAP_SHARED, fd, 0);
	}
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

int64_t image_zero_pages(const char *path)
{
	size_t size;
	const uint8_t *m = map_file(path, &size);
	int64_t zero = 0;

	if (!m)
		return -1;
	for (size_t off = 0; off < size; off += PAGE) {
		size_t n = size - off < PAGE ? size - off : PAGE;
		size_t i = 0;

		while (i < n && !m[off + i])
			i++;
		zero += i == n;
	}
	munmap((void *)m, size ? size : 1);
	return zero;
}

int files_equal(const char *a, const char *b)
{
	size_t sa, sb;
	const uint8_t *ma = map_file(a, &sa), *mb = map_file(b, &sb);
	int ret = -1;

	if (ma && mb)
		ret = sa == sb && !memcmp(ma, mb, sa);
	if (ma)
		munmap((void *)ma, sa ? sa : 1);
	if (mb)
		munmap((void *)mb, sb ? sb : 1);
	return ret;
}

bool path_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

int file_copy(const char *from, const char *to, unsigned int mode)
{
	size_t size;
	const uint8_t *m = map_file(from, &size);
	int fd = -1, ret = -1;

	if (!m)
		goto out;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, m, size) != (ssize_t)size || fchmod(fd, mode))
		goto out;
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "# copying %s to %s: %s\n", from, to, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (m)
		munmap((void *)m, size ? size : 1);
	return ret;
}

int file_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n = fd >= 0 ? write(fd, buf, len) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

bool holds_file_in(int pid, const char *dir)
{
	char fds[64], path[340], target[600];
	size_t dl = strlen(dir);
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(fds, sizeof(fds), "/proc/%d/fd", pid);
	d = opendir(fds);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", fds, de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		found = !strncmp(target, dir, dl) && target[dl] == '/';
	}
	closedir(d);
	return found;
}

uint8_t *file_load(const char *path, uint64_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	struct stat sb;
	uint64_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf || fstat(fd, &sb) || (uint64_t)sb.st_size != size)
		goto fail;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, got);

		if (n <= 0)
			goto fail;
		got += n;
	}
	close(fd);
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

int write_str(const char *dir, const char *name, const char *val)
{
	char path[600];
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
	close(fd);
	return ret;
}

int read_str(const char *dir, const char *name, char *buf, size_t len)
{
	char path[600];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

char *read_line(const char *dir, const char *name, char *buf, size_t len)
{
	if (read_str(dir, name, buf, len))
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

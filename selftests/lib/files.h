/* SPDX-License-Identifier: GPL-2.0-only */
/* Scratch directories and memory images for the end-to-end tests. */
#ifndef SELFTEST_FILES_H
#define SELFTEST_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum img_kind {
	IMG_RANDOM,		/* getrandom(): nothing to compress, no zero page */
	IMG_ZERO_HEAVY,		/* of every 4 pages 3 are zero, the 4th random */
	IMG_TEXT,		/* text-like: every page compresses well */
	IMG_ZERO,		/* all zero */
};

/*
 * mkdtemp() a directory for one test, on /dev/shm when it has room for
 * need bytes (images are written and read back at memory speed), else
 * under $TMPDIR or /tmp.  Returns 0, or -1.
 */
int scratch_make(char *dir, size_t len, uint64_t need);
/*
 * rm -rf dir, staying on its file system (a mount that failed to come
 * off is left alone rather than emptied).
 */
void scratch_remove(const char *dir);

int image_write(const char *path, enum img_kind kind, uint64_t size);
/*
 * Pages of the image that are entirely zero (the last one padded with
 * zeros), or -1.
 */
int64_t image_zero_pages(const char *path);
/* 1 when both files have the same size and bytes, 0 when not, -1 on error. */
int files_equal(const char *a, const char *b);
bool path_exists(const char *path);
/* Create or replace path with len bytes from buf. */
int file_write(const char *path, const void *buf, size_t len);
/* A whole file of exactly size bytes (malloc'd), or NULL. */
uint8_t *file_load(const char *path, uint64_t size);
/* Copy a file, giving the copy this mode. */
int file_copy(const char *from, const char *to, unsigned int mode);
/*
 * Does process pid hold an open file inside dir (a name under "dir/",
 * such as the "dir/#1234 (deleted)" of an unnamed O_TMPFILE)?
 */
bool holds_file_in(int pid, const char *dir);

/*
 * Small files of /proc, /sys and cgroups, dir/name: write val (no
 * truncation, as those files want), read up to len - 1 bytes into buf;
 * 0, or -1.
 */
int write_str(const char *dir, const char *name, const char *val);
int read_str(const char *dir, const char *name, char *buf, size_t len);
/* The first line of dir/name, without the newline; "" if unreadable. */
char *read_line(const char *dir, const char *name, char *buf, size_t len);

#endif

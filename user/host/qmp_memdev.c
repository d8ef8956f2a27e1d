// SPDX-License-Identifier: GPL-2.0-only
/* A QEMU guest's shared RAM backends and their files (qmp_memdev.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/json_read.h"
#include "host/qmp.h"
#include "host/qmp_memdev.h"

#define HUGETLBFS_MAGIC_	0x958458f6

/* qom-get /objects/ID PROP as a string; 0 or -1 (absent or not a string). */
static int qom_str(struct qmp *q, const char *id, const char *prop, char *out, size_t len)
{
	char args[256];
	struct jr_doc d;
	int ret, r;

	snprintf(args, sizeof(args), "{\"path\": \"/objects/%s\", \"property\": \"%s\"}", id, prop);
	if (qmp_exec_doc(q, "qom-get", args, &d, &ret))
		return -1;
	r = jr_str(&d, ret, out, len);
	jr_free(&d);
	return r;
}

static bool qom_bool(struct qmp *q, const char *id, const char *prop)
{
	char args[256];
	struct jr_doc d;
	bool v = false;
	int ret;

	snprintf(args, sizeof(args), "{\"path\": \"/objects/%s\", \"property\": \"%s\"}", id, prop);
	if (qmp_exec_doc(q, "qom-get", args, &d, &ret)) {
		lmig_err_clear();
		return false;
	}
	if (jr_bool(&d, ret, &v))
		v = false;
	jr_free(&d);
	return v;
}

/*
 * QEMU's memfd descriptors of this size: how many, the first one's
 * number in *fd.
 */
static int memfds_of_size(pid_t pid, uint64_t size, int *fd)
{
	char dir[64], link[320], target[256];
	struct dirent *de;
	struct stat sb;
	int found = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strncmp(target, "/memfd:memory-backend-memfd", 27))
			continue;
		if (stat(link, &sb) || (uint64_t)sb.st_size != size)
			continue;
		if (!found++)
			*fd = atoi(de->d_name);
	}
	closedir(d);
	return found;
}

static enum qmem_why one_block(struct qmp *q, struct qmem_block *b, char *detail, size_t dlen)
{
	char type[64];
	struct statfs fs;
	int fd = -1, n;

	snprintf(detail, dlen, "%s", b->id);
	if (qom_str(q, b->id, "type", type, sizeof(type)))
		return QMEM_QMP;
	if (!strcmp(type, "memory-backend-memfd")) {
		b->kind = QMEM_MEMFD;
		b->hugetlb = qom_bool(q, b->id, "hugetlb");
		n = memfds_of_size(q->pid, b->size, &fd);
		if (n < 0) {
			lmig_err_errno(errno, "cannot list QEMU's descriptors (/proc/%d/fd)", (int)q->pid);
			return QMEM_QMP;
		}
		if (n == 0)
			return QMEM_NO_FD;
		if (n > 1)
			return QMEM_AMBIGUOUS;
		snprintf(b->path, sizeof(b->path), "/proc/%d/fd/%d", (int)q->pid, fd);
		return QMEM_OK;
	}
	if (!strcmp(type, "memory-backend-file")) {
		b->kind = QMEM_FILE;
		if (qom_str(q, b->id, "mem-path", b->path, sizeof(b->path)))
			return QMEM_QMP;
		b->hugetlb = statfs(b->path, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC_;
		return QMEM_OK;
	}
	snprintf(detail, dlen, "%s (%s)", b->id, type);
	return QMEM_UNKNOWN_TYPE;
}

/* [{"id": "m0", "size": 536870912, "share": true, ...}, ...] */
static enum qmem_why parse_doc(const struct jr_doc *d, int arr, struct qmem_block *b,
			       unsigned int *n)
{
	*n = 0;
	if (jr_type(d, arr) != JR_ARRAY)
		return QMEM_QMP;
	for (int m = jr_first(d, arr); m >= 0; m = jr_next(d, m)) {
		bool share = false;
		uint64_t size;
		char id[64];

		if (jr_bool(d, jr_get(d, m, "share"), &share) || !share)
			continue;
		if (jr_str(d, jr_get(d, m, "id"), id, sizeof(id)) ||
		    jr_u64(d, jr_get(d, m, "size"), &size) || !size)
			continue;	/* a backend without an id is none of -object's */
		if (*n == QMEM_MAX)
			return QMEM_TOO_MANY;
		b[*n] = (struct qmem_block){ .size = size };
		snprintf(b[*n].id, sizeof(b[*n].id), "%s", id);
		(*n)++;
	}
	return *n ? QMEM_OK : QMEM_NO_SHARED;
}

enum qmem_why qmem_parse(const char *json, size_t len, struct qmem_block *b, unsigned int *n)
{
	struct jr_doc d;
	enum qmem_why why;

	*n = 0;
	if (jr_parse(&d, json, len, &jr_limits_default, NULL))
		return QMEM_QMP;
	why = parse_doc(&d, 0, b, n);
	jr_free(&d);
	return why;
}

enum qmem_why qmem_list(struct qmp *q, struct qmem_block *b, unsigned int *n,
			char *detail, size_t dlen)
{
	enum qmem_why why;
	struct jr_doc d;
	int ret;

	*n = 0;
	detail[0] = 0;
	if (qmp_exec_doc(q, "query-memdev", NULL, &d, &ret))
		return QMEM_QMP;
	why = parse_doc(&d, ret, b, n);
	jr_free(&d);
	if (why == QMEM_QMP)
		lmig_err("QMP %s: query-memdev: the reply is not an array", q->path);
	if (why != QMEM_OK)
		return why;
	for (unsigned int i = 0; i < *n; i++) {
		why = one_block(q, &b[i], detail, dlen);
		if (why != QMEM_OK)
			return why;
	}
	return QMEM_OK;
}

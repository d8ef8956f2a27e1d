// SPDX-License-Identifier: GPL-2.0-only
/* A QEMU guest's shared RAM backends and their files (qmp_memdev.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

/* ---- pure: the texts QEMU and /proc give (qmp_memdev.h) --------------- */

/* Whether the name at p is exactly id (ended by a blank, "\r", "\n" or the text's end). */
static bool name_is(const char *p, const char *id)
{
	size_t n = strlen(id);

	return n && !strncmp(p, id, n) && (!p[n] || strchr(" \r\n", p[n]));
}

/*
 * The line at *cur into buf (NUL-terminated, cut at len - 1), *cur on to
 * the next one: a field scanned in buf never runs on into the next line.
 * 0 at the text's end.
 */
static int next_line(const char **cur, char *buf, size_t len)
{
	const char *p = *cur, *nl;
	size_t n;

	if (!p || !*p)
		return 0;
	nl = strchr(p, '\n');
	n = nl ? (size_t)(nl - p) : strlen(p);
	*cur = nl ? nl + 1 : p + n;
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = 0;
	return 1;
}

int qmem_mtree_gpas(const char *text, const char *id, uint64_t *gpa, int max)
{
	char ln[512];
	int found = 0;

	while (next_line(&text, ln, sizeof(ln))) {
		unsigned long long start, end;
		int pos = -1;

		/* "  0000000001000000-0000000001ffffff (prio 0, ram): ram1[ @OFF][ KVM]" */
		if (sscanf(ln, " %llx-%llx (prio %*d, ram): %n", &start, &end, &pos) != 2 || pos < 0)
			continue;
		if (end < start || !name_is(ln + pos, id))
			continue;
		if (found < max)
			gpa[found] = start;
		found++;
	}
	return found;
}

int qmem_hva_parse(const char *reply, const char *id, uint64_t *hva)
{
	static const char head[] = "Host virtual address for ";
	const char *p = strstr(reply, head), *name;
	unsigned long long v;
	size_t n = strlen(id);
	char *end;

	/* "Host virtual address for 0x1000000 (ram1) is 0x7fba95ffe000" */
	if (!p || !(name = strstr(p, " (")))
		return -1;
	name += 2;
	if (!n || strncmp(name, id, n) || strncmp(name + n, ") is 0x", 7))
		return -1;
	errno = 0;
	v = strtoull(name + n + 7, &end, 16);
	if (errno || end == name + n + 7 || (*end && !strchr("\r\n", *end)))
		return -1;
	*hva = v;
	return 0;
}

int qmem_maps_find(const char *maps, uint64_t addr, unsigned int *major, unsigned int *minor,
		   uint64_t *ino)
{
	char ln[512];

	while (next_line(&maps, ln, sizeof(ln))) {
		unsigned long long a, b, off, inode;
		unsigned int ma, mi;

		/* "7fba95ffe000-7fba96ffe000 rw-s 00000000 00:01 6644581   /memfd:..." */
		if (sscanf(ln, "%llx-%llx %*s %llx %x:%x %llu", &a, &b, &off, &ma, &mi, &inode) != 6)
			continue;
		if (addr < a || addr >= b)
			continue;
		if (!inode)
			return -1;	/* anonymous memory: no file's */
		*major = ma;
		*minor = mi;
		*ino = inode;
		return 0;
	}
	return -1;
}

/* ---- QEMU's memfds ------------------------------------------------------ */

struct memfd_cand {
	int fd;
	dev_t dev;
	ino_t ino;
};

/*
 * QEMU's memfd descriptors of this size (all named alike) into c[0..max):
 * how many there are, or -1.
 */
static int memfds_of_size(pid_t pid, uint64_t size, struct memfd_cand *c, int max)
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
		if (found < max)
			c[found] = (struct memfd_cand){ atoi(de->d_name), sb.st_dev, sb.st_ino };
		found++;
	}
	closedir(d);
	return found;
}

/* What qmem_list() reads at most once for all of its memfd backends. */
struct qmem_texts {
	char *mtree;		/* info mtree -f, once */
	char *maps;		/* /proc/PID/maps, once */
	bool mtree_tried, maps_tried;
};

/* HMP's answer to cmd (human-monitor-command): malloc'ed, or NULL. */
static char *hmp(struct qmp *q, const char *cmd)
{
	char args[128];
	struct jr_doc d;
	char *out;
	int ret;

	snprintf(args, sizeof(args), "{\"command-line\": \"%s\"}", cmd);
	if (qmp_exec_doc(q, "human-monitor-command", args, &d, &ret)) {
		lmig_err_clear();
		return NULL;
	}
	out = malloc(QMP_REPLY_MAX);
	if (out && jr_str(&d, ret, out, QMP_REPLY_MAX)) {
		free(out);
		out = NULL;
	}
	jr_free(&d);
	return out;
}

static char *read_text(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *nb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || !buf)
		goto fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len > 1)
			continue;
		if (cap >= (64u << 20) || !(nb = realloc(buf, cap * 2)))
			goto fail;
		buf = nb;
		cap *= 2;
	}
	if (n < 0)
		goto fail;
	buf[len] = 0;
	close(fd);
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/*
 * The file QEMU maps backend id at: where the guest sees it (info mtree
 * -f), its host address there (gpa2hva, which names the region it
 * found), the mapping holding that address (/proc/PID/maps).  0, or -1
 * when QEMU does not show it (a backend no guest address maps).
 */
static int backend_inode(struct qmp *q, struct qmem_texts *t, const char *id,
			 unsigned int *major, unsigned int *minor, uint64_t *ino)
{
	uint64_t gpa[8], hva;
	char path[64];
	int n;

	if (!t->mtree_tried) {
		t->mtree_tried = true;
		t->mtree = hmp(q, "info mtree -f");
	}
	if (!t->maps_tried) {
		t->maps_tried = true;
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)q->pid);
		t->maps = read_text(path);
	}
	if (!t->mtree || !t->maps)
		return -1;
	n = qmem_mtree_gpas(t->mtree, id, gpa, 8);
	for (int i = 0; i < n && i < 8; i++) {
		char cmd[64], *reply;
		int bad;

		snprintf(cmd, sizeof(cmd), "gpa2hva 0x%llx", (unsigned long long)gpa[i]);
		reply = hmp(q, cmd);
		bad = !reply || qmem_hva_parse(reply, id, &hva);
		free(reply);
		if (!bad)
			return qmem_maps_find(t->maps, hva, major, minor, ino);
	}
	return -1;
}

/*
 * Backend b's memfd among QEMU's descriptors: the only one of its size,
 * or of several the one whose inode QEMU maps where it keeps b
 * (backend_inode()).  Only then is QEMU asked: its `info mtree -f` of a
 * guest with many devices can outgrow QMP_REPLY_MAX, which ends the QMP
 * connection.
 */
static enum qmem_why memfd_of(struct qmp *q, struct qmem_texts *t, struct qmem_block *b)
{
	struct memfd_cand c[QMEM_MAX * 2];
	unsigned int major, minor;
	uint64_t ino;
	int n = memfds_of_size(q->pid, b->size, c, QMEM_MAX * 2), pick = -1;

	if (n < 0) {
		lmig_err_errno(errno, "cannot list QEMU's descriptors (/proc/%d/fd)", (int)q->pid);
		return QMEM_QMP;
	}
	if (n == 0)
		return QMEM_NO_FD;
	if (n == 1) {
		pick = 0;
	} else if (n <= QMEM_MAX * 2 && !backend_inode(q, t, b->id, &major, &minor, &ino)) {
		for (int i = 0; i < n; i++)
			if (major(c[i].dev) == major && minor(c[i].dev) == minor &&
			    (uint64_t)c[i].ino == ino)
				pick = i;
		if (pick < 0)
			return QMEM_NO_FD;
	} else {
		return QMEM_AMBIGUOUS;
	}
	snprintf(b->path, sizeof(b->path), "/proc/%d/fd/%d", (int)q->pid, c[pick].fd);
	return QMEM_OK;
}

static enum qmem_why one_block(struct qmp *q, struct qmem_texts *t, struct qmem_block *b,
			      char *detail, size_t dlen)
{
	char type[64];
	struct statfs fs;

	snprintf(detail, dlen, "%s", b->id);
	if (qom_str(q, b->id, "type", type, sizeof(type)))
		return QMEM_QMP;
	if (!strcmp(type, "memory-backend-memfd")) {
		b->kind = QMEM_MEMFD;
		b->hugetlb = qom_bool(q, b->id, "hugetlb");
		return memfd_of(q, t, b);
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
	struct qmem_texts t = { 0 };
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
	for (unsigned int i = 0; i < *n && why == QMEM_OK; i++)
		why = one_block(q, &t, &b[i], detail, dlen);
	free(t.mtree);
	free(t.maps);
	return why;
}

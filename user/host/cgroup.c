// SPDX-License-Identifier: GPL-2.0-only
/*
 * Finding a process's cgroups (v1 and v2) and moving tasks between them:
 * the ground both throttles stand on (cgroup.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "host/cgroup.h"
#include "host/procfs.h"

int cgroup_read_line(const char *dir, const char *name, char *buf, size_t len)
{
	int ret = kfile_read(dir, name, buf, len);

	if (!ret)
		buf[strcspn(buf, "\n")] = 0;
	return ret;
}

/* cgroup_dirs() of the task whose cgroup file (/proc/.../cgroup) is path. */
static int dirs_of(const char *path, const char *ctrl, char *v2dir, size_t v2len, char *v1dir,
		   size_t v1len, bool *v2root, bool *v1root)
{
	char line[1024], v2mnt[300] = "", v1mnt[300] = "", v2path[512] = "", v1path[512] = "";
	const char *prefix = "";
	FILE *f;

	v2dir[0] = v1dir[0] = 0;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return lmig_err_errno(errno, "/proc/self/mountinfo");
again:
	while (fgets(line, sizeof(line), f)) {
		char mnt[256], fstype[32], opts[512];

		/* "ID PARENT MAJ:MIN ROOT MOUNT OPTS ... - FSTYPE SOURCE SUPEROPTS" */
		if (sscanf(line, "%*s %*s %*s %*s %255s %*s", mnt) != 1)
			continue;
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(dash + 3, "%31s %*s %511s", fstype, opts) != 2)
			continue;
		if (!strcmp(fstype, "cgroup2") && !v2mnt[0])
			snprintf(v2mnt, sizeof(v2mnt), "%s%s", prefix, mnt);
		if (!strcmp(fstype, "cgroup") && !v1mnt[0]) {
			for (char *o = strtok(opts, ","); o; o = strtok(NULL, ","))
				if (!strcmp(o, ctrl))
					snprintf(v1mnt, sizeof(v1mnt), "%s%s", prefix, mnt);
		}
	}
	fclose(f);
	/*
	 * `ip netns exec` gives its command a mount namespace with a fresh
	 * /sys and no cgroup mounts: reach init's through /proc/1/root.
	 */
	if (!v2mnt[0] && !v1mnt[0] && !prefix[0] && (f = fopen("/proc/1/mountinfo", "re"))) {
		prefix = "/proc/1/root";
		goto again;
	}
	f = fopen(path, "re");
	if (!f)
		return lmig_err_errno(errno, "cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2)
			continue;
		line[strcspn(line, "\n")] = 0;
		*c2 = 0;
		/* "0::/path" is the v2 hierarchy; "N:ctrl,ctrl:/path" the v1 ones. */
		if (line[0] == '0' && c1 == line + 1 && c2 == c1 + 1)
			snprintf(v2path, sizeof(v2path), "%s", c2 + 1);
		for (char *o = strtok(c1 + 1, ","); o; o = strtok(NULL, ","))
			if (!strcmp(o, ctrl))
				snprintf(v1path, sizeof(v1path), "%s", c2 + 1);
	}
	fclose(f);
	if (v2mnt[0] && v2path[0]) {
		snprintf(v2dir, v2len, "%s%s", v2mnt, strcmp(v2path, "/") ? v2path : "");
		*v2root = !strcmp(v2path, "/");
	}
	if (v1mnt[0] && v1path[0]) {
		snprintf(v1dir, v1len, "%s%s", v1mnt, strcmp(v1path, "/") ? v1path : "");
		*v1root = !strcmp(v1path, "/");
	}
	return 0;
}

int cgroup_dirs(pid_t pid, const char *ctrl, char *v2dir, size_t v2len, char *v1dir,
		size_t v1len, bool *v2root, bool *v1root)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	return dirs_of(path, ctrl, v2dir, v2len, v1dir, v1len, v2root, v1root);
}

int cgroup_thread_v2dir(pid_t pid, pid_t tid, char *dir, size_t len)
{
	char path[96], v1dir[8];
	bool v2root = false, v1root = false;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", (int)pid, (int)tid);
	if (access(path, F_OK))
		return -errno;
	if (dirs_of(path, "", dir, len, v1dir, sizeof(v1dir), &v2root, &v1root))
		return -EIO;
	return dir[0] ? 0 : -ENOENT;
}

bool cgroup_thread_alone(const char *dir, pid_t tid)
{
	char path[600], line[32];
	FILE *f;
	int n = 0, first = 0;

	snprintf(path, sizeof(path), "%s/cgroup.threads", dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (n++ == 0)
			first = atoi(line);
	fclose(f);
	return n == 1 && first == tid;
}

bool cgroup_alone(const char *dir, pid_t pid)
{
	char buf[4096], path[600];
	FILE *f;
	int n = 0;

	if (cgroup_read_line(dir, "cgroup.procs", buf, sizeof(buf)) || !buf[0])
		return false;
	if (strtol(buf, NULL, 10) != pid)
		return false;
	/* cgroup_read_line keeps the first line only: check there is no second one. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(buf, sizeof(buf), f))
		n++;
	fclose(f);
	return n == 1;
}

int cgroup_move(const char *dir, pid_t pid, const pid_t *tids, unsigned int ntids)
{
	char num[16];
	int ret = 0;

	if (!ntids) {
		snprintf(num, sizeof(num), "%d", (int)pid);
		return kfile_write(dir, "cgroup.procs", num);
	}
	for (unsigned int i = 0; i < ntids; i++) {
		int r;

		snprintf(num, sizeof(num), "%d", (int)tids[i]);
		r = kfile_write(dir, "tasks", num);
		if (r && r != -ESRCH && !ret)
			ret = r;	/* a thread that exited has nothing to move */
	}
	return ret;
}

int cgroup_empty_into(const char *from, const char *to, const char *file)
{
	char path[760], line[32];
	int ret = 0, r;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", from, file);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		r = kfile_write(to, file, line);
		if (r && r != -ESRCH && !ret)
			ret = r;	/* a task that exited has nothing to move */
	}
	if (f)
		fclose(f);
	if (!ret && rmdir(from) && errno != ENOENT)
		ret = -errno;
	return ret;
}

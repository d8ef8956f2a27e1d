// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host/procfs.h"
#include "lib/uapi_compat.h"

int kfile_write(const char *dir, const char *name, const char *val)
{
	char path[1024];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static ssize_t read_path(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

int kfile_read(const char *dir, const char *name, char *buf, size_t len)
{
	char path[1024];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	n = read_path(path, buf, len);
	return n < 0 ? (int)n : 0;
}

char proc_thread_state(pid_t pid, pid_t tid)
{
	char buf[512];
	const char *f = proc_stat(pid, tid, buf, sizeof(buf));

	if (!f)
		return 0;
	if (strstr(buf, " (iou-"))
		return 'T';
	return *f;
}

const char *proc_stat(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[96], *p;

	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_path(path, buf, len) <= 0)
		return NULL;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 2 : NULL;
}

unsigned long long proc_start_time(pid_t pid)
{
	char buf[1024];
	const char *f = proc_stat(pid, 0, buf, sizeof(buf));
	unsigned long long t;

	/* The state letter is field 3: 18 more, then field 22. */
	if (!f || sscanf(f, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
			 &t) != 1)
		return 0;
	return t;
}

int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

bool pidfd_alive(int pidfd)
{
	return pidfd_signal(pidfd, 0) == 0 || errno != ESRCH;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/* Small reads and writes of /proc and /sys files (cgroups, task stat). */
#ifndef LMIG_PROCFS_H
#define LMIG_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Write val to DIR/NAME.  0 or -errno. */
int kfile_write(const char *dir, const char *name, const char *val);
/* Read DIR/NAME (all of it that fits, NUL-terminated) into buf.  0 or -errno. */
int kfile_read(const char *dir, const char *name, char *buf, size_t len);
/*
 * /proc/PID/stat (tid <= 0) or /proc/PID/task/TID/stat into buf; returns
 * where the fields after "(comm) " start — the state letter — or NULL.
 * comm may hold spaces and parentheses, hence the last ')'.
 */
const char *proc_stat(pid_t pid, pid_t tid, char *buf, size_t len);

/*
 * The state letter of thread tid of pid ('R', 'S', 'T', ...), or 0 if
 * it is gone.  io_uring's worker threads ("iou-*") never stop for a
 * signal; they read as 'T', since they only run on the process's behalf.
 */
char proc_thread_state(pid_t pid, pid_t tid);

/*
 * When process pid started, in clock ticks after boot (/proc/PID/stat
 * field 22), or 0 if there is no such process.  With the pid it names one
 * process for good: a pid reused after an exit has a later start time.
 */
unsigned long long proc_start_time(pid_t pid);

/*
 * The workload is signalled through a pidfd taken when its pid is
 * checked: once it exits and its pid is reused, the pidfd refers to
 * nothing, where kill(pid) would hit the newcomer.
 */
/* pidfd_open(2), close-on-exec: an fd, or -1 with errno. */
int pidfd_of(pid_t pid);
/* pidfd_send_signal(2): 0, or -1 with errno (ESRCH: the process is gone). */
int pidfd_signal(int pidfd, int sig);
/* Does it still exist (as kill(pid, 0) would say, for that process only)? */
bool pidfd_alive(int pidfd);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A process's cgroups, v1 and v2, and moving its tasks between them: what
 * the CPU throttle (throttle_cpu.c) and the disk-write throttle
 * (throttle_io.c) share.  Errors from cgroup_dirs() go through lmig_err();
 * the others return -errno and leave the message to their caller.
 */
#ifndef LMIG_CGROUP_H
#define LMIG_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The first line of DIR/NAME, without its newline.  0 or -errno. */
int cgroup_read_line(const char *dir, const char *name, char *buf, size_t len);
/*
 * The cgroup directory of pid for v1 controller ctrl ("cpu", "blkio"),
 * and the v2 one: either may come back "".  root: pid is in that
 * hierarchy's root.  0, or -1 with lmig_err().
 */
int cgroup_dirs(pid_t pid, const char *ctrl, char *v2dir, size_t v2len, char *v1dir,
		size_t v1len, bool *v2root, bool *v1root);
/*
 * The v2 cgroup directory of thread tid of process pid.  0, -ENOENT (no
 * v2 hierarchy), or -errno of its /proc file (-ENOENT too: it exited);
 * -EIO with lmig_err() when the mounts cannot be read.
 */
int cgroup_thread_v2dir(pid_t pid, pid_t tid, char *dir, size_t len);
/* Is thread tid the only thread of (threaded) cgroup dir? */
bool cgroup_thread_alone(const char *dir, pid_t tid);
/* Is pid the only process of cgroup dir? */
bool cgroup_alone(const char *dir, pid_t pid);
/*
 * Move process pid (ntids == 0: "cgroup.procs") or the threads tids (v1
 * "tasks") into cgroup dir.  A thread that exited meanwhile is no error.
 * 0 or -errno.
 */
int cgroup_move(const char *dir, pid_t pid, const pid_t *tids, unsigned int ntids);
/*
 * Move every task listed in FROM/FILE ("tasks", "cgroup.procs",
 * "cgroup.threads") into TO/FILE, then remove FROM.  0 or -errno.
 */
int cgroup_empty_into(const char *from, const char *to, const char *file);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/* CPU throttling of the source workload through cgroups: see throttle.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "host/procfs.h"
#include "host/throttle.h"

/* The first line of DIR/NAME. */
static int read_str(const char *dir, const char *name, char *buf, size_t len)
{
	int ret = kfile_read(dir, name, buf, len);

	if (!ret)
		buf[strcspn(buf, "\n")] = 0;
	return ret;
}

double proc_cpu_s(pid_t pid, pid_t tid)
{
	char buf[1024];
	const char *f = proc_stat(pid, tid, buf, sizeof(buf));
	unsigned long long ut, st;

	/* state is field 3, utime 14, stime 15 */
	if (!f || sscanf(f, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* write_bytes of /proc/PID/task/TID/io: what the thread sent to storage. */
static unsigned long long thread_wbytes(pid_t pid, pid_t tid)
{
	char dir[64], buf[512], *p;

	snprintf(dir, sizeof(dir), "/proc/%d/task/%d", (int)pid, (int)tid);
	if (kfile_read(dir, "io", buf, sizeof(buf)))
		return 0;
	p = strstr(buf, "\nwrite_bytes: ");
	return p ? strtoull(p + 14, NULL, 10) : 0;
}

void tsnap_take(pid_t pid, struct tsnap *s)
{
	char path[64], buf[1024];
	struct dirent *de;
	DIR *d;

	s->n = 0;
	s->t = now_s();
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && s->n < TSNAP_MAX) {
		unsigned long long flt, ut, st;
		const char *f;

		if (de->d_name[0] == '.')
			continue;
		f = proc_stat(pid, atoi(de->d_name), buf, sizeof(buf));
		/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
		if (!f || sscanf(f, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu",
				 &flt, &ut, &st) != 3)
			continue;
		s->tid[s->n] = atoi(de->d_name);
		s->minflt[s->n] = flt;
		s->cpu[s->n] = (double)(ut + st) / sysconf(_SC_CLK_TCK);
		s->wbytes[s->n] = thread_wbytes(pid, s->tid[s->n]);
		s->n++;
	}
	closedir(d);
}

static int tsnap_find(const struct tsnap *s, pid_t tid)
{
	for (unsigned int i = 0; i < s->n; i++)
		if (s->tid[i] == tid)
			return i;
	return -1;
}

/*
 * The threads that took most (together >= 80 %) of counter ctr's growth
 * between a and b (minflt or wbytes), fewest first-come; 0 when the growth
 * is below min (no signal) or they are most of the threads (aiming at them
 * buys nothing: take the process whole).
 */
static unsigned int tsnap_top(const struct tsnap *a, const struct tsnap *b, size_t ctr,
			      unsigned long long min, pid_t *out, unsigned int max)
{
	unsigned long long d[TSNAP_MAX], total = 0, taken = 0;
	bool used[TSNAP_MAX] = { false };
	unsigned int n = 0;

	for (unsigned int i = 0; i < b->n; i++) {
		int j = tsnap_find(a, b->tid[i]);
		const unsigned long long *vb = (const void *)((const char *)b + ctr);
		const unsigned long long *va = (const void *)((const char *)a + ctr);

		d[i] = vb[i] - (j >= 0 ? va[j] : 0);
		total += d[i];
	}
	if (total < min)
		return 0;
	while (n < max && taken * 10 < total * 8) {
		int best = -1;

		for (unsigned int i = 0; i < b->n; i++)
			if (!used[i] && (best < 0 || d[i] > d[best]))
				best = i;
		if (best < 0)
			break;
		used[best] = true;
		taken += d[best];
		out[n++] = b->tid[best];
	}
	return n * 2 > b->n ? 0 : n;
}

unsigned int tsnap_dirtiers(const struct tsnap *a, const struct tsnap *b, pid_t *out,
			    unsigned int max)
{
	/* Fewer than 64 faults: a tracker that does not fault (scan). */
	return tsnap_top(a, b, offsetof(struct tsnap, minflt), 64, out, max);
}

unsigned int tsnap_diskwriters(const struct tsnap *a, const struct tsnap *b, pid_t *out,
			       unsigned int max)
{
	return tsnap_top(a, b, offsetof(struct tsnap, wbytes), 1 << 20, out, max);
}


/* The growth of cpu (or wbytes) of the threads in tids (all if n == 0), per second. */
static double tsnap_rate(const struct tsnap *a, const struct tsnap *b, const pid_t *tids,
			 unsigned int n, bool wbytes)
{
	double sum = 0;

	if (b->t <= a->t)
		return 0;
	for (unsigned int i = 0; i < b->n; i++) {
		int j = tsnap_find(a, b->tid[i]);
		bool in = !n;

		for (unsigned int k = 0; k < n && !in; k++)
			in = tids[k] == b->tid[i];
		if (in && wbytes)
			sum += b->wbytes[i] - (j >= 0 ? a->wbytes[j] : 0);
		else if (in)
			sum += b->cpu[i] - (j >= 0 ? a->cpu[j] : 0);
	}
	return sum / (b->t - a->t);
}

double tsnap_cpus(const struct tsnap *a, const struct tsnap *b, const pid_t *tids, unsigned int n)
{
	return tsnap_rate(a, b, tids, n, false);
}

double tsnap_wbps(const struct tsnap *a, const struct tsnap *b, const pid_t *tids, unsigned int n)
{
	return tsnap_rate(a, b, tids, n, true);
}

int cgroup_dirs(pid_t pid, const char *ctrl, char *v2dir, size_t v2len, char *v1dir,
		size_t v1len, bool *v2root, bool *v1root)
{
	char path[64], line[1024], v2mnt[300] = "", v1mnt[300] = "", v2path[512] = "",
	     v1path[512] = "";
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
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
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

/*
 * The directory of pid's cgroup in the hierarchy that has the CPU
 * controller: v2 when its cgroup there has cpu.max, else v1's "cpu".
 */
static int find_cpu_cgroup(pid_t pid, char *dir, size_t len, bool *v2, bool *root)
{
	char v2dir[512], v1dir[512], buf[64];
	bool v2root = false, v1root = false;

	if (cgroup_dirs(pid, "cpu", v2dir, sizeof(v2dir), v1dir, sizeof(v1dir), &v2root, &v1root))
		return -1;
	if (v2dir[0] && (!read_str(v2dir, "cpu.max", buf, sizeof(buf)) ||
			 /* the root cgroup has no cpu.max, but its children may */
			 (v2root && !read_str(v2dir, "cgroup.subtree_control", buf, sizeof(buf)) &&
			  strstr(buf, "cpu")))) {
		snprintf(dir, len, "%s", v2dir);
		*v2 = true;
		*root = v2root;
		return 0;
	}
	if (v1dir[0]) {
		snprintf(dir, len, "%s", v1dir);
		*v2 = false;
		*root = v1root;
		return 0;
	}
	return lmig_err("process %d is in no cgroup with the CPU controller (neither cgroup v2 cpu.max nor a v1 cpu hierarchy)",
			(int)pid);
}

bool cgroup_alone(const char *dir, pid_t pid)
{
	char buf[4096], path[600];
	FILE *f;
	int n = 0;

	if (read_str(dir, "cgroup.procs", buf, sizeof(buf)) || !buf[0])
		return false;
	if (strtol(buf, NULL, 10) != pid)
		return false;
	/* read_str keeps the first line only: check there is no second one. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(buf, sizeof(buf), f))
		n++;
	fclose(f);
	return n == 1;
}

/* Alone in dir, and dir has a CPU limit of its own to set. */
static bool alone_in(const char *dir, pid_t pid)
{
	char path[600], path1[600];

	snprintf(path, sizeof(path), "%s/cpu.max", dir);
	snprintf(path1, sizeof(path1), "%s/cpu.cfs_quota_us", dir);
	if (access(path, F_OK) && access(path1, F_OK))
		return false;
	return cgroup_alone(dir, pid);
}

int throttle_state_save(const struct throttle *t)
{
	char tmp[660];
	FILE *f;

	if (mkdir(THROTTLE_STATE_DIR, 0700) && errno != EEXIST)
		return lmig_err_errno(errno, "cannot create %s", THROTTLE_STATE_DIR);
	snprintf(tmp, sizeof(tmp), "%s.tmp", t->state);
	f = fopen(tmp, "we");
	if (!f)
		return lmig_err_errno(errno, "cannot write %s", tmp);
	/* The owner is this lmig: its pid and its start time, which tell it from a successor. */
	fprintf(f, "owner %d\nowner_start %llu\npid %d\nv2 %d\ntransient %d\nper_thread %d\nhome %s\ncg %s\nsaved %s\ntids",
		(int)getpid(), proc_start_time(getpid()), (int)t->pid, t->v2, t->transient,
		t->per_thread, t->home, t->cg, t->saved);
	for (unsigned int i = 0; i < t->ntids; i++)
		fprintf(f, " %d", (int)t->tids[i]);
	fprintf(f, "\ntcg %s\nsubtree_cpu %d\n", t->tcg, t->subtree_cpu);
	throttle_io_state_print(f, &t->io);
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		unlink(tmp);
		return lmig_err_errno(errno, "cannot write %s", tmp);
	}
	fclose(f);
	if (rename(tmp, t->state))
		return lmig_err_errno(errno, "cannot write %s", t->state);
	return 0;
}

/*
 * owner_start is 0 in a file without it (written by an older lmig) or if
 * the owner's start time could not be read.
 */
static int state_read(const char *path, struct throttle *t, pid_t *owner,
		      unsigned long long *owner_start)
{
	char line[1024];
	FILE *f = fopen(path, "re");
	int v, n = 0;

	if (!f)
		return lmig_err_errno(errno, "cannot read %s", path);
	*t = (struct throttle){ 0 };
	*owner_start = 0;
	snprintf(t->state, sizeof(t->state), "%s", path);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "owner_start %llu", owner_start) == 1)
			;
		else if (sscanf(line, "owner %d", &v) == 1)
			*owner = v, n++;
		else if (sscanf(line, "pid %d", &v) == 1)
			t->pid = v, n++;
		else if (sscanf(line, "v2 %d", &v) == 1)
			t->v2 = v, n++;
		else if (sscanf(line, "transient %d", &v) == 1)
			t->transient = v, n++;
		else if (sscanf(line, "per_thread %d", &v) == 1)
			t->per_thread = v;
		else if (!strncmp(line, "home ", 5))
			snprintf(t->home, sizeof(t->home), "%.511s", line + 5), n++;
		else if (!strncmp(line, "cg ", 3))
			snprintf(t->cg, sizeof(t->cg), "%.639s", line + 3), n++;
		else if (!strncmp(line, "tcg ", 4))
			snprintf(t->tcg, sizeof(t->tcg), "%.699s", line + 4);
		else if (sscanf(line, "subtree_cpu %d", &v) == 1)
			t->subtree_cpu = v;
		else if (throttle_io_state_parse(line, &t->io))
			;
		else if (!strncmp(line, "saved ", 6))
			snprintf(t->saved, sizeof(t->saved), "%.63s", line + 6);
		else if (!strncmp(line, "tids", 4))
			for (char *p = line + 4, *e; t->ntids < THROTTLE_MAX_TIDS; p = e) {
				long tid = strtol(p, &e, 10);

				if (e == p)
					break;
				t->tids[t->ntids++] = tid;
			}
	}
	fclose(f);
	if (n < 6)
		return lmig_err("%s is not an lmig throttle state file", path);
	t->applied = true;
	return 0;
}

/* The limit value of a share: "QUOTA PERIOD" (v2 cpu.max style). */
static void quota_str(char *buf, size_t len, double cpus)
{
	long q = (long)(cpus * THROTTLE_PERIOD_US);

	if (q < 1000)
		q = 1000;	/* the kernel's smallest quota is 1 ms */
	snprintf(buf, len, "%ld %d", q, THROTTLE_PERIOD_US);
}

static int set_limit(const struct throttle *t, const char *val)
{
	char q[32], p[32];
	int ret;

	if (t->v2)
		return kfile_write(t->tcg[0] ? t->tcg : t->cg, "cpu.max", val);
	if (sscanf(val, "%31s %31s", q, p) != 2)
		return -EINVAL;
	if (!strcmp(q, "max"))
		strcpy(q, "-1");
	/* Shrinking the period below the quota is refused: quota first when lifting. */
	ret = kfile_write(t->cg, "cpu.cfs_period_us", p);
	if (ret == -EINVAL) {
		ret = kfile_write(t->cg, "cpu.cfs_quota_us", q);
		return ret ? ret : kfile_write(t->cg, "cpu.cfs_period_us", p);
	}
	return ret ? ret : kfile_write(t->cg, "cpu.cfs_quota_us", q);
}

static int get_limit(const struct throttle *t, char *buf, size_t len)
{
	char q[32], p[32];
	int ret;

	if (t->v2)
		return read_str(t->cg, "cpu.max", buf, len);
	ret = read_str(t->cg, "cpu.cfs_quota_us", q, sizeof(q));
	if (!ret)
		ret = read_str(t->cg, "cpu.cfs_period_us", p, sizeof(p));
	if (!ret)
		snprintf(buf, len, "%s %s", !strcmp(q, "-1") ? "max" : q, p);
	return ret;
}

/* Move pid (all its threads) or the given threads into dir. */
static int move_into(const struct throttle *t, const char *dir, bool threads_only)
{
	char num[16];
	int ret = 0;

	if (!threads_only) {
		snprintf(num, sizeof(num), "%d", (int)t->pid);
		return kfile_write(dir, "cgroup.procs", num);
	}
	for (unsigned int i = 0; i < t->ntids; i++) {
		int r;

		snprintf(num, sizeof(num), "%d", (int)t->tids[i]);
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

/* cgroup v2: the threads of tcg back into cg, tcg removed, +cpu taken back. */
static int threads_join(struct throttle *t)
{
	int ret = 0, r;

	if (t->tcg[0])
		ret = cgroup_empty_into(t->tcg, t->cg, "cgroup.threads");
	if (!ret && t->subtree_cpu) {
		r = kfile_write(t->cg, "cgroup.subtree_control", "-cpu");
		if (r && r != -ENOENT)
			ret = r;
	}
	if (!ret) {
		t->tcg[0] = 0;
		t->subtree_cpu = false;
	}
	return ret;
}

/*
 * cgroup v2 holds single threads only in threaded cgroups: a child of cg
 * made "threaded" (cg becomes a threaded domain, which may hold both the
 * process and threaded children using the threaded cpu controller), with
 * +cpu in cg's subtree_control.  The threads that write move into it and
 * get the limit; the rest of the process stays in cg, unlimited.
 */
static int threads_split(struct throttle *t)
{
	char buf[256], num[16];
	bool moved = false;
	int ret;

	snprintf(t->tcg, sizeof(t->tcg), "%s/lmig-threads", t->cg);
	if (read_str(t->cg, "cgroup.subtree_control", buf, sizeof(buf)))
		buf[0] = 0;
	/* Recorded first: whatever happens next can be undone. */
	if (throttle_state_save(t))
		goto fail;
	if (mkdir(t->tcg, 0755) && errno != EEXIST) {
		ret = -errno;
		goto fail_ret;
	}
	ret = kfile_write(t->tcg, "cgroup.type", "threaded");
	if (ret)
		goto fail_ret;
	if (!strstr(buf, "cpu")) {
		t->subtree_cpu = true;
		if (throttle_state_save(t))
			goto fail;
		ret = kfile_write(t->cg, "cgroup.subtree_control", "+cpu");
		if (ret)
			goto fail_ret;
	}
	for (unsigned int i = 0; i < t->ntids; i++) {
		snprintf(num, sizeof(num), "%d", (int)t->tids[i]);
		ret = kfile_write(t->tcg, "cgroup.threads", num);
		if (ret && ret != -ESRCH)
			goto fail_ret;
		moved |= !ret;
	}
	if (!moved)
		goto fail;
	t->per_thread = true;
	return 0;
fail_ret:
	lmig_err_errno(-ret, "cannot put threads of process %d into threaded cgroup %s",
		       (int)t->pid, t->tcg);
fail:
	if (threads_join(t))
		return -1;	/* the state file keeps what is left to undo */
	t->subtree_cpu = false;
	t->tcg[0] = 0;
	throttle_state_save(t);
	return -1;
}

int throttle_init(struct throttle *t, pid_t pid, const pid_t *tids, unsigned int ntids)
{
	bool root = false;
	int ret;

	*t = (struct throttle){ .pid = pid };
	if (find_cpu_cgroup(pid, t->home, sizeof(t->home), &t->v2, &root))
		return -1;
	snprintf(t->state, sizeof(t->state), "%s/throttle-%d", THROTTLE_STATE_DIR, (int)pid);
	if (!access(t->state, F_OK))
		return lmig_err("%s exists: another lmig throttles process %d, or one died (lmig throttle --restore)",
				t->state, (int)pid);
	if (ntids > THROTTLE_MAX_TIDS)
		ntids = THROTTLE_MAX_TIDS;
	memcpy(t->tids, tids, ntids * sizeof(*tids));
	t->ntids = ntids;
	/* v2: the threads go into a threaded child once the process is placed. */
	t->per_thread = !t->v2 && ntids;
	if (!t->per_thread && !root && alone_in(t->home, pid)) {
		snprintf(t->cg, sizeof(t->cg), "%s", t->home);
		if (get_limit(t, t->saved, sizeof(t->saved)))
			return lmig_err("cannot read the CPU limit of %s", t->cg);
	} else {
		/*
		 * v1: a child of the workload's cgroup (threads may move there).
		 * v2: a sibling, since a cgroup with processes cannot have
		 * children with controllers; under the root, a child.
		 */
		char parent[512];

		snprintf(parent, sizeof(parent), "%s", t->home);
		if (t->v2 && !root)
			dirname(parent);
		snprintf(t->cg, sizeof(t->cg), "%s/lmig-throttle-%d", parent, (int)pid);
		t->transient = true;
		snprintf(t->saved, sizeof(t->saved), "max %d", THROTTLE_PERIOD_US);
	}
	/* Written before anything changes: a crash from here on can be undone. */
	if (throttle_state_save(t))
		return -1;
	if (t->transient) {
		if (mkdir(t->cg, 0755) && errno != EEXIST) {
			lmig_err_errno(errno, "cannot create cgroup %s", t->cg);
			goto err;
		}
		ret = move_into(t, t->cg, t->per_thread);
		if (ret) {
			lmig_err_errno(-ret, "cannot move process %d into %s", (int)pid, t->cg);
			rmdir(t->cg);
			goto err;
		}
	}
	t->applied = true;
	if (t->v2 && ntids && !root && threads_split(t)) {
		/* The whole process is limited instead: still a limit that works. */
		lmig_err_clear();
	}
	return 0;
err:
	unlink(t->state);
	return -1;
}

int throttle_set(struct throttle *t, double cpus)
{
	char val[64];
	int ret;

	if (cpus <= 0)
		snprintf(val, sizeof(val), "max %d", THROTTLE_PERIOD_US);
	else
		quota_str(val, sizeof(val), cpus);
	ret = set_limit(t, val);
	if (ret)
		return lmig_err_errno(-ret, "cannot set the CPU limit of %s", t->cg);
	t->share = cpus;
	return 0;
}

int throttle_restore(struct throttle *t)
{
	int ret = 0, r;

	if (!t->applied)
		return 0;
	r = throttle_io_restore(&t->io);
	if (r)
		return lmig_err_errno(-r, "cannot restore the disk write limits of %s (state kept in %s)",
				      t->io.cg, t->state);
	r = t->v2 ? threads_join(t) : 0;
	if (r)
		return lmig_err_errno(-r, "cannot move the threads of %s back (state kept in %s)",
				      t->tcg, t->state);
	if (t->transient) {
		/* Everything in the transient cgroup goes home, new threads too. */
		ret = cgroup_empty_into(t->cg, t->home, t->v2 ? "cgroup.procs" : "tasks");
	} else {
		ret = set_limit(t, t->saved);
		if (ret == -ENOENT)
			ret = 0;	/* the cgroup went away with its workload */
	}
	if (ret)
		return lmig_err_errno(-ret, "cannot restore the CPU limit of %s (state kept in %s)",
				      t->cg, t->state);
	unlink(t->state);
	t->applied = false;
	t->share = 0;
	return 0;
}

int throttle_restore_pid(pid_t pid)
{
	struct throttle t;
	char path[64];
	unsigned long long owner_start;
	pid_t owner;

	snprintf(path, sizeof(path), "%s/throttle-%d", THROTTLE_STATE_DIR, (int)pid);
	if (access(path, F_OK))
		return 0;
	if (state_read(path, &t, &owner, &owner_start))
		return -1;
	return throttle_restore(&t);
}

/*
 * Does the lmig that wrote a state file still run (and so will undo it
 * itself)?  Its pid alone cannot tell: once it died, the number may be
 * another process's.  The pid with its start time names one process; a
 * file without the start time (an older lmig's) has only the pid.
 */
static bool owner_runs(pid_t owner, unsigned long long owner_start)
{
	if (owner <= 0)
		return false;
	if (!owner_start)
		return kill(owner, 0) == 0;
	return proc_start_time(owner) == owner_start;
}

int throttle_restore_files(bool only_stale, bool verbose)
{
	DIR *d = opendir(THROTTLE_STATE_DIR);
	struct dirent *de;
	int n = 0, ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : lmig_err_errno(errno, "cannot open %s", THROTTLE_STATE_DIR);
	while ((de = readdir(d))) {
		struct throttle t;
		char path[600], iocg[640];
		unsigned long long owner_start;
		pid_t owner = 0;
		bool io;

		if (strncmp(de->d_name, "throttle-", 9) || strchr(de->d_name, '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", THROTTLE_STATE_DIR, de->d_name);
		if (state_read(path, &t, &owner, &owner_start)) {
			ret = -1;
			continue;
		}
		if (only_stale && owner_runs(owner, owner_start))
			continue;	/* its lmig still runs and will restore it */
		io = t.io.on;
		snprintf(iocg, sizeof(iocg), "%s", t.io.cg);
		if (throttle_restore(&t)) {
			ret = -1;
			continue;
		}
		if (verbose)
			fprintf(stderr, "lmig: restored the CPU limit of process %d (%s)%s%s%s\n",
				(int)t.pid, t.cg, io ? " and its disk write limit (" : "",
				io ? iocg : "", io ? ")" : "");
		n++;
	}
	closedir(d);
	return ret ? -1 : n;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-thread counters of a process from /proc (threads.h): what aims the
 * throttles at the threads that write.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "host/procfs.h"
#include "host/threads.h"

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
 * The threads that took most (together >= TSNAP_TOP_PCT %) of counter
 * ctr's growth between a and b (minflt or wbytes), fewest first-come; 0
 * when the growth is below min (no signal) or they are most of the
 * threads (aiming at them buys nothing: take the process whole).
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
	while (n < max && taken * 100 < total * TSNAP_TOP_PCT) {
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

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Reading the probes' maps (probes.h): each sample reads them all, sorts
 * them by key and subtracts the previous sample's.  The maps hold only
 * growing counters (bpf/probes_abi.h); an entry the LRU map dropped and
 * made again counts from zero.  The process and exit-reason maps hold one
 * value per CPU: a read adds them up.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "host/probes_priv.h"
#include "host/procfs.h"

#ifndef LMIG_HAVE_PROBES

int probes_sample(struct probes *p, struct probe_sample *out)
{
	probes_set_why(p->why, sizeof(p->why), "probes are not open");
	return -1;
}

int probes_sample_all(struct probes *p, struct probe_proc **out, unsigned int *n,
		      double *interval_s)
{
	probes_set_why(p->why, sizeof(p->why), "probes are not open");
	return -1;
}

int probes_exit_reasons(struct probes *p, struct probe_reason *out, unsigned int max)
{
	return 0;
}

#else

static int cmp_probe_snap(const void *a, const void *b)
{
	uint32_t x = ((const struct probe_snap *)a)->key, y = ((const struct probe_snap *)b)->key;

	return x < y ? -1 : x > y;
}

static int cmp_reason_snap(const void *a, const void *b)
{
	const struct probes_reason_key *x = &((const struct reason_snap *)a)->k,
				       *y = &((const struct reason_snap *)b)->k;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	return x->reason < y->reason ? -1 : x->reason > y->reason;
}

static const struct probe_snap *find_probe_snap(const struct probe_snap *v, size_t n, uint32_t key)
{
	struct probe_snap k = { .key = key };

	return n ? bsearch(&k, v, n, sizeof(*v), cmp_probe_snap) : NULL;
}

/* a - b per counter; an entry made again since (smaller) counts from zero. */
static void sub_counts(struct probe_counts *d, const struct probes_counts *a,
		       const struct probes_counts *b)
{
	const __u64 *x = (const __u64 *)a, *y = b ? (const __u64 *)b : NULL;
	uint64_t *o = (uint64_t *)d;

	_Static_assert(sizeof(struct probe_counts) == sizeof(struct probes_counts), "layout");
	for (size_t i = 0; i < sizeof(*a) / sizeof(__u64); i++)
		o[i] = !y || x[i] < y[i] ? x[i] : x[i] - y[i];
}

/* Add up the per-CPU copies of a process's entry in pv->pcpu into *pr. */
static void sum_proc(const struct probes_priv *pv, struct probes_proc *pr)
{
	size_t stride = (sizeof(*pr) + 7) & ~(size_t)7;

	memset(pr, 0, sizeof(*pr));
	for (int cpu = 0; cpu < pv->ncpus; cpu++) {
		const struct probes_proc *v = (const void *)((char *)pv->pcpu + cpu * stride);
		const __u64 *x = (const __u64 *)&v->c;
		__u64 *o = (__u64 *)&pr->c;

		for (size_t i = 0; i < sizeof(v->c) / sizeof(__u64); i++)
			o[i] += x[i];
		/* Only the CPU that made the entry has the name. */
		if (!pr->comm[0] && v->comm[0])
			memcpy(pr->comm, v->comm, sizeof(pr->comm));
	}
}

/* Read a whole map of thread or process counters, sorted by key. */
static int read_counts(const struct probes_priv *pv, int fd, bool threads, struct probe_snap **out,
		       size_t *n)
{
	size_t cap = 256, len = 0;
	struct probe_snap *v = malloc(cap * sizeof(*v));
	uint32_t key, next, *prev = NULL;

	if (!v)
		return -1;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct probes_thread t;
		struct probes_proc pr;
		int r;

		key = next;
		prev = &key;
		if (threads)
			r = bpf_map_lookup_elem(fd, &key, &t);
		else
			r = bpf_map_lookup_elem(fd, &key, pv->pcpu);
		if (r)
			continue;	/* dropped meanwhile */
		if (!threads)
			sum_proc(pv, &pr);
		if (len == cap) {
			struct probe_snap *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv) {
				free(v);
				return -1;
			}
			v = nv;
			cap *= 2;
		}
		v[len].key = key;
		v[len].tgid = threads ? t.tgid : key;
		v[len].c = threads ? t.c : pr.c;
		memcpy(v[len].comm, threads ? "" : pr.comm, threads ? 1 : sizeof(pr.comm));
		v[len].comm[sizeof(v[len].comm) - 1] = 0;
		len++;
	}
	qsort(v, len, sizeof(*v), cmp_probe_snap);
	*out = v;
	*n = len;
	return 0;
}

static void read_comm(pid_t pid, pid_t tid, char comm[16])
{
	char path[64];
	ssize_t r;
	int fd;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	comm[0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	r = read(fd, comm, 15);
	close(fd);
	comm[r > 0 ? r : 0] = 0;
	comm[strcspn(comm, "\n")] = 0;
}

static double steal_of(const struct probe_counts *c)
{
	uint64_t want = c->rq_delay_ns + c->run_ns;

	return want ? 100.0 * c->rq_delay_ns / want : 0;
}

static bool counts_zero(const struct probe_counts *c)
{
	return !c->faults && !c->guest_exits && !c->guest_faults && !c->rq_delay_ns && !c->run_ns;
}

/* Live threads of pid, in *tids (malloc'ed), sorted; their number, or -1. */
static int list_tasks(pid_t pid, uint32_t **tids)
{
	size_t cap = 64, n = 0;
	uint32_t *v = malloc(cap * sizeof(*v));
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d || !v) {
		if (d)
			closedir(d);
		free(v);
		return -1;
	}
	while ((de = readdir(d))) {
		uint32_t tid = strtoul(de->d_name, NULL, 10);

		if (!tid)
			continue;
		if (n == cap) {
			uint32_t *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		v[n++] = tid;
	}
	closedir(d);
	*tids = v;
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int probes_sample(struct probes *p, struct probe_sample *out)
{
	struct probes_priv *pv = p->priv;
	struct probe_snap *thr = NULL, *proc = NULL;
	size_t nthr = 0, nproc = 0, k = 0;
	uint32_t *tids = NULL;
	int ntids;
	double t;

	memset(out, 0, sizeof(*out));
	if (!p->ok || (p->flags & PROBES_ALL)) {
		probes_set_why(p->why, sizeof(p->why), "probes are not open on a process");
		return -1;
	}
	out->pid = p->pid;
	if (read_counts(pv, bpf_map__fd(pv->skel->maps.lmig_threads), true, &thr, &nthr) ||
	    read_counts(pv, bpf_map__fd(pv->skel->maps.lmig_procs), false, &proc, &nproc)) {
		free(thr);
		probes_set_why(p->why, sizeof(p->why), "cannot read the probe maps: %s", strerror(errno));
		return -1;
	}
	t = now_s();
	out->interval_s = t - pv->t_last;
	pv->t_last = t;
	out->alive = pv->pidfd >= 0 && pidfd_alive(pv->pidfd);
	{
		const struct probe_snap *c = find_probe_snap(proc, nproc, p->pid);
		const struct probe_snap *o = find_probe_snap(pv->proc, pv->nproc, p->pid);

		if (c)
			sub_counts(&out->c, &c->c, o ? &o->c : NULL);
	}
	out->steal_pct = steal_of(&out->c);

	ntids = list_tasks(p->pid, &tids);
	if (ntids > 0)
		qsort(tids, ntids, sizeof(*tids), cmp_u32);
	free(pv->out_thr);
	pv->out_thr = calloc(nthr + (ntids > 0 ? ntids : 0) + 1, sizeof(*pv->out_thr));
	if (!pv->out_thr) {
		free(thr);
		free(proc);
		free(tids);
		probes_set_why(p->why, sizeof(p->why), "out of memory");
		return -1;
	}
	/* Threads with counters: live ones, and those that ran and exited. */
	for (size_t i = 0; i < nthr; i++) {
		const struct probe_snap *o;
		struct probe_thread *th = &pv->out_thr[k];
		bool live;

		if (thr[i].tgid != (uint32_t)p->pid)
			continue;
		o = find_probe_snap(pv->thr, pv->nthr, thr[i].key);
		th->tid = thr[i].key;
		sub_counts(&th->c, &thr[i].c, o && o->tgid == thr[i].tgid ? &o->c : NULL);
		live = ntids > 0 && bsearch(&thr[i].key, tids, ntids, sizeof(*tids), cmp_u32);
		if (!live && counts_zero(&th->c))
			continue;
		k++;
	}
	/* Live threads the probes have not seen yet (they never faulted nor slept). */
	for (int i = 0; i < ntids; i++) {
		const struct probe_snap *c = find_probe_snap(thr, nthr, tids[i]);

		if (c && c->tgid == (uint32_t)p->pid)
			continue;
		memset(&pv->out_thr[k], 0, sizeof(pv->out_thr[k]));
		pv->out_thr[k++].tid = tids[i];
	}
	for (size_t i = 0; i < k; i++) {
		struct probe_thread *th = &pv->out_thr[i];

		read_comm(p->pid, th->tid, th->comm);
		th->steal_pct = out->interval_s > 0 ?
				100.0 * th->c.rq_delay_ns / (out->interval_s * 1e9) : 0;
		if (th->steal_pct > 100)
			th->steal_pct = 100;
	}
	qsort(pv->out_thr, k, sizeof(*pv->out_thr), cmp_u32);	/* tid is the first member */
	out->threads = pv->out_thr;
	out->nthreads = k;
	free(tids);
	free(pv->thr);
	free(pv->proc);
	pv->thr = thr;
	pv->nthr = nthr;
	pv->proc = proc;
	pv->nproc = nproc;
	return 0;
}

int probes_sample_all(struct probes *p, struct probe_proc **out, unsigned int *n,
		      double *interval_s)
{
	struct probes_priv *pv = p->priv;
	struct probe_snap *proc = NULL;
	size_t nproc = 0, k = 0;
	double t;

	*n = 0;
	if (!p->ok) {
		probes_set_why(p->why, sizeof(p->why), "probes are not open");
		return -1;
	}
	if (read_counts(pv, bpf_map__fd(pv->skel->maps.lmig_procs), false, &proc, &nproc)) {
		probes_set_why(p->why, sizeof(p->why), "cannot read the probe maps: %s", strerror(errno));
		return -1;
	}
	t = now_s();
	*interval_s = t - pv->t_last;
	pv->t_last = t;
	free(pv->out_proc);
	pv->out_proc = calloc(nproc + 1, sizeof(*pv->out_proc));
	if (!pv->out_proc) {
		free(proc);
		probes_set_why(p->why, sizeof(p->why), "out of memory");
		return -1;
	}
	for (size_t i = 0; i < nproc; i++) {
		const struct probe_snap *o = find_probe_snap(pv->proc, pv->nproc, proc[i].key);
		struct probe_proc *pp = &pv->out_proc[k];

		pp->pid = proc[i].key;
		sub_counts(&pp->c, &proc[i].c, o ? &o->c : NULL);
		if (counts_zero(&pp->c))
			continue;
		pp->steal_pct = steal_of(&pp->c);
		read_comm(pp->pid, 0, pp->comm);
		if (!pp->comm[0])	/* exited: the name the probe kept */
			memcpy(pp->comm, proc[i].comm, sizeof(pp->comm));
		k++;
	}
	free(pv->proc);
	pv->proc = proc;
	pv->nproc = nproc;
	*out = pv->out_proc;
	*n = k;
	return 0;
}

int probes_exit_reasons(struct probes *p, struct probe_reason *out, unsigned int max)
{
	struct probes_priv *pv = p->priv;
	struct probes_reason_key key, next, *prev = NULL;
	size_t cap = 64, len = 0;
	struct reason_snap *v;
	unsigned int k = 0;
	int fd;

	if (!p->ok || !p->exit_reasons)
		return 0;
	fd = bpf_map__fd(pv->skel->maps.lmig_kvm_exits);
	v = malloc(cap * sizeof(*v));
	if (!v)
		return 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (len == cap) {
			struct reason_snap *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		if (bpf_map_lookup_elem(fd, &key, pv->pcpu))
			continue;
		v[len].n = 0;
		for (int cpu = 0; cpu < pv->ncpus; cpu++)
			v[len].n += ((const __u64 *)pv->pcpu)[cpu];
		v[len++].k = key;
	}
	qsort(v, len, sizeof(*v), cmp_reason_snap);
	for (size_t i = 0; i < len; i++) {
		struct reason_snap *o = pv->nrs ? bsearch(&v[i], pv->rs, pv->nrs, sizeof(*v), cmp_reason_snap) : NULL;
		uint64_t d = o && o->n <= v[i].n ? v[i].n - o->n : v[i].n;

		if ((p->flags & PROBES_ALL || v[i].k.tgid == (uint32_t)p->pid) && d && k < max) {
			out[k].reason = v[i].k.reason;
			out[k++].count = d;
		}
	}
	/* Most frequent first. */
	for (unsigned int i = 1; i < k; i++)
		for (unsigned int j = i; j > 0 && out[j].count > out[j - 1].count; j--) {
			struct probe_reason t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	free(pv->rs);
	pv->rs = v;
	pv->nrs = len;
	return k;
}

#endif

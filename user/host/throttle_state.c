// SPDX-License-Identifier: GPL-2.0-only
/*
 * The throttle's state file (throttle_state.h): everything needed to undo
 * the CPU and disk-write limits, written before each change so that a
 * later lmig can undo what a dead one left.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "host/procfs.h"
#include "host/throttle.h"
#include "host/throttle_state.h"

/* The lines of the disk-write limit ("io_..."), after the CPU ones. */
static void io_state_print(FILE *f, const struct throttle_io *io)
{
	if (!io->on)
		return;
	fprintf(f, "io_v2 %d\nio_transient %d\nio_per_thread %d\nio_home %s\nio_cg %s\nio_tids",
		io->v2, io->transient, io->per_thread, io->home, io->cg);
	for (unsigned int i = 0; i < io->ntids; i++)
		fprintf(f, " %d", (int)io->tids[i]);
	fprintf(f, "\n");
	for (unsigned int i = 0; i < io->ndev; i++)
		fprintf(f, "io_dev %u:%u %s\n", io->dev[i].maj, io->dev[i].min, io->dev[i].saved);
}

/* One line of the disk-write limit; false: not one ("io_..."). */
static bool io_state_parse(const char *line, struct throttle_io *io)
{
	unsigned int maj, min;
	char saved[32];
	int v;

	if (strncmp(line, "io_", 3))
		return false;
	io->on = true;
	if (sscanf(line, "io_v2 %d", &v) == 1)
		io->v2 = v;
	else if (sscanf(line, "io_transient %d", &v) == 1)
		io->transient = v;
	else if (sscanf(line, "io_per_thread %d", &v) == 1)
		io->per_thread = v;
	else if (!strncmp(line, "io_home ", 8))
		snprintf(io->home, sizeof(io->home), "%.511s", line + 8);
	else if (!strncmp(line, "io_cg ", 6))
		snprintf(io->cg, sizeof(io->cg), "%.639s", line + 6);
	else if (!strncmp(line, "io_tids", 7))
		for (const char *p = line + 7; io->ntids < THROTTLE_MAX_TIDS;) {
			char *e;
			long tid = strtol(p, &e, 10);

			if (e == p)
				break;
			io->tids[io->ntids++] = tid;
			p = e;
		}
	else if (sscanf(line, "io_dev %u:%u %31s", &maj, &min, saved) == 3 &&
		 io->ndev < THROTTLE_MAX_DEVS) {
		io->dev[io->ndev].maj = maj;
		io->dev[io->ndev].min = min;
		snprintf(io->dev[io->ndev].saved, sizeof(io->dev[io->ndev].saved), "%s", saved);
		io->ndev++;
	}
	return true;
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
	/* "vcg TID QUOTA PERIOD DIR": a per-vCPU cgroup and its cpu.max found there */
	for (unsigned int i = 0; i < t->nvcg; i++)
		fprintf(f, "vcg %d %s %s\n", (int)t->vcg[i].tid, t->vcg[i].saved, t->vcg[i].dir);
	io_state_print(f, &t->io);
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

/* A cpu.max value: "max" or a number, then a number. */
static bool cpu_max_valid(const char *q, const char *p)
{
	return (!strcmp(q, "max") || strspn(q, "0123456789") == strlen(q)) &&
	       strspn(p, "0123456789") == strlen(p) && *q && *p;
}

/*
 * A "vcg" line into t->vcg; false: malformed, or more than the limit
 * (the file is root's, but a reader still keeps within its arrays).
 */
static bool vcg_parse(const char *line, struct throttle *t, const char *path)
{
	char q[16], p[16];
	int tid, off = 0;
	struct throttle_vcg *v;

	if (t->nvcg == THROTTLE_MAX_VCGS) {
		lmig_err("%s lists more than %d per-vCPU cgroups", path, THROTTLE_MAX_VCGS);
		return false;
	}
	if (sscanf(line, "vcg %d %15s %15s %n", &tid, q, p, &off) != 3 || !off || line[off] != '/' ||
	    !cpu_max_valid(q, p) || strlen(line + off) >= sizeof(v->dir)) {
		lmig_err("%s: malformed line '%.80s'", path, line);
		return false;
	}
	v = &t->vcg[t->nvcg++];
	v->tid = tid;
	snprintf(v->saved, sizeof(v->saved), "%s %s", q, p);
	snprintf(v->dir, sizeof(v->dir), "%s", line + off);
	return true;
}

int throttle_state_read(const char *path, struct throttle *t, pid_t *owner,
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
		else if (!strncmp(line, "vcg ", 4)) {
			if (!vcg_parse(line, t, path)) {
				fclose(f);
				return -1;
			}
		}
		else if (io_state_parse(line, &t->io))
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

// SPDX-License-Identifier: GPL-2.0-only
/*
 * kmod_harvest: what one harvest of a dirty tracker costs the live engine,
 * run by bench/kmod.sh inside a VM with lmig.ko loaded.
 *
 *   kmod_harvest [--object-writes any|mapped] SIZE_MIB REPS TRACKER... -- CASE...
 *
 * --object-writes is `lmig send`'s: with any (the default) the object
 * check also compares every page not reported whenever the object's
 * timestamps changed, which a write through a mapping does on tmpfs; with
 * mapped only the tracker's own report (and its refinement) is paid.
 *
 * A memfd of SIZE_MIB is mapped by a child process (at a 2 MiB-aligned
 * address, so shmem can use 2 MiB folios when shmem_enabled allows) and
 * filled.  Per tracker, the parent hashes every page (the record of what
 * was sent), opens the tracker with the child as the writer and, per case
 * and rep, has the child write one set of pages once, then times one
 * tracker_harvest() — the module's or the kernel's walk plus the hash
 * refinement of fully reported 2 MiB blocks, exactly what a round of
 * `lmig send` pays — and re-hashes the reported pages (not timed).
 *
 * CASE is PERCENT:RUN: PERCENT of the pages, in runs of RUN consecutive
 * pages (RUN-aligned) at random places; RUN 1 is uniformly random pages.
 *
 * One line per tracker and case:
 *   harvest TRACKER CASE ms=MEDIAN min=MIN written=N reported=N refined=N read_mib=R
 * (per-rep medians; reported = pages set after refinement).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "chan/codec.h"
#include "lib/err.h"
#include "live/track.h"

#define PAGE	4096ULL
#define HUGE	(2ULL << 20)
#define MAXREP	16

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

/* The pages a case writes in one rep: distinct, sorted by construction. */
static uint64_t pick(uint8_t *mark, uint64_t npages, double pct, uint64_t run, uint64_t *list)
{
	uint64_t want = (uint64_t)(npages * pct / 100), runs = npages / run, n = 0;

	memset(mark, 0, runs);
	while (n < want) {
		uint64_t r = next() % runs;

		if (mark[r])
			continue;
		mark[r] = 1;
		n += run;
	}
	n = 0;
	for (uint64_t r = 0; r < runs; r++)
		if (mark[r])
			for (uint64_t p = 0; p < run; p++)
				list[n++] = r * run + p;
	return n;
}

/* The child: write the pages named on the pipe, acknowledge each batch. */
static void writer(int cmd, int ack, uint8_t *mem, uint64_t npages)
{
	uint64_t n, gen = 0, *list = malloc(npages * sizeof(*list));

	if (!list)
		_exit(1);
	for (uint64_t p = 0; p < npages; p++)
		memset(mem + p * PAGE, 0x5a, PAGE);
	if (write(ack, "f", 1) != 1)
		_exit(1);
	while (read(cmd, &n, sizeof(n)) == sizeof(n)) {
		size_t got = 0;

		while (got < n * sizeof(*list)) {
			ssize_t r = read(cmd, (char *)list + got, n * sizeof(*list) - got);

			if (r <= 0)
				_exit(1);
			got += r;
		}
		gen++;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t *w = (uint64_t *)(mem + list[i] * PAGE);

			w[0] = gen;
			w[1] = list[i];
		}
		if (write(ack, "w", 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int cmd[2], ack[2], fd, reps, sep = 0;
	uint64_t size, npages, *sent, *bitmap, *list, words;
	uint8_t *mem, *mark, *buf;
	bool mapped_only = false;
	pid_t pid;
	char c;

	if (argc > 2 && !strcmp(argv[1], "--object-writes")) {
		if (strcmp(argv[2], "any") && strcmp(argv[2], "mapped")) {
			fprintf(stderr, "kmod_harvest: --object-writes: '%s' is not any or mapped\n",
				argv[2]);
			return 2;
		}
		mapped_only = !strcmp(argv[2], "mapped");
		argv += 2;
		argc -= 2;
	}
	if (argc < 5)
		goto usage;
	size = strtoull(argv[1], NULL, 0) << 20;
	reps = atoi(argv[2]);
	for (int i = 3; i < argc; i++)
		if (!strcmp(argv[i], "--"))
			sep = i;
	if (!size || size % HUGE || reps < 1 || reps > MAXREP || sep < 4 || sep == argc - 1)
		goto usage;
	npages = size / PAGE;
	words = bitmap_words(npages);

	fd = memfd_create("lmig-bench", 0);
	if (fd < 0 || ftruncate(fd, size))
		return perror("memfd"), 1;
	/* 2 MiB aligned, so a PMD can map a 2 MiB folio. */
	mem = mmap(NULL, size + HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return perror("mmap"), 1;
	mem = (uint8_t *)(((uintptr_t)mem + HUGE - 1) & ~(HUGE - 1));
	if (mmap(mem, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		return perror("mmap memfd"), 1;
	sent = calloc(npages, sizeof(*sent));
	bitmap = calloc(words, sizeof(*bitmap));
	list = calloc(npages, sizeof(*list));
	mark = calloc(npages, 1);
	buf = aligned_alloc(PAGE, PAGE);
	if (!sent || !bitmap || !list || !mark || !buf || pipe(cmd) || pipe(ack))
		return perror("setup"), 1;
	pid = fork();
	if (pid == 0) {
		close(cmd[1]);
		close(ack[0]);
		writer(cmd[0], ack[1], mem, npages);
	}
	close(cmd[0]);
	close(ack[1]);
	/* Only the child maps it: the parent's mapping would be one more to clean. */
	munmap(mem, size);
	if (read(ack[0], &c, 1) != 1)
		return fprintf(stderr, "the writer failed\n"), 1;
	codec_init();

	for (int ti = 3; ti < sep; ti++) {
		struct track_target tg = { .fd = fd, .pid = pid, .size = size, .sent = sent,
					   .mapped_writes_only = mapped_only };
		struct tracker t;
		char why[512];

		for (uint64_t p = 0; p < npages; p++) {
			if (pread(fd, buf, PAGE, p * PAGE) != (ssize_t)PAGE)
				return perror("pread"), 1;
			sent[p] = codec_page_hash(buf);
		}
		if (tracker_open(&t, argv[ti], &tg, why, sizeof(why))) {
			printf("harvest %s error %s\n", argv[ti], lmig_errmsg());
			lmig_err_clear();
			continue;
		}
		for (int ci = sep + 1; ci < argc; ci++) {
			double pct = atof(argv[ci]), ms[MAXREP], mib[MAXREP];
			uint64_t run = strchr(argv[ci], ':') ? strtoull(strchr(argv[ci], ':') + 1, NULL, 0) : 1;
			uint64_t written = 0, reported = 0, refined = 0;
			int ok = 1;

			if (!run || npages % run || pct <= 0 || pct > 100) {
				printf("harvest %s %s error bad case\n", argv[ti], argv[ci]);
				continue;
			}
			rng = 0x9E3779B97F4A7C15ULL + ci;	/* the same pages for every tracker */
			for (int r = 0; r < reps && ok; r++) {
				uint64_t n = pick(mark, npages, pct, run, list), r0 = t.pages_refined,
					 b0 = t.bytes_read;
				double t0;

				if (write(cmd[1], &n, sizeof(n)) != sizeof(n) ||
				    write(cmd[1], list, n * sizeof(*list)) != (ssize_t)(n * sizeof(*list)) ||
				    read(ack[0], &c, 1) != 1)
					return fprintf(stderr, "the writer failed\n"), 1;
				memset(bitmap, 0, words * sizeof(*bitmap));
				t0 = mono();
				if (tracker_harvest(&t, bitmap)) {
					printf("harvest %s %s error %s\n", argv[ti], argv[ci], lmig_errmsg());
					ok = 0;
					break;
				}
				ms[r] = (mono() - t0) * 1000;
				mib[r] = (t.bytes_read - b0) / 1048576.0;
				written = n;
				reported = bitmap_count(bitmap, npages);
				refined = t.pages_refined - r0;
				/* What is sent now: the reported pages' new content. */
				for (uint64_t p = 0; p < npages; p++) {
					if (!(bitmap[p / 64] >> (p % 64) & 1))
						continue;
					if (pread(fd, buf, PAGE, p * PAGE) != (ssize_t)PAGE)
						return perror("pread"), 1;
					sent[p] = codec_page_hash(buf);
				}
			}
			if (!ok)
				continue;
			qsort(ms, reps, sizeof(*ms), cmp_dbl);
			qsort(mib, reps, sizeof(*mib), cmp_dbl);
			printf("harvest %s %s ms=%.2f min=%.2f written=%llu reported=%llu refined=%llu read_mib=%.1f\n",
			       argv[ti], argv[ci], ms[reps / 2], ms[0], (unsigned long long)written,
			       (unsigned long long)reported, (unsigned long long)refined, mib[reps / 2]);
			fflush(stdout);
		}
		tracker_close(&t);
	}
	close(cmd[1]);
	waitpid(pid, NULL, 0);
	return 0;
usage:
	fprintf(stderr, "usage: kmod_harvest [--object-writes any|mapped] SIZE_MIB REPS TRACKER... -- PERCENT[:RUN]...\n");
	return 2;
}

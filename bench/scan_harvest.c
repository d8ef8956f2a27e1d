// SPDX-License-Identifier: GPL-2.0-only
/*
 * scan_harvest: what a harvest of the scan tracker (user/live/track_scan.c)
 * costs on a shared object already mapped and faulted in, as the final
 * harvest of a migration finds it: whole, and in the 8 MiB parts the
 * final round takes it in (live/precopy_final.c).
 *
 *   scan_harvest FILE [RUNS]      (default 9 runs; median and least printed)
 *
 * The hashes "sent" are the object's own, so nothing is found dirty and
 * only the read and the hash are timed.  The first harvest, which faults
 * the mapping in, is left out.  Prints one line a way of harvesting.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "chan/codec.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "live/track.h"

#define PAGE		LMIG_PAGE_SIZE
#define PART_PAGES	((8 << 20) / PAGE)
#define RUNS_MAX	64

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The hash of every page of the object, as the sender would have sent it. */
static uint64_t *object_hashes(int fd, uint64_t npages)
{
	uint64_t *h = calloc(npages, 8);
	uint8_t *buf = aligned_alloc(PAGE, PAGE);

	if (!h || !buf)
		exit(1);
	for (uint64_t p = 0; p < npages; p++) {
		ssize_t n = pread(fd, buf, PAGE, (off_t)(p * PAGE));

		if (n < 0)
			exit(1);
		memset(buf + n, 0, PAGE - n);
		h[p] = codec_page_hash(buf);
	}
	free(buf);
	return h;
}

static int harvest(struct tracker *t, uint64_t *bm, bool parts)
{
	if (!parts)
		return tracker_harvest(t, bm);
	for (uint64_t first = 0; first < t->npages; first += PART_PAGES) {
		uint64_t end = first + PART_PAGES < t->npages ? first + PART_PAGES : t->npages;

		if (tracker_harvest_part(t, bm, first, end, first == 0, end == t->npages))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int runs = argc > 2 ? atoi(argv[2]) : 9;
	int fd = argc > 1 ? open(argv[1], O_RDONLY | O_CLOEXEC) : -1;
	struct track_target tg = { .fd = fd, .pidfd = -1 };
	double ms[2][RUNS_MAX];
	uint64_t *bm, read0, dirty = 0;
	struct tracker t;
	struct stat st;
	char why[256];

	if (fd < 0 || runs < 1 || runs > RUNS_MAX || fstat(fd, &st)) {
		fprintf(stderr, "usage: scan_harvest FILE [RUNS <= %d]\n", RUNS_MAX);
		return 1;
	}
	tg.size = (uint64_t)st.st_size;
	tg.sent = object_hashes(fd, (tg.size + PAGE - 1) / PAGE);
	if (tracker_open(&t, "scan", &tg, why, sizeof(why))) {
		fprintf(stderr, "scan_harvest: %s\n", lmig_errmsg());
		return 1;
	}
	bm = calloc(bitmap_words(t.npages), 8);
	if (!bm || harvest(&t, bm, false))
		return 1;
	read0 = t.bytes_read;
	/* Whole and in parts alternately, so that both see the same machine. */
	for (int i = 0; i < runs; i++) {
		for (int parts = 0; parts < 2; parts++) {
			double t0 = now_s();

			if (harvest(&t, bm, parts)) {
				fprintf(stderr, "scan_harvest: %s\n", lmig_errmsg());
				return 1;
			}
			ms[parts][i] = (now_s() - t0) * 1000;
		}
	}
	dirty = bitmap_count(bm, t.npages);
	for (int parts = 0; parts < 2; parts++) {
		double data = (double)(t.bytes_read - read0) / (2 * runs);

		qsort(ms[parts], runs, sizeof(double), cmp_dbl);
		printf("%-6s data %4.0f MiB  median %7.2f ms  least %7.2f ms  %5.2f GB/s (median)  dirty %llu\n",
		       parts ? "parts" : "whole", data / (1 << 20), ms[parts][runs / 2], ms[parts][0],
		       data / ms[parts][runs / 2] / 1e6, (unsigned long long)dirty);
	}
	tracker_close(&t);
	return 0;
}

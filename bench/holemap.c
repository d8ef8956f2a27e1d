// SPDX-License-Identifier: GPL-2.0-only
/*
 * holemap: what the trackers' object check costs per harvest on a shared
 * object (user/live/track.c): the data/hole map walk (track_data_map()) of a
 * memfd of SIZE bytes, fully data and with holes punched, next to a read
 * and hash of every data page (what a harvest adds when the object's
 * timestamps changed).
 *
 *   holemap [SIZE_MIB [RUNS]]     (default 1024 MiB, 5 runs; median printed)
 *
 * Prints a Markdown table.  Built by bench/holemap.sh against user/.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/clock.h"
#include "chan/codec.h"
#include "lib/err.h"
#include "live/track.h"

#define PAGE	LMIG_PAGE_SIZE
#define CHUNK	(1 << 20)

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return v[n / 2];
}

/* Median seconds of a data map walk; *data gets the data pages. */
static double walk(int fd, uint64_t size, uint64_t *map, int runs, uint64_t *data)
{
	double t[64];

	for (int i = 0; i < runs; i++) {
		double t0 = now_s();

		if (track_data_map(fd, size, map)) {
			fprintf(stderr, "holemap: %s\n", lmig_errmsg());
			exit(1);
		}
		t[i] = now_s() - t0;
	}
	*data = bitmap_count(map, size / PAGE);
	return median(t, runs);
}

/* Median seconds to read and hash every data page, as a rescan does. */
static double rescan(int fd, uint64_t size, const uint64_t *map, int runs)
{
	uint8_t *buf = aligned_alloc(PAGE, CHUNK);
	volatile uint64_t sink = 0;
	double t[64];

	for (int i = 0; i < runs; i++) {
		double t0 = now_s();

		for (uint64_t p = 0; p < size / PAGE;) {
			uint64_t n = 0;

			while (p + n < size / PAGE && n < CHUNK / PAGE && bitmap_test(map, p + n))
				n++;
			if (!n) {
				p++;
				continue;
			}
			if (pread(fd, buf, n * PAGE, (off_t)(p * PAGE)) != (ssize_t)(n * PAGE))
				exit(1);
			for (uint64_t j = 0; j < n; j++)
				sink += codec_page_hash(buf + j * PAGE);
			p += n;
		}
		t[i] = now_s() - t0;
	}
	free(buf);
	return median(t, runs);
}

static void row(const char *what, int fd, uint64_t size, uint64_t *map, int runs)
{
	uint64_t data, extents = 0;
	double w = walk(fd, size, map, runs, &data), r = rescan(fd, size, map, runs);

	for (uint64_t p = 0; p < size / PAGE; p++)
		extents += bitmap_test(map, p) && (p == 0 || !bitmap_test(map, p - 1));
	printf("| %s | %llu | %llu | %.3f | %.1f |\n", what, (unsigned long long)data,
	       (unsigned long long)extents, w * 1000, r * 1000);
}

int main(int argc, char **argv)
{
	uint64_t size = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) << 20;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	uint64_t *map = calloc(bitmap_words(size / PAGE), 8), x = 88172645463325252ULL;
	int fd = memfd_create("lmig-holemap", MFD_CLOEXEC);
	uint8_t *m;

	if (runs < 1 || runs > 64 || !map || fd < 0 || ftruncate(fd, (off_t)size))
		return 1;
	codec_init();
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	/* Every page data, and not zero (a zero page is still data). */
	for (uint64_t p = 0; p < size / PAGE; p++)
		memset(m + p * PAGE, (int)(p % 255) + 1, PAGE);
	printf("| %llu MiB memfd | data pages | data extents | map walk ms | read+hash ms |\n",
	       (unsigned long long)(size >> 20));
	printf("|---|---|---|---|---|\n");
	row("all data", fd, size, map, runs);
	/* 1 % of the pages punched, at random. */
	for (uint64_t i = 0; i < size / PAGE / 100; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(x % (size / PAGE) * PAGE), PAGE);
	}
	row("1 % holes (random pages)", fd, size, map, runs);
	/* The worst case: every other page a hole. */
	for (uint64_t p = 1; p < size / PAGE; p += 2)
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(p * PAGE), PAGE);
	row("every other page a hole", fd, size, map, runs);
	fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size);
	row("all holes", fd, size, map, runs);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * page_hash: each build of the page hash (user/chan/page_hash.h) this CPU
 * runs, on pages in the cache (1 MiB hashed over and over: the sender's
 * and the receiver's case, a page hashed right after it was read or
 * decoded) and on a file's pages mapped and faulted in, read from memory
 * (the scan harvest's case), one thread, the builds in turn.
 *
 *   page_hash [FILE [RUNS]]      (default: 600 MiB anonymous, 7 runs; medians)
 *
 * Built by bench/lib.sh's bench_cc against user/.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "chan/page_hash.h"
#include "lib/clock.h"

#define PAGE	LMIG_PAGE_SIZE
#define HOT	(1 << 20)

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Seconds f takes over len bytes at m, hashed reps times. */
static double run(page_hash_fn f, const uint8_t *m, size_t len, int reps)
{
	volatile uint64_t sink = 0;
	double t0 = now_s();

	for (int k = 0; k < reps; k++)
		for (size_t o = 0; o < len; o += PAGE)
			sink += f(m + o);
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "baseline (SSE2)", "AVX2", "AVX-512" };
	const page_hash_fn builds[] = { page_hash_generic, page_hash_avx2, page_hash_avx512 };
	int runs = argc > 2 ? atoi(argv[2]) : 7;
	static double hot[3][64], cold[3][64];
	size_t len = 600 << 20;
	uint8_t *m;

	if (argc > 1) {
		int fd = open(argv[1], O_RDONLY);
		struct stat st;

		if (fd < 0 || fstat(fd, &st))
			return 1;
		len = (size_t)st.st_size / PAGE * PAGE;
		m = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	} else {
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED)
			for (size_t i = 0; i < len; i += 8)
				*(uint64_t *)(m + i) = i * 0x9e3779b97f4a7c15ULL;
	}
	if (m == MAP_FAILED || runs < 1 || runs > 64)
		return 1;
	/* The builds in turn within each run, so that all see the same machine. */
	for (int r = 0; r < runs; r++)
		for (size_t i = 0; i < 3; i++) {
			if (!page_hash_cpu_has(builds[i]))
				continue;
			hot[i][r] = run(builds[i], m, HOT, (int)(len / HOT));
			cold[i][r] = run(builds[i], m, len, 1);
		}
	printf("| build | in the cache GB/s | from memory (%zu MiB) GB/s | picked |\n", len >> 20);
	printf("|---|--:|--:|---|\n");
	for (size_t i = 0; i < 3; i++) {
		if (!page_hash_cpu_has(builds[i]))
			continue;
		qsort(hot[i], runs, sizeof(double), cmp_dbl);
		qsort(cold[i], runs, sizeof(double), cmp_dbl);
		printf("| %s | %.1f | %.1f | %s |\n", names[i], (double)len / hot[i][runs / 2] / 1e9,
		       (double)len / cold[i][runs / 2] / 1e9, builds[i] == page_hash_picked ? "yes" : "");
	}
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The rounds of a no-lost-write check (test_nolost, test_vm --nolost): a
 * tracker harvested again and again while a writer runs, each reported
 * page copied, the writer paused for the last round (as a VM is at
 * switch-over), and then the copy compared with the memory.
 */
#ifndef SELFTEST_NOLOST_H
#define SELFTEST_NOLOST_H

#include <stdint.h>

struct nl_rounds {
	uint64_t npages;
	double seconds;		/* the writer runs this long before the final round */
	/* 0, or -1 with the cause in lmig_errmsg() */
	int (*harvest)(void *ctx, uint64_t *bitmap);
	/* n pages from page on into buf: 0, or -1 with errno set */
	int (*read)(void *ctx, uint64_t page, uint64_t n, uint8_t *buf);
	/* stop the writer and all it started */
	void (*pause)(void *ctx);
	/* page was copied again into data (NULL: nothing to note) */
	void (*copied)(void *ctx, uint64_t page, const uint8_t *data);
	void *ctx;
	/* What happened. */
	unsigned int harvests;	/* rounds that another round followed */
	uint64_t copied_pages;
	uint64_t differ;	/* pages of the copy that differ from the memory */
};

/*
 * dst holds the first full copy, taken after the tracker started; src
 * receives the memory at the end.  0, or -1 after one line on stdout.
 */
int nl_rounds_run(struct nl_rounds *r, uint8_t *dst, uint8_t *src);

#endif

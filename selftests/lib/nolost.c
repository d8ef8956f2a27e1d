// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/err.h"
#include "live/track.h"
#include "lib/nolost.h"
#include "lib/proc.h"

int nl_rounds_run(struct nl_rounds *r, uint8_t *dst, uint8_t *src)
{
	uint64_t words = bitmap_words(r->npages);
	uint64_t *bitmap = calloc(words, 8);
	double t0 = mono_s();
	bool last = false;

	if (!bitmap)
		return printf("out of memory\n"), -1;
	while (!last) {
		if (mono_s() - t0 > r->seconds) {
			r->pause(r->ctx);
			last = true;
		}
		memset(bitmap, 0, words * 8);
		if (r->harvest(r->ctx, bitmap)) {
			printf("harvest: %s\n", lmig_errmsg());
			free(bitmap);
			return -1;
		}
		for (uint64_t p = 0; p < r->npages; p++) {
			uint8_t *page = dst + p * LMIG_PAGE_SIZE;

			if (!bitmap_test(bitmap, p))
				continue;
			if (r->read(r->ctx, p, 1, page)) {
				printf("read: %s\n", strerror(errno));
				free(bitmap);
				return -1;
			}
			if (r->copied)
				r->copied(r->ctx, p, page);
			r->copied_pages++;
		}
		if (!last) {
			r->harvests++;
			usleep(1000);
		}
	}
	free(bitmap);
	if (r->read(r->ctx, 0, r->npages, src))
		return printf("read: %s\n", strerror(errno)), -1;
	for (uint64_t p = 0; p < r->npages; p++)
		r->differ += !!memcmp(src + p * LMIG_PAGE_SIZE, dst + p * LMIG_PAGE_SIZE,
				      LMIG_PAGE_SIZE);
	return 0;
}

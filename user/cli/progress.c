// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>

#include "lib/parse.h"
#include "image/image.h"

void progress_show(const char *verb, uint64_t done, uint64_t total, double elapsed,
		   const char *extra, bool final)
{
	char a[32], b[32];
	double rate = elapsed > 0 ? done / elapsed / 1e6 : 0;

	fprintf(stderr, "\r%s %s / %s  %3.0f%%  %7.1f MB/s%s%s%s", verb,
		fmt_bytes(a, sizeof(a), (double)done), fmt_bytes(b, sizeof(b), (double)total),
		total ? 100.0 * done / total : 100.0, rate, extra ? "  " : "", extra ? extra : "",
		final ? "\n" : "   ");
	fflush(stderr);
}

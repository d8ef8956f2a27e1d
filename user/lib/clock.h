/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef LMIG_CLOCK_H
#define LMIG_CLOCK_H

#include <time.h>

/* Monotonic seconds. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Monotonic milliseconds (deadlines of the blocking socket helpers). */
static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

#endif

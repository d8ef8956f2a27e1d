// SPDX-License-Identifier: GPL-2.0-only
/* The decisions of a resume: see resume_policy.h. */
#include "stream/resume_policy.h"

enum rtake resume_take(uint64_t have, uint64_t off, uint32_t len, uint32_t *skip)
{
	*skip = 0;
	if (off > have)
		return RT_GAP;
	if (off == have)
		return RT_NEW;
	if (off + len <= have)
		return RT_DUP;
	*skip = (uint32_t)(have - off);
	return RT_PART;
}

int resume_backoff_ms(unsigned int attempt, int64_t elapsed_ms, int64_t budget_ms)
{
	int64_t wait = RESUME_BACKOFF_FIRST_MS, left = budget_ms - elapsed_ms;

	if (left <= 0)
		return -1;
	while (attempt-- && wait < RESUME_BACKOFF_MAX_MS)
		wait *= 2;
	if (wait > RESUME_BACKOFF_MAX_MS)
		wait = RESUME_BACKOFF_MAX_MS;
	return (int)(wait < left ? wait : left);
}

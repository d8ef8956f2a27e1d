/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The decisions of a resume (LMIG_CAP_RESUME), pure: what a receiver does
 * with a block that may have come before a break, and how long a source
 * waits before connecting again.
 */
#ifndef LMIG_RESUME_POLICY_H
#define LMIG_RESUME_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* --resume-timeout: seconds a broken channel has to come back. */
#define RESUME_TIMEOUT_DEFAULT_S	30
#define RESUME_BACKOFF_FIRST_MS		50
#define RESUME_BACKOFF_MAX_MS		2000

enum rtake {
	RT_NEW,		/* the next bytes: take them all */
	RT_DUP,		/* all already taken: drop the block */
	RT_PART,	/* starts below what was taken: take from *skip on */
	RT_GAP,		/* starts beyond what was taken: bytes are missing */
};

/* A block [off, off + len) of a direction of which have bytes were taken. */
enum rtake resume_take(uint64_t have, uint64_t off, uint32_t len, uint32_t *skip);

/*
 * The wait before connection attempt number attempt (0 = the first after
 * the break), elapsed_ms after the break, with budget_ms in all: the wait
 * doubles from RESUME_BACKOFF_FIRST_MS to RESUME_BACKOFF_MAX_MS and never
 * goes past the budget; -1: the budget is spent, give up.
 */
int resume_backoff_ms(unsigned int attempt, int64_t elapsed_ms, int64_t budget_ms);

#endif

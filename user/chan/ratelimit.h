/* SPDX-License-Identifier: GPL-2.0-only */
/* Token bucket on wire bytes for --bandwidth. */
#ifndef LMIG_RATELIMIT_H
#define LMIG_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	double rate;		/* bytes per second; 0 = unlimited */
	double tokens;		/* may go negative: a frame is never split */
	double burst;
	double last;
};

void ratelimit_init(struct ratelimit *rl, uint64_t rate);
/* Seconds to wait before the next frame may be sent; 0 when it may go now. */
double ratelimit_wait(struct ratelimit *rl);
void ratelimit_take(struct ratelimit *rl, uint64_t bytes);

#endif

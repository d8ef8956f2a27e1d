// SPDX-License-Identifier: GPL-2.0-only
#include "lib/clock.h"
#include "chan/ratelimit.h"

void ratelimit_init(struct ratelimit *rl, uint64_t rate)
{
	rl->rate = (double)rate;
	/* 20 ms of burst: smooth enough for a shaped link, large enough for one frame. */
	rl->burst = rl->rate * 0.02;
	if (rl->burst < 256 * 1024)
		rl->burst = 256 * 1024;
	rl->tokens = rl->burst;
	rl->last = now_s();
}

static void refill(struct ratelimit *rl)
{
	double t = now_s();

	rl->tokens += (t - rl->last) * rl->rate;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
	rl->last = t;
}

double ratelimit_wait(struct ratelimit *rl)
{
	if (!rl->rate)
		return 0;
	refill(rl);
	return rl->tokens >= 0 ? 0 : -rl->tokens / rl->rate;
}

void ratelimit_take(struct ratelimit *rl, uint64_t bytes)
{
	if (rl->rate)
		rl->tokens -= (double)bytes;
}

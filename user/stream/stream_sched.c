// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stream sender's scheduling decision (stream_sched.h says what and
 * why): classes by what was read lately, latency mode by the return
 * direction's activity, and the limits and order that follow from both.
 */
#include "stream/stream_sched.h"

/* Bytes read over the last two periods, as seen at now. */
static uint64_t recent(const struct ssched_stream *st, double now)
{
	if (!st->t_period || now - st->t_period >= 2 * SSCHED_PERIOD_S)
		return 0;
	if (now - st->t_period >= SSCHED_PERIOD_S)
		return st->cur;
	return st->cur + st->prev;
}

void ssched_read(struct ssched_stream *st, double now, size_t n)
{
	if (!st->t_period) {
		st->t_period = now;
	} else if (now - st->t_period >= SSCHED_PERIOD_S) {
		st->prev = now - st->t_period >= 2 * SSCHED_PERIOD_S ? 0 : st->cur;
		st->cur = 0;
		st->t_period = now;
	}
	st->cur += n;
}

enum ssched_class ssched_class(const struct ssched_stream *st, double now)
{
	return recent(st, now) < SSCHED_LIGHT ? SSCHED_URGENT : SSCHED_BULK;
}

void ssched_returned(struct ssched *s, double now)
{
	if (s->t_return && now - s->t_return < SSCHED_HOLD_S)
		s->returns++;
	else
		s->returns = 1;
	s->t_return = now;
}

static bool latency(const struct ssched *s, double now)
{
	return s->returns >= 2 && now - s->t_return < SSCHED_HOLD_S;
}

void ssched_stream_read(struct ssched *s, double now, enum ssched_class cls, bool returned)
{
	if (cls == SSCHED_URGENT && !returned && latency(s, now))
		s->t_split = now;
}

enum ssched_mode ssched_mode(const struct ssched *s, double now)
{
	if (!latency(s, now))
		return SSCHED_NORMAL;
	return s->t_split && now - s->t_split < SSCHED_HOLD_S ? SSCHED_SPLIT : SSCHED_SHARED;
}

uint64_t ssched_window(const struct ssched *s, enum ssched_class cls, enum ssched_mode mode)
{
	uint64_t win = s->fine_credit ? SSCHED_LAT_WINDOW : SSCHED_LAT_WINDOW_COARSE;

	if (mode != SSCHED_SHARED || cls == SSCHED_URGENT || win > s->window)
		return s->window;
	return win;
}

size_t ssched_read_room(const struct ssched *s, enum ssched_class cls, enum ssched_mode mode,
			uint64_t off, uint64_t acked, size_t unsent, unsigned int nch)
{
	uint64_t win = ssched_window(s, cls, mode), ahead = off - acked;
	size_t block = s->block, lim = s->unsent;

	if (mode == SSCHED_SHARED && cls == SSCHED_BULK && block > SSCHED_LAT_BLOCK)
		block = SSCHED_LAT_BLOCK;
	/* One channel: urgent frames queue behind what bulk ones wait in. */
	if (mode != SSCHED_NORMAL && nch < 2 && lim > SSCHED_LAT_UNSENT)
		lim = SSCHED_LAT_UNSENT;
	if (acked > off || ahead >= win)
		return 0;
	if (cls == SSCHED_BULK && unsent >= (uint64_t)nch * lim)
		return 0;
	return win - ahead < block ? (size_t)(win - ahead) : block;
}

int ssched_lowat(const struct ssched *s, enum ssched_mode mode, unsigned int nch)
{
	if (mode != SSCHED_NORMAL && nch < 2 && s->lowat > SSCHED_LAT_LOWAT)
		return SSCHED_LAT_LOWAT;
	return s->lowat;
}

void ssched_order(const enum ssched_class *cls, unsigned int n, unsigned int rr,
		  unsigned int *order)
{
	unsigned int k = 0;

	for (int want = SSCHED_URGENT; want >= SSCHED_BULK; want--)
		for (unsigned int t = 0; t < n; t++) {
			unsigned int i = (rr + t) % n;

			if ((int)cls[i] == want)
				order[k++] = i;
		}
}

int ssched_channel(enum ssched_class cls, const bool *room, const size_t *queued,
		   unsigned int nch, unsigned int rr, enum ssched_mode mode)
{
	bool keep = mode != SSCHED_NORMAL && nch >= 2;	/* the last channel is the urgent frames' */
	unsigned int n = nch;
	int best = -1;

	if (keep && cls == SSCHED_URGENT && room[nch - 1])
		return (int)nch - 1;
	if (keep && cls == SSCHED_BULK)
		n = nch - 1;
	for (unsigned int t = 0; t < n; t++) {
		unsigned int c = (rr + t) % n;

		if (!room[c])
			continue;
		if (cls == SSCHED_BULK)
			return (int)c;
		if (best < 0 || queued[c] < queued[best])
			best = (int)c;
	}
	return best;
}

// SPDX-License-Identifier: GPL-2.0-only
#include <string.h>

#include "proxy.h"

/*
 * Bytes from c->fd[0] about to go to the receiver: apply the faults.
 * Returns how many of the n bytes to forward; sets *cut when the stream
 * must end after them.
 */
static size_t damage(struct proxy *p, uint8_t *buf, size_t n, bool *cut)
{
	int64_t at = p->forwarded;

	if (p->flip_at >= at && p->flip_at < at + (int64_t)n) {
		buf[p->flip_at - at] ^= 0xff;
		p->flipped = true;
	}
	if (p->cut_after >= 0 && at + (int64_t)n >= p->cut_after) {
		n = p->cut_after - at;
		*cut = true;
	}
	p->forwarded += n;
	return n;
}

static int proxy_pass(struct fwd *f, struct fwd_pair *c, int s, uint8_t *buf, size_t n)
{
	bool cut = false;
	int rc;

	if (c->first && s == 0)
		n = damage(f->ctx, buf, n, &cut);
	rc = fwd_write(c, s, buf, n);
	/* The cut ends this pair too, written whole or not. */
	return cut ? 1 : rc;
}

static void proxy_cut(struct fwd *f)
{
	((struct proxy *)f->ctx)->cut = true;
}

int proxy_start(struct proxy *p, int target_port, int64_t flip_at, int64_t cut_after)
{
	memset(p, 0, sizeof(*p));
	p->flip_at = flip_at;
	p->cut_after = cut_after;
	p->f.pass = proxy_pass;
	p->f.on_cut = proxy_cut;
	p->f.ctx = p;
	return fwd_start(&p->f, target_port);
}

void proxy_stop(struct proxy *p)
{
	fwd_stop(&p->f);
}

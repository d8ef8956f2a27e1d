// SPDX-License-Identifier: GPL-2.0-only
#include <string.h>

#include "relay.h"
#include "sock.h"

_Static_assert(RELAY_MSG <= FWD_MSG_MAX, "a reply fits struct fwd_pair's message");

/*
 * Replies of the first connection, whole messages at a time.  Returns -1
 * when the pair failed, 1 when every connection must be cut, else 0.
 */
static int replies(struct relay *p, struct fwd_pair *c, const uint8_t *buf, size_t n)
{
	while (n) {
		size_t k = RELAY_MSG - c->have < n ? RELAY_MSG - c->have : n;
		uint32_t magic;

		memcpy(c->msg + c->have, buf, k);
		c->have += k;
		buf += k;
		n -= k;
		if (c->have < RELAY_MSG)
			break;
		c->have = 0;
		if (c->held)
			continue;
		magic = c->msg[0] | c->msg[1] << 8 | c->msg[2] << 16 | (uint32_t)c->msg[3] << 24;
		if (magic == p->magic && !p->hit) {
			p->hit = true;
			if (p->act == RELAY_CUT)
				return 1;
			if (p->act == RELAY_HOLD || p->act == RELAY_SWALLOW) {
				c->held = true;
				continue;
			}
			c->msg[9] ^= 0x01;	/* the pages field: only the checksum tells */
		}
		if (sock_write_full(c->fd[0], c->msg, RELAY_MSG))
			return -1;
	}
	return 0;
}

static int relay_pass(struct fwd *f, struct fwd_pair *c, int s, uint8_t *buf, size_t n)
{
	if (c->first && s == 1)
		return replies(f->ctx, c, buf, n);
	return fwd_write(c, s, buf, n);
}

/* RELAY_HOLD: the receiver's end is not passed on either. */
static bool relay_quiet(const struct fwd *f, const struct fwd_pair *c, int s)
{
	return s == 1 && c->held && ((const struct relay *)f->ctx)->act == RELAY_HOLD;
}

int relay_start(struct relay *p, int target_port, uint32_t magic, enum relay_act act)
{
	memset(p, 0, sizeof(*p));
	p->magic = magic;
	p->act = act;
	p->f.pass = relay_pass;
	p->f.quiet = relay_quiet;
	p->f.ctx = p;
	return fwd_start(&p->f, target_port);
}

void relay_stop(struct relay *p)
{
	fwd_stop(&p->f);
}

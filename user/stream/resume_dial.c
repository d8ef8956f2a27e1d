// SPDX-License-Identifier: GPL-2.0-only
/* Connecting a broken channel again: see resume_dial.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan/net.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "stream/resume_dial.h"
#include "stream/resume_policy.h"

/* One attempt: 0, or -1 with the cause in why. */
static int attempt(const struct resume_dial *d, int step, uint64_t have, struct chan *ch,
		   uint64_t *peer_have, char *why, size_t len)
{
	char reason[LMIG_REASON_LEN];
	enum rproof r;

	memset(ch, 0, sizeof(*ch));
	lmig_err_clear();
	ch->fd = net_connect(d->to, step);
	if (ch->fd < 0) {
		snprintf(why, len, "%s", lmig_errmsg());
		ch->fd = -1;
		return -1;
	}
	chan_keepalive(ch->fd);
	if (d->tls && tls_handshake(d->tls, ch->fd, step, "destination", &ch->tls))
		goto fail_err;
	r = resume_client(ch, d->ss, d->channel, have, peer_have, step, reason);
	if (r == RP_OK)
		return 0;
	if (r == RP_REFUSED)
		snprintf(why, len, "the destination refused: %s", reason);
	else if (r == RP_PEER_MAC)
		snprintf(why, len, "the destination does not know this session's secret");
	else if (r == RP_PROTOCOL)
		snprintf(why, len, "the destination answered with no resume message");
	else
		goto fail_err;
	goto fail;
fail_err:
	snprintf(why, len, "%s", lmig_has_err() ? lmig_errmsg() : "handshake failed");
fail:
	tls_chan_free(&ch->tls);
	close(ch->fd);
	ch->fd = -1;
	return -1;
}

int resume_dial(const struct resume_dial *d, uint64_t have, struct chan *ch,
		uint64_t *peer_have, unsigned int *tries)
{
	long long t0 = d->since_ms ? d->since_ms : now_ms();
	char why[256] = "no attempt fit in the budget";

	for (*tries = 0;; (*tries)++) {
		int wait = resume_backoff_ms(*tries, now_ms() - t0, d->budget_ms);
		long long left;

		if (wait < 0)
			break;
		/* The first wait counts from the break: the caller may have waited already. */
		if (!*tries && d->since_ms)
			wait = wait > now_ms() - t0 ? wait - (int)(now_ms() - t0) : 0;
		usleep((useconds_t)wait * 1000);
		/* Each step within what is left of the budget (a last try gets 100 ms). */
		left = d->budget_ms - (now_ms() - t0);
		left = left < 100 ? 100 : left;
		if (!attempt(d, left < d->step_ms ? (int)left : d->step_ms, have, ch, peer_have,
			     why, sizeof(why))) {
			(*tries)++;
			lmig_err_clear();
			return 0;
		}
	}
	lmig_err_clear();
	return lmig_err("channel %u broke and did not come back within %d s (--resume-timeout): %s",
			d->channel, d->budget_ms / 1000, why);
}

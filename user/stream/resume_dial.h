/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A broken channel connected again (LMIG_CAP_RESUME): the source tries,
 * with a backoff, until the budget (--resume-timeout) is spent; each try
 * is TCP, TLS when on, then the same-session proof (resume_proof.h).
 */
#ifndef LMIG_RESUME_DIAL_H
#define LMIG_RESUME_DIAL_H

#include <stdint.h>

#include "chan/channel.h"
#include "stream/resume_proof.h"

struct resume_dial {
	const char *to;			/* HOST:PORT of the destination lmig */
	const struct tls_conf *tls;	/* NULL: plain */
	const struct resume_sess *ss;
	uint16_t channel;
	int budget_ms;			/* from the break on */
	int step_ms;			/* each connect and handshake, within what is left */
	long long since_ms;		/* now_ms() of the break (the budget and the first
					 * wait count from it), or 0: from now */
};

/*
 * Connect channel d->channel again, telling the destination we took have
 * bytes of its direction: 0 with *ch up (its TLS session too) and
 * *peer_have what the destination took of ours, or -1 with lmig_err()
 * naming the budget and the last cause.  *tries counts the attempts.
 */
int resume_dial(const struct resume_dial *d, uint64_t have, struct chan *ch,
		uint64_t *peer_have, unsigned int *tries);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A TCP relay on 127.0.0.1 that forwards every connection to a target
 * port and damages the replies of the first connection (lmig's channel 0:
 * it connects first).  Everything a receiver sends there is a 120-byte
 * message (hello ack, round acknowledgement, verdict, final result), so
 * the relay acts on a message by its magic, whatever came before it.  It
 * runs in a thread of the test.
 */
#ifndef SELFTEST_RELAY_H
#define SELFTEST_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fwd.h"

#define RELAY_MSG	120

enum relay_act {
	RELAY_FLIP,	/* invert one bit of the message (its checksum then fails) */
	RELAY_CUT,	/* close every connection instead of passing it on */
	RELAY_HOLD,	/* never pass it on, nor anything after, nor the end */
	RELAY_SWALLOW,	/* never pass it on, nor anything after; pass the end on */
};

struct relay {
	struct fwd f;		/* f.port: where to connect */
	uint32_t magic;		/* the first reply with this magic is acted on */
	enum relay_act act;
	atomic_bool hit;	/* the message came and was acted on */
};

int relay_start(struct relay *p, int target_port, uint32_t magic, enum relay_act act);
/* Idempotent; safe on a relay that never started (zeroed). */
void relay_stop(struct relay *p);

#endif

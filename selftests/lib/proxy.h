/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A TCP proxy on 127.0.0.1 that forwards every connection to a target
 * port, and can damage the first connection's sender-to-receiver stream
 * (lmig's channel 0: it connects first) the way a bad link or a dying
 * peer would.  It runs in a thread of the test.
 */
#ifndef SELFTEST_PROXY_H
#define SELFTEST_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fwd.h"

struct proxy {
	struct fwd f;		/* f.port: where to connect; f.conns: connections seen */
	int64_t flip_at;	/* invert this byte of the stream, or -1 */
	int64_t cut_after;	/* close every socket after this many bytes, or -1 */
	/* What happened, for the test to check the fault really was injected. */
	atomic_int_fast64_t forwarded;	/* bytes of the first connection's stream */
	atomic_bool flipped, cut;
};

int proxy_start(struct proxy *p, int target_port, int64_t flip_at, int64_t cut_after);
/* Idempotent; safe on a proxy that never started (zeroed). */
void proxy_stop(struct proxy *p);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A TCP forwarder on 127.0.0.1, in a thread of the test: every connection
 * it accepts gets one of its own to a target port, and the bytes go both
 * ways, half-closes passed on as a network passes them.  What it does to
 * the bytes is its user's (proxy.c damages a stream, relay.c replies):
 * the pass hook.
 */
#ifndef SELFTEST_FWD_H
#define SELFTEST_FWD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FWD_MAX_CONN	16
#define FWD_MSG_MAX	128

struct fwd_pair {
	int fd[2];		/* [0] the sender's side, [1] the receiver's */
	bool first;		/* the first connection: the one faults apply to */
	bool eof[2];		/* side s sent its FIN (passed on as a half-close) */
	/* For a pass hook that works on whole messages. */
	bool held;		/* nothing more is passed on */
	uint8_t msg[FWD_MSG_MAX];	/* the message being assembled */
	size_t have;
};

struct fwd {
	int lfd, port, target;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	atomic_int conns;	/* connections accepted */
	/*
	 * n bytes read from side s of c: pass them on to the other side, or
	 * not.  0, -1 when the pair failed (it is closed), 1 when every
	 * connection must end and no new one be accepted, as when a link died.
	 */
	int (*pass)(struct fwd *f, struct fwd_pair *c, int s, uint8_t *buf, size_t n);
	/* Side s of c is not read for now (NULL: every side is read). */
	bool (*quiet)(const struct fwd *f, const struct fwd_pair *c, int s);
	/* After pass asked for the cut (NULL: nothing to note). */
	void (*on_cut)(struct fwd *f);
	void *ctx;		/* the hooks' */
};

/* Listen on a free port (f->port) and forward to target_port; 0 or -1. */
int fwd_start(struct fwd *f, int target_port);
void fwd_stop(struct fwd *f);
/* The pair's bytes to its other side unchanged: a pass hook's 0 or -1. */
int fwd_write(struct fwd_pair *c, int s, const uint8_t *buf, size_t n);

#endif

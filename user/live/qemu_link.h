/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control connection of lmig qemu: one TCP connection (TLS when the
 * RAM channels have it) from `lmig qemu send` to `lmig qemu recv`, beside
 * the page sessions of the guest's RAM blocks.  It carries, in order:
 *
 *   send -> recv   HELLO    the shared RAM blocks: id and size of each
 *   recv -> send   READY    a port for each block's page session
 *                  (or REFUSE: why the destination cannot take them)
 *   send -> recv   DEV ...  QEMU's own migration stream (its devices and
 *                  the RAM that is not shared), relayed between the two
 *                  QEMUs' unix sockets; DEV_END when the source QEMU
 *                  closed it
 *   recv -> send   RESULT   the destination QEMU's incoming migration:
 *                  completed or failed
 *
 * A message is a header (magic "MGQM", type, payload length; little
 * endian) and its payload.  The source closing the connection before
 * DEV_END means it gave up: the destination QEMU is told to quit.
 */
#ifndef LMIG_QEMU_LINK_H
#define LMIG_QEMU_LINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan/tls.h"
#include "host/qmp_memdev.h"

#define QLINK_MAGIC	0x4d51474dU	/* "MGQM" */
#define QLINK_VERSION	1
#define QLINK_DEV_MAX	(64 * 1024)	/* payload of one DEV message */

enum qlink_type {
	QL_HELLO = 1, QL_READY, QL_REFUSE, QL_DEV, QL_DEV_END, QL_RESULT,
};

/* Why a destination refuses the blocks (QL_REFUSE). */
enum qlink_refuse {
	QLR_BLOCKS = 1,		/* its QEMU has no shared backend of that id and size */
	QLR_SETUP,		/* its page sessions could not be set up */
	QLR_VERSION,		/* another version of this protocol */
};

struct qlink_block {
	char id[64];
	uint64_t size;
};

/*
 * The destination's decision on a HELLO: the source's blocks theirs[0..tn)
 * matched with this QEMU's shared backends mine[0..n) by id and size,
 * out[i] = mine's block for theirs[i].  Every one of mine must be named
 * too: a shared backend the source does not send would be skipped by
 * both QEMUs (x-ignore-shared) and hold nothing.  Returns -1 when all
 * match; i < tn: theirs[i] has no match; tn + j: mine[j] was not named.
 */
int qlink_match(const struct qmem_block *mine, unsigned int n, const struct qlink_block *theirs,
		unsigned int tn, struct qmem_block *out);

/* One end of the control connection. */
struct qlink {
	int fd;
	struct tls_chan tls;
	int timeout_ms;		/* each message's wait, once expected */
};

int qlink_send(struct qlink *l, uint32_t type, const void *p, uint32_t len);
/*
 * The next message: its type, and its payload into buf (cap bytes, a
 * longer one is an error) with its length in *len; waits wait_ms.  0, or
 * -1 with lmig_err() (also when the peer closed).
 */
int qlink_recv(struct qlink *l, uint32_t *type, void *buf, uint32_t cap, uint32_t *len,
	       int wait_ms);

/* HELLO and READY payloads, n blocks (at most QMEM_MAX). */
int qlink_hello(struct qlink *l, const struct qmem_block *b, unsigned int n);
int qlink_read_hello(struct qlink *l, struct qlink_block *b, unsigned int *n, int wait_ms);
int qlink_ready(struct qlink *l, const uint16_t *ports, unsigned int n);
int qlink_refuse(struct qlink *l, enum qlink_refuse why, const char *detail);
/*
 * READY's ports into ports[n]: 0; or 1 when the destination refused
 * (*why, detail); or -1 with lmig_err().
 */
int qlink_read_ready(struct qlink *l, uint16_t *ports, unsigned int n, enum qlink_refuse *why,
		     char *detail, size_t dlen);
/* RESULT: ok, and QEMU's error when not. */
int qlink_result(struct qlink *l, bool ok, const char *detail);
int qlink_read_result(struct qlink *l, bool *ok, char *detail, size_t dlen, int wait_ms);

/*
 * The relay of QEMU's stream, a thread at each end.  The source's accepts
 * its QEMU's connection on a unix socket of its own (qrelay_src_start())
 * and sends what QEMU writes as DEV messages, then DEV_END; the
 * destination's reads them and writes them to its QEMU's incoming unix
 * socket, connected at the first DEV, closed after DEV_END.
 */
struct qrelay {
	struct qlink *l;
	char path[108];		/* the unix socket */
	int lfd, qfd;		/* source: listening; both: QEMU's connection */
	int wait_ms;		/* longest wait for QEMU to connect (source), for the
				 * source's first message (destination) */
	pthread_t th;
	bool started, ended;	/* ended: DEV_END passed */
	uint64_t bytes;		/* QEMU's stream, bytes relayed */
	int ret;		/* the thread's: 0, or -1 with err */
	char err[256];
};

/* Listen on path, then relay in a thread.  0, or -1 with lmig_err(). */
int qrelay_src_start(struct qrelay *r, struct qlink *l, const char *path, int wait_ms);
int qrelay_dst_start(struct qrelay *r, struct qlink *l, const char *path, int wait_ms);
/* Wait for the thread: its result (r->err says why it failed). */
int qrelay_join(struct qrelay *r);
/* Make the thread give up (its sockets shut down), then join it. */
void qrelay_stop(struct qrelay *r);

#endif

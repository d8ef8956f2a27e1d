/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The stream transport behind `lmig pipe` and `lmig proxy`: byte streams
 * of unknown length (QEMU's migration stream and its multifd connections)
 * carried over lmig channels (include/lmig/stream.h).
 */
#ifndef LMIG_STREAM_H
#define LMIG_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <lmig/stream.h>

#include "chan/policy.h"

struct tls_conf;

/* Where streams come from or go to. */
enum sep_kind {
	SEP_STDIO,		/* stdin (source) or stdout (destination): one stream */
	SEP_UNIX,		/* unix:PATH */
	SEP_TCP,		/* tcp:HOST:PORT (or HOST:PORT) */
};

struct sendpoint {
	enum sep_kind kind;
	const char *addr;	/* PATH, or HOST:PORT */
};

struct stream_stats {
	uint64_t bytes_stream;		/* source: read from QEMU; destination: written to it */
	uint64_t bytes_wire;		/* on the lmig channels, both directions */
	uint64_t bytes_return;		/* the destination QEMU's bytes: read there, written here */
	uint64_t blocks, blocks_lz4;
	unsigned int streams, channels;
	unsigned int lz4_switches;
	unsigned int lz4_accel_max;	/* the fastest lz4 acceleration used (1 = default) */
	bool zerocopy, multishot;
	bool both_ways;			/* LMIG_CAP_RETURN: each stream carried both ways */
	const char *tls;		/* "off", "ktls", "userspace"; NULL: no session came up */
	char tls_binding[65];		/* channel 0's tls_binding(), "" without TLS */
	double total_s;			/* first stream opened .. the end */
	bool resume;			/* LMIG_CAP_RESUME: channels survive a break */
	unsigned int reconnects;	/* channels resumed after a break */
	double reconnect_s;		/* time channels spent broken, summed */
	unsigned int resume_refused;	/* destination: reconnects refused (no proof) */
};

struct stream_send_opts {
	struct sendpoint from;		/* SEP_STDIO or a listening endpoint */
	const char *to;			/* HOST:PORT of the destination lmig */
	unsigned int channels;
	enum compress_mode compress;
	uint64_t bandwidth;		/* bytes/s, 0 = no cap */
	int zerocopy;			/* -1 auto, 0 off, 1 on */
	int timeout_ms;			/* connect and handshake */
	unsigned int streams;		/* proxy: expect exactly this many, 0 = by grace */
	int grace_ms;			/* proxy: no new connection this long after all ended */
	int accept_timeout_ms;		/* proxy: for the first connection, -1 = forever */
	int ready_fd;			/* write the listening address here, or -1 */
	const struct tls_conf *tls;	/* NULL: plain TCP */
	int resume_timeout_ms;		/* a broken channel's budget; 0: no resume */
	uint64_t resume_buf;		/* bytes kept unacknowledged a channel */
};

struct stream_recv_opts {
	const char *listen;		/* HOST:PORT for the source lmig */
	struct sendpoint to;		/* SEP_STDIO or where the destination QEMU listens */
	int timeout_ms;			/* handshake, connecting to the destination, and
					 * the longest time without a byte written to it */
	int accept_timeout_ms;		/* for the source lmig, -1 = forever */
	uint64_t max_pending;		/* bytes held for all streams, see stream_recv.c */
	int ready_fd;
	const struct tls_conf *tls;	/* NULL: plain TCP */
	int resume_timeout_ms;		/* as stream_send_opts */
	uint64_t resume_buf;
};

int stream_send(const struct stream_send_opts *o, struct stream_stats *st);
int stream_recv(const struct stream_recv_opts *o, struct stream_stats *st);

/*
 * What the destination may hold for one stream: its window's bytes, and
 * their bookkeeping, twice the window, which blocks averaging 64 bytes or
 * more never reach.  Also the least stream_recv_opts.max_pending (for all
 * streams): less could refuse one stream using its window.
 */
#define STREAM_HELD_MAX			(2ULL * LMIG_STREAM_WINDOW)
#define STREAM_MAX_PENDING_DEFAULT	(256ULL << 20)

/* ---- shared by both sides (stream_common.c) ---- */

/* "unix:PATH", "tcp:HOST:PORT" or "HOST:PORT"; 0 or -1 with lmig_err(). */
int sendpoint_parse(const char *what, const char *s, struct sendpoint *ep);
/* A listening socket (a stale unix socket file is replaced); fd or -1. */
int sendpoint_listen(const struct sendpoint *ep);
/* Connect; fd, or -1 with the cause in errno (0: none the system gave). */
int sendpoint_connect(const struct sendpoint *ep, int timeout_ms);
/* The address to print for --ready-fd: the port for tcp, the path for unix. */
void sendpoint_ready(const struct sendpoint *ep, int lfd, int ready_fd);
/* Close a connection so the peer sees an error, not a clean end (RST on TCP). */
void sock_abort_close(int fd);

void sframe_build(struct lmig_sframe *f, unsigned int type, unsigned int flags, uint32_t stream,
		  uint32_t len, uint64_t seq, uint64_t offset, uint32_t raw_len, uint64_t hash);
bool sframe_csum_ok(const struct lmig_sframe *f);
void sreply_build(struct lmig_sreply *r, unsigned int type, unsigned int status, uint32_t stream,
		  uint64_t bytes, const char *reason);
bool sreply_csum_ok(const struct lmig_sreply *r);


#endif

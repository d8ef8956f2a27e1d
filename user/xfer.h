/* SPDX-License-Identifier: GPL-2.0-only */
/* The transfer engines behind `lmig send` and `lmig recv`. */
#ifndef LMIG_XFER_H
#define LMIG_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct xfer_stats {
	uint64_t bytes_total;		/* image size */
	uint64_t bytes_wire;		/* everything written to / read from the sockets */
	uint64_t pages_total, pages_zero, pages_compressed, pages_raw;
	uint64_t frames;
	double total_s;
	unsigned int channels;
	unsigned int lz4_switches;
	bool zerocopy;			/* SEND_ZC used */
	bool multishot;			/* multishot recv with provided buffers used */
	uint8_t digest[16];
};

struct send_opts {
	const char *mem;		/* image path */
	const char *to;			/* HOST:PORT */
	unsigned int channels;
	enum compress_mode compress;
	uint64_t bandwidth;		/* bytes/s, 0 = unlimited */
	int zerocopy;			/* -1 auto, 0 off, 1 on */
	int timeout_ms;			/* connect, handshake and stall limit */
	bool progress;
};

struct recv_opts {
	const char *listen;		/* HOST:PORT */
	const char *out;		/* final path */
	uint64_t expect_size;		/* 0 = accept any */
	int timeout_ms;			/* stall limit once a sender is connected */
	int accept_timeout_ms;		/* for the first connection; -1 = forever */
	bool sync;			/* fdatasync before the commit */
	bool progress;
	int ready_fd;			/* write "PORT\n" here once listening, or -1 */
};

int xfer_send(const struct send_opts *o, struct xfer_stats *st);
int xfer_recv(const struct recv_opts *o, struct xfer_stats *st);

/* Progress line on stderr, at most twice a second. */
void progress_show(const char *verb, uint64_t done, uint64_t total, double elapsed,
		   const char *extra, bool final);

#endif

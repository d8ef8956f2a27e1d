/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef LMIG_URING_H
#define LMIG_URING_H

#include <liburing.h>

/* An SQE, submitting what is queued first when the ring is full. */
static inline struct io_uring_sqe *uring_get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

#endif

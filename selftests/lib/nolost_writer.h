/* SPDX-License-Identifier: GPL-2.0-only */
/* The writers of test_nolost (selftests/lib/nolost_writer.c). */
#ifndef SELFTEST_NOLOST_WRITER_H
#define SELFTEST_NOLOST_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define NW_PAGE		4096ULL
#define NW_WIN		32		/* pages of a short-lived window */

enum wcase { W_SHORTLIVED, W_NEWMAP, W_DONTNEED, W_MREMAP, W_FORK, W_URING, W_PAGEOUT, W_VFORK };
extern const char *const wcase_names[];
/* The case called s, or -1. */
int wcase_of(const char *s);

/* Writes counted by the writer, in a shared anonymous page. */
extern volatile uint64_t *wcount;

struct writer {
	pid_t pid;
	int fd;			/* the memfd */
	int go;			/* write end */
};

/*
 * Start the writer of case wc on a new memfd of npages pages, registered
 * with a userfaultfd of its own when uffd; returns once it filled the
 * memfd, waiting for a byte on go.  0, or -1 with errno.
 */
int writer_start(struct writer *w, enum wcase wc, uint64_t npages, bool uffd);
/* Stop the writer and every process it forked (the final pause). */
void writer_pause(struct writer *w);
/* Kill it and its group, close the memfd and go. */
void writer_stop(struct writer *w);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The receiver's page checks, and worker threads that run them for lz4
 * and zstd pages off the io_uring thread (user/image/image_decode.c).
 */
#ifndef LMIG_RECV_DECODE_H
#define LMIG_RECV_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a page check found; the caller turns it into its own message. */
enum page_verdict {
	PAGE_OK,
	PAGE_BAD_DECODE,	/* lz4 or zstd that does not decode into exactly one page */
	PAGE_BAD_HASH,		/* does not hash to what its descriptor says */
	PAGE_BAD_TAIL,		/* data past the image's end, in its last page */
};

/* A page as received (raw, in place): hash and tail checked. */
enum page_verdict page_check(const void *page, size_t keep, uint64_t want);

/*
 * An lz4 or zstd page (zstd set): len compressed bytes at src, decoded into dst (one page),
 * then checked like a raw page.  keep is how many of its bytes are stored
 * (less than a page only for a partial last page of the image).
 */
struct decode_job {
	const void *src;
	void *dst;
	uint32_t len;
	uint32_t tag;		/* the caller's: names the job when it comes back */
	bool zstd;		/* LMIG_ENC_ZSTD, else LMIG_ENC_LZ4 */
	size_t keep;
	uint64_t want;
	enum page_verdict verdict;	/* set when done */
};

void decode_job_run(struct decode_job *j);

/*
 * Decode workers.  Jobs are queued with decoder_push() and handed to the
 * workers in batches by decoder_kick(); done jobs come back through
 * decoder_reap().  The eventfd (decoder_fd()) becomes readable when done
 * jobs are waiting, so that the io_uring thread can wait for them and for
 * its other completions in one place.  At most depth jobs are queued or
 * running at a time (the caller's bound: one job per pool page).
 */
struct decoder;

/* Worker threads to use: the CPUs this thread may run on, less one. */
unsigned int decoder_threads(void);
struct decoder *decoder_start(unsigned int nthreads, unsigned int depth);
unsigned int decoder_nthreads(const struct decoder *d);
int decoder_fd(const struct decoder *d);
void decoder_push(struct decoder *d, const struct decode_job *j);
void decoder_kick(struct decoder *d);
/* Up to max done jobs into out; returns how many. */
unsigned int decoder_reap(struct decoder *d, struct decode_job *out, unsigned int max);
/* Stops the workers (queued jobs are dropped, running ones finish) and frees. */
void decoder_stop(struct decoder *d);

#endif

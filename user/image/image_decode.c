// SPDX-License-Identifier: GPL-2.0-only
/*
 * Decode workers for the receiver (user/image/image_recv.c).
 *
 * The receiver runs on one thread and one io_uring; with lz4 or zstd most
 * of its time goes into decompressing pages, while the copy into the page cache
 * runs on io_uring's own worker.  Pages are independent, so their
 * decoding and hashing can run on other CPUs: the io_uring thread queues
 * a job per compressed page (where the compressed bytes are, which pool page to
 * decode into, the hash the page must have) and gets it back decoded and
 * checked, or with what was wrong.  What it does with a page before and
 * after — the write runs, the hash table, the round barrier — stays on
 * the io_uring thread; a worker touches only its job's two buffers, which
 * the receiver holds until the job comes back.
 *
 * One mutex guards both queues.  Jobs go out in batches (decoder_kick())
 * and come back in batches (decoder_reap()), so that it is taken a few
 * times per run of pages rather than several times per page.  An eventfd
 * says "done jobs are waiting": the io_uring thread keeps a read on it in
 * its ring and so waits for decodes and for its other completions at once.
 * It is written once a write run's worth is back, or when the workers run
 * out of jobs, not after every batch: the io_uring thread, woken, would
 * take a worker's CPU from it every few pages.  Whenever the io_uring
 * thread wakes for anything else it reaps what is back anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "chan/codec.h"
#include "image/image_decode.h"

/* More threads than this outrun what one io_uring thread can feed and write. */
#define DECODE_MAX_THREADS	8
/* Jobs a worker takes at once: few enough that the others get some too. */
#define DECODE_BATCH		8
/*
 * Done jobs that wake the io_uring thread while more are being decoded: a
 * write run's worth.  Woken per batch, it would preempt a worker on its
 * CPU every few pages, and submit each run in pieces of bookkeeping.
 */
#define DECODE_WAKE		64

enum page_verdict page_check(const void *page, size_t keep, uint64_t want)
{
	const uint8_t *b = page;

	if (codec_page_hash(page) != want)
		return PAGE_BAD_HASH;
	/* Only keep bytes are stored: the hash must not cover more. */
	for (size_t i = keep; i < LMIG_PAGE_SIZE; i++)
		if (b[i])
			return PAGE_BAD_TAIL;
	return PAGE_OK;
}

void decode_job_run(struct decode_job *j)
{
	int bad = j->zstd ? codec_unzstd_page(j->src, j->len, j->dst) :
			    codec_unlz4_page(j->src, j->len, j->dst);

	if (bad)
		j->verdict = PAGE_BAD_DECODE;
	else
		j->verdict = page_check(j->dst, j->keep, j->want);
}

struct decoder {
	pthread_mutex_t lock;
	pthread_cond_t more;
	unsigned int depth;
	struct decode_job *todo, *done;	/* rings of depth jobs */
	/* todo: [head, tail) for the workers, [tail, staged) not yet handed out */
	unsigned int head, tail, staged;
	unsigned int dhead, dtail;	/* done: [dhead, dtail) */
	unsigned int idle;		/* workers waiting for jobs */
	bool signalled;			/* the eventfd was written since the last full reap */
	bool stop;
	int efd;
	unsigned int nthreads;
	pthread_t th[DECODE_MAX_THREADS];
};

unsigned int decoder_threads(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	n = CPU_COUNT(&set) - 1;
	if (n <= 0)
		return 0;	/* one CPU: decoding elsewhere would only add switches */
	return n > DECODE_MAX_THREADS ? DECODE_MAX_THREADS : (unsigned int)n;
}

static void *worker(void *arg)
{
	struct decoder *d = arg;
	struct decode_job batch[DECODE_BATCH];

	pthread_mutex_lock(&d->lock);
	for (;;) {
		unsigned int n = 0, avail;

		while (!d->stop && d->head == d->tail) {
			d->idle++;
			pthread_cond_wait(&d->more, &d->lock);
			d->idle--;
		}
		if (d->stop)
			break;
		avail = d->tail - d->head;
		/* Leave some for the others when there are few. */
		if (d->idle && avail > 1)
			avail = (avail + 1) / 2;
		while (n < avail && n < DECODE_BATCH)
			batch[n++] = d->todo[d->head++ % d->depth];
		pthread_mutex_unlock(&d->lock);
		for (unsigned int i = 0; i < n; i++)
			decode_job_run(&batch[i]);
		pthread_mutex_lock(&d->lock);
		for (unsigned int i = 0; i < n; i++)
			d->done[d->dtail++ % d->depth] = batch[i];
		/*
		 * Wake the io_uring thread when a run's worth is back, or when
		 * nothing is left to take: then no worker would wake it later.
		 */
		if (!d->signalled && (d->dtail - d->dhead >= DECODE_WAKE || d->head == d->tail)) {
			uint64_t one = 1;

			d->signalled = true;
			/* Cannot block or fail short of a counter at 2^64 - 2. */
			if (write(d->efd, &one, sizeof(one)) < 0)
				abort();
		}
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

struct decoder *decoder_start(unsigned int nthreads, unsigned int depth)
{
	struct decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->depth = depth;
	d->todo = calloc(depth, sizeof(*d->todo));
	d->done = calloc(depth, sizeof(*d->done));
	d->efd = eventfd(0, EFD_CLOEXEC);
	if (!d->todo || !d->done || d->efd < 0)
		goto fail;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->more, NULL);
	if (nthreads > DECODE_MAX_THREADS)
		nthreads = DECODE_MAX_THREADS;
	for (; d->nthreads < nthreads; d->nthreads++) {
		if (pthread_create(&d->th[d->nthreads], NULL, worker, d))
			break;
		/* Told apart from the io_uring thread in top -H, perf, ps -L. */
		pthread_setname_np(d->th[d->nthreads], "lmig-decode");
	}
	if (d->nthreads)
		return d;
	decoder_stop(d);
	return NULL;
fail:
	if (d->efd >= 0)
		close(d->efd);
	free(d->todo);
	free(d->done);
	free(d);
	return NULL;
}

unsigned int decoder_nthreads(const struct decoder *d)
{
	return d->nthreads;
}

int decoder_fd(const struct decoder *d)
{
	return d->efd;
}

void decoder_push(struct decoder *d, const struct decode_job *j)
{
	/* Only this thread moves staged; the slot is free (depth bounds the jobs). */
	d->todo[d->staged++ % d->depth] = *j;
	if (d->staged - d->tail >= DECODE_BATCH)
		decoder_kick(d);
}

void decoder_kick(struct decoder *d)
{
	if (d->staged == d->tail)
		return;
	pthread_mutex_lock(&d->lock);
	d->tail = d->staged;
	if (d->idle)
		pthread_cond_broadcast(&d->more);
	pthread_mutex_unlock(&d->lock);
}

unsigned int decoder_reap(struct decoder *d, struct decode_job *out, unsigned int max)
{
	unsigned int n = 0;

	pthread_mutex_lock(&d->lock);
	while (n < max && d->dhead != d->dtail)
		out[n++] = d->done[d->dhead++ % d->depth];
	/* Emptied: the next done job writes the eventfd again. */
	if (d->dhead == d->dtail)
		d->signalled = false;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void decoder_stop(struct decoder *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_broadcast(&d->more);
	pthread_mutex_unlock(&d->lock);
	for (unsigned int i = 0; i < d->nthreads; i++)
		pthread_join(d->th[i], NULL);
	pthread_cond_destroy(&d->more);
	pthread_mutex_destroy(&d->lock);
	close(d->efd);
	free(d->todo);
	free(d->done);
	free(d);
}

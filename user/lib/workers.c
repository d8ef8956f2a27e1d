// SPDX-License-Identifier: GPL-2.0-only
/* A fixed set of threads that runs one function over a few jobs (workers.h). */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/workers.h"

#define WORKERS_MAX	64

struct workers {
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	pthread_t th[WORKERS_MAX];
	unsigned int nth;	/* threads started */
	uint64_t gen;		/* calls so far: a new one wakes the threads */
	unsigned int busy;	/* threads still on this call's jobs */
	bool quit;
	void (*fn)(void *job);
	char *jobs;
	size_t size;
	unsigned int njobs;
};

struct worker_arg {
	struct workers *w;
	unsigned int i;		/* runs job i + 1 */
};

static void *worker(void *arg)
{
	struct worker_arg a = *(struct worker_arg *)arg;
	struct workers *w = a.w;
	uint64_t seen = 0;

	free(arg);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->gen == seen && !w->quit)
			pthread_cond_wait(&w->go, &w->lock);
		if (w->quit)
			break;
		seen = w->gen;
		if (a.i + 1 < w->njobs) {
			pthread_mutex_unlock(&w->lock);
			w->fn(w->jobs + (a.i + 1) * w->size);
			pthread_mutex_lock(&w->lock);
		}
		if (!--w->busy)
			pthread_cond_signal(&w->done);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct workers *workers_start(unsigned int n)
{
	struct workers *w = calloc(1, sizeof(*w));
	sigset_t all, old;

	if (!w)
		return NULL;
	/*
	 * Signals stay with the threads that wait for them; a fault's own
	 * (SIGBUS on a shrunk mapping) must not be blocked: the kernel would
	 * kill the process instead of running the handler.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->go, NULL);
	pthread_cond_init(&w->done, NULL);
	while (w->nth + 1 < n && w->nth < WORKERS_MAX) {
		struct worker_arg *a = malloc(sizeof(*a));

		if (!a)
			break;
		*a = (struct worker_arg){ .w = w, .i = w->nth };
		if (pthread_create(&w->th[w->nth], NULL, worker, a)) {
			free(a);
			break;
		}
		w->nth++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!w->nth) {
		workers_stop(w);
		return NULL;
	}
	return w;
}

void workers_run(struct workers *w, void (*fn)(void *job), void *jobs, size_t size,
		 unsigned int njobs)
{
	unsigned int nth = w ? w->nth : 0;

	if (nth && njobs > 1) {
		pthread_mutex_lock(&w->lock);
		w->fn = fn;
		w->jobs = jobs;
		w->size = size;
		w->njobs = njobs;
		w->busy = nth;
		w->gen++;
		pthread_cond_broadcast(&w->go);
		pthread_mutex_unlock(&w->lock);
	}
	fn(jobs);
	/* Jobs beyond the threads, or all of them without threads. */
	for (unsigned int i = nth && njobs > 1 ? nth + 1 : 1; i < njobs; i++)
		fn((char *)jobs + i * size);
	if (nth && njobs > 1) {
		pthread_mutex_lock(&w->lock);
		while (w->busy)
			pthread_cond_wait(&w->done, &w->lock);
		pthread_mutex_unlock(&w->lock);
	}
}

void workers_stop(struct workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->quit = true;
	pthread_cond_broadcast(&w->go);
	pthread_mutex_unlock(&w->lock);
	for (unsigned int i = 0; i < w->nth; i++)
		pthread_join(w->th[i], NULL);
	pthread_cond_destroy(&w->go);
	pthread_cond_destroy(&w->done);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

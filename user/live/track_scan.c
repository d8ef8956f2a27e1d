// SPDX-License-Identifier: GPL-2.0-only
/*
 * The scan tracker: read every page, hash it (XXH3-64, as the wire does)
 * and report the pages whose hash differs from that of the content last
 * sent.  It needs nothing from the kernel but the right to read the
 * memory, so it is the tracker of last resort; it costs a full read of
 * the memory per round, at memory speed.
 *
 * Two ways to read, one result:
 *
 *  - a shared object (tg.fd) that mmap accepts is mapped read-only and
 *    hashed in place, with no copy.  Its holes are not touched: a read
 *    fault on a tmpfs hole would allocate a page, so a sparse object (an
 *    idle guest's RAM) would grow to its full size on the source.  Each
 *    harvest finds the data/hole map anew (scan_data_map(): each thread
 *    its own pages, just before it hashes them) and takes a hole's
 *    content as zeros, which it is at the walk; a page written after the
 *    walk differs at the next harvest.  Past the end of the object the
 *    kernel maps zeros, so a partial last page hashes padded with zeros,
 *    as it was sent.  An object truncated under the mapping raises
 *    SIGBUS: the hashing thread jumps out and the harvest fails, as the
 *    image would no longer be the object;
 *  - anything else (process memory, an object mmap refuses) is read with
 *    track_read() into a buffer, which pads a partial last page with
 *    zeros too.
 *
 * A large object is hashed by several threads, each over its own run of
 * pages aligned to 64 pages, so each writes its own words of the bitmap
 * (and, with the mapping, walks the data/hole map of its own run first).
 * The threads are started with the tracker and kept: the final harvest
 * comes in parts of a few MiB, each run by them all.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "chan/codec.h"
#include "lib/err.h"
#include "lib/workers.h"
#include "live/track.h"

#define CHUNK		(1 << 20)	/* bytes read at a time: hashed while in the cache */
/*
 * The least a thread hashes: below that, starting it costs more than the
 * time it saves.  A multiple of 64 pages.
 */
#define PART_MIN_PAGES	((64 << 20) / LMIG_PAGE_SIZE)
#define THREADS_MAX	16
#define MINCORE_PAGES	4096	/* pages asked of mincore() at a time */
/*
 * The least a thread hashes of one part of a harvest in parts
 * (tracker_harvest_part()): the object's size decided that threads pay
 * (PART_MIN_PAGES); a part is only kept from splitting into slivers.
 */
#define THREAD_MIN_PAGES	((2 << 20) / LMIG_PAGE_SIZE)

struct scan {
	const uint8_t *map;	/* the object mapped, or NULL: read with track_read() */
	size_t maplen;
	uint64_t *data;		/* with map: the pages holding data at this harvest's walk */
	uint64_t zero_hash;
	unsigned int nthreads;
	struct workers *workers;	/* nthreads - 1 beside the harvesting one, or NULL */
};

/* One thread's run of pages and what it found. */
struct scan_part {
	struct tracker *t;
	uint64_t *bitmap;
	uint64_t first, end;	/* pages [first, end) */
	uint64_t bytes_read;
	int ret;		/* 0; -1: failed, err says why; 1: SIGBUS */
	char err[256];		/* lmig_err()'s words are per thread */
};

/* Set while this thread hashes the mapping [scan_lo, scan_hi). */
static __thread sigjmp_buf *scan_jmp;
static __thread const uint8_t *scan_lo, *scan_hi;

/*
 * A fault in the mapping while hashing it: the object shrank under it.
 * Any other SIGBUS gets the default action again and re-faults.
 */
static void scan_sigbus(int sig, siginfo_t *si, void *uc)
{
	const uint8_t *a = si->si_addr;

	if (scan_jmp && si->si_code > 0 && a >= scan_lo && a < scan_hi)
		siglongjmp(*scan_jmp, 1);
	signal(SIGBUS, SIG_DFL);
}

/* Installed once, only where nothing else handles SIGBUS. */
static int scan_catch_sigbus(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static bool done;
	struct sigaction old, sa = { .sa_sigaction = scan_sigbus, .sa_flags = SA_SIGINFO };
	int ret = 0;

	pthread_mutex_lock(&lock);
	if (!done) {
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, NULL, &old) || old.sa_handler != SIG_DFL ||
		    sigaction(SIGBUS, &sa, NULL))
			ret = -1;
		else
			done = true;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

/*
 * Which of pages [first, end) of the mapped object hold data, into
 * s->data (whose words of those pages only it writes).  A page in the
 * object's page cache (mincore) does; the others are holes or swapped
 * out, and SEEK_DATA says which: one system call a hole.  Walking the
 * extents (track_data_map()) takes two a data extent, and its SEEK_HOLE
 * reads a data extent to its end, past the range, at every part.
 */
static int scan_data_map(const struct tracker *t, uint64_t first, uint64_t end)
{
	const struct scan *s = t->priv;
	unsigned char vec[MINCORE_PAGES];

	if (first >= end)
		return 0;
	memset(s->data + first / 64, 0, (bitmap_words(end) - first / 64) * 8);
	for (uint64_t c = first; c < end; c += MINCORE_PAGES) {
		uint64_t n = end - c < MINCORE_PAGES ? end - c : MINCORE_PAGES;

		/* Where mincore() cannot say, SEEK_DATA asks of every page. */
		if (mincore((void *)(s->map + c * LMIG_PAGE_SIZE), n * LMIG_PAGE_SIZE, vec))
			memset(vec, 0, n);
		for (uint64_t i = 0, j; i < n; i = j) {
			bool in = vec[i] & 1;

			for (j = i + 1; j < n && (vec[j] & 1) == in; j++)
				;
			if (!in && track_data_runs(t->tg.fd, t->tg.size, c + i, c + j, s->data))
				return -1;
			for (uint64_t p = c + i; in && p < c + j; p++)
				bitmap_set(s->data, p);
		}
	}
	return 0;
}

static void scan_part_mapped(struct scan_part *w)
{
	const struct scan *s = w->t->priv;
	const uint64_t *sent = w->t->tg.sent;
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		scan_jmp = NULL;
		w->ret = 1;
		return;
	}
	/* A hole's content is zeros at the walk: a write after it shows next harvest. */
	if (scan_data_map(w->t, w->first, w->end)) {
		snprintf(w->err, sizeof(w->err), "%s", lmig_errmsg());
		w->ret = -1;
		return;
	}
	scan_lo = s->map;
	scan_hi = s->map + s->maplen;
	scan_jmp = &jb;
	for (uint64_t p = w->first; p < w->end; p++) {
		uint64_t h = s->zero_hash;

		if (bitmap_test(s->data, p)) {
			h = codec_page_hash(s->map + p * LMIG_PAGE_SIZE);
			w->bytes_read += LMIG_PAGE_SIZE;
		}
		if (h != sent[p])
			bitmap_set(w->bitmap, p);
	}
	scan_jmp = NULL;
}

static void scan_part_read(struct scan_part *w)
{
	const struct track_target *tg = &w->t->tg;
	uint8_t *buf = aligned_alloc(LMIG_PAGE_SIZE, CHUNK);

	if (!buf) {
		snprintf(w->err, sizeof(w->err), "out of memory for the scan buffer");
		w->ret = -1;
		return;
	}
	for (uint64_t p = w->first; p < w->end;) {
		uint64_t n = w->end - p < CHUNK / LMIG_PAGE_SIZE ? w->end - p : CHUNK / LMIG_PAGE_SIZE;
		uint64_t off = p * LMIG_PAGE_SIZE;

		/* A partial last page is hashed padded with zeros, as it was sent. */
		if (track_read(tg, off, buf, n * LMIG_PAGE_SIZE)) {
			snprintf(w->err, sizeof(w->err), "%s", lmig_errmsg());
			w->ret = -1;
			break;
		}
		w->bytes_read += tg->size - off < n * LMIG_PAGE_SIZE ? tg->size - off : n * LMIG_PAGE_SIZE;
		for (uint64_t i = 0; i < n; i++)
			if (codec_page_hash(buf + i * LMIG_PAGE_SIZE) != tg->sent[p + i])
				bitmap_set(w->bitmap, p + i);
		p += n;
	}
	free(buf);
}

static void scan_part_run(void *arg)
{
	struct scan_part *w = arg;

	if (((struct scan *)w->t->priv)->map)
		scan_part_mapped(w);
	else
		scan_part_read(w);
}

static int scan_probe(const struct track_target *tg)
{
	uint8_t page[LMIG_PAGE_SIZE];

	if (!tg->sent)
		return lmig_err("the scan tracker needs the hashes of what was sent");
	return track_read(tg, 0, page, sizeof(page));
}

/* Map the object read-only; 0, or -1 where it cannot be (read it instead). */
static int scan_map(struct tracker *t, struct scan *s)
{
	void *m;

	if (t->tg.fd < 0 || scan_catch_sigbus())
		return -1;
	s->maplen = t->npages * LMIG_PAGE_SIZE;
	s->data = calloc(bitmap_words(t->npages), 8);
	if (!s->data)
		return -1;
	m = mmap(NULL, s->maplen, PROT_READ, MAP_SHARED, t->tg.fd, 0);
	if (m == MAP_FAILED || track_data_map(t->tg.fd, t->tg.size, s->data)) {
		if (m != MAP_FAILED)
			munmap(m, s->maplen);
		free(s->data);
		s->data = NULL;
		return -1;
	}
	s->map = m;
	return 0;
}

static int scan_start(struct tracker *t)
{
	static const uint8_t zero[LMIG_PAGE_SIZE];
	struct scan *s = calloc(1, sizeof(*s));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t parts = t->npages / PART_MIN_PAGES;
	bool had_err = lmig_has_err();

	if (!s)
		return lmig_err("out of memory for the scan tracker");
	s->zero_hash = codec_page_hash(zero);	/* not codec_zero_hash(): no codec_init() needed */
	s->nthreads = cpus < 1 ? 1 : cpus > THREADS_MAX ? THREADS_MAX : (unsigned int)cpus;
	if (parts < s->nthreads)
		s->nthreads = parts ? (unsigned int)parts : 1;
	t->priv = s;
	/* Else read it: whatever the failed attempt recorded is not an error. */
	if (scan_map(t, s) && !had_err)
		lmig_err_clear();
	/* None started: the harvesting thread hashes alone. */
	if (s->nthreads > 1)
		s->workers = workers_start(s->nthreads);
	return 0;
}

/*
 * Pages [first, end) by the scan's threads.  With the mapping, each walks
 * the data/hole map of its own pages first.
 */
static int scan_harvest_part(struct tracker *t, uint64_t *bitmap, uint64_t first, uint64_t end,
			     bool begin)
{
	struct scan *s = t->priv;
	struct scan_part w[THREADS_MAX] = { 0 };
	unsigned int n = s->nthreads;
	uint64_t per;
	int ret = 0;

	if (s->map && begin) {
		struct stat st;

		if (fstat(t->tg.fd, &st))
			return lmig_err_errno(errno, "cannot stat the memory object");
		if ((uint64_t)st.st_size < t->tg.size)
			return lmig_err("the memory object shrank to %llu bytes during the migration",
					(unsigned long long)st.st_size);
	}
	/* A harvest in parts: a small part is not worth a thread each. */
	if ((end - first) / n < THREAD_MIN_PAGES)
		n = (end - first) / THREAD_MIN_PAGES > 1 ? (unsigned int)((end - first) / THREAD_MIN_PAGES) : 1;
	/* Parts aligned to 64 pages: no two threads write one bitmap word. */
	per = (end - first + n - 1) / n;
	per = (per + 63) & ~63ULL;
	for (unsigned int i = 0; i < n; i++) {
		w[i] = (struct scan_part){ .t = t, .bitmap = bitmap, .first = first + i * per,
					   .end = first + (i + 1) * per };
		if (w[i].first > end)
			w[i].first = end;
		if (w[i].end > end)
			w[i].end = end;
	}
	workers_run(s->workers, scan_part_run, w, sizeof(w[0]), n);
	for (unsigned int i = 0; i < n; i++) {
		t->bytes_read += w[i].bytes_read;
		if (w[i].ret == 1 && !ret)
			ret = lmig_err("the memory object shrank during the migration");
		else if (w[i].ret && !ret)
			ret = lmig_err("%s", w[i].err);
	}
	return ret;
}

static int scan_harvest(struct tracker *t, uint64_t *bitmap)
{
	return scan_harvest_part(t, bitmap, 0, t->npages, true);
}

static void scan_stop(struct tracker *t)
{
	struct scan *s = t->priv;

	if (s)
		workers_stop(s->workers);
	if (s && s->map)
		munmap((void *)s->map, s->maplen);
	if (s)
		free(s->data);
	free(s);
	t->priv = NULL;
}

const struct tracker_ops track_scan_ops = {
	.name = "scan",
	.probe = scan_probe,
	.start = scan_start,
	.harvest = scan_harvest,
	.harvest_part = scan_harvest_part,
	.stop = scan_stop,
};

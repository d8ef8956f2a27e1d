// SPDX-License-Identifier: GPL-2.0-only
/* Watching memory be written, without sending it (watch.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "chan/codec.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "live/estimate.h"
#include "live/watch.h"

/* Hashes of the current content: the baseline the first harvest is measured against. */
static int hash_all(struct watch *w)
{
	enum { CHUNK_PAGES = 256 };
	uint8_t *buf = aligned_alloc(LMIG_PAGE_SIZE, CHUNK_PAGES * LMIG_PAGE_SIZE);
	uint64_t zero = codec_zero_hash();
	bool prev = false;
	int ret = 0;

	if (!buf)
		return lmig_err("out of memory");
	for (uint64_t p = 0; p < w->npages && !ret; p += CHUNK_PAGES) {
		unsigned int n = w->npages - p < CHUNK_PAGES ? w->npages - p : CHUNK_PAGES;

		ret = track_read(&w->tg, p * LMIG_PAGE_SIZE, buf, (size_t)n * LMIG_PAGE_SIZE);
		for (unsigned int i = 0; i < n && !ret; i++) {
			bool z;

			w->hashes[p + i] = codec_page_hash(buf + (size_t)i * LMIG_PAGE_SIZE);
			z = w->hashes[p + i] == zero &&
			    codec_page_is_zero(buf + (size_t)i * LMIG_PAGE_SIZE);
			w->zero_pages += z;
			w->zero_runs += z && !prev;
			prev = z;
		}
	}
	free(buf);
	return ret;
}

/* Take the new hashes of the harvested pages, as sending them would. */
static int rehash(struct watch *w, const uint64_t *bitmap)
{
	uint8_t page[LMIG_PAGE_SIZE] __attribute__((aligned(64)));

	for (uint64_t p = 0; p < w->npages; p++) {
		if (!bitmap_test(bitmap, p))
			continue;
		if (track_read(&w->tg, p * LMIG_PAGE_SIZE, page, sizeof(page)))
			return -1;
		w->hashes[p] = codec_page_hash(page);
	}
	return 0;
}

/* tg: fd -1, pid, and for anon: memory start and size already parsed. */
static int open_target(const char *mem, struct track_target *tg)
{
	struct stat sb;

	if (!strncmp(mem, "anon:", 5)) {
		char maps[64];
		pid_t pid = tg->pid;

		/* Fail early, with the cause, if the process is gone or not ours to read. */
		snprintf(maps, sizeof(maps), "/proc/%d/mem", (int)pid);
		if (access(maps, R_OK))
			return lmig_err_errno(errno, "cannot read the memory of process %d", (int)pid);
		return 0;
	}
	tg->fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (tg->fd < 0)
		return lmig_err_errno(errno, "cannot open %s", mem);
	if (fstat(tg->fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size == 0)
		return lmig_err("%s is not a non-empty regular file, shm file or memfd", mem);
	tg->size = sb.st_size;
	return 0;
}

int watch_open(struct watch *w, const char *mem, struct track_target tg, const char *tname)
{
	*w = (struct watch){ .tg = tg, .tracker = tname };
	w->tg.fd = -1;
	if (open_target(mem, &w->tg))
		return -1;
	w->size = w->tg.size;
	w->npages = (w->size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;
	w->hashes = calloc(w->npages, sizeof(*w->hashes));
	if (!w->hashes)
		return lmig_err("out of memory for %llu pages", (unsigned long long)w->npages);
	w->tg.sent = w->hashes;
	codec_init();
	/*
	 * Armed first, then the content hashed: a page written in between is
	 * the tracker's to report, whatever compares content against these
	 * hashes later (the object check, the scan tracker) finds nothing
	 * older than the arming, and the first interval runs from there.
	 */
	if (tracker_open(&w->trk, tname, &w->tg, w->why, sizeof(w->why)))
		return -1;
	w->trk_ok = true;
	w->tracker = w->trk.ops->name;
	w->t_open = w->trk.t_armed;
	return hash_all(w);
}

int watch_harvest(struct watch *w, uint64_t *bitmap, uint64_t *pages, double *harvest_s)
{
	double h0 = w->trk.harvest_s;

	memset(bitmap, 0, bitmap_words(w->npages) * sizeof(*bitmap));
	if (tracker_harvest(&w->trk, bitmap))
		return -1;
	*harvest_s = w->trk.harvest_s - h0;
	*pages = bitmap_count(bitmap, w->npages);
	return rehash(w, bitmap);
}

void watch_close(struct watch *w)
{
	if (w->trk_ok)
		tracker_close(&w->trk);
	w->trk_ok = false;
	free(w->hashes);
	w->hashes = NULL;
	if (w->tg.fd >= 0)
		close(w->tg.fd);
	w->tg.fd = -1;
}

void watch_curve(uint64_t *const *bitmaps, const double *t, unsigned int n, uint64_t npages,
		 struct est_curve *c)
{
	uint64_t words = bitmap_words(npages);
	uint64_t *u = calloc(words ? words : 1, sizeof(*u));

	c->n = 0;
	if (!u || !n) {
		free(u);
		return;
	}
	for (unsigned int k = 1; c->n < EST_POINTS_MAX; k = k * 2 < n ? k * 2 : n) {
		double pages = 0, secs = 0;
		unsigned int windows = n - k + 1;

		for (unsigned int i = 0; i < windows; i++) {
			memcpy(u, bitmaps[i], words * sizeof(*u));
			for (unsigned int j = 1; j < k; j++)
				for (uint64_t x = 0; x < words; x++)
					u[x] |= bitmaps[i + j][x];
			pages += bitmap_count(u, npages);
			secs += t[i + k] - t[i];
		}
		c->t[c->n] = secs / windows;
		c->pages[c->n] = pages / windows;
		c->n++;
		if (k == n)
			break;
	}
	free(u);
}

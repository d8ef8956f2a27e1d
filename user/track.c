// SPDX-License-Identifier: GPL-2.0-only
/* The tracker registry, auto selection and what all trackers share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "track.h"

/* In order of preference for --tracker auto. */
static const struct tracker_ops *const trackers[] = {
	&track_kmod_ops,
	&track_softdirty_ops,
	&track_uffd_ops,
	&track_scan_ops,
};

const char *tracker_names(void)
{
	return "auto, kmod, soft-dirty, uffd, scan";
}

bool tracker_known(const char *name)
{
	for (size_t i = 0; i < sizeof(trackers) / sizeof(trackers[0]); i++)
		if (!strcmp(trackers[i]->name, name))
			return true;
	return !strcmp(name, "auto");
}

static int start(struct tracker *t, const struct tracker_ops *ops,
		 const struct track_target *tg)
{
	*t = (struct tracker){ .ops = ops, .tg = *tg,
			       .npages = (tg->size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE };
	if (ops->start(t)) {
		t->ops = NULL;
		return -1;
	}
	return 0;
}

int tracker_open(struct tracker *t, const char *name, const struct track_target *tg,
		 char *why, size_t whylen)
{
	size_t n = 0;

	if (why && whylen)
		why[0] = 0;
	if (strcmp(name, "auto")) {
		for (size_t i = 0; i < sizeof(trackers) / sizeof(trackers[0]); i++) {
			if (strcmp(trackers[i]->name, name))
				continue;
			if (trackers[i]->probe(tg)) {
				char msg[256];

				snprintf(msg, sizeof(msg), "%s", lmig_errmsg());
				lmig_err_clear();
				return lmig_err("--tracker %s cannot watch this memory: %s", name, msg);
			}
			return start(t, trackers[i], tg);
		}
		return lmig_err("--tracker: '%s' is not one of %s", name, tracker_names());
	}
	for (size_t i = 0; i < sizeof(trackers) / sizeof(trackers[0]); i++) {
		const struct tracker_ops *ops = trackers[i];

		lmig_err_clear();
		if (ops->probe(tg) == 0) {
			if (why && n < whylen)
				snprintf(why + n, whylen - n, "%sauto picked %s", n ? "; " : "",
					 ops->name);
			lmig_err_clear();
			return start(t, ops, tg);
		}
		if (why && n < whylen)
			n += snprintf(why + n, whylen - n, "%s%s: %s", n ? "; " : "", ops->name,
				      lmig_errmsg());
	}
	lmig_err_clear();
	return lmig_err("no dirty tracker can watch this memory (%s)", why ? why : "");
}

/* See TRACK_HUGE_PAGES in track.h. */
static int refine_huge(struct tracker *t, uint64_t *bitmap)
{
	const uint64_t words = TRACK_HUGE_PAGES / 64;
	uint8_t *buf = NULL;
	int ret = 0;

	for (uint64_t b = 0; b + TRACK_HUGE_PAGES <= t->npages && !ret; b += TRACK_HUGE_PAGES) {
		uint64_t *w = bitmap + b / 64, i;

		for (i = 0; i < words && w[i] == ~0ULL; i++)
			;
		if (i < words)
			continue;	/* not a whole huge page */
		if (!buf) {
			buf = aligned_alloc(LMIG_PAGE_SIZE, (size_t)TRACK_HUGE_PAGES * LMIG_PAGE_SIZE);
			if (!buf)
				return lmig_err("out of memory");
		}
		ret = track_read(&t->tg, b * LMIG_PAGE_SIZE, buf,
				 (size_t)TRACK_HUGE_PAGES * LMIG_PAGE_SIZE);
		t->bytes_read += (uint64_t)TRACK_HUGE_PAGES * LMIG_PAGE_SIZE;
		for (uint64_t p = 0; p < TRACK_HUGE_PAGES && !ret; p++)
			if (codec_page_hash(buf + p * LMIG_PAGE_SIZE) == t->tg.sent[b + p]) {
				w[p / 64] &= ~(1ULL << (p % 64));
				t->pages_refined++;
			}
	}
	free(buf);
	return ret;
}

int tracker_harvest(struct tracker *t, uint64_t *bitmap)
{
	double t0 = now_s();
	int ret = t->ops->harvest(t, bitmap);

	/* The scan tracker compares every page already. */
	if (!ret && t->tg.sent && t->ops != &track_scan_ops)
		ret = refine_huge(t, bitmap);
	t->harvest_s += now_s() - t0;
	t->harvests++;
	return ret;
}

void tracker_close(struct tracker *t)
{
	if (t->ops && t->ops->stop)
		t->ops->stop(t);
	t->ops = NULL;
}

int track_read(const struct track_target *tg, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (tg->fd >= 0) {
			n = pread(tg->fd, (char *)buf + done, len - done, off + done);
		} else {
			struct iovec l = { (char *)buf + done, len - done };
			struct iovec r = { (void *)(uintptr_t)(tg->start + off + done), len - done };

			n = process_vm_readv(tg->pid, &l, 1, &r, 1, 0);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return lmig_err_errno(errno, "cannot read the memory at offset %llu",
					      (unsigned long long)(off + done));
		if (n == 0) {
			/* A shared object read past its end: what is not there is zero. */
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += n;
	}
	return 0;
}

uint64_t bitmap_count(const uint64_t *b, uint64_t bits)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < bitmap_words(bits); i++)
		n += __builtin_popcountll(b[i]);
	return n;
}

// SPDX-License-Identifier: GPL-2.0-only
/* The tracker registry, auto selection and what all trackers share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/clock.h"
#include "chan/codec.h"
#include "lib/err.h"
#include "live/track.h"
#include "live/track_pick.h"

/*
 * In order of preference for --tracker auto, which calibrates each one
 * that can watch the memory when there are two or more, and leaves this
 * order only for one that costs much less (track_pick.h).
 */
static const struct tracker_ops *const trackers[] = {
	&track_kmod_ops,
	&track_softdirty_ops,
	&track_uffd_ops,
	&track_scan_ops,
};

/*
 * Calibration (auto with two or more trackers that can watch): each
 * harvests right after it started and again CAL_WAIT_MS later, and what
 * a harvest would cost after a round of CAL_ROUND_MS is taken from the
 * two (calibrate()); the scan tracker's cost is timed on CAL_SCAN_BYTES
 * of the memory.
 */
#define CAL_WAIT_MS	100
#define CAL_ROUND_MS	1000
#define CAL_SCAN_BYTES	(4u << 20)

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

/*
 * The object check.  Trackers that watch writes through mappings (page
 * table bits, write-protection, the page cache's PTEs) do not see the
 * content of a shared object change by other means:
 *
 *  - a hole punched (fallocate PUNCH_HOLE, madvise MADV_REMOVE) turns a
 *    page to zeros without a write through any mapping;
 *  - write(2), pwrite(2), splice, copy_file_range and fallocate write the
 *    page cache directly;
 *  - truncate changes the object's size.
 *
 * So for a file-backed target every harvest of those trackers also
 *
 *  1. stats the object: a size other than the one being migrated fails
 *     the harvest (the image would not be the object);
 *  2. walks its data/hole map (lseek SEEK_DATA/SEEK_HOLE, two calls per
 *     data extent) and reports every page that held data at the
 *     previous walk and is a hole now.  A hole that got data again was
 *     written, through a mapping (the tracker's part) or by a system call
 *     (the next point);
 *  3. if the object's ctime or mtime changed since the previous harvest,
 *     something modified it: a system call, whose pages are not known, or
 *     a write through a shared mapping, which updates them too (on tmpfs
 *     fault_dirty_shared_page() calls file_update_time()).  Every page not
 *     already reported is compared with the hash of what was sent
 *     (tg.sent), reading only the data pages (a hole's content is zeros),
 *     as the scan tracker does; without those hashes every page is
 *     reported.  tg.mapped_writes_only (the operator's word that no
 *     system call writes the object) skips this step, and so does a
 *     tracker that sees such writes itself (t->sees_syscalls: lmig.ko).
 *
 * Why nothing is lost: write(2), fallocate and truncate update the
 * timestamps and change the pages while holding the inode's lock, and
 * SEEK_DATA/SEEK_HOLE take that lock on tmpfs and on the disk file systems
 * (shmem_file_llseek, iomap_seek_data).  The stat comes first and the walk
 * right after it: a modification whose timestamp the stat saw has
 * finished by the time the first lseek gets the lock, so the rescan reads
 * its data; one whose timestamp came after the stat changes the timestamp
 * the next harvest compares.  Timestamps are coarse (a clock tick) on
 * kernels before 6.13: a modification in the same tick as the recorded
 * one could leave the timestamp equal, so a stat that saw a timestamp not
 * older than the current coarse time marks the next harvest for a rescan
 * whatever it sees.  A punched page is a hole at the next walk, or was
 * written after the punch; the walk runs before the caller reads the pages
 * it reported, so the hole's zeros are what is read.
 */
struct track_obj {
	struct stat st;		/* at the last harvest */
	bool racy;		/* that stat cannot tell a later change: rescan next time */
	uint64_t *data;		/* per page: held data at the last walk */
	uint64_t *now;		/* this walk */
	uint64_t zero_hash;	/* of a page of zeros */
	uint8_t *buf;
};

#define OBJ_CHUNK	(1 << 20)	/* bytes read at a time by a rescan */

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool ts_ge(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

/* Stat the object; fails when its size is no longer the one migrated. */
static int obj_stat(struct tracker *t, struct stat *st, bool *racy)
{
	struct timespec now;

	if (fstat(t->tg.fd, st))
		return lmig_err_errno(errno, "cannot stat the memory object");
	if ((uint64_t)st->st_size != t->tg.size)
		return lmig_err("the memory object changed size from %llu to %llu bytes during the "
				"migration: its image would not be the object",
				(unsigned long long)t->tg.size, (unsigned long long)st->st_size);
	/* The kernel stamps with the coarse clock (see track_obj above). */
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	*racy = ts_ge(&st->st_ctim, &now) || ts_ge(&st->st_mtim, &now);
	return 0;
}

/* Set bits [a, b) of map, a word at a time where it can. */
static void set_run(uint64_t *map, uint64_t a, uint64_t b)
{
	for (; a < b && a % 64; a++)
		bitmap_set(map, a);
	for (; a + 64 <= b; a += 64)
		map[a / 64] = ~0ULL;
	for (; a < b; a++)
		bitmap_set(map, a);
}

int track_data_runs(int fd, uint64_t size, uint64_t first, uint64_t end, uint64_t *map)
{
	uint64_t lim = end * LMIG_PAGE_SIZE < size ? end * LMIG_PAGE_SIZE : size;
	off_t off = (off_t)(first * LMIG_PAGE_SIZE);

	while ((uint64_t)off < lim) {
		off_t d = lseek(fd, off, SEEK_DATA), h;

		if (d < 0 && errno == ENXIO)
			break;		/* only a hole from off on */
		if (d < 0)
			return lmig_err_errno(errno, "SEEK_DATA in the memory object");
		if ((uint64_t)d >= lim)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 && errno == ENXIO)
			h = lim;	/* truncated meanwhile: the next stat fails */
		else if (h < 0)
			return lmig_err_errno(errno, "SEEK_HOLE in the memory object");
		if ((uint64_t)h > lim)
			h = lim;
		if (h <= d)
			return lmig_err("SEEK_HOLE in the memory object went backwards");
		set_run(map, (uint64_t)d / LMIG_PAGE_SIZE,
			((uint64_t)h + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE);
		off = h;
	}
	return 0;
}

int track_data_map(int fd, uint64_t size, uint64_t *map)
{
	uint64_t npages = (size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;

	memset(map, 0, bitmap_words(npages) * 8);
	return track_data_runs(fd, size, 0, npages, map);
}

/* Compare every page bitmap does not already report with what was sent. */
static int obj_rescan(struct tracker *t, uint64_t *bitmap)
{
	struct track_obj *o = t->obj;

	if (!t->tg.sent) {
		memset(bitmap, 0xff, bitmap_words(t->npages) * 8);
		return 0;
	}
	for (uint64_t p = 0; p < t->npages;) {
		uint64_t n = 1;

		if (bitmap_test(bitmap, p)) {
			p++;
			continue;
		}
		if (!bitmap_test(o->now, p)) {
			if (t->tg.sent[p] != o->zero_hash)
				bitmap_set(bitmap, p);
			p++;
			continue;
		}
		/* A run of data pages, read in one go. */
		while (p + n < t->npages && n < OBJ_CHUNK / LMIG_PAGE_SIZE && bitmap_test(o->now, p + n))
			n++;
		if (track_read(&t->tg, p * LMIG_PAGE_SIZE, o->buf, n * LMIG_PAGE_SIZE))
			return -1;
		t->bytes_read += n * LMIG_PAGE_SIZE;
		for (uint64_t i = 0; i < n; i++)
			if (codec_page_hash(o->buf + i * LMIG_PAGE_SIZE) != t->tg.sent[p + i])
				bitmap_set(bitmap, p + i);
		p += n;
	}
	return 0;
}

/*
 * Steps 1-3 of the object check, after the tracker's own harvest.  force:
 * the mapping watch saw a change, compare every page whatever the
 * timestamps say.
 */
static int obj_check(struct tracker *t, uint64_t *bitmap, bool force)
{
	struct track_obj *o = t->obj;
	double t0 = now_s();
	struct stat st;
	bool racy, changed;
	uint64_t *swap;

	if (obj_stat(t, &st, &racy) || track_data_map(t->tg.fd, t->tg.size, o->now))
		return -1;
	t->obj_walk_s += now_s() - t0;
	for (uint64_t i = 0; i < bitmap_words(t->npages); i++) {
		uint64_t holed = o->data[i] & ~o->now[i];

		t->pages_holed += __builtin_popcountll(holed);
		bitmap[i] |= holed;
	}
	changed = force || (!t->tg.mapped_writes_only && !t->sees_syscalls &&
		  (o->racy || !ts_eq(&st.st_ctim, &o->st.st_ctim) ||
		   !ts_eq(&st.st_mtim, &o->st.st_mtim) || st.st_ino != o->st.st_ino));
	if (changed) {
		if (obj_rescan(t, bitmap))
			return -1;
		t->obj_rescans++;
	}
	o->st = st;
	o->racy = racy;
	swap = o->data;
	o->data = o->now;
	o->now = swap;
	return 0;
}

static void obj_free(struct tracker *t)
{
	if (!t->obj)
		return;
	free(t->obj->data);
	free(t->obj->now);
	free(t->obj->buf);
	free(t->obj);
	t->obj = NULL;
}

/* The object check's first stat and walk, once the tracker watches. */
static int obj_start(struct tracker *t)
{
	struct track_obj *o = calloc(1, sizeof(*o));
	uint8_t zero[LMIG_PAGE_SIZE] = { 0 };

	if (!o)
		return lmig_err("out of memory");
	t->obj = o;
	o->data = calloc(bitmap_words(t->npages), 8);
	o->now = calloc(bitmap_words(t->npages), 8);
	o->buf = aligned_alloc(LMIG_PAGE_SIZE, OBJ_CHUNK);
	if (!o->data || !o->now || !o->buf) {
		obj_free(t);
		return lmig_err("out of memory for the object's data map");
	}
	o->zero_hash = codec_page_hash(zero);
	if (obj_stat(t, &o->st, &o->racy) || track_data_map(t->tg.fd, t->tg.size, o->data)) {
		obj_free(t);
		return -1;
	}
	return 0;
}

/* Whether the object check can watch tg for ops: part of every probe. */
static int obj_probe(const struct tracker_ops *ops, const struct track_target *tg)
{
	struct statfs fs;

	if (tg->fd < 0 || ops == &track_scan_ops)
		return 0;
	/* Its SEEK_HOLE reports all data: a punched huge page would not be seen. */
	if (!fstatfs(tg->fd, &fs) && fs.f_type == HUGETLBFS_MAGIC)
		return lmig_err("the object is on hugetlbfs, whose data/hole map shows no holes: "
				"a page punched out of it could not be seen");
	return 0;
}

/*
 * Trackers that read page tables watch a shared object only with the
 * mapping watch loaded: without it a mapping made, written through and
 * removed between two harvests would leave no trace, and --tracker auto
 * must pick a tracker that sees it.  The object check's timestamp test
 * (--object-writes any) is no substitute: a write fault stamps the object
 * only when a clean entry is first written, and coarse timestamps can
 * hide a change in the same tick.
 */
static int mw_probe(const struct tracker_ops *ops, const struct track_target *tg)
{
	struct mapwatch *mw;
	const char *why;
	char msg[256];

	if (!ops->watch_maps || mapwatch_optional(tg->fd >= 0, &why))
		return 0;
	if (!mapwatch_open(&mw, tg->pid)) {
		mapwatch_close(mw);
		return 0;
	}
	snprintf(msg, sizeof(msg), "%s", lmig_errmsg());
	lmig_err_clear();
	return lmig_err("needs eBPF to see the writer's mapping changes (%s), and %s", why, msg);
}

static int probe(const struct tracker_ops *ops, const struct track_target *tg)
{
	return ops->probe(tg) || obj_probe(ops, tg) || mw_probe(ops, tg) ? -1 : 0;
}

static void mw_close(struct tracker *t)
{
	mapwatch_close(t->mw);
	t->mw = NULL;
}

void (*tracker_start_hook)(struct tracker *t);

static int start(struct tracker *t, const struct tracker_ops *ops,
		 const struct track_target *tg, bool hook)
{
	struct mapwatch_sample s;

	*t = (struct tracker){ .ops = ops, .tg = *tg,
			       .npages = (tg->size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE };
	/* Watching before the tracker arms: a change after that is counted. */
	if (ops->watch_maps && !mapwatch_optional(tg->fd >= 0, NULL) &&
	    mapwatch_open(&t->mw, tg->pid))
		return -1;
	/*
	 * The baseline (see mw_harvest()), before the tracker reads the
	 * mappings to watch: a call that ends after it moves the counters for
	 * the first harvest, one that ended before it is in what the tracker
	 * reads.  Taken after that read, it would hide a mapping made in
	 * between, which the tracker never follows then.
	 */
	if (t->mw) {
		mapwatch_read(t->mw, &s);
		mapwatch_policy(&t->mws, &s, NULL);
	}
	t->t_armed = now_s();
	if (ops->start(t)) {
		mw_close(t);
		t->ops = NULL;
		return -1;
	}
	if (hook && tracker_start_hook)
		tracker_start_hook(t);
	/* The scan tracker compares every page's content already. */
	if (tg->fd >= 0 && ops != &track_scan_ops && obj_start(t)) {
		ops->stop(t);
		mw_close(t);
		t->ops = NULL;
		return -1;
	}
	return 0;
}

/*
 * The words of an auto choice, into why (whylen bytes, cut where they no
 * longer fit): "TRACKER: WHY; ...; auto picked TRACKER".  The report of
 * lmig send words struct track_choice the same way (cli/report_notes.c);
 * these are for the error message and tracker_open()'s callers.
 */
static void choice_words(const struct track_choice *c, char *why, size_t whylen)
{
	size_t n = 0;

	if (!why || !whylen)
		return;
	why[0] = 0;
	for (unsigned int i = 0; i < c->nrefused && n < whylen; i++)
		n += snprintf(why + n, whylen - n, "%s%s: %s", n ? "; " : "", c->refused[i].tracker,
			      c->refused[i].why);
	for (unsigned int i = 0; i < c->ncal && n < whylen; i++)
		n += snprintf(why + n, whylen - n, "%s%s: %.1f ms a harvest%s", n ? "; " : "",
			      c->cal[i].tracker, c->cal[i].cost.harvest_s * 1000,
			      c->cal[i].cost.stops_writer ? " with the writer stopped" : "");
	/* track_pick.h: then soft-dirty is not picked by cost. */
	if (c->ncal && c->huge && n < whylen)
		n += snprintf(why + n, whylen - n, "%shuge folios", n ? "; " : "");
	if (c->picked && n < whylen)
		snprintf(why + n, whylen - n, "%sauto picked %s", n ? "; " : "", c->picked);
}

/* Note ops as refused by auto, with lmig_err()'s message. */
static void refuse(struct track_choice *c, const struct tracker_ops *ops)
{
	if (c->nrefused >= TRACK_CHOICE_MAX)
		return;
	c->refused[c->nrefused].tracker = ops->name;
	snprintf(c->refused[c->nrefused].why, sizeof(c->refused[0].why), "%s", lmig_errmsg());
	c->nrefused++;
}

/* CPU time of the calling thread, user and system: what a harvest costs lmig. */
static double thread_cpu_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * The scan tracker's harvest reads and hashes every page: timed on the
 * first CAL_SCAN_BYTES of the memory and scaled to its size, rather than
 * paid in full once more.
 */
static int calibrate_scan(const struct track_target *tg, struct track_cost *cost)
{
	uint64_t len = tg->size < CAL_SCAN_BYTES ? tg->size : CAL_SCAN_BYTES;
	uint8_t *buf = aligned_alloc(LMIG_PAGE_SIZE, CAL_SCAN_BYTES);
	double t0 = now_s(), c0 = thread_cpu_s(), scale;
	volatile uint64_t sum = 0;	/* the hashes are what is timed: kept */
	int ret;

	if (!buf)
		return lmig_err("out of memory");
	len -= len % LMIG_PAGE_SIZE;
	ret = track_read(tg, 0, buf, len);
	for (uint64_t off = 0; !ret && off < len; off += LMIG_PAGE_SIZE)
		sum += codec_page_hash(buf + off);
	free(buf);
	scale = len ? (double)tg->size / len : 1;
	*cost = (struct track_cost){ .harvest_s = (now_s() - t0) * scale,
				     .cpu_s = (thread_cpu_s() - c0) * scale };
	return ret;
}

/*
 * What a harvest of ops on tg would cost a round CAL_ROUND_MS long.  Some
 * trackers pay per harvest (soft-dirty write-protects the whole mapping),
 * some per page written since the last one (kmod write-protects each
 * written folio, which on a KVM guest also costs KVM's MMU notifier): so
 * two harvests, one right after the start (the fixed part) and one
 * CAL_WAIT_MS later, and the growth between them scaled to the round.
 * The tracker is closed again.
 */
static int calibrate(const struct tracker_ops *ops, const struct track_target *tg,
		     struct track_cost *cost)
{
	struct timespec wait = { 0, CAL_WAIT_MS * 1000000L };
	double h1, c1, grow, cgrow;
	struct tracker t;
	uint64_t *bm;
	int ret;

	if (ops == &track_scan_ops)
		return calibrate_scan(tg, cost);
	if (start(&t, ops, tg, false))
		return -1;
	bm = calloc(bitmap_words(t.npages), sizeof(*bm));
	if (!bm) {
		tracker_close(&t);
		return lmig_err("out of memory");
	}
	ret = tracker_harvest(&t, bm);
	h1 = t.harvest_s;
	c1 = t.harvest_cpu_s;
	if (!ret) {
		nanosleep(&wait, NULL);
		ret = tracker_harvest(&t, bm);
	}
	grow = t.harvest_s - 2 * h1;
	cgrow = t.harvest_cpu_s - 2 * c1;
	/*
	 * The growth scaled is that of lmig's CPU time, which a loaded
	 * machine's scheduling delays do not inflate tenfold; where the
	 * growth is spent waiting (soft-dirty's stop), the wall time's, once.
	 */
	cgrow = cgrow > 0 ? cgrow * CAL_ROUND_MS / CAL_WAIT_MS : 0;
	*cost = (struct track_cost){
		.harvest_s = h1 + (cgrow > grow ? cgrow : grow > 0 ? grow : 0),
		.cpu_s = c1 + cgrow,
		.stops_writer = ops == &track_softdirty_ops };
	tracker_close(&t);
	free(bm);
	return ret;
}

/*
 * Whether a shared object is in huge folios: shmem gives its st_blksize
 * as the huge page size when it allocates huge folios for it.
 */
static bool huge_folios(const struct track_target *tg)
{
	struct stat st;

	return tg->fd >= 0 && !fstat(tg->fd, &st) &&
	       st.st_blksize >= (blksize_t)TRACK_HUGE_PAGES * LMIG_PAGE_SIZE;
}

/*
 * Calibrate each of can[0..*n): one whose calibration fails is refused
 * with its error (it could not watch after all) and leaves can.  c->cal
 * holds the costs of those left, in the same order.
 */
static void calibrate_all(struct track_choice *c, const struct tracker_ops **can,
			  unsigned int *n, const struct track_target *tg)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < *n; i++) {
		struct track_cost cost;

		lmig_err_clear();
		if (calibrate(can[i], tg, &cost)) {
			refuse(c, can[i]);
			continue;
		}
		can[k] = can[i];
		c->cal[k].tracker = can[i]->name;
		c->cal[k].cost = cost;
		k++;
	}
	lmig_err_clear();
	*n = k;
	c->ncal = k;
}

/*
 * tracker_open_choice(); the error message when no tracker can watch
 * quotes the choice cut to whylen bytes, as tracker_open()'s why would be.
 */
static int open_choice(struct tracker *t, const char *name, const struct track_target *tg,
		       struct track_choice *c, size_t whylen)
{
	char why[TRACK_CHOICE_MAX * 600];
	const struct tracker_ops *can[TRACK_CHOICE_MAX];
	unsigned int ncan = 0;

	*c = (struct track_choice){ 0 };
	if (strcmp(name, "auto")) {
		for (size_t i = 0; i < sizeof(trackers) / sizeof(trackers[0]); i++) {
			if (strcmp(trackers[i]->name, name))
				continue;
			if (probe(trackers[i], tg)) {
				char msg[256];

				snprintf(msg, sizeof(msg), "%s", lmig_errmsg());
				lmig_err_clear();
				return lmig_err("--tracker %s cannot watch this memory: %s", name, msg);
			}
			return start(t, trackers[i], tg, true);
		}
		return lmig_err("--tracker: '%s' is not one of %s", name, tracker_names());
	}
	c->auto_pick = true;
	for (size_t i = 0; i < sizeof(trackers) / sizeof(trackers[0]); i++) {
		lmig_err_clear();
		if (probe(trackers[i], tg) == 0)
			can[ncan++] = trackers[i];
		else
			refuse(c, trackers[i]);
	}
	lmig_err_clear();
	if (ncan > 1)
		calibrate_all(c, can, &ncan, tg);
	if (ncan > 0) {
		struct track_cost cost[TRACK_CHOICE_MAX];
		int k;

		for (unsigned int i = 0; i < ncan; i++)
			cost[i] = c->cal[i].cost;
		c->huge = huge_folios(tg);
		k = track_pick(cost, ncan, c->huge, &c->pick_why);
		if (c->pick_why == TRACK_PICK_ONLY)
			c->ncal = 0;	/* nothing was calibrated: nothing to tell */
		c->picked = can[k]->name;
		return start(t, can[k], tg, true);
	}
	choice_words(c, why, whylen < sizeof(why) ? whylen : sizeof(why));
	return lmig_err("no dirty tracker can watch this memory (%s)", whylen ? why : "");
}

int tracker_open_choice(struct tracker *t, const char *name, const struct track_target *tg,
			struct track_choice *c)
{
	/* The error message quotes as much of the choice as it always did. */
	return open_choice(t, name, tg, c, 256);
}

int tracker_open(struct tracker *t, const char *name, const struct track_target *tg,
		 char *why, size_t whylen)
{
	struct track_choice c;
	int ret = open_choice(t, name, tg, &c, why ? whylen : 0);

	choice_words(&c, why, whylen);
	return ret;
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

/*
 * The mapping watch's part of a harvest, after the tracker's own:
 *
 *  (a) the tracker read (and re-armed) the bits of the mappings it watches;
 *  (b) read the counters; if they moved since the previous harvest's (b),
 *  (c) remap (uffd: register and protect the object's new mappings), then
 *  (d) compare every page of the object with what was sent.
 *
 * Why a write W through a mapping that a call C removes, moves or zaps is
 * not lost: C drops the bits after W and ends after the drop, and its
 * end is counted (also when C started before the watch attached:
 * bpf/mapwatch.bpf.c).  The end falls between two samples (b): the
 * baseline, taken once the watch is attached and before the tracker reads
 * the mappings it watches (so before the caller's first full read), and
 * each harvest's.  If it came before the baseline, W is in that full read.
 * Else the first harvest whose (b) follows the end sees the counters
 * moved (its previous sample did not have that end yet), and its (d)
 * reads the page after the end, so after W.  A mapping that C made is in
 * /proc/PID/maps once C ends: if that was before the baseline, the
 * tracker's start found it; else that harvest's (c) registers it, its (d)
 * reads what was written through it before (c) protected it, and later
 * writes are in the bits.  Counting starts as well makes a harvest that
 * falls inside C rescan already, and lets uffd tell a call under way
 * (started, not ended).
 */
static int mw_harvest(struct tracker *t, uint64_t *bitmap, bool *force)
{
	struct mapwatch_sample s;
	const char *why;
	double t0;

	*force = false;
	if (!t->mw)
		return 0;
	mapwatch_read(t->mw, &s);
	if (mapwatch_policy(&t->mws, &s, &why) == MAPWATCH_CLEAN)
		return 0;
	t0 = now_s();
	*force = true;
	t->map_rescans++;
	if (t->ops->remap && t->ops->remap(t, bitmap))
		return -1;
	t->mapwatch_s += now_s() - t0;
	return 0;
}

int tracker_harvest(struct tracker *t, uint64_t *bitmap)
{
	double t0 = now_s(), c0 = thread_cpu_s();
	int ret = t->ops->harvest(t, bitmap);
	bool force = false;

	if (!ret)
		ret = mw_harvest(t, bitmap, &force);
	if (!ret && t->obj) {
		double t1 = now_s();

		ret = obj_check(t, bitmap, force);
		if (force)
			t->mapwatch_s += now_s() - t1;
	}
	/* The scan tracker compares every page already. */
	if (!ret && t->tg.sent && t->ops != &track_scan_ops)
		ret = refine_huge(t, bitmap);
	t->harvest_s += now_s() - t0;
	t->harvest_cpu_s += thread_cpu_s() - c0;
	t->harvests++;
	return ret;
}

bool tracker_has_parts(const struct tracker *t)
{
	return t->ops->harvest_part && !t->obj && !t->mw;
}

int tracker_harvest_part(struct tracker *t, uint64_t *bitmap, uint64_t first, uint64_t end,
			 bool begin, bool last)
{
	double t0, c0;
	int ret;

	if (!tracker_has_parts(t))
		return tracker_harvest(t, bitmap);
	t0 = now_s();
	c0 = thread_cpu_s();
	ret = t->ops->harvest_part(t, bitmap, first, end, begin);
	t->harvest_s += now_s() - t0;
	t->harvest_cpu_s += thread_cpu_s() - c0;
	if (last)
		t->harvests++;
	return ret;
}

void tracker_close(struct tracker *t)
{
	if (t->ops && t->ops->stop)
		t->ops->stop(t);
	mw_close(t);
	obj_free(t);
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

// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig estimate's observations (estimate_obs.h).  The memory is watched as
 * `lmig dirtyrate` does (live/watch.h), with every harvest's bitmap kept:
 * unions of 1, 2, 4 ... harvests in a row give the distinct pages dirtied
 * over intervals of several lengths.  A QEMU guest is asked over QMP
 * (host/qmp.h).  The link is measured by a real send (image/image.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/estimate_obs.h"
#include "host/qmp.h"
#include "host/threads.h"
#include "image/image.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/json_read.h"
#include "live/switch_plan.h"

/* Harvests kept for the curve, at most; fewer for a large image (EST_BITMAPS_BYTES). */
#define EST_HARVESTS		64
#define EST_BITMAPS_BYTES	(256u << 20)
_Static_assert(EST_HARVESTS <= EST_HARVESTS_MAX, "every harvest kept goes to the model");
/* The watch harvests this often, unless --observe is long enough for EST_HARVESTS. */
#define EST_INTERVAL_S		0.1

/*
 * What the writer did while watched: the CPUs it used (/proc's counters,
 * host/threads.h), and how much of the time its busiest thread ran or
 * waited to run (schedstat: a busy writer starved by other work waits, a
 * sleeping one does not).  The snapshots are large: not on the stack.
 */
static struct tsnap cpu_snap[2];
#define BUSY_THREADS	1024
static struct busy {
	unsigned int n;
	pid_t tid[BUSY_THREADS];
	double s[BUSY_THREADS];		/* ran and waited to run, seconds */
	double run;			/* all threads ran, seconds */
	double t;
} busy[2];
/*
 * After the watch, its writer looked at this long with no harvest (at
 * least EST_QUIET_MIN_S): a busy writer competes for the CPU with the
 * watch's own harvests, which back to back take most of a CPU, and with
 * lmig send's far fewer it gets more and dirties faster.
 */
#define EST_QUIET_SHARE		0.2
#define EST_QUIET_MIN_S		0.5

/* Every thread's time running and waiting to run (schedstat's first two). */
static void busy_take(pid_t pid, struct busy *b)
{
	char path[64];
	struct dirent *e;
	DIR *d;

	b->n = 0;
	b->run = 0;
	b->t = now_s();
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) && b->n < BUSY_THREADS) {
		unsigned long long run, wait;
		char p[320];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		f = fopen(p, "re");
		if (f && fscanf(f, "%llu %llu", &run, &wait) == 2) {
			b->tid[b->n] = atoi(e->d_name);
			b->s[b->n++] = (run + wait) / 1e9;
			b->run += run / 1e9;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
}

static void cpu_mark(pid_t pid, int i)
{
	if (pid <= 0)
		return;
	tsnap_take(pid, &cpu_snap[i]);
	busy_take(pid, &busy[i]);
}

/* The CPUs pid used, and the busiest thread's share of the time runnable. */
static void cpu_used(pid_t pid, struct est_input *in)
{
	double span = busy[1].t - busy[0].t;

	if (pid <= 0 || cpu_snap[1].t <= cpu_snap[0].t || span <= 0)
		return;
	in->cpu_used = tsnap_cpus(&cpu_snap[0], &cpu_snap[1], NULL, 0);
	for (unsigned int i = 0; i < busy[1].n; i++)
		for (unsigned int j = 0; j < busy[0].n; j++)
			if (busy[0].tid[j] == busy[1].tid[i] &&
			    (busy[1].s[i] - busy[0].s[j]) / span > in->cpu_busy)
				in->cpu_busy = (busy[1].s[i] - busy[0].s[j]) / span;
}

/*
 * The CPUs the writer uses with no harvest running (in->cpu_quiet): its
 * threads' run time over a quiet look after the watch, in proportion to
 * their run time while watched, which /proc's counters made cpu_used.
 */
static void cpu_quiet(pid_t pid, double look_s, struct est_input *in)
{
	double watched = busy[1].run - busy[0].run, quiet;
	struct timespec ts = { (time_t)look_s, (long)((look_s - (time_t)look_s) * 1e9) };

	if (pid <= 0 || in->cpu_used <= 0 || watched <= 0)
		return;
	watched /= busy[1].t - busy[0].t;
	busy[0] = busy[1];
	nanosleep(&ts, NULL);
	busy_take(pid, &busy[1]);
	quiet = (busy[1].run - busy[0].run) / (busy[1].t - busy[0].t);
	in->cpu_quiet = in->cpu_used * quiet / watched;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorted in place). */
static double median(double *v, unsigned int n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void sleep_until(double t)
{
	double d = t - now_s();

	if (d > 0) {
		struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}
}

/*
 * Harvest every interval for the --observe time, keeping every bitmap;
 * their unions give the curve.  Progress once a second.
 */
static int watch_loop(struct watch *w, const struct est_args *a, bool progress,
		      struct est_obs *ob)
{
	uint64_t words = bitmap_words(w->npages), *bm[EST_HARVESTS] = { NULL };
	unsigned int n = a->observe_s / EST_INTERVAL_S, cap = EST_HARVESTS;
	double t[EST_HARVESTS + 1], hv[EST_HARVESTS], iv, last_shown = 0;
	bool tty = isatty(STDERR_FILENO);
	double hsum = 0;
	int ret = -1;

	if (words * 8 * cap > EST_BITMAPS_BYTES)
		cap = EST_BITMAPS_BYTES / (words * 8) > 2 ? EST_BITMAPS_BYTES / (words * 8) : 2;
	if (n > cap)
		n = cap;
	if (n < 2)
		n = 2;
	iv = (double)a->observe_s / n;
	/*
	 * The first harvest also holds what was written while the baseline
	 * hashes were taken, page by page: not an interval of known length.
	 * The watch starts from it.
	 */
	bm[0] = malloc(words * 8);
	if (!bm[0] || watch_harvest(w, bm[0], &(uint64_t){ 0 }, &ob->harvest_s)) {
		lmig_err("%s", bm[0] ? lmig_errmsg() : "out of memory for the harvests");
		goto out;
	}
	free(bm[0]);
	bm[0] = NULL;
	t[0] = now_s();
	cpu_mark(a->tg.pid, 0);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t pages;
		double hs;

		bm[i] = malloc(words * 8);
		if (!bm[i]) {
			lmig_err("out of memory for the harvests");
			goto out;
		}
		sleep_until(t[0] + (i + 1) * iv);
		t[i + 1] = now_s();
		/* Slow harvests stretch the intervals: --observe still bounds the watch. */
		if (i >= 2 && t[i + 1] - t[0] > a->observe_s + iv) {
			free(bm[i]);
			bm[i] = NULL;
			n = i;
			break;
		}
		if (watch_harvest(w, bm[i], &pages, &hs))
			goto out;
		if (hs < ob->harvest_s)
			ob->harvest_s = hs;
		hsum += hs;
		hv[i] = hs;
		ob->harvests = i + 1;
		if (progress && (t[i + 1] - last_shown >= 1 || i + 1 == n)) {
			fprintf(stderr, "%slmig estimate: watching %.1f of %lu s: %.1f MB/s dirtied over the last %.0f ms, harvest %.1f ms%s",
				tty ? "\r" : "", t[i + 1] - t[0], a->observe_s,
				pages * (double)LMIG_PAGE_SIZE / (t[i + 1] - t[i]) / 1e6,
				(t[i + 1] - t[i]) * 1000, hs * 1000, tty ? "   " : "\n");
			last_shown = t[i + 1];
		}
	}
	if (progress && tty)
		fputc('\n', stderr);
	cpu_mark(a->tg.pid, 1);
	cpu_used(a->tg.pid, &ob->in);
	ob->observed_s = t[n] - t[0];
	/* A guest's vCPU: its writer sleeps between writes, and QEMU's pace is assumed. */
	if (!a->qmp)
		cpu_quiet(a->tg.pid, ob->observed_s * EST_QUIET_SHARE > EST_QUIET_MIN_S ?
				     ob->observed_s * EST_QUIET_SHARE : EST_QUIET_MIN_S, &ob->in);
	/*
	 * precopy.c predicts the paused harvest by the cheapest of the
	 * migration's harvests so far, not of the many watched: the model
	 * draws it from all of them (est_cheapest()); the median is what one
	 * harvest costs, where one stalled by other work does not count.
	 */
	ob->in.harvest_s = median(hv, n);
	/* Sorted by median(): cheapest first, as est_cheapest() takes them. */
	ob->in.nharvests = n;
	for (unsigned int i = 0; i < n; i++)
		ob->in.harvests[i] = hv[i];
	ob->in.harvest_live_s = hsum / n;
	watch_curve(bm, t, n, w->npages, &ob->in.curve);
	ret = ob->in.curve.n ? 0 : lmig_err("out of memory for the curve");
out:
	for (unsigned int i = 0; i < n; i++)
		free(bm[i]);
	return ret;
}

/* --mem: the tracker's curve, the image, its zero pages. */
int estimate_watch_mem(struct watch *w, const struct est_args *a, bool progress,
		       struct est_obs *ob)
{
	if (watch_open(w, a->mem, a->tg, a->tname))
		return -1;
	ob->tracker = w->tracker;
	snprintf(ob->why, sizeof(ob->why), "%s", w->why);
	ob->in.npages = w->npages;
	ob->in.zero_pages = w->zero_pages;
	/* A run of zero pages is one ZERO descriptor. */
	ob->in.zero_wire = w->zero_pages ? (double)w->zero_runs * sizeof(struct lmig_page_desc) /
					   w->zero_pages : 0;
	/* The scan tracker compares content: a page sent after it was rewritten is clean. */
	ob->in.content_compare = !strcmp(w->tracker, "scan");
	/* ... and harvests in parts, sent as they come (live/precopy.c). */
	ob->in.harvest_parts = ob->in.content_compare ?
			       splan_parts(w->npages, SPLAN_PART_BYTES / LMIG_PAGE_SIZE) : 1;
	return watch_loop(w, a, progress, ob);
}

/* QEMU's RAM size: query-memory-size-summary, else query-migrate's total. */
static int qmp_ram(struct qmp *q, uint64_t *bytes)
{
	char out[4096];
	struct qmp_migrate m;
	struct jr_doc d;
	uint64_t base = 0, plugged = 0;

	if (!qmp_exec(q, "query-memory-size-summary", NULL, out, sizeof(out)) &&
	    !jr_parse(&d, out, strlen(out), &jr_limits_default, NULL)) {
		int rc = jr_u64(&d, jr_get(&d, 0, "base-memory"), &base);

		jr_u64(&d, jr_get(&d, 0, "plugged-memory"), &plugged);
		jr_free(&d);
		if (!rc && base) {
			*bytes = base + plugged;
			return 0;
		}
	}
	lmig_err_clear();
	if (qmp_query_migrate(q, &m))
		return -1;
	if (!m.total)
		return lmig_err("QMP %s: QEMU tells neither its memory size nor a migration's total",
				q->path);
	*bytes = m.total;
	return 0;
}

/*
 * QEMU's mapping of guest RAM: the private read-write anonymous mapping
 * of the RAM's size (give or take its alignment) holding the most, which
 * the TCG code buffer (executable) and the rest are not.  0, or -1 when
 * there is none to be read.
 */
int estimate_qemu_ram(pid_t pid, uint64_t ram, uint64_t *start)
{
	char path[64], line[512];
	unsigned long long best = 0, a = 0;
	bool fit = false, found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = pid > 0 ? fopen(path, "re") : NULL;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long b, kb, ino;
		char perms[8], name[16] = "";

		if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %15s", &a, &b, perms, &ino, name) >= 4 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			fit = b - a >= ram && b - a <= ram + (4u << 20) && !strcmp(perms, "rw-p") &&
			      !ino && !name[0];
			continue;
		}
		if (fit && sscanf(line, "Rss: %llu kB", &kb) == 1) {
			if (!found || kb > best) {
				best = kb;
				*start = a;
				found = true;
			}
			fit = false;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

/*
 * --qmp: the guest's RAM, downtime limit and max-bandwidth; its dirty
 * curve from calc-dirty-rate over 1, 2, 4 ... s (distinct sampled pages
 * changed over each period), unless --mem watches its RAM.
 */
int estimate_ask_qmp(const struct est_args *a, bool progress, bool curve, struct est_obs *ob,
		       int64_t *max_bw, pid_t *qpid, uint64_t *ram_bytes)
{
	struct qmp q;
	struct qmp_params pr;
	uint64_t ram = 0;
	unsigned int used = 0;
	int ret = -1;

	if (qmp_open(&q, a->qmp, 5000))
		return -1;
	if (qmp_ram(&q, &ram) || qmp_params(&q, &pr))
		goto out;
	if (qmp_accel(&q, ob->accel, sizeof(ob->accel)))
		lmig_err_clear();
	ob->in.npages = ram / QEMU_PAGE_SIZE;
	*qpid = q.pid;
	*ram_bytes = ram;
	if (!a->downtime_set && pr.downtime_limit_ms > 0)
		ob->in.downtime_ms = pr.downtime_limit_ms;
	*max_bw = pr.max_bandwidth;
	cpu_mark(q.pid, 0);
	for (unsigned int s = 1; curve && used + s <= a->observe_s && ob->in.curve.n < EST_POINTS_MAX;
	     s *= 2) {
		double mbps;

		if (progress)
			fprintf(stderr, "lmig estimate: calc-dirty-rate over %u s (%u of %lu s)\n", s,
				used, a->observe_s);
		if (qmp_dirty_rate(&q, s, &mbps))
			goto out;
		ob->in.curve.t[ob->in.curve.n] = s;
		ob->in.curve.pages[ob->in.curve.n] = mbps * 1e6 * s / QEMU_PAGE_SIZE;
		ob->in.curve.n++;
		used += s;
	}
	if (curve) {
		cpu_mark(q.pid, 1);
		cpu_used(q.pid, &ob->in);
		ob->observed_s = used;
		ob->tracker = "calc-dirty-rate";
	}
	ret = 0;
out:
	qmp_close(&q);
	return ret;
}

struct probe_seen {
	double elapsed;
	uint64_t wire;
};

/*
 * When the probe's data was last seen to move: its progress is told at
 * every event while it runs, also while it waits for the receiver's
 * verdict (which, like the commit, is a few small messages).
 */
static void probe_event(void *ctx, enum image_event ev, const struct image_progress *p,
			const struct image_stats *st)
{
	struct probe_seen *s = ctx;

	if (ev == IMAGE_EV_PROGRESS && p && st->bytes_wire >= s->wire + LMIG_PAGE_SIZE) {
		s->elapsed = p->elapsed;
		s->wire = st->bytes_wire;
	}
}

/* The probe image: the first bytes of the watched memory, or random data. */
static int probe_fill(int fd, uint64_t size, const struct watch *w)
{
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK);
	int ret = 0;

	if (!buf)
		return lmig_err("out of memory");
	for (uint64_t off = 0; off < size && !ret; off += CHUNK) {
		size_t n = size - off < CHUNK ? size - off : CHUNK;

		if (w && w->hashes)
			ret = track_read(&w->tg, off, buf, n);
		else
			for (size_t i = 0; i < n; i += 256)
				if (getrandom(buf + i, 256, 0) != 256)
					ret = lmig_err_errno(errno, "getrandom");
		if (!ret && pwrite(fd, buf, n, off) != (ssize_t)n)
			ret = lmig_err_errno(errno, "cannot fill the probe image");
	}
	free(buf);
	return ret;
}

/*
 * --to: a real send of a probe image to the lmig recv there.  The link's
 * rate is the bytes on the wire over the time from round 0's start
 * (after connecting) to the last byte out; the time before, set-up; the
 * time after, the commit.  Its wire bytes per page include compression.
 */
int estimate_probe_link(const struct est_args *a, const struct cli_opts *c, const struct watch *w,
		      struct est_obs *ob)
{
	uint64_t size = a->probe;
	struct probe_seen seen = { 0 };
	struct image_events ev = { .fn = probe_event, .ctx = &seen };
	struct image_stats st = { 0 };
	char path[64];
	double secs;
	int fd, ret;

	if (w && w->hashes && w->size < size)
		size = w->size / LMIG_PAGE_SIZE * LMIG_PAGE_SIZE;
	fd = memfd_create("lmig-estimate-probe", MFD_CLOEXEC);
	if (fd < 0)
		return lmig_err_errno(errno, "memfd_create");
	if (ftruncate(fd, size)) {
		close(fd);
		return lmig_err_errno(errno, "cannot size the probe image");
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = probe_fill(fd, size, w);
	if (!ret) {
		struct send_opts o = { .mem = path, .to = c->to, .channels = c->channels,
				       .compress = c->compress, .bandwidth = c->bandwidth,
				       .zerocopy = c->zerocopy, .timeout_ms = c->timeout_ms,
				       .progress = true, .plain_progress = true, .events = &ev };

		ret = image_send(&o, &st);
	}
	close(fd);
	secs = st.rounds ? seen.elapsed - st.round[0].start_s : 0;
	if (!ret && (secs <= 0 || !seen.wire))
		ret = lmig_err("the probe send to %s ended too fast to time", c->to);
	if (!ret) {
		uint64_t data = st.pages_total - st.pages_zero;

		/* Under --bandwidth the first burst went at once: not the link's rate. */
		double wire = c->bandwidth && seen.wire > estimate_burst(c->bandwidth) ?
			      seen.wire - estimate_burst(c->bandwidth) : seen.wire;

		ob->in.link_bps = wire / secs;
		ob->probe_mbps = wire / secs / 1e6;
		if (!ob->in.page_wire && data)
			ob->in.page_wire = (double)st.bytes_wire / data;
		ob->in.setup_s = st.round[0].start_s;
		ob->in.switch_s = st.total_s > seen.elapsed ? st.total_s - seen.elapsed : 0;
		ob->link_from = c->bandwidth ? "measured with --to, held to --bandwidth" :
					       "measured with --to";
	}
	free(st.round);
	return ret;
}

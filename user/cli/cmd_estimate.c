// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig estimate: before a live migration, how long will it take, in how
 * many rounds, with what downtime, and does it converge as it is, only
 * with --throttle auto's CPU limit, or not at all?
 *
 * It watches the memory for --observe seconds and plays the pre-copy
 * with what it saw (live/estimate.h: the model).  The memory of `lmig
 * send` (--mem, --pid) is watched with a dirty tracker, as `lmig
 * dirtyrate` does (live/watch.h): harvests every 100 ms or so, kept, so
 * that unions of 1, 2, 4 ... harvests in a row give the distinct pages
 * dirtied over intervals of several lengths.  A QEMU guest (--qmp) is
 * asked with calc-dirty-rate over 1, 2, 4 ... seconds.  The link is
 * --bandwidth, or measured by a short real send to an `lmig recv` (--to).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "host/qmp.h"
#include "host/threads.h"
#include "image/image.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/json_read.h"
#include "lib/parse.h"
#include "live/estimate.h"
#include "live/watch.h"

/* Harvests kept for the curve, at most; fewer for a large image (EST_BITMAPS_BYTES). */
#define EST_HARVESTS		64
#define EST_BITMAPS_BYTES	(256u << 20)
/* The watch harvests this often, unless --observe is long enough for EST_HARVESTS. */
#define EST_INTERVAL_S		0.1
/*
 * lmig send's wire cost of a page: the page, its descriptor, and its share
 * of a frame header (BATCH_TARGET bytes of pages a frame, 64 pages).
 */
#define LMIG_PAGE_WIRE	(LMIG_PAGE_SIZE + sizeof(struct lmig_page_desc) + \
			 sizeof(struct lmig_frame) / 64.0)
/* QEMU 7.2: a page is an 8-byte address-and-flags word and the page; a zero page that word and one byte. */
#define QEMU_PAGE_WIRE	(8.0 + 4096)
#define QEMU_ZERO_WIRE	9.0
#define QEMU_PAGE_SIZE	4096
/*
 * Fixed costs that no observation gives (Documentation/estimate.md has
 * where they come from): lmig send's connection and handshake before
 * round 0, and its commit after the last page (the receiver's digest
 * check and reply) when --to did not measure them; QEMU's set-up, its
 * dirty bitmap synchronisation, and its stop and device state.
 */
#define LMIG_SETUP_S	0.02
#define LMIG_COMMIT_S	0.01
#define QEMU_SETUP_S	0.05
#define QEMU_SYNC_S	0.005
#define QEMU_SWITCH_S	0.01
/* --bandwidth's token bucket (chan/ratelimit.c): 20 ms of rate, at least 256 KiB. */
#define RL_BURST_S	0.02
#define RL_BURST_MIN	(256 * 1024)

enum { EO_TRACKER = OPT_OWN, EO_OBJECT_WRITES, EO_QMP, EO_MAX_ROUNDS, EO_THROTTLE,
       EO_THROTTLE_MAX, EO_OBSERVE, EO_PROBE };

struct est_args {
	const char *mem, *tname, *qmp;
	struct track_target tg;
	unsigned long pid, observe_s, downtime_ms, max_rounds, throttle_max;
	bool downtime_set, throttle_off;
	uint64_t probe;
};

/* What was watched, and how the link was found. */
struct est_obs {
	const char *tracker, *link_from;
	char why[1024];
	double harvest_s;		/* the cheapest harvest */
	unsigned int harvests;
	double observed_s;
	struct est_input in;
	char accel[16];			/* QEMU's accelerator */
	double probe_mbps;		/* --to: what the probe send carried, wire MB/s */
};

void usage_estimate(void)
{
	printf("Usage: lmig estimate --mem PATH [--pid PID] (--bandwidth RATE | --to HOST:PORT)\n"
	       "                     [OPTIONS]\n"
	       "       lmig estimate --qmp SOCKET [--mem /proc/QEMU_PID/fd/N] [--bandwidth RATE |\n"
	       "                     --to HOST:PORT] [OPTIONS]\n"
	       "\n"
	       "Predict a live migration before starting it: watch how the memory is\n"
	       "written, then play the pre-copy round by round as `lmig send` (or, with\n"
	       "--qmp, QEMU) runs it.  Says the total time, the rounds and the downtime,\n"
	       "and whether it converges as it is, only with --throttle auto (leaving the\n"
	       "workload which share of its CPU), or not at all.\n"
	       "\n"
	       "What is watched:\n"
	       "  -m, --mem PATH          the memory of `lmig send --mem`: a shm/tmpfs file,\n"
	       "                          /proc/PID/fd/N of a memfd, or anon:START-END of --pid;\n"
	       "                          with --qmp, guest RAM shared as a memfd (optional)\n"
	       "  -p, --pid PID           the process that writes it (as for lmig dirtyrate)\n"
	       "      --tracker NAME      %s (default auto)\n"
	       "      --object-writes any|mapped\n"
	       "                          as for lmig send\n"
	       "      --qmp SOCKET        a QEMU guest's QMP socket: its RAM size, downtime\n"
	       "                          limit and max-bandwidth, and calc-dirty-rate (unless\n"
	       "                          --mem watches its RAM); predicts QEMU's own pre-copy\n"
	       "      --observe S         watch this long, 1..600 s (default 5); progress on\n"
	       "                          stderr meanwhile\n"
	       "\n"
	       "The link (one of them; with --qmp QEMU's max-bandwidth, when set, caps it):\n"
	       "  -b, --bandwidth RATE    the rate it carries, bytes/s: 125M, 1Gbit, 64Mi\n"
	       "  -t, --to HOST:PORT      measure it: send a probe image (a copy of the first\n"
	       "                          --probe bytes of --mem, or random data) to an `lmig\n"
	       "                          recv` listening there, which stores it at its --out;\n"
	       "                          with --bandwidth too, the probe is held to it\n"
	       "      --probe SIZE        probe image size (default 128M)\n"
	       "  -c, --channels N, -z, --compress MODE, --zerocopy MODE, --timeout S\n"
	       "                          for the probe send, as for lmig send\n"
	       "\n"
	       "The migration planned:\n"
	       "  -d, --downtime-ms N     the downtime budget (default 300; with --qmp,\n"
	       "                          QEMU's downtime-limit)\n"
	       "      --max-rounds N      lmig send's (default 30)\n"
	       "      --throttle auto|off whether a CPU limit may help (default auto)\n"
	       "      --throttle-max PCT  take at most PCT %% of its CPU (1..99, default 90)\n"
	       "\n"
	       "      --progress, --no-progress\n"
	       "                          progress while watching (default: when stderr is a\n"
	       "                          terminal)\n"
	       "  -j, --json              one JSON object with the estimate on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 estimated (whatever the verdict), 1 failed, 2 bad usage.\n",
	       tracker_names());
}

/* The CPUs pid used between two snapshots (large: not on the stack). */
static struct tsnap cpu_snap[2];

static void cpu_mark(pid_t pid, int i)
{
	if (pid > 0)
		tsnap_take(pid, &cpu_snap[i]);
}

static double cpu_used(pid_t pid)
{
	return pid > 0 && cpu_snap[1].t > cpu_snap[0].t ?
	       tsnap_cpus(&cpu_snap[0], &cpu_snap[1], NULL, 0) : 0;
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
	double t[EST_HARVESTS + 1], iv, last_shown = 0;
	bool tty = isatty(STDERR_FILENO);
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
	ob->in.cpu_used = cpu_used(a->tg.pid);
	ob->observed_s = t[n] - t[0];
	ob->in.harvest_s = ob->harvest_s;
	watch_curve(bm, t, n, w->npages, &ob->in.curve);
	ret = ob->in.curve.n ? 0 : lmig_err("out of memory for the curve");
out:
	for (unsigned int i = 0; i < n; i++)
		free(bm[i]);
	return ret;
}

/* --mem: the tracker's curve, the image, its zero pages. */
static int observe_mem(struct watch *w, const struct est_args *a, bool progress,
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
static int qemu_ram_map(pid_t pid, uint64_t ram, uint64_t *start)
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
static int observe_qmp(const struct est_args *a, bool progress, bool curve, struct est_obs *ob,
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
		ob->in.cpu_used = cpu_used(q.pid);
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
static int probe_link(const struct est_args *a, const struct cli_opts *c, const struct watch *w,
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

		ob->in.link_bps = seen.wire / secs;
		ob->probe_mbps = seen.wire / secs / 1e6;
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

static const char *verdict_name(enum est_verdict v)
{
	return v == EST_CONVERGES ? "converges" : v == EST_THROTTLE ? "throttle" : "never";
}

static const char *fail_name(enum est_fail f)
{
	return f == EST_FAIL_ROUNDS ? "rounds" : f == EST_FAIL_HARVEST ? "harvest" :
	       f == EST_FAIL_LINK ? "link" : "none";
}

/* One predicted migration, its keys named with prefix. */
static void json_run(struct json_obj *j, const char *prefix, const struct est_run *r)
{
	char k[64];

#define KEY(name)	(snprintf(k, sizeof(k), "%s%s", prefix, name), k)
	json_bool(j, KEY("converged"), r->converged);
	json_str(j, KEY("fail"), fail_name(r->fail));
	json_u64(j, KEY("rounds"), r->rounds);
	json_dbl(j, KEY("total_s"), r->total_s, 3);
	json_dbl(j, KEY("downtime_ms"), r->converged ? r->downtime_s * 1000 : 0, 1);
	json_dbl(j, KEY("predicted_downtime_ms"), r->predicted_downtime_s * 1000, 1);
	json_u64(j, KEY("bytes_wire"), (uint64_t)r->wire_bytes);
	json_dbl(j, KEY("cpu_share_pct"), r->share * 100, 1);
#undef KEY
}

static void report_json(const struct est_obs *ob, const struct est_result *res, bool qemu)
{
	const struct est_input *in = &ob->in;
	struct json_obj j;

	json_begin(&j);
	json_str(&j, "role", "estimate");
	json_str(&j, "status", "completed");
	json_str(&j, "model", qemu ? "qemu" : "lmig");
	json_str(&j, "tracker", ob->tracker);
	json_str(&j, "tracker_why", ob->why[0] ? ob->why : NULL);
	json_str(&j, "accel", ob->accel[0] ? ob->accel : NULL);
	json_dbl(&j, "observed_s", ob->observed_s, 2);
	json_u64(&j, "harvests", ob->harvests);
	json_dbl(&j, "harvest_ms", in->harvest_s * 1000, 2);
	json_dbl(&j, "cpu_used_pct", in->cpu_used * 100, 1);
	json_u64(&j, "bytes_total", in->npages * (uint64_t)LMIG_PAGE_SIZE);
	json_u64(&j, "pages_total", in->npages);
	json_u64(&j, "pages_zero", in->zero_pages);
	json_array_begin(&j, "curve");
	for (unsigned int i = 0; i < in->curve.n; i++) {
		json_elem_begin(&j);
		json_dbl(&j, "s", in->curve.t[i], 3);
		json_dbl(&j, "pages", in->curve.pages[i], 1);
		json_dbl(&j, "mbps", in->curve.pages[i] * LMIG_PAGE_SIZE / in->curve.t[i] / 1e6, 2);
		json_elem_end(&j);
	}
	json_array_end(&j);
	json_dbl(&j, "dirty_mbps", res->dirty_pps * LMIG_PAGE_SIZE / 1e6, 2);
	json_u64(&j, "working_set_bytes", (uint64_t)(res->working_set * LMIG_PAGE_SIZE));
	json_dbl(&j, "link_mbps", in->link_bps / 1e6, 2);
	json_str(&j, "link_from", ob->link_from);
	json_dbl(&j, "final_mbps", (in->final_bps > 0 ? in->final_bps : in->link_bps) / 1e6, 2);
	json_dbl(&j, "page_wire", in->page_wire, 1);
	json_dbl(&j, "setup_ms", in->setup_s * 1000, 1);
	json_dbl(&j, "switch_ms", in->switch_s * 1000, 1);
	json_u64(&j, "downtime_limit_ms", in->downtime_ms);
	json_u64(&j, "max_rounds", qemu ? 0 : in->max_rounds);
	json_str(&j, "verdict", verdict_name(res->verdict));
	/* The migration as it would go: with the limit when one is needed. */
	json_run(&j, "", res->verdict == EST_THROTTLE ? &res->throttled : &res->as_is);
	json_run(&j, "as_is_", &res->as_is);
	json_bool(&j, "writer_idle", res->idle_writer);
	json_dbl(&j, "throttle_floor_pct", res->floor * 100, 1);
	json_dbl(&j, "throttle_needed_pct", res->share_needed * 100, 1);
	json_dbl(&j, "throttle_share_pct", res->verdict == EST_THROTTLE ? res->share * 100 : 0, 1);
	json_end(&j, stdout);
}

/* "about 3.1 s in 4 rounds, downtime about 75 ms" */
static void say_run(const struct est_run *r)
{
	printf("about %.1f s in %u rounds, downtime about %.0f ms (%.0f MB on the wire)\n",
	       r->total_s, r->rounds, r->downtime_s * 1000, r->wire_bytes / 1e6);
}

static void report_text(const struct est_obs *ob, const struct est_result *res, bool qemu)
{
	const struct est_input *in = &ob->in;
	const char *who = qemu ? "QEMU's pre-copy" : "lmig send";

	printf("watched %.1f s (%s%s%s): %.1f MB, %.1f %% zero pages\n", ob->observed_s,
	       ob->tracker, ob->accel[0] ? ", accel " : "", ob->accel,
	       in->npages * (double)LMIG_PAGE_SIZE / 1e6,
	       in->npages ? 100.0 * in->zero_pages / in->npages : 0);
	printf("dirtied (distinct pages):");
	for (unsigned int i = 0; i < in->curve.n; i++)
		printf("%s %.1f MB in %.2f s", i ? "," : "",
		       in->curve.pages[i] * LMIG_PAGE_SIZE / 1e6, in->curve.t[i]);
	printf("\n  %.1f MB/s over a round 0, working set about %.1f MB",
	       res->dirty_pps * LMIG_PAGE_SIZE / 1e6, res->working_set * LMIG_PAGE_SIZE / 1e6);
	if (in->cpu_used > 0)
		printf(", the writer used %.0f %% of a CPU", in->cpu_used * 100);
	printf("\n");
	printf("link: %.1f MB/s (%s), %.0f wire bytes a page; downtime budget %u ms\n",
	       in->link_bps / 1e6, ob->link_from, in->page_wire, in->downtime_ms);
	if (in->final_bps > in->link_bps)
		printf("  the last pass, with the guest stopped, at %.1f MB/s\n", in->final_bps / 1e6);
	switch (res->verdict) {
	case EST_CONVERGES:
		printf("%s converges as it is: ", who);
		say_run(&res->as_is);
		return;
	case EST_THROTTLE:
		printf("%s does not converge as it is: the rounds do not shrink to the budget\n", who);
		printf("with --throttle auto it does once the workload is held to %.0f %% of its CPU or less",
		       res->share_needed * 100);
		if (res->share < res->share_needed)
			printf(" (it would aim at %.0f %%)", res->share * 100);
		printf(": ");
		say_run(&res->throttled);
		return;
	case EST_NEVER:
		break;
	}
	if (res->as_is.fail == EST_FAIL_HARVEST)
		printf("%s does not converge: the harvest alone (%.0f ms) is over the budget\n", who,
		       in->harvest_s * 1000);
	else if (res->idle_writer && in->throttle_max_pct)
		printf("%s does not converge, and a CPU limit would not help: the writer used %.0f %% of a CPU while watched (it sleeps between writes; a limit does not slow it)\n",
		       who, in->cpu_used * 100);
	else if (res->floor < 1)
		printf("%s does not converge, not even with the workload's CPU cut to %.0f %% (--throttle-max)\n",
		       who, res->floor * 100);
	else
		printf("%s does not converge (and --throttle is off)\n", who);
}

static int estimate_opt(int opt, const char *arg, void *ctx)
{
	struct est_args *a = ctx;

	switch (opt) {
	case 'm': a->mem = arg; return EXIT_OK;
	case 'p': return opts_uint("estimate", "--pid", arg, 1, 1UL << 22, &a->pid);
	case EO_TRACKER: a->tname = arg; return EXIT_OK;
	case EO_OBJECT_WRITES:
		if (strcmp(arg, "any") && strcmp(arg, "mapped"))
			return usage_error("estimate", "--object-writes: '%s' is not any or mapped",
					   arg);
		a->tg.mapped_writes_only = !strcmp(arg, "mapped");
		return EXIT_OK;
	case EO_QMP: a->qmp = arg; return EXIT_OK;
	case 'd':
		a->downtime_set = true;
		return opts_uint("estimate", "--downtime-ms", arg, 1, 3600000, &a->downtime_ms);
	case EO_MAX_ROUNDS: return opts_uint("estimate", "--max-rounds", arg, 1, 10000, &a->max_rounds);
	case EO_THROTTLE:
		if (strcmp(arg, "auto") && strcmp(arg, "off"))
			return usage_error("estimate", "--throttle: '%s' is not auto or off", arg);
		a->throttle_off = !strcmp(arg, "off");
		return EXIT_OK;
	case EO_THROTTLE_MAX:
		return opts_uint("estimate", "--throttle-max", arg, 1, 99, &a->throttle_max);
	case EO_OBSERVE: return opts_uint("estimate", "--observe", arg, 1, 600, &a->observe_s);
	case EO_PROBE:
		if (parse_bytes("--probe", arg, &a->probe))
			return usage_error("estimate", "%s", lmig_errmsg());
		if (a->probe < (1 << 20) || a->probe % LMIG_PAGE_SIZE)
			return usage_error("estimate", "--probe: at least 1M and a multiple of 4 KiB");
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

/* What the options allow together; the one-line refusal if not. */
static int estimate_check(struct est_args *a, const struct cli_opts *c)
{
	if (!a->mem && !a->qmp)
		return usage_error("estimate", "missing --mem PATH or --qmp SOCKET");
	if (!c->bandwidth && !c->to && !a->qmp)
		return usage_error("estimate", "the link: give --bandwidth RATE or --to HOST:PORT");
	if (c->to && cmd_check_address("estimate", "--to", c->to))
		return EXIT_USAGE;
	if (a->mem && !strncmp(a->mem, "anon:", 5)) {
		if (!a->pid)
			return usage_error("estimate", "--mem anon: needs --pid");
		if (parse_anon_range("--mem", a->mem, &a->tg.start, &a->tg.size))
			return usage_error("estimate", "%s", lmig_errmsg());
	}
	if (!tracker_known(a->tname))
		return usage_error("estimate", "--tracker: '%s' is not one of %s", a->tname,
				   tracker_names());
	a->tg.pid = (pid_t)a->pid;
	return EXIT_OK;
}

/* The model's inputs that the observation and the probe left unset. */
static void fill_defaults(const struct est_args *a, const struct cli_opts *c, struct est_obs *ob,
			  int64_t max_bw)
{
	struct est_input *in = &ob->in;

	in->max_rounds = a->max_rounds;
	in->throttle_max_pct = a->throttle_off ? 0 : a->throttle_max;
	if (!in->downtime_ms)
		in->downtime_ms = a->downtime_ms;
	if (!in->link_bps && c->bandwidth) {
		in->link_bps = c->bandwidth;
		ob->link_from = "--bandwidth";
	}
	if (in->kind == EST_QEMU) {
		/*
		 * QEMU holds to its own max-bandwidth whatever the link could
		 * carry, except in the last pass, with the guest stopped.
		 */
		in->final_bps = in->link_bps;
		if (max_bw > 0 && (!in->link_bps || max_bw < in->link_bps)) {
			in->link_bps = max_bw;
			ob->link_from = "QEMU's max-bandwidth";
		}
		in->page_wire = QEMU_PAGE_WIRE;
		in->zero_wire = QEMU_ZERO_WIRE;
		in->setup_s = QEMU_SETUP_S;
		in->switch_s = QEMU_SWITCH_S;
		/* QEMU reads its dirty log, not the memory: cheaper than a scan. */
		in->harvest_s = QEMU_SYNC_S;
		in->content_compare = false;
		return;
	}
	if (!in->page_wire)
		in->page_wire = LMIG_PAGE_WIRE;
	if (!in->setup_s)
		in->setup_s = LMIG_SETUP_S;
	if (!in->switch_s)
		in->switch_s = LMIG_COMMIT_S;
	/* The token bucket of --bandwidth refills while a harvest runs. */
	if (c->bandwidth)
		in->burst = c->bandwidth * RL_BURST_S > RL_BURST_MIN ? c->bandwidth * RL_BURST_S :
								       RL_BURST_MIN;
}

int cmd_estimate(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "pid", required_argument, NULL, 'p' },
		{ "tracker", required_argument, NULL, EO_TRACKER },
		{ "object-writes", required_argument, NULL, EO_OBJECT_WRITES },
		{ "qmp", required_argument, NULL, EO_QMP },
		{ "observe", required_argument, NULL, EO_OBSERVE },
		{ "probe", required_argument, NULL, EO_PROBE },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, EO_MAX_ROUNDS },
		{ "throttle", required_argument, NULL, EO_THROTTLE },
		{ "throttle-max", required_argument, NULL, EO_THROTTLE_MAX },
		OPTE_TO,
		OPTE_WIRE,
		OPTE_TIMEOUT,
		OPTE_PROGRESS,
		OPTE_JSON,
		OPTE_HELP,
		OPTE_END };
	struct est_args a = { .tname = "auto", .tg = { .fd = -1 }, .observe_s = 5,
			      .downtime_ms = 300, .max_rounds = 30, .throttle_max = 90,
			      .probe = 128 << 20 };
	const struct cli_parse p = { "estimate", ":m:p:d:t:c:z:b:jh", lo, usage_estimate,
				     estimate_opt, &a };
	struct watch w = { .tg = { .fd = -1 } };
	struct est_obs ob = { .tracker = "", .link_from = "" };
	struct est_result res;
	struct cli_opts c;
	int64_t max_bw = -1;
	uint64_t ram = 0, ram_at = 0;
	pid_t qpid = 0;
	char anon[64];
	bool progress;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (estimate_check(&a, &c))
		return EXIT_USAGE;
	progress = cmd_progress_default(c.progress, g);
	ob.in.kind = a.qmp ? EST_QEMU : EST_LMIG;
	ret = a.qmp ? observe_qmp(&a, progress, false, &ob, &max_bw, &qpid, &ram) : 0;
	/*
	 * A guest's RAM is QEMU's memory: read there, with the scan tracker,
	 * it gives the curve in distinct pages and the zero pages exactly.
	 * Where it cannot be read, QEMU's calc-dirty-rate, and no zero pages.
	 */
	if (!ret && a.qmp && !a.mem) {
		if (qemu_ram_map(qpid, ram, &ram_at) == 0) {
			snprintf(anon, sizeof(anon), "anon:%llx-%llx", (unsigned long long)ram_at,
				 (unsigned long long)(ram_at + ram));
			a.mem = anon;
			a.tname = "scan";
			a.tg.pid = qpid;
			a.tg.start = ram_at;
			a.tg.size = ram;
		} else {
			ret = observe_qmp(&a, progress, true, &ob, &max_bw, &qpid, &ram);
		}
	}
	if (!ret && a.mem) {
		uint64_t npages = ob.in.npages;

		ret = observe_mem(&w, &a, progress, &ob);
		/* QEMU's idea of its RAM decides the model's image. */
		if (!ret && a.qmp && npages) {
			ob.in.npages = npages;
			if (ob.in.zero_pages > npages)
				ob.in.zero_pages = npages;
		}
	}
	if (!ret && c.to)
		ret = probe_link(&a, &c, a.mem && !a.qmp ? &w : NULL, &ob);
	watch_close(&w);
	if (ret) {
		fprintf(stderr, "lmig estimate: %s\n", lmig_errmsg());
		return EXIT_FAIL;
	}
	fill_defaults(&a, &c, &ob, max_bw);
	if (!ob.in.link_bps) {
		fprintf(stderr, "lmig estimate: QEMU has no max-bandwidth: give --bandwidth RATE or --to HOST:PORT\n");
		return EXIT_USAGE;
	}
	est_predict(&ob.in, &res);
	if (g->json)
		report_json(&ob, &res, a.qmp != NULL);
	else
		report_text(&ob, &res, a.qmp != NULL);
	return EXIT_OK;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig dirtyrate: how fast is this memory being written?  The question to
 * ask before a live migration (QEMU's calc-dirty-rate asks it of a guest):
 * pre-copy converges only while the link outruns the dirty rate.
 *
 * It runs the live engine's harvest loop without sending (live/watch.h):
 * take the content's hashes, then every interval harvest the pages
 * written since, count them, and take their new hashes as the live engine
 * would after sending them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lmig/wire.h>

#include "lib/clock.h"
#include "cli/cmd.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"
#include "live/track.h"
#include "live/watch.h"

#define MAX_COUNT	3600

struct interval {
	uint64_t dirty;
	double secs, harvest_s;
};

void usage_dirtyrate(void)
{
	printf("Usage: lmig dirtyrate --mem PATH [--tracker NAME] [--interval MS] [--count N]\n"
	       "                      [--json]\n"
	       "       lmig dirtyrate --pid PID --mem anon:START-END [...]\n"
	       "       lmig dirtyrate --pid PID --mem PATH --tracker uffd|soft-dirty [...]\n"
	       "\n"
	       "Measure how fast a memory image is being written: every interval, the\n"
	       "pages written since the previous one are harvested with a dirty tracker\n"
	       "and counted (a page written twice counts once, as in a migration round).\n"
	       "\n"
	       "  -m, --mem PATH          a shared memory object: a tmpfs/shm file, a\n"
	       "                          regular file, or /proc/PID/fd/N of a memfd;\n"
	       "                          or anon:START-END, a range of the private memory\n"
	       "                          of --pid (hex, as in /proc/PID/maps)\n"
	       "  -p, --pid PID           the process whose anon: memory is measured; with\n"
	       "                          a shared object, the process that writes it (the\n"
	       "                          uffd and soft-dirty trackers read its page tables)\n"
	       "  -t, --tracker NAME      %s (default auto)\n"
	       "      --object-writes any|mapped\n"
	       "                          as for lmig send: mapped vouches that the object\n"
	       "                          changes only through mappings and holes, so the\n"
	       "                          kmod, soft-dirty and uffd trackers need not compare\n"
	       "                          every page after its timestamps changed\n"
	       "  -i, --interval MS       length of one interval in ms (default 1000)\n"
	       "  -n, --count N           intervals to measure (default 3)\n"
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 measured, 1 failed, 2 bad usage.\n", tracker_names());
}

static int measure(const char *mem, struct track_target tg, const char *tname,
		   unsigned int interval_ms, unsigned int count, struct interval *iv,
		   struct watch *w)
{
	uint64_t *bitmap = NULL;
	int ret = -1;

	if (watch_open(w, mem, tg, tname))
		goto out;
	bitmap = calloc(bitmap_words(w->npages), sizeof(*bitmap));
	if (!bitmap) {
		lmig_err("out of memory for %llu pages", (unsigned long long)w->npages);
		goto out;
	}
	for (unsigned int i = 0; i < count; i++) {
		/*
		 * The first interval from when the tracker armed: the writes
		 * it reports are those since then, and a tracker may take long
		 * to open after arming (the mapping watch, the object's map).
		 */
		double t0 = i ? now_s() : w->t_open;
		struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		if (watch_harvest(w, bitmap, &iv[i].dirty, &iv[i].harvest_s))
			goto out;
		iv[i].secs = now_s() - t0;
	}
	ret = 0;
out:
	free(bitmap);
	return ret;
}

static void report(const struct tracker *t, const char *name, const struct interval *iv,
		   unsigned int count, uint64_t size, const char *why, bool ok, bool json)
{
	double dirty = 0, secs = 0, hs = 0;

	for (unsigned int i = 0; ok && i < count; i++) {
		dirty += iv[i].dirty * (double)LMIG_PAGE_SIZE;
		secs += iv[i].secs;
		hs += iv[i].harvest_s;
	}
	if (json) {
		struct json_obj j;
		char key[32];

		json_begin(&j);
		json_str(&j, "role", "dirtyrate");
		json_str(&j, "status", ok ? "completed" : "failed");
		if (!ok)
			json_str(&j, "error", lmig_errmsg());
		json_str(&j, "tracker", name);
		if (why && why[0])
			json_str(&j, "tracker_why", why);
		json_u64(&j, "bytes_total", size);
		json_u64(&j, "intervals", ok ? count : 0);
		json_dbl(&j, "dirty_mbps", secs > 0 ? dirty / secs / 1e6 : 0, 2);
		json_dbl(&j, "harvest_ms", ok && count ? hs / count * 1000 : 0, 2);
		/* lmig's CPU time in a harvest (user + system), over all of them. */
		json_dbl(&j, "harvest_cpu_ms",
			 ok && t->harvests ? t->harvest_cpu_s / t->harvests * 1000 : 0, 2);
		/* Memory a scan reads per second of harvesting. */
		json_dbl(&j, "harvest_gbps", hs > 0 && t->bytes_read ? t->bytes_read / hs / 1e9 : 0, 2);
		for (unsigned int i = 0; ok && i < count; i++) {
			snprintf(key, sizeof(key), "dirty_pages_%u", i);
			json_u64(&j, key, iv[i].dirty);
		}
		json_end(&j, stdout);
		return;
	}
	if (!ok)
		return;
	for (unsigned int i = 0; i < count; i++)
		printf("interval %u: %llu pages dirty in %.3f s (%.2f MB/s), harvest %.1f ms\n", i,
		       (unsigned long long)iv[i].dirty, iv[i].secs,
		       iv[i].dirty * (double)LMIG_PAGE_SIZE / iv[i].secs / 1e6,
		       iv[i].harvest_s * 1000);
	printf("dirty rate %.2f MB/s over %.1f s, tracker %s%s%s%s\n", dirty / secs / 1e6, secs,
	       name, why && why[0] ? " (" : "", why && why[0] ? why : "", why && why[0] ? ")" : "");
}

struct dirtyrate_args {
	const char *mem, *tname;
	struct track_target tg;
	unsigned long interval, count, pid;
};

static int dirtyrate_opt(int opt, const char *arg, void *ctx)
{
	struct dirtyrate_args *a = ctx;

	switch (opt) {
	case 'm': a->mem = arg; return EXIT_OK;
	case 't': a->tname = arg; return EXIT_OK;
	case 'W':
		if (strcmp(arg, "any") && strcmp(arg, "mapped"))
			return usage_error("dirtyrate", "--object-writes: '%s' is not any or mapped",
					   arg);
		a->tg.mapped_writes_only = !strcmp(arg, "mapped");
		return EXIT_OK;
	case 'p': return opts_uint("dirtyrate", "--pid", arg, 1, 1UL << 22, &a->pid);
	case 'i': return opts_uint("dirtyrate", "--interval", arg, 10, 3600000, &a->interval);
	case 'n': return opts_uint("dirtyrate", "--count", arg, 1, MAX_COUNT, &a->count);
	}
	return OPT_NOT_OWN;
}

int cmd_dirtyrate(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "tracker", required_argument, NULL, 't' },
		{ "object-writes", required_argument, NULL, 'W' },
		{ "pid", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		OPTE_JSON,
		OPTE_HELP,
		OPTE_END };
	struct dirtyrate_args a = { .tname = "auto", .tg = { .fd = -1 }, .interval = 1000,
				    .count = 3 };
	const struct cli_parse p = { "dirtyrate", ":m:t:p:i:n:jh", lo, usage_dirtyrate,
				     dirtyrate_opt, &a };
	struct interval *iv;
	struct watch w = { .tg = { .fd = -1 } };
	struct cli_opts c;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (!a.mem)
		return usage_error("dirtyrate", "missing --mem PATH");
	/* With a shared object, --pid names its writer (for uffd and soft-dirty). */
	if (!strncmp(a.mem, "anon:", 5) && !a.pid)
		return usage_error("dirtyrate", "--mem anon: needs --pid");
	a.tg.pid = (pid_t)a.pid;
	if (!strncmp(a.mem, "anon:", 5) && parse_anon_range("--mem", a.mem, &a.tg.start, &a.tg.size))
		return usage_error("dirtyrate", "%s", lmig_errmsg());
	if (!tracker_known(a.tname))
		return usage_error("dirtyrate", "--tracker: '%s' is not one of %s", a.tname,
				   tracker_names());
	iv = calloc(a.count, sizeof(*iv));
	if (!iv)
		return usage_error("dirtyrate", "out of memory");
	ret = measure(a.mem, a.tg, a.tname, a.interval, a.count, iv, &w);
	report(&w.trk, w.tracker ? w.tracker : a.tname, iv, a.count, w.size, w.why,
	       ret == 0, g->json);
	watch_close(&w);
	free(iv);
	if (!ret)
		return EXIT_OK;
	fprintf(stderr, "lmig dirtyrate: %s\n", lmig_errmsg());
	return EXIT_FAIL;
}

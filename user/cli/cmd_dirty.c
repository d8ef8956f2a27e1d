// SPDX-License-Identifier: GPL-2.0-only
/* lmig dirty: a shared memory object (or anonymous memory) written at a steady rate. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "workload/dirty.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"

void usage_dirty(void)
{
	printf("Usage: lmig dirty --mem PATH --size SIZE --rate RATE [options]\n"
	       "\n"
	       "Create (or open) a shared memory object and dirty its pages at a steady\n"
	       "rate until interrupted: the workload for demos, tests and benchmarks of\n"
	       "live migration.  Each write rewrites one randomly chosen page.\n"
	       "\n"
	       "  -m, --mem PATH          a file (tmpfs: /dev/shm/NAME), or memfd:NAME for a\n"
	       "                          memfd, readable as /proc/PID/fd/N while this runs;\n"
	       "                          or anon: private anonymous memory of this process,\n"
	       "                          reported as anon:START-END (for --pid PID)\n"
	       "  -s, --size SIZE         object size: 1G, 512Mi, ... (a multiple of 4 KiB);\n"
	       "                          a shorter existing file is extended\n"
	       "  -r, --rate RATE         bytes dirtied per second: 20M, 1Gbit, ...; 0 fills\n"
	       "                          the object and then only holds it\n"
	       "      --pace MODE         wall (default): RATE per second of wall time;\n"
	       "                          cpu: RATE per second of its own CPU time, spinning\n"
	       "                          between writes like a busy vCPU (its wall-clock\n"
	       "                          rate falls when its CPU share is cut)\n"
	       "      --pattern P         counter (default): page index and write count;\n"
	       "                          random: incompressible; text: lz4 halves it;\n"
	       "                          churn: each write takes its page one step through\n"
	       "                          zeroed, data A, data B, A again, zeroed ... (the\n"
	       "                          fill writes A; page N starts at step N mod 4);\n"
	       "                          holes: the same with a hole punched in the file\n"
	       "                          (fallocate) and A (not with anon)\n"
	       "                          madvise: zeroed by madvise() on the mapping\n"
	       "                          (MADV_REMOVE in a file, MADV_DONTNEED in anon) and A\n"
	       "                          pwrite: churn with the zeroes and B written by\n"
	       "                          pwrite() to the file, not the mapping (not with anon)\n"
	       "      --fill, --no-fill   write every page once before the steady writes\n"
	       "                          (default: only when the object was created)\n"
	       "      --duration S        stop after S seconds (default: at SIGINT/SIGTERM)\n"
	       "      --seed N            seed of the page choice and random content\n"
	       "      --ready-fd FD       write the object's path and a newline to FD once\n"
	       "                          it is filled (the name `lmig send --mem` takes)\n"
	       "      --uffd              register the memory with a userfaultfd of this\n"
	       "                          process for async write-protection (Linux 6.7+),\n"
	       "                          so `--tracker uffd --pid PID` can track it\n"
	       "      --compute-threads N also run N threads that never write the object\n"
	       "                          but spin on a CPU-bound loop, counting work units\n"
	       "                          (report: compute_units_per_s, per thread too);\n"
	       "                          the writer then paces by its own thread's CPU time\n"
	       "      --sample-fd FD      every --sample-ms, write a line \"SECONDS PAGES\n"
	       "                          UNITS...\" to FD: monotonic time, pages written and\n"
	       "                          each compute thread's work units so far\n"
	       "      --sample-ms MS      sampling interval (default 200)\n"
	       "      --disk-write FILE   also write FILE (a regular file on a disk, created\n"
	       "                          if missing) from a thread of its own, 1 MiB at a\n"
	       "                          time with O_DIRECT over its first 64 MiB: a guest\n"
	       "                          that also does disk I/O (report: disk_rate_mbps)\n"
	       "      --disk-rate RATE    bytes per second for --disk-write (default: as\n"
	       "                          fast as the disk takes them)\n"
	       OPTH_PROGRESS
	       OPTH_JSON_STDOUT
	       OPTH_HELP
	       "\n"
	       "Exit status: 0 stopped as asked, 1 failed, 2 bad usage.\n");
}

/* The workload's progress line on stderr. */
static void progress_line(const struct dirty_stats *st, double elapsed, bool final)
{
	fprintf(stderr, "\rdirty %s: %llu pages written in %.1f s, %.1f MB/s%s", st->path,
		(unsigned long long)st->pages_written, elapsed,
		elapsed > 0 ? st->pages_written * (double)LMIG_PAGE_SIZE / elapsed / 1e6 : 0,
		final ? "\n" : "   ");
	fflush(stderr);
}

static void report(const struct dirty_opts *o, const struct dirty_stats *st, bool ok, bool json)
{
	double mbps = st->write_s > 0 ? st->pages_written * (double)LMIG_PAGE_SIZE / st->write_s / 1e6 : 0;
	double units_per_s = 0;

	for (unsigned int i = 0; i < st->ncompute; i++)
		if (st->compute[i].secs > 0)
			units_per_s += st->compute[i].units / st->compute[i].secs;

	if (json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "role", "dirty");
		json_str(&j, "status", ok ? "completed" : "failed");
		if (!ok)
			json_str(&j, "error", lmig_errmsg());
		json_str(&j, "path", st->path[0] ? st->path : NULL);
		json_u64(&j, "size", o->size);
		json_bool(&j, "uffd", o->uffd);
		json_str(&j, "pattern", dirty_pattern_name(o->pattern));
		json_str(&j, "pace", dirty_pace_name(o->pace));
		json_dbl(&j, "rate_target_mbps", o->rate / 1e6, 1);
		json_u64(&j, "pages_filled", st->pages_filled);
		json_u64(&j, "fill_ms", (uint64_t)(st->fill_s * 1000 + 0.5));
		json_u64(&j, "pages_written", st->pages_written);
		json_u64(&j, "write_ms", (uint64_t)(st->write_s * 1000 + 0.5));
		json_dbl(&j, "rate_mbps", mbps, 1);
		json_u64(&j, "cpu_ms", (uint64_t)(st->cpu_s * 1000 + 0.5));
		if (o->disk_path) {
			json_str(&j, "disk_path", o->disk_path);
			json_i64(&j, "disk_tid", st->disk_tid);
			json_u64(&j, "disk_bytes", st->disk_bytes);
			json_dbl(&j, "disk_rate_mbps",
				 st->write_s > 0 ? st->disk_bytes / st->write_s / 1e6 : 0, 1);
		}
		if (o->compute_threads) {
			json_u64(&j, "compute_threads", st->ncompute);
			json_dbl(&j, "compute_units_per_s", units_per_s, 1);
			json_array_begin(&j, "compute");
			for (unsigned int i = 0; i < st->ncompute; i++) {
				const struct dirty_compute *c = &st->compute[i];

				json_elem_begin(&j);
				json_i64(&j, "tid", c->tid);
				json_u64(&j, "units", c->units);
				json_dbl(&j, "units_per_s", c->secs > 0 ? c->units / c->secs : 0, 1);
				json_u64(&j, "cpu_ms", (uint64_t)(c->cpu_s * 1000 + 0.5));
				json_elem_end(&j);
			}
			json_array_end(&j);
		}
		json_end(&j, stdout);
		return;
	}
	if (ok)
		printf("dirty: %s, %llu pages rewritten in %.1f s (%.1f MB/s, %s pace, %s pattern)\n",
		       st->path, (unsigned long long)st->pages_written, st->write_s, mbps,
		       dirty_pace_name(o->pace), dirty_pattern_name(o->pattern));
	if (ok && st->ncompute)
		printf("dirty: %u compute threads, %.1f work units/s together\n", st->ncompute,
		       units_per_s);
}

enum {
	DO_PACE = OPT_OWN, DO_PATTERN, DO_FILL, DO_NO_FILL, DO_DURATION, DO_SEED, DO_READY_FD,
	DO_UFFD, DO_COMPUTE_THREADS, DO_SAMPLE_FD, DO_SAMPLE_MS, DO_DISK_WRITE, DO_DISK_RATE,
};

struct dirty_args {
	struct dirty_opts o;
	bool have_rate;
};

/* The options with a numeric value. */
static int dirty_num_opt(int opt, const char *arg, struct dirty_opts *o)
{
	unsigned long v;

	switch (opt) {
	case DO_DURATION:
		if (opts_uint("dirty", "--duration", arg, 1, 864000, &v))
			return EXIT_USAGE;
		o->duration = v;
		return EXIT_OK;
	case DO_SEED:
		if (opts_uint("dirty", "--seed", arg, 1, ~0UL, &v))
			return EXIT_USAGE;
		o->seed = v;
		return EXIT_OK;
	case DO_READY_FD:
		if (opts_uint("dirty", "--ready-fd", arg, 0, 1 << 20, &v))
			return EXIT_USAGE;
		o->ready_fd = (int)v;
		return EXIT_OK;
	case DO_COMPUTE_THREADS:
		if (opts_uint("dirty", "--compute-threads", arg, 0, DIRTY_MAX_COMPUTE, &v))
			return EXIT_USAGE;
		o->compute_threads = (unsigned int)v;
		return EXIT_OK;
	case DO_SAMPLE_FD:
		if (opts_uint("dirty", "--sample-fd", arg, 0, 1 << 20, &v))
			return EXIT_USAGE;
		o->sample_fd = (int)v;
		return EXIT_OK;
	case DO_SAMPLE_MS:
		if (opts_uint("dirty", "--sample-ms", arg, 10, 3600000, &v))
			return EXIT_USAGE;
		o->sample_ms = (unsigned int)v;
		return EXIT_OK;
	case DO_DISK_RATE:
		if (parse_bytes("--disk-rate", arg, &o->disk_rate))
			return usage_error("dirty", "%s", lmig_errmsg());
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

static int dirty_opt(int opt, const char *arg, void *ctx)
{
	static const char *const paces[] = { "wall", "cpu", NULL };
	static const enum dirty_pace pace_of[] = { PACE_WALL, PACE_CPU };
	static const char *const patterns[] = { "counter", "random", "text", "churn", "holes",
						"madvise", "pwrite", NULL };
	static const enum dirty_pattern pattern_of[] = { PAT_COUNTER, PAT_RANDOM, PAT_TEXT,
							 PAT_CHURN, PAT_HOLES, PAT_MADVISE,
							 PAT_PWRITE };
	struct dirty_args *a = ctx;
	struct dirty_opts *o = &a->o;
	int i;

	switch (opt) {
	case 'm': o->mem = arg; return EXIT_OK;
	case 's':
		if (parse_bytes("--size", arg, &o->size))
			return usage_error("dirty", "%s", lmig_errmsg());
		if (!o->size || o->size % LMIG_PAGE_SIZE)
			return usage_error("dirty", "--size: %s is not a positive multiple of 4 KiB",
					   arg);
		return EXIT_OK;
	case 'r':
		if (parse_bytes("--rate", arg, &o->rate))
			return usage_error("dirty", "%s", lmig_errmsg());
		a->have_rate = true;
		return EXIT_OK;
	case DO_PACE:
		i = opts_word(arg, paces);
		if (i < 0)
			return usage_error("dirty", "--pace: '%s' is not wall or cpu", arg);
		o->pace = pace_of[i];
		return EXIT_OK;
	case DO_PATTERN:
		i = opts_word(arg, patterns);
		if (i < 0)
			return usage_error("dirty", "--pattern: '%s' is not counter, random, text, churn, holes, madvise or pwrite",
					   arg);
		o->pattern = pattern_of[i];
		return EXIT_OK;
	case DO_FILL: o->fill = 1; return EXIT_OK;
	case DO_NO_FILL: o->fill = 0; return EXIT_OK;
	case DO_UFFD: o->uffd = true; return EXIT_OK;
	case DO_DISK_WRITE: o->disk_path = arg; return EXIT_OK;
	}
	return dirty_num_opt(opt, arg, o);
}

static int dirty_check(const struct dirty_args *a)
{
	const struct dirty_opts *o = &a->o;

	if (!o->mem)
		return usage_error("dirty", "missing --mem PATH");
	if (!strncmp(o->mem, "memfd:", 6) && !o->mem[6])
		return usage_error("dirty", "--mem memfd: needs a name (memfd:NAME)");
	if (o->pattern == PAT_HOLES && !strcmp(o->mem, "anon"))
		return usage_error("dirty", "--pattern holes: anon memory has no file to punch holes in");
	if (o->pattern == PAT_PWRITE && !strcmp(o->mem, "anon"))
		return usage_error("dirty", "--pattern pwrite: anon memory has no file to write to");
	if (!o->size)
		return usage_error("dirty", "missing --size SIZE");
	if (!a->have_rate)
		return usage_error("dirty", "missing --rate RATE");
	if (o->sample_fd >= 0 && fcntl(o->sample_fd, F_GETFD) < 0)
		return usage_error("dirty", "--sample-fd %d is not an open descriptor", o->sample_fd);
	return EXIT_OK;
}

int cmd_dirty(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "pace", required_argument, NULL, DO_PACE },
		{ "pattern", required_argument, NULL, DO_PATTERN },
		{ "fill", no_argument, NULL, DO_FILL },
		{ "no-fill", no_argument, NULL, DO_NO_FILL },
		{ "duration", required_argument, NULL, DO_DURATION },
		{ "seed", required_argument, NULL, DO_SEED },
		{ "ready-fd", required_argument, NULL, DO_READY_FD },
		OPTE_PROGRESS,
		{ "uffd", no_argument, NULL, DO_UFFD },
		{ "compute-threads", required_argument, NULL, DO_COMPUTE_THREADS },
		{ "sample-fd", required_argument, NULL, DO_SAMPLE_FD },
		{ "sample-ms", required_argument, NULL, DO_SAMPLE_MS },
		{ "disk-write", required_argument, NULL, DO_DISK_WRITE },
		{ "disk-rate", required_argument, NULL, DO_DISK_RATE },
		OPTE_JSON,
		OPTE_HELP,
		OPTE_END };
	struct dirty_args a = { .o = { .fill = -1, .ready_fd = -1, .sample_fd = -1,
				       .sample_ms = 200 } };
	const struct cli_parse p = { "dirty", ":m:s:r:jh", lo, usage_dirty, dirty_opt, &a };
	struct dirty_stats st;
	struct cli_opts c;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (dirty_check(&a))
		return EXIT_USAGE;
	if (cmd_progress_default(c.progress, g))
		a.o.progress = progress_line;
	ret = dirty_run(&a.o, &st);
	report(&a.o, &st, ret == 0, g->json);
	if (!ret)
		return EXIT_OK;
	fprintf(stderr, "lmig dirty: %s\n", lmig_errmsg());
	return EXIT_FAIL;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig top: the busiest processes and VMs of the host by the probes'
 * signals, refreshed every interval.  Flags the victims of noisy
 * neighbours (high steal) and memory-starved guests (many guest page
 * faults): the processes to look at before deciding what to migrate.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"
#include "host/probes.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

enum sort_key { SORT_FAULTS, SORT_WFAULTS, SORT_GFAULTS, SORT_EXITS, SORT_STEAL };
static const char *const sort_names[] = { "faults", "wfaults", "gfaults", "exits", "steal", NULL };

void usage_top(void)
{
	printf("Usage: lmig top [--interval MS] [--count N] [--limit N] [--sort KEY]\n"
	       "                [--steal-pct P] [--gfaults N] [--json]\n"
	       "\n"
	       "The busiest processes of this host by page faults, write faults, KVM\n"
	       "guest page faults and exits, and steal (run-queue delay), from lmig's\n"
	       "eBPF probes.  A full-screen table on a terminal, plain tables otherwise.\n"
	       "Flags: VICTIM when steal is at least --steal-pct (a noisy neighbour takes\n"
	       "its CPU), MEMSTARVED when guest page faults per second are at least\n"
	       "--gfaults (a guest short of memory).\n"
	       "\n"
	       "  -i, --interval MS    refresh interval in ms (default 2000)\n"
	       "  -n, --count N        stop after N intervals (default: until interrupted)\n"
	       "  -l, --limit N        rows per table (default 20)\n"
	       "  -s, --sort KEY       faults, wfaults, gfaults, exits or steal (default faults)\n"
	       "      --steal-pct P    VICTIM threshold in percent (default 10)\n"
	       "      --gfaults N      MEMSTARVED threshold, guest faults per second (default 1000)\n"
	       "  -j, --json           one JSON object per interval, each on its own line\n"
	       "  -h, --help           this help\n"
	       "\n"
	       "Needs root and a kernel with BPF and BTF.\n"
	       "Exit status: 0 done, 1 failed, 2 bad usage.\n");
}

static enum sort_key sort_by;
static double secs_g;

static double key_of(const struct probe_proc *p)
{
	switch (sort_by) {
	case SORT_WFAULTS: return p->c.write_faults;
	case SORT_GFAULTS: return p->c.guest_faults;
	case SORT_EXITS: return p->c.guest_exits;
	case SORT_STEAL: return p->steal_pct;
	default: return p->c.faults;
	}
}

static int cmp_proc(const void *a, const void *b)
{
	double x = key_of(a), y = key_of(b);

	if (x != y)
		return x > y ? -1 : 1;
	/* Ties (often zero): the one that ran most first. */
	return ((const struct probe_proc *)a)->c.run_ns > ((const struct probe_proc *)b)->c.run_ns ? -1 : 1;
}

struct thresholds {
	double steal_pct, gfaults;
};

/* A steal share means little for a process that hardly wanted a CPU. */
static bool victim(const struct probe_proc *p, const struct thresholds *th, double secs)
{
	return p->steal_pct >= th->steal_pct &&
	       (p->c.rq_delay_ns + p->c.run_ns) >= 0.05 * secs * 1e9;
}

static bool starved(const struct probe_proc *p, const struct thresholds *th, double secs)
{
	return secs > 0 && p->c.guest_faults / secs >= th->gfaults;
}

struct top_args {
	unsigned long interval, count, limit;
	struct thresholds th;
};

static int top_opt(int opt, const char *arg, void *ctx)
{
	struct top_args *a = ctx;
	unsigned long v;
	int k;

	switch (opt) {
	case 'i': return opts_uint("top", "--interval", arg, 100, 3600000, &a->interval);
	case 'n': return opts_uint("top", "--count", arg, 1, 1UL << 31, &a->count);
	case 'l': return opts_uint("top", "--limit", arg, 1, 100000, &a->limit);
	case 's':
		k = opts_word(arg, sort_names);
		if (k < 0)
			return usage_error("top", "--sort: '%s' is not one of faults, wfaults, gfaults, exits, steal",
					   arg);
		sort_by = k;
		return EXIT_OK;
	case 'S':
		if (opts_uint("top", "--steal-pct", arg, 0, 100, &v))
			return EXIT_USAGE;
		a->th.steal_pct = v;
		return EXIT_OK;
	case 'G':
		if (opts_uint("top", "--gfaults", arg, 0, 1UL << 40, &v))
			return EXIT_USAGE;
		a->th.gfaults = v;
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

static void print_json(const struct probe_proc *ps, unsigned int n, unsigned long seq,
		       double secs, const struct thresholds *th)
{
	struct json_obj j;

	json_begin(&j);
	json_str(&j, "role", "top");
	json_u64(&j, "seq", seq);
	json_u64(&j, "interval_ms", (uint64_t)(secs * 1000 + 0.5));
	json_array_begin(&j, "procs");
	for (unsigned int i = 0; i < n; i++) {
		json_elem_begin(&j);
		json_u64(&j, "pid", ps[i].pid);
		json_str(&j, "comm", ps[i].comm);
		json_dbl(&j, "faults_per_s", ps[i].c.faults / secs, 1);
		json_dbl(&j, "write_faults_per_s", ps[i].c.write_faults / secs, 1);
		json_dbl(&j, "guest_faults_per_s", ps[i].c.guest_faults / secs, 1);
		json_dbl(&j, "guest_exits_per_s", ps[i].c.guest_exits / secs, 1);
		json_dbl(&j, "steal_pct", ps[i].steal_pct, 2);
		json_dbl(&j, "cpu_pct", ps[i].c.run_ns / (secs * 1e7), 1);
		json_bool(&j, "victim", victim(&ps[i], th, secs));
		json_bool(&j, "memstarved", starved(&ps[i], th, secs));
		json_elem_end(&j);
	}
	json_array_end(&j);
	json_end(&j, stdout);
}

static void print_text(const struct probe_proc *ps, unsigned int n, unsigned long seq,
		       double secs, const struct thresholds *th, bool tty)
{
	if (tty)
		printf("\033[H\033[J");
	else if (seq)
		printf("\n");
	printf("lmig top: every %.1f s, sorted by %s; VICTIM: steal >= %.0f%%, "
	       "MEMSTARVED: guest faults >= %.0f/s\n", secs, sort_names[sort_by],
	       th->steal_pct, th->gfaults);
	printf("%8s %-16s %10s %10s %10s %10s %7s %6s  %s\n", "pid", "comm", "faults/s",
	       "wfaults/s", "gfaults/s", "gexits/s", "steal%", "cpu%", "flags");
	for (unsigned int i = 0; i < n; i++) {
		const struct probe_proc *p = &ps[i];

		printf("%8d %-16s %10.0f %10.0f %10.0f %10.0f %7.1f %6.1f  %s%s\n", (int)p->pid,
		       p->comm[0] ? p->comm : "?", p->c.faults / secs,
		       p->c.write_faults / secs, p->c.guest_faults / secs,
		       p->c.guest_exits / secs, p->steal_pct, p->c.run_ns / (secs * 1e7),
		       victim(p, th, secs) ? "VICTIM " : "",
		       starved(p, th, secs) ? "MEMSTARVED" : "");
	}
	fflush(stdout);
}

static int open_failed(const struct probes *pr, bool json)
{
	if (json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "role", "top");
		json_str(&j, "status", "failed");
		json_str(&j, "error", pr->why);
		json_end(&j, stdout);
	}
	fprintf(stderr, "lmig top: %s\n", pr->why);
	return EXIT_FAIL;
}

int cmd_top(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "sort", required_argument, NULL, 's' },
		{ "steal-pct", required_argument, NULL, 'S' },
		{ "gfaults", required_argument, NULL, 'G' },
		OPTE_JSON,
		OPTE_HELP,
		OPTE_END };
	struct top_args a = { .interval = 2000, .limit = 20, .th = { 10, 1000 } };
	const struct cli_parse p = { "top", ":i:n:l:s:jh", lo, usage_top, top_opt, &a };
	struct sigaction sa = { .sa_handler = on_signal };
	bool tty = isatty(STDOUT_FILENO);
	struct cli_opts c;
	struct probes pr;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (probes_open(&pr, 0, PROBES_ALL | PROBES_PIN))
		return open_failed(&pr, g->json);
	if (pr.note[0] && !g->json)
		fprintf(stderr, "lmig top: note: %s\n", pr.note);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (unsigned long seq = 0; !stop && (!a.count || seq < a.count); seq++) {
		struct timespec ts = { a.interval / 1000, (a.interval % 1000) * 1000000L };
		struct probe_proc *ps;
		unsigned int n;
		double secs;

		while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
			;
		if (stop && seq)
			break;
		if (probes_sample_all(&pr, &ps, &n, &secs)) {
			fprintf(stderr, "lmig top: %s\n", pr.why);
			probes_close(&pr);
			return EXIT_FAIL;
		}
		secs_g = secs;
		qsort(ps, n, sizeof(*ps), cmp_proc);
		if (n > a.limit)
			n = a.limit;
		if (g->json)
			print_json(ps, n, seq, secs, &a.th);
		else
			print_text(ps, n, seq, secs, &a.th, tty);
	}
	probes_close(&pr);
	return EXIT_OK;
}

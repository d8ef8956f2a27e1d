// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig top: the busiest processes and VMs of the host by the probes'
 * signals, refreshed every interval.  Flags the victims of noisy
 * neighbours (high steal) and memory-starved guests (many guest page
 * faults): the processes to look at before deciding what to migrate.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
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
static const char *const sort_names[] = { "faults", "wfaults", "gfaults", "exits", "steal" };

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

int cmd_top(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "sort", required_argument, NULL, 's' },
		{ "steal-pct", required_argument, NULL, 'S' },
		{ "gfaults", required_argument, NULL, 'G' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	unsigned long interval = 2000, count = 0, limit = 20, v;
	struct thresholds th = { 10, 1000 };
	struct sigaction sa = { .sa_handler = on_signal };
	bool tty = isatty(STDOUT_FILENO);
	struct probes pr;
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":i:n:l:s:jh", lo, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (parse_uint("--interval", optarg, 100, 3600000, &interval))
				return usage_error("top", "%s", lmig_errmsg());
			break;
		case 'n':
			if (parse_uint("--count", optarg, 1, 1UL << 31, &count))
				return usage_error("top", "%s", lmig_errmsg());
			break;
		case 'l':
			if (parse_uint("--limit", optarg, 1, 100000, &limit))
				return usage_error("top", "%s", lmig_errmsg());
			break;
		case 's': {
			unsigned int k;

			for (k = 0; k < 5 && strcmp(optarg, sort_names[k]); k++)
				;
			if (k == 5)
				return usage_error("top", "--sort: '%s' is not one of faults, wfaults, gfaults, exits, steal",
						   optarg);
			sort_by = k;
			break;
		}
		case 'S':
			if (parse_uint("--steal-pct", optarg, 0, 100, &v))
				return usage_error("top", "%s", lmig_errmsg());
			th.steal_pct = v;
			break;
		case 'G':
			if (parse_uint("--gfaults", optarg, 0, 1UL << 40, &v))
				return usage_error("top", "%s", lmig_errmsg());
			th.gfaults = v;
			break;
		case 'j': g->json = true; break;
		case 'h': usage_top(); return EXIT_OK;
		case ':': return usage_error("top", "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("top", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("top", "unexpected argument '%s'", argv[optind]);
	if (probes_open(&pr, 0, PROBES_ALL | PROBES_PIN)) {
		if (g->json) {
			struct json_obj j;

			json_begin(&j);
			json_str(&j, "role", "top");
			json_str(&j, "status", "failed");
			json_str(&j, "error", pr.why);
			json_end(&j, stdout);
		}
		fprintf(stderr, "lmig top: %s\n", pr.why);
		return EXIT_FAIL;
	}
	if (pr.note[0] && !g->json)
		fprintf(stderr, "lmig top: note: %s\n", pr.note);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (unsigned long seq = 0; !stop && (!count || seq < count); seq++) {
		struct timespec ts = { interval / 1000, (interval % 1000) * 1000000L };
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
		if (n > limit)
			n = limit;
		if (g->json) {
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
				json_bool(&j, "victim", victim(&ps[i], &th, secs));
				json_bool(&j, "memstarved", starved(&ps[i], &th, secs));
				json_elem_end(&j);
			}
			json_array_end(&j);
			json_end(&j, stdout);
			continue;
		}
		if (tty)
			printf("\033[H\033[J");
		else if (seq)
			printf("\n");
		printf("lmig top: every %.1f s, sorted by %s; VICTIM: steal >= %.0f%%, "
		       "MEMSTARVED: guest faults >= %.0f/s\n", secs, sort_names[sort_by],
		       th.steal_pct, th.gfaults);
		printf("%8s %-16s %10s %10s %10s %10s %7s %6s  %s\n", "pid", "comm", "faults/s",
		       "wfaults/s", "gfaults/s", "gexits/s", "steal%", "cpu%", "flags");
		for (unsigned int i = 0; i < n; i++) {
			const struct probe_proc *p = &ps[i];

			printf("%8d %-16s %10.0f %10.0f %10.0f %10.0f %7.1f %6.1f  %s%s\n", (int)p->pid,
			       p->comm[0] ? p->comm : "?", p->c.faults / secs,
			       p->c.write_faults / secs, p->c.guest_faults / secs,
			       p->c.guest_exits / secs, p->steal_pct, p->c.run_ns / (secs * 1e7),
			       victim(p, &th, secs) ? "VICTIM " : "",
			       starved(p, &th, secs) ? "MEMSTARVED" : "");
		}
		fflush(stdout);
	}
	probes_close(&pr);
	return EXIT_OK;
}

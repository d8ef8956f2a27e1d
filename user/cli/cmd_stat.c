// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig stat: what the kernel sees of one process, per interval, through
 * the eBPF probes: page faults and write faults (a write fault is the
 * first write to a page since it was mapped or write-protected: a lower
 * bound of the dirty rate), KVM guest page faults and exits when the
 * process is a VMM, and the run-queue delay of each thread (for a vCPU
 * thread, the steal time its guest sees).
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
#include "host/tracemark.h"

#define MAX_REASONS	8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

void usage_stat(void)
{
	printf("Usage: lmig stat --pid PID [--interval MS] [--count N] [--threads] [--json]\n"
	       "                 [--pin] [--trace] [--ready-fd FD]\n"
	       "       lmig stat --unpin\n"
	       "\n"
	       "Every interval, print what the kernel saw of process PID through lmig's\n"
	       "eBPF probes: page faults and write faults per second, KVM guest page\n"
	       "faults and exits per second (when PID runs a guest), and the steal: the\n"
	       "share of the time its threads were runnable but waited for a CPU.\n"
	       "\n"
	       "  -p, --pid PID        the process to watch (all its threads)\n"
	       "  -i, --interval MS    length of one interval in ms (default 1000)\n"
	       "  -n, --count N        stop after N intervals (default: until interrupted\n"
	       "                       or the process exits)\n"
	       "  -t, --threads        also one line per thread (JSON always has them)\n"
	       "  -j, --json           one JSON object per interval, each on its own line\n"
	       "      --pin            leave the maps and probes pinned under %s\n"
	       "                       after exit, still counting ('--unpin' removes them);\n"
	       "                       while lmig runs they are pinned anyway\n"
	       "      --unpin          remove what --pin left, and exit\n"
	       "      --trace          mount tracefs if needed and write each interval's\n"
	       "                       numbers to trace_marker as well\n"
	       "      --ready-fd FD    write a line to FD once the probes are attached\n"
	       "  -h, --help           this help\n"
	       "\n"
	       "Maps: bpftool map dump pinned %s/lmig_procs (and lmig_threads,\n"
	       "lmig_kvm_exits).  Needs root and a kernel with BPF and BTF.\n"
	       "\n"
	       "Exit status: 0 done (or the process exited), 1 failed, 2 bad usage.\n",
	       PROBES_PIN_DIR, PROBES_PIN_DIR);
}

static double per_s(uint64_t n, double secs)
{
	return secs > 0 ? n / secs : 0;
}

static void print_json(const struct probes *pr, const struct probe_sample *s,
		       const struct probe_reason *rs, int nrs, unsigned int seq)
{
	double iv = s->interval_s;
	struct json_obj j;

	json_begin(&j);
	json_str(&j, "role", "stat");
	json_u64(&j, "pid", s->pid);
	json_u64(&j, "seq", seq);
	json_u64(&j, "interval_ms", (uint64_t)(iv * 1000 + 0.5));
	json_bool(&j, "alive", s->alive);
	json_dbl(&j, "faults_per_s", per_s(s->c.faults, iv), 1);
	json_dbl(&j, "write_faults_per_s", per_s(s->c.write_faults, iv), 1);
	json_dbl(&j, "guest_faults_per_s", per_s(s->c.guest_faults, iv), 1);
	json_dbl(&j, "guest_exits_per_s", per_s(s->c.guest_exits, iv), 1);
	json_dbl(&j, "steal_pct", s->steal_pct, 2);
	json_u64(&j, "faults", s->c.faults);
	json_u64(&j, "write_faults", s->c.write_faults);
	json_u64(&j, "guest_faults", s->c.guest_faults);
	json_u64(&j, "guest_exits", s->c.guest_exits);
	json_dbl(&j, "rq_delay_ms", s->c.rq_delay_ns / 1e6, 3);
	json_dbl(&j, "run_ms", s->c.run_ns / 1e6, 3);
	json_bool(&j, "kvm", pr->kvm);
	if (pr->exit_reasons) {
		json_array_begin(&j, "exit_reasons");
		for (int i = 0; i < nrs; i++) {
			json_elem_begin(&j);
			json_u64(&j, "reason", rs[i].reason);
			json_u64(&j, "count", rs[i].count);
			json_dbl(&j, "per_s", per_s(rs[i].count, iv), 1);
			json_elem_end(&j);
		}
		json_array_end(&j);
	}
	json_array_begin(&j, "threads");
	for (unsigned int i = 0; i < s->nthreads; i++) {
		const struct probe_thread *t = &s->threads[i];

		json_elem_begin(&j);
		json_u64(&j, "tid", t->tid);
		json_str(&j, "comm", t->comm);
		json_dbl(&j, "faults_per_s", per_s(t->c.faults, iv), 1);
		json_dbl(&j, "write_faults_per_s", per_s(t->c.write_faults, iv), 1);
		json_dbl(&j, "guest_exits_per_s", per_s(t->c.guest_exits, iv), 1);
		json_dbl(&j, "steal_pct", t->steal_pct, 2);
		json_dbl(&j, "rq_delay_ms", t->c.rq_delay_ns / 1e6, 3);
		json_dbl(&j, "run_ms", t->c.run_ns / 1e6, 3);
		json_elem_end(&j);
	}
	json_array_end(&j);
	if (pr->note[0])
		json_str(&j, "note", pr->note);
	json_end(&j, stdout);
}

static void print_text(const struct probes *pr, const struct probe_sample *s,
		       const struct probe_reason *rs, int nrs, unsigned int seq, bool threads)
{
	double iv = s->interval_s;

	if (seq == 0 || threads)
		printf("%9s %10s %10s %10s %10s %7s %8s\n", "pid", "faults/s", "wfaults/s",
		       "gfaults/s", "gexits/s", "steal%", "threads");
	printf("%9d %10.0f %10.0f %10.0f %10.0f %7.1f %8u\n", (int)s->pid,
	       per_s(s->c.faults, iv), per_s(s->c.write_faults, iv),
	       per_s(s->c.guest_faults, iv), per_s(s->c.guest_exits, iv), s->steal_pct,
	       s->nthreads);
	if (nrs > 0) {
		printf("%9s exits/s by reason:", "");
		for (int i = 0; i < nrs; i++)
			printf(" %u:%.0f", rs[i].reason, per_s(rs[i].count, iv));
		printf("\n");
	}
	for (unsigned int i = 0; threads && i < s->nthreads; i++) {
		const struct probe_thread *t = &s->threads[i];

		printf("%9d %10.0f %10.0f %10.0f %10.0f %7.1f  %s\n", (int)t->tid,
		       per_s(t->c.faults, iv), per_s(t->c.write_faults, iv),
		       per_s(t->c.guest_faults, iv), per_s(t->c.guest_exits, iv), t->steal_pct,
		       t->comm);
	}
	fflush(stdout);
}

static void fail_json(const char *msg)
{
	struct json_obj j;

	json_begin(&j);
	json_str(&j, "role", "stat");
	json_str(&j, "status", "failed");
	json_str(&j, "error", msg);
	json_end(&j, stdout);
}

/* Sleep until the absolute monotonic time *next, then move it on. */
static void sleep_until(struct timespec *next, unsigned long ms)
{
	next->tv_nsec += (ms % 1000) * 1000000L;
	next->tv_sec += ms / 1000 + next->tv_nsec / 1000000000L;
	next->tv_nsec %= 1000000000L;
	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, next, NULL) == EINTR)
		;
}

struct stat_args {
	unsigned long pid, interval, count, ready_fd;
	bool threads, pin, unpin, trace;
};

static int stat_opt(int opt, const char *arg, void *ctx)
{
	struct stat_args *a = ctx;

	switch (opt) {
	case 'p': return opts_uint("stat", "--pid", arg, 1, 1UL << 22, &a->pid);
	case 'i': return opts_uint("stat", "--interval", arg, 10, 3600000, &a->interval);
	case 'n': return opts_uint("stat", "--count", arg, 1, 1UL << 31, &a->count);
	case 'R': return opts_uint("stat", "--ready-fd", arg, 0, 1 << 20, &a->ready_fd);
	case 't': a->threads = true; return EXIT_OK;
	case 'P': a->pin = true; return EXIT_OK;
	case 'U': a->unpin = true; return EXIT_OK;
	case 'T': a->trace = true; return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

int cmd_stat(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "threads", no_argument, NULL, 't' },
		OPTE_JSON,
		{ "pin", no_argument, NULL, 'P' },
		{ "unpin", no_argument, NULL, 'U' },
		{ "trace", no_argument, NULL, 'T' },
		{ "ready-fd", required_argument, NULL, 'R' },
		OPTE_HELP,
		OPTE_END };
	struct stat_args a = { .interval = 1000, .ready_fd = ~0UL };
	const struct cli_parse p = { "stat", ":p:i:n:tjh", lo, usage_stat, stat_opt, &a };
	struct probe_reason rs[MAX_REASONS];
	struct sigaction sa = { .sa_handler = on_signal };
	struct cli_opts c;
	struct probes pr;
	struct timespec next;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (a.unpin) {
		char why[256];

		if (a.pid || a.pin)
			return usage_error("stat", "--unpin takes no other option");
		if (!probes_unpin(why, sizeof(why)))
			return EXIT_OK;
		fprintf(stderr, "lmig stat: %s\n", why);
		return EXIT_FAIL;
	}
	if (!a.pid)
		return usage_error("stat", "missing --pid PID");

	if (a.trace && !tracemark_mount()) {
		lmig_err("--trace: cannot open trace_marker (is tracefs mounted on /sys/kernel/tracing?)");
		goto fail;
	}
	if (probes_open(&pr, (pid_t)a.pid, PROBES_PIN | (a.pin ? PROBES_KEEP : 0))) {
		lmig_err("%s", pr.why);
		goto fail;
	}
	if (pr.note[0] && !g->json)
		fprintf(stderr, "lmig stat: note: %s\n", pr.note);
	if (a.ready_fd != ~0UL) {
		dprintf((int)a.ready_fd, "%s\n", pr.pinned ? PROBES_PIN_DIR : "-");
		close((int)a.ready_fd);
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (unsigned int seq = 0; !stop && (!a.count || seq < a.count); seq++) {
		struct probe_sample s;
		int nrs;

		sleep_until(&next, a.interval);
		if (probes_sample(&pr, &s)) {
			lmig_err("%s", pr.why);
			probes_close(&pr);
			goto fail;
		}
		nrs = probes_exit_reasons(&pr, rs, MAX_REASONS);
		if (g->json)
			print_json(&pr, &s, rs, nrs, seq);
		else
			print_text(&pr, &s, rs, nrs, seq, a.threads);
		if (a.trace)
			tracemark("stat pid %d faults/s %.0f write_faults/s %.0f guest_exits/s %.0f steal %.1f%%",
				  (int)s.pid, per_s(s.c.faults, s.interval_s),
				  per_s(s.c.write_faults, s.interval_s),
				  per_s(s.c.guest_exits, s.interval_s), s.steal_pct);
		if (!s.alive) {
			if (!g->json)
				printf("process %lu exited\n", a.pid);
			break;
		}
	}
	probes_close(&pr);
	return EXIT_OK;
fail:
	if (g->json)
		fail_json(lmig_errmsg());
	fprintf(stderr, "lmig stat: %s\n", lmig_errmsg());
	return EXIT_FAIL;
}

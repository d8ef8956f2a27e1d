// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "cli/report.h"
#include "chan/tls.h"
#include "live/track.h"
#include "image/image.h"

void usage_send(void)
{
	printf("Usage: lmig send --mem PATH --to HOST:PORT [OPTIONS]\n"
	       "       lmig send --mem PATH|anon:START-END --pid PID [--freeze METHOD]\n"
	       "                 --to HOST:PORT [LIVE OPTIONS] [OPTIONS]\n"
	       "\n"
	       "Migrate the memory image PATH to an 'lmig recv' listening at HOST:PORT.\n"
	       "PATH is a regular file, a tmpfs/shm file, or /proc/PID/fd/N of a memfd.\n"
	       "Exits 0 only after the receiver verified the whole image and committed it.\n"
	       "\n"
	       "With --pid the migration is live: PID keeps writing the memory while it is\n"
	       "sent; rounds resend what it wrote, until the rest fits the downtime budget;\n"
	       "then PID is paused, the rest sent, and the receiver verifies and commits.\n"
	       "After the commit PID stays paused (--then kill ends it); on any failure\n"
	       "before it, PID is resumed - also if lmig itself is killed.\n"
	       "\n"
	       "Options:\n"
	       "  -m, --mem PATH          the memory image to send; with --pid also\n"
	       "                          anon:START-END, a range of PID's private memory\n"
	       "                          (hex, as in /proc/PID/maps)\n"
	       "  -t, --to HOST:PORT      the receiver ([ADDR]:PORT for IPv6)\n"
	       "  -c, --channels N        TCP connections to spread pages over (1..%u;\n"
	       "                          default: online CPUs, at most 8)\n"
	       OPTH_COMPRESS
	       "  -b, --bandwidth RATE    cap the rate on the wire, bytes per second:\n"
	       "                          125M, 1G, 1Gbit, 64Mi (default: no cap)\n"
	       OPTH_ZEROCOPY
	       "      --timeout S         connect/handshake limit and longest stall (default 10);\n"
	       "                          with --pid, when given, also the limit on pre-copy:\n"
	       "                          a migration not converged in S seconds fails\n"
	       "                          (without it pre-copy is bounded by --max-rounds)\n"
	       OPTH_PROGRESS
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       OPTH_JSON_STDOUT
	       OPTH_HELP
	       "\n"
	       "Live options (with --pid):\n"
	       "  -p, --pid PID           the process that writes the memory\n"
	       "  -f, --freeze METHOD     how to pause it for the switch-over: signal\n"
	       "                          (SIGSTOP/SIGCONT, the default), cgroup:DIR (cgroup\n"
	       "                          v2 cgroup.freeze or v1 freezer), none (the caller\n"
	       "                          keeps it quiet)\n"
	       "      --tracker NAME      dirty tracker: %s (default auto:\n"
	       "                          the best that works here; it says which and why)\n"
	       "      --object-writes any|mapped\n"
	       "                          who changes a shared object: any (default): also\n"
	       "                          write(2), fallocate, other system calls, which the\n"
	       "                          kmod, soft-dirty and uffd trackers find only by\n"
	       "                          comparing every page at each harvest after the\n"
	       "                          object's timestamps changed; mapped: only writes\n"
	       "                          through mappings and holes punched (as in guest RAM),\n"
	       "                          which they see without that comparison\n"
	       "  -d, --downtime-ms N     switch over once the predicted downtime is at most\n"
	       "                          N ms (default 300)\n"
	       "      --max-rounds N      give up after N rounds without converging\n"
	       "                          (default 30)\n"
	       "      --then keep|kill    after the verified commit leave PID paused (default)\n"
	       "                          or kill it\n"
	       "      --throttle auto|off when PID dirties memory faster than the link\n"
	       "                          carries it, limit its CPU (cgroup v2 cpu.max or v1\n"
	       "                          CFS quota; only the threads that write where that\n"
	       "                          can be told) and, if it also writes to disk, its\n"
	       "                          disk writes (v2 io.max, v1 blkio) until it\n"
	       "                          converges (default auto); every limit is put back\n"
	       "                          afterwards\n"
	       "      --throttle-max PCT  take at most PCT %% of its CPU (1..99, default 90)\n"
	       "\n"
	       "Exit status: 0 completed and verified, 1 migration failed, 2 bad usage,\n"
	       "3 outcome unknown: the receiver was told to commit and its answer was lost\n"
	       "(the source stays paused: check --out on the receiver).\n",
	       LMIG_MAX_CHANNELS, tracker_names());
}

/* The command's own options: the image, and how a live migration runs. */
enum {
	SO_PID = OPT_OWN, SO_TRACKER, SO_OBJECT_WRITES, SO_MAX_ROUNDS, SO_THEN, SO_THROTTLE,
	SO_THROTTLE_MAX,
};

struct send_args {
	struct send_opts o;
	const char *live_opt;	/* a live option given, for "needs --pid" */
};

/* A word of two: 0 for the first, 1 for the second, -1 for neither. */
static int one_of(const char *arg, const char *a, const char *b)
{
	return !strcmp(arg, a) ? 0 : !strcmp(arg, b) ? 1 : -1;
}

static int send_live_opt(int opt, const char *arg, struct send_args *a)
{
	struct send_opts *o = &a->o;
	unsigned long v;

	switch (opt) {
	case 'f': o->freeze = arg; a->live_opt = "--freeze"; return EXIT_OK;
	case SO_TRACKER:
		if (!tracker_known(arg))
			return usage_error("send", "--tracker: '%s' is not one of %s", arg,
					   tracker_names());
		o->tracker = arg;
		a->live_opt = "--tracker";
		return EXIT_OK;
	case SO_OBJECT_WRITES:
		if (one_of(arg, "any", "mapped") < 0)
			return usage_error("send", "--object-writes: '%s' is not any or mapped", arg);
		o->mapped_writes_only = one_of(arg, "any", "mapped");
		a->live_opt = "--object-writes";
		return EXIT_OK;
	case 'd':
		if (opts_uint("send", "--downtime-ms", arg, 1, 3600000, &v))
			return EXIT_USAGE;
		o->downtime_ms = v;
		a->live_opt = "--downtime-ms";
		return EXIT_OK;
	case SO_MAX_ROUNDS:
		if (opts_uint("send", "--max-rounds", arg, 1, 100000, &v))
			return EXIT_USAGE;
		o->max_rounds = v;
		a->live_opt = "--max-rounds";
		return EXIT_OK;
	case SO_THEN:
		if (one_of(arg, "keep", "kill") < 0)
			return usage_error("send", "--then: '%s' is not keep or kill", arg);
		o->then_kill = one_of(arg, "keep", "kill");
		a->live_opt = "--then";
		return EXIT_OK;
	case SO_THROTTLE:
		if (one_of(arg, "auto", "off") < 0)
			return usage_error("send", "--throttle: '%s' is not auto or off", arg);
		o->throttle = !one_of(arg, "auto", "off");
		a->live_opt = "--throttle";
		return EXIT_OK;
	case SO_THROTTLE_MAX:
		if (opts_uint("send", "--throttle-max", arg, 1, 99, &v))
			return EXIT_USAGE;
		o->throttle_max_pct = v;
		a->live_opt = "--throttle-max";
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

static int send_opt(int opt, const char *arg, void *ctx)
{
	struct send_args *a = ctx;
	unsigned long v;

	switch (opt) {
	case 'm': a->o.mem = arg; return EXIT_OK;
	case SO_PID:
	case 'p':
		if (opts_uint("send", "--pid", arg, 1, 4194304, &v))
			return EXIT_USAGE;
		a->o.pid = (pid_t)v;
		return EXIT_OK;
	}
	return send_live_opt(opt, arg, a);
}

/* What only makes sense together, checked before anything is opened. */
static int send_check(struct send_args *a, const struct cli_opts *c)
{
	struct send_opts *o = &a->o;

	if (!o->mem)
		return usage_error("send", "missing --mem PATH");
	if (opts_check_to("send", c))
		return EXIT_USAGE;
	if (!strncmp(o->mem, "anon:", 5)) {
		if (!o->pid)
			return usage_error("send", "--mem %s needs --pid: whose memory is it?", o->mem);
		if (parse_anon_range("--mem", o->mem, &o->anon_start, &o->anon_size))
			return usage_error("send", "%s", lmig_errmsg());
	}
	if (a->live_opt && !o->pid)
		return usage_error("send", "%s needs --pid (a live migration)", a->live_opt);
	if (o->pid) {
		/* Check the method now: a bad one is a usage error, not a failed migration. */
		if (strcmp(o->freeze, "signal") && strcmp(o->freeze, "none") &&
		    strncmp(o->freeze, "cgroup:", 7))
			return usage_error("send", "--freeze: '%s' is not signal, cgroup:DIR or none",
					   o->freeze);
		if (c->timeout_set)
			o->live_timeout_ms = o->timeout_ms;
		/* Stalls stay bounded by the default even when pre-copy may take long. */
		if (o->timeout_ms > 10000)
			o->timeout_ms = 10000;
	}
	return EXIT_OK;
}

int cmd_send(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		OPTE_TO,
		OPTE_WIRE,
		OPTE_TIMEOUT,
		OPTE_PROGRESS,
		OPTE_JSON,
		{ "pid", required_argument, NULL, SO_PID },
		{ "freeze", required_argument, NULL, 'f' },
		{ "tracker", required_argument, NULL, SO_TRACKER },
		{ "object-writes", required_argument, NULL, SO_OBJECT_WRITES },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, SO_MAX_ROUNDS },
		{ "then", required_argument, NULL, SO_THEN },
		{ "throttle", required_argument, NULL, SO_THROTTLE },
		{ "throttle-max", required_argument, NULL, SO_THROTTLE_MAX },
		OPTE_TLS,
		OPTE_TLS_HOSTNAME,
		OPTE_HELP,
		OPTE_END };
	struct send_args a = { .o = {
		.freeze = "signal", .tracker = "auto", .downtime_ms = 300, .max_rounds = 30,
		.throttle = true, .throttle_max_pct = 90,
	} };
	const struct cli_parse p = { "send", ":m:t:c:z:b:jhp:f:d:", lo, usage_send, send_opt, &a };
	struct send_opts *o = &a.o;
	struct image_stats st = { 0 };
	struct cli_opts c;
	struct tls_conf tls;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	o->to = c.to;
	o->channels = c.channels;
	o->compress = c.compress;
	o->bandwidth = c.bandwidth;
	o->zerocopy = c.zerocopy;
	o->timeout_ms = c.timeout_ms;
	if (send_check(&a, &c) || opts_tls("send", &c, &tls, false))
		return EXIT_USAGE;
	o->tls = tls_on(&tls) ? &tls : NULL;
	o->progress = cmd_progress_default(c.progress, g);
	o->plain_progress = !isatty(STDERR_FILENO);
	o->events = &cli_events;
	ret = cmd_finish("send", image_send(o, &st), &st, compress_mode_name(o->compress),
			 o->progress, g);
	if (ret == EXIT_FAIL && st.outcome && !strcmp(st.outcome, "unknown"))
		ret = EXIT_UNKNOWN;

	tls_conf_free(&tls);
	return ret;
}

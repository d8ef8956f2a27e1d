// SPDX-License-Identifier: GPL-2.0-only
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
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
	       "                          default: online CPUs)\n"
	       "  -z, --compress MODE     auto (default): lz4 only while the network is the\n"
	       "                          bottleneck; lz4: always; none: never\n"
	       "  -b, --bandwidth RATE    cap the rate on the wire, bytes per second:\n"
	       "                          125M, 1G, 1Gbit, 64Mi (default: no cap)\n"
	       "      --zerocopy MODE     auto (default: on unless the receiver is on a\n"
	       "                          loopback address), on, off: IORING_OP_SEND_ZC\n"
	       "      --timeout S         connect/handshake limit and longest stall (default 10);\n"
	       "                          with --pid, when given, also the limit on pre-copy:\n"
	       "                          a migration not converged in S seconds fails\n"
	       "                          (without it pre-copy is bounded by --max-rounds)\n"
	       "      --progress          progress on stderr (default when it is a terminal)\n"
	       "      --no-progress       no progress line\n"
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "  -h, --help              this help\n"
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
	       "Exit status: 0 completed and verified, 1 migration failed, 2 bad usage.\n",
	       LMIG_MAX_CHANNELS, tracker_names());
}

int cmd_send(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "to", required_argument, NULL, 't' },
		{ "channels", required_argument, NULL, 'c' },
		{ "compress", required_argument, NULL, 'z' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "zerocopy", required_argument, NULL, 'Z' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "progress", no_argument, NULL, 'P' + 256 },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'i' },
		{ "freeze", required_argument, NULL, 'f' },
		{ "tracker", required_argument, NULL, 'k' },
		{ "object-writes", required_argument, NULL, 'W' + 256 },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, 'R' },
		{ "then", required_argument, NULL, 'N' },
		{ "throttle", required_argument, NULL, 'H' },
		{ "throttle-max", required_argument, NULL, 'M' },
		{ "tls-dir", required_argument, NULL, 'D' + 256 },
		{ "psk-file", required_argument, NULL, 'K' + 256 },
		{ "peer-fingerprint", required_argument, NULL, 'F' + 256 },
		{ "tls-hostname", required_argument, NULL, 'N' + 256 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	const char *tls_dir = NULL, *psk_file = NULL, *fingerprint = NULL, *tls_host = NULL;
	struct tls_conf tls;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct send_opts o = {
		.channels = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned int)ncpu,
		.compress = COMPRESS_AUTO, .zerocopy = -1, .timeout_ms = 10000,
		.freeze = "signal", .tracker = "auto", .downtime_ms = 300, .max_rounds = 30,
		.throttle = true, .throttle_max_pct = 90,
	};
	const char *live_opt = NULL;	/* a live option given, for "needs --pid" */
	bool timeout_set = false;
	struct image_stats st = { 0 };
	int opt, progress = -1;
	unsigned long v;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":m:t:c:z:b:jhp:f:d:", lo, NULL)) != -1) {
		switch (opt) {
		case 'm': o.mem = optarg; break;
		case 't': o.to = optarg; break;
		case 'c':
			if (parse_uint("--channels", optarg, 1, LMIG_MAX_CHANNELS, &v))
				return usage_error("send", "%s", lmig_errmsg());
			o.channels = v;
			break;
		case 'z':
			if (!strcmp(optarg, "auto"))
				o.compress = COMPRESS_AUTO;
			else if (!strcmp(optarg, "lz4"))
				o.compress = COMPRESS_LZ4;
			else if (!strcmp(optarg, "none"))
				o.compress = COMPRESS_NONE;
			else
				return usage_error("send", "--compress: '%s' is not auto, lz4 or none", optarg);
			break;
		case 'b':
			if (parse_bytes("--bandwidth", optarg, &o.bandwidth))
				return usage_error("send", "%s", lmig_errmsg());
			if (!o.bandwidth)
				return usage_error("send", "--bandwidth: must be more than 0");
			break;
		case 'Z':
			if (!strcmp(optarg, "auto"))
				o.zerocopy = -1;
			else if (!strcmp(optarg, "on"))
				o.zerocopy = 1;
			else if (!strcmp(optarg, "off"))
				o.zerocopy = 0;
			else
				return usage_error("send", "--zerocopy: '%s' is not auto, on or off", optarg);
			break;
		case 'T':
			if (parse_uint("--timeout", optarg, 1, 86400, &v))
				return usage_error("send", "%s", lmig_errmsg());
			o.timeout_ms = (int)v * 1000;
			timeout_set = true;
			break;
		case 'i':
			if (parse_uint("--pid", optarg, 1, 4194304, &v))
				return usage_error("send", "%s", lmig_errmsg());
			o.pid = (pid_t)v;
			break;
		case 'f': o.freeze = optarg; live_opt = "--freeze"; break;
		case 'k':
			if (!tracker_known(optarg))
				return usage_error("send", "--tracker: '%s' is not one of %s", optarg,
						   tracker_names());
			o.tracker = optarg;
			live_opt = "--tracker";
			break;
		case 'W' + 256:
			if (strcmp(optarg, "any") && strcmp(optarg, "mapped"))
				return usage_error("send", "--object-writes: '%s' is not any or mapped",
						   optarg);
			o.mapped_writes_only = !strcmp(optarg, "mapped");
			live_opt = "--object-writes";
			break;
		case 'd':
			if (parse_uint("--downtime-ms", optarg, 1, 3600000, &v))
				return usage_error("send", "%s", lmig_errmsg());
			o.downtime_ms = v;
			live_opt = "--downtime-ms";
			break;
		case 'R':
			if (parse_uint("--max-rounds", optarg, 1, 100000, &v))
				return usage_error("send", "%s", lmig_errmsg());
			o.max_rounds = v;
			live_opt = "--max-rounds";
			break;
		case 'N':
			if (strcmp(optarg, "keep") && strcmp(optarg, "kill"))
				return usage_error("send", "--then: '%s' is not keep or kill", optarg);
			o.then_kill = !strcmp(optarg, "kill");
			live_opt = "--then";
			break;
		case 'H':
			if (strcmp(optarg, "auto") && strcmp(optarg, "off"))
				return usage_error("send", "--throttle: '%s' is not auto or off", optarg);
			o.throttle = !strcmp(optarg, "auto");
			live_opt = "--throttle";
			break;
		case 'M':
			if (parse_uint("--throttle-max", optarg, 1, 99, &v))
				return usage_error("send", "%s", lmig_errmsg());
			o.throttle_max_pct = v;
			live_opt = "--throttle-max";
			break;
		case 'P' + 256: progress = 1; break;
		case 'P': progress = 0; break;
		case 'D' + 256: tls_dir = optarg; break;
		case 'K' + 256: psk_file = optarg; break;
		case 'F' + 256: fingerprint = optarg; break;
		case 'N' + 256: tls_host = optarg; break;
		case 'j': g->json = true; break;
		case 'h': usage_send(); return EXIT_OK;
		case ':': return usage_error("send", "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("send", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("send", "unexpected argument '%s'", argv[optind]);
	if (!o.mem)
		return usage_error("send", "missing --mem PATH");
	if (!o.to)
		return usage_error("send", "missing --to HOST:PORT");
	if (cmd_check_address("send", "--to", o.to))
		return EXIT_USAGE;
	if (!strncmp(o.mem, "anon:", 5)) {
		if (!o.pid)
			return usage_error("send", "--mem %s needs --pid: whose memory is it?", o.mem);
		if (parse_anon_range("--mem", o.mem, &o.anon_start, &o.anon_size))
			return usage_error("send", "%s", lmig_errmsg());
	}
	if (live_opt && !o.pid)
		return usage_error("send", "%s needs --pid (a live migration)", live_opt);
	if (o.pid) {
		/* Check the method now: a bad one is a usage error, not a failed migration. */
		if (strcmp(o.freeze, "signal") && strcmp(o.freeze, "none") &&
		    strncmp(o.freeze, "cgroup:", 7))
			return usage_error("send", "--freeze: '%s' is not signal, cgroup:DIR or none",
					   o.freeze);
		if (timeout_set)
			o.live_timeout_ms = o.timeout_ms;
		/* Stalls stay bounded by the default even when pre-copy may take long. */
		if (o.timeout_ms > 10000)
			o.timeout_ms = 10000;
	}
	if (cmd_tls_setup("send", &tls, false, tls_dir, psk_file, fingerprint, tls_host, o.to))
		return EXIT_USAGE;
	o.tls = tls_on(&tls) ? &tls : NULL;
	o.progress = cmd_progress_default(progress, g);
	o.plain_progress = !isatty(STDERR_FILENO);
	int ret = cmd_finish("send", image_send(&o, &st), &st, compress_mode_name(o.compress),
			     o.progress, g);

	if (ret == EXIT_FAIL && st.outcome && !strcmp(st.outcome, "unknown"))
		ret = EXIT_UNKNOWN;

	tls_conf_free(&tls);
	return ret;
}

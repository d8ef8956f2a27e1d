// SPDX-License-Identifier: GPL-2.0-only
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cmd.h"
#include "err.h"
#include "opts.h"
#include "report.h"
#include "xfer.h"

void usage_send(void)
{
	printf("Usage: lmig send --mem PATH --to HOST:PORT [OPTIONS]\n"
	       "\n"
	       "Migrate the memory image PATH to an 'lmig recv' listening at HOST:PORT.\n"
	       "PATH is a regular file, a tmpfs/shm file, or /proc/PID/fd/N of a memfd.\n"
	       "Exits 0 only after the receiver verified the whole image and committed it.\n"
	       "\n"
	       "Options:\n"
	       "  -m, --mem PATH          the memory image to send\n"
	       "  -t, --to HOST:PORT      the receiver ([ADDR]:PORT for IPv6)\n"
	       "  -c, --channels N        TCP connections to spread pages over (1..%u;\n"
	       "                          default: online CPUs)\n"
	       "  -z, --compress MODE     auto (default): lz4 only while the network is the\n"
	       "                          bottleneck; lz4: always; none: never\n"
	       "  -b, --bandwidth RATE    cap the rate on the wire, bytes per second:\n"
	       "                          125M, 1G, 1Gbit, 64Mi (default: no cap)\n"
	       "      --zerocopy MODE     auto (default: on unless the receiver is on a\n"
	       "                          loopback address), on, off: IORING_OP_SEND_ZC\n"
	       "      --timeout S         connect/handshake limit and longest stall (default 10)\n"
	       "      --progress          progress on stderr (default when it is a terminal)\n"
	       "      --no-progress       no progress line\n"
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 completed and verified, 1 migration failed, 2 bad usage.\n",
	       LMIG_MAX_CHANNELS);
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
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct send_opts o = {
		.channels = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned int)ncpu,
		.compress = COMPRESS_AUTO, .zerocopy = -1, .timeout_ms = 10000,
	};
	struct xfer_stats st = { 0 };
	int opt, progress = -1;
	unsigned long v;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":m:t:c:z:b:jh", lo, NULL)) != -1) {
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
			break;
		case 'p': progress = 1; break;
		case 'P': progress = 0; break;
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
	o.progress = cmd_progress_default(progress, g);
	return cmd_finish("send", xfer_send(&o, &st), &st, compress_mode_name(o.compress), o.progress, g);
}

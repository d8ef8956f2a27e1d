// SPDX-License-Identifier: GPL-2.0-only
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "cli/report.h"
#include "chan/tls.h"
#include "image/image.h"

void usage_recv(void)
{
	printf("Usage: lmig recv --listen HOST:PORT --out PATH [OPTIONS]\n"
	       "\n"
	       "Accept one migration and store the image at PATH.  While receiving, data\n"
	       "goes to a new unnamed file (O_TMPFILE; PATH.partial, created new, where the\n"
	       "filesystem lacks it), mode 0600; PATH appears only after every page\n"
	       "arrived, every checksum and the whole-image digest matched and the data\n"
	       "was flushed.  On any failure nothing is left and PATH is untouched.  An\n"
	       "existing PATH is replaced only if it is a regular file.  The announced\n"
	       "size is refused, before anything is created, above --max-size or above\n"
	       "the free space of PATH's filesystem.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen HOST:PORT  where to listen (':PORT' or '0.0.0.0:PORT' for all;\n"
	       "                          port 0 picks a free one, see --ready-fd)\n"
	       "  -o, --out PATH          where the verified image goes\n"
	       "  -s, --size SIZE         refuse a sender whose image is not exactly SIZE bytes\n"
	       "      --max-size SIZE     refuse a sender whose image is larger (default: this\n"
	       "                          host's RAM, or --size if given; 'none' = no limit)\n"
	       "      --timeout S         longest stall once a sender is connected, and the\n"
	       "                          longest wait for its confirmation of the commit\n"
	       "                          (default 10)\n"
	       "      --accept-timeout S  give up if no sender connects within S seconds\n"
	       "                          (default: wait forever)\n"
	       "      --no-sync           skip fdatasync before the commit (tmpfs, tests)\n"
	       "      --verify-readback   before the commit, read the image back, hash every\n"
	       "                          page again and compare with the sender's digest;\n"
	       "                          a difference fails the migration (costs one read of\n"
	       "                          the image, see Documentation/benchmarks.md)\n"
	       "      --ready-fd FD       write the listening port and a newline to FD,\n"
	       "                          then close it (for scripts)\n"
	       "      --progress          progress on stderr (default when it is a terminal)\n"
	       "      --no-progress       no progress line\n"
	       CMD_TLS_HELP
	       "                          A receiver with TLS refuses every plain connection.\n"
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 image verified and committed, 1 failed, 2 bad usage.\n");
}

int cmd_recv(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 's' },
		{ "max-size", required_argument, NULL, 'M' + 256 },
		{ "timeout", required_argument, NULL, 'T' },
		{ "accept-timeout", required_argument, NULL, 'A' },
		{ "no-sync", no_argument, NULL, 'S' },
		{ "verify-readback", no_argument, NULL, 'V' + 256 },
		{ "ready-fd", required_argument, NULL, 'R' },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "tls-dir", required_argument, NULL, 'D' + 256 },
		{ "psk-file", required_argument, NULL, 'K' + 256 },
		{ "peer-fingerprint", required_argument, NULL, 'F' + 256 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	const char *tls_dir = NULL, *psk_file = NULL, *fingerprint = NULL;
	struct tls_conf tls;
	struct recv_opts o = { .timeout_ms = 10000, .accept_timeout_ms = -1, .sync = true,
			       .ready_fd = -1 };
	struct image_stats st = { 0 };
	int opt, progress = -1;
	bool max_set = false;
	unsigned long v;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":l:o:s:jh", lo, NULL)) != -1) {
		switch (opt) {
		case 'l': o.listen = optarg; break;
		case 'o': o.out = optarg; break;
		case 's':
			if (parse_bytes("--size", optarg, &o.expect_size))
				return usage_error("recv", "%s", lmig_errmsg());
			if (!o.expect_size)
				return usage_error("recv", "--size: must be more than 0");
			break;
		case 'M' + 256:
			max_set = true;
			if (!strcmp(optarg, "none"))
				o.max_size = 0;
			else if (parse_bytes("--max-size", optarg, &o.max_size))
				return usage_error("recv", "%s", lmig_errmsg());
			else if (!o.max_size)
				return usage_error("recv", "--max-size: must be more than 0 (or 'none')");
			break;
		case 'T':
			if (parse_uint("--timeout", optarg, 1, 86400, &v))
				return usage_error("recv", "%s", lmig_errmsg());
			o.timeout_ms = (int)v * 1000;
			break;
		case 'A':
			if (parse_uint("--accept-timeout", optarg, 1, 86400, &v))
				return usage_error("recv", "%s", lmig_errmsg());
			o.accept_timeout_ms = (int)v * 1000;
			break;
		case 'S': o.sync = false; break;
		case 'V' + 256: o.verify_readback = true; break;
		case 'R':
			if (parse_uint("--ready-fd", optarg, 0, 65535, &v))
				return usage_error("recv", "%s", lmig_errmsg());
			o.ready_fd = (int)v;
			break;
		case 'p': progress = 1; break;
		case 'P': progress = 0; break;
		case 'D' + 256: tls_dir = optarg; break;
		case 'K' + 256: psk_file = optarg; break;
		case 'F' + 256: fingerprint = optarg; break;
		case 'j': g->json = true; break;
		case 'h': usage_recv(); return EXIT_OK;
		case ':': return usage_error("recv", "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("recv", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("recv", "unexpected argument '%s'", argv[optind]);
	if (!o.listen)
		return usage_error("recv", "missing --listen HOST:PORT");
	if (!o.out)
		return usage_error("recv", "missing --out PATH");
	if (cmd_check_address("recv", "--listen", o.listen))
		return EXIT_USAGE;
	/*
	 * A memory image larger than this host's memory cannot run here; the
	 * limit also bounds the receiver's bookkeeping (12 bytes a page).
	 */
	if (!max_set && !o.expect_size)
		o.max_size = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	if (max_set && o.expect_size && o.max_size && o.expect_size > o.max_size)
		return usage_error("recv", "--size %llu is larger than --max-size %llu",
				   (unsigned long long)o.expect_size, (unsigned long long)o.max_size);
	if (cmd_tls_setup("recv", &tls, true, tls_dir, psk_file, fingerprint, NULL, NULL))
		return EXIT_USAGE;
	o.tls = tls_on(&tls) ? &tls : NULL;
	o.progress = cmd_progress_default(progress, g);
	int ret = cmd_finish("recv", image_recv(&o, &st), &st, "-", o.progress, g);

	tls_conf_free(&tls);
	return ret;
}

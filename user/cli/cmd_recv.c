// SPDX-License-Identifier: GPL-2.0-only
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cli/options.h"
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
	       OPTH_ACCEPT_TIMEOUT
	       "      --no-sync           skip fdatasync before the commit (tmpfs, tests)\n"
	       "      --verify-readback   before the commit, read the image back, hash every\n"
	       "                          page again and compare with the sender's digest;\n"
	       "                          a difference fails the migration (costs one read of\n"
	       "                          the image, see Documentation/benchmarks.md)\n"
	       "      --ready-fd FD       write the listening port and a newline to FD,\n"
	       "                          then close it (for scripts)\n"
	       OPTH_PROGRESS
	       CMD_TLS_HELP
	       "                          A receiver with TLS refuses every plain connection.\n"
	       OPTH_JSON_STDOUT
	       OPTH_HELP
	       "\n"
	       "Exit status: 0 image verified and committed, 1 failed, 2 bad usage.\n");
}

enum { RO_MAX_SIZE = OPT_OWN, RO_NO_SYNC, RO_VERIFY_READBACK };

struct recv_args {
	struct recv_opts o;
	bool max_set;		/* --max-size given ('none' included) */
};

static int recv_opt(int opt, const char *arg, void *ctx)
{
	struct recv_args *a = ctx;
	struct recv_opts *o = &a->o;

	switch (opt) {
	case 'o': o->out = arg; return EXIT_OK;
	case 's':
		if (parse_bytes("--size", arg, &o->expect_size))
			return usage_error("recv", "%s", lmig_errmsg());
		if (!o->expect_size)
			return usage_error("recv", "--size: must be more than 0");
		return EXIT_OK;
	case RO_MAX_SIZE:
		a->max_set = true;
		if (!strcmp(arg, "none"))
			o->max_size = 0;
		else if (parse_bytes("--max-size", arg, &o->max_size))
			return usage_error("recv", "%s", lmig_errmsg());
		else if (!o->max_size)
			return usage_error("recv", "--max-size: must be more than 0 (or 'none')");
		return EXIT_OK;
	case RO_NO_SYNC: o->sync = false; return EXIT_OK;
	case RO_VERIFY_READBACK: o->verify_readback = true; return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

int cmd_recv(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		OPTE_LISTEN,
		{ "out", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 's' },
		{ "max-size", required_argument, NULL, RO_MAX_SIZE },
		OPTE_TIMEOUT,
		OPTE_ACCEPT_TIMEOUT,
		{ "no-sync", no_argument, NULL, RO_NO_SYNC },
		{ "verify-readback", no_argument, NULL, RO_VERIFY_READBACK },
		OPTE_READY_FD,
		OPTE_PROGRESS,
		OPTE_JSON,
		OPTE_TLS,
		OPTE_HELP,
		OPTE_END };
	struct recv_args a = { .o = { .sync = true } };
	const struct cli_parse p = { "recv", ":l:o:s:jh", lo, usage_recv, recv_opt, &a };
	struct recv_opts *o = &a.o;
	struct image_stats st = { 0 };
	struct cli_opts c;
	struct tls_conf tls;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	o->listen = c.listen;
	o->timeout_ms = c.timeout_ms;
	o->accept_timeout_ms = c.accept_timeout_ms;
	o->ready_fd = c.ready_fd;
	if (!c.listen)
		return usage_error("recv", "missing --listen HOST:PORT");
	if (!o->out)
		return usage_error("recv", "missing --out PATH");
	if (cmd_check_address("recv", "--listen", c.listen))
		return EXIT_USAGE;
	/*
	 * A memory image larger than this host's memory cannot run here; the
	 * limit also bounds the receiver's bookkeeping (12 bytes a page).
	 */
	if (!a.max_set && !o->expect_size)
		o->max_size = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	if (a.max_set && o->expect_size && o->max_size && o->expect_size > o->max_size)
		return usage_error("recv", "--size %llu is larger than --max-size %llu",
				   (unsigned long long)o->expect_size, (unsigned long long)o->max_size);
	if (opts_tls("recv", &c, &tls, true))
		return EXIT_USAGE;
	o->tls = tls_on(&tls) ? &tls : NULL;
	o->progress = cmd_progress_default(c.progress, g);
	o->events = &cli_events;
	ret = cmd_finish("recv", image_recv(o, &st), &st, "-", o->progress, g);

	tls_conf_free(&tls);
	return ret;
}

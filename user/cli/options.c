// SPDX-License-Identifier: GPL-2.0-only
/* The shared options of the commands and the one parse loop (options.h). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/options.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "chan/tls.h"
#include "live/converge_vm.h"
#include "stream/stream.h"

void opts_init(struct cli_opts *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	*c = (struct cli_opts){
		.channels = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned int)ncpu,
		.compress = COMPRESS_AUTO, .zerocopy = -1, .timeout_ms = 10000,
		.accept_timeout_ms = -1, .ready_fd = -1, .json_fd = -1,
		.max_pending = STREAM_MAX_PENDING_DEFAULT, .progress = -1,
		.vm = { .throttle = -1, .max_pct = 0 },
	};
}

int opts_uint(const char *cmd, const char *opt, const char *arg, unsigned long min,
	      unsigned long max, unsigned long *v)
{
	if (parse_uint(opt, arg, min, max, v))
		return usage_error(cmd, "%s", lmig_errmsg());
	return EXIT_OK;
}

int opts_secs(const char *cmd, const char *opt, const char *arg, int *ms)
{
	unsigned long v;

	if (opts_uint(cmd, opt, arg, 1, 86400, &v))
		return EXIT_USAGE;
	*ms = (int)v * 1000;
	return EXIT_OK;
}

int opts_fd(const char *cmd, const char *opt, const char *arg, int *fd)
{
	unsigned long v;

	if (opts_uint(cmd, opt, arg, 0, 65535, &v))
		return EXIT_USAGE;
	*fd = (int)v;
	return EXIT_OK;
}

int opts_word(const char *arg, const char *const *words)
{
	for (int i = 0; words[i]; i++)
		if (!strcmp(arg, words[i]))
			return i;
	return -1;
}

static int wire_opt(const char *cmd, int opt, const char *arg, struct cli_opts *c)
{
	static const char *const compress[] = { "auto", "lz4", "zstd", "none", NULL };
	static const enum compress_mode compress_mode[] = { COMPRESS_AUTO, COMPRESS_LZ4,
							    COMPRESS_ZSTD, COMPRESS_NONE };
	static const char *const zerocopy[] = { "auto", "on", "off", NULL };
	static const int zerocopy_val[] = { -1, 1, 0 };
	unsigned long v;
	int i;

	switch (opt) {
	case OPT_CHANNELS:
		if (opts_uint(cmd, "--channels", arg, 1, LMIG_MAX_CHANNELS, &v))
			return EXIT_USAGE;
		c->channels = v;
		return EXIT_OK;
	case OPT_COMPRESS:
		i = opts_word(arg, compress);
		if (i < 0)
			return usage_error(cmd, "--compress: '%s' is not auto, lz4, zstd or none", arg);
		c->compress = compress_mode[i];
		return EXIT_OK;
	case OPT_BANDWIDTH:
		if (parse_bytes("--bandwidth", arg, &c->bandwidth))
			return usage_error(cmd, "%s", lmig_errmsg());
		if (!c->bandwidth)
			return usage_error(cmd, "--bandwidth: must be more than 0");
		return EXIT_OK;
	case OPT_ZEROCOPY:
		i = opts_word(arg, zerocopy);
		if (i < 0)
			return usage_error(cmd, "--zerocopy: '%s' is not auto, on or off", arg);
		c->zerocopy = zerocopy_val[i];
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

static int converge_opt(const char *cmd, int opt, const char *arg, struct cli_opts *c)
{
	static const char *const throttle[] = { "off", "auto", NULL };
	unsigned long v;
	int i;

	switch (opt) {
	case OPT_QMP:
		if (!*arg)
			return usage_error(cmd, "--qmp: empty path");
		c->vm.qmp = arg;
		return EXIT_OK;
	case OPT_VM_PID:
		if (opts_uint(cmd, "--vm-pid", arg, 1, 4194304, &v))
			return EXIT_USAGE;
		c->vm.pid = (pid_t)v;
		return EXIT_OK;
	case OPT_THROTTLE:
		i = opts_word(arg, throttle);
		if (i < 0)
			return usage_error(cmd, "--throttle: '%s' is not auto or off", arg);
		c->vm.throttle = i;
		c->vm.opt = "--throttle";
		return EXIT_OK;
	case OPT_THROTTLE_MAX:
		if (opts_uint(cmd, "--throttle-max", arg, 1, 99, &v))
			return EXIT_USAGE;
		c->vm.max_pct = v;
		c->vm.opt = "--throttle-max";
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

/* One shared option into c: EXIT_OK, EXIT_USAGE after the error, or OPT_NOT_OWN. */
static int shared_opt(const char *cmd, int opt, const char *arg, struct cli_opts *c,
		      struct global_opts *g)
{
	int ret;

	switch (opt) {
	case OPT_TO: c->to = arg; return EXIT_OK;
	case OPT_LISTEN: c->listen = arg; return EXIT_OK;
	case OPT_TIMEOUT:
		c->timeout_set = true;
		return opts_secs(cmd, "--timeout", arg, &c->timeout_ms);
	case OPT_ACCEPT_TIMEOUT: return opts_secs(cmd, "--accept-timeout", arg, &c->accept_timeout_ms);
	case OPT_READY_FD: return opts_fd(cmd, "--ready-fd", arg, &c->ready_fd);
	case OPT_MAX_PENDING:
		if (parse_bytes("--max-pending", arg, &c->max_pending))
			return usage_error(cmd, "%s", lmig_errmsg());
		if (c->max_pending < STREAM_HELD_MAX)
			return usage_error(cmd, "--max-pending: at least 32Mi (one stream's limit)");
		return EXIT_OK;
	case OPT_JSON: g->json = true; return EXIT_OK;
	case OPT_JSON_FD:
		if (opts_fd(cmd, "--json-fd", arg, &c->json_fd))
			return EXIT_USAGE;
		g->json = true;
		return EXIT_OK;
	case OPT_PROGRESS: c->progress = 1; return EXIT_OK;
	case OPT_NO_PROGRESS: c->progress = 0; return EXIT_OK;
	case OPT_TLS_DIR: c->tls.dir = arg; return EXIT_OK;
	case OPT_PSK_FILE: c->tls.psk_file = arg; return EXIT_OK;
	case OPT_FINGERPRINT: c->tls.fingerprint = arg; return EXIT_OK;
	case OPT_TLS_HOSTNAME: c->tls.hostname = arg; return EXIT_OK;
	}
	ret = converge_opt(cmd, opt, arg, c);
	return ret != OPT_NOT_OWN ? ret : wire_opt(cmd, opt, arg, c);
}

int opts_parse(const struct cli_parse *p, struct cli_opts *c, struct global_opts *g,
	       int argc, char **argv)
{
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, p->shortopts, p->longopts, NULL)) != -1) {
		if (opt == OPT_HELP) {
			p->usage();
			return EXIT_OK;
		}
		if (opt == ':')
			return usage_error(p->cmd, "option '%s' needs a value", argv[optind - 1]);
		if (opt == '?')
			return usage_error(p->cmd, "unknown option '%s'", argv[optind - 1]);
		ret = p->own ? p->own(opt, optarg, p->ctx) : OPT_NOT_OWN;
		if (ret == OPT_NOT_OWN)
			ret = shared_opt(p->cmd, opt, optarg, c, g);
		if (ret == OPT_NOT_OWN)
			return usage_error(p->cmd, "unknown option '%s'", argv[optind - 1]);
		if (ret)
			return ret;
	}
	if (optind < argc)
		return usage_error(p->cmd, "unexpected argument '%s'", argv[optind]);
	return OPTS_RUN;
}

int opts_check_to(const char *cmd, const struct cli_opts *c)
{
	if (!c->to)
		return usage_error(cmd, "missing --to HOST:PORT");
	return cmd_check_address(cmd, "--to", c->to);
}

int opts_check_listen(const char *cmd, const struct cli_opts *c)
{
	if (!c->listen)
		return usage_error(cmd, "missing --listen HOST:PORT");
	return cmd_check_address(cmd, "--listen", c->listen);
}

int opts_check_json_fd(const char *cmd, const struct cli_opts *c)
{
	if (fcntl(c->json_fd, F_GETFD) < 0)
		return usage_error(cmd, "--json-fd: descriptor %d is not open", c->json_fd);
	return EXIT_OK;
}

bool opts_converge(const char *cmd, const struct cli_opts *c, struct cvm_conf *v, int *ret)
{
	*ret = EXIT_OK;
	if (c->vm.pid && !c->vm.qmp) {
		*ret = usage_error(cmd, "--vm-pid needs --qmp PATH: without QEMU's QMP lmig cannot tell whether its migration converges");
		return false;
	}
	if (c->vm.opt && !c->vm.qmp) {
		*ret = usage_error(cmd, "%s needs --qmp PATH (the source QEMU to follow)", c->vm.opt);
		return false;
	}
	if (!c->vm.qmp)
		return false;
	*v = (struct cvm_conf){ .qmp_path = c->vm.qmp, .vm_pid = c->vm.pid,
				.throttle = c->vm.throttle != 0, .max_pct = c->vm.max_pct };
	return true;
}

int opts_tls(const char *cmd, const struct cli_opts *c, struct tls_conf *t, bool server)
{
	if (server)
		return cmd_tls_setup(cmd, t, true, c->tls.dir, c->tls.psk_file, c->tls.fingerprint,
				     NULL, NULL);
	return cmd_tls_setup(cmd, t, false, c->tls.dir, c->tls.psk_file, c->tls.fingerprint,
			     c->tls.hostname, c->to);
}

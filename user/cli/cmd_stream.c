// SPDX-License-Identifier: GPL-2.0-only
/*
 * The sides of `lmig pipe` and `lmig proxy`: QEMU's migration stream
 * carried by the stream transport (stream/stream.h).  The two commands
 * take the same options but for the endpoints: a pipe reads stdin and
 * writes stdout, a proxy accepts and opens connections.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd_stream.h"
#include "cli/options.h"
#include "cli/report.h"
#include "lib/err.h"
#include "live/converge_vm.h"
#include "stream/resume_buf.h"
#include "stream/resume_policy.h"
#include "stream/stream.h"
#include "chan/tls.h"

/* A pipe runs under QEMU: it is silent on success unless asked for --json. */
static int finish(const char *who, int ret, const struct stream_stats *st, const char *compress,
		  const struct cvm_stats *vm, bool json, int json_fd)
{
	if (json || !strncmp(who, "proxy", 5))
		stream_report(who, st, compress, vm, ret == 0, json, json_fd);
	if (vm)
		cvm_report_unrestored(who, vm);
	if (!ret)
		return EXIT_OK;
	fprintf(stderr, "lmig %s: %s\n", who, lmig_errmsg());
	return EXIT_FAIL;
}

static int stream_send_cmd(const struct stream_cmd *sc, const char *who, int argc, char **argv,
			   struct global_opts *g)
{
	static const struct option lo[] = {
		OPTE_TO,
		OPTE_LISTEN,
		{ "channels", required_argument, NULL, OPT_CHANNELS },
		{ "compress", required_argument, NULL, OPT_COMPRESS },
		{ "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
		{ "streams", required_argument, NULL, 'n' },
		{ "grace-ms", required_argument, NULL, STREAM_OPT_GRACE },
		{ "resume-timeout", required_argument, NULL, STREAM_OPT_RESUME_TIMEOUT },
		{ "resume-buffer", required_argument, NULL, STREAM_OPT_RESUME_BUFFER },
		OPTE_TLS,
		OPTE_TLS_HOSTNAME,
		OPTE_CONVERGE,
		{ "zerocopy", required_argument, NULL, OPT_ZEROCOPY },
		OPTE_TIMEOUT,
		OPTE_ACCEPT_TIMEOUT,
		OPTE_READY_FD,
		OPTE_JSON,
		OPTE_JSON_FD,
		OPTE_HELP,
		OPTE_END };
	struct stream_send_opts o = {
		.grace_ms = 500, .resume_buf = RESUME_BUF_DEFAULT,
		.resume_timeout_ms = sc->proxy ? RESUME_TIMEOUT_DEFAULT_S * 1000 : 0,
	};
	const struct cli_parse p = { who, ":t:l:c:z:b:n:jh", lo, sc->usage_send, sc->send_opt, &o };
	struct stream_stats st = { 0 };
	struct cvm_stats vm = { 0 };
	struct converge_vm *cv = NULL;
	struct cvm_conf vc;
	struct cli_opts c;
	struct tls_conf tls;
	bool follow;
	int ret;

	opts_init(&c);
	c.json_fd = sc->proxy ? STDOUT_FILENO : STDERR_FILENO;
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (opts_check_to(who, &c))
		return EXIT_USAGE;
	follow = opts_converge(who, &c, &vc, &ret);
	if (ret)
		return ret;
	if (!sc->proxy) {
		o.from.kind = SEP_STDIO;
	} else if (!c.listen) {
		return usage_error(who, "missing --listen unix:PATH|tcp:HOST:PORT");
	} else if (sendpoint_parse("--listen", c.listen, &o.from)) {
		return usage_error(who, "%s", lmig_errmsg());
	}
	if (opts_check_json_fd(who, &c) || opts_tls(who, &c, &tls, false))
		return EXIT_USAGE;
	o.to = c.to;
	o.channels = c.channels;
	if (c.compress == COMPRESS_ZSTD)
		return usage_error(who, "--compress zstd: the stream carries lz4 blocks only "
				   "(auto, lz4 or none)");
	o.compress = c.compress;
	o.bandwidth = c.bandwidth;
	o.zerocopy = c.zerocopy;
	o.timeout_ms = c.timeout_ms;
	o.accept_timeout_ms = c.accept_timeout_ms;
	o.ready_fd = c.ready_fd;
	o.tls = tls_on(&tls) ? &tls : NULL;
	/*
	 * The convergence controller runs beside the engine, started before
	 * it (its guard is forked while lmig is one small thread) and
	 * stopped, its limits undone, whatever the engine's outcome.
	 */
	if (follow && cvm_start(&cv, &vc, &vm)) {
		ret = -1;	/* nothing carried: QEMU's writes fail, its VM runs on */
	} else {
		ret = stream_send(&o, &st);
		cvm_stop(cv);
	}
	ret = finish(who, ret, &st, compress_mode_name(o.compress), vm.on ? &vm : NULL, g->json,
		     c.json_fd);
	tls_conf_free(&tls);
	return ret;
}

static int stream_recv_cmd(const struct stream_cmd *sc, const char *who, int argc, char **argv,
			   struct global_opts *g)
{
	static const struct option lo[] = {
		OPTE_LISTEN,
		OPTE_TO,
		OPTE_TIMEOUT,
		OPTE_ACCEPT_TIMEOUT,
		OPTE_READY_FD,
		OPTE_MAX_PENDING,
		{ "resume-timeout", required_argument, NULL, STREAM_OPT_RESUME_TIMEOUT },
		{ "resume-buffer", required_argument, NULL, STREAM_OPT_RESUME_BUFFER },
		OPTE_TLS,
		OPTE_JSON,
		OPTE_JSON_FD,
		OPTE_HELP,
		OPTE_END };
	struct stream_recv_opts o = {
		.resume_buf = RESUME_BUF_DEFAULT,
		.resume_timeout_ms = sc->proxy ? RESUME_TIMEOUT_DEFAULT_S * 1000 : 0,
	};
	const struct cli_parse p = { who, ":l:t:jh", lo, sc->usage_recv, sc->recv_opt, &o };
	struct stream_stats st = { 0 };
	struct cli_opts c;
	struct tls_conf tls;
	int ret;

	opts_init(&c);
	c.json_fd = sc->proxy ? STDOUT_FILENO : STDERR_FILENO;
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (opts_check_listen(who, &c))
		return EXIT_USAGE;
	if (sc->proxy) {
		if (!c.to)
			return usage_error(who, "missing --to unix:PATH|tcp:HOST:PORT");
		if (sendpoint_parse("--to", c.to, &o.to))
			return usage_error(who, "%s", lmig_errmsg());
	} else {
		o.to.kind = SEP_STDIO;
		if (c.json_fd == STDOUT_FILENO)
			return usage_error(who, "--json-fd: stdout carries the stream");
	}
	if (opts_check_json_fd(who, &c) || opts_tls(who, &c, &tls, true))
		return EXIT_USAGE;
	o.listen = c.listen;
	o.timeout_ms = c.timeout_ms;
	o.accept_timeout_ms = c.accept_timeout_ms;
	o.ready_fd = c.ready_fd;
	o.max_pending = c.max_pending;
	o.tls = tls_on(&tls) ? &tls : NULL;
	ret = finish(who, stream_recv(&o, &st), &st, "-", NULL, g->json, c.json_fd);
	tls_conf_free(&tls);
	return ret;
}

int stream_cmd_run(const struct stream_cmd *sc, int argc, char **argv, struct global_opts *g)
{
	char who[16];

	if (argc < 2) {
		fprintf(stderr, "lmig %s: missing 'send' or 'recv' (see 'lmig %s --help')\n",
			sc->name, sc->name);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		sc->usage();
		return EXIT_OK;
	}
	snprintf(who, sizeof(who), "%s %s", sc->name, argv[1]);
	if (!strcmp(argv[1], "send"))
		return stream_send_cmd(sc, who, argc - 1, argv + 1, g);
	if (!strcmp(argv[1], "recv"))
		return stream_recv_cmd(sc, who, argc - 1, argv + 1, g);
	fprintf(stderr, "lmig %s: '%s' is not 'send' or 'recv' (see 'lmig %s --help')\n",
		sc->name, argv[1], sc->name);
	return EXIT_USAGE;
}

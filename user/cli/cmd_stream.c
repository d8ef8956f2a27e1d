// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig pipe send|recv` and `lmig proxy send|recv`: QEMU's migration
 * stream carried by the stream transport (stream.h).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "stream/stream.h"
#include "chan/tls.h"

static void usage_pipe_send(void)
{
	printf("Usage: lmig pipe send --to HOST:PORT [--channels N] [--compress auto|lz4|none]\n"
	       "                      [--bandwidth RATE] [--json] [OPTIONS]\n"
	       "\n"
	       "Carry the byte stream on stdin to an 'lmig pipe recv' (or 'lmig proxy recv')\n"
	       "at HOST:PORT, for QEMU's exec: migration:\n"
	       "  (qemu) migrate -d \"exec:lmig pipe send --to DST:7777\"\n"
	       "Exits 0 once the receiver confirmed that every byte was written out whole.\n"
	       "On failure stdin is closed, so QEMU's write fails and the source VM keeps\n"
	       "running.  Messages go to stderr.\n"
	       "\n"
	       "Options:\n"
	       "  -t, --to HOST:PORT      the receiver ([ADDR]:PORT for IPv6)\n"
	       "  -c, --channels N        TCP connections to spread blocks over (1..%u;\n"
	       "                          default: online CPUs, at most 8)\n"
	       "  -z, --compress MODE     auto (default): lz4 only while the network is the\n"
	       "                          bottleneck; lz4: always; none: never\n"
	       "  -b, --bandwidth RATE    cap the rate on the wire: 125M, 1G, 1Gbit, 64Mi\n"
	       "      --zerocopy MODE     auto (default: on unless the receiver is on a\n"
	       "                          loopback address), on, off: IORING_OP_SEND_ZC\n"
	       "      --timeout S         connect and handshake limit, and the longest wait\n"
	       "                          for the receiver once a stream's window is full\n"
	       "                          or the verdict is due (default 10)\n"
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       "  -j, --json              one JSON object with the result on stderr\n"
	       "      --json-fd FD        ... on descriptor FD instead (implies --json)\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 carried and confirmed, 1 failed, 2 bad usage.\n",
	       LMIG_MAX_CHANNELS);
}

static void usage_pipe_recv(void)
{
	printf("Usage: lmig pipe recv --listen HOST:PORT [--json] [--ready-fd FD] [OPTIONS]\n"
	       "\n"
	       "Accept one 'lmig pipe send' (or a one-connection 'lmig proxy send') and write\n"
	       "its stream to stdout, in order, each block checked, for QEMU's exec:\n"
	       "incoming migration:\n"
	       "  qemu-system-x86_64 ... -incoming \"exec:lmig pipe recv --listen :7777\"\n"
	       "stdout carries nothing but the stream; messages and --json go to stderr.\n"
	       "On failure stdout is closed early, so QEMU sees a truncated stream.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen HOST:PORT  where to listen (':PORT' for all addresses; port 0\n"
	       "                          picks a free one, see --ready-fd)\n"
	       "      --ready-fd FD       write the listening port and a newline to FD, then\n"
	       "                          close it\n"
	       "      --accept-timeout S  give up if no sender connects within S seconds\n"
	       "                          (default: wait forever)\n"
	       "      --timeout S         handshake limit, and from the first frame on the\n"
	       "                          longest time without a byte written to stdout\n"
	       "                          (default 10)\n"
	       "      --max-pending SIZE  most memory for blocks received and not yet written\n"
	       "                          (out of order, or waiting for QEMU to read); more\n"
	       "                          is an error (default 256Mi, at least 32Mi, which\n"
	       "                          is also the limit of each stream)\n"
	       CMD_TLS_HELP
	       "  -j, --json              one JSON object with the result on stderr\n"
	       "      --json-fd FD        ... on descriptor FD instead (implies --json)\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 the whole stream written and verified, 1 failed, 2 bad usage.\n");
}

static void usage_proxy_send(void)
{
	printf("Usage: lmig proxy send --listen unix:PATH|tcp:HOST:PORT --to HOST:PORT\n"
	       "                       [--channels N] [--compress auto|lz4|none]\n"
	       "                       [--bandwidth RATE] [--streams N] [--json] [OPTIONS]\n"
	       "\n"
	       "Accept the connections of one QEMU migration (the main channel, then one per\n"
	       "multifd channel) and carry each to an 'lmig proxy recv' at HOST:PORT, which\n"
	       "opens one connection per stream to the destination QEMU, in the same order:\n"
	       "  (qemu) migrate -d unix:PATH          (also with multifd; or libvirt's\n"
	       "  virsh migrate --live --migrateuri unix://PATH [--parallel] ...)\n"
	       "The migration is over when every connection reached its end, no new one came\n"
	       "for --grace-ms after that (QEMU opens all of them at the start), or\n"
	       "--streams N connections ended, and the receiver confirmed every byte.  On\n"
	       "failure QEMU's connections are closed so its writes fail and the source VM\n"
	       "keeps running.  A reset connection (not a clean end) fails the migration.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen ADDR       unix:PATH (a stale socket file is replaced) or\n"
	       "                          tcp:HOST:PORT, where QEMU connects\n"
	       "  -t, --to HOST:PORT      the 'lmig proxy recv'\n"
	       "  -c, --channels N        TCP connections to spread blocks over (1..%u;\n"
	       "                          default: online CPUs, at most 8)\n"
	       "  -z, --compress MODE     auto (default), lz4, none (see 'lmig pipe send')\n"
	       "  -b, --bandwidth RATE    cap the rate on the wire: 125M, 1G, 1Gbit, 64Mi\n"
	       "  -n, --streams N         the migration has exactly N connections\n"
	       "      --grace-ms MS       without --streams: wait this long for another\n"
	       "                          connection once all ended (default 500)\n"
	       "      --zerocopy MODE     auto, on, off (see 'lmig pipe send')\n"
	       "      --timeout S         connect and handshake limit, and the longest wait\n"
	       "                          for the receiver once a stream's window is full\n"
	       "                          or the verdict is due (default 10)\n"
	       "      --accept-timeout S  give up if QEMU does not connect within S seconds\n"
	       "                          (default: wait forever)\n"
	       "      --ready-fd FD       once listening and connected to the receiver,\n"
	       "                          write the port (tcp) or path (unix) and a newline\n"
	       "                          to FD, then close it\n"
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "      --json-fd FD        ... on descriptor FD instead (implies --json)\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 carried and confirmed, 1 failed, 2 bad usage.\n",
	       LMIG_MAX_CHANNELS);
}

static void usage_proxy_recv(void)
{
	printf("Usage: lmig proxy recv --listen HOST:PORT --to unix:PATH|tcp:HOST:PORT\n"
	       "                       [--json] [--ready-fd FD] [OPTIONS]\n"
	       "\n"
	       "Accept one 'lmig proxy send' (or 'lmig pipe send') and give each of its\n"
	       "streams its own connection to the destination QEMU listening at --to\n"
	       "(-incoming unix:PATH or tcp:...), opened in the order the source accepted\n"
	       "QEMU's connections.  A connection is ended cleanly only when its stream\n"
	       "arrived whole and verified; on failure TCP connections are reset and unix\n"
	       "ones closed early, so QEMU never takes a partial stream for a whole one.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen HOST:PORT  where the 'lmig proxy send' connects\n"
	       "  -t, --to ADDR           unix:PATH or tcp:HOST:PORT of the destination QEMU\n"
	       "      --ready-fd FD       write the listening port and a newline to FD\n"
	       "      --accept-timeout S  give up if no sender connects within S seconds\n"
	       "      --timeout S         handshake and connect limit, and from the first\n"
	       "                          frame on the longest time without a byte written\n"
	       "                          to QEMU (default 10)\n"
	       "      --max-pending SIZE  most memory for blocks received and not yet written\n"
	       "                          (out of order, or waiting for QEMU to read); more\n"
	       "                          is an error (default 256Mi, at least 32Mi, which\n"
	       "                          is also the limit of each stream)\n"
	       CMD_TLS_HELP
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "      --json-fd FD        ... on descriptor FD instead (implies --json)\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 every stream delivered and verified, 1 failed, 2 bad usage.\n");
}

void usage_pipe(void)
{
	usage_pipe_send();
	printf("\n");
	usage_pipe_recv();
}

void usage_proxy(void)
{
	usage_proxy_send();
	printf("\n");
	usage_proxy_recv();
}

enum { O_ZEROCOPY = 256, O_TIMEOUT, O_ACCEPT_TIMEOUT, O_READY_FD, O_JSON_FD, O_GRACE,
	       O_TLS_DIR, O_PSK_FILE, O_FINGERPRINT, O_TLS_HOSTNAME, O_MAX_PENDING };

/* --tls-dir, --psk-file, --peer-fingerprint: the same in all four commands. */
#define TLS_LONGOPTS \
	{ "tls-dir", required_argument, NULL, O_TLS_DIR }, \
	{ "psk-file", required_argument, NULL, O_PSK_FILE }, \
	{ "peer-fingerprint", required_argument, NULL, O_FINGERPRINT },

struct tls_args {
	const char *dir, *psk_file, *fingerprint;
	const char *hostname;		/* --tls-hostname: the sending commands only */
};

static bool tls_arg(int opt, struct tls_args *t)
{
	switch (opt) {
	case O_TLS_DIR: t->dir = optarg; return true;
	case O_PSK_FILE: t->psk_file = optarg; return true;
	case O_FINGERPRINT: t->fingerprint = optarg; return true;
	case O_TLS_HOSTNAME: t->hostname = optarg; return true;
	}
	return false;
}

/* A pipe runs under QEMU: it is silent on success unless asked for --json. */
static int finish(const char *who, int ret, const struct stream_stats *st, const char *compress,
		  bool json, int json_fd)
{
	if (json || !strncmp(who, "proxy", 5))
		stream_report(who, st, compress, ret == 0, json, json_fd);
	if (!ret)
		return EXIT_OK;
	fprintf(stderr, "lmig %s: %s\n", who, lmig_errmsg());
	return EXIT_FAIL;
}

static int parse_secs(const char *who, const char *opt, const char *arg, int *ms)
{
	unsigned long v;

	if (parse_uint(opt, arg, 1, 86400, &v))
		return usage_error(who, "%s", lmig_errmsg());
	*ms = (int)v * 1000;
	return 0;
}

static int parse_fd(const char *who, const char *opt, const char *arg, int *fd)
{
	unsigned long v;

	if (parse_uint(opt, arg, 0, 65535, &v))
		return usage_error(who, "%s", lmig_errmsg());
	*fd = (int)v;
	return 0;
}

static int do_send(const char *who, bool proxy, int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "to", required_argument, NULL, 't' },
		{ "listen", required_argument, NULL, 'l' },
		{ "channels", required_argument, NULL, 'c' },
		{ "compress", required_argument, NULL, 'z' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "streams", required_argument, NULL, 'n' },
		{ "grace-ms", required_argument, NULL, O_GRACE },
		TLS_LONGOPTS
		{ "tls-hostname", required_argument, NULL, O_TLS_HOSTNAME },
		{ "zerocopy", required_argument, NULL, O_ZEROCOPY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "accept-timeout", required_argument, NULL, O_ACCEPT_TIMEOUT },
		{ "ready-fd", required_argument, NULL, O_READY_FD },
		{ "json", no_argument, NULL, 'j' },
		{ "json-fd", required_argument, NULL, O_JSON_FD },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct stream_send_opts o = {
		.channels = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned int)ncpu,
		.compress = COMPRESS_AUTO, .zerocopy = -1, .timeout_ms = 10000, .grace_ms = 500,
		.accept_timeout_ms = -1, .ready_fd = -1,
	};
	const char *listen = NULL;
	struct stream_stats st = { 0 };
	struct tls_args ta = { 0 };
	struct tls_conf tls;
	int opt, ret, json_fd = proxy ? STDOUT_FILENO : STDERR_FILENO;
	unsigned long v;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":t:l:c:z:b:n:jh", lo, NULL)) != -1) {
		if (tls_arg(opt, &ta))
			continue;
		switch (opt) {
		case 't': o.to = optarg; break;
		case 'l':
			if (!proxy)
				return usage_error(who, "unknown option '--listen' (the stream is stdin)");
			listen = optarg;
			break;
		case 'c':
			if (parse_uint("--channels", optarg, 1, LMIG_MAX_CHANNELS, &v))
				return usage_error(who, "%s", lmig_errmsg());
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
				return usage_error(who, "--compress: '%s' is not auto, lz4 or none", optarg);
			break;
		case 'b':
			if (parse_bytes("--bandwidth", optarg, &o.bandwidth))
				return usage_error(who, "%s", lmig_errmsg());
			if (!o.bandwidth)
				return usage_error(who, "--bandwidth: must be more than 0");
			break;
		case 'n':
			if (!proxy)
				return usage_error(who, "unknown option '--streams' (a pipe is one stream)");
			if (parse_uint("--streams", optarg, 1, LMIG_STREAM_MAX, &v))
				return usage_error(who, "%s", lmig_errmsg());
			o.streams = v;
			break;
		case O_GRACE:
			if (!proxy)
				return usage_error(who, "unknown option '--grace-ms' (a pipe is one stream)");
			if (parse_uint("--grace-ms", optarg, 1, 3600000, &v))
				return usage_error(who, "%s", lmig_errmsg());
			o.grace_ms = v;
			break;
		case O_ZEROCOPY:
			if (!strcmp(optarg, "auto"))
				o.zerocopy = -1;
			else if (!strcmp(optarg, "on"))
				o.zerocopy = 1;
			else if (!strcmp(optarg, "off"))
				o.zerocopy = 0;
			else
				return usage_error(who, "--zerocopy: '%s' is not auto, on or off", optarg);
			break;
		case O_TIMEOUT:
			if (parse_secs(who, "--timeout", optarg, &o.timeout_ms))
				return EXIT_USAGE;
			break;
		case O_ACCEPT_TIMEOUT:
			if (!proxy)
				return usage_error(who, "unknown option '--accept-timeout'");
			if (parse_secs(who, "--accept-timeout", optarg, &o.accept_timeout_ms))
				return EXIT_USAGE;
			break;
		case O_READY_FD:
			if (!proxy)
				return usage_error(who, "unknown option '--ready-fd'");
			if (parse_fd(who, "--ready-fd", optarg, &o.ready_fd))
				return EXIT_USAGE;
			break;
		case 'j': g->json = true; break;
		case O_JSON_FD:
			if (parse_fd(who, "--json-fd", optarg, &json_fd))
				return EXIT_USAGE;
			g->json = true;
			break;
		case 'h':
			if (proxy)
				usage_proxy_send();
			else
				usage_pipe_send();
			return EXIT_OK;
		case ':': return usage_error(who, "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error(who, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(who, "unexpected argument '%s'", argv[optind]);
	if (!o.to)
		return usage_error(who, "missing --to HOST:PORT");
	if (cmd_check_address(who, "--to", o.to))
		return EXIT_USAGE;
	if (proxy) {
		if (!listen)
			return usage_error(who, "missing --listen unix:PATH|tcp:HOST:PORT");
		if (sendpoint_parse("--listen", listen, &o.from))
			return usage_error(who, "%s", lmig_errmsg());
	} else {
		o.from.kind = SEP_STDIO;
	}
	if (fcntl(json_fd, F_GETFD) < 0)
		return usage_error(who, "--json-fd: descriptor %d is not open", json_fd);
	if (cmd_tls_setup(who, &tls, false, ta.dir, ta.psk_file, ta.fingerprint, ta.hostname,
			  o.to))
		return EXIT_USAGE;
	o.tls = tls_on(&tls) ? &tls : NULL;
	ret = finish(who, stream_send(&o, &st), &st, compress_mode_name(o.compress), g->json,
		     json_fd);
	tls_conf_free(&tls);
	return ret;
}

static int do_recv(const char *who, bool proxy, int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "accept-timeout", required_argument, NULL, O_ACCEPT_TIMEOUT },
		{ "ready-fd", required_argument, NULL, O_READY_FD },
		{ "max-pending", required_argument, NULL, O_MAX_PENDING },
		TLS_LONGOPTS
		{ "json", no_argument, NULL, 'j' },
		{ "json-fd", required_argument, NULL, O_JSON_FD },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	struct stream_recv_opts o = { .timeout_ms = 10000, .accept_timeout_ms = -1, .ready_fd = -1,
				      .max_pending = STREAM_MAX_PENDING_DEFAULT };
	const char *to = NULL;
	struct stream_stats st = { 0 };
	struct tls_args ta = { 0 };
	struct tls_conf tls;
	int opt, ret, json_fd = proxy ? STDOUT_FILENO : STDERR_FILENO;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":l:t:jh", lo, NULL)) != -1) {
		if (tls_arg(opt, &ta))
			continue;
		switch (opt) {
		case 'l': o.listen = optarg; break;
		case 't':
			if (!proxy)
				return usage_error(who, "unknown option '--to' (the stream goes to stdout)");
			to = optarg;
			break;
		case O_TIMEOUT:
			if (parse_secs(who, "--timeout", optarg, &o.timeout_ms))
				return EXIT_USAGE;
			break;
		case O_ACCEPT_TIMEOUT:
			if (parse_secs(who, "--accept-timeout", optarg, &o.accept_timeout_ms))
				return EXIT_USAGE;
			break;
		case O_READY_FD:
			if (parse_fd(who, "--ready-fd", optarg, &o.ready_fd))
				return EXIT_USAGE;
			break;
		case O_MAX_PENDING:
			if (parse_bytes("--max-pending", optarg, &o.max_pending))
				return usage_error(who, "%s", lmig_errmsg());
			if (o.max_pending < STREAM_HELD_MAX)
				return usage_error(who, "--max-pending: at least 32Mi (one stream's limit)");
			break;
		case 'j': g->json = true; break;
		case O_JSON_FD:
			if (parse_fd(who, "--json-fd", optarg, &json_fd))
				return EXIT_USAGE;
			g->json = true;
			break;
		case 'h':
			if (proxy)
				usage_proxy_recv();
			else
				usage_pipe_recv();
			return EXIT_OK;
		case ':': return usage_error(who, "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error(who, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(who, "unexpected argument '%s'", argv[optind]);
	if (!o.listen)
		return usage_error(who, "missing --listen HOST:PORT");
	if (cmd_check_address(who, "--listen", o.listen))
		return EXIT_USAGE;
	if (proxy) {
		if (!to)
			return usage_error(who, "missing --to unix:PATH|tcp:HOST:PORT");
		if (sendpoint_parse("--to", to, &o.to))
			return usage_error(who, "%s", lmig_errmsg());
	} else {
		o.to.kind = SEP_STDIO;
		if (json_fd == STDOUT_FILENO)
			return usage_error(who, "--json-fd: stdout carries the stream");
	}
	if (fcntl(json_fd, F_GETFD) < 0)
		return usage_error(who, "--json-fd: descriptor %d is not open", json_fd);
	if (cmd_tls_setup(who, &tls, true, ta.dir, ta.psk_file, ta.fingerprint, NULL, NULL))
		return EXIT_USAGE;
	o.tls = tls_on(&tls) ? &tls : NULL;
	ret = finish(who, stream_recv(&o, &st), &st, "-", g->json, json_fd);
	tls_conf_free(&tls);
	return ret;
}

static int dispatch(const char *name, bool proxy, int argc, char **argv, struct global_opts *g)
{
	void (*usage)(void) = proxy ? usage_proxy : usage_pipe;

	if (argc < 2) {
		fprintf(stderr, "lmig %s: missing 'send' or 'recv' (see 'lmig %s --help')\n", name, name);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage();
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "send"))
		return do_send(proxy ? "proxy send" : "pipe send", proxy, argc - 1, argv + 1, g);
	if (!strcmp(argv[1], "recv"))
		return do_recv(proxy ? "proxy recv" : "pipe recv", proxy, argc - 1, argv + 1, g);
	fprintf(stderr, "lmig %s: '%s' is not 'send' or 'recv' (see 'lmig %s --help')\n", name,
		argv[1], name);
	return EXIT_USAGE;
}

int cmd_pipe(int argc, char **argv, struct global_opts *g)
{
	return dispatch("pipe", false, argc, argv, g);
}

int cmd_proxy(int argc, char **argv, struct global_opts *g)
{
	return dispatch("proxy", true, argc, argv, g);
}

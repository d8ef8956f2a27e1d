// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig proxy send|recv`: the connections of one QEMU migration (the main
 * channel and any multifd channels) carried one stream each (cmd_stream.c).
 */
#include <stdio.h>

#include <lmig/wire.h>

#include "cli/cmd_stream.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "stream/resume_buf.h"
#include "stream/stream.h"

#define OPTH_RESUME \
	"      --resume-timeout S  how long a broken channel between the proxies has\n" \
	"                          to come back (default 30; 0: off, a break fails)\n" \
	"      --resume-buffer SIZE  what is kept for a replay, a channel a direction\n" \
	"                          (512KiB..4MiB, default 4MiB; sending waits when full)\n"

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
	       "keeps running.  A reset of QEMU's own connection fails the migration.\n"
	       "Each connection is carried both ways with an 'lmig proxy recv' of this\n"
	       "version: QEMU's return path (return-path, postcopy-ram, postcopy-preempt).\n"
	       "A channel to the 'lmig proxy recv' that breaks (reset, error) is connected\n"
	       "again and what it lost is sent again, unseen by QEMU, for --resume-timeout.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen ADDR       unix:PATH (a stale socket file is replaced) or\n"
	       "                          tcp:HOST:PORT, where QEMU connects\n"
	       "  -t, --to HOST:PORT      the 'lmig proxy recv'\n"
	       OPTH_CHANNELS_STREAM
	       "  -z, --compress MODE     auto (default), lz4, none (see 'lmig pipe send')\n"
	       OPTH_BANDWIDTH_STREAM
	       "  -n, --streams N         the migration has exactly N connections\n"
	       "      --grace-ms MS       without --streams: wait this long for another\n"
	       "                          connection once all ended (default 500)\n"
	       "      --zerocopy MODE     auto, on, off (see 'lmig pipe send')\n"
	       OPTH_TIMEOUT_STREAM_SEND
	       "      --accept-timeout S  give up if QEMU does not connect within S seconds\n"
	       "                          (default: wait forever)\n"
	       "      --ready-fd FD       once listening and connected to the receiver,\n"
	       "                          write the port (tcp) or path (unix) and a newline\n"
	       "                          to FD, then close it\n"
	       OPTH_RESUME
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       OPTH_CONVERGE
	       OPTH_JSON_STDOUT
	       OPTH_JSON_FD
	       OPTH_HELP
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
	       "What the destination QEMU writes on a connection goes back to the source\n"
	       "QEMU's (its return path); each direction ends on its own.  A channel from\n"
	       "the 'lmig proxy send' that breaks is awaited for --resume-timeout; only a\n"
	       "reconnect that proves it belongs to this session takes its place.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen HOST:PORT  where the 'lmig proxy send' connects\n"
	       "  -t, --to ADDR           unix:PATH or tcp:HOST:PORT of the destination QEMU\n"
	       "      --ready-fd FD       write the listening port and a newline to FD\n"
	       "      --accept-timeout S  give up if no sender connects within S seconds\n"
	       "      --timeout S         handshake and connect limit, and from the first\n"
	       "                          frame on the longest time without a byte written\n"
	       "                          to QEMU (default 10)\n"
	       OPTH_MAX_PENDING
	       OPTH_RESUME
	       CMD_TLS_HELP
	       OPTH_JSON_STDOUT
	       OPTH_JSON_FD
	       OPTH_HELP
	       "\n"
	       "Exit status: 0 every stream delivered and verified, 1 failed, 2 bad usage.\n");
}

void usage_proxy(void)
{
	usage_proxy_send();
	printf("\n");
	usage_proxy_recv();
}

/* --resume-timeout S (0: off) and --resume-buffer SIZE, into *ms and *buf. */
static int resume_opt(const char *who, int opt, const char *arg, int *ms, uint64_t *buf)
{
	unsigned long v;

	if (opt == STREAM_OPT_RESUME_TIMEOUT) {
		if (opts_uint(who, "--resume-timeout", arg, 0, 86400, &v))
			return EXIT_USAGE;
		*ms = (int)v * 1000;
		return EXIT_OK;
	}
	if (opt != STREAM_OPT_RESUME_BUFFER)
		return OPT_NOT_OWN;
	if (parse_bytes("--resume-buffer", arg, buf))
		return usage_error(who, "%s", lmig_errmsg());
	if (*buf < RESUME_BUF_MIN || *buf > RESUME_BUF_MAX)
		return usage_error(who, "--resume-buffer: '%s' is outside 512KiB..4MiB", arg);
	return EXIT_OK;
}

static int proxy_send_opt(int opt, const char *arg, void *ctx)
{
	struct stream_send_opts *o = ctx;
	unsigned long v;

	switch (opt) {
	case STREAM_OPT_RESUME_TIMEOUT:
	case STREAM_OPT_RESUME_BUFFER:
		return resume_opt("proxy send", opt, arg, &o->resume_timeout_ms, &o->resume_buf);
	case 'n':
		if (opts_uint("proxy send", "--streams", arg, 1, LMIG_STREAM_MAX, &v))
			return EXIT_USAGE;
		o->streams = v;
		return EXIT_OK;
	case STREAM_OPT_GRACE:
		if (opts_uint("proxy send", "--grace-ms", arg, 1, 3600000, &v))
			return EXIT_USAGE;
		o->grace_ms = v;
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

static int proxy_recv_opt(int opt, const char *arg, void *ctx)
{
	struct stream_recv_opts *o = ctx;

	return resume_opt("proxy recv", opt, arg, &o->resume_timeout_ms, &o->resume_buf);
}

int cmd_proxy(int argc, char **argv, struct global_opts *g)
{
	static const struct stream_cmd sc = {
		"proxy", true, usage_proxy, usage_proxy_send, usage_proxy_recv,
		proxy_send_opt, proxy_recv_opt,
	};

	return stream_cmd_run(&sc, argc, argv, g);
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig pipe send|recv`: QEMU's exec: migration stream, stdin of the
 * source side carried to stdout of the destination side (cmd_stream.c).
 */
#include <stdio.h>

#include <lmig/wire.h>

#include "cli/cmd_stream.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "stream/stream.h"

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
	       OPTH_CHANNELS_STREAM
	       OPTH_COMPRESS_STREAM
	       OPTH_BANDWIDTH_STREAM
	       OPTH_ZEROCOPY
	       OPTH_TIMEOUT_STREAM_SEND
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       OPTH_CONVERGE
	       OPTH_JSON_STDERR
	       OPTH_JSON_FD
	       OPTH_HELP
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
	       "One way only: a destination QEMU that writes to stdin (return-path or\n"
	       "postcopy on) fails the migration at once; use 'lmig proxy' for those.\n"
	       "\n"
	       "Options:\n"
	       "  -l, --listen HOST:PORT  where to listen (':PORT' for all addresses; port 0\n"
	       "                          picks a free one, see --ready-fd)\n"
	       "      --ready-fd FD       write the listening port and a newline to FD, then\n"
	       "                          close it\n"
	       OPTH_ACCEPT_TIMEOUT
	       "      --timeout S         handshake limit, and from the first frame on the\n"
	       "                          longest time without a byte written to stdout\n"
	       "                          (default 10)\n"
	       OPTH_MAX_PENDING
	       CMD_TLS_HELP
	       OPTH_JSON_STDERR
	       OPTH_JSON_FD
	       OPTH_HELP
	       "\n"
	       "Exit status: 0 the whole stream written and verified, 1 failed, 2 bad usage.\n");
}

void usage_pipe(void)
{
	usage_pipe_send();
	printf("\n");
	usage_pipe_recv();
}

/* The proxy's options, refused by name: a pipe is one stream on stdin/stdout. */
static int pipe_send_opt(int opt, const char *arg, void *ctx)
{
	switch (opt) {
	case OPT_LISTEN:
		return usage_error("pipe send", "unknown option '--listen' (the stream is stdin)");
	case 'n':
		return usage_error("pipe send", "unknown option '--streams' (a pipe is one stream)");
	case STREAM_OPT_GRACE:
		return usage_error("pipe send", "unknown option '--grace-ms' (a pipe is one stream)");
	case STREAM_OPT_RESUME_TIMEOUT:
	case STREAM_OPT_RESUME_BUFFER:
		return usage_error("pipe send", "unknown option '--resume-%s' (a pipe cannot resume: use 'lmig proxy')",
				   opt == STREAM_OPT_RESUME_TIMEOUT ? "timeout" : "buffer");
	case OPT_ACCEPT_TIMEOUT:
		return usage_error("pipe send", "unknown option '--accept-timeout'");
	case OPT_READY_FD:
		return usage_error("pipe send", "unknown option '--ready-fd'");
	}
	return OPT_NOT_OWN;
}

static int pipe_recv_opt(int opt, const char *arg, void *ctx)
{
	if (opt == OPT_TO)
		return usage_error("pipe recv", "unknown option '--to' (the stream goes to stdout)");
	if (opt == STREAM_OPT_RESUME_TIMEOUT || opt == STREAM_OPT_RESUME_BUFFER)
		return usage_error("pipe recv", "unknown option '--resume-%s' (a pipe cannot resume: use 'lmig proxy')",
				   opt == STREAM_OPT_RESUME_TIMEOUT ? "timeout" : "buffer");
	return OPT_NOT_OWN;
}

int cmd_pipe(int argc, char **argv, struct global_opts *g)
{
	static const struct stream_cmd sc = {
		"pipe", false, usage_pipe, usage_pipe_send, usage_pipe_recv,
		pipe_send_opt, pipe_recv_opt,
	};

	return stream_cmd_run(&sc, argc, argv, g);
}

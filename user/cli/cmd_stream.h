/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What `lmig pipe` and `lmig proxy` share (cmd_stream.c): the two sides'
 * options and checks, and the send|recv dispatch.  Each command brings
 * its help and the options only it takes or refuses.
 */
#ifndef LMIG_CLI_CMD_STREAM_H
#define LMIG_CLI_CMD_STREAM_H

#include <stdbool.h>

#include "cli/cmd.h"

struct stream_cmd {
	const char *name;		/* "pipe" or "proxy" */
	bool proxy;			/* the streams are connections, not stdin/stdout */
	void (*usage)(void);		/* both sides */
	void (*usage_send)(void);
	void (*usage_recv)(void);
	/*
	 * The command's own options of each side (see struct cli_parse);
	 * ctx is the struct stream_send_opts or stream_recv_opts.
	 */
	int (*send_opt)(int opt, const char *arg, void *ctx);
	int (*recv_opt)(int opt, const char *arg, void *ctx);
};

/* Options only one of the commands takes (the other refuses them by name). */
enum { STREAM_OPT_GRACE = 600, STREAM_OPT_RESUME_TIMEOUT, STREAM_OPT_RESUME_BUFFER };

/* `lmig NAME send|recv ...`: the exit code. */
int stream_cmd_run(const struct stream_cmd *sc, int argc, char **argv, struct global_opts *g);

#endif

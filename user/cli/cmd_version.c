// SPDX-License-Identifier: GPL-2.0-only
#include <getopt.h>
#include <liburing.h>
#include <stdio.h>
#include <sys/utsname.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "lib/json.h"

void usage_version(void)
{
	printf("Usage: lmig version [-j|--json]\n"
	       "\n"
	       "Print the lmig version, the wire protocol version and which io_uring\n"
	       "features this kernel offers to the transfer engine.\n"
	       "\n"
	       OPTH_JSON_STDOUT
	       OPTH_HELP);
}

int cmd_version(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	struct io_uring_probe *probe = io_uring_get_probe();
	bool zc = false, uring = probe != NULL;
	struct utsname u;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (opt == 'j')
			g->json = true;
		else if (opt == 'h')
			return usage_version(), EXIT_OK;
		else
			return usage_error("version", "bad option");
	}
	if (probe) {
		zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
		io_uring_free_probe(probe);
	}
	uname(&u);
	if (g->json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "version", LMIG_VERSION);
		json_u64(&j, "protocol", LMIG_WIRE_VERSION);
		json_str(&j, "kernel", u.release);
		json_bool(&j, "io_uring", uring);
		json_bool(&j, "send_zc", zc);
		json_end(&j, stdout);
	} else {
		printf("lmig %s, protocol %u\n", LMIG_VERSION, LMIG_WIRE_VERSION);
		printf("kernel %s: io_uring %s, SEND_ZC %s\n", u.release, uring ? "yes" : "no",
		       zc ? "yes" : "no");
	}
	return EXIT_OK;
}

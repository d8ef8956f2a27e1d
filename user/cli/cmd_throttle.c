// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig throttle --restore: undo the CPU and disk limits of a live migration whose
 * lmig died before it could (SIGKILL, a crash), from the state files it
 * wrote under /run/lmig before it changed anything.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cmd.h"
#include "lib/err.h"
#include "lib/json.h"
#include "host/throttle.h"

void usage_throttle(void)
{
	printf("Usage: lmig throttle --restore [--all] [--json]\n"
	       "\n"
	       "Put back the CPU and disk limits and cgroup placement that a live migration\n"
	       "('lmig send --throttle auto') changed, for every migration whose lmig is\n"
	       "no longer running (state files in %s).  'lmig send' does the same\n"
	       "by itself when it starts.\n"
	       "\n"
	       "  -r, --restore           restore (the only action so far)\n"
	       "  -a, --all               also files whose lmig still runs\n"
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 nothing left to restore, 1 a restore failed, 2 bad usage.\n",
	       THROTTLE_STATE_DIR);
}

int cmd_throttle(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "restore", no_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 } };
	bool restore = false, all = false;
	int opt, n;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":rajh", lo, NULL)) != -1) {
		switch (opt) {
		case 'r': restore = true; break;
		case 'a': all = true; break;
		case 'j': g->json = true; break;
		case 'h': usage_throttle(); return EXIT_OK;
		default: return usage_error("throttle", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("throttle", "unexpected argument '%s'", argv[optind]);
	if (!restore)
		return usage_error("throttle", "say what to do: --restore");
	n = throttle_restore_files(!all, !g->json);
	if (g->json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "status", n < 0 ? "failed" : "completed");
		if (n < 0)
			json_str(&j, "error", lmig_errmsg());
		json_i64(&j, "restored", n < 0 ? 0 : n);
		json_end(&j, stdout);
	} else if (n == 0) {
		printf("nothing to restore\n");
	}
	if (n < 0) {
		fprintf(stderr, "lmig throttle: %s\n", lmig_errmsg());
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

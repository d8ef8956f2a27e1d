// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig throttle --restore: undo the CPU and disk limits of a live migration whose
 * lmig died before it could (SIGKILL, a crash), from the state files it
 * wrote under /run/lmig before it changed anything.
 */
#include <stdio.h>

#include "cli/cmd.h"
#include "cli/options.h"
#include "cli/report.h"
#include "cli/report_throttle.h"
#include "lib/err.h"
#include "lib/json.h"
#include "host/throttle.h"

void usage_throttle(void)
{
	printf("Usage: lmig throttle --restore [--all] [--json]\n"
	       "\n"
	       "Put back the CPU and disk limits and cgroup placement that a live migration\n"
	       "('lmig send --throttle auto', 'lmig pipe|proxy send --qmp') changed, for\n"
	       "every migration whose lmig is no longer running (state files in %s).\n"
	       "'lmig send' and 'lmig pipe|proxy send --qmp' do the same by themselves\n"
	       "when they start.  Per-vCPU cgroups (libvirt's vcpuN) that were\n"
	       "limited in place get back the cpu.max found there.\n"
	       "\n"
	       "  -r, --restore           restore (the only action so far)\n"
	       "  -a, --all               also files whose lmig still runs\n"
	       "  -j, --json              one JSON object with the result on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 nothing left to restore, 1 a restore failed, 2 bad usage.\n",
	       THROTTLE_STATE_DIR);
}

struct throttle_args {
	bool restore, all;
	unsigned int vcgs;	/* per-vCPU cgroups restored, for --json */
};

static void count_restored(void *ctx, const struct throttle_restored *r)
{
	struct throttle_args *a = ctx;

	if (r->kind == THROTTLE_KIND_VCPU_CGROUPS)
		a->vcgs += r->ncg;
}

static int throttle_opt(int opt, const char *arg, void *ctx)
{
	struct throttle_args *a = ctx;

	switch (opt) {
	case 'r': a->restore = true; return EXIT_OK;
	case 'a': a->all = true; return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

int cmd_throttle(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "restore", no_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'a' },
		OPTE_JSON,
		OPTE_HELP,
		OPTE_END };
	struct throttle_args a = { 0 };
	const struct cli_parse p = { "throttle", ":rajh", lo, usage_throttle, throttle_opt, &a };
	struct cli_opts c;
	int n;

	opts_init(&c);
	n = opts_parse(&p, &c, g, argc, argv);
	if (n != OPTS_RUN)
		return n;
	if (!a.restore)
		return usage_error("throttle", "say what to do: --restore");
	n = throttle_restore_files(!a.all, g->json ? count_restored : cli_throttle_restored, &a);
	if (g->json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "status", n < 0 ? "failed" : "completed");
		if (n < 0)
			json_str(&j, "error", lmig_errmsg());
		json_i64(&j, "restored", n < 0 ? 0 : n);
		json_i64(&j, "vcpu_cgroups", a.vcgs);
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

// SPDX-License-Identifier: GPL-2.0-only
/* lmig: one binary, a table of subcommands (like ip, bpftool, wg). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "lib/err.h"

const struct cmd lmig_cmds[] = {
	{ "send",    cmd_send,    "migrate a memory image to a receiver", usage_send },
	{ "recv",    cmd_recv,    "receive one migration and store the verified image", usage_recv },
	{ "pipe",    cmd_pipe,    "carry a QEMU migration stream on stdin/stdout (exec:)", usage_pipe },
	{ "proxy",   cmd_proxy,   "carry the connections of a QEMU migration (unix:, tcp:, multifd)", usage_proxy },
	{ "qemu",    cmd_qemu,    "migrate a QEMU guest: its shared RAM by lmig, its devices by QEMU", usage_qemu },
	{ "dirty",   cmd_dirty,   "write a shared memory object at a steady rate (a test workload)", usage_dirty },
	{ "dirtyrate", cmd_dirtyrate, "measure how fast memory is being written", usage_dirtyrate },
	{ "estimate", cmd_estimate, "predict a live migration's time, rounds and downtime", usage_estimate },
	{ "stat",    cmd_stat,    "page faults, guest exits and steal of a process (eBPF)", usage_stat },
	{ "top",     cmd_top,     "the busiest processes and VMs by those signals (eBPF)", usage_top },
	{ "throttle", cmd_throttle, "undo the CPU and disk limits of a live migration whose lmig died", usage_throttle },
	{ "version", cmd_version, "print version, protocol and kernel features", usage_version },
	{ "help",    cmd_help,    "show help for lmig or one command", usage_help },
	{ NULL },
};

const struct cmd *cmd_find(const char *name)
{
	for (const struct cmd *c = lmig_cmds; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lmig %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'lmig %s --help')\n", cmd);
	return EXIT_USAGE;
}

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: lmig [-j|--json] COMMAND [OPTIONS]\n"
		"\n"
		"Live migration toolkit for Linux/KVM hosts.\n"
		"\n"
		"Commands:\n");
	for (const struct cmd *c = lmig_cmds; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f,
		"\n"
		"Global options:\n"
		"  -j, --json     print one JSON object with the result on stdout\n"
		"  -h, --help     this help; 'lmig COMMAND --help' for a command\n"
		"  -V, --version  same as 'lmig version'\n");
}

int cmd_help(int argc, char **argv, struct global_opts *g)
{
	const struct cmd *c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_main(stdout);
		return EXIT_OK;
	}
	c = cmd_find(argv[1]);
	if (!c) {
		fprintf(stderr, "lmig help: unknown command '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	c->usage();
	return EXIT_OK;
}

void usage_help(void)
{
	printf("Usage: lmig help [COMMAND]\n");
}

int main(int argc, char **argv)
{
	struct global_opts g = { 0 };
	const struct cmd *c;
	int i = 1;

	/* A closed socket must be an error return, never a silent death. */
	signal(SIGPIPE, SIG_IGN);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
			g.json = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage_main(stdout);
			return EXIT_OK;
		} else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			return cmd_version(1, (char *[]){ "version", NULL }, &g);
		} else {
			fprintf(stderr, "lmig: unknown option '%s' (see 'lmig --help')\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	c = cmd_find(argv[i]);
	if (!c) {
		fprintf(stderr, "lmig: unknown command '%s' (see 'lmig help')\n", argv[i]);
		return EXIT_USAGE;
	}
	return c->run(argc - i, argv + i, &g);
}

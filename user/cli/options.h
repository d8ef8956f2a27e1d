/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The options several commands share: their getopt_long entries, their
 * values in struct cli_opts, their --help lines, and one parse loop that
 * gives a command its own options and answers everything else (the
 * shared options, --json, --help, and every usage error) the same way.
 */
#ifndef LMIG_CLI_OPTIONS_H
#define LMIG_CLI_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "chan/policy.h"
#include "cli/cmd.h"

/* Option codes: a short option's letter, or a code above 255. */
enum {
	OPT_TO = 't',
	OPT_LISTEN = 'l',
	OPT_CHANNELS = 'c',
	OPT_COMPRESS = 'z',
	OPT_BANDWIDTH = 'b',
	OPT_JSON = 'j',
	OPT_HELP = 'h',
	OPT_ZEROCOPY = 256,
	OPT_TIMEOUT,
	OPT_ACCEPT_TIMEOUT,
	OPT_READY_FD,
	OPT_JSON_FD,
	OPT_MAX_PENDING,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_TLS_DIR,
	OPT_PSK_FILE,
	OPT_FINGERPRINT,
	OPT_TLS_HOSTNAME,
	OPT_QMP,
	OPT_VM_PID,
	OPT_THROTTLE,
	OPT_THROTTLE_MAX,
	OPT_OWN = 512,		/* the first code for a command's own long options */
};

#define OPTE_TO		{ "to", required_argument, NULL, OPT_TO }
#define OPTE_LISTEN	{ "listen", required_argument, NULL, OPT_LISTEN }
#define OPTE_TIMEOUT	{ "timeout", required_argument, NULL, OPT_TIMEOUT }
#define OPTE_ACCEPT_TIMEOUT { "accept-timeout", required_argument, NULL, OPT_ACCEPT_TIMEOUT }
#define OPTE_READY_FD	{ "ready-fd", required_argument, NULL, OPT_READY_FD }
#define OPTE_MAX_PENDING { "max-pending", required_argument, NULL, OPT_MAX_PENDING }
#define OPTE_JSON	{ "json", no_argument, NULL, OPT_JSON }
#define OPTE_JSON_FD	{ "json-fd", required_argument, NULL, OPT_JSON_FD }
#define OPTE_HELP	{ "help", no_argument, NULL, OPT_HELP }
#define OPTE_END	{ NULL, 0, NULL, 0 }
/* How the sending commands use the wire. */
#define OPTE_WIRE \
	{ "channels", required_argument, NULL, OPT_CHANNELS }, \
	{ "compress", required_argument, NULL, OPT_COMPRESS }, \
	{ "bandwidth", required_argument, NULL, OPT_BANDWIDTH }, \
	{ "zerocopy", required_argument, NULL, OPT_ZEROCOPY }
#define OPTE_PROGRESS \
	{ "progress", no_argument, NULL, OPT_PROGRESS }, \
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS }
/* Both sides; the sending side adds OPTE_TLS_HOSTNAME. */
#define OPTE_TLS \
	{ "tls-dir", required_argument, NULL, OPT_TLS_DIR }, \
	{ "psk-file", required_argument, NULL, OPT_PSK_FILE }, \
	{ "peer-fingerprint", required_argument, NULL, OPT_FINGERPRINT }
#define OPTE_TLS_HOSTNAME { "tls-hostname", required_argument, NULL, OPT_TLS_HOSTNAME }
/* The convergence of the QEMU guest whose stream is carried (pipe, proxy send). */
#define OPTE_CONVERGE \
	{ "qmp", required_argument, NULL, OPT_QMP }, \
	{ "vm-pid", required_argument, NULL, OPT_VM_PID }, \
	{ "throttle", required_argument, NULL, OPT_THROTTLE }, \
	{ "throttle-max", required_argument, NULL, OPT_THROTTLE_MAX }

/* The values of the shared options; opts_init() gives the defaults. */
struct cli_opts {
	const char *to, *listen;
	unsigned int channels;		/* online CPUs, at most 8 */
	enum compress_mode compress;
	uint64_t bandwidth;		/* bytes/s, 0 = no cap */
	int zerocopy;			/* -1 auto, 0 off, 1 on */
	int timeout_ms;
	bool timeout_set;		/* --timeout given */
	int accept_timeout_ms;		/* -1 = forever */
	int ready_fd;			/* -1 = none */
	int json_fd;			/* -1 = the command's own default */
	uint64_t max_pending;
	int progress;			/* -1 = cmd_progress_default() decides */
	struct {
		const char *dir, *psk_file, *fingerprint, *hostname;
	} tls;
	struct {
		const char *qmp;	/* --qmp PATH */
		pid_t pid;		/* --vm-pid, 0 = none */
		int throttle;		/* --throttle: -1 not given, 0 off, 1 auto */
		unsigned int max_pct;	/* --throttle-max, 0: not given */
		const char *opt;	/* the last of --throttle* given, for "needs --qmp" */
	} vm;
};

void opts_init(struct cli_opts *c);

/* Returned by a command's own option parser for an option it does not take. */
#define OPT_NOT_OWN	(-1)
/* Returned by opts_parse() when the command is to run. */
#define OPTS_RUN	(-1)

struct cli_parse {
	const char *cmd;		/* names the command in every error */
	const char *shortopts;		/* getopt_long's, starting with ':' */
	const struct option *longopts;
	void (*usage)(void);		/* --help */
	/*
	 * The command's own options, asked first (so that it may refuse a
	 * shared one with a reason): EXIT_OK, EXIT_USAGE after the one-line
	 * error, or OPT_NOT_OWN.  NULL: it has none.
	 */
	int (*own)(int opt, const char *arg, void *ctx);
	void *ctx;
};

/*
 * Parse argv (argv[0] is the command) into c and the command's own values:
 * OPTS_RUN, or the exit code to return now (EXIT_OK after --help,
 * EXIT_USAGE after the one-line error).  --json and --json-fd set g->json.
 */
int opts_parse(const struct cli_parse *p, struct cli_opts *c, struct global_opts *g,
	       int argc, char **argv);

/* Parsers for a command's own values: EXIT_OK, or EXIT_USAGE after the error. */
int opts_uint(const char *cmd, const char *opt, const char *arg, unsigned long min,
	      unsigned long max, unsigned long *v);
int opts_secs(const char *cmd, const char *opt, const char *arg, int *ms);
int opts_fd(const char *cmd, const char *opt, const char *arg, int *fd);

/* arg's index in words (NULL-terminated), or -1. */
int opts_word(const char *arg, const char *const *words);

/* "missing --to HOST:PORT" unless c->to, then its address. */
int opts_check_to(const char *cmd, const struct cli_opts *c);
/* "missing --listen HOST:PORT" unless c->listen, then its address. */
int opts_check_listen(const char *cmd, const struct cli_opts *c);
/* c->json_fd must be open. */
int opts_check_json_fd(const char *cmd, const struct cli_opts *c);
struct cvm_conf;
/*
 * The convergence options into v: false (nothing to follow) or true, or
 * EXIT_USAGE after the error in *ret (--vm-pid without --qmp, --throttle
 * without either).
 */
bool opts_converge(const char *cmd, const struct cli_opts *c, struct cvm_conf *v, int *ret);
struct tls_conf;
/* The TLS options into t (see cmd_tls_setup()). */
int opts_tls(const char *cmd, const struct cli_opts *c, struct tls_conf *t, bool server);

/* --help lines of the shared options, where the commands word them alike. */
#define OPTH_CHANNELS_STREAM \
	"  -c, --channels N        TCP connections to spread blocks over (1..%u;\n" \
	"                          default: online CPUs, at most 8)\n"
#define OPTH_COMPRESS \
	"  -z, --compress MODE     auto (default): lz4 only while the network is the\n" \
	"                          bottleneck, zstd while it is even with lz4; lz4,\n" \
	"                          zstd: always (zstd where the receiver takes it,\n" \
	"                          lz4 otherwise); none: never\n"
/* lmig pipe and proxy carry lz4 blocks only. */
#define OPTH_COMPRESS_STREAM \
	"  -z, --compress MODE     auto (default): lz4 only while the network is the\n" \
	"                          bottleneck; lz4: always; none: never\n"
#define OPTH_BANDWIDTH_STREAM \
	"  -b, --bandwidth RATE    cap the rate on the wire: 125M, 1G, 1Gbit, 64Mi\n"
#define OPTH_ZEROCOPY \
	"      --zerocopy MODE     auto (default: on unless the receiver is on a\n" \
	"                          loopback address), on, off: IORING_OP_SEND_ZC\n"
#define OPTH_TIMEOUT_STREAM_SEND \
	"      --timeout S         connect and handshake limit, and the longest wait\n" \
	"                          for the receiver once a stream's window is full\n" \
	"                          or the verdict is due (default 10)\n"
#define OPTH_ACCEPT_TIMEOUT \
	"      --accept-timeout S  give up if no sender connects within S seconds\n" \
	"                          (default: wait forever)\n"
#define OPTH_MAX_PENDING \
	"      --max-pending SIZE  most memory for blocks received and not yet written\n" \
	"                          (out of order, or waiting for QEMU to read); more\n" \
	"                          is an error (default 256Mi, at least 32Mi, which\n" \
	"                          is also the limit of each stream)\n"
#define OPTH_PROGRESS \
	"      --progress          progress on stderr (default when it is a terminal)\n" \
	"      --no-progress       no progress line\n"
#define OPTH_JSON_STDOUT \
	"  -j, --json              one JSON object with the result on stdout\n"
#define OPTH_JSON_STDERR \
	"  -j, --json              one JSON object with the result on stderr\n"
#define OPTH_JSON_FD \
	"      --json-fd FD        ... on descriptor FD instead (implies --json)\n"
#define OPTH_CONVERGE \
	"      --qmp PATH          the source QEMU's QMP socket (one more -qmp\n" \
	"                          unix:PATH,server=on,wait=off): follow its migration\n" \
	"                          and, when it does not converge within QEMU's\n" \
	"                          downtime-limit, limit the CPU of the vCPU threads\n" \
	"                          that dirty its memory (cgroup v2 cpu.max or v1 CFS\n" \
	"                          quota), put back as soon as the migration ends,\n" \
	"                          also if lmig is killed ('lmig throttle --restore'\n" \
	"                          otherwise)\n" \
	"      --vm-pid PID        QEMU's process, checked against the QMP socket's;\n" \
	"                          alone it is refused: without QMP lmig cannot tell\n" \
	"                          whether the migration converges\n" \
	"      --throttle auto|off with --qmp: limit the vCPU threads when needed\n" \
	"                          (default auto), or only follow and report\n" \
	"      --throttle-max PCT  take at most PCT %% of their CPU (1..99); not given:\n" \
	"                          90, and below where a limit there does not work\n"
#define OPTH_HELP \
	"  -h, --help              this help\n"

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/* The subcommand table: one file per command. */
#ifndef LMIG_CMD_H
#define LMIG_CMD_H

#include <stdbool.h>

struct global_opts {
	bool json;
};

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv, struct global_opts *g);
	const char *summary;
	void (*usage)(void);
};

/* Exit codes. */
#define EXIT_OK		0
#define EXIT_FAIL	1	/* the operation failed */
#define EXIT_USAGE	2	/* bad command line */
#define EXIT_UNKNOWN	3	/* send: the receiver was told to commit; whether it did is unknown */

int cmd_send(int argc, char **argv, struct global_opts *g);
int cmd_recv(int argc, char **argv, struct global_opts *g);
int cmd_dirty(int argc, char **argv, struct global_opts *g);
int cmd_dirtyrate(int argc, char **argv, struct global_opts *g);
int cmd_estimate(int argc, char **argv, struct global_opts *g);
int cmd_stat(int argc, char **argv, struct global_opts *g);
int cmd_top(int argc, char **argv, struct global_opts *g);
int cmd_version(int argc, char **argv, struct global_opts *g);
int cmd_throttle(int argc, char **argv, struct global_opts *g);
void usage_throttle(void);
int cmd_pipe(int argc, char **argv, struct global_opts *g);
int cmd_proxy(int argc, char **argv, struct global_opts *g);
void usage_pipe(void);
void usage_proxy(void);
int cmd_qemu(int argc, char **argv, struct global_opts *g);
void usage_qemu(void);
int cmd_help(int argc, char **argv, struct global_opts *g);
void usage_send(void);
void usage_recv(void);
void usage_dirty(void);
void usage_dirtyrate(void);
void usage_estimate(void);
void usage_stat(void);
void usage_top(void);
void usage_version(void);
void usage_help(void);

struct image_stats;
struct tls_conf;
/*
 * --tls-dir, --psk-file, --peer-fingerprint into c (server: the receiving
 * side); prints the one-line error and returns EXIT_USAGE when a file or
 * value is bad, else EXIT_OK.  The sending side with --tls-dir checks the
 * receiver's certificate for hostname (--tls-hostname), or else for the
 * host of its HOST:PORT to; the receiving side passes NULL for both.
 */
int cmd_tls_setup(const char *cmd, struct tls_conf *c, bool server, const char *dir,
		  const char *psk_file, const char *fingerprint, const char *hostname,
		  const char *to);
/* The --help lines of those options. */
#define CMD_TLS_HELP \
	"      --tls-dir DIR       TLS 1.3 with certificates: DIR holds ca-cert.pem and\n" \
	"                          server-{cert,key}.pem (receiving side) or\n" \
	"                          client-{cert,key}.pem (sending side), as QEMU's and\n" \
	"                          libvirt's migration TLS directories; both sides must\n" \
	"                          present a certificate signed by the CA; with\n" \
	"                          DIR/ca-crl.pem, none revoked by it\n" \
	"      --peer-fingerprint SHA256\n" \
	"                          with --tls-dir: also require the peer's certificate\n" \
	"                          to have this SHA-256 fingerprint (hex, colons allowed)\n" \
	"      --psk-file FILE     TLS 1.3 with a pre-shared key: one line\n" \
	"                          IDENTITY:HEXKEY (16-64 bytes), mode 600, the same\n" \
	"                          file on both sides\n"
/* The sending side's extra line. */
#define CMD_TLS_HOSTNAME_HELP \
	"      --tls-hostname NAME with --tls-dir: the DNS name or IP address the\n" \
	"                          receiver's certificate must carry (default: the\n" \
	"                          host of --to)\n"
/* Shared by send and recv (cmd_common.c). */
int cmd_check_address(const char *cmd, const char *opt, const char *addr);
bool cmd_progress_default(int progress, const struct global_opts *g);
/* Print the report and, on failure, the one-line error; returns the exit code. */
int cmd_finish(const char *cmd, int ret, const struct image_stats *st, const char *compress,
	       bool progress, const struct global_opts *g);

extern const struct cmd lmig_cmds[];
const struct cmd *cmd_find(const char *name);
/* Print "lmig CMD: MESSAGE" for a usage error and return EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

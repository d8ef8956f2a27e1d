/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `lmig qemu send|recv`: lmig moves a QEMU guest's shared RAM with its
 * own pre-copy while QEMU moves only the devices (x-ignore-shared).
 * cmd_qemu.c parses and words; cmd_qemu_send.c and cmd_qemu_recv.c run
 * the two sides.
 */
#ifndef LMIG_CMD_QEMU_H
#define LMIG_CMD_QEMU_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cmd.h"
#include "host/qmp_memdev.h"
#include "image/image.h"

struct tls_conf;

struct qemu_args {
	const char *qmp;		/* --qmp */
	const char *to, *listen;
	int timeout_ms;			/* stalls and QEMU's steps */
	int live_timeout_ms;		/* pre-copy limit (send --timeout), 0: none */
	int accept_timeout_ms;		/* recv */
	int ready_fd;			/* recv */
	struct send_opts so;		/* the transport and live options of every block */
	const struct tls_conf *tls;
	bool progress;
	struct global_opts *g;
};

/* What one side did, for the report. */
struct qemu_result {
	bool send;
	unsigned int nblocks;
	unsigned int nstarted;		/* send: the blocks' sessions started */
	struct qmem_block b[QMEM_MAX];
	struct image_stats st[QMEM_MAX];
	int block_ret[QMEM_MAX];	/* image_send/image_recv's */
	const char *stage;		/* where it failed (a word of cmd_qemu.c), NULL: it did not */
	const char *source;		/* send: "running", "resumed", "migrated", "paused",
					 * "unknown" (QEMU neither completed nor stayed paused) */
	char qemu_status[32];		/* QEMU's migration at the end */
	int64_t qemu_downtime_ms;	/* QEMU's own, -1 not given */
	int64_t qemu_total_ms;
	double pause_ms;		/* migrate -> pre-switchover */
	double switch_ms;		/* pre-switchover -> completed (the guest stopped) */
	/* now_s() times: pre-switchover seen, migrate-continue answered, completed seen (0: not) */
	double t_paused, t_continued, t_completed;
	double t_start, t_ram;		/* send: it began; the page sessions started */
	uint64_t dev_bytes;		/* QEMU's stream relayed */
	double total_s;
	bool unknown;			/* a block's commit outcome is unknown */
	char dst_detail[200];		/* the destination's words on failure */
};

int qemu_send_run(const struct qemu_args *a, struct qemu_result *r);
int qemu_recv_run(const struct qemu_args *a, struct qemu_result *r);

/* The one-line words of qmem_list()'s answer, for the command's error. */
void qemu_memdev_error(const char *cmd, enum qmem_why why, const char *detail);

/* "HOST:PORT" -> "HOST:port" into out; 0 or -1. */
int qemu_host_port(const char *hostport, unsigned int port, char *out, size_t len);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A client of QEMU's QMP monitor (a unix socket, "-qmp unix:PATH,server=on,
 * wait=off"; QEMU takes several, so one can sit beside libvirt's): what
 * lmig asks a running QEMU while it carries or plans its migration.
 *
 *	struct qmp q;
 *	struct qmp_migrate m;
 *	if (qmp_open(&q, "/run/vm.qmp", 5000))
 *		fail(lmig_errmsg());
 *	if (!qmp_query_migrate(&q, &m) && m.has_ram)
 *		use(m.remaining, m.dirty_pages_rate * m.page_size, ...);
 *	qmp_close(&q);
 *
 * Replies are parsed with a bounded JSON reader (lib/json_read.h): a reply
 * too long, too deep or malformed is an error, never a crash.  Events that
 * arrive while a reply is awaited are skipped (the last one's name kept).
 * Errors go through lmig_err(): "QMP PATH: ...", one line, QEMU's own
 * "desc" quoted when it sent an error.  Not thread-safe: one struct per
 * thread.
 */
#ifndef LMIG_QMP_H
#define LMIG_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define QMP_REPLY_MAX	(256 * 1024)	/* a longer reply is refused */
#define QMP_VCPUS_MAX	256

struct qmp {
	int fd;
	pid_t pid;		/* QEMU's, from the socket's SO_PEERCRED */
	int timeout_ms;		/* per command */
	char path[108];
	char last_event[64];
	unsigned int version[3];	/* QEMU's major, minor, micro (greeting) */
	char *buf;		/* QMP_REPLY_MAX + 1 */
	size_t len;		/* bytes held in buf, the reply handed out included */
	/* Private to qmp.c: the message at the front of buf being framed
	 * (how far it was scanned, its nesting, inside a string, after a
	 * backslash), the reply handed out (its bytes at the front, dropped
	 * at the next read), the id of the next command. */
	size_t scan, held;
	unsigned int depth;
	bool started, in_str, esc;
	uint64_t next_id;
};

/* query-migrate, the parts lmig uses; absent numbers are 0. */
struct qmp_migrate {
	char status[32];	/* "none", "setup", "active", "pre-switchover",
				 * "device", "completed", "failed", "cancelled", ... */
	bool has_ram;		/* the "ram" object was there */
	uint64_t total, remaining, transferred, duplicate, normal;	/* ram: bytes / pages */
	uint64_t dirty_pages_rate;	/* pages/s, from the last dirty sync */
	uint64_t dirty_sync_count;	/* completed passes over RAM, + 1 */
	uint64_t page_size;
	double mbps;			/* QEMU's own estimate of the link, Mbit/s */
	int64_t expected_downtime_ms;	/* -1: not given */
	int64_t downtime_ms;		/* after completion; -1 not given */
	int64_t total_time_ms;		/* -1 not given */
	int64_t cpu_throttle_percentage;	/* auto-converge's, -1 not given */
	char error_desc[200];		/* status failed: QEMU's reason */
};

struct qmp_vcpu {
	int index;		/* cpu-index */
	pid_t tid;		/* thread-id: the host thread running it */
};

struct qmp_params {
	int64_t downtime_limit_ms;	/* -1 not given */
	int64_t max_bandwidth;		/* bytes/s, -1 not given */
};

/* Connect, read the greeting, enter command mode.  0, or -1 with lmig_err(). */
int qmp_open(struct qmp *q, const char *path, int timeout_ms);
/* Close and free; safe after a failed qmp_open() and when called twice. */
void qmp_close(struct qmp *q);
/*
 * Run one command: execute NAME with ARGS (a JSON object text, or NULL)
 * and return its "return" value's JSON text in out (NUL-terminated,
 * truncated to len - 1 is an error).  0, or -1 with lmig_err() (QEMU's
 * error desc, a timeout, a closed socket).
 */
int qmp_exec(struct qmp *q, const char *name, const char *args, char *out, size_t len);
int qmp_query_migrate(struct qmp *q, struct qmp_migrate *m);
/* query-cpus-fast: up to max vCPUs into v; returns how many, or -1. */
int qmp_vcpus(struct qmp *q, struct qmp_vcpu *v, unsigned int max);
int qmp_params(struct qmp *q, struct qmp_params *p);
/*
 * calc-dirty-rate for `seconds` (1..60) then query-dirty-rate until it is
 * measured: the guest's dirty rate in MB/s (QEMU reports MiB/s; converted).
 * Needs QEMU >= 5.2.  0, or -1 with lmig_err().
 */
int qmp_dirty_rate(struct qmp *q, unsigned int seconds, double *mbps);
/* The accelerator: "kvm", "tcg", or "" if QEMU does not say (query-kvm). */
int qmp_accel(struct qmp *q, char *out, size_t len);

struct jr_doc;
/*
 * qmp_exec() with the reply parsed: d holds it (jr_free() it after a
 * success) and *ret the node of its "return" value.  0, or -1 with
 * lmig_err() (nothing to free).
 */
int qmp_exec_doc(struct qmp *q, const char *name, const char *args, struct jr_doc *d, int *ret);
/* query-status: the run state ("running", "paused", "postmigrate", "inmigrate", ...). */
int qmp_run_state(struct qmp *q, char *out, size_t len);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/* QEMU's migration steps for lmig qemu (qmp_mig.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "host/qmp.h"
#include "host/qmp_mig.h"

#define POLL_NS	(2 * 1000 * 1000)
/* Completed without its times yet: asked again this often, at most this many times. */
#define TIMES_WAIT_NS	(10 * 1000 * 1000)
#define TIMES_TRIES	20

static int set_caps(struct qmp *q, bool ignore_shared, bool pause)
{
	char args[256], out[64];

	snprintf(args, sizeof(args),
		 "{\"capabilities\": [{\"capability\": \"x-ignore-shared\", \"state\": %s},"
		 " {\"capability\": \"pause-before-switchover\", \"state\": %s}]}",
		 ignore_shared ? "true" : "false", pause ? "true" : "false");
	return qmp_exec(q, "migrate-set-capabilities", args, out, sizeof(out));
}

int qmig_caps(struct qmp *q, bool pause)
{
	return set_caps(q, true, pause);
}

int qmig_caps_off(struct qmp *q)
{
	return set_caps(q, false, false);
}

static int with_uri(struct qmp *q, const char *cmd, const char *uri)
{
	char args[300], out[64];

	if (strchr(uri, '"') || strchr(uri, '\\') || strlen(uri) > 250)
		return lmig_err("%s: unusable URI %s", cmd, uri);
	snprintf(args, sizeof(args), "{\"uri\": \"%s\"}", uri);
	return qmp_exec(q, cmd, args, out, sizeof(out));
}

int qmig_start(struct qmp *q, const char *uri)
{
	return with_uri(q, "migrate", uri);
}

int qmig_incoming(struct qmp *q, const char *uri)
{
	return with_uri(q, "migrate-incoming", uri);
}

static bool final(const char *s)
{
	return !strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

int qmig_wait(struct qmp *q, const char *want, int timeout_ms, struct qmp_migrate *m)
{
	double end = now_s() + timeout_ms / 1000.0;

	for (;;) {
		if (qmp_query_migrate(q, m))
			return -1;
		if (!strcmp(m->status, want) || final(m->status))
			break;
		if (now_s() > end)
			return lmig_err("QEMU's migration is still %s after %d s (waiting for %s)",
					m->status, timeout_ms / 1000, want);
		nanosleep(&(struct timespec){ .tv_nsec = POLL_NS }, NULL);
	}
	/*
	 * QEMU 7.2 can say "completed" a moment before it has set total-time
	 * and downtime, both 0 then (seen once under nested KVM): ask again,
	 * briefly, for the report's sake.  A destination's QEMU gives no
	 * total-time at all (-1): nothing to wait for.
	 */
	for (int i = 0; i < TIMES_TRIES && !strcmp(m->status, "completed") &&
			m->total_time_ms == 0; i++) {
		nanosleep(&(struct timespec){ .tv_nsec = TIMES_WAIT_NS }, NULL);
		if (qmp_query_migrate(q, m))
			return -1;
	}
	return 0;
}

int qmig_continue(struct qmp *q)
{
	char out[64];

	return qmp_exec(q, "migrate-continue", "{\"state\": \"pre-switchover\"}", out, sizeof(out));
}

int qmig_cancel(struct qmp *q, int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;
	struct qmp_migrate m;
	char out[64];

	if (qmp_exec(q, "migrate_cancel", NULL, out, sizeof(out)))
		return -1;
	for (;;) {
		if (qmp_query_migrate(q, &m))
			return -1;
		if (final(m.status) || !strcmp(m.status, "none")) {
			if (qmp_run_state(q, out, sizeof(out)))
				return -1;
			if (!strcmp(out, "running"))
				return 0;
		}
		if (now_s() > end)
			return lmig_err("the guest does not run %d s after migrate_cancel"
					" (migration %s)", timeout_ms / 1000, m.status);
		nanosleep(&(struct timespec){ .tv_nsec = POLL_NS }, NULL);
	}
}

int qmig_quit(struct qmp *q)
{
	char out[64];

	return qmp_exec(q, "quit", NULL, out, sizeof(out));
}

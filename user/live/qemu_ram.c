// SPDX-License-Identifier: GPL-2.0-only
/* lmig qemu send's shared pause: QEMU's migration to pre-switchover (qemu_ram.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "host/qmp.h"
#include "host/qmp_mig.h"
#include "live/qemu_ram.h"

/* Under p->mu: start QEMU's migration and wait for pre-switchover. */
static int pause_qemu(struct qram_pause *p)
{
	struct qmp_migrate m;
	char uri[128];

	if (qrelay_src_start(&p->relay, p->l, p->sock, p->wait_ms))
		return -1;
	snprintf(uri, sizeof(uri), "unix:%s", p->sock);
	p->t_migrate = now_s();
	p->migrating = true;
	if (qmig_start(p->q, uri))
		return -1;
	if (qmig_wait(p->q, "pre-switchover", p->wait_ms, &m))
		return -1;
	if (strcmp(m.status, "pre-switchover"))
		return lmig_err("QEMU's migration ended %s before pre-switchover%s%s", m.status,
				m.error_desc[0] ? ": " : "", m.error_desc);
	p->t_paused = now_s();
	return 0;
}

static int do_pause(void *ctx)
{
	struct qram_pause *p = ctx;
	int ret;

	pthread_mutex_lock(&p->mu);
	p->asked++;
	if (p->state == QRAM_PRECOPY && p->asked + p->gone == p->nblocks) {
		if (p->gone) {
			p->state = QRAM_FAILED;
			snprintf(p->why, sizeof(p->why), "another RAM block's migration failed");
		} else if (pause_qemu(p)) {
			p->state = QRAM_FAILED;
			snprintf(p->why, sizeof(p->why), "%s", lmig_errmsg());
		} else {
			p->state = QRAM_PAUSED;
		}
		pthread_cond_broadcast(&p->cv);
	}
	while (p->state == QRAM_PRECOPY)
		pthread_cond_wait(&p->cv, &p->mu);
	ret = p->state == QRAM_PAUSED ? 0 : -1;
	if (ret)
		lmig_err("%s", p->why[0] ? p->why : "QEMU's migration was cancelled");
	pthread_mutex_unlock(&p->mu);
	return ret;
}

/* Under p->mu. */
static int cancel_locked(struct qram_pause *p)
{
	int ret = 0;

	if (p->migrating && p->state != QRAM_CANCELLED) {
		ret = qmig_cancel(p->q, p->wait_ms);
		p->state = QRAM_CANCELLED;
		if (ret) {
			p->cancel_failed = true;
			snprintf(p->why, sizeof(p->why), "%s", lmig_errmsg());
		}
	} else if (p->state == QRAM_PRECOPY || p->state == QRAM_PAUSED) {
		p->state = QRAM_FAILED;
	}
	pthread_cond_broadcast(&p->cv);
	return ret;
}

static int do_resume(void *ctx)
{
	struct qram_pause *p = ctx;
	int ret;

	pthread_mutex_lock(&p->mu);
	ret = cancel_locked(p);
	pthread_mutex_unlock(&p->mu);
	return ret;
}

/*
 * A block's commit point is not the guest's: its destination QEMU runs
 * nothing before it has the devices, which the source QEMU sends only
 * after migrate-continue.  Until then a dead lmig's guard cancels and the
 * guest runs on here (qram_continue_point() ends that).
 */
static void commit_point(void *ctx)
{
	(void)ctx;
}

static void block_committed(void *ctx)
{
	struct qram_pause *p = ctx;

	pthread_mutex_lock(&p->mu);
	p->committed++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* A session still in its rounds gives up as soon as another one failed. */
static int abandoned(void *ctx)
{
	struct qram_pause *p = ctx;
	bool failed;

	pthread_mutex_lock(&p->mu);
	failed = p->state == QRAM_FAILED;
	pthread_mutex_unlock(&p->mu);
	return failed ? lmig_err("another RAM block's migration failed") : 0;
}

bool qram_wait_committed(struct qram_pause *p)
{
	bool all;

	pthread_mutex_lock(&p->mu);
	while (p->committed < p->nblocks && !p->gone)
		pthread_cond_wait(&p->cv, &p->mu);
	all = p->committed == p->nblocks;
	pthread_mutex_unlock(&p->mu);
	return all;
}

void qram_continue_point(struct qram_pause *p)
{
	guard_commit_point(&p->guard);
}

void qram_init(struct qram_pause *p, struct qmp *q, struct qlink *l, const char *sock,
	       unsigned int nblocks, int wait_ms)
{
	struct guard g = p->guard;	/* started before */

	memset(p, 0, sizeof(*p));
	p->guard = g;
	p->q = q;
	p->l = l;
	p->nblocks = nblocks;
	p->wait_ms = wait_ms;
	p->relay.lfd = p->relay.qfd = -1;
	snprintf(p->sock, sizeof(p->sock), "%s", sock);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->hook = (struct freeze_hook){ .name = "qemu", .pause = do_pause, .resume = do_resume,
					.commit_point = commit_point, .committed = block_committed,
					.abandoned = abandoned, .ctx = p };
}

bool qram_block_gone(struct qram_pause *p)
{
	bool first;

	pthread_mutex_lock(&p->mu);
	first = !p->gone++;
	if (p->state == QRAM_PRECOPY) {
		p->state = QRAM_FAILED;
		snprintf(p->why, sizeof(p->why), "another RAM block's migration failed");
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return first;
}

int qram_abort(struct qram_pause *p)
{
	int ret;

	pthread_mutex_lock(&p->mu);
	ret = cancel_locked(p) || p->cancel_failed ? -1 : 0;
	pthread_mutex_unlock(&p->mu);
	qrelay_stop(&p->relay);
	return ret;
}

void qram_destroy(struct qram_pause *p)
{
	qrelay_join(&p->relay);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

/* The guard's copy of what it needs (it runs in the forked process). */
static struct {
	char qmp[108];
	char sock[108];		/* the relay's socket, which a killed lmig leaves */
	int timeout_ms;
} guard_ctx;

static bool under_way(const char *s)
{
	return strcmp(s, "none") && strcmp(s, "completed") && strcmp(s, "failed") &&
	       strcmp(s, "cancelled");
}

/* In the guard, once lmig is gone and the limits are undone. */
static int guard_last(void *ctx, int kept_fd, bool committing)
{
	struct qmp q = { .fd = -1 };
	struct qmp_migrate m;
	int ret = 0;

	(void)ctx;
	(void)kept_fd;
	unlink(guard_ctx.sock);
	if (committing)
		return 0;	/* migrate-continue was sent: the devices may be there */
	if (qmp_open(&q, guard_ctx.qmp, guard_ctx.timeout_ms))
		return 1;
	if (qmp_query_migrate(&q, &m) == 0 && under_way(m.status))
		ret = qmig_cancel(&q, guard_ctx.timeout_ms) ? 1 : 0;
	if (qmp_query_migrate(&q, &m) == 0 && strcmp(m.status, "completed"))
		qmig_caps_off(&q);
	qmp_close(&q);
	return ret;
}

int qram_guard_start(struct qram_pause *p, pid_t qemu_pid, const char *qmp_path,
		     const char *sock, int timeout_ms)
{
	p->guard = (struct guard){ .fd = -1 };
	snprintf(guard_ctx.qmp, sizeof(guard_ctx.qmp), "%s", qmp_path);
	snprintf(guard_ctx.sock, sizeof(guard_ctx.sock), "%s", sock);
	guard_ctx.timeout_ms = timeout_ms;
	return guard_start(&p->guard, qemu_pid, -1, guard_last, NULL);
}

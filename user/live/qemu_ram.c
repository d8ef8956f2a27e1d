// SPDX-License-Identifier: GPL-2.0-only
/* lmig qemu send's shared pause: QEMU's migration to pre-switchover (qemu_ram.h). */
#include <stdio.h>
#include <string.h>

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
		if (ret)
			snprintf(p->why, sizeof(p->why), "%s", lmig_errmsg());
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

void qram_init(struct qram_pause *p, struct qmp *q, struct qlink *l, const char *sock,
	       unsigned int nblocks, int wait_ms)
{
	memset(p, 0, sizeof(*p));
	p->q = q;
	p->l = l;
	p->nblocks = nblocks;
	p->wait_ms = wait_ms;
	p->relay.lfd = p->relay.qfd = -1;
	snprintf(p->sock, sizeof(p->sock), "%s", sock);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->hook = (struct freeze_hook){ .name = "qemu", .pause = do_pause, .resume = do_resume,
					.ctx = p };
}

void qram_block_gone(struct qram_pause *p)
{
	pthread_mutex_lock(&p->mu);
	p->gone++;
	if (p->state == QRAM_PRECOPY) {
		p->state = QRAM_FAILED;
		snprintf(p->why, sizeof(p->why), "another RAM block's migration failed");
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int qram_abort(struct qram_pause *p)
{
	int ret;

	pthread_mutex_lock(&p->mu);
	ret = cancel_locked(p);
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

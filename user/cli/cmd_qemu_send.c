// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig qemu send`: the source side.  Finds the guest's shared RAM over
 * QMP, opens the control connection to `lmig qemu recv`, runs one live
 * page session (image_send) per RAM block side by side, all sharing one
 * pause: QEMU's own migration up to pre-switchover (live/qemu_ram.c).
 * After every block's verified commit, migrate-continue lets QEMU send
 * the devices; any failure before that cancels QEMU's migration and the
 * guest runs on here.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd_qemu.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "chan/net.h"
#include "chan/tls.h"
#include "host/qmp.h"
#include "host/qmp_mig.h"
#include "live/freeze.h"
#include "live/qemu_ram.h"

struct block_run {
	pthread_t th;
	struct send_opts o;
	char to[300];
	struct image_stats *st;
	int *ret;
	struct qram_pause *pz;
	bool first;		/* the first block to fail: its error is the migration's */
	char err[300];
};

static void *block_thread(void *arg)
{
	struct block_run *br = arg;

	*br->ret = image_send(&br->o, br->st);
	if (*br->ret) {
		snprintf(br->err, sizeof(br->err), "%s", lmig_errmsg());
		br->first = qram_block_gone(br->pz);
	}
	return NULL;
}

static int connect_ctrl(const struct qemu_args *a, struct qlink *l)
{
	l->fd = net_connect(a->to, a->timeout_ms);
	if (l->fd < 0)
		return -1;
	if (a->tls && tls_handshake(a->tls, l->fd, a->timeout_ms, "receiver", &l->tls))
		return -1;
	return 0;
}

/* Every block's session, side by side, started; 0, or -1 when one could not start. */
static int start_blocks(const struct qemu_args *a, struct qemu_result *r, struct qram_pause *pz,
			const uint16_t *ports, struct block_run *br)
{
	for (unsigned int i = 0; i < r->nblocks; i++) {
		bool bad;

		br[i].o = a->so;
		br[i].o.mem = r->b[i].path;
		br[i].o.pid = pz->q->pid;	/* QEMU: its threads are the throttle's */
		bad = qemu_host_port(a->to, ports[i], br[i].to, sizeof(br[i].to)) != 0;

		br[i].o.to = br[i].to;
		br[i].o.pause = &pz->hook;
		br[i].o.progress = a->progress && r->nblocks == 1;
		br[i].st = &r->st[i];
		br[i].ret = &r->block_ret[i];
		br[i].pz = pz;
		if (bad || pthread_create(&br[i].th, NULL, block_thread, &br[i])) {
			/* The ones started give up. */
			br[i].first = qram_block_gone(pz);
			for (unsigned int j = i + 1; j < r->nblocks; j++)
				qram_block_gone(pz);
			r->block_ret[i] = -1;
			snprintf(br[i].err, sizeof(br[i].err), bad ? "bad --to %s" : "cannot start a thread",
				 a->to);
			r->nstarted = i;	/* join_blocks() waits for them */
			return -1;
		}
	}
	r->nstarted = r->nblocks;
	return 0;
}

/* Every session started has ended: 0 when all committed, else the first failure's error. */
static int join_blocks(struct qemu_result *r, struct block_run *br)
{
	int failed = -1;

	for (unsigned int i = 0; i < r->nstarted; i++)
		pthread_join(br[i].th, NULL);
	for (unsigned int i = 0; i < r->nblocks; i++) {
		if (r->st[i].outcome && !strcmp(r->st[i].outcome, "unknown"))
			r->unknown = true;
		if (r->block_ret[i] && (failed < 0 || br[i].first))
			failed = (int)i;
	}
	if (failed < 0)
		return 0;
	return lmig_err("RAM block %s: %s", r->b[failed].id, br[failed].err);
}

/* Every block committed: QEMU sends the devices, the destination loads them. */
static int switch_over(const struct qemu_args *a, struct qemu_result *r, struct qmp *q,
		       struct qram_pause *pz, struct qlink *l)
{
	struct qmp_migrate m;
	bool ok = false;

	r->stage = "migrate-continue";
	qram_continue_point(pz);
	if (qmig_continue(q))
		return -1;
	r->t_continued = now_s();
	if (qmig_wait(q, "completed", a->timeout_ms, &m))
		return -1;
	r->t_completed = now_s();
	snprintf(r->qemu_status, sizeof(r->qemu_status), "%s", m.status);
	r->qemu_downtime_ms = m.downtime_ms;
	r->qemu_total_ms = m.total_time_ms;
	r->switch_ms = (r->t_completed - pz->t_paused) * 1000;
	r->source = "migrated";
	if (strcmp(m.status, "completed"))
		return lmig_err("QEMU's migration ended %s%s%s", m.status,
				m.error_desc[0] ? ": " : "", m.error_desc);
	r->stage = "devices";
	if (qrelay_join(&pz->relay))
		return lmig_err("%s", pz->relay.err);
	r->dev_bytes = pz->relay.bytes;
	r->stage = "destination";
	if (qlink_read_result(l, &ok, r->dst_detail, sizeof(r->dst_detail), a->timeout_ms))
		return -1;
	if (!ok)
		return lmig_err("the destination QEMU did not load the devices: %s", r->dst_detail);
	r->stage = NULL;
	return 0;
}

/*
 * Every block committed but QEMU did not complete.  Still at
 * pre-switchover (migrate-continue failed): the destination cannot run
 * without the devices, so the guest runs on here.  Later, what QEMU did
 * is QEMU's.
 */
static void after_commit_failed(struct qemu_result *r, struct qmp *q, struct qram_pause *pz)
{
	struct qmp_migrate m;
	char err[300];

	snprintf(err, sizeof(err), "%s", lmig_errmsg());
	if (qmp_query_migrate(q, &m) == 0 && !strcmp(m.status, "pre-switchover")) {
		r->source = qram_abort(pz) ? "paused" : "resumed";
	} else {
		r->source = !strcmp(m.status, "completed") ? "migrated" : "unknown";
		qrelay_stop(&pz->relay);	/* a QEMU that neither ends nor closes */
	}
	lmig_err_clear();
	lmig_err("%s", err);
}

/* A block failed (lmig_err() says which): the guest runs on here, or stays paused. */
static void blocks_failed(struct qemu_result *r, struct qram_pause *pz)
{
	char err[300];

	if (r->unknown) {
		/* The destination may have committed a block: the guest stays paused. */
		r->source = "paused";
		qrelay_stop(&pz->relay);
		return;
	}
	snprintf(err, sizeof(err), "%s", lmig_errmsg());
	r->source = pz->migrating ? "resumed" : "running";
	if (qram_abort(pz)) {
		r->source = "paused";
		lmig_err_clear();
		lmig_err("%s; and cancelling QEMU's migration failed: %s", err, pz->why);
	}
}

/* Long because: the source's steps in order, each with its own undoing. */
int qemu_send_run(const struct qemu_args *a, struct qemu_result *r)
{
	struct qlink l = { .fd = -1, .timeout_ms = a->timeout_ms };
	struct block_run br[QMEM_MAX];
	uint16_t ports[QMEM_MAX];
	struct qram_pause pz = { .guard = { .fd = -1 } };
	struct qmp q = { .fd = -1 };
	enum qlink_refuse why;
	char detail[200], sock[108];
	enum qmem_why mw;
	double t0 = now_s();
	bool caps_set = false;
	int ret = -1, rr;

	memset(br, 0, sizeof(br));
	r->t_start = t0;
	r->send = true;
	r->source = "running";
	r->qemu_downtime_ms = r->qemu_total_ms = -1;
	r->stage = "qmp";
	if (qmp_open(&q, a->qmp, a->timeout_ms))
		return -1;
	r->stage = "memdev";
	mw = qmem_list(&q, r->b, &r->nblocks, detail, sizeof(detail));
	if (mw != QMEM_OK) {
		if (mw != QMEM_QMP)
			qemu_memdev_error("qemu send", mw, detail);
		goto out;
	}
	r->stage = "capabilities";
	if (qmig_caps(&q, true))
		goto out;
	caps_set = true;
	/* Forked now, before any thread: a killed lmig does not leave the guest stopped. */
	snprintf(sock, sizeof(sock), "/tmp/lmig-qemu-src-%d.sock", (int)getpid());
	if (qram_guard_start(&pz, q.pid, a->qmp, sock, a->timeout_ms))
		goto out;
	r->stage = "connect";
	if (connect_ctrl(a, &l) || qlink_hello(&l, r->b, r->nblocks))
		goto out;
	rr = qlink_read_ready(&l, ports, r->nblocks, &why, detail, sizeof(detail));
	if (rr < 0)
		goto out;
	if (rr > 0) {
		lmig_err("the destination refused: %s%s%s",
			 why == QLR_BLOCKS ? "its QEMU's shared RAM differs" :
			 why == QLR_VERSION ? "another version of lmig qemu" :
			 "it could not set up the page sessions", detail[0] ? ": " : "", detail);
		goto out;
	}
	qram_init(&pz, &q, &l, sock, r->nblocks, a->timeout_ms);
	r->stage = "ram";
	for (unsigned int i = 0; i < r->nblocks; i++)
		r->st[i] = (struct image_stats){ 0 };
	r->t_ram = now_s();
	/*
	 * Once every block committed, migrate-continue goes at once: the
	 * sessions' clean-up (limits, the tracker's mapping) is not the guest's
	 * to wait for, and nothing fails after a commit.
	 */
	if (start_blocks(a, r, &pz, ports, br) == 0 && qram_wait_committed(&pz)) {
		r->t_paused = pz.t_paused;
		r->pause_ms = (pz.t_paused - pz.t_migrate) * 1000;
		ret = switch_over(a, r, &q, &pz, &l);
		if (ret)
			after_commit_failed(r, &q, &pz);
		join_blocks(r, br);
	} else {
		join_blocks(r, br);
		r->t_paused = pz.t_paused;
		blocks_failed(r, &pz);
	}
	r->dev_bytes = pz.relay.bytes;
	qram_destroy(&pz);
out:
	/* A guest that runs on here: QEMU's own next migration carries all of it. */
	if (ret && caps_set && !r->unknown && (!strcmp(r->source, "running") ||
						 !strcmp(r->source, "resumed"))) {
		char err[300];

		snprintf(err, sizeof(err), "%s", lmig_errmsg());
		if (qmig_caps_off(&q)) {
			lmig_err_clear();
			lmig_err("%s; and x-ignore-shared could not be turned off again", err);
		}
	}
	guard_stop(&pz.guard);
	r->total_s = now_s() - t0;
	if (l.fd >= 0)
		close(l.fd);
	tls_chan_free(&l.tls);
	qmp_close(&q);
	return ret;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lmig qemu send's switch-over: the pause that the page sessions of a
 * guest's RAM blocks (one `image_send` each, run side by side) share as
 * their freeze hook (freeze.h).  Each block's session asks for it once
 * its pre-copy converged; when every block asked, QEMU's own migration
 * starts (`migrate` to a unix socket of the relay, qemu_link.h, with
 * x-ignore-shared and pause-before-switchover set) and the pause is
 * granted once QEMU reports pre-switchover: the guest is stopped, each
 * session harvests and sends its final round.  Resuming (a session
 * failed) cancels QEMU's migration and waits until the guest runs again.
 * A session that fails makes the others give up (qram_block_gone()).
 */
#ifndef LMIG_QEMU_RAM_H
#define LMIG_QEMU_RAM_H

#include <pthread.h>
#include <stdbool.h>

#include "host/guard.h"
#include "live/freeze.h"
#include "live/qemu_link.h"

struct qmp;

enum qram_state {
	QRAM_PRECOPY,		/* not every block asked yet */
	QRAM_PAUSED,		/* QEMU at pre-switchover: the guest is stopped */
	QRAM_FAILED,		/* the pause could not be had (or a block gave up) */
	QRAM_CANCELLED,		/* QEMU's migration cancelled, the guest runs again */
};

struct qram_pause {
	struct qmp *q;			/* the source QEMU; guarded by mu */
	struct qlink *l;
	struct qrelay relay;
	char sock[108];			/* the relay's unix socket */
	int wait_ms;			/* longest wait for QEMU's steps */
	unsigned int nblocks, asked, gone, committed;
	enum qram_state state;
	bool migrating;			/* `migrate` was issued */
	bool cancel_failed;		/* migrate_cancel, or the guest's run after it, failed */
	double t_migrate, t_paused;	/* when (now_s()) */
	char why[256];			/* QRAM_FAILED: why */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct freeze_hook hook;	/* what each session's send_opts.pause points at */
	struct guard guard;		/* qram_guard_start()'s, or fd -1 */
};

void qram_init(struct qram_pause *p, struct qmp *q, struct qlink *l, const char *sock,
	       unsigned int nblocks, int wait_ms);
/* migrate-continue is next: from now on a dead lmig's guard leaves QEMU be. */
void qram_continue_point(struct qram_pause *p);
/*
 * A block's session failed (before or after asking for the pause): the
 * sessions still in their rounds give up at once (the hook's abandoned()),
 * those waiting for the pause are refused it.  True for the first block
 * to fail: its error is the migration's.
 */
bool qram_block_gone(struct qram_pause *p);
/*
 * Wait until every block's receiver committed (true: migrate-continue may
 * go now, while the sessions end), or one failed (false).
 */
bool qram_wait_committed(struct qram_pause *p);
/*
 * After every session ended: cancel QEMU's migration if one was started
 * and not cancelled yet (0, or -1 with lmig_err()), stop the relay.
 */
int qram_abort(struct qram_pause *p);
void qram_destroy(struct qram_pause *p);

/*
 * The guard of lmig qemu send (host/guard.h), forked before any thread:
 * if lmig dies without standing it down, it undoes the CPU limits on
 * QEMU's threads (qemu_pid) and, unless a block reached its commit point,
 * connects to QMP at qmp_path (free again once lmig's connection is gone),
 * cancels QEMU's migration if one is under way (the guest runs again)
 * and turns x-ignore-shared and pause-before-switchover off; it removes
 * the relay's unix socket sock either way.  Stand it down with
 * guard_stop(&p->guard).  0, or -1 with lmig_err().
 */
int qram_guard_start(struct qram_pause *p, pid_t qemu_pid, const char *qmp_path,
		     const char *sock, int timeout_ms);

#endif

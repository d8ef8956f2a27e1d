/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * QEMU's own migration steps, driven over QMP for lmig qemu: QEMU moves
 * the devices while lmig moves the shared RAM (x-ignore-shared).
 *
 *   source:       qmig_caps(pause) ... qmig_start(unix:PATH)
 *                 qmig_wait(pre-switchover)   the guest is stopped
 *                 qmig_continue() -> completed, or qmig_cancel() -> runs again
 *   destination:  qmig_caps(no pause), qmig_incoming(unix:PATH),
 *                 qmig_wait(completed), or qmig_quit()
 *
 * Each returns 0, or -1 with lmig_err().
 */
#ifndef LMIG_QMP_MIG_H
#define LMIG_QMP_MIG_H

#include <stdbool.h>

struct qmp;
struct qmp_migrate;

/* x-ignore-shared on; pause-before-switchover as pause says. */
int qmig_caps(struct qmp *q, bool pause);
/*
 * Both off again (QEMU's defaults), once no migration is under way: a
 * later migration by QEMU alone must carry the shared RAM again.
 */
int qmig_caps_off(struct qmp *q);
int qmig_start(struct qmp *q, const char *uri);
int qmig_incoming(struct qmp *q, const char *uri);
/*
 * Poll query-migrate until its status is want, or a final one
 * (completed, failed, cancelled), or timeout_ms passed (-1 with
 * lmig_err()); m holds the last answer.  Reaching a status other than
 * want is not an error here: the caller reads m->status.
 */
int qmig_wait(struct qmp *q, const char *want, int timeout_ms, struct qmp_migrate *m);
/* migrate-continue from pre-switchover. */
int qmig_continue(struct qmp *q);
/*
 * migrate_cancel, then wait until the migration is over and the guest
 * runs again (query-status "running"): -1 if it does not within
 * timeout_ms.
 */
int qmig_cancel(struct qmp *q, int timeout_ms);
int qmig_quit(struct qmp *q);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One error path: a failing function records a one-line message with
 * lmig_err() and returns -1; the command's caller prints it once.  Each
 * thread records its own.
 */
#ifndef LMIG_ERR_H
#define LMIG_ERR_H

#include <stdbool.h>

/* Record a message (printf format).  The first one recorded wins, so the
 * root cause is kept when callers add nothing. */
int lmig_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with ": strerror(err)" appended. */
int lmig_err_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *lmig_errmsg(void);
bool lmig_has_err(void);
void lmig_err_clear(void);

#endif

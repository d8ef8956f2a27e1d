/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lmig's phase changes in the kernel's trace buffer: a line written to
 * tracefs's trace_marker appears in `cat /sys/kernel/tracing/trace_pipe`
 * between the kernel's own events, in order.
 */
#ifndef LMIG_TRACEMARK_H
#define LMIG_TRACEMARK_H

#include <stdbool.h>

/*
 * Write one line ("lmig: " and the formatted text) to trace_marker if
 * tracefs is mounted and it is writable; otherwise nothing, silently.
 * The file is opened at the first call (and by tracemark_open()).
 */
void tracemark(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* (Re)try opening trace_marker, e.g. after mounting tracefs; true if it is open. */
bool tracemark_open(void);
/*
 * Mount tracefs on /sys/kernel/tracing if it is not there, then
 * tracemark_open().  True when markers will be written.
 */
bool tracemark_mount(void);

#endif

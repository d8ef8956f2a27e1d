/* SPDX-License-Identifier: GPL-2.0-only */
/* Words for the CPU throttle's mechanism and its restores (report_throttle.c). */
#ifndef LMIG_REPORT_THROTTLE_H
#define LMIG_REPORT_THROTTLE_H

#include "host/throttle.h"

/* How the CPU limit is held, in a few words ("per-vCPU cgroups, in place"). */
const char *throttle_kind_words(enum throttle_kind k);
/*
 * "lmig: restored ..." on stderr for one restored state file: per-vCPU
 * cgroups named as such, the others as cli_restored() says them.
 */
void cli_throttle_restored(void *ctx, const struct throttle_restored *r);

#endif

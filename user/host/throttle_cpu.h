/* SPDX-License-Identifier: GPL-2.0-only */
/* The CPU throttle's part of undoing a throttle (throttle_restore.c). */
#ifndef LMIG_THROTTLE_CPU_H
#define LMIG_THROTTLE_CPU_H

#include "host/throttle.h"

/*
 * Move the workload's threads back where they were and put the CPU limit
 * back as found (throttle_init() recorded both).  0, or -1 with
 * lmig_err() naming what is left in the state file.
 */
int throttle_cpu_undo(struct throttle *t);

#endif

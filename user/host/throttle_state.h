/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The state file of a throttle, THROTTLE_STATE_DIR/throttle-PID: "key
 * value" lines naming the lmig that owns it, where the CPU limit is
 * (throttle_cpu.c) and where the disk-write limit is (throttle_io.c, the
 * "io_" lines), with the values found there before.  throttle_state_save()
 * is in throttle.h.
 */
#ifndef LMIG_THROTTLE_STATE_H
#define LMIG_THROTTLE_STATE_H

#include "host/throttle.h"

/*
 * Read the state file at path into *t (applied, to be undone) and its
 * owner: the lmig's pid and start time.  owner_start is 0 in a file
 * without it (written by an older lmig) or if the owner's start time
 * could not be read.  0, or -1 with lmig_err().
 */
int throttle_state_read(const char *path, struct throttle *t, pid_t *owner,
			unsigned long long *owner_start);

#endif

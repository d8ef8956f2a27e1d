/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the tests that boot a VM (selftests/vm/) share: finding the
 * scripts, and reading the "TAG VALUE" lines the scripts print.
 */
#ifndef SELFTEST_VM_H
#define SELFTEST_VM_H

#include <stddef.h>

/* The path of selftests/vm/NAME, found from lmig_path() (repo/user/lmig).  0 or -1. */
int vm_path(const char *name, char *buf, size_t len);
/*
 * The rest of the first line of out that starts with "TAG " (without the
 * tag and the newline), copied into buf; NULL if there is none.
 */
const char *vm_result(const char *out, const char *tag, char *buf, size_t len);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the tests that boot a VM (selftests/vm/) share: finding the
 * scripts, and reading the "TAG VALUE" lines the scripts print.
 */
#ifndef SELFTEST_VM_H
#define SELFTEST_VM_H

#include <stdbool.h>
#include <stddef.h>

struct proc;

/* The path of selftests/vm/NAME, found from lmig_path() (repo/user/lmig).  0 or -1. */
int vm_path(const char *name, char *buf, size_t len);
/*
 * The rest of the first line of out that starts with "TAG " (without the
 * tag and the newline), copied into buf; NULL if there is none.
 */
const char *vm_result(const char *out, const char *tag, char *buf, size_t len);

/*
 * Run selftests/vm/SCRIPT: in a VM through run-in-vm.sh -v (direct: on
 * the host, as `sh SCRIPT`, for the scripts that start the VM
 * themselves), with VM_TIMEOUT=vm_timeout_s unless the environment sets
 * it.  Its stdout, which can be longer than struct proc keeps, goes
 * through a file into *out (malloc'd, "" if nothing); p keeps the exit
 * status and stderr.  0 once it exited within wait_s, else -1.
 */
int vm_run(struct proc *p, const char *script, bool direct, int vm_timeout_s, double wait_s,
	   char **out);
/* The same for a direct script, with one argument. */
int vm_run_arg(struct proc *p, const char *script, const char *arg, int vm_timeout_s,
	       double wait_s, char **out);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/* What the tests ask of this kernel's userfaultfd. */
#ifndef SELFTEST_UFFD_H
#define SELFTEST_UFFD_H

#include <stdbool.h>

/* Does this kernel have async write-protection on shared memory? */
bool have_wp_async(void);

#endif

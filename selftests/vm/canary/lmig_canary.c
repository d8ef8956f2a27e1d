// SPDX-License-Identifier: GPL-2.0-only
/*
 * Known bugs for the debug kernel of `make vmcheck-debug`: loading this
 * module must make KASAN and lockdep report, or the run that scans the
 * console log for their reports cannot be trusted to catch lmig.ko's.
 * It refuses to stay loaded, so nothing of it is left behind.
 */
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>

static DEFINE_MUTEX(canary_a);
static DEFINE_MUTEX(canary_b);

static char canary_sink;

static int __init canary_init(void)
{
	char *p;

	/*
	 * a then b, and later b then a, from one thread: no deadlock here,
	 * but lockdep records both orders and reports the circular
	 * dependency.
	 */
	mutex_lock(&canary_a);
	mutex_lock(&canary_b);
	mutex_unlock(&canary_b);
	mutex_unlock(&canary_a);
	mutex_lock(&canary_b);
	mutex_lock(&canary_a);
	mutex_unlock(&canary_a);
	mutex_unlock(&canary_b);

	/*
	 * After the locks: a KASAN report taints the kernel, and the taint
	 * turns lockdep off.  One byte past the object is KASAN's
	 * slab-out-of-bounds; READ_ONCE, so the compiler keeps the read.
	 */
	p = kmalloc(16, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	canary_sink = READ_ONCE(p[16]);
	kfree(p);
	return -EAGAIN;
}
module_init(canary_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("KASAN and lockdep reports on purpose, for the debug-kernel harness");

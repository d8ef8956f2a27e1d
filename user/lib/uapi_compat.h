/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel ABI that the build machine's headers may predate.  Debian 12
 * ships 6.1 headers, while the ioctls below arrived in Linux 6.7
 * (PAGEMAP_SCAN, asynchronous userfaultfd write-protection).  Whether the
 * running kernel has them is decided at run time; these definitions only
 * let the code be compiled.  Newer headers win: everything is guarded.
 */
#ifndef LMIG_UAPI_COMPAT_H
#define LMIG_UAPI_COMPAT_H

#include <linux/fs.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

/* linux/userfaultfd.h: features of UFFDIO_API. */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM	(1 << 12)	/* WP on shmem and hugetlbfs */
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)	/* WP holes of anonymous memory too */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)	/* the kernel resolves WP faults itself */
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY		1
#endif

/* linux/fs.h: the PAGEMAP_SCAN ioctl on /proc/PID/pagemap. */
#ifndef PAGEMAP_SCAN
/* Page categories, in masks and in page_region.categories. */
#define PAGE_IS_WPALLOWED	(1 << 0)	/* registered for async WP */
#define PAGE_IS_WRITTEN		(1 << 1)	/* written since last write-protected */
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)

/* Pages [start, end) that share the same categories. */
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

/* Flags of pm_scan_arg. */
#define PM_SCAN_WP_MATCHING	(1 << 0)	/* write-protect the pages reported */
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)	/* EPERM on memory not registered for async WP */

struct pm_scan_arg {
	__u64 size;			/* sizeof(struct pm_scan_arg) */
	__u64 flags;
	__u64 start, end;		/* the range to walk */
	__u64 walk_end;			/* out: where the walk stopped */
	__u64 vec, vec_len;		/* struct page_region array */
	__u64 max_pages;		/* 0: no limit */
	__u64 category_inverted;	/* these categories match when clear */
	__u64 category_mask;		/* all of these must match */
	__u64 category_anyof_mask;	/* one of these must match */
	__u64 return_mask;		/* categories to report */
};

#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)
#endif

/* glibc 2.36 has no wrappers for these. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open		434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal	424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd		438
#endif

#endif

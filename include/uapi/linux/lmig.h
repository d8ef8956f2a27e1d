/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * lmig.ko: which pages of a shared memory object (memfd, tmpfs/shmem file,
 * SysV shared memory) were written since the previous harvest.
 *
 * Each open file of /dev/lmig is a session.  A session watches one page
 * range of one object: LMIG_IOC_ATTACH, then LMIG_IOC_HARVEST as often as
 * needed, LMIG_IOC_STATS at any time after attach; close() ends it.
 *
 * Every structure is fixed-size and 64-bit aligned, user pointers travel
 * as __u64, and every flags and reserved field must be zero (EINVAL
 * otherwise) so that later versions can give them a meaning.
 * Documentation/kmod.md documents each call and its errors.
 */
#ifndef _UAPI_LINUX_LMIG_H
#define _UAPI_LINUX_LMIG_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define LMIG_DEVICE		"/dev/lmig"
#define LMIG_ABI_VERSION	1

/* Feature bits of struct lmig_version.features. */
/* Pages whose mappings are torn down between harvests are reported. */
#define LMIG_FEAT_NOTIFIERS	(1ULL << 0)
/* Pages that appear in or leave the page cache (truncate, hole punch). */
#define LMIG_FEAT_PRESENCE	(1ULL << 1)
/* Bits of a large folio are all set when any of its pages was written. */
#define LMIG_FEAT_FOLIO_GRAIN	(1ULL << 2)
/*
 * struct lmig_attach.pids is accepted (each pid must exist).  Every
 * process that maps the object is watched whether it is listed or not.
 */
#define LMIG_FEAT_PIDS		(1ULL << 3)
/* Per-session files in debugfs (lmig/<session id>). */
#define LMIG_FEAT_DEBUGFS	(1ULL << 4)
/* A harvest may set LMIG_HARVEST_OUT_RESCAN in struct lmig_harvest.flags. */
#define LMIG_FEAT_RESCAN	(1ULL << 5)

struct lmig_version {
	__u32 abi;		/* out: LMIG_ABI_VERSION */
	__u32 page_shift;	/* out: a bitmap bit stands for 1 << page_shift bytes */
	__u64 features;		/* out: LMIG_FEAT_* */
	__u64 reserved[4];	/* out: zero */
};

/* struct lmig_attach.flags */
/*
 * Has no effect: the module always watches every process that maps the
 * object.  Kept so that callers that pass it keep working; with it, npids
 * must not be zero (EINVAL).
 */
#define LMIG_ATTACH_PIDS_ONLY	(1U << 0)
#define LMIG_ATTACH_FLAGS	LMIG_ATTACH_PIDS_ONLY

#define LMIG_MAX_PIDS		64

struct lmig_attach {
	__s32 fd;		/* memfd, tmpfs file or SysV shm, open for reading */
	__u32 flags;		/* LMIG_ATTACH_* */
	__u64 offset;		/* first byte of the range; page aligned */
	__u64 length;		/* bytes; page aligned, not zero, within the file's size */
	__u64 pids;		/* user pointer to __s32[npids], or 0 */
	__u32 npids;		/* at most LMIG_MAX_PIDS */
	__u32 reserved0;	/* must be zero */
	__u64 session;		/* out: the session id (its debugfs file name) */
	__u64 reserved[3];	/* must be zero */
};

struct lmig_harvest {
	__u64 bitmap;		/* user pointer to __u64[(bitmap_bits + 63) / 64] */
	__u64 bitmap_bits;	/* at least length / page size of the attach */
	__u32 flags;		/* in: must be zero; out: LMIG_HARVEST_OUT_* */
	__u32 reserved0;	/* must be zero */
	__u64 dirty;		/* out: bits set (also the ioctl's return value, capped) */
	__u64 folios;		/* out: folios of the page cache visited */
	__u64 pages;		/* out: pages those folios hold within the range */
	__u64 notified;		/* out: bits set only because a mapping was torn down */
	__u64 presence;		/* out: bits set because a page appeared or left */
	__u64 ns;		/* out: time the harvest took */
	__u64 reserved[4];	/* must be zero */
};

/*
 * struct lmig_harvest.flags, out: some writes since the previous harvest
 * may have no bit (a new address space could not be watched in time, or
 * the module runs without one of its probes).  Every bit of the range is
 * set; the caller must treat every page as changed (compare or resend).
 */
#define LMIG_HARVEST_OUT_RESCAN	(1U << 0)

struct lmig_stats {
	__u64 session;		/* the session id */
	__u64 offset;		/* the attached range */
	__u64 length;
	__u64 harvests;		/* harvests done */
	__u64 dirty;		/* bits reported over all harvests */
	__u64 folios;		/* folios visited over all harvests */
	__u64 pages;		/* pages visited over all harvests */
	__u64 ns;		/* time spent harvesting */
	__u64 last_ns;		/* time the last harvest took */
	__u64 events;		/* invalidations seen by the session's notifiers */
	__u64 notified;		/* bits set only because of them */
	__u64 presence;		/* bits set because a page appeared or left */
	__u64 mms;		/* address spaces watched now */
	__u64 notifiers;	/* notifiers registered now (one per address space) */
	__u64 rescans;		/* harvests that returned LMIG_HARVEST_OUT_RESCAN */
	__u64 reserved[7];	/* out: zero */
};

#define LMIG_IOC_MAGIC		0xE4
#define LMIG_IOC_VERSION	_IOR(LMIG_IOC_MAGIC, 0x00, struct lmig_version)
#define LMIG_IOC_ATTACH		_IOWR(LMIG_IOC_MAGIC, 0x01, struct lmig_attach)
#define LMIG_IOC_HARVEST	_IOWR(LMIG_IOC_MAGIC, 0x02, struct lmig_harvest)
#define LMIG_IOC_STATS		_IOR(LMIG_IOC_MAGIC, 0x03, struct lmig_stats)

#endif /* _UAPI_LINUX_LMIG_H */

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lmig.ko's internal header: the session and the functions its files call
 * across.  lmig_main.c explains how the pieces fit and the lock order.
 */
#ifndef _LMIG_H
#define _LMIG_H

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include <linux/lmig.h>

struct dentry;
struct file;
struct pid;
struct task_struct;

struct lmig_session;

/* The session's notifier on one address space that maps the object. */
struct lmig_sub {
	struct mmu_notifier mn;
	struct lmig_session *s;
	struct mm_struct *mm;
	struct list_head node;		/* s->subs; RCU for the probes */
	bool dead;			/* released: s->lock */
	struct rcu_head rcu;
};

/*
 * One open file of /dev/lmig.  The bitmaps have one bit per page of the
 * range; the harvest (under mutex) owns all of them but pending, which the
 * callbacks and the probes write under lock.
 */
struct lmig_session {
	struct kref ref;		/* the file, and each queued task work */
	/*
	 * Serialises attach, harvest, stats and the debugfs file; taken
	 * before every other lock.  Guards the fields below not marked
	 * otherwise and the totals.
	 */
	struct mutex mutex;
	/*
	 * Serialises changes to subs: discovery, the task works, close.
	 * Taken before i_mmap_rwsem and mmap_lock (which
	 * mmu_notifier_register() takes), never inside them.
	 */
	struct mutex subs_mutex;
	/*
	 * Guards pending, unsure, each sub's dead flag, nsubs, writers of
	 * subs and events.  Nothing is taken inside it; it is the only lock
	 * the notifier callbacks and the probes take.
	 */
	spinlock_t lock;
	struct list_head node;		/* lmig_sessions */
	u64 id;
	bool attached;
	bool listed;			/* on lmig_sessions */
	bool closing;			/* subs_mutex: register nothing more */
	bool unsure;			/* lock: the next harvest reports all */
	atomic_t active;		/* invalidations between start and end */
	atomic_t seq;			/* bumped at each start and end */
	unsigned long missed;		/* lmig_missed() at the last walk */
	atomic_t works;			/* task works queued, not yet done */
	struct file *file;
	struct address_space *mapping;
	pgoff_t first;			/* first page of the range */
	unsigned long npages;
	unsigned long *pending;		/* lock */
	unsigned long *spare;		/* zeroed; swapped with pending */
	unsigned long *present;		/* in the page cache at the last walk */
	unsigned long *seen;		/* in the page cache at this walk */
	unsigned long *pinned;		/* maybe DMA-pinned at the last walk */
	unsigned long *pinning;		/* maybe DMA-pinned at this walk */
	unsigned long *work;		/* this harvest's bits */
	struct list_head subs;		/* RCU for the probes */
	unsigned int nsubs;		/* live ones; lock */
	struct pid *pids[LMIG_MAX_PIDS];
	unsigned int npids;
	struct task_struct *harvester;	/* task inside our own folio_mkclean() */
	struct dentry *dbg;
	/* Totals (mutex), and the callbacks' counter (lock). */
	u64 harvests, dirty, folios, pages, ns, last_ns, notified, presence;
	u64 rescans;
	u64 events;
};

/*
 * Attached sessions: RCU for the probes, written under a mutex in
 * lmig_main.c.
 */
extern struct list_head lmig_sessions;

/* lmig_main.c: the last reference is gone. */
void lmig_session_free(struct kref *ref);

static inline void lmig_session_put(struct lmig_session *s)
{
	kref_put(&s->ref, lmig_session_free);
}

static inline void lmig_set_unsure(struct lmig_session *s)
{
	spin_lock(&s->lock);
	s->unsure = true;
	spin_unlock(&s->lock);
}

/* Set pages [idx, idx + n) of the object pending, clipped to the range. */
static inline void lmig_mark(struct lmig_session *s, pgoff_t idx,
			     unsigned long n)
{
	pgoff_t lo = max_t(pgoff_t, idx, s->first);
	pgoff_t hi = min_t(pgoff_t, idx + n, s->first + s->npages);

	if (lo >= hi)
		return;
	spin_lock(&s->lock);
	bitmap_set(s->pending, lo - s->first, hi - lo);
	spin_unlock(&s->lock);
}

/* lmig_notify.c: page tables, MMU notifiers, the object's mappers. */

/*
 * A page table walk that collects the object's pages it finds mapped,
 * in runs, and sets them pending.
 */
struct lmig_scan {
	struct lmig_session *s;
	bool all;			/* every entry, not only writable/dirty */
	pgoff_t run;
	unsigned long nrun;
};

void lmig_scan(struct lmig_scan *sc, struct mm_struct *mm,
	       unsigned long addr, unsigned long end);
bool lmig_watched(struct lmig_session *s, struct mm_struct *mm);
int lmig_sub_add(struct lmig_session *s, struct mm_struct *mm);
void lmig_sub_del(struct lmig_session *s, struct lmig_sub *sub);
int lmig_discover(struct lmig_session *s);

/* lmig_probes.c: new mappings, writes, faults and forks between harvests. */

/* Every probe is in place; without one, each harvest reports the whole range. */
extern bool lmig_probes_ok;

unsigned long lmig_missed(void);
void lmig_probes_register(void);
void lmig_probes_unregister(void);
void lmig_probes_debugfs(struct dentry *dir);

/* lmig_harvest.c: the page cache walk. */

struct lmig_walk {
	u64 folios, pages, dirty, notified, presence, ns;
	bool rescan;
};

int lmig_alloc_bitmaps(struct lmig_session *s);
void lmig_free_bitmaps(struct lmig_session *s);
int lmig_walk(struct lmig_session *s, struct lmig_walk *w, bool take_pending);

#endif /* _LMIG_H */

// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig.ko: reports which pages of a shared memory object (memfd, tmpfs
 * file, SysV shared memory) were written since the previous harvest.
 *
 * Each open file of /dev/lmig is a session watching one page range of one
 * object.  A harvest walks the object's page cache and write-protects and
 * cleans every page table entry that maps each folio (folio_mkclean()); a
 * folio that had a dirty or writable mapping was written.  What that walk
 * cannot see is recorded between harvests in a pending bitmap:
 *
 *  - Entries that are torn down or cleaned by someone else take their
 *    dirty bits with them.  Every address space that maps the object has
 *    a whole-mm MMU notifier of the session; its invalidate_range_start
 *    walks the page tables of the range about to change and sets the
 *    pending bit of every page of the object it finds mapped there
 *    (protection changes, which keep the dirty bit: only the writable or
 *    dirty entries, which a secondary MMU such as KVM's may have written
 *    through).  ->release walks the mm's mappings of the object the same
 *    way before exit tears them down.
 *  - A harvest that runs while an invalidation is between its start and
 *    its end reports the pending bits but keeps them: the entries are
 *    still there and may still be written before they go.
 *  - The address spaces are found through the object's reverse map
 *    (mapping->i_mmap), at attach and at every harvest.  A new mapping in
 *    an address space the session does not watch yet (kprobe on
 *    shmem_mmap, shmem's f_op->mmap) or a fork of a watched one
 *    (sched_process_fork) queues task work that registers the notifier
 *    before the task returns to user space, then marks the new mapping's
 *    pages pending.
 *  - write(2) and everything else that copies into the page cache without
 *    a page table entry ends in shmem_write_end(): a kprobe there sets
 *    the bits of the bytes written.
 *  - Folios that may be pinned for DMA are reported at every harvest
 *    while pinned, and once more after.
 *  - Pages that enter or leave the page cache are reported.
 *
 * Whatever may have escaped (a probe that could not be registered, a
 * notifier that could not be registered in time) makes the next harvest
 * report the whole range with LMIG_HARVEST_OUT_RESCAN.
 * Documentation/kmod.md has the ABI, the argument and its limits.
 *
 * Locking (outermost first):
 *   session->mutex       serialises attach, harvest, stats and the
 *                        debugfs file.
 *   session->subs_mutex  serialises changes to the notifier list (harvest
 *                        discovery, task work, close).  Taken before
 *                        i_mmap_rwsem and mmap_lock (which
 *                        mmu_notifier_register() takes), never inside
 *                        them.
 *   i_mmap_rwsem (read)  to walk the object's mappings; not held while a
 *                        notifier is registered or an mm is put.
 *   session->lock        (spinlock) protects the pending bitmap, the
 *                        unsure flag, each notifier's dead flag, the list
 *                        for writers, and the event counter.  Nothing is
 *                        taken inside it.
 *   lmig_sessions        RCU list of attached sessions, read by the
 *                        probes; written under lmig_sessions_mutex.
 *   The notifier callbacks run with mmap_lock, i_mmap_rwsem, folio locks
 *   or an anon_vma lock held by their caller, possibly unable to sleep:
 *   they read page tables under RCU without page table locks (the
 *   caller's locks keep the tables of the range they invalidate) and take
 *   only session->lock.  The probes run in atomic context: RCU,
 *   session->lock and GFP_ATOMIC allocations only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/magic.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/pid.h>
#include <linux/rbtree.h>
#include <linux/rcupdate.h>
#include <linux/rcupdate_wait.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/userfaultfd_k.h>

#include <linux/lmig.h>

#define CREATE_TRACE_POINTS
#include "lmig_trace.h"

#ifndef CONFIG_MMU_NOTIFIER
#error "lmig.ko needs CONFIG_MMU_NOTIFIER"
#endif

#define LMIG_FEATURES	(LMIG_FEAT_NOTIFIERS | LMIG_FEAT_PRESENCE | \
			 LMIG_FEAT_FOLIO_GRAIN | LMIG_FEAT_PIDS | \
			 LMIG_FEAT_DEBUGFS | LMIG_FEAT_RESCAN)

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

struct lmig_session {
	struct kref ref;		/* the file, and each queued task work */
	struct mutex mutex;		/* see "Locking" above */
	struct mutex subs_mutex;	/* see "Locking" above */
	spinlock_t lock;		/* see "Locking" above */
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
	struct list_head subs;
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

static atomic64_t lmig_next_id = ATOMIC64_INIT(0);
static struct dentry *lmig_dbg_root;
static LIST_HEAD(lmig_sessions);
static DEFINE_MUTEX(lmig_sessions_mutex);
/* Every probe is in place; without one, each harvest reports the whole range. */
static bool lmig_probes_ok;

static void lmig_session_free(struct kref *ref);

/* Probe hits on an attached object, for debugfs (lmig/probes). */
enum { LMIG_HIT_MMAP, LMIG_HIT_WRITE, LMIG_HIT_FAULT, LMIG_HIT_MAP_PAGES,
	LMIG_HIT_FORK, LMIG_HIT_MFILL, LMIG_NR_HITS };
static const char * const lmig_hit_names[LMIG_NR_HITS] = {
	"shmem_mmap", "shmem_write_end", "finish_fault", "filemap_map_pages",
	"sched_process_fork", "mfill_atomic_install_pte",
};

static atomic_long_t lmig_hits[LMIG_NR_HITS];

static void lmig_hit(int which)
{
	atomic_long_inc(&lmig_hits[which]);
}

static void lmig_session_put(struct lmig_session *s)
{
	kref_put(&s->ref, lmig_session_free);
}

static void lmig_set_unsure(struct lmig_session *s)
{
	spin_lock(&s->lock);
	s->unsure = true;
	spin_unlock(&s->lock);
}

/* Set pages [idx, idx + n) of the object pending, clipped to the range. */
static void lmig_mark(struct lmig_session *s, pgoff_t idx, unsigned long n)
{
	pgoff_t lo = max_t(pgoff_t, idx, s->first);
	pgoff_t hi = min_t(pgoff_t, idx + n, s->first + s->npages);

	if (lo >= hi)
		return;
	spin_lock(&s->lock);
	bitmap_set(s->pending, lo - s->first, hi - lo);
	spin_unlock(&s->lock);
}

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

static void lmig_scan_flush(struct lmig_scan *sc)
{
	if (sc->nrun)
		lmig_mark(sc->s, sc->run, sc->nrun);
	sc->nrun = 0;
}

/* n pages from page, mapped by one entry that is writable or dirty (wd). */
static void lmig_scan_page(struct lmig_scan *sc, struct page *page,
			   unsigned long n, bool wd)
{
	struct folio *folio;
	pgoff_t idx;

	if (!sc->all && !wd)
		return;
	/*
	 * Racy reads of a struct page that the entry maps: the memory map
	 * is always there, and a stale answer is a spurious bit at worst.
	 */
	folio = page_folio(page);
	if (READ_ONCE(folio->mapping) != sc->s->mapping)
		return;
	idx = READ_ONCE(folio->index) + (page_to_pfn(page) - folio_pfn(folio));
	if (sc->nrun && sc->run + sc->nrun == idx) {
		sc->nrun += n;
		return;
	}
	lmig_scan_flush(sc);
	sc->run = idx;
	sc->nrun = n;
}

static void lmig_scan_ptes(struct lmig_scan *sc, pmd_t pmdval,
			   unsigned long addr, unsigned long end)
{
	pte_t *ptep = pte_offset_kernel(&pmdval, addr);

	for (; addr != end; addr += PAGE_SIZE, ptep++) {
		pte_t pte = READ_ONCE(*ptep);
		unsigned long pfn;

		if (!pte_present(pte) || pte_special(pte))
			continue;
		pfn = pte_pfn(pte);
		if (!pfn_valid(pfn))
			continue;
		lmig_scan_page(sc, pfn_to_page(pfn), 1,
			       pte_write(pte) || pte_dirty(pte));
	}
}

static void lmig_scan_pmds(struct lmig_scan *sc, pud_t *pud,
			   unsigned long addr, unsigned long end)
{
	pmd_t *pmd = pmd_offset(pud, addr);
	unsigned long next;

	do {
		pmd_t pmdval = READ_ONCE(*pmd);

		next = pmd_addr_end(addr, end);
		if (pmd_none(pmdval) || !pmd_present(pmdval))
			continue;
		if (pmd_leaf(pmdval)) {
			unsigned long pfn = pmd_pfn(pmdval) +
					    ((addr & ~PMD_MASK) >> PAGE_SHIFT);

			if (pfn_valid(pfn))
				lmig_scan_page(sc, pfn_to_page(pfn),
					       (next - addr) >> PAGE_SHIFT,
					       pmd_write(pmdval) ||
					       pmd_dirty(pmdval));
			continue;
		}
		if (pmd_bad(pmdval))
			continue;
		lmig_scan_ptes(sc, pmdval, addr, next);
	} while (pmd++, addr = next, addr != end);
}

static void lmig_scan_puds(struct lmig_scan *sc, p4d_t *p4d,
			   unsigned long addr, unsigned long end)
{
	pud_t *pud = pud_offset(p4d, addr);
	unsigned long next;

	do {
		pud_t pudval = READ_ONCE(*pud);

		next = pud_addr_end(addr, end);
		/* shmem has no PUD-sized mappings */
		if (pud_none(pudval) || !pud_present(pudval) ||
		    pud_leaf(pudval) || pud_bad(pudval))
			continue;
		lmig_scan_pmds(sc, pud, addr, next);
	} while (pud++, addr = next, addr != end);
}

/*
 * Set pending every page of the object mapped in mm at [addr, end) (with
 * !sc->all: mapped writable or dirty).  No page table lock: the entries'
 * bits are read once each, as GUP-fast does; RCU keeps page tables freed
 * by a concurrent THP collapse (6.5 and later), and the caller's locks
 * keep every other table of the range.
 */
static void lmig_scan(struct lmig_scan *sc, struct mm_struct *mm,
		      unsigned long addr, unsigned long end)
{
	unsigned long next;
	pgd_t *pgd;

	addr &= PAGE_MASK;
	end = min_t(unsigned long, end, TASK_SIZE_MAX);
	end = PAGE_ALIGN(end);
	if (addr >= end)
		return;
	rcu_read_lock();
	pgd = pgd_offset(mm, addr);
	do {
		pgd_t pgdval = READ_ONCE(*pgd);
		p4d_t *p4d;
		unsigned long pnext, a = addr;

		next = pgd_addr_end(addr, end);
		if (pgd_none(pgdval) || pgd_bad(pgdval))
			continue;
		p4d = p4d_offset(pgd, a);
		do {
			p4d_t p4dval = READ_ONCE(*p4d);

			pnext = p4d_addr_end(a, next);
			if (p4d_none(p4dval) || p4d_bad(p4dval))
				continue;
			lmig_scan_puds(sc, p4d, a, pnext);
		} while (p4d++, a = pnext, a != next);
	} while (pgd++, addr = next, addr != end);
	rcu_read_unlock();
	lmig_scan_flush(sc);
}

/* Our own harvest write-protecting the folios: not an event. */
static bool lmig_own(struct lmig_session *s,
		     const struct mmu_notifier_range *range)
{
	return range->event == MMU_NOTIFY_PROTECTION_PAGE &&
	       READ_ONCE(s->harvester) == current;
}

static int lmig_invalidate_start(struct mmu_notifier *mn,
				 const struct mmu_notifier_range *range)
{
	struct lmig_sub *sub = container_of(mn, struct lmig_sub, mn);
	struct lmig_session *s = sub->s;
	struct lmig_scan sc = { .s = s, .all = true };

	if (lmig_own(s, range))
		return 0;
	/*
	 * Counted before the walk: a harvest that sees our bits sees this
	 * (the bits are set under s->lock, which the harvest takes to read
	 * both).
	 */
	atomic_inc(&s->active);
	atomic_inc(&s->seq);
	/* Orders the counts before the page table reads. */
	smp_mb__after_atomic();
	/*
	 * Protection changes (mprotect, uffd-wp, NUMA hinting, clear_refs)
	 * keep the dirty bit, so the next folio_mkclean() still finds a
	 * write through the primary entry; but a secondary MMU (KVM) may
	 * have written through a writable, clean entry: those are pending.
	 * Anything else removes or cleans the entries.  Pending then is
	 * every entry still present, not only the dirty or writable ones: a
	 * write fault on a clean one may make it dirty before it goes.
	 */
	if (range->event == MMU_NOTIFY_PROTECTION_VMA ||
	    range->event == MMU_NOTIFY_SOFT_DIRTY)
		sc.all = false;
	lmig_scan(&sc, range->mm, range->start, range->end);
	spin_lock(&s->lock);
	s->events++;
	spin_unlock(&s->lock);
	return 0;
}

static void lmig_invalidate_end(struct mmu_notifier *mn,
				const struct mmu_notifier_range *range)
{
	struct lmig_sub *sub = container_of(mn, struct lmig_sub, mn);
	struct lmig_session *s = sub->s;

	if (lmig_own(s, range))
		return;
	/*
	 * The entries are gone or changed.  The barrier orders the caller's
	 * page table changes before the count drops.
	 */
	smp_mb__before_atomic();
	atomic_inc(&s->seq);
	atomic_dec(&s->active);
}

/*
 * The address space is going away (exit) or the notifier is being
 * unregistered.  Exit tears the entries down after this without telling
 * us: set the pages mapped by the mm's mappings of the object pending now.
 * No task runs in the mm any more.
 */
static void lmig_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct lmig_sub *sub = container_of(mn, struct lmig_sub, mn);
	struct lmig_session *s = sub->s;
	struct lmig_scan sc = { .s = s, .all = true };
	struct rb_node *rb;

	if (!READ_ONCE(s->closing)) {
		i_mmap_lock_read(s->mapping);
		for (rb = rb_first_cached(&s->mapping->i_mmap); rb;
		     rb = rb_next(rb)) {
			struct vm_area_struct *vma =
				rb_entry(rb, struct vm_area_struct, shared.rb);

			if (vma->vm_mm == mm && (vma->vm_flags & VM_SHARED))
				lmig_scan(&sc, mm, vma->vm_start, vma->vm_end);
		}
		i_mmap_unlock_read(s->mapping);
	}
	spin_lock(&s->lock);
	if (!sub->dead) {
		sub->dead = true;
		s->nsubs--;
	}
	s->events++;
	spin_unlock(&s->lock);
}

static const struct mmu_notifier_ops lmig_mn_ops = {
	.release = lmig_mn_release,
	.invalidate_range_start = lmig_invalidate_start,
	.invalidate_range_end = lmig_invalidate_end,
};

/* Is mm watched by a live notifier of s?  RCU or s->subs_mutex held. */
static bool lmig_watched(struct lmig_session *s, struct mm_struct *mm)
{
	struct lmig_sub *sub;

	list_for_each_entry_rcu(sub, &s->subs, node,
				lockdep_is_held(&s->subs_mutex))
		if (sub->mm == mm && !READ_ONCE(sub->dead))
			return true;
	return false;
}

/*
 * Watch mm.  Called with s->subs_mutex held, mm_users pinned, and no
 * mmap_lock or i_mmap_rwsem held (mmu_notifier_register() takes
 * mmap_lock for writing).
 */
static int lmig_sub_add(struct lmig_session *s, struct mm_struct *mm)
{
	struct lmig_sub *sub;
	int ret;

	if (lmig_watched(s, mm))
		return 0;
	sub = kzalloc(sizeof(*sub), GFP_KERNEL_ACCOUNT);
	if (!sub)
		return -ENOMEM;
	sub->s = s;
	sub->mm = mm;
	sub->mn.ops = &lmig_mn_ops;
	ret = mmu_notifier_register(&sub->mn, mm);
	if (ret) {
		kfree(sub);
		return ret;
	}
	spin_lock(&s->lock);
	list_add_tail_rcu(&sub->node, &s->subs);
	s->nsubs++;
	spin_unlock(&s->lock);
	return 0;
}

/* Called with s->subs_mutex held. */
static void lmig_sub_del(struct lmig_session *s, struct lmig_sub *sub)
{
	spin_lock(&s->lock);
	list_del_rcu(&sub->node);
	if (!sub->dead)
		s->nsubs--;
	sub->dead = true;
	spin_unlock(&s->lock);
	/* Calls ->release if exit did not, waits for running callbacks. */
	mmu_notifier_unregister(&sub->mn, sub->mm);
	kfree_rcu(sub, rcu);
}

/*
 * Find every address space with a shared mapping of the range through the
 * object's reverse map and watch it; forget the released ones.  Called
 * with s->subs_mutex held.
 */
static int lmig_discover(struct lmig_session *s)
{
	struct mm_struct **mms = NULL;
	unsigned int n = 0, cap = 0, i;
	struct lmig_sub *sub, *tmp;
	struct rb_node *rb;
	int ret = 0;

	list_for_each_entry_safe(sub, tmp, &s->subs, node)
		if (READ_ONCE(sub->dead))
			lmig_sub_del(s, sub);

	ret = down_read_killable(&s->mapping->i_mmap_rwsem);
	if (ret)
		return ret;
	for (rb = rb_first_cached(&s->mapping->i_mmap); rb; rb = rb_next(rb)) {
		struct vm_area_struct *vma =
			rb_entry(rb, struct vm_area_struct, shared.rb);

		/*
		 * Any part of the object, not only the range: mremap() can
		 * grow a mapping over the range without f_op->mmap.
		 */
		if (!(vma->vm_flags & VM_SHARED) || lmig_watched(s, vma->vm_mm))
			continue;
		for (i = 0; i < n && mms[i] != vma->vm_mm; i++)
			;
		if (i < n)
			continue;
		if (n == cap) {
			struct mm_struct **p;

			cap = cap ? cap * 2 : 16;
			p = krealloc_array(mms, cap, sizeof(*mms),
					   GFP_KERNEL_ACCOUNT);
			if (!p) {
				ret = -ENOMEM;
				break;
			}
			mms = p;
		}
		mmgrab(vma->vm_mm);
		mms[n++] = vma->vm_mm;
	}
	up_read(&s->mapping->i_mmap_rwsem);

	for (i = 0; i < n; i++) {
		struct mm_struct *mm = mms[i];

		/* An mm without users is exiting: its pages were released. */
		if (!ret && mmget_not_zero(mm)) {
			ret = lmig_sub_add(s, mm);
			/* Its exit, if we were its last user, calls ->release. */
			mmput(mm);
		}
		mmdrop(mm);
	}
	kfree(mms);
	return ret;
}

/* ---- new address spaces between harvests ---- */

/* Task work queued by a probe: watch current->mm before user code runs. */
struct lmig_work {
	struct callback_head cb;
	struct lmig_session *s;
	struct mm_struct *mm;		/* the address space to watch */
	pgoff_t pgoff;			/* the new mapping's pages, if any */
	unsigned long npages;
	unsigned long start, end;	/* and its addresses */
	bool alone;			/* the mm had one user at mmap time */
};

static void lmig_work_fn(struct callback_head *cb)
{
	struct lmig_work *w = container_of(cb, struct lmig_work, cb);
	struct lmig_session *s = w->s;
	struct mm_struct *mm = current->mm;

	mutex_lock(&s->subs_mutex);
	if (!s->closing) {
		/*
		 * A task that exits before returning to user space runs
		 * this after dropping its mm: for a fork child nothing ran
		 * in it, but other threads may use a new mapping's mm.
		 */
		if (mm != w->mm || lmig_sub_add(s, mm)) {
			if (w->npages)
				lmig_set_unsure(s);
		}
		/*
		 * Another thread may have written through the new mapping,
		 * and unmapped it, before the notifier existed: its pages
		 * are pending.  With no other user of the mm then or now,
		 * the entries present now are all there can be.
		 */
		if (w->npages && w->alone && mm == w->mm &&
		    atomic_read(&mm->mm_users) == 1) {
			struct lmig_scan sc = { .s = s, .all = true };

			mmap_read_lock(mm);
			lmig_scan(&sc, mm, w->start, w->end);
			mmap_read_unlock(mm);
		} else if (w->npages) {
			lmig_mark(s, w->pgoff, w->npages);
		}
	}
	mutex_unlock(&s->subs_mutex);
	/* After the notifier is listed: see lmig_fork_probe(). */
	smp_mb__before_atomic();
	atomic_dec(&s->works);
	kfree(w);
	lmig_session_put(s);
	/*
	 * The last of our code this task runs; module exit waits for it
	 * with synchronize_rcu_tasks().
	 */
	module_put(THIS_MODULE);
}

/*
 * Queue the task work on task.  Atomic context, under rcu_read_lock():
 * s is listed, so its file holds a reference until a grace period after
 * it is unlisted, and so does the module.
 */
static void lmig_queue(struct lmig_session *s, struct task_struct *task,
		       struct mm_struct *mm, struct vm_area_struct *vma)
{
	struct lmig_work *w = kzalloc(sizeof(*w), GFP_ATOMIC);
	pgoff_t pgoff = 0;
	unsigned long n = 0;

	if (!w) {
		lmig_set_unsure(s);
		return;
	}
	if (vma) {
		pgoff = vma->vm_pgoff;
		n = vma_pages(vma);
		w->start = vma->vm_start;
		w->end = vma->vm_end;
		w->alone = atomic_read(&mm->mm_users) == 1;
	}
	w->s = s;
	w->mm = mm;
	w->pgoff = pgoff;
	w->npages = n;
	init_task_work(&w->cb, lmig_work_fn);
	kref_get(&s->ref);
	__module_get(THIS_MODULE);
	atomic_inc(&s->works);
	if (task_work_add(task, &w->cb, TWA_RESUME)) {
		atomic_dec(&s->works);
		/* Exiting: for a new mapping other threads may remain. */
		if (n) {
			lmig_set_unsure(s);
			lmig_mark(s, pgoff, n);
		}
		kref_put(&s->ref, lmig_session_free);	/* never the last */
		module_put(THIS_MODULE);
		kfree(w);
	}
}

/* shmem_mmap(file, vma): a new mapping of a shmem object. */
static int lmig_mmap_probe(struct kprobe *kp, struct pt_regs *regs)
{
	struct file *file = (struct file *)regs_get_kernel_argument(regs, 0);
	struct vm_area_struct *vma =
		(struct vm_area_struct *)regs_get_kernel_argument(regs, 1);
	struct lmig_session *s;

	if (!(vma->vm_flags & VM_SHARED))
		return 0;		/* copy on write: the object never changes */
	rcu_read_lock();
	list_for_each_entry_rcu(s, &lmig_sessions, node) {
		/* Outside the range too: mremap() may grow it over the range. */
		if (s->mapping != file->f_mapping ||
		    lmig_watched(s, vma->vm_mm))
			continue;
		lmig_hit(LMIG_HIT_MMAP);
		if (vma->vm_mm != current->mm || (current->flags & PF_KTHREAD))
			lmig_set_unsure(s);
		else
			lmig_queue(s, current, vma->vm_mm, vma);
	}
	rcu_read_unlock();
	return 0;
}

static struct kprobe lmig_mmap_kp = {
	.symbol_name = "shmem_mmap",
	.pre_handler = lmig_mmap_probe,
};

/*
 * shmem_write_end(file, mapping, pos, len, copied, page or folio, fsdata):
 * copied bytes at pos are in the page cache now.
 */
static int lmig_write_probe(struct kprobe *kp, struct pt_regs *regs)
{
	struct address_space *mapping =
		(struct address_space *)regs_get_kernel_argument(regs, 1);
	loff_t pos = regs_get_kernel_argument(regs, 2);
	unsigned int copied = regs_get_kernel_argument(regs, 4);
	struct lmig_session *s;

	if (!copied || pos < 0)
		return 0;
	rcu_read_lock();
	list_for_each_entry_rcu(s, &lmig_sessions, node)
		if (s->mapping == mapping) {
			lmig_hit(LMIG_HIT_WRITE);
			lmig_mark(s, pos >> PAGE_SHIFT,
				  ((pos + copied - 1) >> PAGE_SHIFT) -
				  (pos >> PAGE_SHIFT) + 1);
		}
	rcu_read_unlock();
	return 0;
}

static struct kprobe lmig_write_kp = {
	.symbol_name = "shmem_write_end",
	.pre_handler = lmig_write_probe,
};

/*
 * Page faults that install entries for the object: finish_fault(vmf) and
 * filemap_map_pages(vmf, start_pgoff, end_pgoff) (fault-around).  An
 * entry installed after a concurrent invalidation's callback walked the
 * range, and removed by that invalidation, was never seen: if any
 * invalidation started, ended or was open while the fault ran, the
 * pages it mapped are pending.  The counter is read at entry and, after
 * a full barrier, at return; the callback bumps it and, after a full
 * barrier, reads the entries: either it sees the new entry or the fault
 * sees the bump.
 */
#define LMIG_FAULT_SESSIONS	4

struct lmig_fault_data {
	struct vm_fault *vmf;
	pgoff_t first, last;		/* filemap_map_pages() only */
	unsigned int n;
	u64 id[LMIG_FAULT_SESSIONS];	/* sessions of the object at entry */
	int seq[LMIG_FAULT_SESSIONS];	/* and their counters then */
};

/* The object mapped by the faulting VMA, if it is a shared one. */
static struct address_space *lmig_fault_mapping(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;

	if (!vma || !vma->vm_file || !(vma->vm_flags & VM_SHARED))
		return NULL;
	return vma->vm_file->f_mapping;
}

static int lmig_fault_enter(struct lmig_fault_data *d, struct vm_fault *vmf)
{
	struct address_space *mapping = lmig_fault_mapping(vmf);
	struct lmig_session *s;

	d->vmf = vmf;
	d->n = 0;
	if (!mapping)
		return 1;
	rcu_read_lock();
	list_for_each_entry_rcu(s, &lmig_sessions, node) {
		if (s->mapping != mapping || d->n == LMIG_FAULT_SESSIONS)
			continue;
		d->id[d->n] = s->id;
		d->seq[d->n++] = atomic_read(&s->seq);
	}
	rcu_read_unlock();
	if (!d->n)
		return 1;	/* not an object of ours: no return probe */
	/* The counters are read before the entries are installed. */
	smp_mb();
	return 0;
}

/* After the fault: its pages are [first, first + n). */
static void lmig_fault_leave(struct lmig_fault_data *d, pgoff_t first,
			     unsigned long n)
{
	struct address_space *mapping = lmig_fault_mapping(d->vmf);
	struct lmig_session *s;
	unsigned int i;

	/* The entries are installed; the counters are read after them. */
	smp_mb();
	rcu_read_lock();
	list_for_each_entry_rcu(s, &lmig_sessions, node) {
		if (s->mapping != mapping)
			continue;
		for (i = 0; i < d->n && d->id[i] != s->id; i++)
			;
		/* Not seen at entry: attached meanwhile, or one too many. */
		if (i == d->n || atomic_read(&s->seq) != d->seq[i] ||
		    atomic_read(&s->active))
			lmig_mark(s, first, n);
	}
	rcu_read_unlock();
}

static int lmig_finish_fault_entry(struct kretprobe_instance *ri,
				   struct pt_regs *regs)
{
	return lmig_fault_enter((struct lmig_fault_data *)ri->data,
				(struct vm_fault *)regs_get_kernel_argument(regs, 0));
}

static int lmig_finish_fault_ret(struct kretprobe_instance *ri,
				 struct pt_regs *regs)
{
	struct lmig_fault_data *d = (struct lmig_fault_data *)ri->data;
	struct vm_fault *vmf = d->vmf;
	pgoff_t first = vmf->pgoff;
	unsigned long n = 1;

	/* A shmem THP may have been mapped whole by a PMD. */
	if (vmf->page) {
		struct folio *folio = page_folio(vmf->page);

		first = folio->index;
		n = folio_nr_pages(folio);
	}
	lmig_hit(LMIG_HIT_FAULT);
	lmig_fault_leave(d, first, n);
	return 0;
}

static int lmig_map_pages_entry(struct kretprobe_instance *ri,
				struct pt_regs *regs)
{
	struct lmig_fault_data *d = (struct lmig_fault_data *)ri->data;

	d->first = regs_get_kernel_argument(regs, 1);
	d->last = regs_get_kernel_argument(regs, 2);
	return lmig_fault_enter(d,
				(struct vm_fault *)regs_get_kernel_argument(regs, 0));
}

static int lmig_map_pages_ret(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct lmig_fault_data *d = (struct lmig_fault_data *)ri->data;

	lmig_hit(LMIG_HIT_MAP_PAGES);
	if (d->last >= d->first)
		lmig_fault_leave(d, d->first, d->last - d->first + 1);
	return 0;
}

static struct kretprobe lmig_finish_fault_rp = {
	.kp.symbol_name = "finish_fault",
	.entry_handler = lmig_finish_fault_entry,
	.handler = lmig_finish_fault_ret,
	.data_size = sizeof(struct lmig_fault_data),
	.maxactive = 256,
};

static struct kretprobe lmig_map_pages_rp = {
	.kp.symbol_name = "filemap_map_pages",
	.entry_handler = lmig_map_pages_entry,
	.handler = lmig_map_pages_ret,
	.data_size = sizeof(struct lmig_fault_data),
	.maxactive = 256,
};

/*
 * userfaultfd's UFFDIO_COPY and UFFDIO_CONTINUE install entries without a
 * fault: mfill_atomic_install_pte(..., dst_vma, ...).  Rare on a
 * migration source: such an install makes the next harvest a rescan.
 */
#ifdef MFILL_ATOMIC_MODE_BITS	/* 6.5 and later: uffd_flags_t */
#define LMIG_MFILL_VMA_ARG	1	/* (dst_pmd, dst_vma, ...) */
#else
#define LMIG_MFILL_VMA_ARG	2	/* (dst_mm, dst_pmd, dst_vma, ...) */
#endif

static int lmig_mfill_probe(struct kprobe *kp, struct pt_regs *regs)
{
	struct vm_area_struct *vma = (struct vm_area_struct *)
		regs_get_kernel_argument(regs, LMIG_MFILL_VMA_ARG);
	struct lmig_session *s;

	if (!vma->vm_file || !(vma->vm_flags & VM_SHARED))
		return 0;
	rcu_read_lock();
	list_for_each_entry_rcu(s, &lmig_sessions, node)
		if (s->mapping == vma->vm_file->f_mapping) {
			lmig_hit(LMIG_HIT_MFILL);
			lmig_set_unsure(s);
		}
	rcu_read_unlock();
	return 0;
}

static struct kprobe lmig_mfill_kp = {
	.symbol_name = "mfill_atomic_install_pte",
	.pre_handler = lmig_mfill_probe,
};

/*
 * fork() copies a parent's shared mappings without calling f_op->mmap.
 * Runs in the parent before the child is woken.
 */
static void lmig_fork_probe(void *data, struct task_struct *parent,
			    struct task_struct *child)
{
	struct mm_struct *mm = READ_ONCE(parent->mm);
	struct lmig_session *s;

	if (!mm || !child->mm || child->mm == mm)
		return;
	rcu_read_lock();
	list_for_each_entry_rcu(s, &lmig_sessions, node) {
		/*
		 * The parent may map the object without being watched yet:
		 * another of its threads has just mapped it and its task
		 * work has not run.  While any work is queued, every child
		 * is watched.  The counter drops only after the notifier is
		 * listed, so a zero count means the list is complete.
		 */
		bool queued = atomic_read(&s->works);

		/* Pairs with the barrier before the decrement. */
		smp_rmb();
		if (queued || lmig_watched(s, mm)) {
			lmig_hit(LMIG_HIT_FORK);
			lmig_queue(s, child, child->mm, NULL);
		}
	}
	rcu_read_unlock();
}

static struct tracepoint *lmig_fork_tp;

static void lmig_find_tp(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sched_process_fork"))
		lmig_fork_tp = tp;
}

static struct kprobe *lmig_kprobes[] = {
	&lmig_mmap_kp, &lmig_write_kp, &lmig_mfill_kp,
};

static struct kretprobe *lmig_kretprobes[] = {
	&lmig_finish_fault_rp, &lmig_map_pages_rp,
};

static bool lmig_kp_ok[ARRAY_SIZE(lmig_kprobes)];
static bool lmig_rp_ok[ARRAY_SIZE(lmig_kretprobes)];
static bool lmig_fork_tp_ok;

/*
 * Hits the probes missed (a probe hit inside another probe's handler, no
 * free kretprobe instance): a change between two harvests means a rescan.
 */
static unsigned long lmig_missed(void)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(lmig_kprobes); i++)
		n += READ_ONCE(lmig_kprobes[i]->nmissed);
	for (i = 0; i < ARRAY_SIZE(lmig_kretprobes); i++)
		n += READ_ONCE(lmig_kretprobes[i]->nmissed) +
		     READ_ONCE(lmig_kretprobes[i]->kp.nmissed);
	return n;
}

static void lmig_probes_register(void)
{
	bool ok = true;
	int ret, i;

	for (i = 0; i < ARRAY_SIZE(lmig_kprobes); i++) {
		ret = register_kprobe(lmig_kprobes[i]);
		lmig_kp_ok[i] = !ret;
		if (ret)
			pr_warn("no kprobe on %s (%d): every harvest reports the whole range\n",
				lmig_kprobes[i]->symbol_name, ret);
		ok &= !ret;
	}
	for (i = 0; i < ARRAY_SIZE(lmig_kretprobes); i++) {
		ret = register_kretprobe(lmig_kretprobes[i]);
		lmig_rp_ok[i] = !ret;
		if (ret)
			pr_warn("no kretprobe on %s (%d): every harvest reports the whole range\n",
				lmig_kretprobes[i]->kp.symbol_name, ret);
		ok &= !ret;
	}
	for_each_kernel_tracepoint(lmig_find_tp, NULL);
	ret = lmig_fork_tp ? tracepoint_probe_register(lmig_fork_tp,
						       lmig_fork_probe, NULL)
			   : -ENOENT;
	lmig_fork_tp_ok = !ret;
	if (ret)
		pr_warn("no probe on sched_process_fork (%d): every harvest reports the whole range\n",
			ret);
	lmig_probes_ok = ok && !ret;
}

static int lmig_probes_show(struct seq_file *m, void *unused)
{
	int i;

	for (i = 0; i < LMIG_NR_HITS; i++)
		seq_printf(m, "%s %ld\n", lmig_hit_names[i],
			   atomic_long_read(&lmig_hits[i]));
	seq_printf(m, "missed %lu\nprobes_ok %d\n", lmig_missed(),
		   lmig_probes_ok);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lmig_probes);

static void lmig_probes_unregister(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(lmig_kprobes); i++)
		if (lmig_kp_ok[i])
			unregister_kprobe(lmig_kprobes[i]);
	for (i = 0; i < ARRAY_SIZE(lmig_kretprobes); i++)
		if (lmig_rp_ok[i])
			unregister_kretprobe(lmig_kretprobes[i]);
	if (lmig_fork_tp_ok) {
		tracepoint_probe_unregister(lmig_fork_tp, lmig_fork_probe, NULL);
		tracepoint_synchronize_unregister();
	}
}

/* ---- the harvest ---- */

/* dst |= src over the range; returns how many bits were new in dst. */
static unsigned long lmig_merge(unsigned long *dst, const unsigned long *src,
				unsigned long nbits)
{
	unsigned long i, n = 0;

	for (i = 0; i < BITS_TO_LONGS(nbits); i++) {
		n += hweight_long(src[i] & ~dst[i]);
		dst[i] |= src[i];
	}
	return n;
}

struct lmig_walk {
	u64 folios, pages, dirty, notified, presence, ns;
	bool rescan;
};

/*
 * The harvest proper, into s->work.  Called with s->mutex held.
 *
 * Every folio of the range in the page cache is locked, checked to still
 * belong to the mapping, and write-protected in every page table that
 * maps it; when that cleaned a dirty or writable entry, its pages are
 * reported and the folio is marked dirty again (the kernel's own
 * accounting expects the dirty bit we took from the entry to land there).
 * Folios that may be pinned for DMA are reported now and at the next
 * harvest.  Then pages that appeared or left since the last walk, then
 * the pending bits, taken only now: a mapping torn down before the walk
 * reached its folio set its bits before the swap.
 *
 * A fatal signal stops the walk: what it had cleaned goes back to the
 * pending bits, nothing else is consumed, and -EINTR is returned.
 */
static int lmig_walk(struct lmig_session *s, struct lmig_walk *w,
		     bool take_pending)
{
	pgoff_t index = s->first, last = s->first + s->npages - 1;
	struct folio_batch fbatch;
	unsigned long *p;
	u64 t0 = ktime_get_ns();
	unsigned int i, nr;
	bool killed = false;

	memset(w, 0, sizeof(*w));
	bitmap_zero(s->work, s->npages);
	bitmap_zero(s->seen, s->npages);
	bitmap_zero(s->pinning, s->npages);
	folio_batch_init(&fbatch);
	WRITE_ONCE(s->harvester, current);
	while (!killed &&
	       (nr = filemap_get_folios(s->mapping, &index, last, &fbatch))) {
		for (i = 0; i < nr; i++) {
			struct folio *folio = fbatch.folios[i];
			pgoff_t lo = max_t(pgoff_t, folio->index, s->first);
			pgoff_t hi = min_t(pgoff_t, folio->index +
					   folio_nr_pages(folio) - 1, last);

			if (fatal_signal_pending(current)) {
				killed = true;
				break;
			}
			folio_lock(folio);
			if (folio->mapping != s->mapping || lo > hi) {
				/* Truncated meanwhile: it left the cache. */
				folio_unlock(folio);
				continue;
			}
			w->folios++;
			w->pages += hi - lo + 1;
			bitmap_set(s->seen, lo - s->first, hi - lo + 1);
			if (folio_mkclean(folio)) {
				bitmap_set(s->work, lo - s->first, hi - lo + 1);
				folio_mark_dirty(folio);
			}
			if (folio_maybe_dma_pinned(folio))
				bitmap_set(s->pinning, lo - s->first,
					   hi - lo + 1);
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
	WRITE_ONCE(s->harvester, NULL);
	if (killed) {
		spin_lock(&s->lock);
		bitmap_or(s->pending, s->pending, s->work, s->npages);
		spin_unlock(&s->lock);
		return -EINTR;
	}
	w->dirty = bitmap_weight(s->work, s->npages);

	/* Pinned now or at the last walk: DMA may have written it. */
	bitmap_or(s->pinned, s->pinned, s->pinning, s->npages);
	w->dirty += lmig_merge(s->work, s->pinned, s->npages);
	p = s->pinned;
	s->pinned = s->pinning;
	s->pinning = p;

	/* Appeared or left since the last walk: the content changed. */
	bitmap_xor(s->present, s->present, s->seen, s->npages);
	w->presence = lmig_merge(s->work, s->present, s->npages);
	p = s->present;
	s->present = s->seen;
	s->seen = p;

	if (take_pending) {
		unsigned long missed = lmig_missed();

		spin_lock(&s->lock);
		w->rescan = s->unsure || !lmig_probes_ok || missed != s->missed;
		s->missed = missed;
		s->unsure = false;
		if (atomic_read(&s->active)) {
			/*
			 * An invalidation is under way: the entries it found
			 * may still be written before they go.  Report its
			 * bits and keep them for the next harvest.
			 */
			w->notified = lmig_merge(s->work, s->pending,
						 s->npages);
			spin_unlock(&s->lock);
		} else {
			p = s->pending;
			s->pending = s->spare;
			s->spare = p;
			spin_unlock(&s->lock);
			w->notified = lmig_merge(s->work, s->spare, s->npages);
			bitmap_zero(s->spare, s->npages);
		}
	}
	w->dirty += w->presence + w->notified;
	if (w->rescan) {
		bitmap_set(s->work, 0, s->npages);
		w->dirty = s->npages;
	}
	w->ns = ktime_get_ns() - t0;
	return 0;
}

static int lmig_stats_show(struct seq_file *m, void *unused)
{
	struct lmig_session *s = m->private;
	int ret = mutex_lock_killable(&s->mutex);

	if (ret)
		return ret;
	seq_printf(m, "session %llu\nino %lu\noffset %llu\nlength %llu\n",
		   s->id, file_inode(s->file)->i_ino,
		   (u64)s->first << PAGE_SHIFT, (u64)s->npages << PAGE_SHIFT);
	seq_printf(m, "harvests %llu\ndirty %llu\nfolios %llu\npages %llu\n",
		   s->harvests, s->dirty, s->folios, s->pages);
	seq_printf(m, "ns %llu\nlast_ns %llu\nnotified %llu\npresence %llu\n",
		   s->ns, s->last_ns, s->notified, s->presence);
	seq_printf(m, "rescans %llu\n", s->rescans);
	spin_lock(&s->lock);
	seq_printf(m, "events %llu\nmms %u\nnotifiers %u\n", s->events,
		   s->nsubs, s->nsubs);
	spin_unlock(&s->lock);
	mutex_unlock(&s->mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lmig_stats);

/*
 * The object must be shmem: memfd, a tmpfs file, SysV shared memory.
 * Disk file systems write back and clean the page table entries
 * themselves (their folio_mkclean() would take the dirty bits from us),
 * and hugetlbfs, guest_memfd and DAX have no page cache of ordinary
 * folios to walk.
 */
static int lmig_check_file(struct file *file)
{
	struct inode *inode = file_inode(file);

	if (!(inode->i_mode & S_IFMT))
		return -EOPNOTSUPP;	/* anonymous inode: eventfd, ... */
	if (!S_ISREG(inode->i_mode))
		return -EINVAL;		/* directory, socket, pipe, device */
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (inode->i_sb->s_magic != TMPFS_MAGIC || !file->f_mapping ||
	    !file->f_mapping->host ||
	    file->f_mapping->host->i_sb->s_magic != TMPFS_MAGIC)
		return -EOPNOTSUPP;
	if (IS_DAX(inode) || !file->f_op->mmap)
		return -EOPNOTSUPP;
	return 0;
}

/* The pids are checked (they must exist) and kept; they change nothing. */
static int lmig_get_pids(struct lmig_session *s, const struct lmig_attach *a)
{
	s32 nr[LMIG_MAX_PIDS];
	unsigned int i;

	if (!a->npids)
		return 0;
	if (copy_from_user(nr, u64_to_user_ptr(a->pids),
			   a->npids * sizeof(nr[0])))
		return -EFAULT;
	for (i = 0; i < a->npids; i++) {
		if (nr[i] <= 0)
			return -EINVAL;
		s->pids[i] = find_get_pid(nr[i]);
		if (!s->pids[i])
			return -ESRCH;
		s->npids = i + 1;
	}
	return 0;
}

static void lmig_put_pids(struct lmig_session *s)
{
	while (s->npids)
		put_pid(s->pids[--s->npids]);
}

static void lmig_free_bitmaps(struct lmig_session *s)
{
	kvfree(s->pending);
	kvfree(s->spare);
	kvfree(s->present);
	kvfree(s->seen);
	kvfree(s->pinned);
	kvfree(s->pinning);
	kvfree(s->work);
	s->pending = NULL;
	s->spare = NULL;
	s->present = NULL;
	s->seen = NULL;
	s->pinned = NULL;
	s->pinning = NULL;
	s->work = NULL;
}

static int lmig_alloc_bitmaps(struct lmig_session *s)
{
	size_t n = BITS_TO_LONGS(s->npages);

	s->pending = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	s->spare = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	s->present = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	s->seen = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	s->pinned = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	s->pinning = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	s->work = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!s->pending || !s->spare || !s->present || !s->seen ||
	    !s->pinned || !s->pinning || !s->work) {
		lmig_free_bitmaps(s);
		return -ENOMEM;
	}
	return 0;
}

/* Take s off the probes' list and remove its notifiers. */
static void lmig_unwatch(struct lmig_session *s)
{
	struct lmig_sub *sub, *tmp;

	if (s->listed) {
		mutex_lock(&lmig_sessions_mutex);
		list_del_rcu(&s->node);
		mutex_unlock(&lmig_sessions_mutex);
		s->listed = false;
		/* No probe sees s after this; queued task works hold refs. */
		synchronize_rcu();
	}
	mutex_lock(&s->subs_mutex);
	WRITE_ONCE(s->closing, true);
	list_for_each_entry_safe(sub, tmp, &s->subs, node)
		lmig_sub_del(s, sub);
	mutex_unlock(&s->subs_mutex);
}

static long lmig_attach(struct lmig_session *s, void __user *uarg)
{
	struct lmig_attach a;
	struct lmig_walk w;
	struct file *file;
	u64 end;
	char name[24];
	int ret, i;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags & ~LMIG_ATTACH_FLAGS || a.reserved0)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(a.reserved); i++)
		if (a.reserved[i])
			return -EINVAL;
	if (a.npids > LMIG_MAX_PIDS)
		return -E2BIG;
	/* It once meant "only these": with no pid it watched nothing. */
	if ((a.flags & LMIG_ATTACH_PIDS_ONLY) && !a.npids)
		return -EINVAL;
	if (!a.length || !PAGE_ALIGNED(a.offset) || !PAGE_ALIGNED(a.length))
		return -EINVAL;
	if (check_add_overflow(a.offset, a.length, &end) ||
	    end > MAX_LFS_FILESIZE)
		return -EOVERFLOW;
	/* bitmap_set() and friends count bits in an unsigned int. */
	if (a.length >> PAGE_SHIFT > INT_MAX)
		return -E2BIG;

	ret = mutex_lock_killable(&s->mutex);
	if (ret)
		return ret;
	if (s->attached || s->file) {
		ret = -EBUSY;
		goto out_unlock;
	}
	file = fget(a.fd);
	if (!file) {
		ret = -EBADF;
		goto out_unlock;
	}
	ret = lmig_check_file(file);
	if (ret)
		goto out_fput;
	if (end > i_size_read(file_inode(file))) {
		ret = -ERANGE;
		goto out_fput;
	}
	ret = lmig_get_pids(s, &a);
	if (ret)
		goto out_pids;
	s->file = file;
	s->mapping = file->f_mapping;
	s->first = a.offset >> PAGE_SHIFT;
	s->npages = a.length >> PAGE_SHIFT;
	ret = lmig_alloc_bitmaps(s);
	if (ret)
		goto out_pids;
	/*
	 * Listed first: a mapping made from now on is seen by the probes,
	 * one made before is in the reverse map for lmig_discover().
	 */
	mutex_lock(&lmig_sessions_mutex);
	list_add_tail_rcu(&s->node, &lmig_sessions);
	mutex_unlock(&lmig_sessions_mutex);
	s->listed = true;
	ret = mutex_lock_killable(&s->subs_mutex);
	if (ret)
		goto out_unwatch;
	ret = lmig_discover(s);
	mutex_unlock(&s->subs_mutex);
	if (ret)
		goto out_unwatch;
	/*
	 * Start clean: write-protect everything and record what is present.
	 * Events before this walk are older than the attach; those during
	 * it stay pending for the first harvest.
	 */
	spin_lock(&s->lock);
	bitmap_zero(s->pending, s->npages);
	s->missed = lmig_missed();
	spin_unlock(&s->lock);
	ret = lmig_walk(s, &w, false);
	if (ret)
		goto out_unwatch;

	a.session = s->id;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		ret = -EFAULT;
		goto out_unwatch;
	}
	snprintf(name, sizeof(name), "%llu", s->id);
	s->dbg = debugfs_create_file(name, 0400, lmig_dbg_root, s,
				     &lmig_stats_fops);
	s->attached = true;
	trace_lmig_attach(s->id, file_inode(file)->i_ino, a.offset, a.length,
			  s->nsubs, s->nsubs);
	mutex_unlock(&s->mutex);
	return 0;

out_unwatch:
	/*
	 * A task work may still hold the session: it finds it closing.  The
	 * session cannot be attached again (s->file stays set until it is
	 * freed), so the bitmaps and the file stay until then too.
	 */
	lmig_unwatch(s);
	mutex_unlock(&s->mutex);
	return ret;
out_pids:
	lmig_put_pids(s);
	s->file = NULL;
	s->mapping = NULL;
out_fput:
	fput(file);
out_unlock:
	mutex_unlock(&s->mutex);
	return ret;
}

static long lmig_harvest(struct lmig_session *s, void __user *uarg)
{
	struct lmig_harvest h;
	struct lmig_walk w;
	int ret, i;

	if (copy_from_user(&h, uarg, sizeof(h)))
		return -EFAULT;
	if (h.flags || h.reserved0)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(h.reserved); i++)
		if (h.reserved[i])
			return -EINVAL;

	ret = mutex_lock_killable(&s->mutex);
	if (ret)
		return ret;
	if (!s->attached) {
		ret = -ENOTCONN;
		goto out_unlock;
	}
	if (h.bitmap_bits < s->npages) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	/* Nothing is consumed before the walk: a failure here loses nothing. */
	ret = mutex_lock_killable(&s->subs_mutex);
	if (ret)
		goto out_unlock;
	ret = lmig_discover(s);
	mutex_unlock(&s->subs_mutex);
	if (ret)
		goto out_unlock;
	ret = lmig_walk(s, &w, true);
	if (ret)
		goto out_unlock;
	h.dirty = w.dirty;
	h.folios = w.folios;
	h.pages = w.pages;
	h.notified = w.notified;
	h.presence = w.presence;
	h.ns = w.ns;
	h.flags = w.rescan ? LMIG_HARVEST_OUT_RESCAN : 0;
	/* Words are unsigned long: the module is built for 64-bit only. */
	BUILD_BUG_ON(BITS_PER_LONG != 64);
	if (copy_to_user(u64_to_user_ptr(h.bitmap), s->work,
			 BITS_TO_LONGS(s->npages) * sizeof(long)) ||
	    copy_to_user(uarg, &h, sizeof(h))) {
		/* Not delivered: keep the bits for the next harvest. */
		spin_lock(&s->lock);
		bitmap_or(s->pending, s->pending, s->work, s->npages);
		s->unsure |= w.rescan;
		spin_unlock(&s->lock);
		ret = -EFAULT;
		goto out_unlock;
	}
	s->harvests++;
	s->dirty += w.dirty;
	s->folios += w.folios;
	s->pages += w.pages;
	s->ns += w.ns;
	s->last_ns = w.ns;
	s->notified += w.notified;
	s->presence += w.presence;
	s->rescans += w.rescan;
	trace_lmig_harvest(s->id, w.folios, w.pages, w.dirty, w.notified, w.ns);
	mutex_unlock(&s->mutex);
	return min_t(u64, w.dirty, INT_MAX);

out_unlock:
	mutex_unlock(&s->mutex);
	return ret;
}

static long lmig_stats(struct lmig_session *s, void __user *uarg)
{
	struct lmig_stats st;
	int ret;

	memset(&st, 0, sizeof(st));
	ret = mutex_lock_killable(&s->mutex);
	if (ret)
		return ret;
	if (!s->attached) {
		mutex_unlock(&s->mutex);
		return -ENOTCONN;
	}
	st.session = s->id;
	st.offset = (u64)s->first << PAGE_SHIFT;
	st.length = (u64)s->npages << PAGE_SHIFT;
	st.harvests = s->harvests;
	st.dirty = s->dirty;
	st.folios = s->folios;
	st.pages = s->pages;
	st.ns = s->ns;
	st.last_ns = s->last_ns;
	st.notified = s->notified;
	st.presence = s->presence;
	st.rescans = s->rescans;
	spin_lock(&s->lock);
	st.events = s->events;
	st.mms = s->nsubs;
	st.notifiers = s->nsubs;
	spin_unlock(&s->lock);
	mutex_unlock(&s->mutex);
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

static long lmig_version(void __user *uarg)
{
	struct lmig_version v;

	memset(&v, 0, sizeof(v));
	v.abi = LMIG_ABI_VERSION;
	v.page_shift = PAGE_SHIFT;
	v.features = LMIG_FEATURES;
	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long lmig_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct lmig_session *s = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case LMIG_IOC_VERSION:
		return lmig_version(uarg);
	case LMIG_IOC_ATTACH:
		return lmig_attach(s, uarg);
	case LMIG_IOC_HARVEST:
		return lmig_harvest(s, uarg);
	case LMIG_IOC_STATS:
		return lmig_stats(s, uarg);
	default:
		return -ENOTTY;
	}
}

/* Watching other processes' memory is for the administrator only. */
static int lmig_open(struct inode *inode, struct file *filp)
{
	struct lmig_session *s;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return -ENOMEM;
	kref_init(&s->ref);
	mutex_init(&s->mutex);
	mutex_init(&s->subs_mutex);
	spin_lock_init(&s->lock);
	INIT_LIST_HEAD(&s->subs);
	INIT_LIST_HEAD(&s->node);
	atomic_set(&s->active, 0);
	atomic_set(&s->works, 0);
	s->id = atomic64_inc_return(&lmig_next_id);
	filp->private_data = s;
	return nonseekable_open(inode, filp);
}

/* The last reference: the file is closed and no task work is queued. */
static void lmig_session_free(struct kref *ref)
{
	struct lmig_session *s = container_of(ref, struct lmig_session, ref);

	lmig_free_bitmaps(s);
	lmig_put_pids(s);
	if (s->file)
		fput(s->file);
	mutex_destroy(&s->subs_mutex);
	mutex_destroy(&s->mutex);
	kfree(s);
}

static int lmig_release(struct inode *inode, struct file *filp)
{
	struct lmig_session *s = filp->private_data;

	/* Waits for readers of the file; they take s->mutex. */
	debugfs_remove(s->dbg);
	if (s->attached)
		trace_lmig_detach(s->id, s->harvests, s->dirty);
	lmig_unwatch(s);
	lmig_session_put(s);
	return 0;
}

static const struct file_operations lmig_fops = {
	.owner = THIS_MODULE,
	.open = lmig_open,
	.release = lmig_release,
	.unlocked_ioctl = lmig_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice lmig_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "lmig",
	.fops = &lmig_fops,
	.mode = 0600,
};

static int __init lmig_init(void)
{
	int ret;

	lmig_probes_register();
	lmig_dbg_root = debugfs_create_dir("lmig", NULL);
	debugfs_create_file("probes", 0400, lmig_dbg_root, NULL,
			    &lmig_probes_fops);
	ret = misc_register(&lmig_dev);
	if (ret) {
		debugfs_remove(lmig_dbg_root);
		lmig_probes_unregister();
		return ret;
	}
	return 0;
}

static void __exit lmig_exit(void)
{
	misc_deregister(&lmig_dev);
	debugfs_remove(lmig_dbg_root);
	lmig_probes_unregister();
	/*
	 * Every session is gone (each open file held the module), so no
	 * task work is queued (each held the module too); the last one may
	 * still be returning from lmig_work_fn(): a task is past our code
	 * once it has been through a voluntary switch or user space.
	 */
	synchronize_rcu_tasks();
	/* No notifier callback may still be running, nor a kfree_rcu(). */
	mmu_notifier_synchronize();
	rcu_barrier();
}

module_init(lmig_init);
module_exit(lmig_exit);

MODULE_DESCRIPTION("Dirty page tracking of shared memory objects for live migration: /dev/lmig reports the pages of a memfd, tmpfs file or SysV segment written since the previous harvest");
MODULE_AUTHOR("The lmig authors");
MODULE_VERSION("2.0");
MODULE_LICENSE("GPL");

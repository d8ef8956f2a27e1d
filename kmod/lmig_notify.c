// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the harvest's own walk cannot see in the page tables: entries torn
 * down or cleaned by someone else between harvests.  Every address space
 * that maps the object has a whole-mm MMU notifier of the session, found
 * through the object's reverse map (lmig_discover()); its callbacks walk
 * the page tables of the range about to change (lmig_scan()) and set the
 * pending bit of every page of the object they find mapped there.
 *
 * The callbacks run with mmap_lock, i_mmap_rwsem, folio locks or an
 * anon_vma lock held by their caller, possibly unable to sleep: they read
 * page tables under RCU without page table locks (the caller's locks keep
 * the tables of the range they invalidate) and take only s->lock.
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/rbtree.h>
#include <linux/rcupdate.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "lmig.h"

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
void lmig_scan(struct lmig_scan *sc, struct mm_struct *mm,
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
bool lmig_watched(struct lmig_session *s, struct mm_struct *mm)
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
int lmig_sub_add(struct lmig_session *s, struct mm_struct *mm)
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
void lmig_sub_del(struct lmig_session *s, struct lmig_sub *sub)
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
int lmig_discover(struct lmig_session *s)
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

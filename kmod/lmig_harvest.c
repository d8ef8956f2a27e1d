// SPDX-License-Identifier: GPL-2.0-only
/*
 * The harvest's walk of the object's page cache, and the bitmaps it
 * keeps between harvests.  Runs under s->mutex; takes s->lock only to
 * read and swap the pending bitmap that the notifier callbacks and the
 * probes fill.
 */
#include <linux/bitmap.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "lmig.h"

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
int lmig_walk(struct lmig_session *s, struct lmig_walk *w, bool take_pending)
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

void lmig_free_bitmaps(struct lmig_session *s)
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

int lmig_alloc_bitmaps(struct lmig_session *s)
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

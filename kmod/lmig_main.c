// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig.ko: reports which pages of a shared memory object (memfd, shmem,
 * regular file) were written since the previous harvest.
 *
 * Each open file of /dev/lmig is a session watching one page range of one
 * object.  A harvest walks the object's page cache and write-protects and
 * cleans every page table entry that maps each folio (folio_mkclean()); a
 * folio that had a dirty or writable mapping was written.  Page table
 * entries that disappear between harvests take their dirty bits with them,
 * so MMU interval notifiers on every address space that maps the object
 * record the pages they covered in a pending bitmap, which the next
 * harvest reports too.  Pages that enter or leave the page cache
 * (truncation, hole punching, swap) are reported as well.
 * Documentation/kmod.md has the ABI, the argument that no write is lost,
 * and what the module cannot see.
 *
 * Locking:
 *   session->mutex  serialises attach, harvest, stats, the debugfs file and
 *                   the notifier list; it is taken before any mmap_lock or
 *                   folio lock.
 *   session->lock   (spinlock) protects the pending bitmap, each
 *                   notifier's dead flag and the event counters; it is the
 *                   only lock the notifier callback takes, and nothing is
 *                   taken inside it.
 *   The callbacks run with mmap_lock, i_mmap_rwsem, folio locks or page
 *   table locks held by their caller, which is why they take nothing else.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/bsearch.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
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
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>

#include <linux/lmig.h>

#define CREATE_TRACE_POINTS
#include "lmig_trace.h"

#define LMIG_FEATURES	(LMIG_FEAT_NOTIFIERS | LMIG_FEAT_PRESENCE | \
			 LMIG_FEAT_FOLIO_GRAIN | LMIG_FEAT_PIDS | \
			 LMIG_FEAT_DEBUGFS)

struct lmig_session;

/* One mapping of the range in one address space. */
struct lmig_sub {
	struct mmu_interval_notifier mni;
	struct lmig_session *s;
	struct list_head node;
	unsigned long start;		/* addresses watched: [start, end) */
	unsigned long end;
	unsigned long index;		/* the range's page at start */
	bool dead;			/* unmapped whole or mm gone; s->lock */
	bool seen;			/* found again by this refresh */
};

struct lmig_session {
	struct mutex mutex;		/* see "Locking" above */
	spinlock_t lock;		/* see "Locking" above */
	u64 id;
	bool attached;
	bool pids_only;
	struct file *file;
	struct address_space *mapping;
	pgoff_t first;			/* first page of the range */
	unsigned long npages;
	unsigned long *pending;		/* torn down since the last harvest; lock */
	unsigned long *spare;		/* zeroed; swapped with pending */
	unsigned long *present;		/* in the page cache at the last walk */
	unsigned long *seen;		/* in the page cache at this walk */
	unsigned long *work;		/* this harvest's bits */
	struct list_head subs;
	unsigned int nsubs;
	unsigned int nmms;
	struct pid *pids[LMIG_MAX_PIDS];
	unsigned int npids;
	struct task_struct *harvester;	/* task inside our own folio_mkclean() */
	struct dentry *dbg;
	/* Totals (mutex), and the callback's counters (lock). */
	u64 harvests, dirty, folios, pages, ns, last_ns, notified, presence;
	u64 events;
};

static atomic64_t lmig_next_id = ATOMIC64_INIT(0);
static struct dentry *lmig_dbg_root;

/* Set the pages of [start, end) that the notifier covers as pending. */
static bool lmig_invalidate(struct mmu_interval_notifier *mni,
			    const struct mmu_notifier_range *range,
			    unsigned long cur_seq)
{
	struct lmig_sub *sub = container_of(mni, struct lmig_sub, mni);
	struct lmig_session *s = sub->s;
	unsigned long start = max(range->start & PAGE_MASK, sub->start);
	unsigned long end = PAGE_ALIGN(min(range->end, sub->end));

	/*
	 * Changes that keep the dirty bit in the entry: the next
	 * folio_mkclean() still sees it.  Our own harvest write-protects
	 * (PROTECTION_PAGE) too: not an event.
	 */
	switch (range->event) {
	case MMU_NOTIFY_PROTECTION_VMA:
	case MMU_NOTIFY_SOFT_DIRTY:
		return true;
	case MMU_NOTIFY_PROTECTION_PAGE:
		if (READ_ONCE(s->harvester) == current)
			return true;
		break;
	default:
		break;
	}
	if (start >= end)
		return true;

	spin_lock(&s->lock);
	s->events++;
	if (!sub->dead) {
		bitmap_set(s->pending,
			   sub->index + ((start - sub->start) >> PAGE_SHIFT),
			   (end - start) >> PAGE_SHIFT);
		/*
		 * Once the whole mapping is gone, these addresses may map
		 * something else: stop translating them.
		 */
		if (range->event == MMU_NOTIFY_RELEASE ||
		    (range->event == MMU_NOTIFY_UNMAP &&
		     start == sub->start && end == sub->end))
			sub->dead = true;
	}
	spin_unlock(&s->lock);
	return true;
}

static const struct mmu_interval_notifier_ops lmig_mni_ops = {
	.invalidate = lmig_invalidate,
};

static void lmig_sub_free(struct lmig_session *s, struct lmig_sub *sub)
{
	/* Waits for a callback that is running on it. */
	mmu_interval_notifier_remove(&sub->mni);
	list_del(&sub->node);
	s->nsubs--;
	kfree(sub);
}

static int lmig_ptr_cmp(const void *a, const void *b)
{
	unsigned long x = (unsigned long)*(void * const *)a;
	unsigned long y = (unsigned long)*(void * const *)b;

	return x < y ? -1 : x > y;
}

/* Pin task's mm into mms[*n] if it has one and there is room. */
static bool lmig_grab_mm(struct task_struct *task, struct mm_struct **mms,
			 unsigned int *n, unsigned int cap)
{
	struct mm_struct *mm;

	task_lock(task);
	mm = task->mm;
	if (mm && !(task->flags & PF_KTHREAD)) {
		if (*n == cap) {
			task_unlock(task);
			return false;
		}
		mmgrab(mm);
		mms[(*n)++] = mm;
	}
	task_unlock(task);
	return true;
}

/*
 * The address spaces to look at: those of the pids given at attach and,
 * unless told otherwise, of every process.  Returns their number, sorted
 * and unique, each pinned with mmgrab(), or a negative errno.
 */
static int lmig_collect_mms(struct lmig_session *s, struct mm_struct ***out)
{
	unsigned int cap = 128, n, i, u;
	struct mm_struct **mms;
	struct task_struct *p;
	bool full;

again:
	mms = kvmalloc_array(cap, sizeof(*mms), GFP_KERNEL);
	if (!mms)
		return -ENOMEM;
	n = 0;
	full = false;
	for (i = 0; i < s->npids && !full; i++) {
		p = get_pid_task(s->pids[i], PIDTYPE_PID);
		if (!p)
			continue;
		full = !lmig_grab_mm(p, mms, &n, cap);
		put_task_struct(p);
	}
	if (!s->pids_only && !full) {
		rcu_read_lock();
		for_each_process(p) {
			if (!lmig_grab_mm(p, mms, &n, cap)) {
				full = true;
				break;
			}
		}
		rcu_read_unlock();
	}
	if (full) {
		for (i = 0; i < n; i++)
			mmdrop(mms[i]);
		kvfree(mms);
		cap *= 2;
		goto again;
	}
	sort(mms, n, sizeof(*mms), lmig_ptr_cmp, NULL);
	for (i = 0, u = 0; i < n; i++) {
		if (u && mms[u - 1] == mms[i])
			mmdrop(mms[i]);
		else
			mms[u++] = mms[i];
	}
	*out = mms;
	return u;
}

struct lmig_span {
	unsigned long start, end, index;
};

/*
 * Find the shared mappings of the range in mm and make sure each has a
 * live notifier.  Called with s->mutex held and mm pinned.
 */
static int lmig_watch_mm(struct lmig_session *s, struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	struct lmig_span *spans = NULL;
	unsigned int nspans = 0, cap = 0, i;
	struct lmig_sub *sub;
	bool found;
	int ret = 0;

	if (!mmget_not_zero(mm))
		return 0;		/* exiting: its notifiers saw the release */
	mmap_read_lock(mm);
	for (vma = find_vma(mm, 0); vma; vma = find_vma(mm, vma->vm_end)) {
		unsigned long lo, hi, vfirst = vma->vm_pgoff;
		unsigned long vlast = vfirst + vma_pages(vma);

		if (!vma->vm_file || vma->vm_file->f_mapping != s->mapping ||
		    !(vma->vm_flags & VM_SHARED) ||
		    !(vma->vm_flags & VM_MAYWRITE))
			continue;
		lo = max_t(unsigned long, vfirst, s->first);
		hi = min_t(unsigned long, vlast, s->first + s->npages);
		if (lo >= hi)
			continue;
		if (nspans == cap) {
			struct lmig_span *n;

			cap = cap ? cap * 2 : 8;
			n = krealloc_array(spans, cap, sizeof(*spans), GFP_KERNEL);
			if (!n) {
				ret = -ENOMEM;
				break;
			}
			spans = n;
		}
		spans[nspans].start = vma->vm_start + ((lo - vfirst) << PAGE_SHIFT);
		spans[nspans].end = spans[nspans].start + ((hi - lo) << PAGE_SHIFT);
		spans[nspans].index = lo - s->first;
		nspans++;
	}
	mmap_read_unlock(mm);

	for (i = 0; i < nspans && !ret; i++) {
		found = false;
		spin_lock(&s->lock);
		list_for_each_entry(sub, &s->subs, node) {
			if (sub->mni.mm == mm && !sub->dead &&
			    sub->start == spans[i].start &&
			    sub->end == spans[i].end &&
			    sub->index == spans[i].index) {
				sub->seen = true;
				found = true;
				break;
			}
		}
		spin_unlock(&s->lock);
		if (found)
			continue;
		sub = kzalloc(sizeof(*sub), GFP_KERNEL);
		if (!sub) {
			ret = -ENOMEM;
			break;
		}
		sub->s = s;
		sub->start = spans[i].start;
		sub->end = spans[i].end;
		sub->index = spans[i].index;
		sub->seen = true;
		/* Takes mmap_lock itself the first time for this mm. */
		ret = mmu_interval_notifier_insert(&sub->mni, mm, sub->start,
						   sub->end - sub->start,
						   &lmig_mni_ops);
		if (ret) {
			kfree(sub);
			break;
		}
		list_add_tail(&sub->node, &s->subs);
		s->nsubs++;
	}
	kfree(spans);
	mmput(mm);
	return ret ? ret : nspans > 0;
}

/*
 * Bring the notifiers up to date with the mappings of the range: one per
 * mapping in each address space found.  Notifiers of mappings that are
 * gone are removed; those of address spaces not found this time (a pid
 * no longer listed, a process without tasks) stay until they die.
 */
static int lmig_watch(struct lmig_session *s)
{
	struct lmig_sub *sub, *tmp;
	struct mm_struct **mms;
	unsigned int nmms = 0;
	int n, i, ret = 0, r;

	n = lmig_collect_mms(s, &mms);
	if (n < 0)
		return n;
	list_for_each_entry(sub, &s->subs, node)
		sub->seen = false;
	for (i = 0; i < n; i++) {
		r = ret ? 0 : lmig_watch_mm(s, mms[i]);
		if (r < 0)
			ret = r;
		else
			nmms += r;
	}
	list_for_each_entry_safe(sub, tmp, &s->subs, node) {
		bool dead;

		spin_lock(&s->lock);
		dead = sub->dead;
		spin_unlock(&s->lock);
		if (!dead && (sub->seen || ret ||
			      !bsearch(&sub->mni.mm, mms, n, sizeof(*mms),
				       lmig_ptr_cmp)))
			continue;
		lmig_sub_free(s, sub);
	}
	for (i = 0; i < n; i++)
		mmdrop(mms[i]);
	kvfree(mms);
	s->nmms = nmms;
	return ret;
}

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
};

/*
 * The harvest proper, into s->work.  Called with s->mutex held.
 *
 * Every folio of the range in the page cache is locked, checked to still
 * belong to the mapping, and write-protected in every page table that
 * maps it; when that cleaned a dirty or writable entry, its pages are
 * reported and the folio is marked dirty again (the kernel's own
 * accounting expects the dirty bit we took from the entry to land there).
 * Then pages that appeared or left since the last walk, then the pending
 * bits, taken only now: a mapping torn down before the walk reached its
 * folio set its bits before the swap.
 */
static void lmig_walk(struct lmig_session *s, struct lmig_walk *w,
		      bool take_pending)
{
	pgoff_t index = s->first, last = s->first + s->npages - 1;
	struct folio_batch fbatch;
	unsigned long *p;
	u64 t0 = ktime_get_ns();
	unsigned int i, nr;

	memset(w, 0, sizeof(*w));
	bitmap_zero(s->work, s->npages);
	bitmap_zero(s->seen, s->npages);
	folio_batch_init(&fbatch);
	WRITE_ONCE(s->harvester, current);
	while ((nr = filemap_get_folios(s->mapping, &index, last, &fbatch))) {
		for (i = 0; i < nr; i++) {
			struct folio *folio = fbatch.folios[i];
			pgoff_t lo = max_t(pgoff_t, folio->index, s->first);
			pgoff_t hi = min_t(pgoff_t, folio->index +
					   folio_nr_pages(folio) - 1, last);

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
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
	WRITE_ONCE(s->harvester, NULL);
	w->dirty = bitmap_weight(s->work, s->npages);

	/* Appeared or left since the last walk: the content changed. */
	bitmap_xor(s->present, s->present, s->seen, s->npages);
	w->presence = lmig_merge(s->work, s->present, s->npages);
	p = s->present;
	s->present = s->seen;
	s->seen = p;

	if (take_pending) {
		spin_lock(&s->lock);
		p = s->pending;
		s->pending = s->spare;
		s->spare = p;
		spin_unlock(&s->lock);
		w->notified = lmig_merge(s->work, s->spare, s->npages);
		bitmap_zero(s->spare, s->npages);
	}
	w->dirty += w->presence + w->notified;
	w->ns = ktime_get_ns() - t0;
}

static int lmig_stats_show(struct seq_file *m, void *unused)
{
	struct lmig_session *s = m->private;

	mutex_lock(&s->mutex);
	seq_printf(m, "session %llu\nino %lu\noffset %llu\nlength %llu\n",
		   s->id, file_inode(s->file)->i_ino,
		   (u64)s->first << PAGE_SHIFT, (u64)s->npages << PAGE_SHIFT);
	seq_printf(m, "harvests %llu\ndirty %llu\nfolios %llu\npages %llu\n",
		   s->harvests, s->dirty, s->folios, s->pages);
	seq_printf(m, "ns %llu\nlast_ns %llu\nnotified %llu\npresence %llu\n",
		   s->ns, s->last_ns, s->notified, s->presence);
	spin_lock(&s->lock);
	seq_printf(m, "events %llu\n", s->events);
	spin_unlock(&s->lock);
	seq_printf(m, "mms %u\nnotifiers %u\n", s->nmms, s->nsubs);
	mutex_unlock(&s->mutex);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(lmig_stats);

/* The object must be a file with a page cache we can walk and map. */
static int lmig_check_file(struct file *file)
{
	struct inode *inode = file_inode(file);

	if (!(inode->i_mode & S_IFMT))
		return -EOPNOTSUPP;	/* anonymous inode: eventfd, ... */
	if (!S_ISREG(inode->i_mode))
		return -EINVAL;		/* directory, socket, pipe, device */
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	/* hugetlbfs, also behind a SysV SHM_HUGETLB segment's file */
	if (inode->i_sb->s_magic == HUGETLBFS_MAGIC || !file->f_mapping ||
	    file->f_mapping->host->i_sb->s_magic == HUGETLBFS_MAGIC)
		return -EOPNOTSUPP;
	if (IS_DAX(inode) || !file->f_op->mmap)
		return -EOPNOTSUPP;
	return 0;
}

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
	kvfree(s->work);
	s->pending = NULL;
	s->spare = NULL;
	s->present = NULL;
	s->seen = NULL;
	s->work = NULL;
}

static int lmig_alloc_bitmaps(struct lmig_session *s)
{
	size_t n = BITS_TO_LONGS(s->npages);

	s->pending = kvcalloc(n, sizeof(long), GFP_KERNEL);
	s->spare = kvcalloc(n, sizeof(long), GFP_KERNEL);
	s->present = kvcalloc(n, sizeof(long), GFP_KERNEL);
	s->seen = kvcalloc(n, sizeof(long), GFP_KERNEL);
	s->work = kvcalloc(n, sizeof(long), GFP_KERNEL);
	if (!s->pending || !s->spare || !s->present || !s->seen || !s->work) {
		lmig_free_bitmaps(s);
		return -ENOMEM;
	}
	return 0;
}

static void lmig_unwatch(struct lmig_session *s)
{
	struct lmig_sub *sub, *tmp;

	list_for_each_entry_safe(sub, tmp, &s->subs, node)
		lmig_sub_free(s, sub);
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
	if (!a.length || !PAGE_ALIGNED(a.offset) || !PAGE_ALIGNED(a.length))
		return -EINVAL;
	if (check_add_overflow(a.offset, a.length, &end) ||
	    end > MAX_LFS_FILESIZE)
		return -EOVERFLOW;
	/* bitmap_set() and friends count bits in an unsigned int. */
	if (a.length >> PAGE_SHIFT > INT_MAX)
		return -E2BIG;

	mutex_lock(&s->mutex);
	if (s->attached) {
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
	s->pids_only = a.flags & LMIG_ATTACH_PIDS_ONLY;
	ret = lmig_alloc_bitmaps(s);
	if (ret)
		goto out_pids;
	ret = lmig_watch(s);
	if (ret)
		goto out_unwatch;
	/*
	 * Start clean: write-protect everything and record what is present.
	 * Teardowns before this walk are older than the attach; those during
	 * it stay pending for the first harvest.
	 */
	spin_lock(&s->lock);
	bitmap_zero(s->pending, s->npages);
	spin_unlock(&s->lock);
	lmig_walk(s, &w, false);

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
			  s->nmms, s->nsubs);
	mutex_unlock(&s->mutex);
	return 0;

out_unwatch:
	lmig_unwatch(s);
	lmig_free_bitmaps(s);
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

	mutex_lock(&s->mutex);
	if (!s->attached) {
		ret = -ENOTCONN;
		goto out_unlock;
	}
	if (h.bitmap_bits < s->npages) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	/* Nothing is consumed before the walk: a failure here loses nothing. */
	ret = lmig_watch(s);
	if (ret)
		goto out_unlock;
	lmig_walk(s, &w, true);
	/* Words are unsigned long: the module is built for 64-bit only. */
	BUILD_BUG_ON(BITS_PER_LONG != 64);
	if (copy_to_user(u64_to_user_ptr(h.bitmap), s->work,
			 BITS_TO_LONGS(s->npages) * sizeof(long))) {
		/* Not delivered: keep the bits for the next harvest. */
		spin_lock(&s->lock);
		bitmap_or(s->pending, s->pending, s->work, s->npages);
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
	trace_lmig_harvest(s->id, w.folios, w.pages, w.dirty, w.notified, w.ns);
	mutex_unlock(&s->mutex);

	h.dirty = w.dirty;
	h.folios = w.folios;
	h.pages = w.pages;
	h.notified = w.notified;
	h.presence = w.presence;
	h.ns = w.ns;
	if (copy_to_user(uarg, &h, sizeof(h)))
		return -EFAULT;
	return min_t(u64, w.dirty, INT_MAX);

out_unlock:
	mutex_unlock(&s->mutex);
	return ret;
}

static long lmig_stats(struct lmig_session *s, void __user *uarg)
{
	struct lmig_stats st;

	memset(&st, 0, sizeof(st));
	mutex_lock(&s->mutex);
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
	st.mms = s->nmms;
	st.notifiers = s->nsubs;
	spin_lock(&s->lock);
	st.events = s->events;
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

static int lmig_open(struct inode *inode, struct file *filp)
{
	struct lmig_session *s;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	mutex_init(&s->mutex);
	spin_lock_init(&s->lock);
	INIT_LIST_HEAD(&s->subs);
	s->id = atomic64_inc_return(&lmig_next_id);
	filp->private_data = s;
	return nonseekable_open(inode, filp);
}

static int lmig_release(struct inode *inode, struct file *filp)
{
	struct lmig_session *s = filp->private_data;

	/* Waits for readers of the file; they take s->mutex. */
	debugfs_remove(s->dbg);
	if (s->attached) {
		trace_lmig_detach(s->id, s->harvests, s->dirty);
		lmig_unwatch(s);
		lmig_free_bitmaps(s);
		lmig_put_pids(s);
		fput(s->file);
	}
	mutex_destroy(&s->mutex);
	kfree(s);
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

	lmig_dbg_root = debugfs_create_dir("lmig", NULL);
	ret = misc_register(&lmig_dev);
	if (ret) {
		debugfs_remove(lmig_dbg_root);
		return ret;
	}
	return 0;
}

static void __exit lmig_exit(void)
{
	misc_deregister(&lmig_dev);
	debugfs_remove(lmig_dbg_root);
	/* No callback of ours may still be running once the code is gone. */
	mmu_notifier_synchronize();
}

module_init(lmig_init);
module_exit(lmig_exit);

MODULE_DESCRIPTION("lmig: pages of a shared memory object written since the last harvest");
MODULE_AUTHOR("lmig developers");
MODULE_LICENSE("GPL");

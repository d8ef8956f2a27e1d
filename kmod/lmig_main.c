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
 * The files:
 *   lmig_main.c     the device, open and close, the ioctls (attach,
 *                   harvest, stats, version), debugfs, module init and
 *                   exit: start here.
 *   lmig_harvest.c  the harvest's walk of the page cache (lmig_walk()).
 *   lmig_notify.c   the page table scan, the MMU notifier callbacks and
 *                   the discovery of the address spaces that map the
 *                   object (lmig_discover()).
 *   lmig_probes.c   the kprobes, kretprobes and the fork tracepoint, and
 *                   the task work that registers a notifier for a new
 *                   mapper.
 *   lmig.h          the session and what the files call across.
 *   lmig_trace.h    the tracepoints (created here).
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
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/magic.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/rcupdate_wait.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "lmig.h"

#define CREATE_TRACE_POINTS
#include "lmig_trace.h"

#ifndef CONFIG_MMU_NOTIFIER
#error "lmig.ko needs CONFIG_MMU_NOTIFIER"
#endif

#define LMIG_FEATURES	(LMIG_FEAT_NOTIFIERS | LMIG_FEAT_PRESENCE | \
			 LMIG_FEAT_FOLIO_GRAIN | LMIG_FEAT_PIDS | \
			 LMIG_FEAT_DEBUGFS | LMIG_FEAT_RESCAN)

static atomic64_t lmig_next_id = ATOMIC64_INIT(0);
static struct dentry *lmig_dbg_root;
LIST_HEAD(lmig_sessions);
/* Writers of lmig_sessions: attach and close. */
static DEFINE_MUTEX(lmig_sessions_mutex);

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
void lmig_session_free(struct kref *ref)
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
	lmig_probes_debugfs(lmig_dbg_root);
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
MODULE_AUTHOR("lmig developers");
MODULE_VERSION(LMIG_VERSION);
MODULE_LICENSE("GPL");

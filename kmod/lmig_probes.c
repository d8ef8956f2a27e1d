// SPDX-License-Identifier: GPL-2.0-only
/*
 * What happens between harvests that neither the harvest's walk nor the
 * MMU notifiers see:
 *
 *  - a new mapping in an address space the session does not watch yet
 *    (kprobe on shmem_mmap, shmem's f_op->mmap) or a fork of a watched one
 *    (the sched_process_fork tracepoint) queues task work that registers
 *    the notifier before the task returns to user space, then marks the
 *    new mapping's pages pending;
 *  - write(2) and everything else that copies into the page cache without
 *    a page table entry ends in shmem_write_end(): a kprobe there sets
 *    the bits of the bytes written;
 *  - page faults that install entries while an invalidation runs
 *    (kretprobes on finish_fault and filemap_map_pages);
 *  - userfaultfd installs (kprobe on mfill_atomic_install_pte).
 *
 * A probe that could not be registered, or a hit a probe missed, makes
 * every harvest (or the next one) report the whole range.
 *
 * The probes run in atomic context: RCU over lmig_sessions, s->lock and
 * GFP_ATOMIC allocations only.  The task work sleeps: it takes
 * s->subs_mutex.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/tracepoint.h>
#include <linux/userfaultfd_k.h>

#include "lmig.h"

/* Set by lmig_probes_register() before the device exists. */
bool lmig_probes_ok;

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
unsigned long lmig_missed(void)
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

void lmig_probes_register(void)
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

/* Hits per probe, missed hits and whether every probe is in place. */
void lmig_probes_debugfs(struct dentry *dir)
{
	debugfs_create_file("probes", 0400, dir, NULL, &lmig_probes_fops);
}

void lmig_probes_unregister(void)
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

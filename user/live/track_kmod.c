// SPDX-License-Identifier: GPL-2.0-only
/*
 * The kmod tracker: lmig.ko (kmod/, Documentation/kmod.md) watches the
 * page cache of a shared object — memfd, tmpfs file, SysV shm — and
 * reports the pages written since the previous harvest, whoever wrote
 * them: through any mapping (the VMM, a vhost-user backend, a KVM guest:
 * the module's folio_mkclean() also invalidates KVM's secondary
 * mappings), or, with a module that has LMIG_FEAT_RESCAN, by write(2)
 * and the other system calls that copy into the page cache.
 * Unlike soft-dirty it needs no process to be stopped and sees every
 * mapper of the object, not one process's page tables.
 *
 * The module reports at folio granularity: a written 2 MiB folio sets 512
 * bits, which tracker_harvest() then refines to the pages whose content
 * changed (TRACK_HUGE_PAGES in track.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmig/wire.h>
#include <uapi/linux/lmig.h>

#include "lib/err.h"
#include "live/track.h"

struct kmod_priv {
	int dev;
	uint64_t *bits;
	uint64_t words;
};

static int open_dev(uint64_t *features)
{
	struct lmig_version v = { 0 };
	int fd = open(LMIG_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return lmig_err_errno(errno, "%s (insmod kmod/lmig.ko)", LMIG_DEVICE);
	if (ioctl(fd, LMIG_IOC_VERSION, &v)) {
		lmig_err_errno(errno, "%s: version query", LMIG_DEVICE);
		goto err;
	}
	if (v.abi != LMIG_ABI_VERSION || v.page_shift != LMIG_PAGE_SHIFT) {
		lmig_err("%s speaks ABI %u with %u-byte pages; this lmig needs ABI %u, %u-byte pages",
			 LMIG_DEVICE, v.abi, 1U << (v.page_shift & 31), LMIG_ABI_VERSION,
			 LMIG_PAGE_SIZE);
		goto err;
	}
	if (features)
		*features = v.features;
	return fd;
err:
	close(fd);
	return -1;
}

static int kmod_probe(const struct track_target *tg)
{
	int fd;

	if (tg->fd < 0)
		return lmig_err("the kmod tracker watches shared objects (a memfd, tmpfs file or SysV shm), not private memory");
	/* The module watches whole pages within the file's size. */
	if (tg->size % LMIG_PAGE_SIZE)
		return lmig_err("the kmod tracker needs an object whose size is a multiple of %u bytes",
				LMIG_PAGE_SIZE);
	fd = open_dev(NULL);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int kmod_start(struct tracker *t)
{
	struct kmod_priv *p = calloc(1, sizeof(*p));
	uint64_t features = 0;
	int32_t pid = t->tg.pid;
	struct lmig_attach a = {
		.fd = t->tg.fd,
		.length = t->npages * LMIG_PAGE_SIZE,
		.pids = pid > 0 ? (uintptr_t)&pid : 0,
		.npids = pid > 0,
	};

	if (!p)
		return lmig_err("out of memory");
	t->priv = p;
	p->words = bitmap_words(t->npages);
	p->bits = calloc(p->words, sizeof(*p->bits));
	p->dev = open_dev(&features);
	if (!p->bits || p->dev < 0)
		goto err;
	/*
	 * A module that can answer "unsure" also sees write(2), splice and
	 * the like (its shmem_write_end probe), or answers unsure when it
	 * cannot: the object check need not compare contents for them.
	 */
	t->sees_syscalls = features & LMIG_FEAT_RESCAN;
	if (ioctl(p->dev, LMIG_IOC_ATTACH, &a)) {
		lmig_err_errno(errno, "%s: cannot watch this object", LMIG_DEVICE);
		goto err;
	}
	/*
	 * Round 0 reads every page after this point: what was written before
	 * it is sent anyway, so the first harvest's backlog is dropped.
	 */
	struct lmig_harvest h = { .bitmap = (uintptr_t)p->bits, .bitmap_bits = t->npages };

	if (ioctl(p->dev, LMIG_IOC_HARVEST, &h) < 0) {
		lmig_err_errno(errno, "%s: first harvest", LMIG_DEVICE);
		goto err;
	}
	return 0;
err:
	if (p->dev >= 0)
		close(p->dev);
	free(p->bits);
	free(p);
	t->priv = NULL;
	return -1;
}

static int kmod_harvest(struct tracker *t, uint64_t *bitmap)
{
	struct kmod_priv *p = t->priv;
	struct lmig_harvest h = { .bitmap = (uintptr_t)p->bits, .bitmap_bits = t->npages };

	memset(p->bits, 0, p->words * sizeof(*p->bits));
	if (ioctl(p->dev, LMIG_IOC_HARVEST, &h) < 0)
		return lmig_err_errno(errno, "%s: harvest", LMIG_DEVICE);
	/*
	 * The module could not vouch for this round (a new address space
	 * it could not watch in time, a probe missing): every page of the
	 * range counts as changed; the hash refinement keeps what is equal.
	 */
	if (h.flags & LMIG_HARVEST_OUT_RESCAN)
		memset(p->bits, 0xff, p->words * sizeof(*p->bits));
	for (uint64_t i = 0; i < p->words; i++)
		bitmap[i] |= p->bits[i];
	if (h.flags & LMIG_HARVEST_OUT_RESCAN && t->npages % 64)
		bitmap[p->words - 1] &= ~0ULL >> (64 - t->npages % 64);
	return 0;
}

static void kmod_stop(struct tracker *t)
{
	struct kmod_priv *p = t->priv;

	if (!p)
		return;
	close(p->dev);
	free(p->bits);
	free(p);
	t->priv = NULL;
}

const struct tracker_ops track_kmod_ops = {
	.name = "kmod",
	.probe = kmod_probe,
	.start = kmod_start,
	.harvest = kmod_harvest,
	.stop = kmod_stop,
};

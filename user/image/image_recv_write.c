// SPDX-License-Identifier: GPL-2.0-only
/*
 * Receiver engine: what a write holds on to (a receive buffer, counted,
 * or a page of the pool) and the writes themselves, page runs written
 * with IORING_OP_WRITEV and zero runs punched out of the output.
 *
 * An output on hugetlbfs takes neither write(2) nor holes smaller than
 * its huge page: it is mapped (MAP_SHARED) and each write is a copy into
 * the mapping, zero runs included, done here in the receiver's thread;
 * an IORING_OP_NOP then completes it through the ring like any other, so
 * the buffers, the round barrier and the commit see no difference.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/vfs.h>

#include <linux/falloc.h>
#include <linux/magic.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/codec.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image_recv.h"

/* ---- buffers ---------------------------------------------------------- */

void image_rbuf_put(struct image_receiver *r, unsigned int c, unsigned int bid)
{
	struct image_rx_chan *ch = &r->ch[c];

	if (--ch->refs[bid])
		return;
	if (r->ms)
		chan_rx_give(&ch->rx, bid);
	else
		ch->free_bid[ch->nfree++] = bid;
}

int image_pool_get(struct image_receiver *r)
{
	return r->npool_free ? r->pool_free[--r->npool_free] : -1;
}

uint8_t *image_pool_page(struct image_receiver *r, int id)
{
	return r->pool + (size_t)id * LMIG_PAGE_SIZE;
}

void image_ref_put(struct image_receiver *r, struct ref ref)
{
	if (ref.chan == REF_POOL)
		r->pool_free[r->npool_free++] = ref.id;
	else if (ref.chan >= 0)
		image_rbuf_put(r, ref.chan, ref.id);
}

/* ---- writes ----------------------------------------------------------- */

/* Read-only, so a write from it can never carry anything but zeros. */
static const uint8_t zero_page[LMIG_PAGE_SIZE] __attribute__((aligned(LMIG_PAGE_SIZE)));

/* A WOP_ZERO slot's next piece: up to WOP_IOV zero pages from op->off on. */
static void zero_iovs(struct wop *op)
{
	size_t left = op->len;

	op->niov = op->first_iov = op->nref = 0;
	while (left && op->niov < WOP_IOV) {
		size_t n = left < LMIG_PAGE_SIZE ? left : LMIG_PAGE_SIZE;

		op->iov[op->niov++] = (struct iovec){ (void *)zero_page, n };
		left -= n;
	}
}

/* ---- an output on hugetlbfs: written through a mapping ---------------- */

int image_map_output(struct image_receiver *r)
{
	struct statfs fs;
	void *m;

	if (fstatfs(r->out.fd, &fs) || fs.f_type != HUGETLBFS_MAGIC)
		return 0;
	r->hpage = (uint64_t)fs.f_bsize;	/* hugetlbfs: its huge page size */
	r->map_len = (r->hi.image_size + r->hpage - 1) / r->hpage * r->hpage;
	/*
	 * No reservation of this mapping's own: the pages are the file's
	 * (QEMU's mapping reserved them), and each range is allocated by
	 * fallocate() before it is touched (map_populate()).
	 */
	m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r->out.fd, 0);
	if (m == MAP_FAILED) {
		r->out.err = errno;
		return lmig_err_errno(r->out.err, "cannot map %s (hugetlbfs)", r->out.tmp);
	}
	r->map = m;
	return 0;
}

void image_unmap_output(struct image_receiver *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
}

/*
 * Allocate the huge pages under [off, off + len) that the file does not
 * hold yet (fallocate skips those it holds).  A huge page that cannot be
 * had is then this error, where a store into the mapping would be a
 * SIGBUS.  0 or an errno.
 */
static int map_populate(struct image_receiver *r, uint64_t off, uint64_t len)
{
	uint64_t a = off - off % r->hpage, b = off + len;

	if (b % r->hpage)
		b += r->hpage - b % r->hpage;
	while (fallocate(r->out.fd, FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a)))
		if (errno != EINTR)
			return errno;
	return 0;
}

/*
 * The write op describes, into the mapping.  Zero runs are stored as
 * zeros, never punched: hugetlbfs punches only whole huge pages (a
 * kernel before 6.2 leaves the rest of a range as it was, without an
 * error), and a punched page also loses its reservation, so the guest
 * could later find no huge page to fault in.  0 or an errno.
 */
static int map_write(struct image_receiver *r, const struct wop *op)
{
	uint8_t *dst = r->map + op->off;
	int err = map_populate(r, op->off, op->len);

	if (err)
		return err;
	if (op->kind != WOP_DATA) {
		memset(dst, 0, op->len);
		return 0;
	}
	for (unsigned int i = op->first_iov; i < op->niov; i++) {
		memcpy(dst, op->iov[i].iov_base, op->iov[i].iov_len);
		dst += op->iov[i].iov_len;
	}
	return 0;
}

void image_wop_submit(struct image_receiver *r, int w)
{
	struct wop *op = &r->wops[w];
	struct io_uring_sqe *sqe = uring_get_sqe(&r->ring);

	if (r->map) {
		op->map_err = map_write(r, op);
		io_uring_prep_nop(sqe);
	} else if (op->kind == WOP_PUNCH)
		io_uring_prep_fallocate(sqe, r->out.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					op->off, op->len);
	else
		io_uring_prep_writev(sqe, r->out.fd, op->iov + op->first_iov,
				     op->niov - op->first_iov, op->off);
	io_uring_sqe_set_data64(sqe, UD(UD_WRITE, 0, w));
	r->writes_inflight++;
	r->st->write_ops++;
}

void image_flush_write(struct image_receiver *r, struct image_rx_chan *ch)
{
	if (ch->wop < 0)
		return;
	/* A run with pages still being decoded goes out when the last one is. */
	if (r->wops[ch->wop].decoding)
		r->wops[ch->wop].closed = true;
	else
		image_wop_submit(r, ch->wop);
	ch->wop = -1;
}

size_t image_page_len(struct image_receiver *r, uint64_t pg)
{
	uint64_t off = pg * LMIG_PAGE_SIZE;

	/* The image's last page may be partial. */
	return off + LMIG_PAGE_SIZE > r->hi.image_size ? r->hi.image_size - off : LMIG_PAGE_SIZE;
}

/* Would image_add_write() for page pg need a write slot that is not there? */
bool image_write_blocked(struct image_receiver *r, struct image_rx_chan *ch, uint64_t pg)
{
	struct wop *op = ch->wop >= 0 ? &r->wops[ch->wop] : NULL;

	if (op && op->nref < WOP_IOV && op->off + op->len == pg * LMIG_PAGE_SIZE)
		return false;
	return r->wop_free < 0;
}

/* Queue page pg from p, taking over one reference; image_write_blocked() was false. */
void image_add_write(struct image_receiver *r, struct image_rx_chan *ch, uint64_t pg, const void *p,
		      struct ref ref)
{
	uint64_t off = pg * LMIG_PAGE_SIZE;
	size_t len = image_page_len(r, pg);
	struct wop *op = ch->wop >= 0 ? &r->wops[ch->wop] : NULL;

	if (op && (op->nref == WOP_IOV || op->off + op->len != off))
		image_flush_write(r, ch);
	if (ch->wop < 0) {
		ch->wop = r->wop_free;
		op = &r->wops[ch->wop];
		r->wop_free = op->next_free;
		op->kind = WOP_DATA;
		op->niov = op->first_iov = op->nref = 0;
		op->decoding = 0;
		op->closed = false;
		op->off = off;
		op->len = 0;
	}
	op = &r->wops[ch->wop];
	/*
	 * Pages that follow each other in memory too (a receive buffer's run
	 * of raw pages, pool pages handed out in order) make one iovec: the
	 * kernel then copies a run into the page cache in one piece.
	 */
	if (op->niov && (uint8_t *)op->iov[op->niov - 1].iov_base + op->iov[op->niov - 1].iov_len == p)
		op->iov[op->niov - 1].iov_len += len;
	else
		op->iov[op->niov++] = (struct iovec){ (void *)p, len };
	op->ref[op->nref++] = ref;
	op->len += len;
}

/*
 * Zero pages idx..idx+n-1 over whatever the output holds there: a hole
 * where the filesystem can punch one (a sparse image stays sparse),
 * written zeros where it cannot.  Needs a free write slot (r->wop_free >= 0).
 */
void image_add_zero(struct image_receiver *r, uint64_t idx, uint64_t n)
{
	int w = r->wop_free;
	struct wop *op = &r->wops[w];
	uint64_t off = idx * LMIG_PAGE_SIZE, end = (idx + n) * LMIG_PAGE_SIZE;

	if (end > r->hi.image_size)
		end = r->hi.image_size;
	r->wop_free = op->next_free;
	op->off = off;
	op->len = end - off;
	op->kind = r->no_punch ? WOP_ZERO : WOP_PUNCH;
	op->niov = op->first_iov = op->nref = 0;
	if (op->kind == WOP_ZERO)
		zero_iovs(op);
	image_wop_submit(r, w);
}

/* A write is complete: its buffers and its slot go back. */
static void wop_release(struct image_receiver *r, int w)
{
	struct wop *op = &r->wops[w];

	/* Backwards: the pool hands its pages out again in ascending order. */
	for (unsigned int i = op->nref; i-- > 0;)
		image_ref_put(r, op->ref[i]);
	op->next_free = r->wop_free;
	r->wop_free = w;
}

int image_write_done(struct image_receiver *r, int w, int res)
{
	struct wop *op = &r->wops[w];

	r->writes_inflight--;
	if (r->map) {
		/* Copied when submitted (map_write()): the NOP only brings it here. */
		if (op->map_err)
			return fail(r, LMIG_ST_IO, "writing %s: %s", r->out.tmp,
				    strerror(op->map_err));
		wop_release(r, w);
		return 0;
	}
	if (op->kind == WOP_PUNCH) {
		if (res == -EOPNOTSUPP || res == -ENOSYS || res == -EINVAL) {
			/* No holes here (or no fallocate in io_uring): write the zeros. */
			r->no_punch = true;
			op->kind = WOP_ZERO;
			zero_iovs(op);
			image_wop_submit(r, w);
			return 0;
		}
		if (res < 0)
			return fail(r, LMIG_ST_IO, "zeroing pages of %s: %s", r->out.tmp,
				    strerror(-res));
		op->len = 0;
		res = 0;
	}
	if (res < 0)
		return fail(r, LMIG_ST_IO, "writing %s: %s", r->out.tmp, strerror(-res));
	if (res == 0 && op->len)
		return fail(r, LMIG_ST_IO, "writing %s: no progress", r->out.tmp);
	/* Short write: skip what was written and submit the rest. */
	op->off += res;
	op->len -= res;
	while (op->first_iov < op->niov && (size_t)res >= op->iov[op->first_iov].iov_len)
		res -= op->iov[op->first_iov++].iov_len;
	if (op->len && op->kind == WOP_ZERO) {
		zero_iovs(op);	/* the next piece of the run, or the rest of a short one */
		image_wop_submit(r, w);
		return 0;
	}
	if (op->len) {
		op->iov[op->first_iov].iov_base = (char *)op->iov[op->first_iov].iov_base + res;
		op->iov[op->first_iov].iov_len -= res;
		image_wop_submit(r, w);
		return 0;
	}
	wop_release(r, w);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Receiver engine, the end of a receive: the image digest against the
 * sender's, --verify-readback, and the commit (with LMIG_CAP_CONFIRM, the
 * verdict, the sender's CONFIRM, then FINAL).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/codec.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image_recv.h"
#include "chan/wire.h"

/*
 * --verify-readback: read the output back through a descriptor of its own
 * and hash every page again.  The digest of those hashes must be the
 * sender's; a page that differs from what was written is named.
 */
static int verify_readback(struct image_receiver *r, const uint8_t want[16])
{
	const size_t chunk = 4u << 20;
	uint64_t *got = malloc(r->npages * sizeof(*got));
	uint8_t *buf = malloc(chunk), digest[16];
	char path[64];
	double t0 = now_s();
	int fd, ret = -1;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->out.fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !got || !buf) {
		if (fd < 0)
			lmig_err_errno(errno, "cannot re-open %s to read it back", r->out.tmp);
		else
			lmig_err("out of memory for reading back %s", r->out.tmp);
		r->fail_status = LMIG_ST_IO;
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (uint64_t off = 0; off < r->hi.image_size;) {
		size_t want_len = r->hi.image_size - off < chunk ? r->hi.image_size - off : chunk;
		ssize_t n = pread(fd, buf, want_len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(r, LMIG_ST_IO, "reading back %s: %s", r->out.tmp,
			     n ? strerror(errno) : "file is shorter than the image");
			goto out;
		}
		/* Whole pages only, except at the image's end (zero-padded, as sent). */
		if ((size_t)n < want_len && n % LMIG_PAGE_SIZE)
			n -= n % LMIG_PAGE_SIZE;
		if (n % LMIG_PAGE_SIZE) {
			memset(buf + n, 0, LMIG_PAGE_SIZE - n % LMIG_PAGE_SIZE);
			n += LMIG_PAGE_SIZE - n % LMIG_PAGE_SIZE;
		}
		for (ssize_t i = 0; i < n; i += LMIG_PAGE_SIZE)
			got[(off + i) / LMIG_PAGE_SIZE] = codec_page_hash(buf + i);
		off += n;
	}
	codec_digest(got, r->npages, digest);
	if (memcmp(digest, want, 16)) {
		uint64_t p = 0;

		while (p < r->npages && got[p] == r->hashes[p])
			p++;
		if (p < r->npages)
			fail(r, LMIG_ST_DIGEST, "read back %s: page %llu differs from what was received",
			     r->out.tmp, (unsigned long long)p);
		else
			fail(r, LMIG_ST_DIGEST, "read back %s: image digest mismatch", r->out.tmp);
		goto out;
	}
	ret = 0;
out:
	r->st->readback_s = now_s() - t0;
	if (fd >= 0)
		close(fd);
	free(got);
	free(buf);
	return ret;
}

/*
 * The ring's receive on channel 0 would take the sender's CONFIRM: cancel
 * it before the verdict goes out (the sender sends nothing before it has
 * the verdict), and wait until it has ended.
 */
static int stop_receiving(struct image_receiver *r)
{
	struct image_rx_chan *ch = &r->ch[0];
	struct io_uring_sqe *sqe;
	bool cancelled = false;
	double t0 = now_s();

	if (!ch->rx.armed)
		return 0;
	sqe = uring_get_sqe(&r->ring);
	io_uring_prep_cancel_fd(sqe, r->link[0].fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
	io_uring_submit(&r->ring);
	while (ch->rx.armed || !cancelled) {
		struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
		struct io_uring_cqe *cqe;
		uint64_t ud;
		int ret = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);

		if (ret == -ETIME || ret == -EINTR) {
			if (now_s() - t0 > 1)
				return fail(r, LMIG_ST_IO, "cannot stop receiving on channel 0");
			continue;
		}
		if (ret < 0)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		ud = io_uring_cqe_get_data64(cqe);
		if (!ud) {
			cancelled = true;
		} else if (ud_kind(ud) == UD_RECV && !ud_a(ud)) {
			chan_rx_done(&ch->rx, cqe, r->ms, 0);
			if (cqe->res > 0) {
				io_uring_cqe_seen(&r->ring, cqe);
				return fail(r, LMIG_ST_PROTOCOL, "channel 0: data after the end frame");
			}
		}
		io_uring_cqe_seen(&r->ring, cqe);
	}
	return 0;
}

/*
 * LMIG_CAP_CONFIRM: the image is verified.  Say so, and commit only when
 * the sender confirms: a sender that never learnt of the verdict resumes
 * its source, so the image must then never appear.  The data is flushed
 * before the verdict, so the commit the sender waits for is only the link
 * and the directory's flush.
 */
static int confirmed_commit(struct image_receiver *r)
{
	struct lmig_result res;

	if (stop_receiving(r))
		return -1;

	if (r->o->sync && fdatasync(r->out.fd)) {
		r->fail_status = LMIG_ST_IO;
		return lmig_err_errno(errno, "cannot flush %s", r->out.tmp);
	}
	wire_result_build(&res, LMIG_ST_OK, r->npages, NULL);
	if (chan_write_full(r->link[0].fd, &r->link[0].tls, &res, sizeof(res), r->o->timeout_ms,
			    "sending the verdict"))
		return -1;
	r->verdict_sent = true;
	if (chan_read_full(r->link[0].fd, &r->link[0].tls, &res, sizeof(res), r->o->timeout_ms,
			   "waiting for the sender to confirm the commit") ||
	    wire_confirm_parse(&res, r->npages)) {
		r->fail_status = LMIG_ST_PROTOCOL;
		return -1;
	}
	if (dst_image_commit(&r->out, r->o->sync)) {
		r->fail_status = LMIG_ST_IO;
		return -1;
	}
	r->out_ok = false;
	/* Committed: a FINAL that gets lost leaves the source paused, never running. */
	wire_result_build_as(&res, LMIG_FINAL_MAGIC, LMIG_ST_OK, r->npages, NULL);
	chan_write_full(r->link[0].fd, &r->link[0].tls, &res, sizeof(res), r->o->timeout_ms,
			"sending the final result");
	return 0;
}

int image_verify_and_commit(struct image_receiver *r)
{
	uint8_t digest[16];

	for (unsigned int c = 1; c < r->nch; c++)
		if (memcmp(r->ch[c].end.digest, r->ch[0].end.digest, 16))
			return fail(r, LMIG_ST_PROTOCOL, "channels disagree on the image digest");
	for (uint64_t p = 0; p < r->npages; p++)
		if (!r->seen[p])
			return fail(r, LMIG_ST_INCOMPLETE, "page %llu never arrived",
				    (unsigned long long)p);
	codec_digest(r->hashes, r->npages, digest);
	memcpy(r->st->digest, digest, sizeof(digest));
	if (memcmp(digest, r->ch[0].end.digest, 16))
		return fail(r, LMIG_ST_DIGEST, "image digest mismatch: the received image differs from the source");
	if (r->o->verify_readback && verify_readback(r, r->ch[0].end.digest))
		return -1;
	if (r->confirm)
		return confirmed_commit(r);
	if (dst_image_commit(&r->out, r->o->sync)) {
		r->fail_status = LMIG_ST_IO;
		return -1;
	}
	r->out_ok = false;
	return 0;
}

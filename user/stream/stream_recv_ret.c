// SPDX-License-Identifier: GPL-2.0-only
/*
 * Destination side of the stream transport: the return direction
 * (LMIG_CAP_RETURN).  What the destination QEMU writes on a connection is
 * read (one receive in flight per stream, RBLOCK at most, never beyond the
 * source's credit plus LMIG_STREAM_RWINDOW) and sent back on channel 0 as
 * one RDATA frame, built in place behind its header; its end (the
 * destination QEMU shut its writing half or closed) goes back as REND with
 * the digest of every byte returned.
 *
 * The frames are written to channel 0 at once, like the replies: the
 * source always has a receive there, and the window bounds what can be
 * under way, so a write waits for the network only, never for QEMU on
 * the other side.  A stream whose return direction has no credit left is
 * not read, and nothing else waits for it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream_recv.h"
#include "stream/stream_resume.h"

/*
 * A session carried one way (`pipe recv`, whose stdin under QEMU's exec:
 * is QEMU's end of a pipe, or a source that does not take the return
 * direction) while the destination QEMU has a return path (return-path,
 * postcopy) and writes it: the source QEMU then waits for answers that
 * never come, while this destination may start the guest.  So the first
 * byte the destination writes fails the migration at once, before QEMU
 * got its stream whole.
 */
static void watch_one_way(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];
	int fd = r->o->to.kind == SEP_STDIO ? STDIN_FILENO : s->fd;
	struct io_uring_sqe *sqe;
	struct stat st;

	if (fstat(fd, &st) || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return;
	s->rbuf = malloc(1);
	if (!s->rbuf)
		return;
	sqe = uring_get_sqe(&r->ring);
	io_uring_prep_read(sqe, fd, s->rbuf, 1, -1);
	io_uring_sqe_set_data64(sqe, UD(UD_READ, i, 0));
	s->rreading = true;
}

int stream_ret_open(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];

	if (!r->ret) {
		watch_one_way(r, i);
		return 0;
	}
	s->rbuf = malloc(SFRAME + RBLOCK);
	if (!s->rbuf)
		return fail(r, LMIG_ST_IO, "out of memory");
	s->ret = true;
	XXH3_128bits_reset(&s->rdig);
	stream_ret_arm(r, i);
	return 0;
}

void stream_ret_arm(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];
	uint64_t win = s->racked + LMIG_STREAM_RWINDOW - s->roff;
	size_t n = win < RBLOCK ? win : RBLOCK;
	struct io_uring_sqe *sqe;

	if (!s->ret || s->rreading || s->rend_sent || s->fd < 0 || !n ||
	    (r->rv && !stream_resume_rx_room(r)))
		return;
	sqe = uring_get_sqe(&r->ring);
	io_uring_prep_recv(sqe, s->fd, s->rbuf + SFRAME, n, 0);
	io_uring_sqe_set_data64(sqe, UD(UD_READ, i, 0));
	s->rreading = true;
}

static int send_rframe(struct stream_receiver *r, unsigned int type, unsigned int i,
		       uint8_t *frame, uint32_t len, uint32_t raw, uint64_t hash)
{
	struct stream_out *s = r->s[i];

	sframe_build((struct lmig_sframe *)frame, type, 0, i, len, r->rseq, s->roff, raw, hash);
	if (r->rv) {
		if (stream_resume_rx_send(r, frame, SFRAME + len))
			return -1;
	} else if (chan_write_full(r->link[0].fd, &r->link[0].tls, frame, SFRAME + len, r->o->timeout_ms,
			    "sending the destination's bytes back")) {
		stream_io_why(r, "the receiver cannot send back to the source", 0);
		return fail(r, LMIG_ST_IO, "%s", lmig_errmsg());
	}
	r->rseq++;
	r->st->bytes_wire += SFRAME + len;
	return 0;
}

int stream_ret_read_done(struct stream_receiver *r, unsigned int i, int res)
{
	struct stream_out *s = r->s[i];
	uint8_t *data = s->rbuf + SFRAME;

	s->rreading = false;
	if (!s->ret) {
		/* Watched (watch_one_way()): its end, or an error, is no concern. */
		if (res <= 0)
			return 0;
		if (r->o->to.kind == SEP_STDIO) {
			stream_io_why(r, "the destination QEMU sends a return path, which 'lmig pipe' does not carry", 0);
			return fail(r, LMIG_ST_IO, "the destination QEMU wrote to stdin: it has a return path (return-path or postcopy on), which 'lmig pipe' does not carry (use 'lmig proxy')");
		}
		stream_io_why(r, "the destination QEMU sends a return path, which this session carries one way", 0);
		return fail(r, LMIG_ST_IO, "stream %u: the destination QEMU sent bytes back (a return path: return-path or postcopy on), and the source carries one way ('lmig pipe send', or an older lmig)", i);
	}
	if (res < 0) {
		stream_io_why(r, "the receiver's destination failed", -res);
		return fail(r, LMIG_ST_IO, "stream %u: reading what the destination sends back: %s", i,
			    res == -ECONNRESET ? "it reset the connection" : strerror(-res));
	}
	r->t_progress = now_s();
	if (res == 0) {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&s->rdig));
		memcpy(data, c.digest, 16);
		if (send_rframe(r, LMIG_SF_REND, i, s->rbuf, 16, 0, 0))
			return -1;
		s->rend_sent = true;
		if (s->closed && s->fd >= 0) {
			close(s->fd);
			s->fd = -1;
		}
		return 0;
	}
	XXH3_128bits_update(&s->rdig, data, res);
	if (send_rframe(r, LMIG_SF_RDATA, i, s->rbuf, res, res, XXH3_64bits(data, res)))
		return -1;
	s->roff += res;
	r->st->bytes_return += res;
	stream_ret_arm(r, i);
	return 0;
}

int stream_ret_credit(struct stream_receiver *r, const struct lmig_sframe *f)
{
	uint32_t i = le32toh(f->stream);
	uint64_t off = le64toh(f->offset);
	struct stream_out *s;

	if (!r->ret)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u: return credit, but the streams are carried one way",
			    i);
	if (!(s = stream_get_stream(r, i)))
		return -1;
	if (!s->ret || off > s->roff)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u: return credit to %llu, %llu were sent back",
			    i, (unsigned long long)off, (unsigned long long)s->roff);
	if (off > s->racked)
		s->racked = off;
	stream_ret_arm(r, i);
	return 0;
}

bool stream_ret_over(const struct stream_out *s)
{
	return s->closed && (!s->ret || s->rend_sent);
}

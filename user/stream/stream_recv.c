// SPDX-License-Identifier: GPL-2.0-only
/*
 * Destination side of the stream transport (`lmig pipe recv`, `lmig
 * proxy recv`): one thread, one io_uring.
 *
 * Each channel has a multishot receive fed from a ring of provided
 * buffers (plain receives where the kernel lacks them).  A received chunk
 * is parsed at once and its buffer goes straight back to the ring: frame
 * headers are gathered in a small area, block payloads are copied out
 * into a block of their own (LZ4 blocks decoded into one), every block's
 * hash is checked, and the block is put in its stream's reorder tree by
 * offset (a red-black tree, tsearch(3): O(log n) whatever order blocks
 * come in).  Blocks that continue a stream move to its output queue, and
 * each stream has one IORING_OP_WRITEV in flight to its destination
 * (stdout, or its own connection to the destination QEMU) covering as
 * many queued blocks as are there.
 *
 * Destinations are opened in stream order, so the destination QEMU
 * accepts its connections in the order the source accepted QEMU's.  Bytes
 * written out return as CREDIT to the source (the stream's window, see
 * include/lmig/stream.h).  When every channel ended with DONE and every
 * stream was written whole and matched its END digest, the destination
 * connections are closed cleanly and the verdict goes back.  On any error
 * they are reset instead (TCP) or closed early, never ended as if whole.
 *
 * What a source can make this side hold is bounded: a block must lie in
 * its stream's window (checked without overflow), and every block held,
 * out of order or waiting for its write, is charged its bytes plus
 * BLK_COST against a per-stream limit (STREAM_HELD_MAX) and against
 * --max-pending for all streams; going over is a protocol error.  And a
 * source must keep the streams moving: --timeout without a byte written
 * to the destination fails, whatever arrives meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <malloc.h>
#include <lz4.h>
#include <search.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "lib/xxh.h"
#include "chan/channel.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "stream/stream.h"

#define SFRAME		sizeof(struct lmig_sframe)
#define WIOV		64		/* blocks in one write */
#define CREDIT_STEP	(LMIG_STREAM_WINDOW / 8)
#define PLAIN_SIZE	(CHAN_RBUF_SIZE + TLS_RECORD_MAX)	/* userspace TLS: a chunk's records, opened */
/* What a held block costs beyond its bytes: its header, malloc's, the tree node. */
#define BLK_COST	64

struct blk {
	struct blk *next;		/* in outq */
	uint64_t off;
	uint32_t len;
	uint8_t data[];
};

/* A stream written to the destination QEMU. */
struct stream_out {
	bool seen, open_seen, opened, end_seen, verified, closed, writing;
	int fd;
	void *pend;			/* out of order: tsearch(3) tree by offset */
	uint64_t pend_hi;		/* the end of the furthest block received */
	uint64_t held;			/* cost of the blocks in pend and outq */
	struct blk *outq, *outq_tail;	/* in order, to write */
	size_t out_pos;			/* bytes of outq already written */
	uint64_t next_off;		/* the next byte to move to outq */
	uint64_t written, credited;
	double t_credit;		/* when credited was sent */
	uint64_t end_len;
	uint8_t end_digest[16];
	XXH3_state_t dig;
	struct iovec iov[WIOV];
};

enum stream_pstate { PS_HDR, PS_PAY, PS_DONE };

/* A channel from the source lmig: its receive buffers and its frame parser. */
struct stream_rx_chan {
	struct chan_rx rx;
	enum stream_pstate ps;
	union {
		uint8_t area[SFRAME];
		struct lmig_sframe fr;
	};
	size_t have;
	uint8_t *pay;			/* payload being gathered */
	struct blk *blk;		/* the DATA block being built */
	uint32_t pay_have;
	uint64_t seq;
};

struct stream_receiver {
	const struct stream_recv_opts *o;
	struct stream_stats *st;
	struct io_uring ring;
	bool ring_ok, ms;
	struct chan *link;		/* the channels' sockets and sessions */
	struct stream_rx_chan *ch;	/* ... and what is received on them */
	unsigned int nch;
	struct stream_out *s[LMIG_STREAM_MAX];
	unsigned int opened_upto;	/* streams below have their destination open */
	unsigned int done_chans;
	int64_t nstreams;		/* from DONE, -1 before */
	uint8_t *plain;			/* PLAIN_SIZE, with userspace TLS */
	uint32_t fail_status;
	const char *fail_why;		/* LMIG_ST_IO: what a plain peer is told, see verdict_text() */
	int fail_err;			/* and the system's error, or 0 */
	uint64_t held;			/* cost of every stream's held blocks */
	double t0;
	double t_progress;		/* the last byte written to a destination, or
					 * the first frame; 0 before */
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* An error, and the status the peer's verdict will carry (the first one stands). */
#define fail(r, status, ...)	chan_fail(&(r)->fail_status, status, __VA_ARGS__)

/* What a failure of this side (LMIG_ST_IO) tells an unauthenticated source. */
static void io_why(struct stream_receiver *r, const char *why, int err)
{
	if (!r->fail_status) {
		r->fail_why = why;
		r->fail_err = err;
	}
}

static struct stream_out *get_stream(struct stream_receiver *r, uint32_t i)
{
	struct stream_out *s;

	if (i >= LMIG_STREAM_MAX)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u is beyond the limit of %u", i,
			    LMIG_STREAM_MAX), NULL;
	if (r->o->to.kind == SEP_STDIO && i > 0)
		return fail(r, LMIG_ST_PROTOCOL,
			    "the source has more than one stream; 'lmig pipe recv' writes one (use 'lmig proxy recv')"),
		       NULL;
	if (r->nstreams >= 0 && i >= r->nstreams)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u after the source said it had %lld", i,
			    (long long)r->nstreams), NULL;
	s = r->s[i];
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return fail(r, LMIG_ST_IO, "out of memory"), NULL;
		s->fd = -1;
		XXH3_128bits_reset(&s->dig);
		r->s[i] = s;
		r->st->streams++;
	}
	s->seen = true;
	return s;
}

static void send_reply(struct stream_receiver *r, unsigned int type, unsigned int status, uint32_t stream,
		       uint64_t bytes, const char *reason, int timeout_ms)
{
	struct lmig_sreply rep;

	sreply_build(&rep, type, status, stream, bytes, reason);
	/* Replies are small and rare: the socket's buffer always has room. */
	if (!chan_write_full(r->link[0].fd, &r->link[0].tls, &rep, sizeof(rep), timeout_ms,
			     "replying to the source"))
		r->st->bytes_wire += sizeof(rep);
}

/* ---- output ------------------------------------------------------------ */

static void submit_write(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];
	struct io_uring_sqe *sqe;
	unsigned int n = 0;

	if (!s->opened || s->writing || !s->outq || s->closed)
		return;
	for (struct blk *b = s->outq; b && n < WIOV; b = b->next, n++)
		s->iov[n] = (struct iovec){ b->data, b->len };
	s->iov[0].iov_base = (uint8_t *)s->iov[0].iov_base + s->out_pos;
	s->iov[0].iov_len -= s->out_pos;
	sqe = uring_get_sqe(&r->ring);
	io_uring_prep_writev(sqe, s->fd, s->iov, n, -1);
	io_uring_sqe_set_data64(sqe, UD(UD_WRITE, i, 0));
	s->writing = true;
}

/* End a stream's destination cleanly once it is whole, verified and written. */
static bool maybe_close(struct stream_receiver *r, struct stream_out *s)
{
	if (s->closed || !s->verified || !s->opened || s->written != s->end_len)
		return false;
	s->closed = true;
	if (r->o->to.kind == SEP_STDIO) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* Keep fd 1 taken, so nothing else lands on it. */
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			close(null);
		} else {
			close(STDOUT_FILENO);
		}
	} else {
		shutdown(s->fd, SHUT_WR);
		close(s->fd);
	}
	s->fd = -1;
	return true;
}

/* ---- held blocks ------------------------------------------------------- */

/*
 * Blocks never overlap in a tree, so "overlaps" is "equal": tsearch()
 * finds the block a new one would overlap, and tfind() of the one byte
 * next_off finds the block that starts there (none lies below it).
 */
static int blk_cmp(const void *a, const void *b)
{
	const struct blk *x = a, *y = b;

	if (x->off + x->len <= y->off)
		return -1;
	if (y->off + y->len <= x->off)
		return 1;
	return 0;
}

static uint64_t blk_cost(const struct blk *b)
{
	return b->len + BLK_COST;
}

/* Charge a block to its stream and the total, or fail if either would go over. */
static int hold(struct stream_receiver *r, unsigned int i, struct stream_out *s, const struct blk *b)
{
	uint64_t c = blk_cost(b), max = r->o->max_pending;
	char a[32], l[32];

	if (s->held + c > STREAM_HELD_MAX)
		return fail(r, LMIG_ST_PROTOCOL, "stream %u: the source made this side hold %s of blocks not yet written, over the per-stream limit of %s",
			    i, fmt_bytes(a, sizeof(a), (double)(s->held + c)),
			    fmt_bytes(l, sizeof(l), (double)STREAM_HELD_MAX));
	if (r->held + c > max)
		return fail(r, LMIG_ST_PROTOCOL, "the source made this side hold %s of blocks not yet written, over --max-pending %s",
			    fmt_bytes(a, sizeof(a), (double)(r->held + c)),
			    fmt_bytes(l, sizeof(l), (double)max));
	s->held += c;
	r->held += c;
	return 0;
}

static void unhold(struct stream_receiver *r, struct stream_out *s, const struct blk *b)
{
	s->held -= blk_cost(b);
	r->held -= blk_cost(b);
}

static int write_done(struct stream_receiver *r, unsigned int i, int res)
{
	struct stream_out *s = r->s[i];

	s->writing = false;
	if (res < 0) {
		io_why(r, "the receiver cannot write to its destination", -res);
		return fail(r, LMIG_ST_IO, "stream %u: writing to %s: %s", i,
			    r->o->to.kind == SEP_STDIO ? "stdout" : "the destination", strerror(-res));
	}
	if (res == 0) {
		io_why(r, "the receiver's destination takes no more data", 0);
		return fail(r, LMIG_ST_IO, "stream %u: the destination takes no more data", i);
	}
	s->written += res;
	r->st->bytes_stream += res;
	r->t_progress = now_s();
	res += s->out_pos;
	while (s->outq && (size_t)res >= s->outq->len) {
		struct blk *b = s->outq;

		res -= b->len;
		s->outq = b->next;
		unhold(r, s, b);
		free(b);
	}
	if (!s->outq)
		s->outq_tail = NULL;
	s->out_pos = res;
	if (maybe_close(r, s))
		return 0;
	/* Every CREDIT_STEP, and each half second of slower progress: the source's stall clock. */
	if (s->written - s->credited >= CREDIT_STEP || r->t_progress - s->t_credit >= 0.5) {
		send_reply(r, LMIG_SR_CREDIT, 0, i, s->written, NULL, 5000);
		s->credited = s->written;
		s->t_credit = r->t_progress;
	}
	return 0;
}

/* Move what continues the stream to its output; check the digest at the end. */
static int deliver(struct stream_receiver *r, unsigned int i)
{
	struct stream_out *s = r->s[i];

	for (;;) {
		struct blk key = { .off = s->next_off, .len = 1 }, **at, *b;

		at = s->pend ? tfind(&key, &s->pend, blk_cmp) : NULL;
		if (!at)
			break;
		b = *at;
		tdelete(b, &s->pend, blk_cmp);
		XXH3_128bits_update(&s->dig, b->data, b->len);
		s->next_off += b->len;
		b->next = NULL;
		if (s->outq_tail)
			s->outq_tail->next = b;
		else
			s->outq = b;
		s->outq_tail = b;
	}
	if (s->end_seen && s->next_off == s->end_len && !s->verified) {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&s->dig));
		if (memcmp(c.digest, s->end_digest, 16))
			return fail(r, LMIG_ST_DIGEST, "stream %u: digest mismatch: the bytes differ from the source's",
				    i);
		s->verified = true;
	}
	maybe_close(r, s);
	return 0;
}

static int open_streams(struct stream_receiver *r)
{
	while (r->opened_upto < LMIG_STREAM_MAX && r->s[r->opened_upto] &&
	       r->s[r->opened_upto]->open_seen) {
		struct stream_out *s = r->s[r->opened_upto];

		if (r->o->to.kind == SEP_STDIO) {
			s->fd = STDOUT_FILENO;
			fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
		} else {
			s->fd = sendpoint_connect(&r->o->to, r->o->timeout_ms);
			if (s->fd < 0) {
				/* The error names the socket: the source hears errno only. */
				io_why(r, "the receiver cannot connect to its destination", errno);
				if (!r->fail_status)
					r->fail_status = LMIG_ST_IO;
				return -1;
			}
		}
		s->opened = true;
		if (!r->t0)
			r->t0 = now_s();
		r->opened_upto++;
	}
	return 0;
}

/* ---- frames ------------------------------------------------------------ */

static int check_header(struct stream_receiver *r, unsigned int c, struct stream_rx_chan *ch)
{
	const struct lmig_sframe *f = &ch->fr;
	unsigned int type = le16toh(f->type), flags = le16toh(f->flags);
	uint32_t len = le32toh(f->len), raw = le32toh(f->raw_len);
	bool ok;

	if (le32toh(f->magic) != LMIG_SFRAME_MAGIC)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: bad frame magic 0x%08x (corrupted stream)",
			    c, le32toh(f->magic));
	if (!sframe_csum_ok(f))
		return fail(r, LMIG_ST_CHECKSUM, "channel %u: frame %llu checksum mismatch (corrupted stream)",
			    c, (unsigned long long)ch->seq);
	if (le64toh(f->seq) != ch->seq)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: frame %llu arrived, expected %llu", c,
			    (unsigned long long)le64toh(f->seq), (unsigned long long)ch->seq);
	switch (type) {
	case LMIG_SF_DATA:
		ok = raw && raw <= LMIG_STREAM_BLOCK_MAX && !(flags & ~LMIG_SF_LZ4) &&
		     ((flags & LMIG_SF_LZ4) ? len && len < raw : len == raw);
		break;
	case LMIG_SF_END:
		ok = !flags && len == 16 && !raw && !f->hash;
		break;
	case LMIG_SF_OPEN:
	case LMIG_SF_DONE:
		ok = !flags && !len && !raw && !f->hash;
		break;
	default:
		ok = false;
	}
	if (!ok || f->reserved)
		return fail(r, LMIG_ST_PROTOCOL, "channel %u: malformed frame (type %u, flags 0x%x, %u bytes; corrupted stream)",
			    c, type, flags, len);
	return 0;
}

static int data_frame(struct stream_receiver *r, unsigned int c, struct stream_rx_chan *ch)
{
	const struct lmig_sframe *f = &ch->fr;
	uint32_t i = le32toh(f->stream), raw = le32toh(f->raw_len), len = le32toh(f->len);
	uint64_t off = le64toh(f->offset);
	struct stream_out *s = get_stream(r, i);
	struct blk *b = ch->blk;
	uint64_t lim;
	void **at;

	ch->blk = NULL;
	if (!(le16toh(f->flags) & LMIG_SF_LZ4))
		ch->pay = NULL;		/* the block's own data, now b's */
	if (!s) {
		free(b);
		return -1;
	}
	/* The window's end, or the stream's; off + raw is never computed before this. */
	lim = s->written + LMIG_STREAM_WINDOW;
	if (s->end_seen && s->end_len < lim)
		lim = s->end_len;
	if (off < s->next_off || off > lim || raw > lim - off)
		return free(b), fail(r, LMIG_ST_PROTOCOL, "stream %u: block at %llu+%u is outside what is due (next %llu, window to %llu)",
			    i, (unsigned long long)off, raw, (unsigned long long)s->next_off,
			    (unsigned long long)lim);
	b->off = off;
	b->len = raw;
	if (le16toh(f->flags) & LMIG_SF_LZ4) {
		if (LZ4_decompress_safe((const char *)ch->pay, (char *)b->data, (int)len, (int)raw) != (int)raw) {
			free(b);
			return fail(r, LMIG_ST_CHECKSUM, "stream %u: block at %llu does not decompress (corrupted stream)",
				    i, (unsigned long long)off);
		}
		r->st->blocks_lz4++;
	}
	if (XXH3_64bits(b->data, raw) != le64toh(f->hash)) {
		free(b);
		return fail(r, LMIG_ST_CHECKSUM, "stream %u: block at %llu checksum mismatch (corrupted stream)",
			    i, (unsigned long long)off);
	}
	r->st->blocks++;
	if (hold(r, i, s, b))
		return free(b), -1;
	at = tsearch(b, &s->pend, blk_cmp);
	if (!at || *at != b) {
		unhold(r, s, b);
		free(b);
		return at ? fail(r, LMIG_ST_PROTOCOL, "stream %u: block at %llu overlaps another", i,
				 (unsigned long long)off) :
			    fail(r, LMIG_ST_IO, "out of memory");
	}
	if (off + raw > s->pend_hi)
		s->pend_hi = off + raw;
	if (deliver(r, i))
		return -1;
	submit_write(r, i);
	return 0;
}

static int frame_done(struct stream_receiver *r, unsigned int c, struct stream_rx_chan *ch)
{
	const struct lmig_sframe *f = &ch->fr;
	uint32_t i = le32toh(f->stream);
	struct stream_out *s;
	int ret = 0;

	ch->seq++;
	if (!r->t_progress)
		r->t_progress = now_s();
	switch (le16toh(f->type)) {
	case LMIG_SF_DATA:
		ret = data_frame(r, c, ch);
		break;
	case LMIG_SF_OPEN:
		if (!(s = get_stream(r, i)))
			return -1;
		if (s->open_seen)
			return fail(r, LMIG_ST_PROTOCOL, "stream %u opened twice", i);
		s->open_seen = true;
		ret = open_streams(r);
		for (unsigned int k = 0; k < r->opened_upto && !ret; k++) {
			ret = deliver(r, k);
			submit_write(r, k);
		}
		break;
	case LMIG_SF_END:
		if (!(s = get_stream(r, i)))
			return -1;
		if (s->end_seen || le64toh(f->offset) < s->pend_hi)
			return fail(r, LMIG_ST_PROTOCOL, "stream %u: unexpected end at %llu", i,
				    (unsigned long long)le64toh(f->offset));
		s->end_seen = true;
		s->end_len = le64toh(f->offset);
		memcpy(s->end_digest, ch->pay, 16);
		ret = deliver(r, i);
		break;
	case LMIG_SF_DONE:
		if (le64toh(f->offset) != ch->seq - 1)
			return fail(r, LMIG_ST_INCOMPLETE, "channel %u: source sent %llu frames, %llu arrived",
				    c, (unsigned long long)le64toh(f->offset),
				    (unsigned long long)ch->seq - 1);
		if (r->o->to.kind == SEP_STDIO && i != 1)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: the source says it had %u streams; 'lmig pipe recv' writes exactly one",
				    c, i);
		if (i > LMIG_STREAM_MAX)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: the source says it had %u streams, more than the limit of %u",
				    c, i, LMIG_STREAM_MAX);
		if (r->nstreams >= 0 && r->nstreams != i)
			return fail(r, LMIG_ST_PROTOCOL, "channels disagree on the number of streams");
		r->nstreams = i;
		for (unsigned int k = i; k < LMIG_STREAM_MAX; k++)
			if (r->s[k])
				return fail(r, LMIG_ST_PROTOCOL, "stream %u after the source said it had %u", k, i);
		ch->ps = PS_DONE;
		r->done_chans++;
		break;
	}
	if (ch->blk && ch->pay == ch->blk->data)
		ch->pay = NULL;		/* it was the block's own data */
	free(ch->blk);
	ch->blk = NULL;
	free(ch->pay);
	ch->pay = NULL;
	return ret;
}

/* Parse one received chunk; everything is copied out, so the buffer is free after. */
static int parse(struct stream_receiver *r, unsigned int c, const uint8_t *p, size_t n)
{
	struct stream_rx_chan *ch = &r->ch[c];

	while (n) {
		size_t k;

		if (ch->ps == PS_DONE)
			return fail(r, LMIG_ST_PROTOCOL, "channel %u: data after its last frame", c);
		if (ch->ps == PS_HDR) {
			k = SFRAME - ch->have < n ? SFRAME - ch->have : n;
			memcpy(ch->area + ch->have, p, k);
			ch->have += k;
			p += k;
			n -= k;
			if (ch->have < SFRAME)
				return 0;
			ch->have = 0;
			if (check_header(r, c, ch))
				return -1;
			if (!ch->fr.len) {
				if (frame_done(r, c, ch))
					return -1;
				continue;
			}
			/* Raw block data goes straight into its block; lz4 data into a bounce. */
			if (le16toh(ch->fr.type) == LMIG_SF_DATA) {
				ch->blk = malloc(sizeof(struct blk) + le32toh(ch->fr.raw_len));
				if (!ch->blk)
					return fail(r, LMIG_ST_IO, "out of memory");
			}
			ch->pay = ch->blk && !(le16toh(ch->fr.flags) & LMIG_SF_LZ4) ? ch->blk->data :
				  malloc(le32toh(ch->fr.len));
			if (!ch->pay)
				return fail(r, LMIG_ST_IO, "out of memory");
			ch->pay_have = 0;
			ch->ps = PS_PAY;
			continue;
		}
		k = le32toh(ch->fr.len) - ch->pay_have;
		if (k > n)
			k = n;
		memcpy(ch->pay + ch->pay_have, p, k);
		ch->pay_have += k;
		p += k;
		n -= k;
		if (ch->pay_have < le32toh(ch->fr.len))
			return 0;
		ch->ps = PS_HDR;
		if (frame_done(r, c, ch))
			return -1;
	}
	return 0;
}

/* ---- receives ---------------------------------------------------------- */

static void arm_recv(struct stream_receiver *r, unsigned int c)
{
	struct stream_rx_chan *ch = &r->ch[c];

	if (!ch->rx.armed && !ch->rx.eof)
		chan_rx_arm(&r->ring, &r->link[c], &ch->rx, c, r->ms, 0);
}

static int recv_done(struct stream_receiver *r, unsigned int c, struct io_uring_cqe *cqe)
{
	struct stream_rx_chan *ch = &r->ch[c];
	int res = cqe->res;
	unsigned int bid = chan_rx_done(&ch->rx, cqe, r->ms, 0);
	const uint8_t *in;
	ssize_t n;
	int ret = 0;

	if (res == -ENOBUFS)
		return 0;
	if (res < 0 || res == 0) {
		if (ch->ps == PS_DONE && res == 0) {
			ch->rx.eof = true;
			return 0;
		}
		return fail(r, LMIG_ST_INCOMPLETE, "channel %u: the source %s before the end of the streams",
			    c, res == 0 ? "closed the connection" :
			    res == -ECONNRESET ? "reset the connection" : strerror(-res));
	}
	r->st->bytes_wire += res;
	in = chan_rx_buf(&ch->rx, bid);
	if (!r->link[c].tls.rmem) {
		ret = parse(r, c, in, res);
	} else {
		/* Userspace TLS: open what the chunk completes, parse it piece by piece. */
		for (; !ret && (n = chan_open(&r->link[c], in, res, r->plain, PLAIN_SIZE)); in = NULL)
			ret = n < 0 ? fail(r, LMIG_ST_CHECKSUM, "%s", lmig_errmsg()) :
			      parse(r, c, r->plain, n);
	}
	if (r->ms)
		chan_rx_give(&ch->rx, bid);
	return ret;
}

/* ---- set-up ------------------------------------------------------------ */

static int setup_ring(struct stream_receiver *r)
{
	int ret = io_uring_queue_init(2 * LMIG_STREAM_MAX + 4 * r->nch + 16, &r->ring, 0);

	if (ret)
		return lmig_err_errno(-ret, "io_uring_queue_init");
	r->ring_ok = true;
	r->ms = true;
	for (unsigned int c = 0; c < r->nch; c++)
		if (chan_rx_setup(&r->ring, &r->ch[c].rx, c, 0, &r->ms))
			return -1;
	r->st->multishot = r->ms;
	return 0;
}

/*
 * The failure verdict's text.  A fault in the source's own stream (status
 * set by fail(), other than LMIG_ST_IO) is described from that stream:
 * stream, frame and block numbers, counts.  A failure of this side may
 * name its sockets and files: an unauthenticated source gets fail_why
 * (and the system's error) instead.
 */
static const char *verdict_text(const struct stream_receiver *r, char *buf, size_t len)
{
	if (r->fail_status && r->fail_status != LMIG_ST_IO)
		return lmig_errmsg();
	return wire_peer_text(r->link[0].tls.ssl, LMIG_ST_IO,
			      r->fail_why ? r->fail_why : "the receiver failed", r->fail_err, buf,
			      len);
}

/* Each hello: a stream source's, and the first sizes the channels. */
static int check_hello(void *arg, const struct hello_info *hi, bool first, const char **why,
		       int *err)
{
	struct stream_receiver *r = arg;

	if (!(hi->caps & LMIG_CAP_STREAM) || hi->image_size) {
		lmig_err("the source sends a memory image ('lmig send'), not streams: use 'lmig recv'");
		*why = "this receiver takes streams, not a memory image";
		return LMIG_ST_PROTOCOL;
	}
	if (first) {
		r->nch = hi->nchannels;
		r->ch = calloc(r->nch, sizeof(*r->ch));
		if (!r->ch)
			return lmig_err("out of memory");
	}
	return 0;
}

static int handshake(struct stream_receiver *r, int lfd)
{
	struct chan_accept a = {
		.tls = r->o->tls, .timeout_ms = r->o->timeout_ms,
		.accept_timeout_ms = r->o->accept_timeout_ms, .peer = "source", .whole = "session",
		.caps = LMIG_CAP_STREAM | LMIG_CAP_LZ4, .keepalive = true, .watch = true,
		.check = check_hello, .arg = r,
	};
	struct hello_info first;

	return chan_accept(&a, lfd, &r->link, &first);
}

static bool finished(struct stream_receiver *r)
{
	if (r->done_chans < r->nch)
		return false;
	for (int64_t i = 0; i < r->nstreams; i++)
		if (!r->s[i] || !r->s[i]->closed)
			return false;
	return true;
}

static int check_end(struct stream_receiver *r)
{
	for (int64_t i = 0; i < r->nstreams; i++) {
		struct stream_out *s = r->s[i];

		if (!s || !s->open_seen || !s->end_seen)
			return fail(r, LMIG_ST_INCOMPLETE, "stream %lld was never %s", (long long)i,
				    !s || !s->open_seen ? "opened" : "ended");
		if (s->next_off < s->end_len)
			return fail(r, LMIG_ST_INCOMPLETE, "stream %lld: bytes %llu.. never arrived",
				    (long long)i, (unsigned long long)s->next_off);
	}
	return 0;
}

static int run(struct stream_receiver *r)
{
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_nsec = 500 * 1000 * 1000 };
		unsigned int head, n = 0;
		int ret;

		if (finished(r))
			return 0;
		if (r->done_chans == r->nch && check_end(r))
			return -1;
		if (stop_signal) {
			io_why(r, "the receiver was stopped by a signal", 0);
			return fail(r, LMIG_ST_IO, "interrupted by signal %d", (int)stop_signal);
		}
		/*
		 * Only bytes written count: frames that deliver nothing do not
		 * keep a stream alive.  The clock starts with the first frame:
		 * a 'proxy send' connects before QEMU starts its migration.
		 */
		if (r->t_progress && (now_s() - r->t_progress) * 1000 > r->o->timeout_ms)
			return fail(r, LMIG_ST_INCOMPLETE, "no byte written to %s for %d s (--timeout): the streams stalled",
				    r->o->to.kind == SEP_STDIO ? "stdout" : "the destination",
				    r->o->timeout_ms / 1000);
		for (unsigned int c = 0; c < r->nch; c++)
			arm_recv(r, c);
		ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			unsigned int kind = ud_kind(ud), a = ud_a(ud);

			n++;
			ret = kind == UD_RECV ? recv_done(r, a, cqe) : write_done(r, a, cqe->res);
			if (!ret && kind == UD_WRITE && !r->s[a]->closed) {
				ret = deliver(r, a);
				submit_write(r, a);
			}
			if (ret) {
				io_uring_cq_advance(&r->ring, n);
				return -1;
			}
		}
		io_uring_cq_advance(&r->ring, n);
	}
}

int stream_recv(const struct stream_recv_opts *o, struct stream_stats *st)
{
	struct stream_receiver r = { .o = o, .st = st, .nstreams = -1 };
	struct sigaction sa = { .sa_handler = on_stop };
	int lfd, ret = -1;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	st->tls = o->tls ? NULL : "off";
	/*
	 * Blocks are malloc'ed and freed all the time: keep the heap instead
	 * of mapping and faulting in fresh pages for every block.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	lfd = chan_listen(o->listen, 64, o->ready_fd);
	if (lfd < 0)
		return -1;
	if (handshake(&r, lfd))
		goto out;
	close(lfd);
	lfd = -1;
	st->channels = r.nch;
	st->tls = tls_mode(&r.link[0].tls, false);
	tls_binding(&r.link[0].tls, st->tls_binding);
	if (o->tls && !(r.plain = malloc(PLAIN_SIZE))) {
		lmig_err("out of memory");
		goto out;
	}
	if (setup_ring(&r) || run(&r))
		goto out;
	send_reply(&r, LMIG_SR_VERDICT, LMIG_ST_OK, 0, st->bytes_stream, NULL, o->timeout_ms);
	ret = 0;
out:
	st->total_s = r.t0 ? now_s() - r.t0 : 0;
	if (ret && r.link && r.link[0].fd >= 0) {
		struct lmig_sreply rep;
		char text[LMIG_REASON_LEN];

		sreply_build(&rep, LMIG_SR_VERDICT, r.fail_status ? r.fail_status : LMIG_ST_IO, 0, 0,
			     verdict_text(&r, text, sizeof(text)));
		chan_say_last(&r.link[0], &rep, sizeof(rep));
	}
	if (r.ring_ok)
		io_uring_queue_exit(&r.ring);
	if (lfd >= 0)
		close(lfd);
	for (unsigned int i = 0; i < LMIG_STREAM_MAX; i++) {
		struct stream_out *s = r.s[i];

		if (!s)
			continue;
		if (!s->closed && s->fd >= 0) {
			/* Never ended as if whole: a reset on TCP; an early end otherwise. */
			if (o->to.kind == SEP_STDIO)
				close(s->fd);
			else
				sock_abort_close(s->fd);
		}
		tdestroy(s->pend, free);
		for (struct blk *b = s->outq, *nb; b; b = nb) {
			nb = b->next;
			free(b);
		}
		free(s);
	}
	for (unsigned int c = 0; r.ch && c < r.nch; c++) {
		struct stream_rx_chan *ch = &r.ch[c];

		/* pay is the block's own data unless an lz4 payload was being gathered. */
		if (ch->blk && ch->pay == ch->blk->data)
			ch->pay = NULL;
		free(ch->blk);
		free(ch->pay);
	}
	/* Let the source read the verdict before the connections go. */
	chan_close_all(r.link, r.nch, ret ? 300 : 1000);
	for (unsigned int c = 0; r.ch && c < r.nch; c++)
		chan_rx_free(&r.ch[c].rx);
	free(r.link);
	free(r.ch);
	free(r.plain);
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-only
/* The sending side of a channel (chan/channel.h): dial, send buffers, the peer's replies. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "lib/err.h"
#include "chan/channel.h"
#include "chan/net.h"
#include "chan/ud.h"
#include "chan/uring.h"

/* Userspace TLS: what one receive of the peer's replies takes (a record and then some). */
#define RXC_SIZE	(17 * 1024)

void chan_keepalive(int fd)
{
	int one = 1, idle = 10, intvl = 5, cnt = 3;
	unsigned int ut = 30000;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

int chan_reap(struct io_uring *ring, int (*fn)(void *arg, struct io_uring_cqe *cqe), void *arg)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(ring, head, cqe) {
		n++;
		if (fn(arg, cqe)) {
			io_uring_cq_advance(ring, n);
			return -1;
		}
	}
	io_uring_cq_advance(ring, n);
	return 0;
}

int chan_session(struct hello_info *hi)
{
	if (getrandom(hi->session, sizeof(hi->session), 0) != sizeof(hi->session))
		return lmig_err_errno(errno, "getrandom");
	return 0;
}

int chan_dial(struct chan *ch, const char *to, int timeout_ms, const struct tls_conf *tls,
	      bool keepalive, const struct hello_info *hi, uint32_t *caps)
{
	struct tls_chan *t = &ch->tls;
	struct lmig_hello h;
	struct lmig_hello_ack a;

	ch->fd = net_connect(to, timeout_ms);
	if (ch->fd < 0)
		return -1;
	if (keepalive)
		chan_keepalive(ch->fd);
	/* TLS first: not one lmig byte travels in clear text. */
	if (tls && tls_handshake(tls, ch->fd, timeout_ms, to, t))
		return -1;
	wire_hello_build(&h, hi);
	if (chan_write_full(ch->fd, t, &h, sizeof(h), timeout_ms, "sending hello") ||
	    chan_read_full(ch->fd, t, &a, sizeof(a), timeout_ms,
			   "waiting for the receiver's handshake"))
		return -1;
	return wire_ack_parse(&a, caps);
}

int chan_tx_setup(struct chan_tx *tx, struct io_uring *ring, unsigned int entries, int zerocopy,
		  int fd0, unsigned int nch, unsigned int nbuf, size_t size)
{
	struct io_uring_probe *probe;
	size_t total = (size_t)nch * nbuf * size;
	struct iovec *iov;
	int ret;

	*tx = (struct chan_tx){ .ring = ring, .nch = nch, .nbuf = nbuf, .size = size };
	ret = io_uring_queue_init(entries, ring, 0);
	if (ret)
		return lmig_err_errno(-ret, "io_uring_queue_init");
	tx->ring_ok = true;
	probe = io_uring_get_probe_ring(ring);
	tx->zc = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	if (probe)
		io_uring_free_probe(probe);
	/*
	 * Loopback delivers a zero-copy skb by copying it on the receive side
	 * and adds the notification round trip on top: auto turns it off there.
	 */
	if (zerocopy == 0 || (zerocopy < 0 && net_is_loopback(fd0)))
		tx->zc = false;
	else if (zerocopy == 1 && !tx->zc)
		return lmig_err("--zerocopy on: this kernel has no IORING_OP_SEND_ZC");
	tx->mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tx->mem == MAP_FAILED) {
		tx->mem = NULL;
		return lmig_err_errno(errno, "cannot allocate %zu bytes of send buffers", total);
	}
	iov = calloc((size_t)nch * nbuf, sizeof(*iov));
	if (!iov)
		return lmig_err("out of memory");
	for (size_t i = 0; i < (size_t)nch * nbuf; i++)
		iov[i] = (struct iovec){ tx->mem + i * size, size };
	/*
	 * Registered buffers spare the kernel a page pin per read and send;
	 * optional (RLIMIT_MEMLOCK may refuse them).
	 */
	tx->fixed = io_uring_register_buffers(ring, iov, nch * nbuf) == 0;
	free(iov);
	return 0;
}

static size_t cipher_size(const struct chan_tx *tx)
{
	return tls_seal_bound(tx->size);
}

int chan_tx_buf(struct chan_tx *tx, const struct chan *ch, unsigned int c, unsigned int b,
		struct chan_sbuf *sb)
{
	size_t i = (size_t)c * tx->nbuf + b;

	sb->mem = tx->mem + i * tx->size;
	sb->cipher = NULL;
	if (!ch->tls.ssl || ch->tls.ktls_tx)
		return 0;
	/* One mapping for every twin: those of kTLS channels are never touched. */
	if (!tx->cipher) {
		tx->cipher = mmap(NULL, (size_t)tx->nch * tx->nbuf * cipher_size(tx),
				  PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tx->cipher == MAP_FAILED) {
			tx->cipher = NULL;
			return lmig_err_errno(errno, "cannot allocate TLS send buffers");
		}
	}
	sb->cipher = tx->cipher + i * cipher_size(tx);
	return 0;
}

void chan_tx_end(struct chan_tx *tx)
{
	if (tx->ring_ok)
		io_uring_queue_exit(tx->ring);
	tx->ring_ok = false;
}

void chan_tx_drain(struct chan_tx *tx, bool (*busy)(void *arg),
		   int (*fn)(void *arg, struct io_uring_cqe *cqe), void *arg)
{
	while (tx->ring_ok && busy(arg)) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = 2 };

		if (io_uring_wait_cqe_timeout(tx->ring, &cqe, &ts))
			return;
		fn(arg, cqe);
		io_uring_cqe_seen(tx->ring, cqe);
	}
}

void chan_tx_free(struct chan_tx *tx)
{
	if (tx->mem)
		munmap(tx->mem, (size_t)tx->nch * tx->nbuf * tx->size);
	if (tx->cipher)
		munmap(tx->cipher, (size_t)tx->nch * tx->nbuf * cipher_size(tx));
	tx->mem = tx->cipher = NULL;
}

void chan_sbuf_reset(struct chan_sbuf *b)
{
	b->len = b->off = 0;
	b->notifs = 0;
	b->sent = b->sealed = false;
}

int chan_send(struct chan_tx *tx, struct chan *ch, unsigned int c, unsigned int bi,
	      struct chan_sbuf *b)
{
	/*
	 * MSG_WAITALL lets io_uring finish a short send itself; kTLS refuses
	 * any flag it does not know (EOPNOTSUPP), and short sends are
	 * finished here anyway (b->off).
	 */
	int flags = MSG_NOSIGNAL | (ch->tls.ktls_tx ? 0 : MSG_WAITALL);
	struct io_uring_sqe *sqe;
	const uint8_t *p;
	size_t n;

	/* Sealed once, when it first goes: TLS records carry a sequence number. */
	if (b->cipher && !b->sealed) {
		ssize_t len = tls_seal(&ch->tls, b->data, b->len, b->cipher,
				       cipher_size(tx));

		if (len <= 0)
			return -1;
		b->data = b->cipher;
		b->len = len;
		b->sealed = true;
	}
	p = b->data + b->off;
	n = b->len - b->off;
	sqe = uring_get_sqe(tx->ring);
	b->zc = tx->zc;
	if (tx->zc && tx->fixed && !b->sealed)
		io_uring_prep_send_zc_fixed(sqe, ch->fd, p, n, flags, 0, c * tx->nbuf + bi);
	else if (tx->zc)
		io_uring_prep_send_zc(sqe, ch->fd, p, n, flags, 0);
	else
		io_uring_prep_send(sqe, ch->fd, p, n, flags);
	io_uring_sqe_set_data64(sqe, UD(UD_SEND, c, bi));
	return 0;
}

int chan_send_done(struct chan_tx *tx, struct chan_sbuf *b, const struct io_uring_cqe *cqe,
		   unsigned int c, const char *closed, uint64_t *wire)
{
	int res = cqe->res;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		b->notifs--;
		return CHAN_NOTIF;
	}
	/* Until the notification, the kernel may still read the buffer. */
	if (cqe->flags & IORING_CQE_F_MORE)
		b->notifs++;
	/*
	 * A socket may refuse zero-copy (kTLS does on some kernels): nothing
	 * was sent, so send the same bytes again by copy, and from now on.
	 */
	if (res == -EOPNOTSUPP && b->zc) {
		tx->zc = false;
		return CHAN_NO_ZC;
	}
	if (res < 0) {
		if (res == -EPIPE || res == -ECONNRESET)
			return lmig_err("channel %u: receiver closed the connection %s", c, closed);
		return lmig_err_errno(-res, "channel %u: send", c);
	}
	b->off += res;
	*wire += res;
	if (b->off < b->len)
		return CHAN_SHORT;
	b->sent = true;
	return CHAN_SENT;
}

/* ---- the peer's replies ------------------------------------------------ */

int chan_reply_init(struct chan_reply *r)
{
	r->have = 0;
	r->rxc = NULL;
	if (r->ch->tls.ssl && !r->ch->tls.ktls_rx && !(r->rxc = malloc(RXC_SIZE)))
		return lmig_err("out of memory");
	return 0;
}

void chan_reply_free(struct chan_reply *r)
{
	free(r->rxc);
	r->rxc = NULL;
}

void chan_reply_arm(struct chan_reply *r, struct io_uring *ring)
{
	struct io_uring_sqe *sqe = uring_get_sqe(ring);

	/* Userspace TLS: whatever records came, opened in chan_reply_in(). */
	if (r->rxc)
		io_uring_prep_recv(sqe, r->ch->fd, r->rxc, RXC_SIZE, 0);
	else
		io_uring_prep_recv(sqe, r->ch->fd, r->msg, r->len, MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, UD(UD_REPLY, 0, 0));
}

int chan_reply_in(struct chan_reply *r, int res, const char *closed)
{
	if (res == 0 || res == -ECONNRESET)
		return lmig_err("%s", closed);
	if (res < 0)
		return lmig_err_errno(-res, "channel 0: %s", r->waiting);
	if (r->rxc)
		return tls_open_msgs(&r->ch->tls, r->rxc, res, r->msg, r->len,
				     &r->have, r->stop, r->got, r->arg);
	if ((size_t)res < r->len)
		return lmig_err("receiver sent a truncated %s", r->what);
	return r->got(r->arg);
}

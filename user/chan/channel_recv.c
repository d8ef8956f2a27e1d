// SPDX-License-Identifier: GPL-2.0-only
/* The receiving side of a channel (chan/channel.h): accept, refuse, receive buffers. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/channel.h"
#include "chan/net.h"
#include "chan/ud.h"
#include "chan/uring.h"

int chan_listen(const char *hostport, int backlog, int ready_fd)
{
	int lfd = net_listen(hostport, backlog);

	if (lfd >= 0 && ready_fd >= 0) {
		dprintf(ready_fd, "%d\n", net_local_port(lfd));
		close(ready_fd);
	}
	return lfd;
}

int chan_refuse(int fd, struct tls_chan *t, uint32_t status, const char *why, int err)
{
	struct lmig_hello_ack a;
	char text[LMIG_REASON_LEN];

	wire_ack_build(&a, 0, status, wire_peer_text(t && t->ssl, status, why, err, text,
						     sizeof(text)));
	chan_write_full(fd, t, &a, sizeof(a), 1000, "refusing");
	tls_chan_free(t);
	net_close_draining(&fd, 1, 300);
	return -1;
}

/*
 * The TLS handshake of a connection, before anything else.  A plain lmig
 * peer is told why in its own protocol (a plain refusal: it reveals
 * nothing); any other failure closes with a FIN, so the peer reads our
 * alert.
 */
static int accept_tls(const struct chan_accept *a, int fd, const char *peer, struct tls_chan *t)
{
	struct lmig_hello h;
	int rc = tls_handshake(a->tls, fd, a->timeout_ms, peer, t);

	if (!rc)
		return 0;
	if (rc == -2 && !net_read_full(fd, &h, sizeof(h), 1000, "reading a plain hello"))
		return chan_refuse(fd, NULL, LMIG_ST_VERSION, "this receiver requires TLS", 0);
	net_close_draining(&fd, 1, 300);
	return -1;
}

/*
 * While more channels are to connect (got of n): wait up to timeout_ms
 * for the next one, but give up at once when a channel that did connect
 * ends.  A channel with data waiting is not watched any more (poll would
 * report it at once each time); its end then shows when the channels are
 * read.  0 when lfd has a connection.
 */
static int wait_next(const struct chan_accept *a, int lfd, const struct chan *ch, unsigned int n,
		     unsigned int got)
{
	long long deadline = now_ms() + a->timeout_ms;
	bool busy[LMIG_MAX_CHANNELS] = { false };

	for (;;) {
		struct pollfd pf[1 + LMIG_MAX_CHANNELS];
		unsigned int map[1 + LMIG_MAX_CHANNELS], k = 0;
		long long left = deadline - now_ms();
		int ready;

		pf[k++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (unsigned int c = 0; c < n; c++)
			if (ch[c].fd >= 0 && !busy[c]) {
				map[k] = c;
				pf[k++] = (struct pollfd){ .fd = ch[c].fd, .events = POLLIN | POLLRDHUP };
			}
		ready = poll(pf, k, left > 0 ? (int)left : 0);
		if (ready < 0 && errno != EINTR)
			return lmig_err_errno(errno, "accept");
		if (ready == 0)
			return lmig_err("only %u of %u channels connected within %d ms", got, n,
					a->timeout_ms);
		if (ready < 0)
			continue;
		for (unsigned int i = 1; i < k; i++) {
			if (!pf[i].revents)
				continue;
			/* Data, not the end: the peer is still there. */
			if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				busy[map[i]] = true;
				continue;
			}
			return lmig_err("channel %u closed while %u of %u channels had connected: the %s is gone",
					map[i], got, n, a->peer);
		}
		if (pf[0].revents)
			return 0;
	}
}

/* The next connection, TLS done: fd, or -1. */
static int next_conn(const struct chan_accept *a, int lfd, const struct chan *ch, unsigned int n,
		     unsigned int got, char *peer, size_t plen, struct tls_chan *t)
{
	int fd;

	if (got && a->watch && wait_next(a, lfd, ch, n, got))
		return -1;
	fd = net_accept(lfd, !got ? a->accept_timeout_ms : a->watch ? 0 : a->timeout_ms, peer,
			plen);
	if (fd < 0) {
		if (got && !a->watch)
			lmig_err_clear(), lmig_err("only %u of %u channels connected within %d ms",
						   got, n, a->timeout_ms);
		return -1;
	}
	if (a->tls && accept_tls(a, fd, peer, t))
		return -1;
	return fd;
}

/* A hello that is not one: refused; a TLS record there means a TLS peer. */
static int bad_hello(const struct chan_accept *a, int fd, struct tls_chan *t,
		     const struct lmig_hello *h, uint32_t status, const char *peer)
{
	const uint8_t *b = (const uint8_t *)h;

	/* A TLS record (handshake, 3.x) where a hello should be. */
	if (!a->tls && b[0] == 0x16 && b[1] == 3) {
		lmig_err_clear();
		lmig_err("the %s at %s speaks TLS: this receiver was started without --tls-dir or --psk-file",
			 a->peer, peer);
	}
	return chan_refuse(fd, t, status, NULL, 0);
}

static int accept_all(const struct chan_accept *a, int lfd, struct chan **chp,
		      struct hello_info *first)
{
	struct chan *ch = NULL;
	unsigned int got = 0, n = 0;
	char peer[64], what[64];

	snprintf(what, sizeof(what), "reading the %s's hello", a->peer);
	for (;;) {
		struct lmig_hello h;
		struct lmig_hello_ack ack;
		struct hello_info hi;
		struct tls_chan tc = { 0 };
		const char *why = NULL;
		int fd, err = 0, st;
		uint32_t status;

		fd = next_conn(a, lfd, ch, n, got, peer, sizeof(peer), &tc);
		if (fd < 0)
			return -1;
		if (chan_read_full(fd, &tc, &h, sizeof(h), a->timeout_ms, what)) {
			tls_chan_free(&tc);
			close(fd);
			return -1;
		}
		if (wire_hello_parse(&h, &hi, &status))
			return bad_hello(a, fd, &tc, &h, status, peer);
		st = a->check(a->arg, &hi, !got, &why, &err);
		if (st > 0)
			return chan_refuse(fd, &tc, st, why, err);
		if (st == 0 && !got) {
			*first = hi;
			n = hi.nchannels;
			*chp = ch = calloc(n, sizeof(*ch));
			if (!ch)
				st = lmig_err("out of memory");
			for (unsigned int c = 0; c < n && ch; c++)
				ch[c].fd = -1;
		}
		if (st) {
			tls_chan_free(&tc);
			close(fd);
			return -1;
		}
		if (memcmp(hi.session, first->session, sizeof(hi.session)) || hi.nchannels != n ||
		    hi.image_size != first->image_size) {
			lmig_err("connection from %s belongs to another %s", peer, a->whole);
			return chan_refuse(fd, &tc, LMIG_ST_SESSION, NULL, 0);
		}
		if (ch[hi.channel].fd >= 0) {
			lmig_err("channel %u connected twice", hi.channel);
			return chan_refuse(fd, &tc, LMIG_ST_SESSION, NULL, 0);
		}
		ch[hi.channel] = (struct chan){ .fd = fd, .tls = tc };	/* it owns the session now */
		if (a->keepalive)
			chan_keepalive(fd);
		wire_ack_build(&ack, hi.caps & a->caps, LMIG_ST_OK, NULL);
		if (chan_write_full(fd, &ch[hi.channel].tls, &ack, sizeof(ack), a->timeout_ms,
				    "answering the hello"))
			return -1;
		if (++got == n)
			return 0;
	}
}

int chan_accept(const struct chan_accept *a, struct chan **ch, struct hello_info *first)
{
	int lfd = chan_listen(a->listen, a->backlog, a->ready_fd), rc;

	if (lfd < 0)
		return -1;
	rc = accept_all(a, lfd, ch, first);
	if (!rc && a->keep_lfd)
		*a->keep_lfd = lfd;
	else
		close(lfd);
	return rc;
}

void chan_close_all(struct chan *ch, unsigned int n, int drain_ms)
{
	int fds[LMIG_MAX_CHANNELS];

	if (!ch)
		return;
	for (unsigned int c = 0; c < n; c++) {
		tls_chan_free(&ch[c].tls);
		fds[c] = ch[c].fd;
		if (!drain_ms && ch[c].fd >= 0)
			close(ch[c].fd);
		ch[c].fd = -1;
	}
	/* Let the peer read what was said last before the connections go. */
	if (drain_ms)
		net_close_draining(fds, n, drain_ms);
}

int chan_fail(uint32_t *status, uint32_t st, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!*status)
		*status = st;
	return lmig_err("%s", msg);
}

void chan_say_last(struct chan *ch, const void *msg, size_t len)
{
	if (ch->tls.ssl)
		chan_write_full(ch->fd, &ch->tls, msg, len, 100, "failing");
	else
		send(ch->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* ---- receive buffers --------------------------------------------------- */

int chan_rx_setup(struct io_uring *ring, struct chan_rx *rx, unsigned int c, unsigned int roff,
		  bool *ms)
{
	size_t rsz = CHAN_NRBUF * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = { .ring_entries = CHAN_NRBUF, .bgid = c };

	rx->roff = roff;
	rx->rlen = CHAN_RBUF_SIZE - roff;
	rx->bufs = mmap(NULL, (size_t)CHAN_NRBUF * CHAN_RBUF_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rx->bufs == MAP_FAILED) {
		rx->bufs = NULL;
		return lmig_err_errno(errno, "cannot allocate receive buffers");
	}
	if (!*ms)
		return 0;
	rx->br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rx->br == MAP_FAILED) {
		rx->br = NULL;
		*ms = false;
		return 0;
	}
	reg.ring_addr = (unsigned long)rx->br;
	if (io_uring_register_buf_ring(ring, &reg, 0)) {
		/* A kernel without provided-buffer rings: plain receives. */
		munmap(rx->br, rsz);
		rx->br = NULL;
		*ms = false;
		return 0;
	}
	io_uring_buf_ring_init(rx->br);
	for (unsigned int b = 0; b < CHAN_NRBUF; b++)
		io_uring_buf_ring_add(rx->br, chan_rx_buf(rx, b) + roff, rx->rlen, b,
				      io_uring_buf_ring_mask(CHAN_NRBUF), b);
	io_uring_buf_ring_advance(rx->br, CHAN_NRBUF);
	rx->inring = CHAN_NRBUF;
	return 0;
}

void chan_rx_free(struct chan_rx *rx)
{
	if (rx->bufs)
		munmap(rx->bufs, (size_t)CHAN_NRBUF * CHAN_RBUF_SIZE);
	if (rx->br)
		munmap(rx->br, CHAN_NRBUF * sizeof(struct io_uring_buf));
	rx->bufs = NULL;
	rx->br = NULL;
}

void chan_rx_give(struct chan_rx *rx, unsigned int bid)
{
	io_uring_buf_ring_add(rx->br, chan_rx_buf(rx, bid) + rx->roff, rx->rlen, bid,
			      io_uring_buf_ring_mask(CHAN_NRBUF), 0);
	io_uring_buf_ring_advance(rx->br, 1);
	rx->inring++;
}

void chan_rx_arm(struct io_uring *ring, const struct chan *ch, struct chan_rx *rx, unsigned int c,
		 bool ms, unsigned int bid)
{
	struct io_uring_sqe *sqe = uring_get_sqe(ring);

	if (ms) {
		io_uring_prep_recv_multishot(sqe, ch->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = c;
		bid = 0;
	} else {
		io_uring_prep_recv(sqe, ch->fd, chan_rx_buf(rx, bid) + rx->roff, rx->rlen, 0);
	}
	io_uring_sqe_set_data64(sqe, UD(UD_RECV, c, bid));
	rx->armed = true;
}

unsigned int chan_rx_done(struct chan_rx *rx, const struct io_uring_cqe *cqe, bool ms,
			  unsigned int id)
{
	/* A multishot receive goes on while the kernel says MORE. */
	if (!ms || !(cqe->flags & IORING_CQE_F_MORE))
		rx->armed = false;
	if (!ms || cqe->res <= 0)
		return id;
	rx->inring--;
	return cqe->flags >> IORING_CQE_BUFFER_SHIFT;
}

ssize_t chan_open(struct chan *ch, const void *in, size_t n, void *out, size_t cap)
{
	if (in && tls_open_feed(&ch->tls, in, n))
		return -1;
	return tls_open_read(&ch->tls, out, cap);
}

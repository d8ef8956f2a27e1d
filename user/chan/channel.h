/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The channel layer both engines use (the image engine of `lmig send` and
 * `lmig recv`, the stream engine of `lmig pipe` and `lmig proxy`): an lmig
 * channel is a TCP connection, its TLS session (chan/tls.h), and the
 * hello exchange of include/lmig/wire.h; bulk data moves on it through
 * the engine's io_uring.
 *
 * Sending side (channel_send.c):
 *   chan_dial()        connect, TLS, hello and its ack: one channel
 *   chan_tx_setup()    the ring, what the kernel offers (SEND_ZC is probed,
 *                      never assumed), the send buffers, registered if it can
 *   chan_send()        a buffer to the kernel: sealed first (userspace TLS),
 *                      SEND_ZC from the registered buffer where it is on
 *   chan_send_done()   its completion: short sends, zero-copy notifications,
 *                      a socket that refuses zero-copy
 *   chan_reply_*()     the receive of the peer's replies on channel 0,
 *                      whole messages opened from TLS records as they come
 * Receiving side (channel_recv.c):
 *   chan_accept()      listen, then every channel of one session: TLS,
 *                      hellos checked, a stray or bad one refused
 *                      (chan_refuse(): the peer reads why, then a FIN)
 *   chan_rx_*()        per channel, provided buffers for a multishot
 *                      receive (plain receives where the kernel has none)
 *   chan_open()        userspace TLS: a received chunk's plaintext
 *   chan_fail()        an error, and the status the peer's verdict carries
 *   chan_say_last()    a last message that must not block (a failure verdict)
 */
#ifndef LMIG_CHANNEL_H
#define LMIG_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <liburing.h>

#include "chan/tls.h"
#include "chan/wire.h"

struct chan {
	int fd;
	struct tls_chan tls;
};

/* Keep-alives and a bound on unacknowledged data: a vanished peer is an error, not a hang. */
void chan_keepalive(int fd);

/*
 * Hand every completion the ring has ready to fn(arg, cqe), in order; the
 * first that fails (-1) stops it, that completion consumed.  0 or -1.
 */
int chan_reap(struct io_uring *ring, int (*fn)(void *arg, struct io_uring_cqe *cqe), void *arg);

/* ---- sending side ------------------------------------------------------ */

/* A new session id for hi (all channels of one transfer carry it). */
int chan_session(struct hello_info *hi);
/*
 * Connect channel hi->channel to `to`: TCP (with chan_keepalive() if
 * keepalive), TLS when tls is set, then the hello; *caps gets what the
 * peer's ack grants.  0, or -1 with lmig_err().
 */
int chan_dial(struct chan *ch, const char *to, int timeout_ms, const struct tls_conf *tls,
	      bool keepalive, const struct hello_info *hi, uint32_t *caps);

/*
 * A send buffer: the bytes to send are data[0..len); with userspace TLS
 * they are sealed into cipher once, just before they first go (records
 * carry a sequence number, so buffers must be sealed in send order), and
 * data/len then describe the records.  The fields are a group an engine
 * embeds in its own buffer (CHAN_SBUF below), so that both its code and
 * this layer's name them directly.
 */
#define CHAN_SBUF_FIELDS						\
	uint8_t *mem;		/* the buffer (registered with the ring) */	\
	const uint8_t *data;	/* what to send: in mem, or cipher once sealed */ \
	size_t len, off;	/* its length, bytes already sent */		\
	unsigned int notifs;	/* zero-copy notifications still to come */	\
	bool sent;		/* every byte handed to the kernel */		\
	bool sealed;		/* data/len describe records in cipher */	\
	bool zc;		/* its send in flight is a SEND_ZC */		\
	uint8_t *cipher		/* userspace TLS: the records go here */

struct chan_sbuf {
	CHAN_SBUF_FIELDS;
};

/* In an engine's buffer: b->sb for this layer, b->mem, b->len... for the engine. */
#define CHAN_SBUF			\
	union {				\
		struct chan_sbuf sb;	\
		struct {		\
			CHAN_SBUF_FIELDS; \
		};			\
	}

/* Ready to fill again: sent whole, and the kernel let go of it. */
static inline bool chan_sbuf_idle(const struct chan_sbuf *b)
{
	return b->sent && !b->notifs;
}

/* Before a buffer is filled. */
void chan_sbuf_reset(struct chan_sbuf *b);

/* The sending side's io_uring and its send buffers (nch channels of nbuf each). */
struct chan_tx {
	struct io_uring *ring;
	bool ring_ok;		/* set up: chan_tx_end() ends it */
	bool fixed;		/* the buffers are registered */
	bool zc;		/* SEND_ZC is used */
	unsigned int nch, nbuf;
	size_t size;		/* of one buffer */
	uint8_t *mem;		/* all buffers, channel after channel */
	uint8_t *cipher;	/* userspace TLS: their twins, mapped when first needed */
};

/*
 * Set up ring (entries SQEs), probe SEND_ZC and decide on it (zerocopy:
 * -1 auto, which is off on loopback (fd0 is channel 0), 0 off, 1 on),
 * map the buffers and try to register them.  0, or -1 with lmig_err().
 * On failure too, chan_tx_free() undoes what was done.
 */
int chan_tx_setup(struct chan_tx *tx, struct io_uring *ring, unsigned int entries, int zerocopy,
		  int fd0, unsigned int nch, unsigned int nbuf, size_t size);
/*
 * Buffer b of channel c into sb: its memory, and with userspace TLS on
 * ch (tls: the session is on) its cipher twin.  0, or -1 with lmig_err().
 */
int chan_tx_buf(struct chan_tx *tx, const struct chan *ch, unsigned int c, unsigned int b,
		struct chan_sbuf *sb);
/*
 * Undo chan_tx_setup(): end the ring (its requests are cancelled: before
 * the sockets close), then, once the sockets are closed, unmap the buffers.
 */
void chan_tx_end(struct chan_tx *tx);
/*
 * Before the buffers go after a transfer: while busy(arg) (zero-copy
 * notifications or sends still due), wait for completions, 2 s at the
 * most for each, and hand them to fn.
 */
void chan_tx_drain(struct chan_tx *tx, bool (*busy)(void *arg),
		   int (*fn)(void *arg, struct io_uring_cqe *cqe), void *arg);
void chan_tx_free(struct chan_tx *tx);

/*
 * Send what is left of buffer bi of channel c (sealing it first with
 * userspace TLS): one send SQE, UD(UD_SEND, c, bi).  0, or -1.
 */
int chan_send(struct chan_tx *tx, struct chan *ch, unsigned int c, unsigned int bi,
	      struct chan_sbuf *b);

enum chan_sent {
	CHAN_NOTIF,		/* a zero-copy notification: b may be idle now */
	CHAN_SHORT,		/* part of it went: send the rest */
	CHAN_NO_ZC,		/* the socket refused zero-copy: nothing went, send it again */
	CHAN_SENT,		/* all of it went */
};
/*
 * The completion of a send of b on channel c: one of enum chan_sent, or
 * -1 with lmig_err() ("channel C: receiver closed the connection
 * <closed>").  *wire counts the bytes sent.
 */
int chan_send_done(struct chan_tx *tx, struct chan_sbuf *b, const struct io_uring_cqe *cqe,
		   unsigned int c, const char *closed, uint64_t *wire);

/*
 * The receive of the peer's replies, fixed-size messages, on channel 0.
 * Plain or kTLS: one message at a time straight into msg.  Userspace
 * TLS: whatever records came, into rxc, opened into msg; got(arg) runs
 * for each whole message until *stop is true.
 */
struct chan_reply {
	struct chan *ch;
	void *msg;
	size_t len, have;
	uint8_t *rxc;
	const bool *stop;
	int (*got)(void *arg);
	void *arg;
	const char *what;	/* "verdict", "reply": names a truncated one */
	const char *waiting;	/* "waiting for the receiver's verdict": names an error */
};
int chan_reply_init(struct chan_reply *r);
void chan_reply_free(struct chan_reply *r);
void chan_reply_arm(struct chan_reply *r, struct io_uring *ring);
/*
 * res bytes came (the completion's result): 0, or -1 with lmig_err();
 * closed is the message when the peer closed the connection.
 */
int chan_reply_in(struct chan_reply *r, int res, const char *closed);

/* ---- receiving side ---------------------------------------------------- */

/* Listen on hostport; with ready_fd >= 0 write "PORT\n" there and close it.  fd, or -1. */
int chan_listen(const char *hostport, int backlog, int ready_fd);

/*
 * Refuse connection fd: an ack with status and a reason the peer may
 * read (wire_peer_text(): the peer's own words only to an authenticated
 * peer), then the session is freed and the socket closed with a FIN
 * after which what the peer still sends is drained, never with a RST
 * that could destroy the refusal before it is read.  Returns -1.
 */
int chan_refuse(int fd, struct tls_chan *t, uint32_t status, const char *why, int err);

/* Accepting the channels of one session. */
struct chan_accept {
	const char *listen;		/* HOST:PORT */
	int backlog;
	int ready_fd;			/* chan_listen()'s */
	const struct tls_conf *tls;	/* NULL: plain */
	int timeout_ms;			/* each step once a channel is there */
	int accept_timeout_ms;		/* for the first connection, -1: forever */
	const char *peer;		/* "sender", "source": the other end in errors */
	const char *whole;		/* "migration", "session": what a stray channel is not of */
	uint32_t caps;			/* the capabilities this side grants */
	bool keepalive;			/* chan_keepalive() on each channel */
	/*
	 * While more channels are to come, give up at once when one that
	 * did connect closes (its peer is gone: the others will not come).
	 */
	bool watch;
	/*
	 * Each hello (first: the session's first): 0 to take it, a status to
	 * refuse it with (and *why, *err for the peer; lmig_err() set), or
	 * -1 to fail without a refusal.
	 */
	int (*check)(void *arg, const struct hello_info *hi, bool first, const char **why,
		     int *err);
	void *arg;
	/*
	 * Set: the listening socket is not closed but left here (on success),
	 * for the session's channels to connect again after a break.
	 */
	int *keep_lfd;
};
/*
 * Listen (chan_listen()), accept every channel of one session, and stop
 * listening (unless keep_lfd): *ch gets the channels (calloc'ed,
 * first->nchannels of them), *first the first hello.  0, or -1 with
 * lmig_err().
 */
int chan_accept(const struct chan_accept *a, struct chan **ch, struct hello_info *first);
/* Free the sessions and close the sockets, draining for drain_ms (0: a plain close). */
void chan_close_all(struct chan *ch, unsigned int n, int drain_ms);

/*
 * A receiver's error: lmig_err(), and *status (if not set yet) for the
 * verdict the peer gets.  Returns -1.
 */
int chan_fail(uint32_t *status, uint32_t st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A last message on ch that must not wait for the peer: a failure verdict. */
void chan_say_last(struct chan *ch, const void *msg, size_t len);

/* Receive buffers: CHAN_NRBUF buffers of CHAN_RBUF_SIZE bytes a channel. */
#define CHAN_NRBUF	16		/* a power of 2 */
#define CHAN_RBUF_SIZE	(256 * 1024)

struct chan_rx {
	uint8_t *bufs;
	struct io_uring_buf_ring *br;	/* provided buffers, or NULL */
	unsigned int roff, rlen;	/* where in a buffer a receive goes, how much */
	unsigned int inring;		/* provided buffers the kernel holds */
	bool armed, eof;
};

/*
 * Channel c's buffers (receives go roff bytes into each), and a ring of
 * provided buffers (group c) while *ms: a kernel without them clears *ms,
 * and every channel then receives plainly.  0, or -1 with lmig_err().
 */
int chan_rx_setup(struct io_uring *ring, struct chan_rx *rx, unsigned int c, unsigned int roff,
		  bool *ms);
void chan_rx_free(struct chan_rx *rx);

static inline uint8_t *chan_rx_buf(const struct chan_rx *rx, unsigned int bid)
{
	return rx->bufs + (size_t)bid * CHAN_RBUF_SIZE;
}

/* Give buffer bid back to the kernel's ring. */
void chan_rx_give(struct chan_rx *rx, unsigned int bid);
/* Arm channel c's receive: multishot (ms), or a plain one into buffer bid. */
void chan_rx_arm(struct io_uring *ring, const struct chan *ch, struct chan_rx *rx, unsigned int c,
		 bool ms, unsigned int bid);
/*
 * A receive completion: notes whether the receive is still armed, and
 * returns the buffer the data is in (id: the plain receive's buffer).
 */
unsigned int chan_rx_done(struct chan_rx *rx, const struct io_uring_cqe *cqe, bool ms,
			  unsigned int id);
/*
 * Userspace TLS: feed n bytes of records at in (NULL: none new) and open
 * what is there into out (see tls_open_read()).  Plaintext bytes, 0, or
 * -1 with lmig_err().
 */
ssize_t chan_open(struct chan *ch, const void *in, size_t n, void *out, size_t cap);

#endif

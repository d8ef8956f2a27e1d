/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TLS 1.3 on lmig's channels (OpenSSL).
 *
 * Every channel does its own handshake on the connected socket, before
 * the lmig hello; the receiving side is the TLS server.  Afterwards each
 * direction is either kTLS (the kernel encrypts and decrypts: the socket
 * is used as if it were plain, io_uring and all) or userspace: records
 * are sealed and opened by OpenSSL through two BIOs of tls_record.c, straight
 * into and out of the engine's own buffers, so the sockets still see
 * nothing but io_uring sends and receives.
 *
 * Authentication is mutual: certificates under a CA (a QEMU/libvirt
 * style directory with an optional CRL; the receiver's certificate must
 * name the host the sender connects to; optionally pinned by the peer's
 * SHA-256 fingerprint), or a pre-shared key, which the handshake must
 * then actually have used.  A handshake returns only once the peer is
 * authenticated, so nothing of lmig's goes to a peer that is not.
 * Session tickets are off: a ticket is a record after the handshake,
 * which a kTLS receiver would take for data.
 */
#ifndef LMIG_TLS_H
#define LMIG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

struct tls_conf {
	bool server;			/* the receiving side */
	const char *dir;		/* --tls-dir, or NULL */
	const char *psk_file;		/* --psk-file, or NULL */
	bool pin;			/* --peer-fingerprint given */
	uint8_t fp[32];			/* its SHA-256 */
	bool crl;			/* dir/ca-crl.pem loaded: revocation checked */
	char host[256];			/* sending side: the name the receiver's certificate carries */
	char psk_id[128];
	uint8_t psk[64];
	size_t psk_len;
	struct ssl_ctx_st *ctx;
};

struct tls_chan {
	struct ssl_st *ssl;		/* NULL: plain */
	bool ktls_tx, ktls_rx;		/* the kernel does this direction */
	struct bio_st *rmem;		/* userspace receive: records read from tls_open_feed()'s buffer */
	struct bio_st *wmem;		/* userspace send: records into tls_seal()'s buffer */
};

/*
 * Load and check DIR's files (or the PSK file) and the fingerprint:
 * returns 0, or -1 with a one-line lmig_err() naming the bad file.
 * Neither dir nor psk_file: TLS off, c stays unused.  host (the sending
 * side with dir): the DNS name or IP address the receiver's certificate
 * must carry.
 */
int tls_conf_init(struct tls_conf *c, bool server, const char *dir, const char *psk_file,
		  const char *fingerprint, const char *host);
void tls_conf_free(struct tls_conf *c);
static inline bool tls_on(const struct tls_conf *c)
{
	return c && c->ctx;
}

/*
 * The handshake on a connected blocking socket, within timeout_ms; then
 * kTLS for each direction the kernel takes, tls_record.c's BIOs for the others.
 * Returns 0 only with the peer authenticated: its certificate verified
 * (chain, revocation, host name, pin), or the pre-shared key used by
 * both.  peer names the other end in errors.  0, or -1 with lmig_err().
 */
int tls_handshake(const struct tls_conf *c, int fd, int timeout_ms, const char *peer,
		  struct tls_chan *t);
void tls_chan_free(struct tls_chan *t);
/* "ktls" when the bulk direction (tx for a sender, rx for a receiver) is the kernel's. */
const char *tls_mode(const struct tls_chan *t, bool tx);

/*
 * Keying material exported from the session (RFC 8446 7.5): the same on
 * both ends of this one connection, unknown to anybody else and to any
 * other connection.
 */
int tls_export(const struct tls_chan *t, const char *label, uint8_t *out, size_t n);
/*
 * The session's channel binding (RFC 9266 "tls-exporter": 32 bytes with
 * the label EXPORTER-Channel-Binding) in hex, into hex[65]; "" without
 * TLS.  Both ends of one session print the same value, two sessions never
 * do: comparing the sender's and the receiver's shows that no relay
 * terminated TLS between them, even one holding certificates of the CA.
 */
void tls_binding(const struct tls_chan *t, char hex[65]);

/*
 * kTLS for a server's receiving direction (tls_krx.c): prepare its
 * context (before any handshake), then try after each handshake; false
 * leaves the direction to userspace.
 */
int tls_krx_prepare(struct ssl_ctx_st *ctx);
bool tls_krx_enable(struct ssl_st *ssl, int fd);

/* ---- userspace record layer --------------------------------------------- */

/* Room the sealed form of n plaintext bytes may take. */
static inline size_t tls_seal_bound(size_t n)
{
	/* A record carries up to 16 KiB: 5 header + 1 type + 16 tag bytes each. */
	return n + (n / 16384 + 1) * 32;
}
/* Seal n bytes into out (cap >= tls_seal_bound(n)); the sealed length, or -1. */
ssize_t tls_seal(struct tls_chan *t, const void *in, size_t n, void *out, size_t cap);
/*
 * Hand received ciphertext to the session: it is read from in itself,
 * which must stay untouched until the next tls_open_read() returns.
 */
int tls_open_feed(struct tls_chan *t, const void *in, size_t n);
/*
 * Plaintext opened so far, up to cap: bytes (0: a record is incomplete),
 * or -1.  Ciphertext not taken yet is kept by the session: the buffer of
 * tls_open_feed() is free again.  out may lie in that buffer, as long as
 * it starts at least one record (TLS_RECORD_MAX) before in: the
 * plaintext then never overtakes what is still to be read.
 */
ssize_t tls_open_read(struct tls_chan *t, void *out, size_t cap);
/* A record with its header and tag (RFC 8446 5.2: 2^14 + 256 of ciphertext). */
#define TLS_RECORD_MAX	(16384 + 256 + 5)

/* ---- blocking control I/O on a channel ---------------------------------- */

/* net_read_full()/net_write_full() through the channel's TLS (t NULL: plain). */
int chan_read_full(int fd, struct tls_chan *t, void *buf, size_t len, int timeout_ms,
		   const char *what);
int chan_write_full(int fd, struct tls_chan *t, const void *buf, size_t len, int timeout_ms,
		    const char *what);

/*
 * Userspace TLS on a channel of fixed-size messages (the replies a sender
 * reads): feed n bytes of records from in, and for every whole message
 * opened into msg (len bytes; *have of them so far) call got(arg), until
 * *stop turns true.  0, or -1 with lmig_err().
 */
int tls_open_msgs(struct tls_chan *t, const void *in, size_t n, void *msg, size_t len,
		  size_t *have, const bool *stop, int (*got)(void *arg), void *arg);

#endif

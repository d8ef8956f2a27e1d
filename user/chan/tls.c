// SPDX-License-Identifier: GPL-2.0-only
/*
 * The TLS handshake of one channel (tls.h), the checks that it
 * authenticated the peer, and what the session then offers: its mode
 * per direction, exported keying material, the channel binding.  The
 * directions the kernel does not take go through tls_record.c's BIOs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <lmig/wire.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/tls.h"
#include "chan/tls_int.h"

/* Why the last verification or PSK look-up failed, in words (one thread). */
char tls_why[256];

/* OpenSSL's reason for the oldest queued error, or fallback. */
const char *tls_ossl_reason(const char *fallback)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : fallback;
}

/* ---- the handshake ----------------------------------------------------- */

static int handshake_failed(const struct tls_conf *c, SSL *ssl, const char *peer)
{
	const char *r = tls_ossl_reason(NULL);

	if (tls_why[0])
		return lmig_err("TLS handshake with %s failed: %s", peer, tls_why);
	/* A PSK mismatch in words an operator can act on. */
	if (c->psk_file && c->server && r && strstr(r, "binder"))
		return lmig_err("TLS handshake with %s failed: the sender's pre-shared key is not the one in %s (%s)",
				peer, c->psk_file, r);
	if (c->psk_file && c->server && r && strstr(r, "no suitable signature"))
		return lmig_err("TLS handshake with %s failed: the sender offered no pre-shared key (does it use certificates?)",
				peer);
	if (c->psk_file && !c->server && r && strstr(r, "alert"))
		return lmig_err("TLS handshake with %s failed: the receiver refused the pre-shared key of %s (%s)",
				peer, c->psk_file, r);
	if (r && strstr(r, "alert"))
		return lmig_err("TLS handshake with %s failed: the %s refused it (%s)", peer,
				c->server ? "sender" : "receiver", r);
	if (r && (strstr(r, "unsupported protocol") || strstr(r, "protocol version")))
		return lmig_err("TLS handshake with %s failed: the %s does not speak TLS 1.3 (%s; older versions are refused)",
				peer, c->server ? "sender" : "receiver", r);
	/* Not a TLS record: when OpenSSL read it before peer_is_plain_lmig() could look. */
	if (r && (strstr(r, "wrong version number") || strstr(r, "packet length too long") ||
		  strstr(r, "http request"))) {
		if (c->server)
			return lmig_err("the sender at %s does not speak TLS (%s): this receiver requires TLS",
					peer, r);
		return lmig_err("the receiver at %s does not use TLS (%s): start it with --tls-dir or --psk-file",
				peer, r);
	}
	if (r)
		return lmig_err("TLS handshake with %s failed: %s", peer, r);
	return lmig_err("TLS handshake with %s failed: connection closed by the %s", peer,
			c->server ? "sender" : "receiver");
}

/*
 * The first 4 bytes the peer sent, without taking them: an lmig peer
 * without TLS starts everything it sends with the lmig magic.
 */
static bool peer_is_plain_lmig(int fd)
{
	uint8_t m[4];

	return recv(fd, m, sizeof(m), MSG_PEEK | MSG_DONTWAIT) == sizeof(m) &&
	       (m[0] | m[1] << 8 | m[2] << 16 | (uint32_t)m[3] << 24) == LMIG_WIRE_MAGIC;
}

/*
 * What the handshake established, checked once more before anything of
 * lmig's crosses the channel: a PSK session must have used the key (a
 * server that ignored it would have authenticated by certificate, which
 * verify_cb already refuses), a certificate session must hold the peer's
 * verified certificate.
 */
static int authenticated(const struct tls_conf *c, SSL *ssl, const char *peer)
{
	const char *who = c->server ? "sender" : "receiver";

	if (c->psk_file) {
		if (SSL_session_reused(ssl) != 1 || SSL_get0_peer_certificate(ssl))
			return lmig_err("TLS handshake with %s failed: the %s did not use the pre-shared key of %s",
					peer, who, c->psk_file);
		return 0;
	}
	if (!SSL_get0_peer_certificate(ssl) || SSL_get_verify_result(ssl) != X509_V_OK)
		return lmig_err("TLS handshake with %s failed: the %s's certificate was not verified",
				peer, who);
	return 0;
}

int tls_handshake(const struct tls_conf *c, int fd, int timeout_ms, const char *peer,
		  struct tls_chan *t)
{
	long long deadline = now_ms() + timeout_ms;
	int fl = fcntl(fd, F_GETFL), rc = -1;
	bool looked = false;

	memset(t, 0, sizeof(*t));
	tls_why[0] = 0;
	ERR_clear_error();
	t->ssl = SSL_new(c->ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1)
		return lmig_err("TLS: %s", tls_ossl_reason("out of memory"));
	if (c->server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	/*
	 * The sender speaks first: a plain one has sent its hello by now, or
	 * will.  Look at it before OpenSSL takes it for a broken record.
	 */
	if (c->server) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, timeout_ms) == 0) {
			lmig_err("TLS handshake with %s timed out after %d ms", peer, timeout_ms);
			goto out;
		}
		looked = true;
		if (peer_is_plain_lmig(fd)) {
			lmig_err("this receiver requires TLS: a plain-text sender (%s) was refused", peer);
			rc = -2;
			goto out;
		}
	}
	for (;;) {
		int n = SSL_do_handshake(t->ssl), e;
		struct pollfd p = { .fd = fd };
		long long left = deadline - now_ms();

		if (n == 1)
			break;
		e = SSL_get_error(t->ssl, n);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			handshake_failed(c, t->ssl, peer);
			goto out;
		}
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			lmig_err("TLS handshake with %s timed out after %d ms", peer, timeout_ms);
			goto out;
		}
		/* The receiver's first answer: a plain one refuses our ClientHello in lmig's words. */
		if (!looked && e == SSL_ERROR_WANT_READ && (p.revents & POLLIN)) {
			looked = true;
			if (peer_is_plain_lmig(fd)) {
				lmig_err("the receiver at %s does not use TLS (it answered in plain text): start it with --tls-dir or --psk-file",
					 peer);
				goto out;
			}
		}
	}
	if (authenticated(c, t->ssl, peer))
		goto out;
	t->ktls_tx = BIO_get_ktls_send(SSL_get_wbio(t->ssl));
	t->ktls_rx = BIO_get_ktls_recv(SSL_get_rbio(t->ssl));
	/* OpenSSL 3.0 gives the kernel only the sending side of TLS 1.3: tls_krx.c. */
	if (c->server && !t->ktls_rx)
		t->ktls_rx = tls_krx_enable(t->ssl, fd);
	/* The directions the kernel does not take go through our BIOs from now on. */
	if (!t->ktls_rx) {
		t->rmem = tls_source_new();
		if (!t->rmem) {
			lmig_err("TLS: out of memory");
			goto out;
		}
		SSL_set0_rbio(t->ssl, t->rmem);
	}
	if (!t->ktls_tx) {
		t->wmem = tls_sink_new();
		if (!t->wmem) {
			lmig_err("TLS: out of memory");
			goto out;
		}
		SSL_set0_wbio(t->ssl, t->wmem);
	}
	rc = 0;
out:
	fcntl(fd, F_SETFL, fl);
	ERR_clear_error();
	if (rc)
		tls_chan_free(t);
	return rc;
}

void tls_chan_free(struct tls_chan *t)
{
	if (!t)
		return;
	if (t->ssl)
		SSL_free(t->ssl);	/* and the BIOs it owns; not the socket */
	memset(t, 0, sizeof(*t));
}

const char *tls_mode(const struct tls_chan *t, bool tx)
{
	if (!t || !t->ssl)
		return "off";
	return (tx ? t->ktls_tx : t->ktls_rx) ? "ktls" : "userspace";
}

int tls_export(const struct tls_chan *t, const char *label, uint8_t *out, size_t n)
{
	if (SSL_export_keying_material(t->ssl, out, n, label, strlen(label), NULL, 0, 0) != 1)
		return lmig_err("TLS: cannot export keying material");
	return 0;
}

void tls_binding(const struct tls_chan *t, char hex[65])
{
	uint8_t b[32];

	hex[0] = 0;
	if (!t || !t->ssl || tls_export(t, "EXPORTER-Channel-Binding", b, sizeof(b)))
		return;
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", b[i]);
}

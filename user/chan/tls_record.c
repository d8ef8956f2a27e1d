// SPDX-License-Identifier: GPL-2.0-only
/*
 * The userspace TLS record layer (tls.h): OpenSSL's records sealed
 * straight into the caller's send buffer and opened straight from its
 * receive buffer, through two BIOs of our own, for every direction the
 * kernel (kTLS) does not take.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lib/err.h"
#include "chan/tls.h"
#include "chan/tls_int.h"

/* ---- the sending side's BIO -------------------------------------------- */

/*
 * Where OpenSSL's records go in userspace: straight into the buffer
 * tls_seal() was given (a memory BIO would copy them once more, in and
 * out).  Records OpenSSL writes on its own between two seals - an alert
 * after a record that failed to open - wait in spill and go first.
 */
struct sink {
	uint8_t *out;
	size_t cap, len;
	bool over;			/* a record did not fit */
	size_t nspill;
	uint8_t spill[4096];
};

static int sink_write(BIO *b, const char *in, int n)
{
	struct sink *k = BIO_get_data(b);
	uint8_t *dst = k->out ? k->out + k->len : k->spill + k->nspill;
	size_t room = k->out ? k->cap - k->len : sizeof(k->spill) - k->nspill;

	BIO_clear_retry_flags(b);
	if (n < 0 || (size_t)n > room) {
		k->over = true;
		return -1;
	}
	memcpy(dst, in, n);
	if (k->out)
		k->len += n;
	else
		k->nspill += n;
	return n;
}

static long sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct sink *k = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_WPENDING:
	case BIO_CTRL_PENDING:
		return (long)k->nspill;
	}
	return 0;
}

static int sink_create(BIO *b)
{
	struct sink *k = calloc(1, sizeof(*k));

	if (!k)
		return 0;
	BIO_set_data(b, k);
	BIO_set_init(b, 1);
	return 1;
}

static int sink_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

BIO *tls_sink_new(void)
{
	static BIO_METHOD *m;

	if (!m) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lmig records");
		if (!m || !BIO_meth_set_write(m, sink_write) || !BIO_meth_set_ctrl(m, sink_ctrl) ||
		    !BIO_meth_set_create(m, sink_create) || !BIO_meth_set_destroy(m, sink_destroy)) {
			BIO_meth_free(m);
			m = NULL;
			return NULL;
		}
	}
	return BIO_new(m);
}

/* ---- the receiving side's BIO ------------------------------------------ */

/*
 * What OpenSSL opens in userspace is read straight from the caller's
 * buffer (tls_open_feed()), not copied into a memory BIO first.  Bytes
 * it has not taken when tls_open_read() returns move to carry, so the
 * caller's buffer is free again; carry is read first next time.
 */
struct source {
	const uint8_t *p;
	size_t n;
	uint8_t *carry;
	size_t carry_off, carry_len, carry_cap;
};

static int source_read(BIO *b, char *out, int len)
{
	struct source *k = BIO_get_data(b);
	const uint8_t *from;
	size_t n;

	BIO_clear_retry_flags(b);
	if (k->carry_len > k->carry_off) {
		from = k->carry + k->carry_off;
		n = k->carry_len - k->carry_off;
	} else {
		from = k->p;
		n = k->n;
	}
	if (!n) {
		BIO_set_retry_read(b);
		return -1;
	}
	if (len >= 0 && n > (size_t)len)
		n = len;
	memcpy(out, from, n);
	if (from == k->p) {
		k->p += n;
		k->n -= n;
	} else {
		k->carry_off += n;
	}
	return (int)n;
}

static long source_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct source *k = BIO_get_data(b);

	if (cmd == BIO_CTRL_PENDING)
		return (long)(k->n + k->carry_len - k->carry_off);
	return cmd == BIO_CTRL_FLUSH;
}

static int source_create(BIO *b)
{
	struct source *k = calloc(1, sizeof(*k));

	if (!k)
		return 0;
	BIO_set_data(b, k);
	BIO_set_init(b, 1);
	return 1;
}

static int source_destroy(BIO *b)
{
	struct source *k = BIO_get_data(b);

	if (k)
		free(k->carry);
	free(k);
	BIO_set_data(b, NULL);
	return 1;
}

BIO *tls_source_new(void)
{
	static BIO_METHOD *m;

	if (!m) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lmig received records");
		if (!m || !BIO_meth_set_read(m, source_read) || !BIO_meth_set_ctrl(m, source_ctrl) ||
		    !BIO_meth_set_create(m, source_create) ||
		    !BIO_meth_set_destroy(m, source_destroy)) {
			BIO_meth_free(m);
			m = NULL;
			return NULL;
		}
	}
	return BIO_new(m);
}

/* What is left of the caller's buffer goes to carry: the caller may reuse it. */
static int source_release(struct tls_chan *t)
{
	struct source *k = BIO_get_data(t->rmem);
	size_t left = k->carry_len - k->carry_off;

	if (!k->n)
		return 0;
	if (left + k->n > k->carry_cap) {
		uint8_t *c = malloc(left + k->n);

		if (!c)
			return lmig_err("TLS: out of memory for received records");
		if (left)	/* carry is NULL until something was kept */
			memcpy(c, k->carry + k->carry_off, left);
		free(k->carry);
		k->carry = c;
		k->carry_cap = left + k->n;
	} else if (left) {
		memmove(k->carry, k->carry + k->carry_off, left);
	}
	memcpy(k->carry + left, k->p, k->n);
	k->carry_off = 0;
	k->carry_len = left + k->n;
	k->p += k->n;
	k->n = 0;
	return 0;
}

/* Take records written outside a seal (an alert) into out; their length. */
size_t tls_sink_take_spill(struct tls_chan *t, void *out, size_t cap)
{
	struct sink *k = BIO_get_data(t->wmem);
	size_t n = k->nspill;

	if (n > cap)
		return 0;
	memcpy(out, k->spill, n);
	k->nspill = 0;
	return n;
}
/* ---- userspace record layer --------------------------------------------- */

ssize_t tls_seal(struct tls_chan *t, const void *in, size_t n, void *out, size_t cap)
{
	struct sink *k = BIO_get_data(t->wmem);
	bool ok;

	if (k->nspill > cap)
		return lmig_err("TLS: %zu pending bytes do not fit in %zu", k->nspill, cap);
	/* What waited goes first; it stays in spill unless the seal succeeds. */
	memcpy(out, k->spill, k->nspill);
	k->out = out;
	k->cap = cap;
	k->len = k->nspill;
	k->over = false;
	ok = !n || SSL_write(t->ssl, in, (int)n) == (int)n;
	k->out = NULL;
	if (k->over)
		return lmig_err("TLS: %zu plaintext bytes sealed into more than %zu", n, cap);
	if (!ok) {
		lmig_err("TLS: cannot encrypt: %s", tls_ossl_reason("write failed"));
		ERR_clear_error();
		return -1;
	}
	k->nspill = 0;
	return (ssize_t)k->len;
}

int tls_open_feed(struct tls_chan *t, const void *in, size_t n)
{
	struct source *k = BIO_get_data(t->rmem);

	if (source_release(t))
		return -1;
	k->p = in;
	k->n = n;
	return 0;
}

static ssize_t open_records(struct tls_chan *t, void *out, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		int n = SSL_read(t->ssl, (char *)out + got, (int)(cap - got > 1 << 30 ? 1 << 30 : cap - got));

		if (n > 0) {
			got += n;
			continue;
		}
		switch (SSL_get_error(t->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			return (ssize_t)got;
		case SSL_ERROR_ZERO_RETURN:
			return lmig_err("the peer ended the TLS session");
		default: {
			const char *r = tls_ossl_reason("record layer failure");

			/* An AEAD tag that does not match: the bytes were changed on the way. */
			if (strstr(r, "alert"))
				lmig_err("TLS: the peer ended the session with an alert (%s)", r);
			else
				lmig_err("TLS: a record failed authentication (corrupted or tampered stream: %s)",
					 r);
			ERR_clear_error();
			return -1;
		}
		}
	}
	return (ssize_t)got;
}

ssize_t tls_open_read(struct tls_chan *t, void *out, size_t cap)
{
	ssize_t n = open_records(t, out, cap);

	/* Whatever OpenSSL did not take leaves the caller's buffer now. */
	if (n >= 0 && source_release(t))
		return -1;
	return n;
}

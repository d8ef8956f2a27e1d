// SPDX-License-Identifier: GPL-2.0-only
/*
 * TLS 1.3 on lmig's channels; see tls.h.  No key material is ever
 * printed: errors name files, peers and OpenSSL's reason, nothing else.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>

#include <lmig/wire.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/net.h"
#include "chan/tls.h"

#define PSK_SUITE	{ 0x13, 0x01 }	/* TLS_AES_128_GCM_SHA256 */

/* Why the last verification or PSK look-up failed, in words (one thread). */
static char why[256];

/* OpenSSL's reason for the oldest queued error, or fallback. */
static const char *ossl_reason(const char *fallback)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : fallback;
}

/* ---- configuration ----------------------------------------------------- */

static int parse_fingerprint(const char *s, uint8_t fp[32])
{
	size_t n = 0;

	for (const char *p = s; *p; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) || n == 32)
			goto bad;
		sscanf(p, "%2hhx", &fp[n++]);
		p++;
	}
	if (n == 32)
		return 0;
bad:
	return lmig_err("--peer-fingerprint: '%.80s' is not a SHA-256 fingerprint (64 hex digits, colons allowed)",
			s);
}

static void fmt_fingerprint(const uint8_t fp[32], char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 3 * i, "%02X%s", fp[i], i < 31 ? ":" : "");
}

static int file_check(const char *path)
{
	if (access(path, R_OK))
		return lmig_err_errno(errno, "cannot read %s", path);
	return 0;
}

/* A verification error that comes from the revocation list rather than the chain. */
static bool crl_error(int e)
{
	switch (e) {
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		return true;
	}
	return false;
}

/*
 * Why a certificate (whose: "the sender's certificate", or a file name)
 * failed verification with error e at depth, in words naming the file to
 * look at.
 */
static void explain(char *buf, size_t len, const struct tls_conf *c, const char *whose, int e,
		    int depth)
{
	const char *r = X509_verify_cert_error_string(e);

	if (e == X509_V_ERR_CERT_REVOKED)
		snprintf(buf, len, "%s is revoked by %s/ca-crl.pem%s", whose, c->dir,
			 depth ? " (its issuing CA is)" : "");
	else if (e == X509_V_ERR_UNABLE_TO_GET_CRL)
		snprintf(buf, len, "%s/ca-crl.pem has no revocation list of the CA that issued %s%s (once the file exists, every CA of a chain needs one)",
			 c->dir, depth ? "the CA of " : "", whose);
	else if (crl_error(e))
		snprintf(buf, len, "%s/ca-crl.pem cannot check %s: %s", c->dir, whose, r);
	else if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
		snprintf(buf, len, "%s is not for %s (it must name the host of --to, or the one --tls-hostname gives)",
			 whose, c->host);
	else
		snprintf(buf, len, "%s is not valid under %s/ca-cert.pem: %s", whose, c->dir, r);
}

/*
 * Our own certificate must chain to the CA, and not be revoked: better
 * said here than by the peer.
 */
static int check_own_cert(const struct tls_conf *c, SSL_CTX *ctx, const char *cert)
{
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	X509 *x = SSL_CTX_get0_certificate(ctx);
	char m[512];
	int ok;

	if (!sc || !x)
		return lmig_err("%s: no certificate", cert);
	ok = X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), x, NULL) == 1 &&
	     X509_verify_cert(sc) == 1;
	if (!ok) {
		explain(m, sizeof(m), c, cert, X509_STORE_CTX_get_error(sc),
			X509_STORE_CTX_get_error_depth(sc));
		lmig_err("%s", m);
	}
	X509_STORE_CTX_free(sc);
	return ok ? 0 : -1;
}

/*
 * Certificate chains are checked by OpenSSL; here the words for a
 * refusal, and the pin: the peer's own certificate (depth 0) must have
 * the fingerprint given.
 */
static int verify_cb(int ok, X509_STORE_CTX *sc)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
	const struct tls_conf *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *peer = c->server ? "sender" : "receiver";
	X509 *x = X509_STORE_CTX_get_current_cert(sc);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[3 * 32];

	/*
	 * With a pre-shared key the handshake has no certificate: one here
	 * means the receiver did not take the key (it does not hold it) and
	 * tries to authenticate otherwise.  Refused before our Finished.
	 */
	if (c->psk_file) {
		if (!why[0])
			snprintf(why, sizeof(why), "the receiver did not use the pre-shared key of %s (it answered with a certificate: it does not hold the key)",
				 c->psk_file);
		return 0;
	}
	if (!ok) {
		char whose[64];

		snprintf(whose, sizeof(whose), "the %s's certificate", peer);
		if (!why[0])
			explain(why, sizeof(why), c, whose, X509_STORE_CTX_get_error(sc),
				X509_STORE_CTX_get_error_depth(sc));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(sc) || !c->pin)
		return 1;
	if (!X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32 || memcmp(md, c->fp, 32)) {
		fmt_fingerprint(md, hex);
		snprintf(why, sizeof(why), "the %s's certificate (SHA256 %s) is not the one --peer-fingerprint pins",
			 peer, hex);
		X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/*
 * DIR/ca-crl.pem, when there is one (QEMU's layout): every certificate of
 * either peer's chain, and our own, is checked against it.  Once the file
 * exists it must cover each CA and be current: a CA without a list, or a
 * list past its next update, fails the check rather than skip it.
 */
static int load_crl(struct tls_conf *c)
{
	X509_STORE *st = SSL_CTX_get_cert_store(c->ctx);
	const unsigned long fl = X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	X509_LOOKUP *lu;
	char crl[4096];

	snprintf(crl, sizeof(crl), "%s/ca-crl.pem", c->dir);
	if (access(crl, F_OK) && errno == ENOENT)
		return 0;
	if (file_check(crl))
		return -1;
	ERR_clear_error();
	lu = X509_STORE_add_lookup(st, X509_LOOKUP_file());
	if (!lu || X509_load_crl_file(lu, crl, X509_FILETYPE_PEM) <= 0)
		return lmig_err("%s: not a PEM certificate revocation list (%s)", crl,
				ossl_reason("no CRL in it"));
	/* The store's flags check our own certificate, the context's the peer's. */
	if (X509_STORE_set_flags(st, fl) != 1 ||
	    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx), fl) != 1)
		return lmig_err("TLS: %s", ossl_reason("cannot enable CRL checks"));
	c->crl = true;
	return 0;
}

/* The sending side checks the receiver's certificate for this name or address. */
static int set_host(struct tls_conf *c, const char *host)
{
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(c->ctx);
	unsigned char a[16];
	int ok;

	if (strlen(host) >= sizeof(c->host))
		return lmig_err("--tls-hostname: '%.80s...' is too long", host);
	snprintf(c->host, sizeof(c->host), "%s", host);
	/* An address is matched against the certificate's IP entries, as QEMU's client does. */
	if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	} else {
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = X509_VERIFY_PARAM_set1_host(vp, host, 0);
	}
	if (ok != 1)
		return lmig_err("--tls-hostname: '%.80s' is not a host name or address", host);
	return 0;
}

static int load_dir(struct tls_conf *c, const char *host)
{
	const char *role = c->server ? "server" : "client";
	char ca[4096], cert[4096], key[4096];

	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", c->dir);
	snprintf(cert, sizeof(cert), "%s/%s-cert.pem", c->dir, role);
	snprintf(key, sizeof(key), "%s/%s-key.pem", c->dir, role);
	if (file_check(ca) || file_check(cert) || file_check(key))
		return -1;
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
		return lmig_err("%s: not a PEM CA certificate (%s)", ca, ossl_reason("unreadable"));
	if (load_crl(c))
		return -1;
	if (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1)
		return lmig_err("%s: not a PEM certificate (%s)", cert, ossl_reason("unreadable"));
	if (SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1)
		return lmig_err("%s: not a PEM private key (%s)", key, ossl_reason("unreadable"));
	if (SSL_CTX_check_private_key(c->ctx) != 1)
		return lmig_err("%s is not the key of %s", key, cert);
	if (check_own_cert(c, c->ctx, cert))
		return -1;
	if (host && set_host(c, host))
		return -1;
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	return 0;
}

/* ---- pre-shared key ---------------------------------------------------- */

static SSL_SESSION *psk_session(SSL *ssl, const struct tls_conf *c)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, (const unsigned char[])PSK_SUITE);
	SSL_SESSION *s = SSL_SESSION_new();

	if (!s || !cipher || !SSL_SESSION_set1_master_key(s, c->psk, c->psk_len) ||
	    !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		      SSL_SESSION **sess)
{
	const struct tls_conf *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, (const unsigned char[])PSK_SUITE);

	*sess = NULL;
	/* On a HelloRetryRequest md is the hash chosen: offer the key only if it fits. */
	if (md && (!cipher || md != SSL_CIPHER_get_handshake_digest(cipher)))
		return 1;
	*sess = psk_session(ssl, c);
	if (!*sess)
		return 0;
	*id = (const unsigned char *)c->psk_id;
	*idlen = strlen(c->psk_id);
	return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	const struct tls_conf *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	char shown[40];
	size_t i;

	*sess = NULL;
	if (idlen != strlen(c->psk_id) || memcmp(id, c->psk_id, idlen)) {
		for (i = 0; i < idlen && i < sizeof(shown) - 1; i++)
			shown[i] = isprint(id[i]) ? id[i] : '?';
		shown[i] = 0;
		snprintf(why, sizeof(why), "the sender's PSK identity '%s' is not the one in %s",
			 shown, c->psk_file);
		return 0;
	}
	*sess = psk_session(ssl, c);
	return *sess ? 1 : 0;
}

/*
 * One line "IDENTITY:HEXKEY" (psktool's format, as QEMU's keys.psk): the
 * same file on both hosts, readable by nobody else.
 */
static int load_psk(struct tls_conf *c)
{
	char line[512], *colon, *hex;
	struct stat sb;
	FILE *f;
	size_t n;

	f = fopen(c->psk_file, "re");
	if (!f)
		return lmig_err_errno(errno, "cannot read %s", c->psk_file);
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077)) {
		fclose(f);
		return lmig_err("%s is readable by others (mode %03o): chmod 600 it", c->psk_file,
				(unsigned int)(sb.st_mode & 0777));
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	colon = strchr(line, ':');
	if (!colon || colon == line || (size_t)(colon - line) >= sizeof(c->psk_id))
		goto bad;
	*colon = 0;
	hex = colon + 1;
	n = strlen(hex);
	if (n % 2 || n < 32 || n > 2 * sizeof(c->psk))
		goto bad;
	for (size_t i = 0; i < n; i += 2) {
		if (!isxdigit((unsigned char)hex[i]) || !isxdigit((unsigned char)hex[i + 1]))
			goto bad;
		sscanf(hex + i, "%2hhx", &c->psk[i / 2]);
	}
	c->psk_len = n / 2;
	snprintf(c->psk_id, sizeof(c->psk_id), "%s", line);
	explicit_bzero(line, sizeof(line));
	if (c->server) {
		SSL_CTX_set_psk_find_session_callback(c->ctx, psk_find_cb);
	} else {
		SSL_CTX_set_psk_use_session_callback(c->ctx, psk_use_cb);
		/*
		 * A server that ignores the key can still finish a handshake
		 * with any certificate: the client must look at it to refuse.
		 */
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, verify_cb);
	}
	return 0;
bad:
	explicit_bzero(line, sizeof(line));
	return lmig_err("%s: not a PSK file (one line IDENTITY:HEXKEY, a key of 16 to 64 bytes)",
			c->psk_file);
}

int tls_conf_init(struct tls_conf *c, bool server, const char *dir, const char *psk_file,
		  const char *fingerprint, const char *host)
{
	memset(c, 0, sizeof(*c));
	c->server = server;
	c->dir = dir;
	c->psk_file = psk_file;
	if (dir && psk_file)
		return lmig_err("--tls-dir and --psk-file exclude each other");
	if (fingerprint && !dir)
		return lmig_err("--peer-fingerprint needs --tls-dir (certificates to pin)");
	if (fingerprint && parse_fingerprint(fingerprint, c->fp))
		return -1;
	c->pin = fingerprint;
	if (!dir && !psk_file)
		return 0;
	c->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c->ctx)
		return lmig_err("TLS: %s", ossl_reason("cannot create a context"));
	SSL_CTX_set_app_data(c->ctx, c);
	/* 1.3 only: nothing to downgrade to. */
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(c->ctx, TLS1_3_VERSION);
	/*
	 * No tickets (a record after the handshake: a kTLS receiver would
	 * read it as data); kTLS wherever the kernel takes it.
	 */
	SSL_CTX_set_num_tickets(c->ctx, 0);
	if (server && tls_krx_prepare(c->ctx))
		return lmig_err("TLS: out of memory");
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET | SSL_OP_ENABLE_KTLS);
	/*
	 * AES-128-GCM first: the fastest where AES-NI is, and what every
	 * kTLS offers.  A PSK is bound to its suite's hash: SHA-256 suites only.
	 */
	if (SSL_CTX_set_ciphersuites(c->ctx, psk_file ?
				     "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256" :
				     "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1) {
		tls_conf_free(c);
		return lmig_err("TLS: %s", ossl_reason("no cipher suites"));
	}
	/* Every handshake authenticates afresh: no cache to resume from, no early data. */
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_max_early_data(c->ctx, 0);
	if (dir ? load_dir(c, host) : load_psk(c)) {
		tls_conf_free(c);
		return -1;
	}
	return 0;
}

void tls_conf_free(struct tls_conf *c)
{
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	c->ctx = NULL;
	explicit_bzero(c->psk, sizeof(c->psk));
}

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

static BIO *sink_new(void)
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

static BIO *source_new(void)
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
static size_t sink_take_spill(struct tls_chan *t, void *out, size_t cap)
{
	struct sink *k = BIO_get_data(t->wmem);
	size_t n = k->nspill;

	if (n > cap)
		return 0;
	memcpy(out, k->spill, n);
	k->nspill = 0;
	return n;
}

/* ---- the handshake ----------------------------------------------------- */

static int handshake_failed(const struct tls_conf *c, SSL *ssl, const char *peer)
{
	const char *r = ossl_reason(NULL);

	if (why[0])
		return lmig_err("TLS handshake with %s failed: %s", peer, why);
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
	why[0] = 0;
	ERR_clear_error();
	t->ssl = SSL_new(c->ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1)
		return lmig_err("TLS: %s", ossl_reason("out of memory"));
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
		t->rmem = source_new();
		if (!t->rmem) {
			lmig_err("TLS: out of memory");
			goto out;
		}
		SSL_set0_rbio(t->ssl, t->rmem);
	}
	if (!t->ktls_tx) {
		t->wmem = sink_new();
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
		lmig_err("TLS: cannot encrypt: %s", ossl_reason("write failed"));
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
			const char *r = ossl_reason("record layer failure");

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

/* ---- blocking control I/O ----------------------------------------------- */

int chan_write_full(int fd, struct tls_chan *t, const void *buf, size_t len, int timeout_ms,
		    const char *what)
{
	uint8_t small[1024], *out = small;
	size_t cap = tls_seal_bound(len);
	ssize_t n;
	int rc;

	if (!t || !t->ssl || t->ktls_tx)
		return net_write_full(fd, buf, len, timeout_ms, what);
	if (cap > sizeof(small) && !(out = malloc(cap)))
		return lmig_err("%s: out of memory", what);
	n = tls_seal(t, buf, len, out, cap);
	/*
	 * A session that failed (a record that did not authenticate) cannot
	 * seal any more, but OpenSSL left its alert in the BIO: send that, so
	 * the peer learns why instead of seeing a closed connection.
	 */
	if (n < 0) {
		size_t m = sink_take_spill(t, out, cap);

		if (m)
			net_write_full(fd, out, m, timeout_ms, what);
	}
	rc = n < 0 ? -1 : net_write_full(fd, out, n, timeout_ms, what);
	if (out != small)
		free(out);
	return rc;
}

int chan_read_full(int fd, struct tls_chan *t, void *buf, size_t len, int timeout_ms,
		   const char *what)
{
	long long deadline = now_ms() + timeout_ms;
	uint8_t in[17 * 1024];
	size_t got = 0;

	if (!t || !t->ssl || t->ktls_rx)
		return net_read_full(fd, buf, len, timeout_ms, what);
	while (got < len) {
		ssize_t n = tls_open_read(t, (char *)buf + got, len - got);

		if (n < 0) {
			char m[400];

			snprintf(m, sizeof(m), "%s", lmig_errmsg());
			lmig_err_clear();
			return lmig_err("%s: %s", what, m);
		}
		got += n;
		if (got == len)
			break;
		/* Only whole records open: take what came in and try again. */
		n = net_recv_some(fd, in, sizeof(in), deadline, what);
		if (n < 0 || tls_open_feed(t, in, n))
			return -1;
	}
	return 0;
}

int tls_open_msgs(struct tls_chan *t, const void *in, size_t n, void *msg, size_t len,
		  size_t *have, const bool *stop, int (*got)(void *arg), void *arg)
{
	if (tls_open_feed(t, in, n))
		return -1;
	while (!*stop) {
		ssize_t k = tls_open_read(t, (uint8_t *)msg + *have, len - *have);

		if (k < 0)
			return -1;
		if (!k)
			break;
		*have += k;
		if (*have < len)
			continue;
		*have = 0;
		if (got(arg))
			return -1;
	}
	return 0;
}

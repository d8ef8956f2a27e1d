// SPDX-License-Identifier: GPL-2.0-only
/*
 * TLS configuration and credentials (tls.h): the context both peers'
 * channels are made from, with a CA directory (certificates, an optional
 * revocation list, the host name to check, a pinned fingerprint) or a
 * pre-shared key, and the callbacks that judge the peer's credentials
 * during a handshake.  No key material is ever printed: errors name
 * files, peers and OpenSSL's reason, nothing else.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>

#include "lib/err.h"
#include "chan/tls.h"
#include "chan/tls_int.h"

#define PSK_SUITE	{ 0x13, 0x01 }	/* TLS_AES_128_GCM_SHA256 */

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
		if (!tls_why[0])
			snprintf(tls_why, sizeof(tls_why), "the receiver did not use the pre-shared key of %s (it answered with a certificate: it does not hold the key)",
				 c->psk_file);
		return 0;
	}
	if (!ok) {
		char whose[64];

		snprintf(whose, sizeof(whose), "the %s's certificate", peer);
		if (!tls_why[0])
			explain(tls_why, sizeof(tls_why), c, whose, X509_STORE_CTX_get_error(sc),
				X509_STORE_CTX_get_error_depth(sc));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(sc) || !c->pin)
		return 1;
	if (!X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32 || memcmp(md, c->fp, 32)) {
		fmt_fingerprint(md, hex);
		snprintf(tls_why, sizeof(tls_why), "the %s's certificate (SHA256 %s) is not the one --peer-fingerprint pins",
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
				tls_ossl_reason("no CRL in it"));
	/* The store's flags check our own certificate, the context's the peer's. */
	if (X509_STORE_set_flags(st, fl) != 1 ||
	    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx), fl) != 1)
		return lmig_err("TLS: %s", tls_ossl_reason("cannot enable CRL checks"));
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
		return lmig_err("%s: not a PEM CA certificate (%s)", ca, tls_ossl_reason("unreadable"));
	if (load_crl(c))
		return -1;
	if (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1)
		return lmig_err("%s: not a PEM certificate (%s)", cert, tls_ossl_reason("unreadable"));
	if (SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1)
		return lmig_err("%s: not a PEM private key (%s)", key, tls_ossl_reason("unreadable"));
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
		snprintf(tls_why, sizeof(tls_why), "the sender's PSK identity '%s' is not the one in %s",
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
		return lmig_err("TLS: %s", tls_ossl_reason("cannot create a context"));
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
		return lmig_err("TLS: %s", tls_ossl_reason("no cipher suites"));
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

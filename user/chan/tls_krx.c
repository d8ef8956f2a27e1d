// SPDX-License-Identifier: GPL-2.0-only
/*
 * kTLS for the receiving direction of a TLS 1.3 server, which OpenSSL 3.0
 * only does for sending: the receiver (the TLS server) takes the client's
 * application traffic secret as OpenSSL derives it, expands the record
 * key and IV itself (RFC 8446 7.3) and hands them to the kernel
 * (TLS_RX), so the bulk of a migration is decrypted by the kernel and the
 * io_uring receive path sees plain frames, as without TLS.
 *
 * It is only safe when nothing encrypted with that secret was read yet:
 * the kernel starts at record number 0.  The sender writes nothing after
 * its Finished until the lmig hello, OpenSSL reads records without read
 * ahead, and a server whose OpenSSL already holds bytes keeps the
 * userspace path.  The secret is wiped once used; nothing is printed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <linux/tls.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "chan/tls.h"

#ifndef SOL_TLS
#define SOL_TLS		282
#endif
#ifndef TCP_ULP
#define TCP_ULP		31
#endif

#define SECRET_MAX	48	/* SHA-384 */

struct krx_secret {
	size_t len;
	uint8_t s[SECRET_MAX];
};

static int krx_idx = -1;

static void krx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
		     void *argp)
{
	if (ptr)
		OPENSSL_clear_free(ptr, sizeof(struct krx_secret));
}

/* OpenSSL's key-log hook: keep the client's traffic secret of this session, in memory only. */
static void keylog_cb(const SSL *ssl, const char *line)
{
	static const char tag[] = "CLIENT_TRAFFIC_SECRET_0 ";
	struct krx_secret *k;
	const char *hex;
	size_t n;

	if (strncmp(line, tag, sizeof(tag) - 1))
		return;
	/* "TAG CLIENT_RANDOM SECRET" */
	hex = strchr(line + sizeof(tag) - 1, ' ');
	if (!hex)
		return;
	hex++;
	n = strlen(hex) / 2;
	if (n > SECRET_MAX)
		return;
	k = OPENSSL_zalloc(sizeof(*k));
	if (!k)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
			OPENSSL_clear_free(k, sizeof(*k));
			return;
		}
		k->s[i] = b;
	}
	k->len = n;
	OPENSSL_clear_free(SSL_get_ex_data(ssl, krx_idx), sizeof(*k));
	SSL_set_ex_data((SSL *)ssl, krx_idx, k);
}

int tls_krx_prepare(struct ssl_ctx_st *ctx)
{
	if (krx_idx < 0)
		krx_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, krx_free);
	if (krx_idx < 0)
		return -1;
	SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	return 0;
}

/* HKDF-Expand-Label(secret, label, "", len) of TLS 1.3. */
static int expand_label(const EVP_MD *md, const struct krx_secret *k, const char *label,
			uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 6 + 32 + 1];
	size_t ll = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc = -1;
	EVP_KDF *kdf;
	EVP_KDF_CTX *kc = NULL;
	OSSL_PARAM p[5];

	if (ll > 32)
		return -1;
	info[n++] = len >> 8;
	info[n++] = len & 0xff;
	info[n++] = 6 + ll;
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;		/* empty context */
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf)
		kc = EVP_KDF_CTX_new(kdf);
	if (kc) {
		p[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
		p[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
							(char *)EVP_MD_get0_name(md), 0);
		p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k->s, k->len);
		p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
		p[4] = OSSL_PARAM_construct_end();
		rc = EVP_KDF_derive(kc, out, len, p) == 1 ? 0 : -1;
	}
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	return rc;
}

bool tls_krx_enable(struct ssl_st *ssl, int fd)
{
	struct krx_secret *k = SSL_get_ex_data(ssl, krx_idx);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
	} ci;
	uint8_t key[32], iv[12];
	size_t klen, size;
	bool ok = false;
	int id;

	if (!k || !c || SSL_has_pending(ssl))
		goto out;
	id = SSL_CIPHER_get_id(c) & 0xffff;
	if (id == 0x1301)
		klen = 16, size = sizeof(ci.g128);
	else if (id == 0x1302)
		klen = 32, size = sizeof(ci.g256);
	else
		goto out;	/* ChaCha20: userspace */
	if (expand_label(SSL_CIPHER_get_handshake_digest(c), k, "key", key, klen) ||
	    expand_label(SSL_CIPHER_get_handshake_digest(c), k, "iv", iv, sizeof(iv)))
		goto out;
	memset(&ci, 0, sizeof(ci));
	if (klen == 16) {
		ci.g128.info.version = TLS_1_3_VERSION;
		ci.g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.g128.key, key, klen);
		memcpy(ci.g128.salt, iv, 4);
		memcpy(ci.g128.iv, iv + 4, 8);
	} else {
		ci.g256.info.version = TLS_1_3_VERSION;
		ci.g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci.g256.key, key, klen);
		memcpy(ci.g256.salt, iv, 4);
		memcpy(ci.g256.iv, iv + 4, 8);
	}
	/* The ULP is there already when OpenSSL gave the kernel the sending side. */
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) && errno != EEXIST)
		goto out;
	ok = !setsockopt(fd, SOL_TLS, TLS_RX, &ci, size);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(&ci, sizeof(ci));
	SSL_set_ex_data(ssl, krx_idx, NULL);
	if (k)
		OPENSSL_clear_free(k, sizeof(*k));
	return ok;
}

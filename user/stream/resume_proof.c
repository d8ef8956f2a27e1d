// SPDX-License-Identifier: GPL-2.0-only
/* The same-session proof of a reconnected channel: see resume_proof.h. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chan/channel.h"
#include "lib/err.h"
#include "lib/xxh.h"
#include "stream/resume_proof.h"

int resume_secret_new(uint8_t secret[32])
{
	size_t got = 0;

	while (got < 32) {
		ssize_t n = getrandom(secret + got, 32 - got, 0);

		if (n < 0)
			return lmig_err_errno(errno, "getrandom");
		got += (size_t)n;
	}
	return 0;
}

void ssecret_build(struct lmig_ssecret *m, const uint8_t secret[32])
{
	memset(m, 0, sizeof(*m));
	m->magic = htole32(LMIG_SSECRET_MAGIC);
	memcpy(m->secret, secret, sizeof(m->secret));
	m->checksum = htole64(XXH3_64bits(m, sizeof(*m)));
}

bool ssecret_ok(const struct lmig_ssecret *m)
{
	struct lmig_ssecret h = *m;

	h.checksum = 0;
	return le32toh(m->magic) == LMIG_SSECRET_MAGIC && !m->reserved &&
	       XXH3_64bits(&h, sizeof(h)) == le64toh(m->checksum);
}

void resume_mac(const uint8_t secret[32], bool from_src, const uint8_t session[16],
		uint16_t channel, const uint8_t nonce_d[16], const uint8_t nonce_s[16],
		uint8_t mac[LMIG_RESUME_MAC_LEN])
{
	static const char src[] = "lmig-resume-src", dst[] = "lmig-resume-dst";
	uint8_t msg[15 + 16 + 2 + 2 * LMIG_RESUME_NONCE_LEN], *p = msg;
	uint16_t ch = htole16(channel);
	unsigned int len = LMIG_RESUME_MAC_LEN;

	memcpy(p, from_src ? src : dst, 15);
	p += 15;
	memcpy(p, session, 16);
	p += 16;
	memcpy(p, &ch, 2);
	p += 2;
	memcpy(p, nonce_d, LMIG_RESUME_NONCE_LEN);
	p += LMIG_RESUME_NONCE_LEN;
	memcpy(p, nonce_s, LMIG_RESUME_NONCE_LEN);
	if (!HMAC(EVP_sha256(), secret, 32, msg, sizeof(msg), mac, &len))
		memset(mac, 0, LMIG_RESUME_MAC_LEN);	/* matches no real mac's check below */
}

void sresume_build(struct lmig_sresume *m, unsigned int type, unsigned int status,
		   const uint8_t session[16], uint16_t channel, uint64_t have)
{
	memset(m, 0, sizeof(*m));
	m->magic = htole32(LMIG_SRESUME_MAGIC);
	m->type = htole16(type);
	m->status = htole16(status);
	memcpy(m->session, session, sizeof(m->session));
	m->channel = htole16(channel);
	m->have = htole64(have);
}

static void sresume_seal(struct lmig_sresume *m)
{
	m->checksum = 0;
	m->checksum = htole64(XXH3_64bits(m, sizeof(*m)));
}

bool sresume_ok(const struct lmig_sresume *m, unsigned int type)
{
	struct lmig_sresume h = *m;

	h.checksum = 0;
	return le32toh(m->magic) == LMIG_SRESUME_MAGIC && le16toh(m->type) == type &&
	       !m->reserved0 && !m->reserved1 && memchr(m->reason, 0, sizeof(m->reason)) &&
	       XXH3_64bits(&h, sizeof(h)) == le64toh(m->checksum);
}

static bool mac_ok(const uint8_t *a, const uint8_t *b)
{
	bool zero = true;

	for (unsigned int i = 0; i < LMIG_RESUME_MAC_LEN; i++)
		zero &= !b[i];
	return !zero && !CRYPTO_memcmp(a, b, LMIG_RESUME_MAC_LEN);
}

static int put(struct chan *c, struct lmig_sresume *m, int timeout_ms)
{
	sresume_seal(m);
	return chan_write_full(c->fd, &c->tls, m, sizeof(*m), timeout_ms, "resume handshake");
}

static enum rproof get(struct chan *c, struct lmig_sresume *m, unsigned int type, int timeout_ms)
{
	if (chan_read_full(c->fd, &c->tls, m, sizeof(*m), timeout_ms, "resume handshake"))
		return RP_IO;
	return sresume_ok(m, type) ? RP_OK : RP_PROTOCOL;
}

enum rproof resume_client(struct chan *ch, const struct resume_sess *ss, uint16_t channel,
			  uint64_t have, uint64_t *peer_have, int timeout_ms, char why[LMIG_REASON_LEN])
{
	struct lmig_sresume m, c;
	uint8_t mac[LMIG_RESUME_MAC_LEN];
	enum rproof r;

	why[0] = 0;
	sresume_build(&m, LMIG_SU_RESUME, 0, ss->session, channel, 0);
	if (put(ch, &m, timeout_ms))
		return RP_IO;
	r = get(ch, &c, LMIG_SU_CHALLENGE, timeout_ms);
	if (r == RP_PROTOCOL && sresume_ok(&c, LMIG_SU_RESUMED) && le16toh(c.status)) {
		memcpy(why, c.reason, LMIG_REASON_LEN);
		return RP_REFUSED;
	}
	if (r)
		return r;
	sresume_build(&m, LMIG_SU_PROOF, 0, ss->session, channel, have);
	if (resume_secret_new(mac))	/* 32 random bytes; the nonce is the first 16 */
		return RP_IO;
	memcpy(m.nonce, mac, LMIG_RESUME_NONCE_LEN);
	resume_mac(ss->secret, true, ss->session, channel, c.nonce, m.nonce, m.mac);
	if (put(ch, &m, timeout_ms))
		return RP_IO;
	r = get(ch, &c, LMIG_SU_RESUMED, timeout_ms);
	if (r)
		return r;
	if (le16toh(c.status)) {
		memcpy(why, c.reason, LMIG_REASON_LEN);
		return RP_REFUSED;
	}
	resume_mac(ss->secret, false, ss->session, channel, c.nonce, m.nonce, mac);
	if (!mac_ok(mac, c.mac))
		return RP_PEER_MAC;
	*peer_have = le64toh(c.have);
	return RP_OK;
}

/* The session is not echoed: a refused peer learns nothing of it. */
static enum rproof refuse(struct chan *ch, uint16_t channel, enum rproof r, const char *reason,
			  int timeout_ms)
{
	static const uint8_t none[16];
	struct lmig_sresume m;

	sresume_build(&m, LMIG_SU_RESUMED, r == RP_PROTOCOL ? LMIG_ST_PROTOCOL : LMIG_ST_SESSION,
		      none, channel, 0);
	strncpy(m.reason, reason, sizeof(m.reason) - 1);
	put(ch, &m, timeout_ms);
	return r;
}

enum rproof resume_server(struct chan *ch, const struct resume_sess *ss, resume_wants_fn wants,
			  void *arg, uint16_t *channel, uint64_t *peer_have, int timeout_ms)
{
	struct lmig_sresume m, p, f, *first = &f;
	uint8_t mac[LMIG_RESUME_MAC_LEN], rnd[32];
	uint64_t have = 0;
	enum rproof r;

	*channel = 0;
	memset(first, 0, sizeof(*first));
	/* The magic first: a fresh peer's hello is shorter than a resume. */
	if (chan_read_full(ch->fd, &ch->tls, first, 4, timeout_ms, "resume handshake"))
		return RP_IO;
	if (le32toh(first->magic) == LMIG_WIRE_MAGIC)
		return RP_HELLO;
	if (chan_read_full(ch->fd, &ch->tls, (uint8_t *)first + 4, sizeof(*first) - 4, timeout_ms,
			   "resume handshake"))
		return RP_IO;
	*channel = le16toh(first->channel);
	if (!sresume_ok(first, LMIG_SU_RESUME))
		return refuse(ch, *channel, RP_PROTOCOL, "malformed resume request", timeout_ms);
	if (CRYPTO_memcmp(first->session, ss->session, 16))
		return refuse(ch, *channel, RP_SESSION, "resume for another session", timeout_ms);
	if (resume_secret_new(rnd))
		return RP_IO;
	sresume_build(&m, LMIG_SU_CHALLENGE, 0, ss->session, *channel, 0);
	memcpy(m.nonce, rnd, LMIG_RESUME_NONCE_LEN);
	if (put(ch, &m, timeout_ms))
		return RP_IO;
	r = get(ch, &p, LMIG_SU_PROOF, timeout_ms);
	if (r == RP_PROTOCOL)
		return refuse(ch, *channel, r, "malformed resume proof", timeout_ms);
	if (r)
		return r;
	if (le16toh(p.channel) != *channel || memcmp(p.session, ss->session, 16))
		return refuse(ch, *channel, RP_PROTOCOL, "resume proof for another channel",
			      timeout_ms);
	resume_mac(ss->secret, true, ss->session, *channel, m.nonce, p.nonce, mac);
	if (!mac_ok(mac, p.mac))
		return refuse(ch, *channel, RP_MAC, "resume refused: wrong session secret",
			      timeout_ms);
	if (!wants(arg, *channel, &have))
		return refuse(ch, *channel, RP_CHANNEL, "resume refused: channel is not missing",
			      timeout_ms);
	sresume_build(&m, LMIG_SU_RESUMED, LMIG_ST_OK, ss->session, *channel, have);
	memcpy(m.nonce, rnd, LMIG_RESUME_NONCE_LEN);
	resume_mac(ss->secret, false, ss->session, *channel, rnd, p.nonce, m.mac);
	if (put(ch, &m, timeout_ms))
		return RP_IO;
	*peer_have = le64toh(p.have);
	return RP_OK;
}

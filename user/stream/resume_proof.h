/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The proof that a reconnected channel belongs to the session it names
 * (LMIG_CAP_RESUME, include/lmig/stream.h): the session secret, the
 * RESUME / CHALLENGE / PROOF / RESUMED messages, and both ends of that
 * exchange on a connected channel, through its TLS when it has a session
 * (blocking, as the first handshake is).
 * Without TLS the secret crosses the network in the clear once: the proof
 * then keeps out a fresh or wrong peer, not one that read the first
 * handshake.
 */
#ifndef LMIG_RESUME_PROOF_H
#define LMIG_RESUME_PROOF_H

#include <stdbool.h>
#include <stdint.h>

#include <lmig/stream.h>

struct chan;

struct resume_sess {
	uint8_t session[16];	/* lmig_hello.session */
	uint8_t secret[32];	/* lmig_ssecret.secret */
};

enum rproof {
	RP_OK = 0,
	RP_IO,			/* the connection failed or timed out: lmig_err() says */
	RP_PROTOCOL,		/* not a resume message, or a bad one */
	RP_HELLO,		/* destination: a hello (a new session's peer): refuse it as such */
	RP_SESSION,		/* destination: not this session */
	RP_MAC,			/* destination: the source does not know the secret */
	RP_CHANNEL,		/* destination: that channel is not missing */
	RP_REFUSED,		/* source: the destination said no (its reason in why) */
	RP_PEER_MAC,		/* source: the destination does not know the secret */
};

/* A fresh secret (getrandom): 0, or -1 with lmig_err(). */
int resume_secret_new(uint8_t secret[32]);
void ssecret_build(struct lmig_ssecret *m, const uint8_t secret[32]);
bool ssecret_ok(const struct lmig_ssecret *m);

/* mac_s (from_src) or mac_d of include/lmig/stream.h. */
void resume_mac(const uint8_t secret[32], bool from_src, const uint8_t session[16],
		uint16_t channel, const uint8_t nonce_d[16], const uint8_t nonce_s[16],
		uint8_t mac[LMIG_RESUME_MAC_LEN]);
void sresume_build(struct lmig_sresume *m, unsigned int type, unsigned int status,
		   const uint8_t session[16], uint16_t channel, uint64_t have);
/* Magic, type, reserved fields and checksum. */
bool sresume_ok(const struct lmig_sresume *m, unsigned int type);

/*
 * The source's end, on a new connection: names ss and channel, proves it,
 * says it took have bytes of the channel's return direction; *peer_have:
 * what the destination took of the channel.  why gets the destination's
 * reason on RP_REFUSED.
 */
enum rproof resume_client(struct chan *c, const struct resume_sess *ss, uint16_t channel,
			  uint64_t have, uint64_t *peer_have, int timeout_ms, char why[LMIG_REASON_LEN]);

/*
 * Whether the destination waits for channel, and what it took of it
 * (*have).  Called only once the source proved the secret.
 */
typedef bool (*resume_wants_fn)(void *arg, uint16_t channel, uint64_t *have);

/*
 * The destination's end on a new connection (its TLS session up when TLS
 * is on), from its first message.  A refusal is sent with its reason
 * before returning; the caller closes the connection.
 */
enum rproof resume_server(struct chan *c, const struct resume_sess *ss, resume_wants_fn wants,
			  void *arg, uint16_t *channel, uint64_t *peer_have, int timeout_ms);

#endif

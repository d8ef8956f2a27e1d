/* SPDX-License-Identifier: GPL-2.0-only */
/* Building and checking the structures of include/lmig/wire.h. */
#ifndef LMIG_USER_WIRE_H
#define LMIG_USER_WIRE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmig/wire.h>

struct hello_info {
	uint32_t caps;
	uint8_t session[16];
	unsigned int channel, nchannels;
	uint64_t image_size;
};

uint64_t wire_checksum(const void *p, size_t len, size_t csum_off);
void wire_hello_build(struct lmig_hello *h, const struct hello_info *in);
/* Checks magic, version, length and checksum; fills *out.  On failure sets
 * lmig_err() and *status to the lmig_status the receiver should answer. */
int wire_hello_parse(const struct lmig_hello *h, struct hello_info *out, uint32_t *status);
void wire_ack_build(struct lmig_hello_ack *a, uint32_t caps, uint32_t status, const char *reason);
int wire_ack_parse(const struct lmig_hello_ack *a, uint32_t *caps);
void wire_result_build(struct lmig_result *r, uint32_t status, uint64_t pages, const char *reason);
int wire_result_parse(const struct lmig_result *r, uint64_t *pages);
/*
 * LMIG_CAP_CONFIRM.  build_as: a result under another magic.  confirm_parse:
 * a valid CONFIRM for pages, else -1 with lmig_err().  final_parse: -1 with
 * lmig_err() if r is no valid FINAL; else 0 and *status, with lmig_err()
 * set to the receiver's reason when *status is not LMIG_ST_OK.
 */
void wire_result_build_as(struct lmig_result *r, uint32_t magic, uint32_t status, uint64_t pages,
			  const char *reason);
int wire_confirm_parse(const struct lmig_result *r, uint64_t pages);
int wire_final_parse(const struct lmig_result *r, uint32_t *status);
/* "Round n applied" (LMIG_ROUND_ACK_MAGIC); parse returns 1 for any other message. */
void wire_round_ack_build(struct lmig_result *r, uint64_t round);
int wire_round_ack_parse(const struct lmig_result *r, uint64_t *round);

/* Frame header checksum over header + descriptors (header csum field zeroed). */
uint64_t wire_frame_checksum(const struct lmig_frame *f, const struct lmig_page_desc *d,
			     unsigned int ndesc);
const char *wire_status_name(uint32_t st);

/*
 * A peer's text (an ack's or a result's reason), made safe for a terminal
 * and the JSON report: the bytes of src up to its NUL or srclen, at most
 * len - 1 of them, each one outside printable ASCII replaced by '?'.
 * Returns dst, always NUL-terminated.
 */
char *wire_printable(char *dst, size_t len, const char *src, size_t srclen);

/*
 * The reason a receiver gives its peer (Documentation/wire-format.md,
 * "Status codes and reason text").  The receiver's own message,
 * lmig_errmsg(), may name its files and directories, so it goes only to
 * a peer the TLS handshake authenticated (a receiver's TLS session exists
 * only with a client certificate its CA signed, or with the PSK).  Anyone
 * else gets fixed text: why, or the status's name; err adds the system's
 * error text (strerror: no names).  buf holds that text.
 */
const char *wire_peer_text(bool authenticated, uint32_t status, const char *why, int err,
			   char *buf, size_t len);

#endif

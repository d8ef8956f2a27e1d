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
/* "Round n applied" (LMIG_ROUND_ACK_MAGIC); parse returns 1 for any other message. */
void wire_round_ack_build(struct lmig_result *r, uint64_t round);
int wire_round_ack_parse(const struct lmig_result *r, uint64_t *round);

/* Frame header checksum over header + descriptors (header csum field zeroed). */
uint64_t wire_frame_checksum(const struct lmig_frame *f, const struct lmig_page_desc *d,
			     unsigned int ndesc);
const char *wire_status_name(uint32_t st);

#endif

// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>
#include <string.h>
#include "lib/xxh.h"

#include "lib/err.h"
#include "chan/wire.h"

_Static_assert(sizeof(struct lmig_hello) == 72, "hello layout");
_Static_assert(sizeof(struct lmig_hello_ack) == 120, "ack layout");
_Static_assert(sizeof(struct lmig_frame) == 32, "frame layout");
_Static_assert(sizeof(struct lmig_page_desc) == 24, "desc layout");
_Static_assert(sizeof(struct lmig_end) == 32, "end layout");
_Static_assert(sizeof(struct lmig_result) == 120, "result layout");

uint64_t wire_checksum(const void *p, size_t len, size_t csum_off)
{
	XXH3_state_t st;
	static const uint64_t zero;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, p, csum_off);
	XXH3_64bits_update(&st, &zero, sizeof(zero));
	XXH3_64bits_update(&st, (const char *)p + csum_off + 8, len - csum_off - 8);
	return XXH3_64bits_digest(&st);
}

#define CSUM(p, type) wire_checksum(p, sizeof(type), offsetof(type, checksum))

void wire_hello_build(struct lmig_hello *h, const struct hello_info *in)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(LMIG_WIRE_MAGIC);
	h->version = htole16(LMIG_WIRE_VERSION);
	h->length = htole16(sizeof(*h));
	h->caps = htole32(in->caps);
	memcpy(h->session, in->session, sizeof(h->session));
	h->channel = htole16(in->channel);
	h->nchannels = htole16(in->nchannels);
	h->page_shift = htole32(LMIG_PAGE_SHIFT);
	h->image_size = htole64(in->image_size);
	h->checksum = htole64(CSUM(h, struct lmig_hello));
}

int wire_hello_parse(const struct lmig_hello *h, struct hello_info *out, uint32_t *status)
{
	*status = LMIG_ST_PROTOCOL;
	if (le32toh(h->magic) != LMIG_WIRE_MAGIC)
		return lmig_err("peer is not an lmig sender (bad magic 0x%08x)", le32toh(h->magic));
	if (le16toh(h->version) != LMIG_WIRE_VERSION) {
		*status = LMIG_ST_VERSION;
		return lmig_err("peer speaks protocol version %u, this lmig speaks %u",
				le16toh(h->version), LMIG_WIRE_VERSION);
	}
	if (le16toh(h->length) != sizeof(*h))
		return lmig_err("hello has length %u, expected %zu", le16toh(h->length), sizeof(*h));
	if (le64toh(h->checksum) != CSUM(h, struct lmig_hello)) {
		*status = LMIG_ST_CHECKSUM;
		return lmig_err("hello checksum mismatch (corrupted stream)");
	}
	if (h->flags || h->auth_len || h->reserved[0] || h->reserved[1] || h->reserved[2])
		return lmig_err("hello uses flags or authentication this lmig does not support");
	if (le32toh(h->page_shift) != LMIG_PAGE_SHIFT)
		return lmig_err("peer uses %u-byte pages, this lmig uses %u",
				1U << (le32toh(h->page_shift) & 31), LMIG_PAGE_SIZE);
	out->caps = le32toh(h->caps);
	memcpy(out->session, h->session, sizeof(out->session));
	out->channel = le16toh(h->channel);
	out->nchannels = le16toh(h->nchannels);
	out->image_size = le64toh(h->image_size);
	if (!out->nchannels || out->nchannels > LMIG_MAX_CHANNELS || out->channel >= out->nchannels)
		return lmig_err("hello names channel %u of %u (at most %u channels)",
				out->channel, out->nchannels, LMIG_MAX_CHANNELS);
	*status = LMIG_ST_OK;
	return 0;
}

void wire_ack_build(struct lmig_hello_ack *a, uint32_t caps, uint32_t status, const char *reason)
{
	memset(a, 0, sizeof(*a));
	a->magic = htole32(LMIG_WIRE_MAGIC);
	a->version = htole16(LMIG_WIRE_VERSION);
	a->length = htole16(sizeof(*a));
	a->caps = htole32(caps);
	a->status = htole32(status);
	if (reason)
		snprintf(a->reason, sizeof(a->reason), "%s", reason);
	a->checksum = htole64(CSUM(a, struct lmig_hello_ack));
}

int wire_ack_parse(const struct lmig_hello_ack *a, uint32_t *caps)
{
	if (le32toh(a->magic) != LMIG_WIRE_MAGIC)
		return lmig_err("peer is not an lmig receiver (bad magic 0x%08x)", le32toh(a->magic));
	if (le64toh(a->checksum) != CSUM(a, struct lmig_hello_ack))
		return lmig_err("handshake reply checksum mismatch (corrupted stream)");
	if (le32toh(a->status) != LMIG_ST_OK) {
		char why[LMIG_REASON_LEN];

		wire_printable(why, sizeof(why), a->reason, sizeof(a->reason));
		return lmig_err("receiver refused the migration: %s",
				why[0] ? why : wire_status_name(le32toh(a->status)));
	}
	if (le16toh(a->version) != LMIG_WIRE_VERSION)
		return lmig_err("receiver speaks protocol version %u, this lmig speaks %u",
				le16toh(a->version), LMIG_WIRE_VERSION);
	*caps = le32toh(a->caps);
	return 0;
}

void wire_result_build(struct lmig_result *r, uint32_t status, uint64_t pages, const char *reason)
{
	memset(r, 0, sizeof(*r));
	r->magic = htole32(LMIG_RESULT_MAGIC);
	r->status = htole32(status);
	r->pages = htole64(pages);
	if (reason)
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
	r->checksum = htole64(CSUM(r, struct lmig_result));
}

void wire_round_ack_build(struct lmig_result *r, uint64_t round)
{
	wire_result_build(r, LMIG_ST_OK, round, NULL);
	r->magic = htole32(LMIG_ROUND_ACK_MAGIC);
	r->checksum = 0;
	r->checksum = htole64(CSUM(r, struct lmig_result));
}

int wire_round_ack_parse(const struct lmig_result *r, uint64_t *round)
{
	if (le32toh(r->magic) != LMIG_ROUND_ACK_MAGIC)
		return 1;
	if (le64toh(r->checksum) != CSUM(r, struct lmig_result))
		return lmig_err("round acknowledgement checksum mismatch (corrupted stream)");
	*round = le64toh(r->pages);
	return 0;
}

/* The same structure under another magic: CONFIRM (sender) or FINAL (receiver). */
void wire_result_build_as(struct lmig_result *r, uint32_t magic, uint32_t status, uint64_t pages,
			  const char *reason)
{
	wire_result_build(r, status, pages, reason);
	r->magic = htole32(magic);
	r->checksum = 0;
	r->checksum = htole64(CSUM(r, struct lmig_result));
}

int wire_confirm_parse(const struct lmig_result *r, uint64_t pages)
{
	if (le32toh(r->magic) != LMIG_CONFIRM_MAGIC)
		return lmig_err("sender sent no confirmation (bad magic 0x%08x)", le32toh(r->magic));
	if (le64toh(r->checksum) != CSUM(r, struct lmig_result))
		return lmig_err("confirmation checksum mismatch (corrupted stream)");
	if (le32toh(r->status) != LMIG_ST_OK || le64toh(r->pages) != pages)
		return lmig_err("sender confirmed %llu pages with status %u, not the %llu verified",
				(unsigned long long)le64toh(r->pages), le32toh(r->status),
				(unsigned long long)pages);
	return 0;
}

int wire_final_parse(const struct lmig_result *r, uint32_t *status)
{
	if (le32toh(r->magic) != LMIG_FINAL_MAGIC)
		return lmig_err("receiver sent no final result (bad magic 0x%08x)", le32toh(r->magic));
	if (le64toh(r->checksum) != CSUM(r, struct lmig_result))
		return lmig_err("final result checksum mismatch (corrupted stream)");
	*status = le32toh(r->status);
	if (*status != LMIG_ST_OK) {
		char why[LMIG_REASON_LEN];

		wire_printable(why, sizeof(why), r->reason, sizeof(r->reason));
		lmig_err("receiver did not commit the image: %s",
			 why[0] ? why : wire_status_name(*status));
	}
	return 0;
}

int wire_result_parse(const struct lmig_result *r, uint64_t *pages)
{
	if (le32toh(r->magic) != LMIG_RESULT_MAGIC)
		return lmig_err("receiver sent no commit (bad magic 0x%08x)", le32toh(r->magic));
	if (le64toh(r->checksum) != CSUM(r, struct lmig_result))
		return lmig_err("commit reply checksum mismatch (corrupted stream)");
	if (le32toh(r->status) != LMIG_ST_OK) {
		char why[LMIG_REASON_LEN];

		wire_printable(why, sizeof(why), r->reason, sizeof(r->reason));
		return lmig_err("receiver rejected the image: %s",
				why[0] ? why : wire_status_name(le32toh(r->status)));
	}
	*pages = le64toh(r->pages);
	return 0;
}

uint64_t wire_frame_checksum(const struct lmig_frame *f, const struct lmig_page_desc *d,
			     unsigned int ndesc)
{
	struct lmig_frame h = *f;

	h.checksum = 0;
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, &h, sizeof(h));
	XXH3_64bits_update(&st, d, (size_t)ndesc * sizeof(*d));
	return XXH3_64bits_digest(&st);
}

const char *wire_status_name(uint32_t st)
{
	static const char *names[] = {
		[LMIG_ST_OK] = "ok",
		[LMIG_ST_VERSION] = "protocol version not supported",
		[LMIG_ST_PROTOCOL] = "protocol error",
		[LMIG_ST_SESSION] = "channel of another migration",
		[LMIG_ST_SIZE] = "image size refused",
		[LMIG_ST_IO] = "receiver could not store the image",
		[LMIG_ST_CHECKSUM] = "checksum mismatch",
		[LMIG_ST_DIGEST] = "image digest mismatch",
		[LMIG_ST_INCOMPLETE] = "pages missing or duplicated",
	};

	return st < sizeof(names) / sizeof(names[0]) && names[st] ? names[st] : "unknown status";
}

char *wire_printable(char *dst, size_t len, const char *src, size_t srclen)
{
	size_t i;

	/* Bytes, not characters: UTF-8 and C1 controls alike become '?'. */
	for (i = 0; i + 1 < len && i < srclen && src[i]; i++)
		dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f ? src[i] : '?';
	if (len)
		dst[i] = 0;
	return dst;
}

const char *wire_peer_text(bool authenticated, uint32_t status, const char *why, int err,
			   char *buf, size_t len)
{
	if (authenticated)
		return lmig_errmsg();
	if (!why)
		why = wire_status_name(status);
	if (err)
		snprintf(buf, len, "%s: %s", why, strerror(err));
	else
		snprintf(buf, len, "%s", why);
	return buf;
}

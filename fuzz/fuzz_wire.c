// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fixed-size messages of the handshake and the replies (user/chan/wire.c,
 * and the stream transport's frame and reply checks in stream_common.c).
 *
 * Input: one selector byte, then the message.  Bit 7 of the selector
 * leaves the checksum as it came; otherwise it is computed here with the
 * project's own wire_checksum(), so the parsers' checks after the
 * checksum are reached.  Every message that parses is built again from
 * what was parsed and must come out identical: a parser that accepts
 * more (or other) than the builder writes is a finding.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "stream/stream.h"
#include "chan/wire.h"

#define CSUM_FIX(p, type) \
	((p)->checksum = htole64(wire_checksum(p, sizeof(type), offsetof(type, checksum))))

static void hello(const uint8_t *d, size_t n, bool fix)
{
	struct lmig_hello h = { 0 }, again;
	struct hello_info hi;
	uint32_t status = 0xdead;

	memcpy(&h, d, n < sizeof(h) ? n : sizeof(h));
	if (fix)
		CSUM_FIX(&h, struct lmig_hello);
	if (wire_hello_parse(&h, &hi, &status)) {
		if (status == LMIG_ST_OK || !lmig_has_err())
			abort();	/* a refusal names its status and its reason */
		return;
	}
	if (status != LMIG_ST_OK || hi.nchannels == 0 || hi.nchannels > LMIG_MAX_CHANNELS ||
	    hi.channel >= hi.nchannels)
		abort();
	wire_hello_build(&again, &hi);
	if (memcmp(&again, &h, sizeof(h)))
		abort();
}

static void ack(const uint8_t *d, size_t n, bool fix)
{
	struct lmig_hello_ack a = { 0 };
	uint32_t caps;

	memcpy(&a, d, n < sizeof(a) ? n : sizeof(a));
	if (fix)
		CSUM_FIX(&a, struct lmig_hello_ack);
	if (wire_ack_parse(&a, &caps)) {
		/* The refusal is quoted to the operator: it must stay one bounded line. */
		const char *m = lmig_errmsg();

		if (!lmig_has_err() || strlen(m) >= 512 || strchr(m, '\n'))
			abort();
		return;
	}
	if (caps != le32toh(a.caps) || le32toh(a.status) != LMIG_ST_OK)
		abort();
}

static void result(const uint8_t *d, size_t n, bool fix)
{
	struct lmig_result r = { 0 };
	uint64_t v;
	int rc;

	memcpy(&r, d, n < sizeof(r) ? n : sizeof(r));
	if (fix)
		CSUM_FIX(&r, struct lmig_result);
	rc = wire_round_ack_parse(&r, &v);
	if (rc == 0) {
		if (le64toh(r.pages) != v)
			abort();
	} else if (rc == 1) {
		if (wire_result_parse(&r, &v) == 0 &&
		    (le32toh(r.status) != LMIG_ST_OK || v != le64toh(r.pages)))
			abort();
		if (lmig_has_err() && strchr(lmig_errmsg(), '\n'))
			abort();
	}
	(void)wire_status_name(le32toh(r.status));
}

static void sframe(const uint8_t *d, size_t n, bool fix)
{
	struct lmig_sframe f = { 0 };

	memcpy(&f, d, n < sizeof(f) ? n : sizeof(f));
	if (fix)
		CSUM_FIX(&f, struct lmig_sframe);
	if (fix && !sframe_csum_ok(&f))
		abort();
}

static void sreply(const uint8_t *d, size_t n, bool fix)
{
	struct lmig_sreply r = { 0 }, again;

	memcpy(&r, d, n < sizeof(r) ? n : sizeof(r));
	if (fix)
		CSUM_FIX(&r, struct lmig_sreply);
	if (!sreply_csum_ok(&r)) {
		if (fix)
			abort();
		return;
	}
	/* What the destination builds is what the source accepts. */
	sreply_build(&again, le16toh(r.type), le16toh(r.status), le32toh(r.stream),
		     le64toh(r.bytes), r.reason[0] ? "x" : NULL);
	if (!sreply_csum_ok(&again))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	bool fix;

	if (!n)
		return 0;
	lmig_err_clear();
	fix = !(d[0] & 0x80);
	switch (d[0] & 7) {
	case 0: hello(d + 1, n - 1, fix); break;
	case 1: ack(d + 1, n - 1, fix); break;
	case 2: result(d + 1, n - 1, fix); break;
	case 3: sframe(d + 1, n - 1, fix); break;
	case 4: sreply(d + 1, n - 1, fix); break;
	default: return -1;	/* not added to the corpus */
	}
	return 0;
}

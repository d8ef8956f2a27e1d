// SPDX-License-Identifier: GPL-2.0-only
/*
 * A resume after a broken channel (LMIG_CAP_RESUME): the destination's
 * end of the same-session proof (user/stream/resume_proof.c) fed what a
 * stranger sends, and the resume buffer and the receiver's take decision
 * (resume_buf.c, resume_policy.c) driven by arbitrary operations.
 *
 * Input: one selector byte.  Selector % 3:
 *   0  the bytes are what a peer sends on a new connection (a RESUME,
 *      then a PROOF...), through a socketpair to resume_server(); bit 7
 *      clear: each whole message's checksum is made right here, so the
 *      checks past it are reached.  No input knows the secret, so the
 *      proof must never pass.
 *   1  operations on a small resume buffer (put, ack, replay) checked
 *      against a model: it never holds more than its size, and what it
 *      replays is the bytes put at those offsets.
 *   2  resume_take() on two offsets and a length: the verdict and the
 *      bytes it keeps must describe exactly the new part of the block.
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "chan/channel.h"
#include "lib/xxh.h"
#include "stream/resume_buf.h"
#include "stream/resume_policy.h"
#include "stream/resume_proof.h"

static bool wants(void *arg, uint16_t channel, uint64_t *have)
{
	*have = 0;
	return true;
}

static void proof(const uint8_t *d, size_t n, bool fix)
{
	static const struct resume_sess ss = { .session = { 1, 2, 3 }, .secret = { 9, 8, 7 } };
	struct lmig_sresume first = { 0 }, m;
	uint64_t have;
	uint16_t ch;
	int sv[2];

	memcpy(&first, d, n < sizeof(first) ? n : sizeof(first));
	if (fix) {
		first.checksum = 0;
		first.checksum = htole64(XXH3_64bits(&first, sizeof(first)));
	}
	d += n < sizeof(first) ? n : sizeof(first);
	n -= n < sizeof(first) ? n : sizeof(first);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	if (write(sv[1], &first, sizeof(first)) != sizeof(first))
		abort();
	while (n) {		/* what follows, message by message */
		size_t k = n < sizeof(m) ? n : sizeof(m);

		memset(&m, 0, sizeof(m));
		memcpy(&m, d, k);
		if (fix && k == sizeof(m)) {
			m.checksum = 0;
			m.checksum = htole64(XXH3_64bits(&m, sizeof(m)));
		}
		if (write(sv[1], &m, k) != (ssize_t)k)
			break;
		d += k;
		n -= k;
	}
	shutdown(sv[1], SHUT_WR);
	if (resume_server(&(struct chan){ .fd = sv[0] }, &ss, wants, NULL, &ch, &have, 1000) == RP_OK)
		abort();	/* in without the secret */
	close(sv[0]);
	close(sv[1]);
}

static uint8_t pat(uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 8));
}

static void buffer(const uint8_t *d, size_t n)
{
	struct resume_buf b;
	uint8_t x[300];

	if (rbuf_init(&b, 257) != RBUF_OK)
		abort();
	for (; n >= 2; d += 2, n -= 2) {
		unsigned int v = (d[1] | (d[0] & 0x3f) << 8) % 300;
		uint64_t before = b.base, end = b.end, room = rbuf_room(&b);
		struct iovec iov[2];
		enum rbuf_result r;
		int k;

		switch (d[0] >> 6) {
		case 0:
		case 1:
			for (unsigned int i = 0; i < v; i++)
				x[i] = pat(end + i);
			r = rbuf_put(&b, x, v);
			if ((r == RBUF_OK) != (v <= room) || b.end != end + (r == RBUF_OK ? v : 0))
				abort();
			break;
		case 2:
			r = rbuf_ack(&b, before + v);
			if ((r == RBUF_OK) != (before + v <= end) ||
			    b.base != (r == RBUF_OK ? before + v : before))
				abort();
			break;
		default:
			r = rbuf_replay(&b, before + v, iov, &k);
			if ((r == RBUF_OK) != (before + v <= end))
				abort();
			for (int j = 0, o = 0; r == RBUF_OK && j < k; o += iov[j].iov_len, j++)
				for (size_t i = 0; i < iov[j].iov_len; i++)
					if (((uint8_t *)iov[j].iov_base)[i] != pat(before + v + o + i))
						abort();
		}
		if (b.end - b.base > 257 || b.base < before)
			abort();
	}
	rbuf_free(&b);
}

static void take(const uint8_t *d, size_t n)
{
	uint64_t have = 0, off = 0;
	uint32_t len = 0, skip;

	memcpy(&have, d, n < 8 ? n : 8);
	if (n > 8)
		memcpy(&off, d + 8, n - 8 < 8 ? n - 8 : 8);
	if (n > 16)
		memcpy(&len, d + 16, n - 16 < 4 ? n - 16 : 4);
	have >>= 2;
	off >>= 2;
	switch (resume_take(have, off, len, &skip)) {
	case RT_NEW:
		if (off != have || skip)
			abort();
		break;
	case RT_DUP:
		if (off + len > have || skip)
			abort();
		break;
	case RT_PART:
		if (off >= have || off + len <= have || off + skip != have || skip >= len)
			abort();
		break;
	case RT_GAP:
		if (off <= have)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	switch (data[0] % 3) {
	case 0:
		proof(data + 1, size - 1, !(data[0] & 0x80));
		break;
	case 1:
		buffer(data + 1, size - 1);
		break;
	default:
		take(data + 1, size - 1);
	}
	return 0;
}

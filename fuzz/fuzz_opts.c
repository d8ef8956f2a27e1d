// SPDX-License-Identifier: GPL-2.0-only
/*
 * The command-line value parsers (user/lib/parse.c) and the endpoint parser of
 * `lmig pipe`/`proxy` (stream_common.c's sendpoint_parse()).
 *
 * Input: one selector byte, then the string (cut at the first NUL).
 * Besides surviving the sanitizers, each parser's answer is checked for
 * what its callers rely on: a failure says why in one line, a success
 * writes only within the buffers it was given, NUL-terminated, and the
 * numbers respect the stated ranges.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/parse.h"
#include "stream/stream.h"

static void check_err(int rc)
{
	if (rc && (!lmig_has_err() || strchr(lmig_errmsg(), '\n')))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char *s, host[64], port[8], buf[32];
	uint64_t v, start, size;
	unsigned long u, lo, hi;
	struct sendpoint ep;
	int rc;

	if (!n)
		return 0;
	lmig_err_clear();
	/* An exact-size copy: reading one byte too far is caught by ASan. */
	s = malloc(n);
	memcpy(s, d + 1, n - 1);
	s[n - 1] = 0;
	switch (d[0] % 6) {
	case 0:
		rc = parse_bytes("--size", s, &v);
		check_err(rc);
		break;
	case 1:
		lo = d[0] >> 4;
		hi = lo + 100000;
		rc = parse_uint("--channels", s, lo, hi, &u);
		check_err(rc);
		if (!rc && (u < lo || u > hi))
			abort();
		break;
	case 2:
		rc = parse_anon_range("--mem", s, &start, &size);
		check_err(rc);
		if (!rc && (start % 4096 || size % 4096 || !size || start + size < start))
			abort();
		break;
	case 3:
		memset(host, 0x55, sizeof(host));
		memset(port, 0x55, sizeof(port));
		rc = parse_hostport("--to", s, host, sizeof(host), port, sizeof(port));
		check_err(rc);
		if (!rc && (!memchr(host, 0, sizeof(host)) || !memchr(port, 0, sizeof(port)) ||
			    !port[0] || atol(port) > 65535))
			abort();
		break;
	case 4:
		rc = sendpoint_parse("--to", s, &ep);
		check_err(rc);
		if (!rc && (ep.addr < s || ep.addr > s + n - 1))
			abort();
		break;
	case 5:
		if (n >= 1 + sizeof(double)) {
			double b;

			memcpy(&b, d + 1, sizeof(b));
			fmt_bytes(buf, sizeof(buf), b);
			if (!memchr(buf, 0, sizeof(buf)))
				abort();
		}
		break;
	}
	free(s);
	return 0;
}

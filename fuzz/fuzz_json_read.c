// SPDX-License-Identifier: GPL-2.0-only
/*
 * The bounded JSON reader (user/lib/json_read.c) that reads what QEMU's
 * QMP monitor sends (host/qmp.c).
 *
 * Input: a JSON text (the seeds are QEMU 7.2's own QMP messages), in an
 * exact-size heap copy, so a read one byte past it is caught by ASan.
 * It is parsed twice: into an allocated array under QMP's limits, and
 * into a small caller array of 8 nodes.  Besides surviving the
 * sanitizers, what the callers rely on is checked:
 *   - a refusal has an error and an offset within the text; the small
 *     array refuses only what the large one refused, or for its size;
 *   - every node's span lies within the text, and parsed alone is
 *     accepted, with the same type and the same number of elements;
 *   - lookups find each key's own value; iteration visits count nodes;
 *   - a string that decodes is NUL-terminated within its buffer, holds
 *     no NUL, and is valid UTF-8; jr_str_eq agrees with it;
 *   - integers are in range (a u64 read agrees with an i64 read), and a
 *     double read is finite.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_read.h"

static const struct jr_limits lim = {
	.max_len = 1 << 18,
	.max_nodes = 1 << 16,
	.max_depth = 32,
};

/* Valid UTF-8 at its strictest, as the reader promises to hand out. */
static int utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (!k || c > 0xf4 || i + k >= n)
			return 0;
		cp = c & (0x3f >> k);
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

static void check_string(const struct jr_doc *d, int i)
{
	char small[8], *big;
	size_t n;

	jr_span(d, i, &n);
	big = malloc(n);	/* the value is never longer than its text */
	if (jr_str(d, i, big, n) == 0) {
		size_t l = strlen(big);

		if (l >= n || !utf8_ok((const unsigned char *)big, l) ||
		    (l < 255 && !jr_str_eq(d, i, big)))
			abort();
		/* A small buffer: the same string, or a refusal. */
		if (jr_str(d, i, small, sizeof(small)) == 0 && strcmp(small, big))
			abort();
		if (l >= sizeof(small) && jr_str(d, i, small, sizeof(small)) == 0)
			abort();
	}
	free(big);
}

static void check_number(const struct jr_doc *d, int i)
{
	int64_t s;
	uint64_t u;
	double v;

	if (jr_i64(d, i, &s) == 0 && s >= 0 && (jr_u64(d, i, &u) || u != (uint64_t)s))
		abort();
	if (jr_u64(d, i, &u) == 0 && u <= INT64_MAX && (jr_i64(d, i, &s) || (uint64_t)s != u))
		abort();
	if (jr_dbl(d, i, &v) == 0 && !isfinite(v))
		abort();
}

/* Node i parsed alone: the same kind of value. */
static void check_alone(const struct jr_doc *d, int i)
{
	struct jr_doc one;
	const char *s;
	size_t n;

	s = jr_span(d, i, &n);
	if (!s || s < d->text || s + n > d->text + d->len || !n)
		abort();
	if (jr_parse(&one, s, n, &lim, NULL))
		abort();
	if (jr_type(&one, 0) != jr_type(d, i) || jr_count(&one, 0) != jr_count(d, i))
		abort();
	jr_free(&one);
}

static void check_container(const struct jr_doc *d, int i)
{
	unsigned int seen = 0;
	bool obj = jr_type(d, i) == JR_OBJECT;
	char key[64];

	for (int c = jr_first(d, i); c >= 0; c = jr_next(d, c)) {
		if (c <= i || (unsigned int)c >= d->n || ++seen > jr_count(d, i))
			abort();
		if (!obj)
			continue;
		if (jr_type(d, c) != JR_STRING || jr_type(d, c + 1) < 0)
			abort();
		/* The first member of that name: this one, or one before it. */
		if (jr_str(d, c, key, sizeof(key)) == 0) {
			int v = jr_get(d, i, key);

			if (v < 0 || v > c + 1 || !jr_str_eq(d, v - 1, key))
				abort();
		}
	}
	if (seen != jr_count(d, i))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct jr_node few[8];
	struct jr_doc d, s;
	char *text;
	int rc, rs;

	text = malloc(n ? n : 1);
	memcpy(text, data, n);
	rc = jr_parse(&d, text, n, &lim, NULL);
	rs = jr_parse(&s, text, n, &(struct jr_limits){ .max_len = lim.max_len, .max_nodes = 8,
							.max_depth = lim.max_depth }, few);
	if (rc && (d.err == JR_OK || d.err_off > n || d.nodes))
		abort();
	/* The small array refuses what the large one did, or for its size. */
	if (rs && !(rc && s.err == d.err && s.err_off == d.err_off) && s.err != JR_E_NODES)
		abort();
	if (!rs && (rc || s.n != d.n || s.n > 8))
		abort();
	if (!rc) {
		if (d.n == 0 || d.n > n)
			abort();
		for (unsigned int i = 0; i < d.n; i++) {
			check_alone(&d, i);
			switch (jr_type(&d, i)) {
			case JR_STRING:
				check_string(&d, i);
				break;
			case JR_NUMBER:
				check_number(&d, i);
				break;
			case JR_ARRAY:
			case JR_OBJECT:
				check_container(&d, i);
				break;
			}
		}
		jr_free(&d);
	}
	free(text);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of user/lib/json_read.c, the bounded JSON reader, on exact
 * inputs:
 *
 *   scalars            each kind of value alone, with white space around
 *   qmp_reply          a real query-migrate reply: nested lookups, the
 *                      types of its numbers, the span of "return"
 *   arrays             iteration, counts, empty containers, nesting
 *   keys               lookup by key: escaped keys, a key repeated (the
 *                      first wins), absent keys, lookups on non-objects
 *   escapes            every escape, \u of 1, 2, 3 bytes and surrogate
 *                      pairs to UTF-8; raw UTF-8 kept; \u0000 not a C string
 *   long_escaped       a long string with an escape compared whole
 *   str_room           a string exactly filling the buffer, one byte over
 *   int_edges          int64 and uint64 at and past their ends; a
 *                      fraction or exponent is not an integer
 *   doubles            fractions, exponents, out of double's range
 *   bad_strings        unterminated, control bytes, NUL inside, bad and
 *                      lone surrogates, invalid UTF-8
 *   bad_numbers        the JSON number grammar's edges
 *   bad_structure      unterminated containers, missing commas and
 *                      colons, trailing bytes, bad literals, empty text
 *   limits             depth, node count and length at and past the limit;
 *                      a caller's node array
 *   error_offsets      where each refusal is reported
 */
#include <stdint.h>
#include <string.h>

#include "kselftest_harness.h"

#include "lib/json_read.h"

static int parse(struct jr_doc *d, const char *s)
{
	return jr_parse(d, s, strlen(s), &jr_limits_default, NULL);
}

/* The error a text is refused with (JR_OK if it is accepted). */
static enum jr_err refusal(const char *s)
{
	struct jr_doc d;

	if (parse(&d, s) == 0) {
		jr_free(&d);
		return JR_OK;
	}
	return d.err;
}

static enum jr_err refusal_n(const char *s, size_t n)
{
	struct jr_doc d;

	if (jr_parse(&d, s, n, &jr_limits_default, NULL) == 0) {
		jr_free(&d);
		return JR_OK;
	}
	return d.err;
}

TEST(scalars)
{
	struct jr_doc d;
	char s[16];
	bool b;
	int64_t i;
	size_t n;

	ASSERT_EQ(0, parse(&d, " \t\r\n null \n"));
	EXPECT_EQ(JR_NULL, jr_type(&d, 0));
	EXPECT_TRUE(jr_is_null(&d, 0));
	EXPECT_EQ(0, strncmp("null", jr_span(&d, 0, &n), 4));
	EXPECT_EQ(4, n);
	jr_free(&d);
	ASSERT_EQ(0, parse(&d, "true"));
	ASSERT_EQ(0, jr_bool(&d, 0, &b));
	EXPECT_TRUE(b);
	EXPECT_EQ(-1, jr_i64(&d, 0, &i));
	jr_free(&d);
	ASSERT_EQ(0, parse(&d, "false"));
	ASSERT_EQ(0, jr_bool(&d, 0, &b));
	EXPECT_FALSE(b);
	EXPECT_FALSE(jr_is_null(&d, 0));
	jr_free(&d);
	ASSERT_EQ(0, parse(&d, "\"tcg\""));
	ASSERT_EQ(0, jr_str(&d, 0, s, sizeof(s)));
	EXPECT_STREQ("tcg", s);
	EXPECT_EQ(-1, jr_bool(&d, 0, &b));
	jr_free(&d);
	ASSERT_EQ(0, parse(&d, "-17"));
	ASSERT_EQ(0, jr_i64(&d, 0, &i));
	EXPECT_EQ(-17, i);
	EXPECT_EQ(-1, jr_str(&d, 0, s, sizeof(s)));
	EXPECT_EQ(1, d.n);
	jr_free(&d);
}

static const char migrate_reply[] =
	"{\"return\": {\"expected-downtime\": 300, \"status\": \"active\", \"setup-time\": 4, "
	"\"total-time\": 1207, \"ram\": {\"total\": 537403392, \"postcopy-requests\": 0, "
	"\"dirty-sync-count\": 3, \"multifd-bytes\": 0, \"pages-per-second\": 32710, "
	"\"downtime-bytes\": 0, \"page-size\": 4096, \"remaining\": 123456, "
	"\"postcopy-bytes\": 0, \"mbps\": 268.56, \"transferred\": 40171548, "
	"\"dirty-sync-missed-zero-copy\": 0, \"precopy-bytes\": 40171548, "
	"\"duplicate\": 31230, \"dirty-pages-rate\": 1024, \"skipped\": 0, "
	"\"normal-bytes\": 39915520, \"normal\": 9745}}, \"id\": 4}\r\n";

TEST(qmp_reply)
{
	struct jr_doc d;
	int ret, ram;
	uint64_t u;
	int64_t i;
	double mbps;
	char st[16];
	const char *sp;
	size_t n;

	ASSERT_EQ(0, parse(&d, migrate_reply));
	ASSERT_EQ(JR_OBJECT, jr_type(&d, 0));
	EXPECT_EQ(2, jr_count(&d, 0));
	ret = jr_get(&d, 0, "return");
	ASSERT_EQ(JR_OBJECT, jr_type(&d, ret));
	ASSERT_EQ(0, jr_str(&d, jr_get(&d, ret, "status"), st, sizeof(st)));
	EXPECT_STREQ("active", st);
	ram = jr_get(&d, ret, "ram");
	EXPECT_EQ(18, jr_count(&d, ram));
	ASSERT_EQ(0, jr_u64(&d, jr_get(&d, ram, "remaining"), &u));
	EXPECT_EQ(123456, u);
	ASSERT_EQ(0, jr_u64(&d, jr_get(&d, ram, "dirty-pages-rate"), &u));
	EXPECT_EQ(1024, u);
	ASSERT_EQ(0, jr_u64(&d, jr_get(&d, ram, "page-size"), &u));
	EXPECT_EQ(4096, u);
	/* mbps is a fraction: a double, never an integer. */
	EXPECT_EQ(-1, jr_u64(&d, jr_get(&d, ram, "mbps"), &u));
	ASSERT_EQ(0, jr_dbl(&d, jr_get(&d, ram, "mbps"), &mbps));
	EXPECT_EQ(268.56, mbps);
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, ret, "expected-downtime"), &i));
	EXPECT_EQ(300, i);
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, 0, "id"), &i));
	EXPECT_EQ(4, i);
	/* A key of another level is not found at this one. */
	EXPECT_EQ(-1, jr_get(&d, 0, "ram"));
	EXPECT_EQ(-1, jr_get(&d, ret, "normal"));
	/* The span of "return" is its text exactly, braces included. */
	sp = jr_span(&d, ret, &n);
	ASSERT_NE(NULL, sp);
	EXPECT_EQ(strstr(migrate_reply, "{\"expected"), sp);
	EXPECT_EQ(strstr(migrate_reply, ", \"id\"") - sp, n);
	EXPECT_EQ('}', sp[n - 1]);
	jr_free(&d);
}

TEST(arrays)
{
	static const char doc[] =
		"[{\"cpu-index\": 0, \"thread-id\": 101}, {\"cpu-index\": 1, \"thread-id\": 102},"
		" [], {}, [[1], [2, [3]]], \"x\"]";
	struct jr_doc d;
	int e, k, want[] = { JR_OBJECT, JR_OBJECT, JR_ARRAY, JR_OBJECT, JR_ARRAY, JR_STRING };
	unsigned int i = 0;
	int64_t v;

	ASSERT_EQ(0, parse(&d, doc));
	EXPECT_EQ(6, jr_count(&d, 0));
	for (e = jr_first(&d, 0); e >= 0; e = jr_next(&d, e), i++) {
		ASSERT_LT(i, 6);
		EXPECT_EQ(want[i], jr_type(&d, e));
		if (i < 2) {
			ASSERT_EQ(0, jr_i64(&d, jr_get(&d, e, "cpu-index"), &v));
			EXPECT_EQ(i, v);
			ASSERT_EQ(0, jr_i64(&d, jr_get(&d, e, "thread-id"), &v));
			EXPECT_EQ(101 + i, v);
		}
		if (i == 2 || i == 3) {
			EXPECT_EQ(0, jr_count(&d, e));
			EXPECT_EQ(-1, jr_first(&d, e));
		}
		if (i == 4) {
			/* [[1], [2, [3]]]: the second element's second element's first is 3. */
			k = jr_next(&d, jr_first(&d, e));
			k = jr_first(&d, jr_next(&d, jr_first(&d, k)));
			ASSERT_EQ(0, jr_i64(&d, k, &v));
			EXPECT_EQ(3, v);
			EXPECT_EQ(-1, jr_next(&d, k));
		}
	}
	EXPECT_EQ(6, i);
	/* Object iteration: keys, each value right after its key. */
	k = jr_first(&d, jr_first(&d, 0));
	EXPECT_TRUE(jr_str_eq(&d, k, "cpu-index"));
	k = jr_next(&d, k);
	EXPECT_TRUE(jr_str_eq(&d, k, "thread-id"));
	ASSERT_EQ(0, jr_i64(&d, k + 1, &v));
	EXPECT_EQ(101, v);
	EXPECT_EQ(-1, jr_next(&d, k));
	/* Scalars have no elements; -1 is no node anywhere. */
	EXPECT_EQ(-1, jr_first(&d, jr_next(&d, jr_first(&d, jr_first(&d, 0))) + 1));
	EXPECT_EQ(-1, jr_type(&d, -1));
	EXPECT_EQ(-1, jr_type(&d, 100000));
	EXPECT_EQ(-1, jr_next(&d, -1));
	EXPECT_EQ(0, jr_count(&d, -1));
	jr_free(&d);
}

TEST(keys)
{
	struct jr_doc d;
	int64_t v;

	ASSERT_EQ(0, parse(&d, "{\"a\": 1, \"a\": 2, \"\\u0062\": 3, \"c\\\"d\": 4, \"\": 5, \"ab\": 6}"));
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, 0, "a"), &v));
	EXPECT_EQ(1, v);
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, 0, "b"), &v));
	EXPECT_EQ(3, v);
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, 0, "c\"d"), &v));
	EXPECT_EQ(4, v);
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, 0, ""), &v));
	EXPECT_EQ(5, v);
	ASSERT_EQ(0, jr_i64(&d, jr_get(&d, 0, "ab"), &v));
	EXPECT_EQ(6, v);
	EXPECT_EQ(-1, jr_get(&d, 0, "abc"));
	/* Escaped keys compare by value, also against a prefix or a longer s. */
	EXPECT_TRUE(jr_str_eq(&d, jr_first(&d, 0) + 4, "b"));
	EXPECT_FALSE(jr_str_eq(&d, jr_first(&d, 0) + 4, "bb"));
	EXPECT_FALSE(jr_str_eq(&d, jr_first(&d, 0) + 4, ""));
	EXPECT_FALSE(jr_str_eq(&d, jr_first(&d, 0) + 6, "c"));
	EXPECT_EQ(-1, jr_get(&d, 0, "c"));
	EXPECT_EQ(-1, jr_get(&d, 0, "A"));
	/* Lookups on a number, on nothing. */
	EXPECT_EQ(-1, jr_get(&d, jr_get(&d, 0, "a"), "a"));
	EXPECT_EQ(-1, jr_get(&d, -1, "a"));
	EXPECT_EQ(-1, jr_i64(&d, jr_get(&d, jr_get(&d, 0, "x"), "y"), &v));
	jr_free(&d);
}

/* The string value of a one-string document, or NULL. */
static const char *str_of(const char *doc, char *buf, size_t len)
{
	struct jr_doc d;
	int rc;

	if (parse(&d, doc))
		return NULL;
	rc = jr_str(&d, 0, buf, len);
	jr_free(&d);
	return rc ? NULL : buf;
}

TEST(escapes)
{
	char b[64];

	EXPECT_STREQ("\" \\ / \b \f \n \r \t", str_of("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", b, 64));
	EXPECT_STREQ("A", str_of("\"\\u0041\"", b, 64));
	EXPECT_STREQ("\x7f", str_of("\"\\u007F\"", b, 64));
	EXPECT_STREQ("\xc3\xa9", str_of("\"\\u00e9\"", b, 64));		/* é, 2 bytes */
	EXPECT_STREQ("\xdf\xbf", str_of("\"\\u07ff\"", b, 64));
	EXPECT_STREQ("\xe0\xa0\x80", str_of("\"\\u0800\"", b, 64));
	EXPECT_STREQ("\xe2\x82\xac", str_of("\"\\u20AC\"", b, 64));	/* €, 3 bytes */
	EXPECT_STREQ("\xef\xbf\xbf", str_of("\"\\uffff\"", b, 64));
	EXPECT_STREQ("\xf0\x9f\x98\x80", str_of("\"\\ud83d\\ude00\"", b, 64));	/* U+1F600 */
	EXPECT_STREQ("\xf0\x90\x80\x80", str_of("\"\\uD800\\uDC00\"", b, 64));	/* U+10000 */
	EXPECT_STREQ("\xf4\x8f\xbf\xbf", str_of("\"\\udbff\\udfff\"", b, 64));	/* U+10FFFF */
	/* Raw UTF-8 passes as it is, mixed with escapes. */
	EXPECT_STREQ("\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80-A",
		     str_of("\"\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80-\\u0041\"", b, 64));
	EXPECT_STREQ("", str_of("\"\"", b, 64));
	/* Valid JSON, but U+0000 cannot be a C string. */
	EXPECT_EQ(JR_OK, refusal("\"a\\u0000b\""));
	EXPECT_EQ(NULL, str_of("\"a\\u0000b\"", b, 64));
}

TEST(long_escaped)
{
	char doc[320], want[320];
	struct jr_doc d;

	/* "xxx...x\u0041": 300 x and an escape, compared whole. */
	memset(doc, 'x', sizeof(doc));
	doc[0] = '"';
	memcpy(doc + 301, "\\u0041\"", 7);
	memset(want, 'x', 300);
	strcpy(want + 300, "A");
	ASSERT_EQ(0, jr_parse(&d, doc, 308, &jr_limits_default, NULL));
	EXPECT_TRUE(jr_str_eq(&d, 0, want));
	want[299] = 'y';
	EXPECT_FALSE(jr_str_eq(&d, 0, want));
	want[299] = 'x';
	want[300] = 0;
	EXPECT_FALSE(jr_str_eq(&d, 0, want));
	jr_free(&d);
}

TEST(str_room)
{
	char b[8];

	EXPECT_STREQ("1234567", str_of("\"1234567\"", b, 8));
	EXPECT_EQ(NULL, str_of("\"12345678\"", b, 8));
	/* Escaped: "\u20ac" is 3 bytes of the 7 there are room for. */
	EXPECT_STREQ("1234\xe2\x82\xac", str_of("\"1234\\u20ac\"", b, 8));
	EXPECT_EQ(NULL, str_of("\"12345\\u20ac\"", b, 8));
	EXPECT_EQ(NULL, str_of("\"x\"", b, 0));
	EXPECT_STREQ("", str_of("\"\"", b, 1));
}

/* The integer of a one-number document: 0 and *v, or -1. */
static int i64_of(const char *doc, int64_t *v)
{
	struct jr_doc d;
	int rc;

	if (parse(&d, doc))
		return -2;
	rc = jr_i64(&d, 0, v);
	jr_free(&d);
	return rc;
}

static int u64_of(const char *doc, uint64_t *v)
{
	struct jr_doc d;
	int rc;

	if (parse(&d, doc))
		return -2;
	rc = jr_u64(&d, 0, v);
	jr_free(&d);
	return rc;
}

TEST(int_edges)
{
	int64_t i;
	uint64_t u;

	ASSERT_EQ(0, i64_of("9223372036854775807", &i));
	EXPECT_EQ(INT64_MAX, i);
	EXPECT_EQ(-1, i64_of("9223372036854775808", &i));
	ASSERT_EQ(0, i64_of("-9223372036854775808", &i));
	EXPECT_EQ(INT64_MIN, i);
	EXPECT_EQ(-1, i64_of("-9223372036854775809", &i));
	ASSERT_EQ(0, i64_of("-0", &i));
	EXPECT_EQ(0, i);
	ASSERT_EQ(0, i64_of("0", &i));
	EXPECT_EQ(0, i);
	ASSERT_EQ(0, u64_of("18446744073709551615", &u));
	EXPECT_EQ(UINT64_MAX, u);
	EXPECT_EQ(-1, u64_of("18446744073709551616", &u));
	EXPECT_EQ(-1, u64_of("99999999999999999999", &u));
	EXPECT_EQ(-1, u64_of("184467440737095516150", &u));
	ASSERT_EQ(0, u64_of("9223372036854775808", &u));
	EXPECT_EQ(9223372036854775808ULL, u);
	EXPECT_EQ(-1, u64_of("-1", &u));
	ASSERT_EQ(0, u64_of("-0", &u));
	EXPECT_EQ(0, u);
	/* Integers only: a fraction or an exponent is refused, even when whole. */
	EXPECT_EQ(-1, i64_of("1.0", &i));
	EXPECT_EQ(-1, i64_of("1e3", &i));
	EXPECT_EQ(-1, u64_of("2E0", &u));
	i = 77;
	EXPECT_EQ(-1, i64_of("\"5\"", &i));
	EXPECT_EQ(77, i);	/* untouched on failure */
}

static int dbl_of(const char *doc, double *v)
{
	struct jr_doc d;
	int rc;

	if (parse(&d, doc))
		return -2;
	rc = jr_dbl(&d, 0, v);
	jr_free(&d);
	return rc;
}

TEST(doubles)
{
	double v;

	ASSERT_EQ(0, dbl_of("0.5", &v));
	EXPECT_EQ(0.5, v);
	ASSERT_EQ(0, dbl_of("-2.5e3", &v));
	EXPECT_EQ(-2500.0, v);
	ASSERT_EQ(0, dbl_of("1E-2", &v));
	EXPECT_EQ(0.01, v);
	ASSERT_EQ(0, dbl_of("12", &v));
	EXPECT_EQ(12.0, v);
	ASSERT_EQ(0, dbl_of("1e+2", &v));
	EXPECT_EQ(100.0, v);
	ASSERT_EQ(0, dbl_of("1.7976931348623157e308", &v));
	EXPECT_EQ(1.7976931348623157e308, v);
	/* Past double's range: infinite, refused. */
	EXPECT_EQ(-1, dbl_of("1e309", &v));
	EXPECT_EQ(-1, dbl_of("-1e400", &v));
	EXPECT_EQ(-1, dbl_of("true", &v));
}

TEST(bad_strings)
{
	static const char nul_in[] = "\"ab\0cd\"";

	EXPECT_EQ(JR_E_END, refusal("\"abc"));
	EXPECT_EQ(JR_E_END, refusal("\"abc\\"));
	EXPECT_EQ(JR_E_END, refusal("\"\\u12"));
	EXPECT_EQ(JR_E_END, refusal("{\"a"));
	EXPECT_EQ(JR_E_STRING, refusal("\"a\nb\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"a\tb\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\x1f\""));
	EXPECT_EQ(JR_E_STRING, refusal_n(nul_in, sizeof(nul_in) - 1));
	EXPECT_EQ(JR_E_SYNTAX, refusal_n("\0", 1));
	EXPECT_EQ(JR_E_TRAILING, refusal_n("{}\0", 3));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\x\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\U0041\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\u12g4\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\'\""));
	/* Lone surrogates, either half; a high half followed by anything else. */
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800x\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800\\n\""));
	EXPECT_EQ(JR_E_END, refusal("\"\\ud800\\"));
	EXPECT_EQ(JR_E_END, refusal("\"\\ud800\\udc"));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800abcdefg\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\udc00\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\udfff\\ud800\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800\\ud800\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800\\u0041\""));
	EXPECT_EQ(JR_E_ESCAPE, refusal("\"\\ud800\\n\\udc00\""));
	/* Invalid UTF-8: a lone continuation, overlong forms, a UTF-8 surrogate,
	 * past U+10FFFF, a sequence cut short, bytes never valid. */
	EXPECT_EQ(JR_E_STRING, refusal("\"\x80\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xc0\xaf\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xc1\xbf\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xe0\x80\xaf\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xf0\x80\x80\xaf\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xed\xa0\x80\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xf4\x90\x80\x80\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xf5\x80\x80\x80\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xe2\x82\""));
	EXPECT_EQ(JR_E_END, refusal("\"\xe2\x82"));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xff\""));
	EXPECT_EQ(JR_E_STRING, refusal("\"\xfe\""));
	/* Their valid neighbours pass. */
	EXPECT_EQ(JR_OK, refusal("\"\xc2\x80\""));
	EXPECT_EQ(JR_OK, refusal("\"\xed\x9f\xbf\""));
	EXPECT_EQ(JR_OK, refusal("\"\xf4\x8f\xbf\xbf\""));
	EXPECT_EQ(JR_OK, refusal("\"\x7f\""));
}

TEST(bad_numbers)
{
	EXPECT_EQ(JR_E_NUMBER, refusal("01"));
	EXPECT_EQ(JR_E_NUMBER, refusal("-01"));
	EXPECT_EQ(JR_E_NUMBER, refusal("-a"));
	EXPECT_EQ(JR_E_END, refusal("-"));
	EXPECT_EQ(JR_E_NUMBER, refusal("1.e3"));
	EXPECT_EQ(JR_E_END, refusal("1."));
	EXPECT_EQ(JR_E_END, refusal("1e"));
	EXPECT_EQ(JR_E_END, refusal("1e+"));
	EXPECT_EQ(JR_E_NUMBER, refusal("[1e+]"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("+1"));
	EXPECT_EQ(JR_E_SYNTAX, refusal(".5"));
	EXPECT_EQ(JR_E_TRAILING, refusal("0x10"));
	EXPECT_EQ(JR_E_TRAILING, refusal("1.5.2"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("NaN"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("Infinity"));
	EXPECT_EQ(JR_E_NUMBER, refusal("-Infinity"));
	EXPECT_EQ(JR_OK, refusal("0"));
	EXPECT_EQ(JR_OK, refusal("-0.0e-0"));
	EXPECT_EQ(JR_OK, refusal("[0,-0,1E9]"));
}

TEST(bad_structure)
{
	EXPECT_EQ(JR_E_EMPTY, refusal(""));
	EXPECT_EQ(JR_E_EMPTY, refusal(" \r\n\t"));
	EXPECT_EQ(JR_E_END, refusal("{"));
	EXPECT_EQ(JR_E_END, refusal("["));
	EXPECT_EQ(JR_E_END, refusal("[1,"));
	EXPECT_EQ(JR_E_END, refusal("{\"a\""));
	EXPECT_EQ(JR_E_END, refusal("{\"a\":"));
	EXPECT_EQ(JR_E_END, refusal("{\"a\":1"));
	EXPECT_EQ(JR_E_END, refusal("tru"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("{\"a\" 1}"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("{\"a\":1 \"b\":2}"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("{a:1}"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("{\"a\":1,}"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("[1,]"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("[,1]"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("[1 2]"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("[1}"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("{\"a\":1]"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("trUe"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("nul"  "x"));
	EXPECT_EQ(JR_E_SYNTAX, refusal("'a'"));
	EXPECT_EQ(JR_E_TRAILING, refusal("{\"a\":1}\v"));
	EXPECT_EQ(JR_E_TRAILING, refusal("{}{}"));
	EXPECT_EQ(JR_E_TRAILING, refusal("{\"return\": {}} x"));
	EXPECT_EQ(JR_E_TRAILING, refusal("truex"));
	EXPECT_EQ(JR_E_TRAILING, refusal("[]]"));
	EXPECT_EQ(JR_E_TRAILING, refusal("1 2"));
	EXPECT_EQ(JR_OK, refusal(" {\"a\" : [ 1 , { } ] } \r\n"));
}

static char *nested(char *buf, unsigned int depth)
{
	for (unsigned int i = 0; i < depth; i++) {
		buf[i] = '[';
		buf[2 * depth - 1 - i] = ']';
	}
	buf[2 * depth] = 0;
	return buf;
}

TEST(limits)
{
	struct jr_limits lim = { .max_len = 64, .max_nodes = 4, .max_depth = 3 };
	struct jr_node nodes[4];
	struct jr_doc d;
	char buf[2 * 600 + 1];
	int64_t v;

	/* Depth: 3 nested containers pass, 4 do not. */
	EXPECT_EQ(0, jr_parse(&d, "[[[]]]", 6, &lim, nodes));
	EXPECT_EQ(3, d.n);
	EXPECT_FALSE(d.owned);
	jr_free(&d);
	EXPECT_EQ(-1, jr_parse(&d, "[[[[]]]]", 8, &lim, nodes));
	EXPECT_EQ(JR_E_DEPTH, d.err);
	lim.max_nodes = 7;
	EXPECT_EQ(-1, jr_parse(&d, "{\"a\":{\"b\":{\"c\":{}}}}", 20, &lim, NULL));
	EXPECT_EQ(JR_E_DEPTH, d.err);
	EXPECT_EQ(15, d.err_off);
	lim.max_nodes = 4;
	/* Nodes: 4 values pass (the keys count), 5 do not, in the caller's array. */
	EXPECT_EQ(0, jr_parse(&d, "[1,2,3]", 7, &lim, nodes));
	ASSERT_EQ(0, jr_i64(&d, jr_next(&d, jr_next(&d, jr_first(&d, 0))), &v));
	EXPECT_EQ(3, v);
	EXPECT_EQ(-1, jr_parse(&d, "[1,2,3,4]", 9, &lim, nodes));
	EXPECT_EQ(JR_E_NODES, d.err);
	EXPECT_EQ(0, jr_parse(&d, "{\"a\":1}", 7, &lim, nodes));
	EXPECT_EQ(-1, jr_parse(&d, "{\"a\":1,\"b\":2}", 13, &lim, nodes));
	EXPECT_EQ(JR_E_NODES, d.err);
	/* Length: 64 bytes pass, 65 do not, before a byte is read. */
	memset(buf, ' ', 64);
	buf[0] = '0';
	EXPECT_EQ(0, jr_parse(&d, buf, 64, &lim, nodes));
	EXPECT_EQ(-1, jr_parse(&d, buf, 65, &lim, nodes));
	EXPECT_EQ(JR_E_LONG, d.err);
	/* The defaults: 64 deep, and a depth asked above JR_DEPTH_MAX is cut to it. */
	EXPECT_EQ(JR_OK, refusal(nested(buf, 64)));
	EXPECT_EQ(JR_E_DEPTH, refusal(nested(buf, 65)));
	lim = (struct jr_limits){ .max_len = sizeof(buf), .max_nodes = 1000, .max_depth = 100000 };
	EXPECT_EQ(0, jr_parse(&d, nested(buf, JR_DEPTH_MAX), 2 * JR_DEPTH_MAX, &lim, NULL));
	EXPECT_TRUE(d.owned);
	EXPECT_EQ(JR_DEPTH_MAX, d.n);
	jr_free(&d);
	EXPECT_EQ(-1, jr_parse(&d, nested(buf, JR_DEPTH_MAX + 1), 2 * JR_DEPTH_MAX + 2, &lim, NULL));
	EXPECT_EQ(JR_E_DEPTH, d.err);
	/* Allocated: no more nodes than bytes, whatever max_nodes says. */
	lim.max_nodes = 1u << 30;
	ASSERT_EQ(0, jr_parse(&d, "[1,2]", 5, &lim, NULL));
	EXPECT_EQ(5, d.cap);
	EXPECT_EQ(3, d.n);
	jr_free(&d);
	EXPECT_EQ(NULL, d.nodes);
}

TEST(error_offsets)
{
	struct jr_doc d;

	ASSERT_EQ(-1, parse(&d, "{\"a\": [1, 2, x]}"));
	EXPECT_EQ(JR_E_SYNTAX, d.err);
	EXPECT_EQ(13, d.err_off);
	ASSERT_EQ(-1, parse(&d, "{\"a\": 1}  ,"));
	EXPECT_EQ(JR_E_TRAILING, d.err);
	EXPECT_EQ(10, d.err_off);
	ASSERT_EQ(-1, parse(&d, "\"ab\\q\""));
	EXPECT_EQ(JR_E_ESCAPE, d.err);
	EXPECT_EQ(4, d.err_off);
	EXPECT_STREQ("invalid escape or lone surrogate", jr_strerror(JR_E_ESCAPE));
	EXPECT_STREQ("unknown error", jr_strerror((enum jr_err)99));
}

TEST_HARNESS_MAIN

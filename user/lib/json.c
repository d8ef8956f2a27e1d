// SPDX-License-Identifier: GPL-2.0-only
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

static void put(struct json_obj *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct json_obj *j, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(j->buf + j->len, j->cap - j->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < j->cap - j->len) {
			j->len += n;
			return;
		}
		j->cap = j->cap * 2 + n + 64;
		j->buf = realloc(j->buf, j->cap);
		if (!j->buf)
			abort();
	}
}

static void put_string(struct json_obj *j, const char *s)
{
	put(j, "\"");
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			put(j, "\\%c", c);
		else if (c < 0x20)
			put(j, "\\u%04x", c);
		else
			put(j, "%c", c);
	}
	put(j, "\"");
}

static void key(struct json_obj *j, const char *k)
{
	if (!j->first)
		put(j, ",");
	j->first = false;
	put_string(j, k);
	put(j, ":");
}

void json_begin(struct json_obj *j)
{
	j->buf = NULL;
	j->len = 0;
	j->cap = 0;
	j->first = true;
	put(j, "{");
}

void json_str(struct json_obj *j, const char *k, const char *val)
{
	key(j, k);
	if (val)
		put_string(j, val);
	else
		put(j, "null");
}

void json_u64(struct json_obj *j, const char *k, uint64_t val)
{
	key(j, k);
	put(j, "%" PRIu64, val);
}

void json_i64(struct json_obj *j, const char *k, int64_t val)
{
	key(j, k);
	put(j, "%" PRId64, val);
}

void json_dbl(struct json_obj *j, const char *k, double val, int decimals)
{
	key(j, k);
	if (isfinite(val))
		put(j, "%.*f", decimals, val);
	else
		put(j, "null");
}

void json_bool(struct json_obj *j, const char *k, bool val)
{
	key(j, k);
	put(j, "%s", val ? "true" : "false");
}

void json_array_begin(struct json_obj *j, const char *k)
{
	key(j, k);
	put(j, "[");
	j->first = true;
}

void json_elem_begin(struct json_obj *j)
{
	if (!j->first)
		put(j, ",");
	put(j, "{");
	j->first = true;
}

void json_elem_end(struct json_obj *j)
{
	put(j, "}");
	j->first = false;
}

void json_array_end(struct json_obj *j)
{
	put(j, "]");
	j->first = false;
}

void json_obj_begin(struct json_obj *j, const char *k)
{
	key(j, k);
	put(j, "{");
	j->first = true;
}

void json_obj_end(struct json_obj *j)
{
	put(j, "}");
	j->first = false;
}

void json_int_array(struct json_obj *j, const char *k, const int *v, unsigned int n)
{
	key(j, k);
	put(j, "[");
	for (unsigned int i = 0; i < n; i++)
		put(j, i ? ",%d" : "%d", v[i]);
	put(j, "]");
}

void json_end(struct json_obj *j, FILE *f)
{
	put(j, "}");
	fprintf(f, "%s\n", j->buf);
	fflush(f);
	free(j->buf);
	j->buf = NULL;
}

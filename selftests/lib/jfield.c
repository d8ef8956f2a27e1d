// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jfield.h"

bool json_one_object(const char *s)
{
	size_t n = strlen(s);

	return n >= 3 && s[0] == '{' && s[n - 2] == '}' && s[n - 1] == '\n' &&
	       strchr(s, '\n') == s + n - 1;
}

/* The value after "key": (and any blanks) in a flat object, or NULL. */
static const char *value(const char *json, const char *key)
{
	char pat[128];
	const char *p;

	if ((size_t)snprintf(pat, sizeof(pat), "\"%s\":", key) >= sizeof(pat))
		return NULL;
	p = strstr(json, pat);
	if (!p)
		return NULL;
	for (p += strlen(pat); *p == ' ' || *p == '\t'; p++)
		;
	return p;
}

int json_u64_field(const char *json, const char *key, uint64_t *out)
{
	const char *v = value(json, key);
	char *end;

	if (!v || !isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || (*end != ',' && *end != '}'))
		return -1;
	return 0;
}

int json_str_field(const char *json, const char *key, char *buf, size_t len)
{
	const char *v = value(json, key);
	size_t n = 0;

	if (!v || *v++ != '"')
		return -1;
	for (; *v && *v != '"'; v++) {
		if (*v == '\\' && v[1])
			v++;
		if (n + 1 < len)
			buf[n++] = *v;
	}
	if (*v != '"')
		return -1;
	buf[n] = 0;
	return 0;
}

double json_dbl(const char *json, const char *key)
{
	char pat[64];
	const char *s;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	s = strstr(json, pat);
	return s ? atof(s + strlen(pat)) : -1;
}

int json_bool(const char *json, const char *key)
{
	char pat[64];
	const char *s;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	s = strstr(json, pat);
	if (!s)
		return -1;
	s += strlen(pat);
	return !strncmp(s, "true", 4) ? 1 : !strncmp(s, "false", 5) ? 0 : -1;
}

int64_t json_num(const char *json, const char *key)
{
	uint64_t v;

	return json_u64_field(json, key, &v) ? -1 : (int64_t)v;
}

const char *json_str_or(const char *json, const char *key, char *buf, size_t len)
{
	if (json_str_field(json, key, buf, len))
		snprintf(buf, len, "(no %s)", key);
	return buf;
}

const char *json_last_line(const char *out, char *buf, size_t len)
{
	const char *last = NULL, *end;

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (*l == '{')
			last = l;
	if (!last)
		return NULL;
	end = strchr(last, '\n');
	snprintf(buf, len, "%.*s", (int)(end ? end - last : (ptrdiff_t)strlen(last)), last);
	return buf;
}

const char *json_line_of(const char *out, const char *key, const char *name,
			 char *buf, size_t len)
{
	char want[128];
	const char *l;

	snprintf(want, sizeof(want), "{\"%s\":\"%s\"", key, name);
	l = strstr(out, want);
	if (!l)
		return NULL;
	snprintf(buf, len, "%.*s", (int)strcspn(l, "\n"), l);
	return buf;
}

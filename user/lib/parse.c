// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/err.h"
#include "lib/parse.h"

int parse_bytes(const char *what, const char *s, uint64_t *out)
{
	static const struct { const char *sfx; double mul; } sfx[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1e3 }, { "m", 1e6 }, { "g", 1e9 }, { "t", 1e12 },
		{ "kb", 1e3 }, { "mb", 1e6 }, { "gb", 1e9 }, { "tb", 1e12 },
		{ "ki", 1024.0 }, { "mi", 1048576.0 }, { "gi", 1073741824.0 },
		{ "ti", 1099511627776.0 },
		{ "kib", 1024.0 }, { "mib", 1048576.0 }, { "gib", 1073741824.0 },
		{ "tib", 1099511627776.0 },
		{ "bit", 1 / 8.0 }, { "kbit", 1e3 / 8 }, { "mbit", 1e6 / 8 },
		{ "gbit", 1e9 / 8 }, { "tbit", 1e12 / 8 },
	};
	char *end;
	double v;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return lmig_err("%s: '%s' is not a number", what, s ? s : "");
	/* Plain decimal only: strtod would also take hex and exponents. */
	char num[64];
	size_t nl = strspn(s, "0123456789.");

	if (nl >= sizeof(num))
		return lmig_err("%s: '%s' is out of range", what, s);
	memcpy(num, s, nl);
	num[nl] = 0;
	errno = 0;
	v = strtod(num, &end);
	if (errno || *end || !isfinite(v) || v < 0)
		return lmig_err("%s: '%s' is not a number", what, s);
	end = (char *)s + nl;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (strcasecmp(end, sfx[i].sfx))
			continue;
		v *= sfx[i].mul;
		if (v >= 18446744073709551615.0)
			return lmig_err("%s: '%s' is out of range", what, s);
		*out = (uint64_t)llround(v);
		return 0;
	}
	return lmig_err("%s: '%s' has an unknown suffix '%s' (use K, M, G, T, Ki, Mi, Gi, Ti or bit forms)",
			what, s, end);
}

int parse_uint(const char *what, const char *s, unsigned long min, unsigned long max,
	       unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)*s))
		return lmig_err("%s: '%s' is not a number", what, s ? s : "");
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return lmig_err("%s: '%s' is not a number", what, s);
	if (v < min || v > max)
		return lmig_err("%s: %lu is out of range (%lu..%lu)", what, v, min, max);
	*out = v;
	return 0;
}

int parse_anon_range(const char *what, const char *s, uint64_t *start, uint64_t *size)
{
	unsigned long long a, b;
	int n = 0;

	if (!s || strncmp(s, "anon:", 5) ||
	    sscanf(s + 5, "%llx-%llx%n", &a, &b, &n) != 2 || s[5 + n])
		return lmig_err("%s: '%s' is not anon:START-END (hex addresses, as in /proc/PID/maps)",
				what, s ? s : "");
	if (a % 4096 || b % 4096 || b <= a)
		return lmig_err("%s: %s is not a page-aligned range with END above START", what, s);
	*start = a;
	*size = b - a;
	return 0;
}

int parse_hostport(const char *what, const char *s, char *host, size_t hostlen,
		   char *port, size_t portlen)
{
	const char *colon, *h = s;
	size_t hl;

	if (!s || !*s)
		return lmig_err("%s: empty address (want HOST:PORT)", what);
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return lmig_err("%s: '%s' is not [ADDR]:PORT", what, s);
		h = s + 1;
		hl = rb - h;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return lmig_err("%s: '%s' has no port (want HOST:PORT)", what, s);
		if (memchr(s, ':', colon - s))
			return lmig_err("%s: '%s': put IPv6 addresses in brackets, [ADDR]:PORT",
					what, s);
		hl = colon - s;
	}
	if (hl >= hostlen)
		return lmig_err("%s: host name too long", what);
	memcpy(host, h, hl);
	host[hl] = 0;
	colon++;
	if (!*colon || strlen(colon) >= portlen || strspn(colon, "0123456789") != strlen(colon) ||
	    atol(colon) > 65535)
		return lmig_err("%s: '%s' is not a valid port", what, colon);
	strcpy(port, colon);
	return 0;
}

const char *fmt_bytes(char *buf, size_t len, double b)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", b, unit[u]);
	return buf;
}

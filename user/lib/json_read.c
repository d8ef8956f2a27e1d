// SPDX-License-Identifier: GPL-2.0-only
/*
 * The bounded JSON reader (lib/json_read.h).  A recursive descent over
 * the text; its depth is the caller's limit (at most JR_DEPTH_MAX), so
 * the stack it takes is bounded too.  Strings are checked when parsed,
 * and decoded only when asked for, with the same decoder.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_read.h"

const struct jr_limits jr_limits_default = {
	.max_len = 1 << 20,
	.max_nodes = 65536,
	.max_depth = 64,
};

/* jr_node.flags */
#define F_ESCAPED	1	/* a string with a backslash in it */
#define F_INT		2	/* a number without fraction or exponent */
#define F_NEG		4	/* a number with a minus sign */

struct parser {
	struct jr_doc *d;
	const unsigned char *s;
	size_t len, pos;
	unsigned int max_depth;
};

static int fail(struct parser *p, enum jr_err e)
{
	p->d->err = e;
	p->d->err_off = p->pos;
	return -1;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int new_node(struct parser *p, enum jr_type type)
{
	struct jr_doc *d = p->d;
	struct jr_node *n;

	if (d->n >= d->cap)
		return fail(p, JR_E_NODES);
	n = &d->nodes[d->n];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->start = p->pos;
	return d->n++;
}

static int hex4(const unsigned char *s, size_t len, size_t pos, uint32_t *v)
{
	*v = 0;
	if (len - pos < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned char c = s[pos + i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*v |= c - 'A' + 10;
		else
			return -1;
	}
	return 0;
}

/* One escape, s[*pos] being the byte after the backslash. */
static enum jr_err escape_cp(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	uint32_t lo;

	if (*pos >= len)
		return JR_E_END;
	if (s[*pos] != 'u') {
		e = s[*pos] ? strchr(from, s[*pos]) : NULL;
		if (!e)
			return JR_E_ESCAPE;
		*cp = (unsigned char)to[e - from];
		(*pos)++;
		return JR_OK;
	}
	if (hex4(s, len, *pos + 1, cp))
		return len - *pos < 5 ? JR_E_END : JR_E_ESCAPE;
	*pos += 5;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return JR_E_ESCAPE;		/* a low surrogate first */
	if (*cp < 0xd800 || *cp > 0xdbff)
		return JR_OK;
	/* A high surrogate: its low half must follow, as an escape. */
	if (len - *pos < 6) {
		/* The text ends before a whole low half; if what is there
		 * could not start one, the pair is bad whatever follows. */
		if (*pos < len && s[*pos] != '\\')
			return JR_E_ESCAPE;
		if (*pos + 1 < len && s[*pos + 1] != 'u')
			return JR_E_ESCAPE;
		return JR_E_END;
	}
	if (s[*pos] != '\\' || s[*pos + 1] != 'u' || hex4(s, len, *pos + 2, &lo) ||
	    lo < 0xdc00 || lo > 0xdfff)
		return JR_E_ESCAPE;
	*pos += 6;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return JR_OK;
}

/*
 * The code point at s[*pos] inside a string (not its closing quote),
 * *pos moved past it.  Raw bytes must be UTF-8 at its strictest: no
 * overlong forms, no surrogates, nothing above U+10FFFF.
 */
static enum jr_err next_cp(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp)
{
	unsigned char c = s[*pos], lo = 0x80, hi = 0xbf;
	int more;

	if (c < 0x20)
		return JR_E_STRING;
	if (c == '\\') {
		(*pos)++;
		return escape_cp(s, len, pos, cp);
	}
	if (c < 0x80) {
		*cp = c;
		(*pos)++;
		return JR_OK;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		more = 1;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		more = 2;
		*cp = c & 0x0f;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		more = 3;
		*cp = c & 0x07;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return JR_E_STRING;
	}
	for (int i = 1; i <= more; i++) {
		if (*pos + i >= len)
			return JR_E_END;
		c = s[*pos + i];
		if (c < lo || c > hi)
			return JR_E_STRING;
		lo = 0x80;
		hi = 0xbf;
		*cp = *cp << 6 | (c & 0x3f);
	}
	*pos += more + 1;
	return JR_OK;
}

static int parse_string(struct parser *p)
{
	int idx = new_node(p, JR_STRING);
	enum jr_err e;
	uint32_t cp;

	if (idx < 0)
		return -1;
	p->pos++;
	for (;;) {
		if (p->pos >= p->len)
			return fail(p, JR_E_END);
		if (p->s[p->pos] == '"')
			break;
		if (p->s[p->pos] == '\\')
			p->d->nodes[idx].flags |= F_ESCAPED;
		e = next_cp(p->s, p->len, &p->pos, &cp);
		if (e)
			return fail(p, e);
	}
	p->pos++;
	/* Keys are parsed here directly, not through parse_value(). */
	p->d->nodes[idx].len = p->pos - p->d->nodes[idx].start;
	return idx;
}

static bool digit_at(struct parser *p)
{
	return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *p)
{
	int idx = new_node(p, JR_NUMBER);
	struct jr_node *n;

	if (idx < 0)
		return -1;
	n = &p->d->nodes[idx];
	n->flags = F_INT;
	if (p->s[p->pos] == '-') {
		n->flags |= F_NEG;
		p->pos++;
	}
	if (!digit_at(p))
		return fail(p, p->pos >= p->len ? JR_E_END : JR_E_NUMBER);
	if (p->s[p->pos++] == '0' && digit_at(p))
		return fail(p, JR_E_NUMBER);		/* a leading zero */
	while (digit_at(p))
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		n->flags &= ~F_INT;
		p->pos++;
		if (!digit_at(p))
			return fail(p, p->pos >= p->len ? JR_E_END : JR_E_NUMBER);
		while (digit_at(p))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		n->flags &= ~F_INT;
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!digit_at(p))
			return fail(p, p->pos >= p->len ? JR_E_END : JR_E_NUMBER);
		while (digit_at(p))
			p->pos++;
	}
	return idx;
}

static int parse_literal(struct parser *p, const char *word, enum jr_type type)
{
	size_t wl = strlen(word);
	int idx;

	for (size_t i = 0; i < wl; i++) {
		if (p->pos + i >= p->len)
			return fail(p, JR_E_END);
		if (p->s[p->pos + i] != (unsigned char)word[i]) {
			p->pos += i;
			return fail(p, JR_E_SYNTAX);
		}
	}
	idx = new_node(p, type);
	if (idx >= 0)
		p->pos += wl;
	return idx;
}

static int parse_value(struct parser *p, unsigned int depth);

/* An array or an object, p->pos at its opening bracket. */
static int parse_container(struct parser *p, unsigned int depth)
{
	bool obj = p->s[p->pos] == '{';
	char close = obj ? '}' : ']';
	int idx, prev = -1, child;

	if (depth >= p->max_depth)
		return fail(p, JR_E_DEPTH);
	idx = new_node(p, obj ? JR_OBJECT : JR_ARRAY);
	if (idx < 0)
		return -1;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return idx;
	}
	for (;;) {
		skip_ws(p);
		if (obj) {
			if (p->pos >= p->len)
				return fail(p, JR_E_END);
			if (p->s[p->pos] != '"')
				return fail(p, JR_E_SYNTAX);
			child = parse_string(p);
			if (child < 0)
				return -1;
			skip_ws(p);
			if (p->pos >= p->len)
				return fail(p, JR_E_END);
			if (p->s[p->pos] != ':')
				return fail(p, JR_E_SYNTAX);
			p->pos++;
			if (parse_value(p, depth + 1) < 0)
				return -1;
		} else {
			child = parse_value(p, depth + 1);
			if (child < 0)
				return -1;
		}
		if (prev >= 0)
			p->d->nodes[prev].next = child;
		prev = child;
		p->d->nodes[idx].count++;
		skip_ws(p);
		if (p->pos >= p->len)
			return fail(p, JR_E_END);
		if (p->s[p->pos] == close)
			break;
		if (p->s[p->pos] != ',')
			return fail(p, JR_E_SYNTAX);
		p->pos++;
	}
	p->pos++;
	return idx;
}

static int parse_value(struct parser *p, unsigned int depth)
{
	int idx;

	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, JR_E_END);
	switch (p->s[p->pos]) {
	case '{':
	case '[':
		idx = parse_container(p, depth);
		break;
	case '"':
		idx = parse_string(p);
		break;
	case 't':
		idx = parse_literal(p, "true", JR_TRUE);
		break;
	case 'f':
		idx = parse_literal(p, "false", JR_FALSE);
		break;
	case 'n':
		idx = parse_literal(p, "null", JR_NULL);
		break;
	case '-':
	case '0' ... '9':
		idx = parse_number(p);
		break;
	default:
		return fail(p, JR_E_SYNTAX);
	}
	if (idx >= 0)
		p->d->nodes[idx].len = p->pos - p->d->nodes[idx].start;
	return idx;
}

int jr_parse(struct jr_doc *d, const char *text, size_t len, const struct jr_limits *lim,
	     struct jr_node *nodes)
{
	struct parser p = { .d = d, .s = (const unsigned char *)text, .len = len };
	size_t cap = lim->max_nodes;

	memset(d, 0, sizeof(*d));
	d->text = text;
	d->len = len;
	p.max_depth = lim->max_depth < JR_DEPTH_MAX ? lim->max_depth : JR_DEPTH_MAX;
	if (len > lim->max_len || len > JR_LEN_MAX) {
		p.pos = lim->max_len < JR_LEN_MAX ? lim->max_len : JR_LEN_MAX;
		return fail(&p, JR_E_LONG);
	}
	skip_ws(&p);
	if (p.pos >= len)
		return fail(&p, JR_E_EMPTY);
	if (!nodes) {
		/* Every value takes at least a byte of the text. */
		if (cap > len)
			cap = len;
		nodes = cap ? malloc(cap * sizeof(*nodes)) : NULL;
		if (cap && !nodes)
			return fail(&p, JR_E_NOMEM);
		d->owned = true;
	}
	d->nodes = nodes;
	d->cap = cap;
	if (parse_value(&p, 0) < 0)
		goto err;
	skip_ws(&p);
	if (p.pos < len) {
		fail(&p, JR_E_TRAILING);
		goto err;
	}
	return 0;
err:
	if (d->owned)
		free(d->nodes);
	d->nodes = NULL;
	d->n = d->cap = 0;
	d->owned = false;
	return -1;
}

void jr_free(struct jr_doc *d)
{
	if (d->owned)
		free(d->nodes);
	d->nodes = NULL;
	d->n = d->cap = 0;
	d->owned = false;
}

const char *jr_strerror(enum jr_err err)
{
	static const char *const msg[] = {
		[JR_OK] = "no error",
		[JR_E_EMPTY] = "empty",
		[JR_E_SYNTAX] = "unexpected byte",
		[JR_E_END] = "ends inside a value",
		[JR_E_STRING] = "control byte or invalid UTF-8 in a string",
		[JR_E_ESCAPE] = "invalid escape or lone surrogate",
		[JR_E_NUMBER] = "invalid number",
		[JR_E_DEPTH] = "nested too deep",
		[JR_E_NODES] = "too many values",
		[JR_E_LONG] = "too long",
		[JR_E_TRAILING] = "bytes after the value",
		[JR_E_NOMEM] = "out of memory",
	};

	if ((unsigned int)err >= sizeof(msg) / sizeof(msg[0]) || !msg[err])
		return "unknown error";
	return msg[err];
}

static const struct jr_node *node_at(const struct jr_doc *d, int node)
{
	return node >= 0 && (unsigned int)node < d->n ? &d->nodes[node] : NULL;
}

int jr_type(const struct jr_doc *d, int node)
{
	const struct jr_node *n = node_at(d, node);

	return n ? n->type : -1;
}

int jr_first(const struct jr_doc *d, int node)
{
	const struct jr_node *n = node_at(d, node);

	if (!n || (n->type != JR_ARRAY && n->type != JR_OBJECT) || !n->count)
		return -1;
	return node + 1;
}

int jr_next(const struct jr_doc *d, int node)
{
	const struct jr_node *n = node_at(d, node);

	return n && n->next ? (int)n->next : -1;
}

unsigned int jr_count(const struct jr_doc *d, int node)
{
	const struct jr_node *n = node_at(d, node);

	return n && (n->type == JR_ARRAY || n->type == JR_OBJECT) ? n->count : 0;
}

const char *jr_span(const struct jr_doc *d, int node, size_t *len)
{
	const struct jr_node *n = node_at(d, node);

	if (!n) {
		*len = 0;
		return NULL;
	}
	*len = n->len;
	return d->text + n->start;
}

static size_t put_utf8(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = 0xc0 | cp >> 6;
		o[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = 0xe0 | cp >> 12;
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	o[0] = 0xf0 | cp >> 18;
	o[1] = 0x80 | ((cp >> 12) & 0x3f);
	o[2] = 0x80 | ((cp >> 6) & 0x3f);
	o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/*
 * Walk a string node's value as UTF-8, a code point at a time, into out
 * (up to len bytes, not terminated).  The bytes it takes, or -1 if a
 * code point does not fit, or is U+0000 (nul false).
 */
static long decode(const struct jr_doc *d, const struct jr_node *n, char *out, size_t len)
{
	const unsigned char *s = (const unsigned char *)d->text;
	size_t pos = n->start + 1, end = n->start + n->len - 1, k = 0, w;
	uint32_t cp;
	char u[4];

	if (!(n->flags & F_ESCAPED)) {
		if (end - pos > len || memchr(s + pos, 0, end - pos))
			return -1;
		memcpy(out, s + pos, end - pos);
		return end - pos;
	}
	while (pos < end) {
		if (next_cp(s, end, &pos, &cp) || !cp)
			return -1;
		w = put_utf8(cp, u);
		if (len - k < w)
			return -1;
		memcpy(out + k, u, w);
		k += w;
	}
	return k;
}

int jr_str(const struct jr_doc *d, int node, char *out, size_t len)
{
	const struct jr_node *n = node_at(d, node);
	long k;

	if (!n || n->type != JR_STRING || !len)
		return -1;
	k = decode(d, n, out, len - 1);
	if (k < 0)
		return -1;
	out[k] = 0;
	return 0;
}

bool jr_str_eq(const struct jr_doc *d, int node, const char *s)
{
	const struct jr_node *n = node_at(d, node);
	const unsigned char *t = (const unsigned char *)d->text;
	size_t sl = strlen(s), pos, end, k = 0, w;
	uint32_t cp;
	char u[4];

	if (!n || n->type != JR_STRING)
		return false;
	pos = n->start + 1;
	end = n->start + n->len - 1;
	if (!(n->flags & F_ESCAPED))
		return end - pos == sl && !memcmp(t + pos, s, sl);
	/* A code point at a time against s, whatever their lengths. */
	while (pos < end) {
		if (next_cp(t, end, &pos, &cp) || !cp)
			return false;
		w = put_utf8(cp, u);
		if (sl - k < w || memcmp(s + k, u, w))
			return false;
		k += w;
	}
	return k == sl;
}

/* An integer node's magnitude; -1 if it is not one or does not fit 64 bits. */
static int magnitude(const struct jr_doc *d, int node, uint64_t *m, bool *neg)
{
	const struct jr_node *n = node_at(d, node);
	const char *s, *e;

	if (!n || n->type != JR_NUMBER || !(n->flags & F_INT))
		return -1;
	s = d->text + n->start;
	e = s + n->len;
	*neg = n->flags & F_NEG;
	if (*neg)
		s++;
	*m = 0;
	for (; s < e; s++) {
		unsigned int dg = *s - '0';

		if (*m > (UINT64_MAX - dg) / 10)
			return -1;
		*m = *m * 10 + dg;
	}
	return 0;
}

int jr_i64(const struct jr_doc *d, int node, int64_t *out)
{
	uint64_t m;
	bool neg;

	if (magnitude(d, node, &m, &neg))
		return -1;
	if (neg) {
		if (m > (uint64_t)INT64_MAX + 1)
			return -1;
		*out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
		return 0;
	}
	if (m > INT64_MAX)
		return -1;
	*out = m;
	return 0;
}

int jr_u64(const struct jr_doc *d, int node, uint64_t *out)
{
	uint64_t m;
	bool neg;

	if (magnitude(d, node, &m, &neg) || (neg && m))
		return -1;
	*out = m;
	return 0;
}

int jr_dbl(const struct jr_doc *d, int node, double *out)
{
	const struct jr_node *n = node_at(d, node);
	char buf[512], *end;
	double v;

	/* strtod needs a terminated copy; a number this long is not a
	 * measurement lmig reads. */
	if (!n || n->type != JR_NUMBER || n->len >= sizeof(buf))
		return -1;
	memcpy(buf, d->text + n->start, n->len);
	buf[n->len] = 0;
	errno = 0;
	v = strtod(buf, &end);
	if (end != buf + n->len || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int jr_bool(const struct jr_doc *d, int node, bool *out)
{
	const struct jr_node *n = node_at(d, node);

	if (!n || (n->type != JR_TRUE && n->type != JR_FALSE))
		return -1;
	*out = n->type == JR_TRUE;
	return 0;
}

bool jr_is_null(const struct jr_doc *d, int node)
{
	const struct jr_node *n = node_at(d, node);

	return n && n->type == JR_NULL;
}

int jr_get(const struct jr_doc *d, int obj, const char *key)
{
	if (jr_type(d, obj) != JR_OBJECT)
		return -1;
	for (int k = jr_first(d, obj); k >= 0; k = jr_next(d, k))
		if (jr_str_eq(d, k, key))
			return k + 1;
	return -1;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one JSON reader (lib/json.c is the printer): a text is checked
 * whole (RFC 8259, strictly: UTF-8 valid, escapes valid, surrogates
 * paired, nothing after the value but white space) into an array of
 * nodes, one a value, in document order.  It is bounded: the caller
 * states the longest text, the most nodes and the deepest nesting it
 * accepts, and past any of them the text is refused, so a peer cannot
 * make it recurse or allocate without end.  The text is not copied: the
 * nodes point into it, and it must outlive the document.
 *
 *	struct jr_doc d;
 *	int ram;
 *	uint64_t rem;
 *	if (jr_parse(&d, text, len, &jr_limits_default, NULL))
 *		fail(jr_strerror(d.err), d.err_off);
 *	ram = jr_get(&d, 0, "ram");		// the root is node 0
 *	if (jr_u64(&d, jr_get(&d, ram, "remaining"), &rem) == 0)
 *		use(rem);
 *	jr_free(&d);
 *
 * Accessors take a node index; -1 (what a failed lookup returns) is
 * accepted everywhere and fails, so lookups chain without checks.
 */
#ifndef LMIG_JSON_READ_H
#define LMIG_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jr_type { JR_NULL, JR_FALSE, JR_TRUE, JR_NUMBER, JR_STRING, JR_ARRAY, JR_OBJECT };

enum jr_err {
	JR_OK,
	JR_E_EMPTY,		/* nothing but white space */
	JR_E_SYNTAX,		/* an unexpected byte */
	JR_E_END,		/* the text ends inside a value */
	JR_E_STRING,		/* a control byte or invalid UTF-8 in a string */
	JR_E_ESCAPE,		/* an unknown escape, a bad or lone surrogate */
	JR_E_NUMBER,		/* not a JSON number */
	JR_E_DEPTH,		/* nested deeper than the limit */
	JR_E_NODES,		/* more values than the limit */
	JR_E_LONG,		/* the text is longer than the limit */
	JR_E_TRAILING,		/* bytes after the value */
	JR_E_NOMEM,
};

struct jr_limits {
	size_t max_len;		/* bytes of text; at most JR_LEN_MAX */
	unsigned int max_nodes;
	unsigned int max_depth;	/* arrays and objects inside each other; at most JR_DEPTH_MAX */
};

#define JR_LEN_MAX	(1u << 30)
#define JR_DEPTH_MAX	512

/* 1 MiB, 65536 values, 64 deep. */
extern const struct jr_limits jr_limits_default;

struct jr_node {
	uint32_t start, len;	/* the value's text (a string's with its quotes) */
	uint32_t next;		/* the next element of its array, the next key of its
				 * object (a member's value is its key's index + 1); 0: none */
	uint32_t count;		/* array: elements; object: members */
	uint8_t type;		/* enum jr_type */
	uint8_t flags;		/* private to json_read.c */
};

struct jr_doc {
	const char *text;
	size_t len;
	struct jr_node *nodes;
	unsigned int n, cap;
	enum jr_err err;	/* why jr_parse() refused the text */
	size_t err_off;		/* and the byte where it saw that */
	bool owned;		/* nodes were allocated by jr_parse() */
};

/*
 * Check text[0..len) and index it.  nodes: the caller's array of
 * lim->max_nodes, or NULL to have one allocated (of at most
 * min(max_nodes, len) nodes: every value takes a byte) and freed by
 * jr_free().  0, or -1 with d->err and d->err_off set (nothing to free).
 */
int jr_parse(struct jr_doc *d, const char *text, size_t len, const struct jr_limits *lim,
	     struct jr_node *nodes);
void jr_free(struct jr_doc *d);
const char *jr_strerror(enum jr_err err);

/* The node's type, or -1 for no node. */
int jr_type(const struct jr_doc *d, int node);
/* The value of member key of object obj (the first if it repeats), or -1. */
int jr_get(const struct jr_doc *d, int obj, const char *key);
/* An array's first element, or an object's first key (its value is +1); -1 if none. */
int jr_first(const struct jr_doc *d, int node);
/* The element or key after this one, or -1. */
int jr_next(const struct jr_doc *d, int node);
/* Elements of an array, members of an object; 0 for anything else. */
unsigned int jr_count(const struct jr_doc *d, int node);
/* The value's JSON text (not NUL-terminated): its start, and its length in *len. */
const char *jr_span(const struct jr_doc *d, int node, size_t *len);

/*
 * The accessors: 0, or -1 when the node is absent, of another type, or
 * out of the range asked for; out is written only on success.
 * jr_str() writes the unescaped UTF-8, NUL-terminated; a string that does
 * not fit in len, or that holds U+0000 (a C string cannot), fails.
 */
int jr_str(const struct jr_doc *d, int node, char *out, size_t len);
/* Is the string node's value exactly s (a NUL-terminated UTF-8 string)? */
bool jr_str_eq(const struct jr_doc *d, int node, const char *s);
/* Integers: no fraction or exponent ("1.0" and "1e3" fail), in range. */
int jr_i64(const struct jr_doc *d, int node, int64_t *out);
int jr_u64(const struct jr_doc *d, int node, uint64_t *out);
/* Any number that is finite as a double. */
int jr_dbl(const struct jr_doc *d, int node, double *out);
int jr_bool(const struct jr_doc *d, int node, bool *out);
bool jr_is_null(const struct jr_doc *d, int node);

#endif

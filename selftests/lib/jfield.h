/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading fields of lmig's --json output: one flat object on one line,
 * so a key lookup is all the tests need (and a full parser would be one
 * more thing that could be wrong).
 */
#ifndef SELFTEST_JFIELD_H
#define SELFTEST_JFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s is one line holding one "{...}" object. */
bool json_one_object(const char *s);
/* 0 and the value, or -1 when the key is missing or not of that type. */
int json_u64_field(const char *json, const char *key, uint64_t *out);
int json_str_field(const char *json, const char *key, char *buf, size_t len);
/* The same, for a report's check: -1 when missing (values are never negative). */
int64_t json_num(const char *json, const char *key);
/* The string value into buf, or "(no KEY)" when missing: for messages. */
const char *json_str_or(const char *json, const char *key, char *buf, size_t len);
/* The first "key": number in json (anywhere, nested too), or -1 when missing. */
double json_dbl(const char *json, const char *key);
/* 1 true, 0 false, -1 missing or not a boolean. */
int json_bool(const char *json, const char *key);
/*
 * A driver script's result: the last line of out that starts with '{',
 * copied into buf; NULL when there is none.
 */
const char *json_last_line(const char *out, char *buf, size_t len);
/*
 * The line of out that starts {"KEY":"NAME" (a driver's result for one
 * case), copied into buf; NULL when there is none.
 */
const char *json_line_of(const char *out, const char *key, const char *name,
			 char *buf, size_t len);

#endif

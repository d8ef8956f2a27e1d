/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one JSON printer.  Commands fill a struct json_obj with key/value
 * pairs in order and print it once at the end, so --json output is always
 * exactly one object, even on failure.
 */
#ifndef LMIG_JSON_H
#define LMIG_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json_obj {
	char *buf;
	size_t len, cap;
	bool first;
};

void json_begin(struct json_obj *j);
void json_str(struct json_obj *j, const char *key, const char *val);
void json_u64(struct json_obj *j, const char *key, uint64_t val);
void json_i64(struct json_obj *j, const char *key, int64_t val);
void json_dbl(struct json_obj *j, const char *key, double val, int decimals);
void json_bool(struct json_obj *j, const char *key, bool val);
/* "key":[{...},{...}]: begin, then per element elem_begin, fields, elem_end. */
void json_array_begin(struct json_obj *j, const char *key);
void json_elem_begin(struct json_obj *j);
void json_elem_end(struct json_obj *j);
void json_array_end(struct json_obj *j);
/* "key":{...}: begin, the fields, end. */
void json_obj_begin(struct json_obj *j, const char *key);
void json_obj_end(struct json_obj *j);
/* "key":[1,2,3] */
void json_int_array(struct json_obj *j, const char *key, const int *v, unsigned int n);
/* Print "{...}\n" to f and free the buffer. */
void json_end(struct json_obj *j, FILE *f);

#endif

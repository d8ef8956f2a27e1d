/* SPDX-License-Identifier: GPL-2.0-only */
/* Parsers for command-line values.  Each returns 0, or -1 with lmig_err() set. */
#ifndef LMIG_OPTS_H
#define LMIG_OPTS_H

#include <stdint.h>

/*
 * "125M", "1G", "1.5G", "64Ki", "1Gbit": SI suffixes are powers of 1000,
 * "Ki"/"Mi"/"Gi"/"Ti" powers of 1024, and a trailing "bit" divides by 8.
 * Used for both sizes and rates (bytes per second).
 */
int parse_bytes(const char *what, const char *s, uint64_t *out);
int parse_uint(const char *what, const char *s, unsigned long min, unsigned long max,
	       unsigned long *out);
/*
 * "anon:START-END", hex addresses of a range of a process's memory as
 * /proc/PID/maps prints them, page-aligned.
 */
int parse_anon_range(const char *what, const char *s, uint64_t *start, uint64_t *size);
/* "HOST:PORT" or "[V6ADDR]:PORT"; host may be empty for a wildcard listen. */
int parse_hostport(const char *what, const char *s, char *host, size_t hostlen,
		   char *port, size_t portlen);
/* Human-readable byte count ("1.00 GiB") into buf. */
const char *fmt_bytes(char *buf, size_t len, double bytes);

#endif

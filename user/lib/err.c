// SPDX-License-Identifier: GPL-2.0-only
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

/*
 * Each thread has its own: a controller thread running beside an engine
 * (live/converge_vm.c) must neither take the engine's message nor give it
 * its own.
 */
static __thread char errbuf[512];
static __thread bool have_err;

static int vrecord(int err, const char *fmt, va_list ap)
{
	size_t n;

	if (have_err)
		return -1;
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	if (err) {
		n = strlen(errbuf);
		snprintf(errbuf + n, sizeof(errbuf) - n, ": %s", strerror(err));
	}
	/* Keep it one line whatever the caller passed. */
	for (char *p = errbuf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	have_err = true;
	return -1;
}

int lmig_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(0, fmt, ap);
	va_end(ap);
	return -1;
}

int lmig_err_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(err, fmt, ap);
	va_end(ap);
	return -1;
}

const char *lmig_errmsg(void)
{
	return have_err ? errbuf : "unknown error";
}

bool lmig_has_err(void)
{
	return have_err;
}

void lmig_err_clear(void)
{
	have_err = false;
	errbuf[0] = 0;
}

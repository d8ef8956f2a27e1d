// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

#include "host/tracemark.h"

#define TRACEFS		"/sys/kernel/tracing"

static int marker_fd = -1;
static bool tried;

bool tracemark_open(void)
{
	static const char *const paths[] = { TRACEFS "/trace_marker",
					     "/sys/kernel/debug/tracing/trace_marker" };

	tried = true;
	if (marker_fd >= 0)
		return true;
	for (unsigned int i = 0; i < 2 && marker_fd < 0; i++)
		marker_fd = open(paths[i], O_WRONLY | O_CLOEXEC);
	return marker_fd >= 0;
}

bool tracemark_mount(void)
{
	if (access(TRACEFS "/trace_marker", F_OK))
		mount("nodev", TRACEFS, "tracefs", 0, NULL);
	return tracemark_open();
}

void tracemark(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n, saved = errno;

	if (!tried)
		tracemark_open();
	if (marker_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "lmig: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	/* One write is one trace entry. */
	if (write(marker_fd, line, n) < 0) {
		/* tracefs unmounted or tracing off: stay quiet */
	}
	errno = saved;
}

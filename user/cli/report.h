/* SPDX-License-Identifier: GPL-2.0-only */
/* The end-of-command report: text for people, one JSON object for tools. */
#ifndef LMIG_REPORT_H
#define LMIG_REPORT_H

#include <stdbool.h>

#include "image/image.h"

/* role: "send" or "recv"; ok: the migration completed and was verified. */
void report_print(const char *role, const struct image_stats *st, const char *compress,
		  bool ok, bool json);

#endif

// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>
#include <string.h>

#include "proc.h"
#include "vm.h"

int vm_path(const char *name, char *buf, size_t len)
{
	const char *bin = lmig_path(), *slash = strrchr(bin, '/');
	int n;

	if (!slash)
		return -1;
	n = snprintf(buf, len, "%.*s/../selftests/vm/%s", (int)(slash - bin), bin, name);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

const char *vm_result(const char *out, const char *tag, char *buf, size_t len)
{
	size_t n = strlen(tag);

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *nl;

		if (strncmp(l, tag, n) || l[n] != ' ')
			continue;
		l += n + 1;
		nl = strchr(l, '\n');
		snprintf(buf, len, "%.*s", (int)(nl ? nl - l : (long)strlen(l)), l);
		return buf;
	}
	return NULL;
}

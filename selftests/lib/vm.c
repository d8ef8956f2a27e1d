// SPDX-License-Identifier: GPL-2.0-only
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int run(struct proc *p, const char *script, bool direct, const char *arg,
	       int vm_timeout_s, double wait_s, char **out)
{
	char runner[PATH_MAX], path[PATH_MAX], file[] = "/tmp/lmig-vm-out.XXXXXX", num[16];
	size_t len = 0;
	FILE *f;
	int fd, ret = -1;

	*out = NULL;
	if (vm_path("run-in-vm.sh", runner, sizeof(runner)) ||
	    vm_path(script, path, sizeof(path)) || (fd = mkstemp(file)) < 0)
		goto done;
	close(fd);
	snprintf(num, sizeof(num), "%d", vm_timeout_s);
	setenv("VM_TIMEOUT", num, 0);
	if (direct ? proc_spawn(p, (char *const[]){ "/bin/sh", "-c",
						   "exec /bin/sh \"$0\" \"$1\" >\"$2\"",
						   path, (char *)arg, file, NULL }, NULL) :
		     proc_spawn(p, (char *const[]){ "/bin/sh", "-c",
						   "exec /bin/sh \"$0\" -v \"$1\" >\"$2\"",
						   runner, path, file, NULL }, NULL))
		goto unlink;
	ret = proc_wait(p, wait_s);
	f = fopen(file, "r");
	if (f) {
		if (getdelim(out, &len, 0, f) < 0) {
			free(*out);
			*out = NULL;
		}
		fclose(f);
	}
unlink:
	unlink(file);
done:
	if (!*out)
		*out = strdup("");
	return ret;
}

int vm_run(struct proc *p, const char *script, bool direct, int vm_timeout_s, double wait_s,
	   char **out)
{
	return run(p, script, direct, "", vm_timeout_s, wait_s, out);
}

int vm_run_arg(struct proc *p, const char *script, const char *arg, int vm_timeout_s,
	       double wait_s, char **out)
{
	return run(p, script, true, arg, vm_timeout_s, wait_s, out);
}

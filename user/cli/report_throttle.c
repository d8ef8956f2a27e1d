// SPDX-License-Identifier: GPL-2.0-only
/* Words for the CPU throttle's mechanism and its restores (report_throttle.h). */
#include <stdio.h>

#include "cli/report.h"
#include "cli/report_throttle.h"

const char *throttle_kind_words(enum throttle_kind k)
{
	switch (k) {
	case THROTTLE_KIND_NONE:
		return "none";
	case THROTTLE_KIND_IN_PLACE:
		return "the process's own cgroup, in place";
	case THROTTLE_KIND_TRANSIENT:
		return "the process in a transient cgroup";
	case THROTTLE_KIND_THREADED_CHILD:
		return "the threads named in a threaded child cgroup";
	case THROTTLE_KIND_V1_THREADS:
		return "the threads named moved into a transient cgroup";
	case THROTTLE_KIND_VCPU_CGROUPS:
		return "per-vCPU cgroups, in place";
	}
	return "unknown";
}

void cli_throttle_restored(void *ctx, const struct throttle_restored *r)
{
	if (r->kind != THROTTLE_KIND_VCPU_CGROUPS) {
		cli_restored(ctx, r);
		return;
	}
	fprintf(stderr, "lmig: restored cpu.max of %u per-vCPU cgroup%s of process %d (",
		r->ncg, r->ncg == 1 ? "" : "s", (int)r->pid);
	for (unsigned int i = 0; i < r->ncg && i < 4; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", r->vcg[i].dir);
	if (r->ncg > 4)
		fprintf(stderr, " and %u more", r->ncg - 4);
	fprintf(stderr, "); no thread was moved\n");
}

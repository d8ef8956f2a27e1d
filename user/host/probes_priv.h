/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What probes.c (loading, attaching, pinning) and probes_sample.c
 * (reading the maps) share: the state behind struct probes.
 */
#ifndef LMIG_PROBES_PRIV_H
#define LMIG_PROBES_PRIV_H

#include <stddef.h>

#include "host/probes.h"

#if __has_include("probes_config.h")
#include "probes_config.h"
#else
#define LMIG_PROBES_MISSING "bpf/ was not built with lmig"
#endif

/* Format a one-line reason into buf (line breaks become spaces). */
void probes_set_why(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#ifdef LMIG_HAVE_PROBES

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "probes_abi.h"
#include "probes.skel.h"

struct probe_snap {			/* one thread or process as last read */
	uint32_t key, tgid;
	struct probes_counts c;
	char comm[16];		/* processes only */
};

struct reason_snap {
	struct probes_reason_key k;
	uint64_t n;
};

struct probes_priv {
	struct probes_bpf *skel;
	struct bpf_link *links[5];
	const char *link_names[5];
	int ncpus;			/* values per entry of the per-CPU maps */
	void *pcpu;			/* a buffer for one per-CPU value */
	int nlinks;
	int lockfd;
	int pidfd;			/* the process counted (not PROBES_ALL), or -1 */
	double t_last;
	struct probe_snap *thr, *proc;	/* previous samples, sorted by key */
	size_t nthr, nproc;
	struct reason_snap *rs;
	size_t nrs;
	struct probe_thread *out_thr;
	struct probe_proc *out_proc;
};

#endif

#endif

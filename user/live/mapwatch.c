// SPDX-License-Identifier: GPL-2.0-only
/*
 * Load and read bpf/mapwatch.bpf.c (see mapwatch.h).  Each watch loads its
 * own copy of the program, with the process and this architecture's
 * system call numbers as constants, and reads its counters through the
 * memory map libbpf makes of the program's .bss: a harvest costs four
 * loads, no system call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/err.h"
#include "live/mapwatch.h"

#if __has_include("probes_config.h")
#include "probes_config.h"
#else
#define LMIG_PROBES_MISSING "bpf/ was not built with lmig"
#endif

#ifndef LMIG_HAVE_PROBES

int mapwatch_open(struct mapwatch **mw, pid_t pid)
{
	*mw = NULL;
	return lmig_err("lmig was built without eBPF (%s)", LMIG_PROBES_MISSING);
}

void mapwatch_read(struct mapwatch *mw, struct mapwatch_sample *s)
{
	memset(s, 0, sizeof(*s));
}

void mapwatch_close(struct mapwatch *mw)
{
}

#else

#include <bpf/libbpf.h>
#include <linux/io_uring.h>
#include <linux/types.h>

#include "mapwatch_abi.h"
#include "mapwatch.skel.h"

struct mapwatch {
	struct mapwatch_bpf *skel;
	struct bpf_link *links[5];
	int nlinks;
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return getenv("LMIG_BPF_DEBUG") ? vfprintf(stderr, fmt, ap) : 0;
}

static int attach(struct mapwatch *mw, struct bpf_program *prog, const char *tp)
{
	struct bpf_link *l = bpf_program__attach_raw_tracepoint(prog, tp);

	if (!l)
		return -1;
	mw->links[mw->nlinks++] = l;
	return 0;
}

void mapwatch_close(struct mapwatch *mw)
{
	if (!mw)
		return;
	for (int i = 0; i < mw->nlinks; i++)
		bpf_link__destroy(mw->links[i]);
	mapwatch_bpf__destroy(mw->skel);
	free(mw);
}

int mapwatch_open(struct mapwatch **out, pid_t pid)
{
	struct mapwatch *mw = calloc(1, sizeof(*mw));
	struct mapwatch_bpf *s;
	struct stat ns;
	int err;

	*out = NULL;
	if (!mw)
		return lmig_err("out of memory");
	if (stat("/proc/self/ns/pid", &ns)) {
		free(mw);
		return lmig_err_errno(errno, "cannot stat /proc/self/ns/pid");
	}
	libbpf_set_print(libbpf_quiet);
	s = mw->skel = mapwatch_bpf__open();
	if (!s) {
		err = errno;
		free(mw);
		return lmig_err_errno(err, "cannot open the mapping watch");
	}
	s->rodata->watch_tgid = pid;
	s->rodata->pidns_dev = ns.st_dev;
	s->rodata->pidns_ino = ns.st_ino;
	s->rodata->nr_mmap = SYS_mmap;
	s->rodata->nr_munmap = SYS_munmap;
	s->rodata->nr_mremap = SYS_mremap;
	s->rodata->nr_madvise = SYS_madvise;
#ifdef SYS_remap_file_pages
	s->rodata->nr_remap_file_pages = SYS_remap_file_pages;
#endif
#ifdef SYS_shmat
	s->rodata->nr_shmat = SYS_shmat;
	s->rodata->nr_shmdt = SYS_shmdt;
#endif
#ifdef SYS_process_madvise
	s->rodata->nr_process_madvise = SYS_process_madvise;
#else
	s->rodata->nr_process_madvise = 440;	/* the same on every architecture */
#endif
	s->rodata->op_madvise = IORING_OP_MADVISE;
	err = mapwatch_bpf__load(s);
	if (err) {
		/* libbpf's last words add nothing to EPERM; LMIG_BPF_DEBUG=1 shows them all. */
		lmig_err("cannot load the mapping watch: %s", strerror(-err));
		goto fail;
	}
	/*
	 * The end first: a call that started before the start was watched
	 * ends once that is attached, and is counted then (mw_sys_exit).
	 */
	if (attach(mw, s->progs.mw_sys_exit, "sys_exit") ||
	    attach(mw, s->progs.mw_sys_enter, "sys_enter") ||
	    attach(mw, s->progs.mw_fork, "sched_process_fork")) {
		lmig_err_errno(errno, "cannot attach the mapping watch (eBPF) to the system call "
			       "and fork tracepoints");
		goto fail;
	}
	/*
	 * io_uring's madvise runs no madvise system call.  Its tracepoints are
	 * there whenever io_uring is (submit_sqe before 6.2, submit_req since).
	 * The completion first, as for the system calls.
	 */
	if (attach(mw, s->progs.mw_uring_complete, "io_uring_complete") ||
	    (attach(mw, s->progs.mw_uring_submit, "io_uring_submit_req") &&
	     attach(mw, s->progs.mw_uring_submit, "io_uring_submit_sqe"))) {
		int aerr = errno;

		/* Without io_uring in the kernel its setup call does not exist. */
		if (syscall(SYS_io_uring_setup, 0, NULL) >= 0 || errno != ENOSYS) {
			lmig_err_errno(aerr, "cannot attach the mapping watch (eBPF) to io_uring's "
				       "tracepoints");
			goto fail;
		}
	}
	if (!s->bss) {
		lmig_err("the mapping watch's counters are not memory-mapped (kernel too old)");
		goto fail;
	}
	*out = mw;
	return 0;
fail:
	mapwatch_close(mw);
	return -1;
}

void mapwatch_read(struct mapwatch *mw, struct mapwatch_sample *out)
{
	volatile struct mapwatch_counts *c = &mw->skel->bss->counts;

	/* After the harvest's own reads of the page tables (see track.c). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* exits before enters: a call counted as ended was counted as started. */
	out->exits = __atomic_load_n(&c->exits, __ATOMIC_SEQ_CST);
	out->forks = __atomic_load_n(&c->forks, __ATOMIC_SEQ_CST);
	out->foreign = __atomic_load_n(&c->foreign, __ATOMIC_SEQ_CST);
	out->enters = __atomic_load_n(&c->enters, __ATOMIC_SEQ_CST);
}

#endif

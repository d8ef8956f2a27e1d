/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The eBPF probes (bpf/probes.bpf.c) seen from user space: per process and
 * per thread, page faults and write faults, KVM guest page faults and
 * exits, and run-queue delay (the steal time a vCPU thread suffers).
 *
 *	struct probes pr;
 *	struct probe_sample s;
 *
 *	if (probes_open(&pr, pid, 0))
 *		fprintf(stderr, "lmig send: no probes: %s\n", pr.why);
 *	...
 *	if (pr.ok && !probes_sample(&pr, &s))
 *		use(s.write_faults, s.steal_pct, s.threads[i]...);
 *	probes_close(&pr);
 *
 * Errors never go through lmig_err(): a caller for whom the probes are
 * optional keeps its own error path clean.  A failed call leaves a one-line
 * reason in pr.why (no newline).  Not thread-safe; one struct per user.
 */
#ifndef LMIG_PROBES_H
#define LMIG_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum probes_flags {
	/* Count every process (pid is ignored); probes_sample_all() reads them. */
	PROBES_ALL	= 1 << 0,
	/* Pin the maps under PROBES_PIN_DIR while open (if no other lmig has). */
	PROBES_PIN	= 1 << 1,
	/* With PROBES_PIN: at close, leave maps and programs pinned, counting. */
	PROBES_KEEP	= 1 << 2,
};

#define PROBES_PIN_DIR	"/sys/fs/bpf/lmig"

/* Counters over one interval. */
struct probe_counts {
	uint64_t faults;	/* user page faults */
	uint64_t write_faults;	/* ... on a write access */
	uint64_t guest_faults;	/* KVM guest page faults handled by the host */
	uint64_t guest_exits;	/* KVM exits */
	uint64_t rq_delay_ns;	/* runnable but waiting for a CPU */
	uint64_t run_ns;	/* running */
};

struct probe_thread {
	pid_t tid;
	char comm[16];
	struct probe_counts c;
	double steal_pct;	/* rq_delay_ns / interval: the share of wall time spent waiting */
};

struct probe_sample {
	pid_t pid;
	bool alive;		/* false once the process is gone */
	double interval_s;	/* since the previous sample (or probes_open) */
	struct probe_counts c;	/* the whole process, exited threads included */
	/* rq delay / (rq delay + running time) of all its threads: of the
	 * time the process wanted a CPU, the share it spent waiting. */
	double steal_pct;
	unsigned int nthreads;
	/* Live threads and those that exited during the interval; owned by
	 * struct probes, valid until the next probes_sample() or probes_close(). */
	struct probe_thread *threads;
};

/* One process in probes_sample_all(). */
struct probe_proc {
	pid_t pid;
	char comm[16];
	struct probe_counts c;
	double steal_pct;	/* as probe_sample.steal_pct */
};

/*
 * Why probes_open() failed, in numbers (p->why says it in words); the
 * members of struct probes_status each needs are named.
 */
enum probes_off {
	PROBES_OFF_NONE,
	PROBES_OFF_NOT_BUILT,		/* detail: what the build of bpf/ lacked */
	PROBES_OFF_NO_PROCESS,		/* pid */
	PROBES_OFF_NOT_ROOT,
	PROBES_OFF_NO_MEMORY,
	PROBES_OFF_OPEN,		/* err: opening the skeleton */
	PROBES_OFF_FOREIGN_PROC,	/* /proc is another pid namespace's */
	PROBES_OFF_STAT_NS,		/* err: stat of /proc/self/ns/pid */
	PROBES_OFF_CPUS,		/* err: counting the possible CPUs */
	PROBES_OFF_LOAD,		/* err; detail: libbpf's last warning, or "" */
	PROBES_OFF_SETUP,		/* err: running the setup program */
	PROBES_OFF_PIDNS,		/* ns: lmig's pid namespace inode and tid, then the kernel's */
	PROBES_OFF_ATTACH,		/* err; detail: the probe */
	PROBES_OFF_EXITED,		/* pid */
};

/* What is missing though the probes work: bits, in the order they are told. */
enum probes_note {
	PROBES_NOTE_FOREIGN_PROC	= 1 << 0,	/* PROBES_ALL: process names may be wrong */
	PROBES_NOTE_NO_KVM		= 1 << 1,	/* no KVM tracepoints */
	PROBES_NOTE_NO_TRACEFS		= 1 << 2,	/* no exit reasons: no tracefs */
	PROBES_NOTE_NO_REASON_FIELD	= 1 << 3,	/* no exit reasons: kvm_exit lacks the field */
	PROBES_NOTE_NO_REASON_ATTACH	= 1 << 4,	/* no exit reasons: did not attach */
	PROBES_NOTE_PIN_MOUNT		= 1 << 5,	/* not pinned: bpffs mount failed, pin_err */
	PROBES_NOTE_PIN_HELD		= 1 << 6,	/* not pinned: another lmig holds the pins */
	PROBES_NOTE_PIN_KEPT		= 1 << 7,	/* not pinned: probes kept with --pin are there */
	PROBES_NOTE_PIN_MKDIR		= 1 << 8,	/* not pinned: cannot create PROBES_PIN_DIR */
	PROBES_NOTE_PIN_FAILED		= 1 << 9,	/* not pinned: bpf_map__pin failed */
};

/* How probes_open() went, for a report to word. */
struct probes_status {
	bool tried;			/* probes_open() was called */
	bool on;			/* ... and worked */
	enum probes_off off;
	int err;			/* an errno, for the reasons that have one */
	pid_t pid;
	unsigned int ns[4];
	char detail[200];
	unsigned int notes;		/* enum probes_note bits */
	int pin_err;			/* errno of PROBES_NOTE_PIN_MOUNT */
};

struct probes_priv;

struct probes {
	bool ok;		/* open and attached */
	pid_t pid;
	unsigned int flags;
	bool kvm;		/* KVM guest faults and exits are counted */
	bool exit_reasons;	/* the per-reason exit histogram is attached */
	bool pinned;		/* the maps are under PROBES_PIN_DIR */
	char why[256];		/* a failure's reason, one line */
	/* What is missing though it works, one line ("" if nothing):
	 * "no KVM tracepoints (kvm not loaded); ..." */
	char note[256];
	struct probes_status status;	/* why and note in numbers */
	struct probes_priv *priv;
};

/*
 * Load and attach the probes, counting process pid (its threads too) or,
 * with PROBES_ALL, every process.  0, or -1 with the reason in p->why:
 * not root, no BPF, lmig built without probes, no such process...
 */
int probes_open(struct probes *p, pid_t pid, unsigned int flags);
/* The counters of the watched process since the previous sample. */
int probes_sample(struct probes *p, struct probe_sample *out);
/*
 * PROBES_ALL: every process with activity since the previous call, in
 * *out (owned by p, valid until the next call), *n of them.
 */
int probes_sample_all(struct probes *p, struct probe_proc **out, unsigned int *n,
		      double *interval_s);
/* The watched process's KVM exits since the previous call, by exit reason
 * (reason codes as in kvm:kvm_exit; VMX or SVM numbering); up to max. */
struct probe_reason {
	uint32_t reason;
	uint64_t count;
};
int probes_exit_reasons(struct probes *p, struct probe_reason *out, unsigned int max);
/* Detach and free; idempotent, safe on a struct that failed to open. */
void probes_close(struct probes *p);
/* Remove what PROBES_KEEP left pinned.  0, or -1 with the reason in why. */
int probes_unpin(char *why, size_t len);

#endif

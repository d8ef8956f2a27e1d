/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The load generator behind `lmig dirty`: a shared memory object (or
 * private anonymous memory) written at a steady rate, standing in for a
 * guest that dirties its memory.
 */
#ifndef LMIG_DIRTY_H
#define LMIG_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

enum dirty_pace {
	PACE_WALL,	/* RATE per second of wall-clock time */
	PACE_CPU,	/* RATE per second of the writer's own CPU time; spins between writes */
};

enum dirty_pattern {
	PAT_COUNTER,	/* page index and a write counter, the rest derived from them */
	PAT_RANDOM,	/* random bytes: lz4 cannot shrink it */
	PAT_TEXT,	/* words and spaces: lz4 shrinks it to about a half */
	/*
	 * Each write takes the page one step through a cycle: zeroed, data A,
	 * data B, A again, zeroed ... (A depends on the page only, B on the
	 * write too; the fill writes A; page p's first write is step p % 4):
	 * pages that turn zero, zero pages that get data, and pages that come
	 * back to what an earlier round sent.
	 */
	PAT_CHURN,
	/* The same with two steps: a hole punched in the file, data A. */
	PAT_HOLES,
	/*
	 * Two steps: zeroed by madvise() on the mapping (MADV_REMOVE, which
	 * punches a hole, in a shared object; MADV_DONTNEED, which drops the
	 * page, in private anonymous memory), data A.
	 */
	PAT_MADVISE,
	/*
	 * The churn cycle with the zeroes and B written by pwrite() to the file
	 * (not through the mapping), A through the mapping.
	 */
	PAT_PWRITE,
};

struct dirty_stats;

struct dirty_opts {
	const char *mem;	/* path, "memfd:NAME", or "anon" (private anonymous memory) */
	uint64_t size;		/* bytes, a multiple of the page size */
	uint64_t rate;		/* bytes dirtied per second; 0 = fill, then stay idle */
	enum dirty_pace pace;
	enum dirty_pattern pattern;
	int fill;		/* write every page once first: 1 yes, 0 no, -1 if created */
	double duration;	/* seconds of writing, 0 = until SIGINT/SIGTERM */
	uint64_t seed;
	int ready_fd;		/* write the object's path and "\n" here once filled, or -1 */
	/*
	 * Told twice a second (and once at the end, final) how far it got;
	 * NULL: not told.
	 */
	void (*progress)(const struct dirty_stats *st, double elapsed, bool final);
	/*
	 * Register the mapping with a userfaultfd of our own for async
	 * write-protection before the fill, and hold it open: what the uffd
	 * dirty tracker needs of a writer.
	 */
	bool uffd;
	/*
	 * Threads that never touch the object but spin on a CPU-bound loop,
	 * counting work units: the part of a workload that dirties nothing
	 * (a vCPU that only computes), to see what throttling costs it.
	 */
	unsigned int compute_threads;
	/* every sample_ms, one line "MONO_S PAGES_WRITTEN UNITS..." to this fd, or -1 */
	int sample_fd;
	unsigned int sample_ms;
	/*
	 * A thread writing this regular file with O_DIRECT (dirty_disk.c), at
	 * disk_rate bytes per second (0: as fast as the disk takes them).
	 */
	const char *disk_path;
	uint64_t disk_rate;
};

#define DIRTY_MAX_COMPUTE	64

struct dirty_compute {
	int tid;
	uint64_t units;		/* work units done */
	double secs;		/* wall time it ran */
	double cpu_s;		/* the thread's CPU time */
};

struct dirty_stats {
	/* what `lmig send --mem` takes to read the object; anon:START-END for anon */
	char path[64 + 4096];
	uint64_t size;
	uint64_t pages_filled, pages_written;
	double fill_s, write_s, cpu_s;
	bool created;
	unsigned int ncompute;
	struct dirty_compute compute[DIRTY_MAX_COMPUTE];
	uint64_t disk_bytes;	/* written by the disk writer */
	int disk_tid;
};

int dirty_run(const struct dirty_opts *o, struct dirty_stats *st);
/* The disk writer (dirty_disk.c); stop with st NULL only undoes a start that failed. */
int dirty_disk_start(const char *path, uint64_t rate);
int dirty_disk_stop(struct dirty_stats *st);
const char *dirty_pace_name(enum dirty_pace p);
const char *dirty_pattern_name(enum dirty_pattern p);

#endif

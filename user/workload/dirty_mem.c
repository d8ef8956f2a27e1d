// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig dirty`: map a shared memory object (or private anonymous memory)
 * and dirty its pages at a steady rate.
 *
 * Each write picks a page at random (uniformly over the object) and
 * rewrites all of it with the pattern, so a migration has real content to
 * carry and a dirty page really differs from its previous version.  The
 * counter pattern is verifiable: the first two words of a page hold its
 * index p and its rewrite count n, and word w >= 2 holds
 * mix64(p * 0x100000001b3 ^ n << 20) ^ w * 0x9e3779b97f4a7c15.
 *
 * Pacing: every tick (TICK_NS) the writer computes how many pages are due
 * — rate x elapsed time, where time is the wall clock or the process's
 * own CPU time — and writes them.  With the CPU pace it never sleeps: it
 * spins between writes like a vCPU that computes, so when its CPU share is
 * cut (a cgroup limit), its wall-clock dirty rate falls with it.
 *
 * With --uffd the writer registers its mapping with a userfaultfd of its
 * own for asynchronous write-protection, before the fill, and holds it
 * open: the kernel then records in the writer's page tables which pages
 * it wrote, which the uffd dirty tracker reads from another process.
 *
 * --compute-threads N adds N threads that never touch the object: each
 * spins on a CPU-bound loop (COMPUTE_ROUNDS rounds of mix64 are one work
 * unit) and counts its units, standing for the part of a guest that
 * computes without dirtying memory.  The writer then paces itself by its
 * own thread's CPU time, not the process's.  --sample-fd writes, every
 * --sample-ms, the monotonic time, the pages written and each compute
 * thread's units so far, so a benchmark can tell their rates in any
 * window (before, during, after a migration).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/clock.h"
#include "workload/dirty.h"
#include "lib/err.h"
#include "lib/uapi_compat.h"

#define TICK_NS		1000000L	/* wall pace: sleep this long between bursts */
#define MAX_BURST	4096		/* pages written before the clock is read again */
#define COMPUTE_ROUNDS	16384		/* mix64 rounds per work unit (Documentation/benchmarks.md) */

static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

const char *dirty_pace_name(enum dirty_pace p)
{
	return p == PACE_CPU ? "cpu" : "wall";
}

const char *dirty_pattern_name(enum dirty_pattern p)
{
	return p == PAT_RANDOM ? "random" : p == PAT_TEXT ? "text" :
	       p == PAT_CHURN ? "churn" : p == PAT_HOLES ? "holes" :
	       p == PAT_MADVISE ? "madvise" : p == PAT_PWRITE ? "pwrite" : "counter";
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* splitmix64: a well-mixed word from any input, for the counter pattern. */
static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void write_page(uint8_t *page, uint64_t index, uint64_t gen, enum dirty_pattern pat,
		       uint64_t *rng)
{
	static const char *const words[] = {
		"the ", "page ", "of ", "memory ", "guest ", "kernel ", "dirty ", "round ",
		"send ", "copy ", "write ", "host ", "and ", "a ", "to ", "lmig ",
	};
	uint64_t *w = (uint64_t *)page;
	size_t i;

	switch (pat) {
	case PAT_CHURN:		/* the data states (A, B) of churn_page() */
	case PAT_HOLES:
	case PAT_MADVISE:
	case PAT_PWRITE:
		pat = PAT_COUNTER;
		/* fall through */
	case PAT_COUNTER: {
		uint64_t seed = mix64(index * 0x100000001b3ULL ^ gen << 20);

		w[0] = index;
		w[1] = gen;
		for (i = 2; i < LMIG_PAGE_SIZE / 8; i++)
			w[i] = seed ^ i * 0x9e3779b97f4a7c15ULL;
		break;
	}
	case PAT_RANDOM:
		for (i = 0; i < LMIG_PAGE_SIZE / 8; i++)
			w[i] = xorshift64(rng);
		break;
	case PAT_TEXT:
		for (i = 0; i < LMIG_PAGE_SIZE;) {
			const char *s = words[xorshift64(rng) & 15];
			size_t n = strlen(s);

			if (n > LMIG_PAGE_SIZE - i)
				n = LMIG_PAGE_SIZE - i;
			memcpy(page + i, s, n);
			i += n;
		}
		break;
	}
}

/* The churn patterns (churn_page()). */
static bool churns(enum dirty_pattern pat)
{
	return pat == PAT_CHURN || pat == PAT_HOLES || pat == PAT_MADVISE || pat == PAT_PWRITE;
}

/* Write page p of the file with pwrite(); 0 or -1. */
static int pwrite_page(int fd, const uint8_t *buf, uint64_t p)
{
	ssize_t n;

	do
		n = pwrite(fd, buf, LMIG_PAGE_SIZE, (off_t)(p * LMIG_PAGE_SIZE));
	while (n < 0 && errno == EINTR);
	return n == LMIG_PAGE_SIZE ? 0 : -1;
}

/*
 * The churn patterns: write number gen of page p (gen 0 is the fill).
 * fd: the object, a file (PAT_HOLES and PAT_PWRITE need one).
 */
static void churn_page(uint8_t *map, int fd, enum dirty_pattern pat, uint64_t p, uint64_t gen,
		       uint64_t *rng)
{
	static const uint8_t zeros[LMIG_PAGE_SIZE];
	uint8_t *page = map + p * LMIG_PAGE_SIZE, b[LMIG_PAGE_SIZE];
	unsigned int steps = pat == PAT_HOLES || pat == PAT_MADVISE ? 2 : 4;

	/* Page p starts the cycle at step p mod steps: one write per page already covers it. */
	switch (gen ? (gen - 1 + p) % steps : 1) {
	case 0:
		/* Where the file system cannot punch, the page is zeroed all the same. */
		if (pat == PAT_HOLES &&
		    !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(p * LMIG_PAGE_SIZE), LMIG_PAGE_SIZE))
			break;
		if (pat == PAT_MADVISE &&
		    !madvise(page, LMIG_PAGE_SIZE, fd >= 0 ? MADV_REMOVE : MADV_DONTNEED))
			break;
		if (pat == PAT_PWRITE && !pwrite_page(fd, zeros, p))
			break;
		memset(page, 0, LMIG_PAGE_SIZE);
		break;
	case 1:
	case 3:
		write_page(page, p, 0, PAT_COUNTER, rng);		/* A */
		break;
	case 2:
		if (pat != PAT_PWRITE) {
			write_page(page, p, gen, PAT_COUNTER, rng);	/* B */
			break;
		}
		write_page(b, p, gen, PAT_COUNTER, rng);
		if (pwrite_page(fd, b, p))
			memcpy(page, b, LMIG_PAGE_SIZE);
		break;
	}
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* ---- compute threads: CPU-bound, never touching the object ---------------- */

struct compute_thread {
	pthread_t th;
	atomic_uint_fast64_t units;
	atomic_int tid;
	double t0, secs, cpu_s;
	uint64_t sink;
};

static atomic_bool compute_stop;

static void *compute_main(void *arg)
{
	struct compute_thread *c = arg;
	uint64_t x = (uintptr_t)c;

	atomic_store(&c->tid, (int)gettid());
	c->t0 = now_s();
	while (!atomic_load_explicit(&compute_stop, memory_order_relaxed)) {
		for (unsigned int i = 0; i < COMPUTE_ROUNDS; i++)
			x = mix64(x);
		atomic_fetch_add_explicit(&c->units, 1, memory_order_relaxed);
	}
	c->sink = x;
	c->secs = now_s() - c->t0;
	c->cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

/* Start n compute threads (signals stay with the writer); returns how many started. */
static unsigned int compute_start(struct compute_thread *c, unsigned int n)
{
	sigset_t all, old;
	unsigned int i;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < n; i++)
		if (pthread_create(&c[i].th, NULL, compute_main, &c[i]))
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (i < n)
		lmig_err("cannot start compute thread %u of %u", i + 1, n);
	/* Their ids are known before anyone is told the object is ready. */
	for (unsigned int k = 0; k < i; k++)
		while (!atomic_load(&c[k].tid))
			sched_yield();
	return i;
}

static void compute_stop_all(struct compute_thread *c, unsigned int n, struct dirty_stats *st)
{
	atomic_store(&compute_stop, true);
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(c[i].th, NULL);
		st->compute[i] = (struct dirty_compute){ .tid = atomic_load(&c[i].tid),
							  .units = atomic_load(&c[i].units),
							  .secs = c[i].secs, .cpu_s = c[i].cpu_s };
	}
	st->ncompute = n;
}

static void sample(int fd, const struct dirty_stats *st, struct compute_thread *c, unsigned int n)
{
	char line[64 + DIRTY_MAX_COMPUTE * 24];
	size_t len;

	len = snprintf(line, sizeof(line), "%.3f %llu", now_s(),
		       (unsigned long long)st->pages_written);
	for (unsigned int i = 0; i < n; i++)
		len += snprintf(line + len, sizeof(line) - len, " %llu",
				(unsigned long long)atomic_load_explicit(&c[i].units,
									 memory_order_relaxed));
	line[len++] = '\n';
	if (write(fd, line, len) < 0)
		(void)0;	/* a reader that went away does not stop the workload */
}

static int uffd_open(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	/* Without the right to catch kernel faults, user-mode ones are all we need. */
	if (fd < 0 && errno == EPERM)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return lmig_err_errno(errno, "cannot create a userfaultfd");
	return fd;
}

/*
 * A userfaultfd with [map, map + size) registered for asynchronous
 * write-protection.  Returns its descriptor, to be held open for as long as
 * the memory is to be tracked (closing it unregisters the memory).
 */
static int uffd_register(void *map, uint64_t size, bool shared)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)map, .len = size }, .mode = UFFDIO_REGISTER_MODE_WP,
	};
	uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			(shared ? UFFD_FEATURE_WP_HUGETLBFS_SHMEM : 0);
	int fd = uffd_open();

	if (fd < 0)
		return -1;
	/* UFFDIO_API works once per descriptor: learn the features on a first one. */
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return lmig_err_errno(errno, "UFFDIO_API");
	}
	close(fd);
	if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		return lmig_err("--uffd: this kernel has no asynchronous userfaultfd write-protection "
				"(UFFD_FEATURE_WP_ASYNC, Linux 6.7 or later)");
	if (shared && !(api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		return lmig_err("--uffd: this kernel cannot write-protect shared memory with a "
				"userfaultfd (UFFD_FEATURE_WP_HUGETLBFS_SHMEM)");
	fd = uffd_open();
	if (fd < 0)
		return -1;
	api = (struct uffdio_api){ .api = UFFD_API, .features = want & api.features };
	if (ioctl(fd, UFFDIO_API, &api)) {
		lmig_err_errno(errno, "UFFDIO_API with async write-protection");
		goto err;
	}
	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		lmig_err_errno(errno, "--uffd: cannot register the memory for write-protection");
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

/* Open or create the object; sets st->path to a name `lmig send` can read. */
static int open_object(const struct dirty_opts *o, struct dirty_stats *st)
{
	struct stat sb;
	int fd;

	if (!strncmp(o->mem, "memfd:", 6)) {
		fd = memfd_create(o->mem + 6, 0);
		if (fd < 0)
			return lmig_err_errno(errno, "memfd_create %s", o->mem + 6);
		snprintf(st->path, sizeof(st->path), "/proc/%d/fd/%d", (int)getpid(), fd);
		st->created = true;
	} else {
		fd = open(o->mem, O_RDWR | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			fd = open(o->mem, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			st->created = fd >= 0;
		}
		if (fd < 0)
			return lmig_err_errno(errno, "cannot open %s", o->mem);
		snprintf(st->path, sizeof(st->path), "%s", o->mem);
	}
	if (fstat(fd, &sb)) {
		lmig_err_errno(errno, "cannot stat %s", o->mem);
		goto err;
	}
	if (!S_ISREG(sb.st_mode)) {
		lmig_err("%s is not a regular file, shm file or memfd", o->mem);
		goto err;
	}
	/* Grow a short object; never cut one that is longer. */
	if ((uint64_t)sb.st_size < o->size && ftruncate(fd, (off_t)o->size)) {
		lmig_err_errno(errno, "cannot size %s to %llu bytes", o->mem,
			       (unsigned long long)o->size);
		goto err;
	}
	return fd;
err:
	close(fd);
	if (st->created && strncmp(o->mem, "memfd:", 6))
		unlink(o->mem);
	return -1;
}

static void show(const struct dirty_opts *o, const struct dirty_stats *st, double elapsed,
		 bool final)
{
	if (o->progress)
		o->progress(st, elapsed, final);
}

/* One run of the workload: what its steps share. */
struct run {
	const struct dirty_opts *o;
	struct dirty_stats *st;
	uint8_t *map;
	int fd, uffd;
	uint64_t npages, *gen;		/* gen[p]: the writes page p has had */
	uint64_t rng;
	struct compute_thread *cth;
	unsigned int ncth;		/* compute threads running */
	bool disk;			/* the disk writer runs */
	double next_sample;
};

/* Map the object (or anonymous memory) and register it for --uffd. */
static int run_map(struct run *r)
{
	const struct dirty_opts *o = r->o;

	if (!strcmp(o->mem, "anon")) {
		r->map = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		if (r->map != MAP_FAILED)
			snprintf(r->st->path, sizeof(r->st->path), "anon:%lx-%lx",
				 (unsigned long)r->map, (unsigned long)(r->map + o->size));
		r->st->created = true;
	} else {
		r->fd = open_object(o, r->st);
		if (r->fd < 0)
			return -1;
		r->map = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	}
	r->gen = calloc(r->npages, sizeof(*r->gen));
	if (r->map == MAP_FAILED || !r->gen) {
		lmig_err_errno(errno, "cannot map %llu bytes of %s", (unsigned long long)o->size,
			       o->mem);
		return -1;
	}
	if (o->uffd) {
		r->uffd = uffd_register(r->map, o->size, r->fd >= 0);
		if (r->uffd < 0)
			return -1;
	}
	return 0;
}

static void run_write(struct run *r, uint64_t p)
{
	if (churns(r->o->pattern))
		churn_page(r->map, r->fd, r->o->pattern, p, r->gen[p]++, &r->rng);
	else
		write_page(r->map + p * LMIG_PAGE_SIZE, p, r->gen[p]++, r->o->pattern, &r->rng);
}

static void run_fill(struct run *r)
{
	double t0 = now_s();

	/* One call maps it all: far cheaper than a write fault per page. */
	madvise(r->map, r->o->size, MADV_POPULATE_WRITE);
	for (uint64_t p = 0; p < r->npages && !stop_sig; p++)
		run_write(r, p);
	r->st->pages_filled = r->npages;
	r->st->fill_s = now_s() - t0;
}

/* The compute threads and the disk writer, if asked for. */
static int run_helpers(struct run *r)
{
	const struct dirty_opts *o = r->o;

	if (o->compute_threads) {
		r->cth = calloc(o->compute_threads, sizeof(*r->cth));
		if (!r->cth) {
			lmig_err("out of memory");
			return -1;
		}
		atomic_store(&compute_stop, false);
		r->ncth = compute_start(r->cth, o->compute_threads);
		if (r->ncth < o->compute_threads)
			return -1;
	}
	if (o->disk_path) {
		if (dirty_disk_start(o->disk_path, o->disk_rate))
			return -1;
		r->disk = true;
	}
	return 0;
}

static void run_sample(struct run *r, double t)
{
	if (r->o->sample_fd >= 0 && t >= r->next_sample) {
		sample(r->o->sample_fd, r->st, r->cth, r->ncth);
		r->next_sample = t + r->o->sample_ms / 1000.0;
	}
}

/* The steady writes, until stopped or --duration is over; t0: their start. */
static void run_steady(struct run *r, double t0)
{
	const struct dirty_opts *o = r->o;
	/*
	 * With compute threads or a disk writer the process's CPU time is not
	 * the writer's: paced by it, the writer would write faster the more
	 * CPU the others use, and a CPU limit on it alone would seem useless.
	 */
	clockid_t pace_clock = o->compute_threads || o->disk_path ? CLOCK_THREAD_CPUTIME_ID :
				CLOCK_PROCESS_CPUTIME_ID;
	double c0 = clock_s(pace_clock), last_show = t0;

	while (!stop_sig) {
		double t = now_s(), clock = o->pace == PACE_CPU ? clock_s(pace_clock) - c0 : t - t0;
		double due = clock * (double)o->rate / LMIG_PAGE_SIZE - (double)r->st->pages_written;
		uint64_t n;

		if (o->duration > 0 && t - t0 >= o->duration)
			break;
		run_sample(r, t);
		if (t - last_show >= 0.5) {
			show(o, r->st, t - t0, false);
			last_show = t;
		}
		if (due < 1) {
			if (o->pace == PACE_WALL)
				nanosleep(&(struct timespec){ .tv_nsec = TICK_NS }, NULL);
			continue;	/* CPU pace: spin, burning the CPU time that paces us */
		}
		n = due > MAX_BURST ? MAX_BURST : (uint64_t)due;
		for (uint64_t i = 0; i < n; i++)
			run_write(r, xorshift64(&r->rng) % r->npages);
		r->st->pages_written += n;
	}
}

/* Without a rate the object just stays mapped until we are told to stop. */
static void run_hold(struct run *r, double t0)
{
	while (!stop_sig && !(r->o->duration > 0 && now_s() - t0 >= r->o->duration)) {
		run_sample(r, now_s());
		nanosleep(&(struct timespec){ .tv_nsec = 50 * TICK_NS }, NULL);
	}
}

static void run_free(struct run *r)
{
	if (r->disk)
		dirty_disk_stop(r->st);
	if (r->ncth)
		compute_stop_all(r->cth, r->ncth, r->st);
	free(r->cth);
	if (r->uffd >= 0)
		close(r->uffd);
	if (r->map != MAP_FAILED)
		munmap(r->map, r->o->size);
	free(r->gen);
	if (r->fd >= 0)
		close(r->fd);
}

int dirty_run(const struct dirty_opts *o, struct dirty_stats *st)
{
	struct sigaction sa = { .sa_handler = on_stop };
	struct run r = {
		.o = o, .st = st, .map = MAP_FAILED, .fd = -1, .uffd = -1,
		.npages = o->size / LMIG_PAGE_SIZE, .rng = o->seed ? o->seed : 0x6c6d6967ULL,
	};
	int ret = -1;
	double t0;

	*st = (struct dirty_stats){ .size = o->size };
	if (run_map(&r))
		goto out;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (o->fill > 0 || (o->fill < 0 && st->created))
		run_fill(&r);
	if (run_helpers(&r))
		goto out;
	if (o->ready_fd >= 0 && !stop_sig) {
		dprintf(o->ready_fd, "%s\n", st->path);
		close(o->ready_fd);
	}
	t0 = now_s();
	if (o->rate)
		run_steady(&r, t0);
	else
		run_hold(&r, t0);
	st->write_s = now_s() - t0;
	if (o->sample_fd >= 0)
		sample(o->sample_fd, st, r.cth, r.ncth);
	if (r.ncth) {
		compute_stop_all(r.cth, r.ncth, st);
		r.ncth = 0;
	}
	st->cpu_s = cpu_s();
	show(o, st, st->write_s, true);
	ret = 0;
	if (r.disk) {
		r.disk = false;
		ret = dirty_disk_stop(st);
	}
out:
	run_free(&r);
	return ret;
}

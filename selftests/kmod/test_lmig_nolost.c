// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig.ko loses no write: whatever way a page of the tracked object
 * changes between two harvests, a harvest reports it.
 *
 * Each case keeps a shadow image of the attached range: the whole range
 * is read right after the attach, and after every harvest the pages it
 * reported are read again.  Writers run while the case harvests many
 * times; then they stop, one last harvest runs, and the shadow must equal
 * the object byte for byte (the first differing page is reported).  A
 * harvest that says it is unsure (LMIG_HARVEST_OUT_RESCAN) must set every
 * bit, and makes the shadow read the whole range.
 *
 * The writers change pages in every way: to zero, from zero, back to an
 * earlier content (A, B, A again), random data, one word, through
 * mappings that live across harvests and mappings that come and go
 * between two of them, from several threads and processes.
 *
 * Runs as root on a kernel with lmig.ko loaded (selftests/vm/kmod.sh in
 * the VM).  $LMIG_NOLOST_SECS sets how long each case writes (3 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/lmig.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"
#include "kmod/kfile.h"

#define PAGE		4096UL
#define WORDS(n)	(((n) + 63) / 64)

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

/* ---- the shadow image ---- */

struct shadow {
	const char *name;
	int dev, fd;
	unsigned long first, n;		/* the attached range, in pages */
	uint8_t *img;
	uint64_t *bm;
	unsigned long harvests, rescans, recopied, notified, presence;
	unsigned long bad_rescans;	/* unsure, yet not every bit set */
};

static int shadow_read(struct shadow *s, unsigned long i, unsigned long count)
{
	size_t len = count * PAGE;
	ssize_t r = pread(s->fd, s->img + i * PAGE, len, (s->first + i) * PAGE);

	return r == (ssize_t)len ? 0 : -1;
}

/* Attach a session to [first, first + n) of fd and copy the range: 0 or an errno. */
static int shadow_attach(struct shadow *s, const char *name, int fd, unsigned long first,
			 unsigned long n)
{
	struct lmig_attach a = { .fd = fd, .offset = first * PAGE, .length = n * PAGE };

	memset(s, 0, sizeof(*s));
	s->name = name;
	s->fd = fd;
	s->first = first;
	s->n = n;
	s->dev = open(LMIG_DEVICE, O_RDWR | O_CLOEXEC);
	if (s->dev < 0)
		return errno;
	s->img = malloc(n * PAGE);
	s->bm = calloc(WORDS(n), 8);
	if (!s->img || !s->bm)
		return ENOMEM;
	if (ioctl(s->dev, LMIG_IOC_ATTACH, &a))
		return errno;
	return shadow_read(s, 0, n) ? EIO : 0;
}

/* One harvest, and the reported pages read into the shadow: 0 or an errno. */
static int shadow_harvest(struct shadow *s)
{
	struct lmig_harvest h = { .bitmap = (uintptr_t)s->bm, .bitmap_bits = s->n };
	bool all = false;

	if (ioctl(s->dev, LMIG_IOC_HARVEST, &h) < 0)
		return errno;
	s->harvests++;
	s->notified += h.notified;
	s->presence += h.presence;
	all = h.flags & LMIG_HARVEST_OUT_RESCAN;
	if (all) {
		unsigned long set = 0;

		for (unsigned long i = 0; i < WORDS(s->n); i++)
			set += __builtin_popcountll(s->bm[i]);
		if (set != s->n || h.dirty != s->n)
			s->bad_rescans++;
		s->rescans++;
		s->recopied += s->n;
		return shadow_read(s, 0, s->n) ? EIO : 0;
	}
	for (unsigned long i = 0; i < s->n; i++) {
		unsigned long j = i;

		if (!(s->bm[i / 64] >> (i % 64) & 1))
			continue;
		while (j + 1 < s->n && s->bm[(j + 1) / 64] >> ((j + 1) % 64) & 1)
			j++;
		if (shadow_read(s, i, j - i + 1))
			return EIO;
		s->recopied += j - i + 1;
		i = j;
	}
	return 0;
}

/*
 * The final harvest (writers stopped) and the comparison: the number of
 * pages whose shadow differs from the object, the first one logged.
 */
static long shadow_check(struct __test_metadata *_metadata, struct shadow *s)
{
	uint8_t *now = malloc(s->n * PAGE);
	long differ = 0, first = -1;
	int err = shadow_harvest(s);

	if (err || !now || pread(s->fd, now, s->n * PAGE, s->first * PAGE) != (ssize_t)(s->n * PAGE)) {
		TH_LOG("%s: final harvest or read failed: %s", s->name, strerror(err ?: errno));
		free(now);
		return -1;
	}
	for (unsigned long i = 0; i < s->n; i++) {
		if (!memcmp(now + i * PAGE, s->img + i * PAGE, PAGE))
			continue;
		if (first < 0)
			first = i;
		differ++;
	}
	TH_LOG("%s: %lu pages, %lu harvests (%lu unsure: whole range read), %lu pages re-read, "
	       "%lu notified, %lu presence; %ld pages differ%s", s->name, s->n, s->harvests,
	       s->rescans, s->recopied, s->notified, s->presence, differ,
	       differ ? "" : " (shadow equals object)");
	if (first >= 0) {
		size_t b = 0;

		while (now[first * PAGE + b] == s->img[first * PAGE + b])
			b++;
		TH_LOG("%s: first differing page %ld (object page %lu), byte %zu: object 0x%02x, "
		       "shadow 0x%02x", s->name, first, s->first + first, b, now[first * PAGE + b],
		       s->img[first * PAGE + b]);
	}
	free(now);
	EXPECT_EQ(0, s->bad_rescans) TH_LOG("%s: unsure harvests that did not set every bit",
					    s->name);
	return differ;
}

static void shadow_close(struct shadow *s)
{
	if (s->dev >= 0)
		close(s->dev);
	free(s->img);
	free(s->bm);
	s->img = NULL;
	s->bm = NULL;
	s->dev = -1;
}

/* ---- what the writers write ---- */

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Pattern A or B of a page: the same bytes every time it is written. */
static void pattern(uint64_t *w, unsigned long page, uint64_t tag)
{
	for (unsigned long i = 0; i < PAGE / 8; i++)
		w[i] = (page * 0x9e3779b97f4a7c15ULL) ^ (tag << 56) ^ i;
}

/*
 * Change one page in one of the ways that matter: to zero, to pattern A
 * or B (so A, B, A happens: a page back to an earlier content), random
 * data, one word.  page names the content, not the address.
 */
static void scribble(uint8_t *pg, unsigned long page, uint64_t *x)
{
	uint64_t *w = (uint64_t *)pg;

	switch (rnd(x) % 5) {
	case 0:
		memset(pg, 0, PAGE);
		break;
	case 1:
		pattern(w, page, 0xa);
		break;
	case 2:
		pattern(w, page, 0xb);
		break;
	case 3:
		for (unsigned long i = 0; i < PAGE / 8; i++)
			w[i] = rnd(x);
		break;
	default:
		w[rnd(x) % (PAGE / 8)] = rnd(x) | 1;
		break;
	}
}

/* Shared between the case and its writers. */
struct ctl {
	volatile int stop;
	uint64_t writes, maps, ops, faults, other;
	int err;		/* errno of a writer's failed call */
	int line;		/* and where */
};

/* A writer's failure: where and why, for the case to log; then exit with code. */
#define WFAIL(c, code) do { (c)->err = errno; (c)->line = __LINE__; _exit(code); } while (0)

#define COUNT(c, f, v) __atomic_fetch_add(&(c)->f, (v), __ATOMIC_RELAXED)

static struct ctl *ctl_new(void)
{
	struct ctl *c = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return c == MAP_FAILED ? NULL : c;
}

/* A memfd of n pages, every page in the page cache, a quarter of them zero. */
static int object(unsigned long n)
{
	int fd = memfd_create("lmig-nolost", MFD_CLOEXEC);
	uint64_t buf[PAGE / 8];

	if (fd < 0 || ftruncate(fd, n * PAGE))
		return -1;
	for (unsigned long p = 0; p < n; p++) {
		if (p % 4)
			pattern(buf, p, 0xa);
		else
			memset(buf, 0, PAGE);
		if (pwrite(fd, buf, PAGE, p * PAGE) != PAGE)
			return -1;
	}
	return fd;
}

static uint8_t *map(int fd, unsigned long first, unsigned long n)
{
	void *m = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, first * PAGE);

	return m == MAP_FAILED ? NULL : m;
}

/* A writer process: fn(arg) in a child that dies with the case. */
static pid_t spawn(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(arg);
		_exit(0);
	}
	return pid;
}

/* 0 when the process exited 0; else its exit status, or 128 + the signal that killed it. */
static int reap(pid_t pid)
{
	int st;

	if (pid <= 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static unsigned int case_secs(void)
{
	const char *e = getenv("LMIG_NOLOST_SECS");

	return e && atoi(e) > 0 ? atoi(e) : 3;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/*
 * Harvest every session until the case's time is up, calling tick(arg)
 * between rounds if given; then tell the writers to stop.  Rounds follow
 * each other after 0.2 to 2 ms, and every eighth after 10 to 40 ms: a gap
 * in which mappings, children and threads come and go unseen by any
 * harvest.  0 or the first harvest's errno.
 */
static int harvest_while(struct shadow **s, int ns, struct ctl *c, void (*tick)(void *),
			 void *arg)
{
	double end = now_s() + case_secs();
	uint64_t x = 0x2545f4914f6cdd1dULL ^ getpid();
	unsigned long round = 0;
	int err = 0;

	while (!err && now_s() < end) {
		for (int i = 0; i < ns && !err; i++)
			if (i == 0 || round % (i + 1) == 0)	/* sessions at different rates */
				err = shadow_harvest(s[i]);
		if (tick)
			tick(arg);
		if (round % 8 == 7)
			usleep(10000 + rnd(&x) % 30000);
		else
			usleep(200 + rnd(&x) % 1800);
		round++;
	}
	c->stop = 1;
	return err;
}

static void log_ctl(struct __test_metadata *_metadata, const char *what, struct ctl *c)
{
	TH_LOG("%s: %llu page writes, %llu mappings made, %llu other operations, %llu faults",
	       what, (unsigned long long)c->writes, (unsigned long long)c->maps,
	       (unsigned long long)c->ops, (unsigned long long)c->faults);
	if (c->line)
		TH_LOG("a writer failed at line %d: %s", c->line, strerror(c->err));
}

/* A counter of /proc/vmstat, or /proc/meminfo's "Name:" line in kB; -1 if absent. */
static long long kstat(const char *file, const char *name)
{
	static char buf[16384];
	char key[64], *p;

	if (kfile_read(file, buf, sizeof(buf)))
		return -1;
	snprintf(key, sizeof(key), "\n%s%s", name, strstr(file, "meminfo") ? ":" : " ");
	p = strstr(buf, key);
	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* Run a shell command quietly; its exit status. */
static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- writers ---- */

struct wr {
	struct ctl *c;
	int fd;
	unsigned long n;	/* object pages */
	unsigned long win;	/* pages per short-lived mapping */
	uint8_t *m;		/* a long-lived mapping of the whole object */
	unsigned long span;	/* long_map() writes pages [0, span), or all if 0 */
	unsigned int pause;	/* short_maps() waits this many µs more after each */
	uint64_t seed;
};

/* Map win pages at a varying offset, write a few, unmap, pause briefly; until stop. */
static void short_maps(struct wr *w)
{
	uint64_t x = w->seed ^ getpid() ^ (uintptr_t)&x;

	while (!w->c->stop) {
		unsigned long off = rnd(&x) % (w->n - w->win + 1), k = 1 + rnd(&x) % 8;
		uint8_t *m = map(w->fd, off, w->win);

		if (!m)
			WFAIL(w->c, 2);
		COUNT(w->c, maps, 1);
		for (unsigned long i = 0; i < k; i++) {
			unsigned long p = rnd(&x) % w->win;

			scribble(m + p * PAGE, off + p, &x);
		}
		COUNT(w->c, writes, k);
		munmap(m, w->win * PAGE);
		usleep(w->pause + rnd(&x) % 300);
	}
}

static void short_maps_proc(void *arg)
{
	short_maps(arg);
}

static void *short_maps_thread(void *arg)
{
	short_maps(arg);
	return NULL;
}

/*
 * Write random pages through w->m, a few every 0.5 to 1.5 ms; until stop.
 * Not faster: a page rewritten (and reported) after a lost write would
 * hide the loss from the final comparison.
 */
static void long_map(struct wr *w)
{
	uint64_t x = w->seed ^ getpid() ^ (uintptr_t)&x;
	unsigned long span = w->span ?: w->n;

	while (!w->c->stop) {
		for (int i = 0; i < 4; i++) {
			unsigned long p = rnd(&x) % span;

			scribble(w->m + p * PAGE, p, &x);
		}
		COUNT(w->c, writes, 4);
		usleep(500 + rnd(&x) % 1000);
	}
}

static void *long_map_thread(void *arg)
{
	long_map(arg);
	return NULL;
}

static void long_map_proc(void *arg)
{
	struct wr *w = arg;

	w->m = map(w->fd, 0, w->n);
	if (!w->m)
		WFAIL(w->c, 2);
	long_map(w);
}

FIXTURE(nolost) {
	struct shadow s;
	struct ctl *c;
	int fd;
	char undo[512];		/* a shell command that undoes the case's set-up */
	char thp[32];		/* shmem_enabled to put back */
};

FIXTURE_SETUP(nolost)
{
	self->s.dev = -1;
	self->fd = -1;
	/* The harness runs the case after a set-up SKIP: self->c stays NULL then. */
	if (access(LMIG_DEVICE, F_OK))
		SKIP(return, "%s: %s (module not loaded?)", LMIG_DEVICE, strerror(errno));
	self->c = ctl_new();
	ASSERT_NE(NULL, self->c);
}

#define THP_KNOB	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"

FIXTURE_TEARDOWN(nolost)
{
	/* Writers left by a failed assertion stop, and are waited for, first. */
	if (self->c)
		self->c->stop = 1;
	while (waitpid(-1, NULL, 0) > 0)
		;
	shadow_close(&self->s);
	if (self->fd >= 0)
		close(self->fd);
	if (self->thp[0])
		kfile_write(THP_KNOB, self->thp, 0);
	if (self->undo[0])
		run("%s", self->undo);
}

/* Attach to the whole of a fresh object of n pages. */
#define SETUP_OBJECT(n) do { \
	self->fd = object(n); \
	ASSERT_LE(0, self->fd); \
	ASSERT_EQ(0, shadow_attach(&self->s, "object", self->fd, 0, (n))); \
} while (0)

#define NPAGES	512

/* 1. Two processes map 32 pages at varying offsets, write, unmap, sleep. */
TEST_F_TIMEOUT(nolost, short_lived_maps, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .win = 32, .seed = 1 };
	struct shadow *s = &self->s;
	pid_t a, b;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(short_maps_proc, &w);
	w.seed = 2;
	b = spawn(short_maps_proc, &w);
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	EXPECT_EQ(0, reap(b));
	log_ctl(_metadata, "short-lived mappings", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 2. The writer's main thread exits; its threads write on. */
static void leader_exits(void *arg)
{
	struct wr *w = arg, lw = *w, sw = *w;
	pthread_t t1, t2;

	lw.m = map(w->fd, 0, w->n);
	if (!lw.m)
		WFAIL(w->c, 2);
	sw.seed = 7;
	if (pthread_create(&t1, NULL, long_map_thread, &lw) ||
	    pthread_create(&t2, NULL, short_maps_thread, &sw))
		WFAIL(w->c, 2);
	/* The process lives on in its threads; its pid's task has no mm. */
	pthread_exit(NULL);
}

TEST_F_TIMEOUT(nolost, exited_leader, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .win = 32, .seed = 3 };
	struct shadow *s = &self->s;
	char path[64], st[4096], *state;
	pid_t a;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(leader_exits, &w);
	ASSERT_LT(0, a);
	/* The leader is a zombie while its threads write. */
	snprintf(path, sizeof(path), "/proc/%d/status", a);
	for (int i = 0; i < 200; i++) {
		ASSERT_EQ(0, kfile_read(path, st, sizeof(st)));
		state = strstr(st, "State:");
		ASSERT_NE(NULL, state);
		state[strcspn(state, "\n")] = 0;
		if (strchr(state, 'Z'))
			break;
		usleep(10000);
	}
	EXPECT_NE(NULL, strchr(state, 'Z'));
	TH_LOG("writer leader %s while its threads run", state);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	log_ctl(_metadata, "exited leader", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/*
 * 3. A process maps 16 pages and forks a child that writes through the
 * inherited mapping and exits; it unmaps them and forks one that maps 16
 * pages itself, writes and exits.  No mapping of the whole object
 * anywhere: a child seen at a harvest would report it all when it exits
 * (a documented superset) and hide what an unseen one lost.  Meanwhile
 * a second thread of the process keeps making short-lived mappings of 8
 * pages and publishes the current one: the first child writes through it
 * too, so forks happen while a mapping made an instant before is new.
 */
static uint8_t *volatile fork_win;	/* the second thread's mapping, or NULL */

static void *fork_window_thread(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ (uintptr_t)&x;

	while (!w->c->stop) {
		unsigned long off = rnd(&x) % (w->n - 8);
		uint8_t *m = map(w->fd, off, 8);

		if (!m)
			WFAIL(w->c, 2);
		COUNT(w->c, maps, 1);
		scribble(m + (rnd(&x) % 8) * PAGE, off, &x);
		COUNT(w->c, writes, 1);
		fork_win = m;
		usleep(rnd(&x) % 300);
		/* Cleared before the unmap: a child forked after it sees NULL. */
		fork_win = NULL;
		munmap(m, 8 * PAGE);
	}
	return NULL;
}

static void forker(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid();
	pthread_t t;

	if (pthread_create(&t, NULL, fork_window_thread, w))
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long off = rnd(&x) % (w->n - 16);
		uint8_t *m = map(w->fd, off, 16);
		pid_t k;

		if (!m)
			WFAIL(w->c, 2);
		COUNT(w->c, maps, 1);
		k = fork();
		if (k == 0) {
			uint8_t *win = fork_win;
			int n = 1 + rnd(&x) % 8;

			for (int i = 0; i < n; i++) {
				unsigned long p = rnd(&x) % 16;

				scribble(m + p * PAGE, off + p, &x);
			}
			if (win)
				scribble(win + (rnd(&x) % 8) * PAGE, 0, &x);
			COUNT(w->c, writes, n + !!win);
			COUNT(w->c, other, !!win);
			_exit(0);
		}
		if (reap(k))
			WFAIL(w->c, 3);
		munmap(m, 16 * PAGE);
		rnd(&x);
		off = rnd(&x) % (w->n - 16);
		k = fork();
		if (k == 0) {
			uint8_t *own = map(w->fd, off, 16);
			int n = 1 + rnd(&x) % 8;

			if (!own)
				WFAIL(w->c, 2);
			COUNT(w->c, maps, 1);
			for (int i = 0; i < n; i++) {
				unsigned long p = rnd(&x) % 16;

				scribble(own + p * PAGE, off + p, &x);
			}
			COUNT(w->c, writes, n);
			_exit(0);	/* unmapped by the exit */
		}
		if (reap(k))
			WFAIL(w->c, 3);
		rnd(&x);
		COUNT(w->c, ops, 2);
		usleep(rnd(&x) % 500);
	}
	pthread_join(t, NULL);
}

TEST_F_TIMEOUT(nolost, forked_children, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .seed = 4 };
	struct shadow *s = &self->s;
	pid_t a;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(forker, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	log_ctl(_metadata, "forked children (ops = children, other = children that wrote through "
		"the other thread's new mapping)", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 4. A mapping moved between two places, grown and shrunk while written. */
static void mremapper(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid();
	const unsigned long slot = 128 * PAGE;
	uint8_t *area = mmap(NULL, 2 * slot, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long off = 0, len = 64;
	uint8_t *m;

	if (area == MAP_FAILED)
		WFAIL(w->c, 2);
	m = mmap(area, len * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd, 0);
	if (m == MAP_FAILED)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		uint8_t *to;

		for (int i = 0; i < 4; i++) {
			unsigned long p = rnd(&x) % len;

			scribble(m + p * PAGE, off + p, &x);
		}
		COUNT(w->c, writes, 4);
		/* The mapping is always at the start of one slot: moves go to the other. */
		to = m == area ? area + slot : area;
		switch (rnd(&x) % 4) {
		case 0:		/* move to the other slot */
			m = mremap(m, len * PAGE, len * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
			break;
		case 1:		/* grow in place if there is room, else grow into the other slot */
			if (len < 96 && off + len + 32 <= w->n) {
				void *g = mremap(m, len * PAGE, (len + 32) * PAGE, 0);

				if (g == MAP_FAILED)
					g = mremap(m, len * PAGE, (len + 32) * PAGE,
						   MREMAP_MAYMOVE | MREMAP_FIXED, to);
				m = g;
				len += 32;
			}
			break;
		case 2:		/* shrink in place */
			if (len > 32) {
				m = mremap(m, len * PAGE, (len - 32) * PAGE, 0);
				len -= 32;
			}
			break;
		default:	/* unmap, map another part at the other slot */
			munmap(m, len * PAGE);
			off = rnd(&x) % (w->n - len);
			m = mmap(to, len * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				 w->fd, off * PAGE);
			COUNT(w->c, maps, 1);
			break;
		}
		if (m == MAP_FAILED)
			WFAIL(w->c, 4);
		COUNT(w->c, ops, 1);
		usleep(rnd(&x) % 300);
	}
}

TEST_F_TIMEOUT(nolost, mremap, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .seed = 5 };
	struct shadow *s = &self->s;
	pid_t a;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(mremapper, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	log_ctl(_metadata, "mremap (ops = moves, grows, shrinks, remaps)", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 5. One thread writes a range while another unmaps and maps it again. */
static __thread sigjmp_buf race_jb;
static __thread volatile int race_armed;

static void race_fault(int sig)
{
	if (race_armed)
		siglongjmp(race_jb, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

struct race {
	struct wr *w;
	uint8_t *r;		/* the range both threads use: 16 pages */
	volatile unsigned long off;	/* the object page mapped at r */
};

static void *race_writer(void *arg)
{
	struct race *ra = arg;
	uint64_t x = ra->w->seed ^ (uintptr_t)&x;

	while (!ra->w->c->stop) {
		unsigned long p = rnd(&x) % 16;

		if (sigsetjmp(race_jb, 1)) {
			race_armed = 0;
			COUNT(ra->w->c, faults, 1);
			continue;
		}
		race_armed = 1;
		/* The offset may change under us: content keyed by address only. */
		scribble(ra->r + p * PAGE, p, &x);
		race_armed = 0;
		COUNT(ra->w->c, writes, 1);
	}
	return NULL;
}

static void unmapper(void *arg)
{
	struct wr *w = arg;
	struct race ra = { .w = w };
	uint64_t x = w->seed ^ getpid();
	struct sigaction sa = { .sa_handler = race_fault, .sa_flags = SA_NODEFER };
	pthread_t t;

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	ra.r = map(w->fd, 0, 16);
	if (!ra.r || pthread_create(&t, NULL, race_writer, &ra))
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long off = (rnd(&x) % 4) * 16;
		bool hole = rnd(&x) & 1;

		/* No allocation in this process meanwhile: nothing else can take the hole. */
		if (hole) {
			munmap(ra.r, 16 * PAGE);
			usleep(rnd(&x) % 50);
		}
		if (mmap(ra.r, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd,
			 off * PAGE) != ra.r)
			WFAIL(w->c, 4);
		ra.off = off;
		COUNT(w->c, maps, 1);
		COUNT(w->c, ops, hole);
		usleep(rnd(&x) % 100);
	}
	pthread_join(t, NULL);
}

TEST_F_TIMEOUT(nolost, munmap_race, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = 64, .seed = 6 };
	struct shadow *s = &self->s;
	pid_t a;

	SETUP_OBJECT(64);
	w.fd = self->fd;
	a = spawn(unmapper, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	log_ctl(_metadata, "munmap race (maps = remaps, ops = with a hole, faults = writes "
		"that hit the hole)", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 6. Two sessions on one object: different, overlapping ranges, each its own shadow. */
TEST_F_TIMEOUT(nolost, two_sessions, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .win = 32, .seed = 8 };
	struct shadow b, *s[2] = { &self->s, &b };
	pid_t p1, p2;

	self->fd = object(NPAGES);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, shadow_attach(&self->s, "session A (pages 0-383)", self->fd, 0, 384));
	ASSERT_EQ(0, shadow_attach(&b, "session B (pages 128-511)", self->fd, 128, 384));
	w.fd = self->fd;
	/*
	 * No long-lived mapping of the whole object: each session's harvest
	 * is an invalidation the other's notifiers report (a documented
	 * superset), which would make the other re-read everything.
	 */
	p1 = spawn(short_maps_proc, &w);
	w.seed = 9;
	p2 = spawn(short_maps_proc, &w);
	ASSERT_LT(0, p1);
	ASSERT_LT(0, p2);
	EXPECT_EQ(0, harvest_while(s, 2, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(p1));
	EXPECT_EQ(0, reap(p2));
	log_ctl(_metadata, "two sessions", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, &self->s));
	EXPECT_EQ(0, shadow_check(_metadata, &b));
	shadow_close(&b);
}

/* 7. The writer runs as pid 1 of its own pid namespace. */
static void in_pidns(void *arg)
{
	struct wr *w = arg;
	pid_t g;

	if (unshare(CLONE_NEWPID))
		WFAIL(w->c, 5);
	g = fork();
	if (g == 0) {
		struct wr lw = *w;
		pthread_t t;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getpid() != 1)
			WFAIL(w->c, 6);
		lw.m = map(w->fd, 0, w->n);
		lw.seed = 11;
		lw.span = 64;	/* the rest is left to the short-lived mappings */
		if (!lw.m || pthread_create(&t, NULL, long_map_thread, &lw))
			WFAIL(w->c, 2);
		short_maps(w);
		pthread_join(t, NULL);
		_exit(0);
	}
	_exit(reap(g) ? 3 : 0);
}

TEST_F_TIMEOUT(nolost, pid_namespace, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .win = 32, .seed = 10 };
	struct shadow *s = &self->s;
	pid_t a;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(in_pidns, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a)) TH_LOG("exit 5: unshare(CLONE_NEWPID) refused, 6: not pid 1");
	log_ctl(_metadata, "pid namespace", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 8. MADV_PAGEOUT to zram swap (a loop device on a file if zram cannot be had). */
static void pager(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid();
	uint8_t *m = map(w->fd, 0, w->n);

	if (!m)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long off = rnd(&x) % (w->n - 64);
		uint8_t *sm;

		for (int i = 0; i < 8; i++) {
			unsigned long p = rnd(&x) % w->n;

			scribble(m + p * PAGE, p, &x);
		}
		COUNT(w->c, writes, 8);
		madvise(m + off * PAGE, 64 * PAGE, MADV_PAGEOUT);
		/* A short-lived mapping: faults pages back in, writes, pages out, goes. */
		off = rnd(&x) % (w->n - 16);
		sm = map(w->fd, off, 16);
		if (!sm)
			WFAIL(w->c, 2);
		scribble(sm + (rnd(&x) % 16) * PAGE, 0, &x);
		madvise(sm, 16 * PAGE, MADV_PAGEOUT);
		munmap(sm, 16 * PAGE);
		COUNT(w->c, maps, 1);
		COUNT(w->c, writes, 1);
		COUNT(w->c, ops, 2);
		usleep(rnd(&x) % 500);
	}
}

/* Swap on: "zram" or "loop" in *how, or -1 with the reason in why. */
static int swap_on(char *dev, size_t devlen, char *why, size_t whylen)
{
	char path[128];

	if (run("modprobe zram num_devices=1 >/dev/null 2>&1") == 0 &&
	    !access("/sys/block/zram0/disksize", W_OK)) {
		kfile_write("/sys/block/zram0/reset", "1", 0);
		if (!kfile_write("/sys/block/zram0/disksize", "64M", 0) &&
		    !run("mkswap /dev/zram0 >/dev/null 2>&1 && swapon /dev/zram0 2>/dev/null")) {
			snprintf(dev, devlen, "/dev/zram0");
			return 0;
		}
	}
	/* A swap file on tmpfs is refused: put it behind a loop device. */
	snprintf(path, sizeof(path), "/tmp/lmig-nolost-swap.%d", getpid());
	if (run("modprobe loop >/dev/null 2>&1; truncate -s 64M %s && "
		"d=$(losetup -f --show %s) && mkswap $d >/dev/null 2>&1 && swapon $d && "
		"echo $d > %s.dev", path, path, path) == 0) {
		char f[160];

		snprintf(f, sizeof(f), "%s.dev", path);
		if (!kfile_read(f, dev, devlen)) {
			dev[strcspn(dev, "\n")] = 0;
			unlink(f);
			return 0;
		}
	}
	snprintf(why, whylen, "neither zram nor a loop device gave swap (modprobe zram, "
		 "mkswap, swapon failed)");
	return -1;
}

TEST_F_TIMEOUT(nolost, pageout_swap, 120)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .seed = 12 };
	struct shadow *s = &self->s;
	char dev[64], why[160];
	long long out0, in0;
	pid_t a;

	if (swap_on(dev, sizeof(dev), why, sizeof(why)))
		SKIP(return, "%s", why);
	if (!strcmp(dev, "/dev/zram0"))
		snprintf(self->undo, sizeof(self->undo),
			 "swapoff /dev/zram0; echo 1 > /sys/block/zram0/reset");
	else
		snprintf(self->undo, sizeof(self->undo),
			 "swapoff %s; losetup -d %s; rm -f /tmp/lmig-nolost-swap.%d", dev, dev,
			 getpid());
	out0 = kstat("/proc/vmstat", "pswpout");
	in0 = kstat("/proc/vmstat", "pswpin");
	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(pager, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	log_ctl(_metadata, "MADV_PAGEOUT (ops = pageouts)", self->c);
	TH_LOG("swap on %s: %lld pages swapped out, %lld in", dev,
	       kstat("/proc/vmstat", "pswpout") - out0, kstat("/proc/vmstat", "pswpin") - in0);
	/* Otherwise the case proved nothing about swap. */
	EXPECT_LT(out0, kstat("/proc/vmstat", "pswpout"));
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 9. Compaction (and move_pages) migrates the pages while they are written. */
static void compactor(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid();
	uint8_t *m = map(w->fd, 0, w->n);
	int nodes = access("/sys/devices/system/node/node1", F_OK) ? 1 : 2;

	if (!m)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		void *pages[32];
		int node[32], status[32];

		if (kfile_write("/proc/sys/vm/compact_memory", "1", 0))
			WFAIL(w->c, 7);
		for (int i = 0; i < 32; i++) {
			unsigned long p = rnd(&x) % w->n;

			pages[i] = m + p * PAGE;
			if (i % 4 == 0)
				scribble(m + p * PAGE, p, &x);
			node[i] = nodes > 1 ? rnd(&x) % nodes : 0;
		}
		COUNT(w->c, writes, 8);
		syscall(SYS_move_pages, 0, 32, pages, node, status, 2 /* MPOL_MF_MOVE_ALL */);
		COUNT(w->c, ops, 1);
		usleep(rnd(&x) % 2000);
	}
}

TEST_F_TIMEOUT(nolost, compaction, 120)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .win = 32, .seed = 13 };
	struct shadow *s = &self->s;
	long long mig0 = kstat("/proc/vmstat", "pgmigrate_success");
	long long scan0 = kstat("/proc/vmstat", "compact_migrate_scanned");
	pid_t a, b, c;

	if (access("/proc/sys/vm/compact_memory", W_OK))
		SKIP(return, "/proc/sys/vm/compact_memory: %s", strerror(errno));
	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(compactor, &w);
	w.seed = 14;
	b = spawn(long_map_proc, &w);
	w.seed = 15;
	c = spawn(short_maps_proc, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a)) TH_LOG("exit 7: compact_memory not writable");
	EXPECT_EQ(0, reap(b));
	EXPECT_EQ(0, reap(c));
	log_ctl(_metadata, "compaction (ops = compactions and move_pages calls)", self->c);
	TH_LOG("NUMA nodes: %s; pages migrated %lld, scanned by compaction %lld",
	       access("/sys/devices/system/node/node1", F_OK) ? "1 (move_pages to node 0)" : "2+",
	       kstat("/proc/vmstat", "pgmigrate_success") - mig0,
	       kstat("/proc/vmstat", "compact_migrate_scanned") - scan0);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 10. THP shmem: 2 MiB folios, MADV_COLLAPSE, PMD splits by mprotect and partial munmap. */
#define THP_PAGES	2048
#define HUGE		(2UL << 20)

static uint8_t *map_aligned(int fd, unsigned long n)
{
	uint8_t *raw = mmap(NULL, n * PAGE + HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *m;

	if (raw == MAP_FAILED)
		return NULL;
	m = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	m = mmap(m, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	return m == MAP_FAILED ? NULL : m;
}

static void thp_writer(void *arg)
{
	struct wr *w = arg;

	w->m = map_aligned(w->fd, w->n);
	if (!w->m)
		WFAIL(w->c, 2);
	long_map(w);
}

/* Splits and collapses on a mapping of its own, writing through it in between. */
static void thp_splitter(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid();
	uint8_t *m = map_aligned(w->fd, w->n);

	if (!m)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long p = rnd(&x) % w->n, h = p & ~511UL;

		switch (rnd(&x) % 3) {
		case 0:
			if (mprotect(m + p * PAGE, PAGE, PROT_READ) ||
			    mprotect(m + p * PAGE, PAGE, PROT_READ | PROT_WRITE))
				WFAIL(w->c, 4);
			break;
		case 1:
			munmap(m + p * PAGE, PAGE);
			if (mmap(m + p * PAGE, PAGE, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, w->fd, p * PAGE) != m + p * PAGE)
				WFAIL(w->c, 4);
			COUNT(w->c, maps, 1);
			break;
		default:
			if (madvise(m + h * PAGE, HUGE, MADV_COLLAPSE))
				COUNT(w->c, faults, 1);	/* counted as refused */
			else
				COUNT(w->c, other, 1);
			break;
		}
		scribble(m + p * PAGE, p, &x);
		scribble(m + (h + rnd(&x) % 512) * PAGE, h, &x);
		COUNT(w->c, writes, 2);
		COUNT(w->c, ops, 1);
		usleep(2000 + rnd(&x) % 4000);
	}
}

TEST_F_TIMEOUT(nolost, thp, 120)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = THP_PAGES, .win = 512, .seed = 16 };
	struct shadow *s = &self->s;
	long long split0 = kstat("/proc/vmstat", "thp_split_pmd");
	char old[256], *sel;
	pid_t a, b, c;

	if (kfile_read(THP_KNOB, old, sizeof(old)) || !(sel = strchr(old, '[')))
		SKIP(return, "no %s", THP_KNOB);
	*strchr(sel, ']') = 0;
	snprintf(self->thp, sizeof(self->thp), "%s", sel + 1);
	ASSERT_EQ(0, kfile_write(THP_KNOB, "always", 0));
	SETUP_OBJECT(THP_PAGES);
	TH_LOG("ShmemHugePages %lld kB after filling 8 MiB",
	       kstat("/proc/meminfo", "ShmemHugePages"));
	w.fd = self->fd;
	/* Through a PMD mapping, into the first 2 MiB only: other folios stay clean for a while. */
	w.span = 512;
	a = spawn(thp_writer, &w);
	w.span = 0;
	w.seed = 17;
	b = spawn(thp_splitter, &w);
	w.seed = 18;
	w.pause = 3000;
	c = spawn(short_maps_proc, &w);		/* 512-page windows, unaligned */
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	EXPECT_EQ(0, reap(b));
	EXPECT_EQ(0, reap(c));
	log_ctl(_metadata, "THP (ops = mprotect splits, partial unmaps, collapses; faults = "
		"MADV_COLLAPSE refused)", self->c);
	TH_LOG("MADV_COLLAPSE succeeded %llu times; PMD splits %lld; ShmemHugePages %lld kB",
	       (unsigned long long)self->c->other, kstat("/proc/vmstat", "thp_split_pmd") - split0,
	       kstat("/proc/meminfo", "ShmemHugePages"));
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/* 11. O_DIRECT reads from a file on ext2 (on a loop device) into mapped pages. */
#define DBLOCKS	64

struct odirect {
	struct wr *w;
	char data[128];
};

static void odirect_reader(void *arg)
{
	struct odirect *o = arg;
	struct wr *w = o->w;
	uint64_t x = w->seed ^ getpid();
	int dfd = open(o->data, O_RDONLY | O_DIRECT);
	uint8_t *m = map(w->fd, 0, w->n);

	if (dfd < 0 || !m)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long p = rnd(&x) % (w->n - 16), b = rnd(&x) % (DBLOCKS - 16);
		unsigned long k = 1 + rnd(&x) % 16;

		if (rnd(&x) & 1) {
			if (pread(dfd, m + p * PAGE, k * PAGE, b * PAGE) != (ssize_t)(k * PAGE))
				WFAIL(w->c, 3);
		} else {
			/* Into a mapping that goes away right after. */
			uint8_t *sm = map(w->fd, p, k);

			if (!sm || pread(dfd, sm, k * PAGE, b * PAGE) != (ssize_t)(k * PAGE))
				WFAIL(w->c, 3);
			munmap(sm, k * PAGE);
			COUNT(w->c, maps, 1);
		}
		COUNT(w->c, writes, k);
		COUNT(w->c, ops, 1);
		usleep(rnd(&x) % 300);
	}
}

/* Rewrites the file's blocks (O_DIRECT too) so reads bring ever other contents. */
static void odirect_rewriter(void *arg)
{
	struct odirect *o = arg;
	uint64_t x = o->w->seed ^ getpid();
	int dfd = open(o->data, O_WRONLY | O_DIRECT);
	void *buf;

	if (dfd < 0 || posix_memalign(&buf, PAGE, PAGE))
		WFAIL(o->w->c, 2);
	while (!o->w->c->stop) {
		unsigned long b = rnd(&x) % DBLOCKS;

		scribble(buf, b, &x);
		if (pwrite(dfd, buf, PAGE, b * PAGE) != PAGE)
			WFAIL(o->w->c, 3);
		COUNT(o->w->c, other, 1);
		usleep(rnd(&x) % 500);
	}
}

TEST_F_TIMEOUT(nolost, odirect_read, 120)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .seed = 19 };
	struct shadow *s = &self->s;
	struct odirect o = { .w = &w };
	char img[96], mnt[96], dev[64] = "", f[128];
	uint64_t blk[PAGE / 8], x = 99;
	pid_t a, b, c;
	int dfd;

	snprintf(img, sizeof(img), "/tmp/lmig-nolost-ext2.%d", getpid());
	snprintf(mnt, sizeof(mnt), "/tmp/lmig-nolost-mnt.%d", getpid());
	snprintf(o.data, sizeof(o.data), "%s/data", mnt);
	if (run("modprobe loop >/dev/null 2>&1; modprobe ext4 >/dev/null 2>&1; "
		"truncate -s 16M %s && mkfs.ext2 -q -F %s >/dev/null 2>&1 && mkdir -p %s && "
		"losetup -f --show %s > %s.dev && mount -t ext2 $(cat %s.dev) %s",
		img, img, mnt, img, img, img, mnt)) {
		run("rm -f %s %s.dev; rmdir %s 2>/dev/null", img, img, mnt);
		SKIP(return, "cannot mount an ext2 image through a loop device (loop, ext4, "
		     "mkfs.ext2, losetup)");
	}
	snprintf(f, sizeof(f), "%s.dev", img);
	kfile_read(f, dev, sizeof(dev));
	dev[strcspn(dev, "\n")] = 0;
	unlink(f);
	snprintf(self->undo, sizeof(self->undo), "umount %s; losetup -d %s; rm -f %s; rmdir %s",
		 mnt, dev, img, mnt);
	dfd = open(o.data, O_CREAT | O_RDWR, 0600);
	ASSERT_LE(0, dfd);
	for (unsigned long i = 0; i < DBLOCKS; i++) {
		scribble((uint8_t *)blk, i, &x);
		ASSERT_EQ(PAGE, pwrite(dfd, blk, PAGE, i * PAGE));
	}
	ASSERT_EQ(0, fsync(dfd));
	close(dfd);
	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(odirect_reader, &o);
	w.seed = 20;
	b = spawn(odirect_rewriter, &o);
	w.seed = 24;
	c = spawn(odirect_reader, &o);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a)) TH_LOG("exit 2: O_DIRECT open or map, 3: short O_DIRECT read");
	EXPECT_EQ(0, reap(b));
	EXPECT_EQ(0, reap(c));
	log_ctl(_metadata, "O_DIRECT reads (ops = reads; other = O_DIRECT rewrites of the file)",
		self->c);
	TH_LOG("file on ext2 on %s", dev);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/*
 * 12. write(2), pwrite(2), pwritev(2), io_uring, copy_file_range(2) and
 * sendfile(2) writes to pages already present.
 */
static void syscall_writer(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid();
	uint8_t *buf = malloc(4 * PAGE);
	struct io_uring ring;
	bool uring = io_uring_queue_init(8, &ring, 0) == 0;
	int scratch = memfd_create("lmig-nolost-src", MFD_CLOEXEC);
	char path[64];
	int fd;

	/* Its own file description: write(2) moves its own offset. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w->fd);
	fd = open(path, O_RDWR);
	if (fd < 0 || !buf || scratch < 0)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long p = rnd(&x) % (w->n - 2);
		int how = rnd(&x) % 6;

		scribble(buf, p, &x);
		scribble(buf + PAGE, p + 1, &x);
		if (how == 0) {
			if (lseek(fd, p * PAGE, SEEK_SET) < 0 || write(fd, buf, PAGE) != PAGE)
				WFAIL(w->c, 3);
		} else if (how == 1) {
			/* A part of a page too: what write(2) does to a page it does not fill. */
			size_t len = 1 + rnd(&x) % PAGE, at = rnd(&x) % (PAGE - len + 1);

			if (pwrite(fd, buf, len, p * PAGE + at) != (ssize_t)len)
				WFAIL(w->c, 3);
		} else if (how >= 4) {
			/* From another file, page cache to page cache: no user copy. */
			loff_t from = 0, to = p * PAGE;

			if (pwrite(scratch, buf, 2 * PAGE, 0) != 2 * PAGE)
				WFAIL(w->c, 3);
			if (how == 4 &&
			    copy_file_range(scratch, &from, fd, &to, 2 * PAGE, 0) != 2 * PAGE)
				WFAIL(w->c, 3);
			if (how == 5 && (lseek(fd, p * PAGE, SEEK_SET) < 0 ||
					 sendfile(fd, scratch, &from, 2 * PAGE) != 2 * PAGE))
				WFAIL(w->c, 3);
			COUNT(w->c, ops, 1);
		} else if (how == 2 || !uring) {
			struct iovec iov[2] = { { buf, PAGE }, { buf + PAGE, PAGE } };

			if (pwritev(fd, iov, 2, p * PAGE) != 2 * PAGE)
				WFAIL(w->c, 3);
		} else {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct io_uring_cqe *cqe;

			io_uring_prep_write(sqe, fd, buf, 2 * PAGE, p * PAGE);
			if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe) ||
			    cqe->res != 2 * PAGE)
				WFAIL(w->c, 3);
			io_uring_cqe_seen(&ring, cqe);
			COUNT(w->c, other, 1);
		}
		COUNT(w->c, writes, 1);
		usleep(rnd(&x) % 300);
	}
	if (uring)
		io_uring_queue_exit(&ring);
}

TEST_F_TIMEOUT(nolost, write_syscalls, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES, .seed = 21 };
	struct shadow *s = &self->s;
	pid_t a, b;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	a = spawn(syscall_writer, &w);
	w.seed = 22;
	b = spawn(syscall_writer, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a));
	EXPECT_EQ(0, reap(b));
	log_ctl(_metadata, "write/pwrite/pwritev/io_uring/copy_file_range/sendfile (other = "
		"io_uring writes, ops = copy_file_range and sendfile)", self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/*
 * 13. A KVM guest reads a page (KVM may map it writable while the host
 * entry stays clean), soft-dirty is cleared on the VMM
 * (/proc/PID/clear_refs, 4: it write-protects the VMM's entries), then
 * the guest writes the page: the next harvest must report it.
 */
#define GUEST_PAGES	64
#define CODE_GPA	0x80000UL

/*
 * Real mode, DS at the page to use:
 *   mov al, [0]; out 0x10, al; mov [0], cl; mov [bx], cl; out 0x11, al; hlt
 * (bx: a second offset in the page, so a whole-page change is not needed)
 */
static const uint8_t guest_code[] = {
	0xa0, 0x00, 0x00,	/* mov al, [0] */
	0xe6, 0x10,		/* out 0x10, al */
	0x88, 0x0e, 0x00, 0x00,	/* mov [0], cl */
	0x88, 0x0f,		/* mov [bx], cl */
	0xe6, 0x11,		/* out 0x11, al */
	0xf4,			/* hlt */
};

static int kvm_exit_port(struct kvm_run *r)
{
	return r->exit_reason == KVM_EXIT_IO ? r->io.port : -(int)r->exit_reason - 1000;
}

TEST_F_TIMEOUT(nolost, kvm_clear_refs, 120)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct shadow *s = &self->s;
	int kvm, vm, vcpu, sz, reported = 0, rounds = 0, port;
	struct kvm_userspace_memory_region ram, code;
	char path[64];
	uint8_t *mem, *cm;
	struct kvm_run *run_;
	uint64_t x = 23;

	if (access("/dev/kvm", F_OK)) {
		if (run("grep -qw svm /proc/cpuinfo"))
			SKIP(return, "no /dev/kvm and no svm flag on this CPU");
		if (run("modprobe kvm_amd >/dev/null 2>&1"))
			SKIP(return, "no /dev/kvm: modprobe kvm_amd failed");
		for (int i = 0; i < 50 && access("/dev/kvm", F_OK); i++)
			usleep(100000);
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	SETUP_OBJECT(GUEST_PAGES);
	mem = map(self->fd, 0, GUEST_PAGES);
	ASSERT_NE(NULL, mem);
	cm = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, cm);
	memcpy(cm, guest_code, sizeof(guest_code));
	ram = (struct kvm_userspace_memory_region){ .slot = 0, .guest_phys_addr = 0,
		.memory_size = GUEST_PAGES * PAGE, .userspace_addr = (uintptr_t)mem };
	code = (struct kvm_userspace_memory_region){ .slot = 1, .guest_phys_addr = CODE_GPA,
		.memory_size = PAGE, .userspace_addr = (uintptr_t)cm };
	ASSERT_EQ(0, ioctl(vm, KVM_SET_USER_MEMORY_REGION, &ram));
	ASSERT_EQ(0, ioctl(vm, KVM_SET_USER_MEMORY_REGION, &code));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	ASSERT_LE(0, vcpu);
	sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LT(0, sz);
	run_ = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ASSERT_NE(MAP_FAILED, run_);
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", getpid());

	for (int it = 0; it < 3 * GUEST_PAGES; it++) {
		unsigned long p = rnd(&x) % GUEST_PAGES;
		struct kvm_sregs sr;
		struct kvm_regs rg = { .rip = 0, .rflags = 2, .rcx = 1 + rnd(&x) % 255,
				       .rbx = 8 + rnd(&x) % (PAGE - 8) };

		ASSERT_EQ(0, ioctl(vcpu, KVM_GET_SREGS, &sr));
		sr.cs.base = CODE_GPA;
		sr.cs.selector = CODE_GPA >> 4;
		sr.ds.base = p * PAGE;
		sr.ds.selector = p * PAGE >> 4;
		ASSERT_EQ(0, ioctl(vcpu, KVM_SET_SREGS, &sr));
		ASSERT_EQ(0, ioctl(vcpu, KVM_SET_REGS, &rg));
		ASSERT_EQ(0, ioctl(vcpu, KVM_RUN, 0));
		port = kvm_exit_port(run_);
		ASSERT_EQ(0x10, port) TH_LOG("exit reason %u", run_->exit_reason);
		/* Every other round a harvest sits between the read and clear_refs. */
		if (it % 2)
			ASSERT_EQ(0, shadow_harvest(s));
		ASSERT_EQ(0, kfile_write(path, "4", 0));
		ASSERT_EQ(0, ioctl(vcpu, KVM_RUN, 0));
		port = kvm_exit_port(run_);
		ASSERT_EQ(0x11, port) TH_LOG("exit reason %u", run_->exit_reason);
		ASSERT_EQ(0, shadow_harvest(s));
		if (s->bm[p / 64] >> (p % 64) & 1)
			reported++;
		else
			TH_LOG("round %d: the guest wrote page %lu and the harvest did not report it",
			       it, p);
		rounds++;
	}
	TH_LOG("%d rounds: guest read, clear_refs 4, guest write; the write reported in %d",
	       rounds, reported);
	EXPECT_EQ(rounds, reported);
	EXPECT_EQ(0, shadow_check(_metadata, s));
	close(vcpu);
	close(vm);
	close(kvm);
	munmap(mem, GUEST_PAGES * PAGE);
}

/*
 * 14. Another process writes into the writer's mapping through
 * /proc/PID/mem and process_vm_writev(2): the kernel copies into pages it
 * looked up (and pinned) in the writer's page tables.
 */
static void remote_target(void *arg)
{
	struct wr *w = arg;
	uint8_t *m = map(w->fd, 0, w->n);

	if (!m)
		WFAIL(w->c, 2);
	__atomic_store_n(&w->c->other, (uintptr_t)m, __ATOMIC_RELEASE);
	while (!w->c->stop)
		usleep(1000);
}

static void remote_writer(void *arg)
{
	struct wr *w = arg;
	uint64_t x = w->seed ^ getpid(), base;
	uint8_t buf[PAGE];
	char path[64];
	int mem;

	while (!(base = __atomic_load_n(&w->c->other, __ATOMIC_ACQUIRE))) {
		if (w->c->stop)
			WFAIL(w->c, 5);	/* the target never mapped the object */
		usleep(1000);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)w->seed);
	mem = open(path, O_RDWR | O_CLOEXEC);
	if (mem < 0)
		WFAIL(w->c, 2);
	while (!w->c->stop) {
		unsigned long p = rnd(&x) % w->n;
		uint64_t at = base + p * PAGE;

		scribble(buf, p, &x);
		if (rnd(&x) & 1) {
			if (pwrite(mem, buf, PAGE, at) != PAGE)
				WFAIL(w->c, 3);
		} else {
			struct iovec l = { buf, PAGE }, r = { (void *)(uintptr_t)at, PAGE };

			if (process_vm_writev(w->seed, &l, 1, &r, 1, 0) != PAGE)
				WFAIL(w->c, 4);
			COUNT(w->c, ops, 1);
		}
		COUNT(w->c, writes, 1);
		usleep(rnd(&x) % 300);
	}
}

TEST_F_TIMEOUT(nolost, remote_writes, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = NPAGES };
	struct shadow *s = &self->s;
	pid_t t, a;

	SETUP_OBJECT(NPAGES);
	w.fd = self->fd;
	t = spawn(remote_target, &w);
	ASSERT_LT(0, t);
	w.seed = t;		/* the writers' seed is the target's pid */
	a = spawn(remote_writer, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a)) TH_LOG("2: open /proc/PID/mem, 3: its write, 4: process_vm_writev");
	EXPECT_EQ(0, reap(t));
	self->c->other = 0;
	log_ctl(_metadata, "remote writes (ops = process_vm_writev, the rest /proc/PID/mem)",
		self->c);
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

/*
 * 15. userfaultfd: one thread punches pages out (MADV_REMOVE), writes and
 * reads pages; every missing page it touches is filled by another thread
 * with UFFDIO_COPY (new content that no write through a mapping made).
 */
struct uf {
	struct wr *w;
	int uffd;
	uint8_t *m;
	volatile int done;	/* the toucher has finished: no fault can come */
};

static void *uf_handler(void *arg)
{
	struct uf *u = arg;
	uint64_t x = u->w->seed ^ (uintptr_t)&x;
	static uint8_t buf[PAGE] __attribute__((aligned(4096)));
	struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };

	while (!u->done) {
		struct uffdio_copy cp;
		struct uffd_msg msg;
		unsigned long p;

		if (poll(&pfd, 1, 10) <= 0 || read(u->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
		    msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		p = (msg.arg.pagefault.address - (uintptr_t)u->m) / PAGE;
		scribble(buf, p, &x);
		cp = (struct uffdio_copy){ .dst = (uintptr_t)u->m + p * PAGE,
					   .src = (uintptr_t)buf, .len = PAGE };
		if (ioctl(u->uffd, UFFDIO_COPY, &cp) && errno != EEXIST)
			WFAIL(u->w->c, 4);
		COUNT(u->w->c, other, 1);
	}
	return NULL;
}

static void *uf_toucher(void *arg)
{
	struct uf *u = arg;
	uint64_t x = u->w->seed ^ (uintptr_t)&x;

	while (!u->w->c->stop) {
		unsigned long p = rnd(&x) % u->w->n;
		volatile uint8_t *b = u->m + p * PAGE;

		switch (rnd(&x) % 3) {
		case 0:
			if (madvise(u->m + p * PAGE, PAGE * (1 + (p + 1 < u->w->n)), MADV_REMOVE))
				WFAIL(u->w->c, 5);
			COUNT(u->w->c, ops, 1);
			break;
		case 1:
			scribble(u->m + p * PAGE, p, &x);
			COUNT(u->w->c, writes, 1);
			break;
		default:
			(void)*b;	/* a missing page appears with the handler's content */
			break;
		}
		usleep(rnd(&x) % 300);
	}
	return NULL;
}

static void uffd_proc(void *arg)
{
	struct uf u = { .w = arg };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	pthread_t h, t;

	u.uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u.uffd < 0 || ioctl(u.uffd, UFFDIO_API, &api))
		WFAIL(u.w->c, 2);
	u.m = map(u.w->fd, 0, u.w->n);
	if (!u.m)
		WFAIL(u.w->c, 2);
	reg = (struct uffdio_register){ .range = { (uintptr_t)u.m, u.w->n * PAGE },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(u.uffd, UFFDIO_REGISTER, &reg))
		WFAIL(u.w->c, 3);
	if (pthread_create(&h, NULL, uf_handler, &u) || pthread_create(&t, NULL, uf_toucher, &u))
		WFAIL(u.w->c, 2);
	pthread_join(t, NULL);
	u.done = 1;
	pthread_join(h, NULL);
}

TEST_F_TIMEOUT(nolost, userfaultfd, 90)
{
	if (!self->c)
		return;	/* skipped by the set-up */
	struct wr w = { .c = self->c, .n = 64, .seed = 25 };
	struct shadow *s = &self->s;
	pid_t a;

	SETUP_OBJECT(64);
	w.fd = self->fd;
	a = spawn(uffd_proc, &w);
	ASSERT_LT(0, a);
	EXPECT_EQ(0, harvest_while(&s, 1, self->c, NULL, NULL));
	EXPECT_EQ(0, reap(a)) TH_LOG("2: userfaultfd or map, 3: UFFDIO_REGISTER, 4: UFFDIO_COPY, "
				     "5: MADV_REMOVE");
	log_ctl(_metadata, "userfaultfd (ops = MADV_REMOVE, other = UFFDIO_COPY fills)", self->c);
	EXPECT_LT(0, self->c->other) TH_LOG("no page was filled by UFFDIO_COPY: the case proved nothing");
	EXPECT_EQ(0, shadow_check(_metadata, s));
}

TEST_HARNESS_MAIN

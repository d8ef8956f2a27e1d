// SPDX-License-Identifier: GPL-2.0-only
/*
 * The CPU throttle (host/throttle*.c) on the threads of a multi-threaded
 * process shaped like QEMU: a main thread and two spinning threads named
 * "CPU 0/KVM" and "CPU 1/KVM", of which only some are aimed at.  Called
 * straight through host/throttle.h, against the real cgroup files.
 *
 * In a VM (cgroup v2; vm/throttle_vcpu.sh runs this same program there
 * with LMIG_VM=1), in a hierarchy shaped like libvirt's:
 * machine.slice/machine-qemu\x2d1\x2dlmigtest.scope/libvirt/{emulator,
 * vcpu0,vcpu1}, each threaded, one thread in each:
 *
 *   vcpu.one_in_place      throttle CPU 0's thread: only vcpu0/cpu.max
 *                          changes, no thread moves, its CPU rate falls
 *                          against CPU 1's (side by side), every cpu.max
 *                          comes back byte for byte
 *   vcpu.quota_kept        a quota already on vcpu0 (libvirt's
 *                          <vcpu_quota>, in another period) is never
 *                          loosened: the tighter of the two holds
 *   vcpu.two_split_guard   both threads: the share split over vcpu0 and
 *                          vcpu1, no disk-write limit there; the freeze
 *                          guard's throttle_restore_pid() puts them back
 *   vcpu.sigkill_restore   the throttling process SIGKILLed while limiting:
 *                          `lmig throttle --restore` reads its state file
 *                          and puts every cpu.max back
 *   vcpu.mixed_refused     a thread in a shared threaded cgroup, or one in
 *                          a domain beside one in vcpu0: refused, nothing
 *                          changed, no state file
 *   vcpu.state_bounded     a state file listing more per-vCPU cgroups than
 *                          allowed, or a malformed one: one-line refusal
 *   vcpu.state_files       a state file in the format before per-vCPU
 *                          cgroups still restores; a per-vCPU one too,
 *                          counted by --json
 *   vcpu.threaded_child    not libvirt: the process alone in a domain
 *                          cgroup, CPU 0's thread into a threaded child,
 *                          the others stay, its rate falls
 *
 * On the host (cgroup v1 cpu hierarchy):
 *
 *   v1.one_thread          CPU 0's thread alone moves into a transient
 *                          child, its rate falls, all come back
 *   vm.cgroup_v2 / vm.cgroup_v2_6_12   boots the VM (Debian 6.1, 6.12)
 *                          and checks the run above passed
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/err.h"
#include "host/procfs.h"
#include "host/throttle.h"
#include "lib/proc.h"
#include "lib/vm.h"

#define CG2		"/sys/fs/cgroup"
#define CPU_V1		"/sys/fs/cgroup/cpu"
#define MACHINE		CG2 "/machine.slice"
#define SCOPE		MACHINE "/machine-qemu\\x2d1\\x2dlmigtest.scope"
#define LIBVIRT		SCOPE "/libvirt"
#define PLAIN		CG2 "/lmig-r19-vcg-plain"
#define STATE_DIR	"/run/lmig"
#define NFILES		5
#define RATE_S		1.0	/* seconds each rate is measured over */
/* This harness runs a test's body even after its setup said SKIP. */
#define SKIPPED()	do { if (_metadata->skip) return; } while (0)

/* The QEMU-shaped process: its main thread waits, two threads spin. */
struct guest {
	pid_t pid, tid[2];
};

static void *spin(void *arg)
{
	struct { int idx, tid; } m = { (int)(long)arg, gettid() };
	int fd = (int)((long)arg >> 8);
	char name[16];
	volatile unsigned long n = 0;

	m.idx &= 0xff;
	snprintf(name, sizeof(name), "CPU %d/KVM", m.idx);
	pthread_setname_np(pthread_self(), name);
	if (write(fd, &m, sizeof(m)) != sizeof(m))
		_exit(1);
	for (;;)
		n++;
	return NULL;
}

static int guest_start(struct guest *g)
{
	struct { int idx, tid; } m;
	int fds[2];

	if (pipe(fds))
		return -1;
	g->pid = fork();
	if (g->pid < 0)
		return -1;
	if (!g->pid) {
		pthread_t th;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		for (long i = 0; i < 2; i++)
			if (pthread_create(&th, NULL, spin, (void *)(i | (long)fds[1] << 8)))
				_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	for (int i = 0; i < 2; i++) {
		if (read(fds[0], &m, sizeof(m)) != sizeof(m) || m.idx < 0 || m.idx > 1) {
			close(fds[0]);
			return -1;
		}
		g->tid[m.idx] = m.tid;
	}
	close(fds[0]);
	return 0;
}

static void guest_stop(struct guest *g)
{
	if (g->pid > 0) {
		kill(g->pid, SIGKILL);
		waitpid(g->pid, NULL, 0);
	}
	g->pid = 0;
}

static int put_int(const char *dir, const char *file, int v)
{
	char num[16];

	snprintf(num, sizeof(num), "%d", v);
	return kfile_write(dir, file, num);
}

/* The whole of DIR/FILE (the trailing newline included), "" if unreadable. */
static const char *get(const char *dir, const char *file, char *buf, size_t len)
{
	char path[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	buf[0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	return buf;
}

/* The v2 line ("0::/path") or v1 cpu line of a thread's cgroup file. */
static const char *thread_cg(pid_t pid, pid_t tid, bool v1, char *buf, size_t len)
{
	char dir[64], all[2048], *l;

	snprintf(dir, sizeof(dir), "/proc/%d/task/%d", (int)pid, (int)tid);
	get(dir, "cgroup", all, sizeof(all));
	buf[0] = 0;
	for (l = strtok(all, "\n"); l; l = strtok(NULL, "\n"))
		if (v1 ? strstr(l, ":cpu,") || strstr(l, ":cpu:") : !strncmp(l, "0::", 3))
			snprintf(buf, len, "%s", l);
	return buf;
}

/* Nanoseconds thread tid has run (schedstat's first field). */
static double ran_ns(pid_t pid, pid_t tid)
{
	char dir[64], buf[128];

	snprintf(dir, sizeof(dir), "/proc/%d/task/%d", (int)pid, (int)tid);
	return strtod(get(dir, "schedstat", buf, sizeof(buf)), NULL);
}

/* The CPU rate of CPU 0's thread over CPU 1's, measured side by side. */
static double rate_ratio(const struct guest *g, double *r0, double *r1)
{
	double a0 = ran_ns(g->pid, g->tid[0]), a1 = ran_ns(g->pid, g->tid[1]);

	usleep(RATE_S * 1e6);
	*r0 = (ran_ns(g->pid, g->tid[0]) - a0) / RATE_S / 1e9;
	*r1 = (ran_ns(g->pid, g->tid[1]) - a1) / RATE_S / 1e9;
	return *r1 > 0 ? *r0 / *r1 : 0;
}

static bool state_exists(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/throttle-%d", STATE_DIR, (int)pid);
	return !access(path, F_OK);
}

static const char *state_text(pid_t pid, char *buf, size_t len)
{
	char name[32];

	snprintf(name, sizeof(name), "throttle-%d", (int)pid);
	return get(STATE_DIR, name, buf, len);
}

/* rmdir, retried while the cgroup still holds a dying task. */
static void rm_cg(const char *dir)
{
	for (int i = 0; i < 50 && rmdir(dir) && errno == EBUSY; i++)
		usleep(20000);
}

/* ---- cgroup v2, libvirt's shape (in the VM) ---- */

static const char *const files[NFILES] = { SCOPE, LIBVIRT, LIBVIRT "/emulator",
					   LIBVIRT "/vcpu0", LIBVIRT "/vcpu1" };

FIXTURE(vcpu) {
	struct guest g;
	char before[NFILES][64];	/* cpu.max of each of files[] */
	char cgs[3][600];		/* the threads' cgroup lines: main, CPU 0, CPU 1 */
};

static void snap(struct __test_metadata *_metadata, FIXTURE_DATA(vcpu) *self,
		 char now[NFILES][64])
{
	for (int i = 0; i < NFILES; i++) {
		ASSERT_NE(0, get(files[i], "cpu.max", now[i], 64)[0]) TH_LOG("%s", files[i]);
	}
}

/* Every cpu.max as it was, byte for byte. */
static void expect_cpu_max(struct __test_metadata *_metadata, FIXTURE_DATA(vcpu) *self,
			   int except, const char *what)
{
	char now[NFILES][64];

	snap(_metadata, self, now);
	for (int i = 0; i < NFILES; i++) {
		if (i != except) {
			EXPECT_STREQ(self->before[i], now[i]) TH_LOG("%s: %s/cpu.max", what, files[i]);
		}
	}
}

/* No thread moved: each in the cgroup it was in. */
static void expect_threads_stay(struct __test_metadata *_metadata, FIXTURE_DATA(vcpu) *self)
{
	const pid_t t[3] = { self->g.pid, self->g.tid[0], self->g.tid[1] };
	char buf[600];

	for (int i = 0; i < 3; i++) {
		EXPECT_STREQ(self->cgs[i], thread_cg(self->g.pid, t[i], false, buf, sizeof(buf)));
	}
}

FIXTURE_SETUP(vcpu)
{
	const char *dirs[] = { MACHINE, SCOPE, LIBVIRT, LIBVIRT "/emulator", LIBVIRT "/vcpu0",
			       LIBVIRT "/vcpu1" };
	char buf[256];

	if (!getenv("LMIG_VM") || strcmp(getenv("LMIG_VM"), "1"))
		SKIP(return, "cgroup v2 with the cpu controller: in the VM (vm.cgroup_v2)");
	ASSERT_NE(NULL, strstr(get(CG2, "cgroup.subtree_control", buf, sizeof(buf)), "cpu"));
	for (int i = 0; i < 6; i++) {
		ASSERT_EQ(0, mkdir(dirs[i], 0755)) TH_LOG("mkdir %s: %s", dirs[i], strerror(errno));
	}
	ASSERT_EQ(0, kfile_write(MACHINE, "cgroup.subtree_control", "+cpu"));
	ASSERT_EQ(0, kfile_write(SCOPE, "cgroup.subtree_control", "+cpu"));
	for (int i = 3; i < 6; i++) {
		ASSERT_EQ(0, kfile_write(dirs[i], "cgroup.type", "threaded")) TH_LOG("%s", dirs[i]);
	}
	ASSERT_EQ(0, kfile_write(LIBVIRT, "cgroup.subtree_control", "+cpu"));
	ASSERT_EQ(0, guest_start(&self->g));
	snprintf(buf, sizeof(buf), "/proc/%d/task/%d", (int)self->g.pid, (int)self->g.tid[1]);
	ASSERT_STREQ("CPU 1/KVM\n", get(buf, "comm", buf, sizeof(buf)));
	ASSERT_EQ(0, put_int(LIBVIRT, "cgroup.procs", self->g.pid));
	ASSERT_EQ(0, put_int(LIBVIRT "/emulator", "cgroup.threads", self->g.pid));
	ASSERT_EQ(0, put_int(LIBVIRT "/vcpu0", "cgroup.threads", self->g.tid[0]));
	ASSERT_EQ(0, put_int(LIBVIRT "/vcpu1", "cgroup.threads", self->g.tid[1]));
	/* A period of its own on vcpu0: what comes back must be it, not a default. */
	ASSERT_EQ(0, kfile_write(LIBVIRT "/vcpu0", "cpu.max", "max 200000"));
	snap(_metadata, self, self->before);
	thread_cg(self->g.pid, self->g.pid, false, self->cgs[0], sizeof(self->cgs[0]));
	thread_cg(self->g.pid, self->g.tid[0], false, self->cgs[1], sizeof(self->cgs[1]));
	thread_cg(self->g.pid, self->g.tid[1], false, self->cgs[2], sizeof(self->cgs[2]));
	ASSERT_NE(NULL, strstr(self->cgs[1], "/libvirt/vcpu0")) TH_LOG("%s", self->cgs[1]);
}

FIXTURE_TEARDOWN(vcpu)
{
	char path[64];

	if (!getenv("LMIG_VM") || strcmp(getenv("LMIG_VM"), "1"))
		return;
	/* A case that failed half-way: nothing of it outlives it (the VM's own /run). */
	snprintf(path, sizeof(path), "%s/throttle-%d", STATE_DIR, (int)self->g.pid);
	if (self->g.pid)
		unlink(path);
	guest_stop(&self->g);
	rm_cg(PLAIN "/lmig-threads");
	rm_cg(PLAIN);
	for (int i = NFILES - 1; i >= 1; i--)
		rm_cg(files[i]);
	rm_cg(SCOPE);
	rm_cg(MACHINE);
}

TEST_F(vcpu, one_in_place)
{
	char buf[256], line[700], st[4096];
	struct throttle t;
	double before, after, r0, r1, a0, a1;

	SKIPPED();

	before = rate_ratio(&self->g, &r0, &r1);
	ASSERT_EQ(0, throttle_init(&t, self->g.pid, &self->g.tid[0], 1)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(THROTTLE_KIND_VCPU_CGROUPS, throttle_kind(&t));
	EXPECT_EQ(1, t.nvcg);
	EXPECT_TRUE(state_exists(self->g.pid));
	/* The state file names vcpu0 with the cpu.max found there, before any change. */
	snprintf(line, sizeof(line), "vcg %d max 200000 %s\n", (int)self->g.tid[0], LIBVIRT "/vcpu0");
	EXPECT_NE(NULL, strstr(state_text(self->g.pid, st, sizeof(st)), line)) TH_LOG("%s", st);
	expect_cpu_max(_metadata, self, -1, "after init");
	ASSERT_EQ(0, throttle_set(&t, 0.1)) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("10000 100000\n", get(LIBVIRT "/vcpu0", "cpu.max", buf, sizeof(buf)));
	expect_cpu_max(_metadata, self, 3, "limited");
	usleep(200000);
	after = rate_ratio(&self->g, &a0, &a1);
	TH_LOG("CPU 0/KVM : CPU 1/KVM  before %.3f (%.2f, %.2f CPUs)  limited to 0.1 CPU %.3f (%.2f, %.2f)",
	       before, r0, r1, after, a0, a1);
	EXPECT_GT(before, 0.5);
	EXPECT_LT(after, before * 0.5);
	expect_threads_stay(_metadata, self);
	ASSERT_EQ(0, throttle_restore(&t)) TH_LOG("%s", lmig_errmsg());
	expect_cpu_max(_metadata, self, -1, "restored");
	EXPECT_FALSE(state_exists(self->g.pid));
	expect_threads_stay(_metadata, self);
}

TEST_F(vcpu, quota_kept)
{
	char buf[64];
	struct throttle t;
	const char *v0 = LIBVIRT "/vcpu0";

	SKIPPED();

	/* 0.3 CPU in a 50 ms period, as libvirt's <vcpu_quota> would set it. */
	ASSERT_EQ(0, kfile_write(v0, "cpu.max", "15000 50000"));
	snap(_metadata, self, self->before);
	ASSERT_EQ(0, throttle_init(&t, self->g.pid, &self->g.tid[0], 1)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, throttle_set(&t, 1.0));
	EXPECT_STREQ("15000 50000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	ASSERT_EQ(0, throttle_set(&t, 0.3));	/* as tight as the quota: it stays */
	EXPECT_STREQ("15000 50000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	ASSERT_EQ(0, throttle_set(&t, 0.1));	/* tighter: lmig's */
	EXPECT_STREQ("10000 100000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	ASSERT_EQ(0, throttle_set(&t, 0.5));	/* looser again: back to the quota */
	EXPECT_STREQ("15000 50000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	ASSERT_EQ(0, throttle_set(&t, 0.05));
	EXPECT_STREQ("5000 100000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	ASSERT_EQ(0, throttle_set(&t, 0));	/* no limit: the quota found */
	EXPECT_STREQ("15000 50000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	expect_cpu_max(_metadata, self, 3, "limited");
	/* Under 1 % the period stretches (the kernel's least quota is 1 ms) ... */
	ASSERT_EQ(0, throttle_set(&t, 0.002));
	EXPECT_STREQ("1000 500000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	/* ... up to THROTTLE_PERIOD_MAX_US, never below 1 ms in it. */
	ASSERT_EQ(0, throttle_set(&t, 0.0001));
	EXPECT_STREQ("1000 1000000\n", get(v0, "cpu.max", buf, sizeof(buf)));
	ASSERT_EQ(0, throttle_restore(&t));
	expect_cpu_max(_metadata, self, -1, "restored");
	EXPECT_FALSE(state_exists(self->g.pid));
}

TEST_F(vcpu, two_split_guard)
{
	char buf[64];
	struct throttle t;

	SKIPPED();

	ASSERT_EQ(0, throttle_init(&t, self->g.pid, self->g.tid, 2)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(THROTTLE_KIND_VCPU_CGROUPS, throttle_kind(&t));
	EXPECT_EQ(2, t.nvcg);
	ASSERT_EQ(0, throttle_set(&t, 0.4));
	EXPECT_STREQ("20000 100000\n", get(LIBVIRT "/vcpu0", "cpu.max", buf, sizeof(buf)));
	EXPECT_STREQ("20000 100000\n", get(LIBVIRT "/vcpu1", "cpu.max", buf, sizeof(buf)));
	EXPECT_STREQ(self->before[0], get(SCOPE, "cpu.max", buf, sizeof(buf)));
	EXPECT_STREQ(self->before[2], get(LIBVIRT "/emulator", "cpu.max", buf, sizeof(buf)));
	/* io is a domain controller: no disk-write limit on threaded cgroups. */
	lmig_err_clear();
	EXPECT_EQ(-1, throttle_io_init(&t, NULL, 0));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "is on per-vCPU threaded cgroups, where disk writes cannot be limited"))
		TH_LOG("%s", lmig_errmsg());
	EXPECT_FALSE(t.io.on);
	/* The freeze guard's way: from the state file alone. */
	ASSERT_EQ(0, throttle_restore_pid(self->g.pid)) TH_LOG("%s", lmig_errmsg());
	expect_cpu_max(_metadata, self, -1, "restored by the guard");
	EXPECT_FALSE(state_exists(self->g.pid));
	expect_threads_stay(_metadata, self);
}

TEST_F_TIMEOUT(vcpu, sigkill_restore, 60)
{
	char buf[64], want[128];
	struct proc p = { 0 };
	int fds[2], st;
	pid_t killer;

	SKIPPED();

	ASSERT_EQ(0, pipe(fds));
	killer = fork();
	ASSERT_LE(0, killer);
	if (!killer) {
		struct throttle t;

		close(fds[0]);
		if (throttle_init(&t, self->g.pid, self->g.tid, 2) || throttle_set(&t, 0.2))
			_exit(1);
		if (write(fds[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	ASSERT_EQ(1, read(fds[0], buf, 1)) TH_LOG("the throttling process failed");
	close(fds[0]);
	EXPECT_STREQ("10000 100000\n", get(LIBVIRT "/vcpu0", "cpu.max", buf, sizeof(buf)));
	EXPECT_STREQ("10000 100000\n", get(LIBVIRT "/vcpu1", "cpu.max", buf, sizeof(buf)));
	kill(killer, SIGKILL);
	ASSERT_EQ(killer, waitpid(killer, &st, 0));
	EXPECT_STREQ("10000 100000\n", get(LIBVIRT "/vcpu0", "cpu.max", buf, sizeof(buf)));
	ASSERT_TRUE(state_exists(self->g.pid));
	ASSERT_EQ(0, proc_spawn(&p, (char *const[]){ (char *)lmig_path(), "throttle", "--restore",
						     NULL }, NULL));
	ASSERT_EQ(0, proc_wait(&p, 30));
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("%s", p.err_log);
	snprintf(want, sizeof(want), "lmig: restored cpu.max of 2 per-vCPU cgroups of process %d (",
		 (int)self->g.pid);
	EXPECT_NE(NULL, strstr(p.err, want)) TH_LOG("%s", p.err_log);
	EXPECT_NE(NULL, strstr(p.err, "/libvirt/vcpu1); no thread was moved")) TH_LOG("%s", p.err_log);
	TH_LOG("lmig throttle --restore: %s", p.err_log);
	proc_kill(&p);
	expect_cpu_max(_metadata, self, -1, "restored by lmig throttle --restore");
	EXPECT_FALSE(state_exists(self->g.pid));
	expect_threads_stay(_metadata, self);
}

TEST_F(vcpu, mixed_refused)
{
	char want[512];
	struct throttle t;

	SKIPPED();

	/* CPU 1's thread into vcpu0 too: vcpu0 is no longer CPU 0's own. */
	ASSERT_EQ(0, put_int(LIBVIRT "/vcpu0", "cgroup.threads", self->g.tid[1]));
	EXPECT_EQ(-1, throttle_init(&t, self->g.pid, &self->g.tid[0], 1));
	snprintf(want, sizeof(want), "thread %d of process %d shares threaded cgroup %s with other threads",
		 (int)self->g.tid[0], (int)self->g.pid, LIBVIRT "/vcpu0");
	EXPECT_NE(NULL, strstr(lmig_errmsg(), want)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(NULL, strchr(lmig_errmsg(), '\n'));
	EXPECT_FALSE(state_exists(self->g.pid));
	expect_cpu_max(_metadata, self, -1, "refused (shared)");

	/* CPU 1's thread in libvirt/ itself (a threaded domain), CPU 0's in vcpu0. */
	ASSERT_EQ(0, put_int(LIBVIRT, "cgroup.threads", self->g.tid[1]));
	lmig_err_clear();
	EXPECT_EQ(-1, throttle_init(&t, self->g.pid, self->g.tid, 2));
	snprintf(want, sizeof(want), "thread %d of process %d is in %s while thread %d has per-thread cgroup",
		 (int)self->g.tid[1], (int)self->g.pid, LIBVIRT, (int)self->g.tid[0]);
	EXPECT_NE(NULL, strstr(lmig_errmsg(), want)) TH_LOG("%s", lmig_errmsg());
	EXPECT_FALSE(state_exists(self->g.pid));
	expect_cpu_max(_metadata, self, -1, "refused (mixed)");
	TH_LOG("refused: %s", lmig_errmsg());
}

/*
 * A state file written by hand: what `lmig throttle --restore [--json]`
 * makes of it.  rc 1: refused, want on stderr in one line; rc 0: want in
 * its output (stderr, or stdout with json).
 */
static void restore_file(struct __test_metadata *_metadata, const char *text, bool json, int rc,
			 const char *want)
{
	char path[64];
	struct proc p = { 0 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/throttle-999999", STATE_DIR);
	mkdir(STATE_DIR, 0700);
	ASSERT_NE(NULL, f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	ASSERT_EQ(0, proc_spawn(&p, (char *const[]){ (char *)lmig_path(), "throttle", "--restore",
						     json ? "--json" : NULL, NULL }, NULL));
	ASSERT_EQ(0, proc_wait(&p, 30));
	EXPECT_EQ(rc, proc_exit_code(&p)) TH_LOG("%s", p.err_log);
	EXPECT_NE(NULL, strstr(json ? p.out : p.err, want)) TH_LOG("%s %s", p.out, p.err_log);
	if (rc) {
		/* one line */
		EXPECT_EQ(p.err + strlen(p.err) - 1, strchr(p.err, '\n')) TH_LOG("%s", p.err_log);
	} else {
		EXPECT_NE(0, access(path, F_OK)) TH_LOG("the state file is left");
	}
	TH_LOG("%s%s", json ? p.out : "", p.err_log);
	proc_kill(&p);
	unlink(path);
}

/*
 * State files from elsewhere: one in the format before per-vCPU cgroups
 * (no tcg, subtree_cpu or vcg lines) still reads and restores; a per-vCPU
 * one restores its cgroup, counted in --json.
 */
TEST_F(vcpu, state_files)
{
	static char text[4096];
	char buf[64], want[600];

	SKIPPED();

	/* An older lmig limited vcpu1 in place, found "max 100000" there, and died. */
	ASSERT_EQ(0, kfile_write(LIBVIRT "/vcpu1", "cpu.max", "7000 100000"));
	snprintf(text, sizeof(text),
		 "owner 999998\npid 999999\nv2 1\ntransient 0\nhome %s\ncg %s\nsaved %.*s\ntids\n",
		 LIBVIRT "/vcpu1", LIBVIRT "/vcpu1", (int)strlen(self->before[4]) - 1, self->before[4]);
	snprintf(want, sizeof(want), "lmig: restored the CPU limit of process 999999 (%s)\n",
		 LIBVIRT "/vcpu1");
	restore_file(_metadata, text, false, 0, want);
	EXPECT_STREQ(self->before[4], get(LIBVIRT "/vcpu1", "cpu.max", buf, sizeof(buf)));

	ASSERT_EQ(0, kfile_write(LIBVIRT "/vcpu1", "cpu.max", "7000 100000"));
	snprintf(text, sizeof(text),
		 "owner 1\nowner_start 1\npid 999999\nv2 1\ntransient 0\nper_thread 1\nhome %s\ncg %s\nsaved max 100000\ntids 5\ntcg \nsubtree_cpu 0\nvcg 5 %.*s %s\n",
		 LIBVIRT "/emulator", LIBVIRT "/vcpu1", (int)strlen(self->before[4]) - 1,
		 self->before[4], LIBVIRT "/vcpu1");
	restore_file(_metadata, text, true, 0, "\"restored\":1,\"vcpu_cgroups\":1");
	expect_cpu_max(_metadata, self, -1, "after the state files");
}

TEST_F(vcpu, state_bounded)
{
	static char text[65536];
	size_t n;
	int i;

	SKIPPED();

	n = snprintf(text, sizeof(text),
		     "owner 1\nowner_start 1\npid 999999\nv2 1\ntransient 0\nper_thread 1\nhome %s\ncg %s\nsaved max 100000\ntids\n",
		     LIBVIRT "/emulator", LIBVIRT "/vcpu0");
	for (i = 0; i <= THROTTLE_MAX_VCGS; i++)
		n += snprintf(text + n, sizeof(text) - n, "vcg %d 5000 100000 %s\n", 1000 + i,
			      LIBVIRT "/vcpu0");
	restore_file(_metadata, text, false, 1, "lists more than 64 per-vCPU cgroups");
	n = snprintf(text, sizeof(text),
		     "owner 1\nowner_start 1\npid 999999\nv2 1\ntransient 0\nper_thread 1\nhome %s\ncg %s\nsaved max 100000\ntids\nvcg 12 5000;rm 100000 %s\n",
		     LIBVIRT "/emulator", LIBVIRT "/vcpu0", LIBVIRT "/vcpu0");
	restore_file(_metadata, text, false, 1, "malformed line 'vcg 12 5000;rm");
	/* Neither touched vcpu0. */
	expect_cpu_max(_metadata, self, -1, "after refused state files");
}

/* Not libvirt: the process alone in a domain cgroup, one thread aimed at. */
TEST_F(vcpu, threaded_child)
{
	char buf[600], before[3][256], now[3][256];
	const char *const names[3] = { "cpu.max", "cgroup.type", "cgroup.subtree_control" };
	struct throttle t;
	double rb, ra, r0, r1, a0, a1;

	SKIPPED();

	ASSERT_EQ(0, mkdir(PLAIN, 0755));
	ASSERT_EQ(0, put_int(PLAIN, "cgroup.procs", self->g.pid));
	for (int i = 0; i < 3; i++)
		get(PLAIN, names[i], before[i], sizeof(before[i]));
	rb = rate_ratio(&self->g, &r0, &r1);
	ASSERT_EQ(0, throttle_init(&t, self->g.pid, &self->g.tid[0], 1)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(THROTTLE_KIND_THREADED_CHILD, throttle_kind(&t));
	EXPECT_STREQ(PLAIN "/lmig-threads", t.tcg);
	ASSERT_EQ(0, throttle_set(&t, 0.1));
	EXPECT_STREQ("0::/lmig-r19-vcg-plain/lmig-threads",
		     thread_cg(self->g.pid, self->g.tid[0], false, buf, sizeof(buf)));
	EXPECT_STREQ("0::/lmig-r19-vcg-plain", thread_cg(self->g.pid, self->g.tid[1], false, buf,
							 sizeof(buf)));
	EXPECT_STREQ("0::/lmig-r19-vcg-plain", thread_cg(self->g.pid, self->g.pid, false, buf,
							 sizeof(buf)));
	usleep(200000);
	ra = rate_ratio(&self->g, &a0, &a1);
	TH_LOG("CPU 0/KVM : CPU 1/KVM  before %.3f (%.2f, %.2f CPUs)  limited to 0.1 CPU %.3f (%.2f, %.2f)",
	       rb, r0, r1, ra, a0, a1);
	EXPECT_GT(rb, 0.5);
	EXPECT_LT(ra, rb * 0.5);
	ASSERT_EQ(0, throttle_restore(&t)) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("0::/lmig-r19-vcg-plain", thread_cg(self->g.pid, self->g.tid[0], false, buf,
							 sizeof(buf)));
	EXPECT_NE(0, access(PLAIN "/lmig-threads", F_OK));
	for (int i = 0; i < 3; i++) {
		EXPECT_STREQ(before[i], get(PLAIN, names[i], now[i], sizeof(now[i])))
			TH_LOG("%s", names[i]);
	}
	EXPECT_FALSE(state_exists(self->g.pid));
	guest_stop(&self->g);
	rm_cg(PLAIN);
}

/* ---- cgroup v1 (this host) ---- */

FIXTURE(v1) {
	struct guest g;
	char home[256];
};

FIXTURE_SETUP(v1)
{
	if (getenv("LMIG_VM") && !strcmp(getenv("LMIG_VM"), "1"))
		SKIP(return, "cgroup v1: on the host");
	if (access(CPU_V1 "/cpu.cfs_quota_us", F_OK) || geteuid())
		SKIP(return, "no cgroup v1 cpu hierarchy at %s, or not root", CPU_V1);
	snprintf(self->home, sizeof(self->home), "%s/lmig-r19-vcg-%d", CPU_V1, (int)getpid());
	ASSERT_EQ(0, mkdir(self->home, 0755));
	ASSERT_EQ(0, guest_start(&self->g));
	ASSERT_EQ(0, put_int(self->home, "cgroup.procs", self->g.pid));
}

FIXTURE_TEARDOWN(v1)
{
	char trans[400];

	if (!self->home[0])
		return;
	snprintf(trans, sizeof(trans), "%s/lmig-throttle-%d", self->home, (int)self->g.pid);
	guest_stop(&self->g);
	rm_cg(trans);
	rm_cg(self->home);
}

TEST_F(v1, one_thread)
{
	char buf[600], q[32], p[32], trans[400], want[400];
	struct throttle t;
	double rb, ra, r0, r1, a0, a1;
	const char *rel = self->home + strlen(CPU_V1);

	SKIPPED();

	get(self->home, "cpu.cfs_quota_us", q, sizeof(q));
	get(self->home, "cpu.cfs_period_us", p, sizeof(p));
	rb = rate_ratio(&self->g, &r0, &r1);
	ASSERT_EQ(0, throttle_init(&t, self->g.pid, &self->g.tid[0], 1)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(THROTTLE_KIND_V1_THREADS, throttle_kind(&t));
	snprintf(trans, sizeof(trans), "%s/lmig-throttle-%d", self->home, (int)self->g.pid);
	EXPECT_STREQ(trans, t.cg);
	ASSERT_EQ(0, throttle_set(&t, 0.05));
	snprintf(want, sizeof(want), "%s/lmig-throttle-%d", rel, (int)self->g.pid);
	EXPECT_NE(NULL, strstr(thread_cg(self->g.pid, self->g.tid[0], true, buf, sizeof(buf)), want))
		TH_LOG("%s", buf);
	thread_cg(self->g.pid, self->g.tid[1], true, buf, sizeof(buf));
	EXPECT_EQ(NULL, strstr(buf, "lmig-throttle-")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, rel)) TH_LOG("%s", buf);
	thread_cg(self->g.pid, self->g.pid, true, buf, sizeof(buf));
	EXPECT_EQ(NULL, strstr(buf, "lmig-throttle-")) TH_LOG("%s", buf);
	usleep(200000);
	ra = rate_ratio(&self->g, &a0, &a1);
	TH_LOG("CPU 0/KVM : CPU 1/KVM  before %.3f (%.2f, %.2f CPUs)  limited to 0.05 CPU %.3f (%.2f, %.2f)",
	       rb, r0, r1, ra, a0, a1);
	EXPECT_GT(rb, 0.5);
	EXPECT_LT(ra, rb * 0.5);
	ASSERT_EQ(0, throttle_restore(&t)) TH_LOG("%s", lmig_errmsg());
	thread_cg(self->g.pid, self->g.tid[0], true, buf, sizeof(buf));
	EXPECT_EQ(NULL, strstr(buf, "lmig-throttle-")) TH_LOG("%s", buf);
	EXPECT_NE(0, access(trans, F_OK));
	EXPECT_STREQ(q, get(self->home, "cpu.cfs_quota_us", buf, sizeof(buf)));
	EXPECT_STREQ(p, get(self->home, "cpu.cfs_period_us", buf, sizeof(buf)));
	EXPECT_FALSE(state_exists(self->g.pid));
}

/* ---- the VM run ---- */

FIXTURE(vm) {
	int unused;
};

FIXTURE_SETUP(vm)
{
}

FIXTURE_TEARDOWN(vm)
{
}

static void vm_case(struct __test_metadata *_metadata, const char *series)
{
	char *out = NULL, pat[64], *l, *save = NULL;
	struct proc p = { 0 };
	unsigned int pass = 0, fail = 1, skip = 0;
	glob_t g;
	double t0 = mono_s();

	if (getenv("LMIG_VM") && !strcmp(getenv("LMIG_VM"), "1"))
		SKIP(return, "already in the VM");
	if (series) {
		snprintf(pat, sizeof(pat), "/boot/vmlinuz-%s.*", series);
		if (glob(pat, 0, NULL, &g) || !g.gl_pathc)
			SKIP(return, "no %s kernel here", pat);
		setenv("KERNEL", g.gl_pathv[g.gl_pathc - 1], 1);
		globfree(&g);
	}
	ASSERT_EQ(0, vm_run(&p, "throttle_vcpu.sh", false, 150, 170, &out));
	ASSERT_NE(NULL, out);
	if (proc_exit_code(&p) == 4)
		SKIP({ free(out); return; }, "no VM here: %.900s", p.err_log);
	TH_LOG("%s; %.1f s in all", p.err_log, mono_s() - t0);
	EXPECT_EQ(0, proc_exit_code(&p));
	/* The inner run's TAP, shown as comments so it never reads as ours. */
	for (l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l[strcspn(l, "\r")] = 0;
		fprintf(stderr, "#   vm| %s\n", l);
		sscanf(l, "# Totals: pass:%u fail:%u xfail:%*u xpass:%*u skip:%u", &pass, &fail,
		       &skip);
	}
	EXPECT_EQ(0, fail);
	EXPECT_EQ(8, pass) TH_LOG("the v2 cases that passed in the VM (skipped: %u)", skip);
	free(out);
	proc_kill(&p);
}

TEST_F_TIMEOUT(vm, cgroup_v2, 180)
{
	vm_case(_metadata, NULL);
}

TEST_F_TIMEOUT(vm, cgroup_v2_6_12, 180)
{
	vm_case(_metadata, "6.12");
}

TEST_HARNESS_MAIN

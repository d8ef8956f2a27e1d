// SPDX-License-Identifier: GPL-2.0-only
/*
 * The eBPF probes (bpf/probes.bpf.c, user/host/probes.c) and the commands on
 * them, on this kernel, as root:
 *
 * - a process that writes N fresh pages is counted N to 1.1 N write faults;
 * - two busy threads pinned on one CPU (round-robin real time, above
 *   other load)
 *   each wait on the run queue while the other runs (near half the wall
 *   time), one alone hardly waits;
 *   the probe agrees with wall time minus running time;
 * - `lmig stat --json` prints one object per interval with the documented
 *   keys, and the write faults of a process add up;
 * - the maps are pinned under /sys/fs/bpf/lmig while lmig stat runs, and
 *   `bpftool -j map dump pinned` gives JSON holding the watched process;
 *   --pin keeps them after exit and --unpin removes them;
 * - tracemark() and `lmig stat --trace` lines reach the trace buffer;
 * - `lmig top --json` lists a busy process;
 * - pid namespaces: lmig stat run inside a new pid namespace counts a
 *   process there by the pid it has there, and one in a namespace below
 *   that; lmig in the initial namespace counts a process in a child
 *   namespace by its pid in the initial one;
 * - bpftool finds every program and map of the probe object by its name
 *   while lmig stat runs.
 *
 * Every test is SKIP where the probes cannot load (not root, lmig built
 * without them, no BPF).  The KVM counters are checked in the VM
 * (vm/probes.sh, test_vm_probes).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#if __has_include("probes_config.h")
#include "probes_config.h"
#endif
#ifdef LMIG_HAVE_PROBES
#include <dirent.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "probes.skel.h"
#endif

#include "cli/report.h"
#include "host/probes.h"
#include "host/tracemark.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define PAGE	4096UL
#define NPAGES	10000

/* Skip unless the probes load here; leaves them closed. */
#define NEED_PROBES()								\
	do {									\
		struct probes _p;						\
		if (probes_open(&_p, getpid(), 0))				\
			SKIP(return, "probes unavailable: %s", _p.why);		\
		probes_close(&_p);						\
	} while (0)

/*
 * A child that waits for a byte on a pipe, then writes one byte to each of
 * n fresh anonymous pages, reports on the other pipe and waits to be killed.
 */
struct toucher {
	pid_t pid;
	int go, done;
};

static int toucher_start(struct toucher *t, unsigned long n)
{
	int a[2], b[2];

	if (pipe(a) || pipe(b))
		return -1;
	t->pid = fork();
	if (t->pid < 0)
		return -1;
	if (!t->pid) {
		char c;
		char *m;

		/* Gone with the test, so nothing is left holding its pipes. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(a[1]);
		close(b[0]);
		if (read(a[0], &c, 1) != 1)
			_exit(1);
		m = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(1);
		for (unsigned long i = 0; i < n; i++)
			m[i * PAGE] = 1;
		if (write(b[1], "d", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	t->go = a[1];
	t->done = b[0];
	return 0;
}

/* Release the child and wait until it wrote its pages. */
static int toucher_run(struct toucher *t)
{
	char c;

	if (write(t->go, "g", 1) != 1)
		return -1;
	return read(t->done, &c, 1) == 1 ? 0 : -1;
}

static void toucher_stop(struct toucher *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		close(t->go);
		close(t->done);
	}
	t->pid = 0;
}

TEST(write_faults_counted)
{
	struct toucher t = { 0 };
	struct probe_sample s;
	struct probes p;

	NEED_PROBES();
	ASSERT_EQ(0, toucher_start(&t, NPAGES));
	ASSERT_EQ(0, probes_open(&p, t.pid, 0)) TH_LOG("%s", p.why);
	ASSERT_EQ(0, probes_sample(&p, &s));
	ASSERT_EQ(0, toucher_run(&t));
	ASSERT_EQ(0, probes_sample(&p, &s)) TH_LOG("%s", p.why);
	TH_LOG("%d pages written: %llu write faults, %llu faults", NPAGES,
	       (unsigned long long)s.c.write_faults, (unsigned long long)s.c.faults);
	EXPECT_GE(s.c.write_faults, NPAGES);
	EXPECT_LE(s.c.write_faults, NPAGES * 11 / 10);
	EXPECT_GE(s.c.faults, s.c.write_faults);
	/* The one thread carries them. */
	ASSERT_GE(s.nthreads, 1);
	EXPECT_EQ(t.pid, s.threads[0].tid);
	EXPECT_EQ(s.c.write_faults, s.threads[0].c.write_faults);
	/* Nothing more once it stops writing. */
	ASSERT_EQ(0, probes_sample(&p, &s));
	EXPECT_LE(s.c.write_faults, 10);
	probes_close(&p);
	toucher_stop(&t);
}

/* A child with n threads spinning on cpu until killed. */
static void *spin(void *arg)
{
	volatile unsigned long x = 0;

	for (;;)
		x++;
	return NULL;
}

static void autogroup_nice(int nice)
{
	FILE *f = fopen("/proc/self/autogroup", "w");

	if (f) {
		fprintf(f, "%d", nice);
		fclose(f);
	}
}

static pid_t spinners(int n, int cpu)
{
	pid_t pid = fork();

	if (!pid) {
		cpu_set_t set;
		pthread_t th;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
		/* Above other load on the CPU (the machine may be busy), so the
		 * threads share it between themselves: round-robin real time
		 * (the kernel's RT limit leaves others 5 %), or failing that
		 * nice -20 in a session of its own (with autogroups a nice
		 * value only counts inside the session's group). */
		if (sched_setscheduler(0, SCHED_RR, &(struct sched_param){ .sched_priority = 1 })) {
			setsid();
			autogroup_nice(-20);
			setpriority(PRIO_PROCESS, 0, -20);
		}
		for (int i = 1; i < n; i++)
			pthread_create(&th, NULL, spin, NULL);
		spin(NULL);
	}
	return pid;
}

/* The kernel's running time of a thread (schedstat field 1), in ns. */
static uint64_t runtime_ns(pid_t pid, pid_t tid)
{
	unsigned long long run = 0;
	char path[80];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &run) != 1)
			run = 0;
		fclose(f);
	}
	return run;
}

/*
 * Run n spinning threads on one CPU for about two seconds; for each thread
 * the probe's steal % and the truth: a busy thread not running is waiting,
 * so its wait is wall time minus running time.
 */
static void measure_spin(struct __test_metadata *_metadata, int n, double *steal, double *truth)
{
	int cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	uint64_t run0[8] = { 0 };
	struct probe_sample s;
	struct timespec ts = { 0, 200 * 1000000L };
	struct probes p;
	pid_t pid = spinners(n, cpu);
	double t0;

	ASSERT_GT(pid, 0);
	nanosleep(&ts, NULL);
	ASSERT_EQ(0, probes_open(&p, pid, 0)) TH_LOG("%s", p.why);
	nanosleep(&ts, NULL);
	ASSERT_EQ(0, probes_sample(&p, &s));
	ASSERT_EQ(n, s.nthreads);
	t0 = mono_s();
	for (int i = 0; i < n; i++)
		run0[i] = runtime_ns(pid, s.threads[i].tid);
	/* Two seconds: round-robin slices are 100 ms. */
	ts.tv_sec = 2;
	ts.tv_nsec = 0;
	nanosleep(&ts, NULL);
	ASSERT_EQ(0, probes_sample(&p, &s));
	ASSERT_EQ(n, s.nthreads);
	for (int i = 0; i < n; i++) {
		double wall = mono_s() - t0;
		double ran = (runtime_ns(pid, s.threads[i].tid) - run0[i]) / 1e9;

		steal[i] = s.threads[i].steal_pct;
		truth[i] = 100.0 * (wall - ran) / wall;
		TH_LOG("%d thread(s) on CPU %d: thread %d waited %.1f %% of %.2f s (%.1f ms), "
		       "wall minus running time %.1f %%", n, cpu, s.threads[i].tid, steal[i],
		       s.interval_s, s.threads[i].c.rq_delay_ns / 1e6, truth[i]);
	}
	probes_close(&p);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(runqueue_two_threads_one_cpu)
{
	double steal[2], truth[2];

	NEED_PROBES();
	measure_spin(_metadata, 2, steal, truth);
	for (int i = 0; i < 2; i++) {
		/* Each waits while the other runs: about half the time. */
		EXPECT_GE(steal[i], 40);
		EXPECT_LE(steal[i], 65);
		EXPECT_LE(steal[i], truth[i] + 10);
		EXPECT_GE(steal[i], truth[i] - 10);
	}
	EXPECT_LE(steal[0] - steal[1], 10);
	EXPECT_LE(steal[1] - steal[0], 10);
}

TEST(runqueue_one_thread)
{
	double steal[1], truth[1];

	NEED_PROBES();
	measure_spin(_metadata, 1, steal, truth);
	/* Near 0: other load takes little of the CPU from it. */
	EXPECT_LE(steal[0], 10);
	EXPECT_LE(steal[0], truth[0] + 10);
	EXPECT_GE(steal[0], truth[0] - 10);
}

/* The value of "key":NUMBER, or -1. */
static double jnum(const char *s, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(s, pat);
	return p ? atof(p + strlen(pat)) : -1;
}

static int spawn_stat(struct proc *p, pid_t pid, const char *const extra[], char *ready,
		      size_t len)
{
	char spid[16];
	char *argv[24] = { (char *)lmig_path(), "stat", "--pid", spid, "--ready-fd", "3" };
	struct spawn_opts o;
	int rfd = -1, k = 6;

	memset(&o, 0, sizeof(o));
	o.ready_fd = &rfd;
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	for (int i = 0; extra && extra[i] && k < 23; i++)
		argv[k++] = (char *)extra[i];
	argv[k] = NULL;
	if (proc_spawn(p, argv, &o))
		return -1;
	return ready_line(rfd, ready, len, 10);
}

TEST(stat_json)
{
	static const char *const keys[] = { "pid", "interval_ms", "faults_per_s",
					    "write_faults_per_s", "guest_faults_per_s",
					    "guest_exits_per_s", "steal_pct", "faults",
					    "write_faults", "rq_delay_ms" };
	const char *const extra[] = { "--json", "--interval", "300", "--count", "3", NULL };
	struct toucher t = { 0 };
	struct proc p = { 0 };
	char ready[300], *line, *save = NULL;
	uint64_t wf = 0, v;
	int lines = 0;

	NEED_PROBES();
	ASSERT_EQ(0, toucher_start(&t, NPAGES));
	ASSERT_EQ(0, spawn_stat(&p, t.pid, extra, ready, sizeof(ready)))
		TH_LOG("lmig stat did not get ready: %s", p.err_log);
	ASSERT_EQ(0, toucher_run(&t));
	ASSERT_EQ(0, proc_wait(&p, 10));
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	for (line = strtok_r(p.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char with_nl[4096];

		snprintf(with_nl, sizeof(with_nl), "%s\n", line);
		EXPECT_TRUE(json_one_object(with_nl)) TH_LOG("line: %s", line);
		for (unsigned int i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			EXPECT_GE(jnum(line, keys[i]), 0) TH_LOG("no %s in %s", keys[i], line);
		}
		EXPECT_NE(NULL, strstr(line, "\"threads\":[{\"tid\":"));
		EXPECT_NE(NULL, strstr(line, "\"steal_pct\":"));
		ASSERT_EQ(0, json_u64_field(line, "pid", &v));
		EXPECT_EQ((uint64_t)t.pid, v);
		ASSERT_EQ(0, json_u64_field(line, "write_faults", &v));
		wf += v;
		lines++;
	}
	EXPECT_EQ(3, lines);
	TH_LOG("%d pages written: %llu write faults in lmig stat", NPAGES, (unsigned long long)wf);
	EXPECT_GE(wf, NPAGES);
	EXPECT_LE(wf, NPAGES * 11 / 10);
	proc_kill(&p);
	toucher_stop(&t);
}

/* `bpftool -j map dump pinned PATH` parsed by python's json; 0 if it holds key. */
static int dump_has(const char *map, pid_t key)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "bpftool -j map dump pinned %s/%s | python3 -c 'import json, sys; "
		 "d = json.load(sys.stdin); sys.exit(0 if any(e[\"formatted\"][\"key\"] == %d "
		 "for e in d) else 3)'", PROBES_PIN_DIR, map, (int)key);
	return system(cmd);
}

TEST(pinned_maps)
{
	const char *const extra[] = { "--interval", "100", NULL };
	const char *const pin[] = { "--pin", "--count", "1", "--interval", "100", NULL };
	char *unpin[] = { (char *)lmig_path(), "stat", "--unpin", NULL };
	struct toucher t = { 0 };
	struct proc p = { 0 }, q = { 0 };
	char ready[300];
	int st;

	NEED_PROBES();
	if (system("command -v bpftool >/dev/null && command -v python3 >/dev/null"))
		SKIP(return, "no bpftool or python3");
	ASSERT_EQ(0, toucher_start(&t, 100));
	ASSERT_EQ(0, spawn_stat(&p, t.pid, extra, ready, sizeof(ready)))
		TH_LOG("lmig stat did not get ready: %s", p.err_log);
	if (strcmp(ready, PROBES_PIN_DIR)) {
		proc_kill(&p);
		toucher_stop(&t);
		SKIP(return, "another lmig holds %s, so this one did not pin", PROBES_PIN_DIR);
	}
	ASSERT_EQ(0, toucher_run(&t));
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/lmig_procs", F_OK));
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/lmig_threads", F_OK));
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/lmig_kvm_exits", F_OK));
	st = dump_has("lmig_procs", t.pid);
	EXPECT_EQ(0, st) TH_LOG("bpftool dump of lmig_procs: no pid %d (status %d)", t.pid, st);
	st = dump_has("lmig_threads", t.pid);
	EXPECT_EQ(0, st) TH_LOG("bpftool dump of lmig_threads: no tid %d (status %d)", t.pid, st);
	/* Gone when lmig stat ends. */
	kill(p.pid, SIGINT);
	ASSERT_EQ(0, proc_wait(&p, 5));
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_NE(0, access(PROBES_PIN_DIR "/lmig_procs", F_OK));

	/* --pin: kept, with the programs, until --unpin. */
	memset(&p, 0, sizeof(p));
	ASSERT_EQ(0, spawn_stat(&p, t.pid, pin, ready, sizeof(ready)));
	ASSERT_EQ(0, proc_wait(&p, 5));
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/lmig_procs", F_OK));
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/link_page_fault_user", F_OK));
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/link_sched_switch", F_OK));
	EXPECT_EQ(0, dump_has("lmig_threads", t.pid));
	ASSERT_EQ(0, proc_spawn(&q, unpin, NULL));
	ASSERT_EQ(0, proc_wait(&q, 5));
	EXPECT_EQ(0, proc_exit_code(&q)) TH_LOG("stderr: %s", q.err_log);
	EXPECT_NE(0, access(PROBES_PIN_DIR, F_OK));
	proc_kill(&q);
	proc_kill(&p);
	toucher_stop(&t);
}

/* Is text in the trace buffer (read, not consumed)? */
static bool in_trace(const char *text)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "grep -qF '%s' /sys/kernel/tracing/trace", text);
	return system(cmd) == 0;
}

TEST(trace_marker)
{
	const char *const extra[] = { "--trace", "--count", "1", "--interval", "100", NULL };
	struct toucher t = { 0 };
	struct proc p = { 0 };
	char ready[300], mark[64], want[96];

	if (geteuid())
		SKIP(return, "needs root");
	ASSERT_TRUE(tracemark_mount()) TH_LOG("cannot open trace_marker");
	snprintf(mark, sizeof(mark), "selftest-%d-%ld", (int)getpid(), (long)time(NULL));
	tracemark("%s", mark);
	EXPECT_TRUE(in_trace(mark));

	NEED_PROBES();
	ASSERT_EQ(0, toucher_start(&t, 10));
	ASSERT_EQ(0, spawn_stat(&p, t.pid, extra, ready, sizeof(ready)))
		TH_LOG("%s", p.err_log);
	ASSERT_EQ(0, proc_wait(&p, 5));
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	snprintf(want, sizeof(want), "lmig: stat pid %d faults/s", (int)t.pid);
	EXPECT_TRUE(in_trace(want)) TH_LOG("no '%s' in the trace buffer", want);
	proc_kill(&p);
	toucher_stop(&t);
}

TEST(top_json)
{
	char *argv[] = { (char *)lmig_path(), "top", "--json", "--count", "1", "--interval", "500",
			 "--sort", "wfaults", NULL };
	struct toucher t = { 0 };
	struct proc p = { 0 };
	char want[32];

	NEED_PROBES();
	ASSERT_EQ(0, toucher_start(&t, NPAGES));
	ASSERT_EQ(0, proc_spawn(&p, argv, NULL));
	usleep(200 * 1000);	/* attached by now (it loads in a few ms) */
	ASSERT_EQ(0, toucher_run(&t));
	ASSERT_EQ(0, proc_wait(&p, 5));
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_TRUE(json_one_object(p.out)) TH_LOG("%s", p.out);
	snprintf(want, sizeof(want), "{\"pid\":%d,", (int)t.pid);
	EXPECT_NE(NULL, strstr(p.out, want)) TH_LOG("pid %d not in %s", t.pid, p.out);
	EXPECT_NE(NULL, strstr(p.out, "\"victim\":"));
	proc_kill(&p);
	toucher_stop(&t);
}

/* Write faults summed over `lmig stat --json` output, and its lines. */
static int stat_write_faults(char *out, pid_t pid, uint64_t *wf)
{
	char *line, *save = NULL;
	int lines = 0;
	uint64_t v;

	*wf = 0;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (json_u64_field(line, "pid", &v) || v != (uint64_t)pid ||
		    json_u64_field(line, "write_faults", &v))
			return -1;
		*wf += v;
		lines++;
	}
	return lines;
}

/*
 * In the process this runs in: `lmig stat --pid PID` over a toucher of
 * NPAGES pages whose pid (as this process sees it) is t->pid, and one
 * result line on fd: "NAME pid=P exit=E lines=L wf=W" (lines -1: a line
 * was not the watched pid's, or not JSON with write_faults).
 */
static void stat_case(int fd, const char *name, struct toucher *t)
{
	const char *const extra[] = { "--json", "--interval", "300", "--count", "3", NULL };
	struct proc p = { 0 };
	char ready[300];
	uint64_t wf = 0;
	int lines = -1, code = -1;

	if (!spawn_stat(&p, t->pid, extra, ready, sizeof(ready)) && !toucher_run(t) &&
	    !proc_wait(&p, 10)) {
		code = proc_exit_code(&p);
		lines = stat_write_faults(p.out, t->pid, &wf);
	}
	dprintf(fd, "%s pid=%d exit=%d lines=%d wf=%llu err=%.200s\n", name, (int)t->pid, code,
		lines, (unsigned long long)wf, p.err_log);
	proc_kill(&p);
}

/*
 * pid 1 of a new pid namespace, with its own /proc: lmig stat on a
 * toucher in this namespace ("same") and on one in a namespace below it
 * ("nested", pid 1 there); `lmig top` listing a toucher by its pid here
 * ("top pid=P found=0|1").
 */
static int pidns_init(int fd)
{
	char *top[] = { (char *)lmig_path(), "top", "--json", "--count", "1", "--interval", "700",
			"--sort", "wfaults", "--limit", "50", NULL };
	struct toucher t = { 0 }, n = { 0 }, u = { 0 };
	struct proc p = { 0 };
	char want[32];
	int self;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("proc", "/proc", "proc", 0, NULL)) {
		dprintf(fd, "error mount /proc: %s\n", strerror(errno));
		return 1;
	}
	dprintf(fd, "init pid=%d\n", (int)getpid());
	if (toucher_start(&t, NPAGES))
		return 1;
	stat_case(fd, "same", &t);
	toucher_stop(&t);

	/* A toucher one namespace further down; lmig itself stays here. */
	self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (self < 0 || unshare(CLONE_NEWPID) || toucher_start(&n, NPAGES) ||
	    setns(self, CLONE_NEWPID)) {
		dprintf(fd, "error nested namespace: %s\n", strerror(errno));
		return 1;
	}
	close(self);
	stat_case(fd, "nested", &n);
	toucher_stop(&n);

	if (toucher_start(&u, NPAGES) || proc_spawn(&p, top, NULL))
		return 1;
	usleep(300 * 1000);	/* attached by now */
	if (toucher_run(&u) || proc_wait(&p, 10))
		return 1;
	snprintf(want, sizeof(want), "{\"pid\":%d,", (int)u.pid);
	dprintf(fd, "top pid=%d exit=%d found=%d\n", (int)u.pid, proc_exit_code(&p),
		strstr(p.out, want) != NULL);
	proc_kill(&p);
	toucher_stop(&u);
	return 0;
}

/* The value of " key=" in line, or -1. */
static long kv(const char *line, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* The line of out starting with "name ", copied into buf; NULL if none. */
static const char *result(const char *out, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ' ') {
			snprintf(buf, len, "%.*s", (int)strcspn(l, "\n"), l);
			return buf;
		}
	return NULL;
}

TEST(pidns_lmig_inside)
{
	static const char *const cases[] = { "same", "nested" };
	char out[8192], buf[512];
	size_t len = 0;
	int fds[2], st;
	ssize_t r;
	pid_t c;

	NEED_PROBES();
	lmig_path();
	ASSERT_EQ(0, pipe(fds));
	c = fork();
	ASSERT_LE(0, c);
	if (!c) {
		pid_t g;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		if (unshare(CLONE_NEWPID | CLONE_NEWNS)) {
			dprintf(fds[1], "error unshare: %s\n", strerror(errno));
			_exit(1);
		}
		g = fork();
		if (!g)
			_exit(pidns_init(fds[1]));
		_exit(g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 && (r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += r;
	out[len] = 0;
	close(fds[0]);
	ASSERT_EQ(c, waitpid(c, &st, 0));
	for (char *l = out, *e; *l; l = e + 1) {
		e = strchr(l, '\n');
		if (!e)
			break;
		TH_LOG("%.*s", (int)(e - l), l);
	}
	ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("%s", out);
	ASSERT_NE(NULL, result(out, "init", buf, sizeof(buf)));
	EXPECT_EQ(1, kv(buf, "pid"));
	for (unsigned int i = 0; i < 2; i++) {
		long wf;

		ASSERT_NE(NULL, result(out, cases[i], buf, sizeof(buf))) TH_LOG("%s", out);
		EXPECT_EQ(0, kv(buf, "exit")) TH_LOG("%s", buf);
		EXPECT_EQ(3, kv(buf, "lines")) TH_LOG("%s", buf);
		wf = kv(buf, "wf");
		EXPECT_GE(wf, NPAGES) TH_LOG("%s", buf);
		EXPECT_LE(wf, NPAGES * 11 / 10) TH_LOG("%s", buf);
	}
	/* In this namespace's numbers: the toucher is its second process. */
	EXPECT_EQ(2, kv(result(out, "same", buf, sizeof(buf)), "pid"));
	ASSERT_NE(NULL, result(out, "top", buf, sizeof(buf)));
	EXPECT_EQ(0, kv(buf, "exit"));
	EXPECT_EQ(1, kv(buf, "found")) TH_LOG("lmig top inside did not list the toucher: %s", buf);
}

/* lmig in the initial namespace, a process in a child one, watched by its pid here. */
TEST(pidns_workload_in_child)
{
	const char *const extra[] = { "--json", "--interval", "300", "--count", "3", NULL };
	struct toucher t = { 0 };
	struct probe_sample s;
	struct proc p = { 0 };
	char ready[300], nspid[256], path[64];
	struct probes pr;
	uint64_t wf;
	int self;
	FILE *f;

	NEED_PROBES();
	self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self);
	ASSERT_EQ(0, unshare(CLONE_NEWPID));
	ASSERT_EQ(0, toucher_start(&t, NPAGES));
	ASSERT_EQ(0, setns(self, CLONE_NEWPID));
	close(self);
	/* It is pid 1 of its own namespace. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)t.pid);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	nspid[0] = 0;
	while (fgets(nspid, sizeof(nspid), f) && strncmp(nspid, "NSpid:", 6))
		;
	fclose(f);
	TH_LOG("toucher: %.*s", (int)strcspn(nspid, "\n"), nspid);
	EXPECT_NE(NULL, strstr(nspid, "\t1\n"));

	ASSERT_EQ(0, probes_open(&pr, t.pid, 0)) TH_LOG("%s", pr.why);
	ASSERT_EQ(0, probes_sample(&pr, &s));
	ASSERT_EQ(0, spawn_stat(&p, t.pid, extra, ready, sizeof(ready))) TH_LOG("%s", p.err_log);
	ASSERT_EQ(0, toucher_run(&t));
	ASSERT_EQ(0, probes_sample(&pr, &s)) TH_LOG("%s", pr.why);
	probes_close(&pr);
	TH_LOG("probes_sample: %llu write faults", (unsigned long long)s.c.write_faults);
	EXPECT_GE(s.c.write_faults, NPAGES);
	EXPECT_LE(s.c.write_faults, NPAGES * 11 / 10);
	ASSERT_EQ(0, proc_wait(&p, 10));
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_EQ(3, stat_write_faults(p.out, t.pid, &wf)) TH_LOG("%s", p.out);
	TH_LOG("lmig stat: %llu write faults", (unsigned long long)wf);
	EXPECT_GE(wf, NPAGES);
	EXPECT_LE(wf, NPAGES * 11 / 10);
	proc_kill(&p);
	toucher_stop(&t);
}

#ifdef LMIG_HAVE_PROBES
/*
 * The kernel's names of the programs (maps: false) that process pid holds,
 * from its fdinfo: up to max, each 16 bytes; their number.
 */
static int held_names(pid_t pid, bool progs, char names[][16], int max)
{
	const char *tag = progs ? "prog_id:" : "map_id:";
	char path[300], line[128];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d)) && n < max) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			struct bpf_prog_info pi = { 0 };
			struct bpf_map_info mi = { 0 };
			__u32 len = progs ? sizeof(pi) : sizeof(mi);
			unsigned int id;
			int fd;

			if (strncmp(line, tag, strlen(tag)))
				continue;
			id = strtoul(line + strlen(tag), NULL, 10);
			fd = progs ? bpf_prog_get_fd_by_id(id) : bpf_map_get_fd_by_id(id);
			if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, progs ? (void *)&pi : (void *)&mi,
							       &len))
				memcpy(names[n++], progs ? pi.name : mi.name, 16);
			if (fd >= 0)
				close(fd);
			break;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static bool among(const char *name, char names[][16], int n)
{
	for (int i = 0; i < n; i++)
		if (!strncmp(names[i], name, 16) && strlen(name) < 16)
			return true;
	return false;
}
#endif

/*
 * Every program and map of the probe object (names from the skeleton
 * lmig embeds) carries its whole name in the kernel, and bpftool finds it
 * by that name, while lmig stat has them loaded.
 */
TEST(bpftool_finds_every_name)
{
#ifndef LMIG_HAVE_PROBES
	SKIP(return, "lmig was built without probes");
#else
	const char *const extra[] = { "--interval", "100", NULL };
	char progs[64][16], maps[64][16], ready[300], cmd[200];
	struct toucher t = { 0 };
	struct proc p = { 0 };
	struct bpf_program *prog;
	struct probes_bpf *obj;
	struct bpf_map *map;
	int np, nm, checked = 0;
	bool reasons;

	NEED_PROBES();
	if (system("command -v bpftool >/dev/null"))
		SKIP(return, "no bpftool");
	/* lmig_kvm_reason is loaded only where kvm:kvm_exit is in tracefs. */
	tracemark_mount();
	reasons = !access("/sys/kernel/tracing/events/kvm/kvm_exit/id", R_OK);
	obj = probes_bpf__open();
	ASSERT_NE(NULL, obj);
	ASSERT_EQ(0, toucher_start(&t, 10));
	ASSERT_EQ(0, spawn_stat(&p, t.pid, extra, ready, sizeof(ready))) TH_LOG("%s", p.err_log);
	np = held_names(p.pid, true, progs, 64);
	nm = held_names(p.pid, false, maps, 64);
	TH_LOG("lmig stat holds %d programs, %d maps", np, nm);
	bpf_object__for_each_program(prog, obj->obj) {
		const char *name = bpf_program__name(prog);

		if (!strcmp(name, "lmig_kvm_reason") && !reasons) {
			TH_LOG("%s: not loaded here (no kvm:kvm_exit in tracefs)", name);
			continue;
		}
		EXPECT_TRUE(among(name, progs, np))
			TH_LOG("program %s: not under its whole name in the kernel", name);
		snprintf(cmd, sizeof(cmd), "bpftool prog show name %s >/dev/null", name);
		EXPECT_EQ(0, system(cmd)) TH_LOG("%s failed", cmd);
		checked++;
	}
	bpf_object__for_each_map(map, obj->obj) {
		const char *name = bpf_map__name(map);

		if (bpf_map__is_internal(map))
			continue;	/* .rodata, .bss: libbpf names them itself */
		EXPECT_TRUE(among(name, maps, nm))
			TH_LOG("map %s: not under its whole name in the kernel", name);
		snprintf(cmd, sizeof(cmd), "bpftool map show name %s >/dev/null", name);
		EXPECT_EQ(0, system(cmd)) TH_LOG("%s failed", cmd);
		checked++;
	}
	TH_LOG("%d names checked", checked);
	EXPECT_GE(checked, 5);
	probes_bpf__destroy(obj);
	kill(p.pid, SIGINT);
	EXPECT_EQ(0, proc_wait(&p, 5));
	proc_kill(&p);
	toucher_stop(&t);
#endif
}


/*
 * The report of lmig send words the probes' state from struct
 * probes_status (cli/report_notes.c): the same words probes_open() puts
 * in why and note, cut as the report cuts them.
 */
static void expect_words(struct __test_metadata *_metadata, const struct probes *p, bool ok)
{
	char want[200], got[200];

	if (ok)
		snprintf(want, sizeof(want), "on%s%.180s", p->note[0] ? ": " : "", p->note);
	else
		snprintf(want, sizeof(want), "off: %.190s", p->why);
	report_probes_words(&p->status, got, sizeof(got));
	EXPECT_STREQ(want, got);
	EXPECT_EQ(ok, p->status.on);
}

TEST(report_words)
{
	struct probes p, q;
	pid_t gone = fork();

	ASSERT_LE(0, gone);
	if (!gone)
		_exit(0);
	ASSERT_EQ(gone, waitpid(gone, NULL, 0));
	EXPECT_EQ(-1, probes_open(&p, gone, 0));
	expect_words(_metadata, &p, false);
#ifdef LMIG_HAVE_PROBES
	EXPECT_EQ(PROBES_OFF_NO_PROCESS, p.status.off);
	EXPECT_EQ(gone, p.status.pid);
#else
	EXPECT_EQ(PROBES_OFF_NOT_BUILT, p.status.off);
#endif
	probes_close(&p);
	if (probes_open(&p, getpid(), PROBES_PIN)) {
		expect_words(_metadata, &p, false);
		SKIP(return, "probes unavailable: %s", p.why);
	}
	expect_words(_metadata, &p, true);
	/* A second lmig finds the pins held: a note says so. */
	ASSERT_EQ(0, probes_open(&q, getpid(), PROBES_PIN)) TH_LOG("%s", q.why);
	EXPECT_TRUE(q.status.notes & PROBES_NOTE_PIN_HELD) TH_LOG("%s", q.note);
	expect_words(_metadata, &q, true);
	probes_close(&q);
	probes_close(&p);
}
TEST(errors_one_line)
{
	char *nopid[] = { (char *)lmig_path(), "stat", "--pid", "4194000", "--count", "1", NULL };
	char *usage[] = { (char *)lmig_path(), "stat", NULL };
	struct proc p = { 0 }, q = { 0 };

	ASSERT_EQ(0, proc_spawn(&p, nopid, NULL));
	ASSERT_EQ(0, proc_wait(&p, 5));
	EXPECT_EQ(1, proc_exit_code(&p));
	EXPECT_TRUE(one_line(p.err)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_NE(NULL, strstr(p.err, "4194000"));
	ASSERT_EQ(0, proc_spawn(&q, usage, NULL));
	ASSERT_EQ(0, proc_wait(&q, 5));
	EXPECT_EQ(2, proc_exit_code(&q));
	EXPECT_TRUE(one_line(q.err)) TH_LOG("stderr: %s", q.err_log);
	proc_kill(&p);
	proc_kill(&q);
}

TEST_HARNESS_MAIN

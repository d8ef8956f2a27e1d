// SPDX-License-Identifier: GPL-2.0-only
/*
 * The eBPF probes (bpf/probes.bpf.c, user/probes.c) and the commands on
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
 * - `lmig top --json` lists a busy process.
 *
 * Every test is SKIP where the probes cannot load (not root, lmig built
 * without them, no BPF).  The KVM counters are checked in the VM
 * (vm/probes.sh, test_vm_probes).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "probes.h"
#include "tracemark.h"
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
	EXPECT_EQ(0, access(PROBES_PIN_DIR "/lmig_exit_reasons", F_OK));
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

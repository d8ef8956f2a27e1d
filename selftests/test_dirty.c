// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig dirty`, the workload of the live-migration tests: it must write
 * at the rate it is asked for, leave content that can be checked, pace
 * itself on CPU time when told to, and its memfd must be migratable as
 * /proc/PID/fd/N while it runs.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define PAGE	4096ULL
#define MiB	(1024ULL * 1024)

FIXTURE(dirty) {
	char dir[256], obj[320], out[320];
	struct proc dw, rx, tx;
};

FIXTURE_SETUP(dirty)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 32 * MiB));
	snprintf(self->obj, sizeof(self->obj), "%s/obj", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
}

FIXTURE_TEARDOWN(dirty)
{
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	proc_kill(&self->dw);
	scratch_remove(self->dir);
}

/* The counter pattern, as documented in user/workload/dirty_mem.c. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Check every page of a counter-pattern object; returns the sum of the
 * pages' write counters (rewrites after the fill), or -1 on a bad page.
 */
static int64_t counter_check(const char *path, uint64_t size, uint64_t *bad_page)
{
	int fd = open(path, O_RDONLY);
	const uint64_t *m;
	int64_t sum = 0;

	if (fd < 0)
		return -1;
	m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	for (uint64_t p = 0; p < size / PAGE && sum >= 0; p++) {
		const uint64_t *w = m + p * (PAGE / 8);

		if (w[0] != p)
			sum = -1;
		uint64_t seed = mix64(p * 0x100000001b3ULL ^ w[1] << 20);

		for (uint64_t i = 2; i < PAGE / 8 && sum >= 0; i++)
			if (w[i] != (seed ^ i * 0x9e3779b97f4a7c15ULL))
				sum = -1;
		if (sum < 0)
			*bad_page = p;
		else
			sum += w[1];
	}
	munmap((void *)m, size);
	return sum;
}

/* Wait for a stopped `lmig dirty` and check its report. */
static void check_report(struct __test_metadata *_metadata, struct proc *p, uint64_t *written,
			 uint64_t *write_ms, uint64_t *cpu_ms)
{
	char status[32];

	ASSERT_EQ(0, proc_wait(p, 5)) TH_LOG("lmig dirty did not stop");
	ASSERT_EQ(0, proc_exit_code(p)) TH_LOG("stderr: %s", p->err_log);
	ASSERT_TRUE(json_one_object(p->out)) TH_LOG("stdout: %s", p->out);
	ASSERT_EQ(0, json_str_field(p->out, "status", status, sizeof(status)));
	EXPECT_STREQ("completed", status);
	ASSERT_EQ(0, json_u64_field(p->out, "pages_written", written));
	ASSERT_EQ(0, json_u64_field(p->out, "write_ms", write_ms));
	ASSERT_EQ(0, json_u64_field(p->out, "cpu_ms", cpu_ms));
}

/* 8 MB/s for 2 s over a 16 MiB file: about 3900 rewrites, each one checkable. */
TEST_F(dirty, counter_rate_wall)
{
	const char *const args[] = { "--mem", self->obj, "--size", "16Mi", "--rate", "8M",
				     "--duration", "2", NULL };
	char path[512];
	uint64_t written, write_ms, cpu_ms, filled, bad = 0;
	double expect;
	struct stat sb;

	ASSERT_EQ(0, dirty_start(&self->dw, args, path, sizeof(path)));
	EXPECT_STREQ(self->obj, path);
	check_report(_metadata, &self->dw, &written, &write_ms, &cpu_ms);
	ASSERT_EQ(0, json_u64_field(self->dw.out, "pages_filled", &filled));
	EXPECT_EQ(16 * MiB / PAGE, filled);
	EXPECT_GE(write_ms, 1950);
	EXPECT_LE(write_ms, 2300);
	expect = 8e6 * write_ms / 1000 / PAGE;
	TH_LOG("%llu pages in %llu ms, %.0f expected", (unsigned long long)written,
	       (unsigned long long)write_ms, expect);
	EXPECT_GE(written, 0.9 * expect);
	EXPECT_LE(written, 1.1 * expect);
	/* Wall pace sleeps between bursts: far less CPU than wall time. */
	EXPECT_LT(cpu_ms, write_ms / 2);

	ASSERT_EQ(0, stat(self->obj, &sb));
	EXPECT_EQ(16 * MiB, sb.st_size);
	/* Every rewrite counted once in some page's counter. */
	EXPECT_EQ((int64_t)written, counter_check(self->obj, 16 * MiB, &bad))
		TH_LOG("page %llu does not hold the counter pattern", (unsigned long long)bad);
}

/* CPU pace spins: CPU time follows wall time, and the rate follows CPU time. */
TEST_F(dirty, cpu_pace)
{
	const char *const args[] = { "--mem", self->obj, "--size", "8Mi", "--rate", "4M",
				     "--pace", "cpu", "--duration", "1", NULL };
	char path[512];
	uint64_t written, write_ms, cpu_ms;
	double expect;

	ASSERT_EQ(0, dirty_start(&self->dw, args, path, sizeof(path)));
	check_report(_metadata, &self->dw, &written, &write_ms, &cpu_ms);
	TH_LOG("%llu pages, %llu ms wall, %llu ms CPU", (unsigned long long)written,
	       (unsigned long long)write_ms, (unsigned long long)cpu_ms);
	/* The fill's CPU time is in cpu_ms too; the pace counts from its end. */
	EXPECT_GE(cpu_ms, 0.8 * write_ms);
	expect = 4e6 * cpu_ms / 1000 / PAGE;
	EXPECT_LE(written, 1.05 * expect);
	EXPECT_GE(written, 0.8 * expect);
}

/* An existing object is extended, not refilled, and its content kept. */
TEST_F(dirty, existing_object_no_fill)
{
	const char *const args[] = { "--mem", self->obj, "--size", "4Mi", "--rate", "0",
				     "--duration", "1", NULL };
	char path[512], pattern[8] = "lmig!!!";
	uint64_t written, write_ms, cpu_ms, filled;
	int fd = open(self->obj, O_CREAT | O_WRONLY, 0600);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(8, pwrite(fd, pattern, 8, 0));
	close(fd);
	ASSERT_EQ(0, dirty_start(&self->dw, args, path, sizeof(path)));
	check_report(_metadata, &self->dw, &written, &write_ms, &cpu_ms);
	ASSERT_EQ(0, json_u64_field(self->dw.out, "pages_filled", &filled));
	EXPECT_EQ(0, filled);
	EXPECT_EQ(0, written);
	fd = open(self->obj, O_RDONLY);
	ASSERT_GE(fd, 0);
	memset(pattern, 0, sizeof(pattern));
	EXPECT_EQ(8, pread(fd, pattern, 8, 0));
	close(fd);
	EXPECT_STREQ("lmig!!!", pattern);
	/* Extended with zeros: the one page written above is the only non-zero one. */
	EXPECT_EQ(4 * MiB / PAGE - 1, image_zero_pages(self->obj));
}

/*
 * A memfd held by `lmig dirty` migrates as /proc/PID/fd/N: the image
 * received equals the memfd's content byte for byte.
 */
TEST_F(dirty, memfd_migrates)
{
	const char *const args[] = { "--mem", "memfd:lmig-test", "--size", "12Mi", "--rate", "0",
				     "--pattern", "text", NULL };
	char path[512], want[64];
	uint64_t written, write_ms, cpu_ms, compressed;
	int port;

	ASSERT_EQ(0, dirty_start(&self->dw, args, path, sizeof(path)));
	snprintf(want, sizeof(want), "/proc/%d/fd/", (int)self->dw.pid);
	EXPECT_EQ(0, strncmp(path, want, strlen(want))) TH_LOG("path %s", path);

	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, path, port,
				(const char *const[]){ "--compress", "lz4", NULL }));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	ASSERT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(path, self->out));
	/* The text pattern is what lz4 is for. */
	ASSERT_EQ(0, json_u64_field(self->tx.out, "pages_compressed", &compressed));
	EXPECT_EQ(12 * MiB / PAGE, compressed);

	ASSERT_EQ(0, kill(self->dw.pid, SIGTERM));
	check_report(_metadata, &self->dw, &written, &write_ms, &cpu_ms);
	EXPECT_EQ(0, written);
}

/* Run `lmig dirtyrate --json ARGS...` to its end; its stdout is in p->out. */
static void dirtyrate(struct __test_metadata *_metadata, struct proc *p, const char *const args[])
{
	const char *argv[16] = { lmig_path(), "dirtyrate", "--json" };
	char status[32];
	int n = 3;

	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	ASSERT_EQ(0, proc_spawn(p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(p, 30)) TH_LOG("lmig dirtyrate still running");
	ASSERT_EQ(0, proc_exit_code(p)) TH_LOG("stderr: %s", p->err_log);
	ASSERT_TRUE(json_one_object(p->out)) TH_LOG("stdout: %s", p->out);
	ASSERT_EQ(0, json_str_field(p->out, "status", status, sizeof(status)));
	ASSERT_STREQ("completed", status);
}

/*
 * The scan tracker sees what `lmig dirty` writes: 8 MB/s over a 64 MiB
 * object, measured in four half-second intervals.  A page written twice in
 * an interval counts once: about 3 % fewer than written here.
 */
TEST_F(dirty, dirtyrate_scan_sees_the_writer)
{
	const char *const args[] = { "--mem", self->obj, "--size", "64Mi", "--rate", "8M", NULL };
	const char *const dr[] = { "--mem", self->obj, "--tracker", "scan", "--interval", "500",
				   "--count", "4", NULL };
	char path[512], tracker[16];
	struct proc p = { 0 };
	double mbps;

	ASSERT_EQ(0, dirty_start(&self->dw, args, path, sizeof(path)));
	dirtyrate(_metadata, &p, dr);
	mbps = json_dbl(p.out, "dirty_mbps");
	TH_LOG("dirty rate %.2f MB/s, harvest %.1f ms at %.2f GB/s", mbps,
	       json_dbl(p.out, "harvest_ms"), json_dbl(p.out, "harvest_gbps"));
	EXPECT_GE(mbps, 0.75 * 8);
	EXPECT_LE(mbps, 1.1 * 8);
	ASSERT_EQ(0, json_str_field(p.out, "tracker", tracker, sizeof(tracker)));
	EXPECT_STREQ("scan", tracker);
	EXPECT_GT(json_dbl(p.out, "harvest_gbps"), 0);
	proc_kill(&p);
}

/* Memory nobody writes has no dirty page, in a memfd reached through /proc. */
TEST_F(dirty, dirtyrate_idle_memfd_is_clean)
{
	const char *const args[] = { "--mem", "memfd:lmig-idle", "--size", "8Mi", "--rate", "0",
				     NULL };
	char path[512], why[512];
	struct proc p = { 0 };
	uint64_t pages;

	ASSERT_EQ(0, dirty_start(&self->dw, args, path, sizeof(path)));
	dirtyrate(_metadata, &p, (const char *const[]){ "--mem", path, "--interval", "100",
							"--count", "3", NULL });
	EXPECT_EQ(0, json_dbl(p.out, "dirty_mbps")) TH_LOG("%s", p.out);
	for (int i = 0; i < 3; i++) {
		char key[32];

		snprintf(key, sizeof(key), "dirty_pages_%d", i);
		ASSERT_EQ(0, json_u64_field(p.out, key, &pages));
		EXPECT_EQ(0, pages);
	}
	ASSERT_EQ(0, json_str_field(p.out, "tracker_why", why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "auto picked scan"));
	proc_kill(&p);
}

/* A writer thread of this test process: `pages_per_s` random pages of anon memory. */
struct anon_writer {
	uint8_t *mem;
	uint64_t pages, pages_per_s;
	volatile int stop;
	uint64_t written;
};

static void *anon_write(void *arg)
{
	struct anon_writer *w = arg;
	uint64_t x = 88172645463325252ULL;
	double t0 = mono_s();

	while (!w->stop) {
		double due = (mono_s() - t0) * w->pages_per_s;

		for (; w->written < due; w->written++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memset(w->mem + x % w->pages * PAGE, (int)w->written | 1, PAGE);
		}
		usleep(1000);
	}
	return NULL;
}

/*
 * Private anonymous memory of another process (here: this test's), read
 * with process_vm_readv: 2000 pages/s into 32 MiB, measured by scan.
 */
TEST_F(dirty, dirtyrate_anon_of_a_process)
{
	struct anon_writer w = { .pages = 32 * MiB / PAGE, .pages_per_s = 2000 };
	char range[64], pid[16];
	struct proc p = { 0 };
	pthread_t th;
	double mbps, want = 2000 * PAGE / 1e6;

	w.mem = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, w.mem);
	memset(w.mem, 0x5a, 32 * MiB);
	snprintf(range, sizeof(range), "anon:%lx-%lx", (unsigned long)w.mem,
		 (unsigned long)(w.mem + 32 * MiB));
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ASSERT_EQ(0, pthread_create(&th, NULL, anon_write, &w));
	dirtyrate(_metadata, &p, (const char *const[]){ "--pid", pid, "--mem", range,
							"--interval", "500", "--count", "4", NULL });
	w.stop = 1;
	pthread_join(th, NULL);
	mbps = json_dbl(p.out, "dirty_mbps");
	TH_LOG("dirty rate %.2f MB/s, %.2f written", mbps, want);
	/* 1000 random pages of 8192 per interval: about 6 % land twice. */
	EXPECT_GE(mbps, 0.75 * want);
	EXPECT_LE(mbps, 1.1 * want);
	proc_kill(&p);
	munmap(w.mem, 32 * MiB);
}

/* An object that cannot be made: exit 1, one line naming it, a failed report. */
TEST_F(dirty, cannot_create)
{
	const char *const args[] = { "--mem", "/nonexistent-dir/obj", "--size", "1Mi", "--rate", "1M",
				     NULL };
	char path[512], status[32];

	ASSERT_EQ(-1, dirty_start(&self->dw, args, path, sizeof(path)));
	ASSERT_EQ(0, proc_wait(&self->dw, 5));
	EXPECT_EQ(1, proc_exit_code(&self->dw));
	EXPECT_TRUE(one_line(self->dw.err)) TH_LOG("stderr: %s", self->dw.err_log);
	EXPECT_NE(NULL, strstr(self->dw.err, "/nonexistent-dir/obj")) TH_LOG("%s", self->dw.err_log);
	ASSERT_EQ(0, json_str_field(self->dw.out, "status", status, sizeof(status)));
	EXPECT_STREQ("failed", status);
}

TEST_HARNESS_MAIN

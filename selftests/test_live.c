// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live migration end to end: `lmig dirty` writes its memory at a known
 * rate while `lmig send --pid` migrates it to `lmig recv` over loopback.
 *
 *   converge.*   every tracker here (scan, uffd) on a memfd and on private
 *                anonymous memory: the migration converges, the source stays
 *                paused, and the image is the source's memory at the freeze,
 *                byte for byte, holding the writer's checkable pattern
 *   live.*       --then kill; a receiver or sender killed while the source is
 *                paused (it runs again); the resume, lmig's or its guard's,
 *                never reaches a process that took a dead workload's pid; cgroup v1 and v2 freezing on success
 *                and on failure; --timeout and --max-rounds on a migration
 *                that cannot converge; usage errors
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <lmig/wire.h>

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/relay.h"
#include "lib/sock.h"

#define PAGE		4096ULL
#define MiB		(1024ULL * 1024)
#define RESUME_MAX_S	1.0	/* a paused source must run again this soon after a failure */
#define FAIL_MAX_S	2.0	/* ... and lmig send must have given up this soon */
#define CGROUP_MAGIC	0x27e0eb	/* cgroup v1 */
#define CGROUP2_MAGIC	0x63677270

#define ARGS(...)	((const char *const[]){ __VA_ARGS__, NULL })

/* ---- the workload's memory ---------------------------------------------- */

struct env {
	char dir[256], out[320], partial[340];
	char mem[256];		/* what `lmig send --mem` takes: /proc/PID/fd/N or anon:S-E */
	char pid[16];
	uint64_t size;
	bool anon;
	struct proc dw, rx, tx;
	/* a test cgroup the writer was moved into, or "" */
	char cg[320], cg_parent[256];
	bool cg_v1;
};

static void env_setup(struct __test_metadata *_metadata, struct env *e)
{
	memset(e, 0, sizeof(*e));
	ASSERT_EQ(0, scratch_make(e->dir, sizeof(e->dir), 80 * MiB));
	snprintf(e->out, sizeof(e->out), "%s/out.img", e->dir);
	snprintf(e->partial, sizeof(e->partial), "%s.partial", e->out);
}

static void env_teardown(struct env *e)
{
	proc_kill(&e->tx);
	proc_kill(&e->rx);
	if (e->cg[0]) {
		/* Thaw, move the writer back out, and remove the cgroup. */
		write_str(e->cg, e->cg_v1 ? "freezer.state" : "cgroup.freeze", e->cg_v1 ? "THAWED" : "0");
		if (e->dw.pid && !e->dw.exited)
			write_str(e->cg_parent, "cgroup.procs", e->pid);
		proc_kill(&e->dw);
		for (int i = 0; i < 50 && rmdir(e->cg) && errno == EBUSY; i++)
			usleep(20 * 1000);
		e->cg[0] = 0;
	}
	proc_kill(&e->dw);
	scratch_remove(e->dir);
}

/*
 * Start `lmig dirty` on a memfd or on private anonymous memory of the given
 * size, writing rate bytes per second of the counter pattern.
 */
static void writer_start(struct __test_metadata *_metadata, struct env *e, bool anon, bool uffd,
			 uint64_t size, const char *rate)
{
	char sz[32];
	const char *args[12] = { "--mem", anon ? "anon" : "memfd:lmig-live", "--size", sz,
				 "--rate", rate };
	int n = 6;

	if (uffd)
		args[n++] = "--uffd";
	args[n] = NULL;
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	e->size = size;
	e->anon = anon;
	ASSERT_EQ(0, dirty_start(&e->dw, args, e->mem, sizeof(e->mem)));
	snprintf(e->pid, sizeof(e->pid), "%d", (int)e->dw.pid);
	if (anon) {
		unsigned long s, end;

		ASSERT_EQ(2, sscanf(e->mem, "anon:%lx-%lx", &s, &end)) TH_LOG("%s", e->mem);
		ASSERT_EQ(size, end - s);
	} else {
		char want[64];

		snprintf(want, sizeof(want), "/proc/%s/fd/", e->pid);
		ASSERT_EQ(0, strncmp(e->mem, want, strlen(want))) TH_LOG("%s", e->mem);
	}
}

/* A copy of the writer's memory as it is now (malloc'd), or NULL. */
static uint8_t *mem_snapshot(const struct env *e)
{
	uint8_t *buf = malloc(e->size);
	uint64_t got = 0;

	if (!buf)
		return NULL;
	if (e->anon) {
		unsigned long s, end;

		if (sscanf(e->mem, "anon:%lx-%lx", &s, &end) != 2)
			goto fail;
		while (got < e->size) {
			struct iovec l = { buf + got, e->size - got };
			struct iovec r = { (void *)(s + got), e->size - got };
			ssize_t n = process_vm_readv(e->dw.pid, &l, 1, &r, 1, 0);

			if (n <= 0)
				goto fail;
			got += n;
		}
	} else {
		int fd = open(e->mem, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			goto fail;
		while (got < e->size) {
			ssize_t n = pread(fd, buf + got, e->size - got, got);

			if (n <= 0)
				break;
			got += n;
		}
		close(fd);
		if (got != e->size)
			goto fail;
	}
	return buf;
fail:
	free(buf);
	return NULL;
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
 * Check every page of counter-pattern memory; returns the sum of the
 * pages' write counters (rewrites after the fill), or -1 with the first
 * bad page in *bad.
 */
static int64_t counter_sum(const uint8_t *mem, uint64_t size, uint64_t *bad)
{
	int64_t sum = 0;

	for (uint64_t p = 0; p < size / PAGE; p++) {
		const uint64_t *w = (const uint64_t *)(mem + p * PAGE);
		uint64_t seed = mix64(p * 0x100000001b3ULL ^ w[1] << 20);

		if (w[0] != p)
			goto bad;
		for (uint64_t i = 2; i < PAGE / 8; i++)
			if (w[i] != (seed ^ i * 0x9e3779b97f4a7c15ULL))
				goto bad;
		sum += w[1];
		continue;
bad:
		*bad = p;
		return -1;
	}
	return sum;
}

/*
 * The writer's counter sum now, or -1.  A page may be read while it is
 * rewritten, so only its counter word is used: each one only grows, and
 * what is read lies between its values before and after the read.
 */
static int64_t writer_sum(const struct env *e)
{
	uint8_t *m = mem_snapshot(e);
	int64_t sum = 0;

	if (!m)
		return -1;
	for (uint64_t p = 0; p < e->size / PAGE; p++)
		sum += ((const uint64_t *)(m + p * PAGE))[1];
	free(m);
	return sum;
}

/* ---- processes ------------------------------------------------------------ */

static bool is_stopped(pid_t pid)
{
	char s = pid_state(pid);

	return s == 'T' || s == 't';
}

/* Does the writer still write?  Its counters must grow within a second. */
static bool writer_runs(const struct env *e)
{
	int64_t a = writer_sum(e), b = a;

	for (int i = 0; i < 20 && a >= 0 && b == a; i++) {
		usleep(50 * 1000);
		b = writer_sum(e);
	}
	return a >= 0 && b > a;
}

/* The writer is frozen by its cgroup (v1 FROZEN, v2 "frozen 1"). */
static int cg_frozen(const struct env *e)
{
	char buf[4096];

	if (e->cg_v1)
		return read_str(e->cg, "freezer.state", buf, sizeof(buf)) ? -1 :
		       !strncmp(buf, "FROZEN", 6);
	if (read_str(e->cg, "cgroup.events", buf, sizeof(buf)))
		return -1;
	return strstr(buf, "frozen 1") != NULL;
}

/* Is the writer paused by the method in use (signal: state T; cgroup: frozen)? */
static bool writer_paused(const struct env *e)
{
	return e->cg[0] ? cg_frozen(e) == 1 : is_stopped(e->dw.pid);
}

/*
 * Wait until the writer is paused while lmig send still runs, for up to
 * timeout_s; returns the time it was seen paused, or 0.
 */
static double wait_paused(struct env *e, double timeout_s)
{
	double deadline = mono_s() + timeout_s;

	while (mono_s() < deadline) {
		if (writer_paused(e))
			return mono_s();
		if (proc_wait(&e->tx, 0) == 0)
			return 0;
		usleep(500);
	}
	return 0;
}

/* Wait until the writer is no longer paused; returns when, or 0 after timeout_s. */
static double wait_resumed(struct env *e, double timeout_s)
{
	double deadline = mono_s() + timeout_s;

	while (mono_s() < deadline) {
		if (!writer_paused(e))
			return mono_s();
		usleep(500);
	}
	return 0;
}

/* ---- lmig send / recv ------------------------------------------------------ */

struct round {
	uint64_t round, dirty_pages, bytes_wire;
	int frozen;
};

/* The objects of the report's "rounds" array; returns how many, or -1. */
static int rounds_parse(const char *json, struct round *r, int max)
{
	const char *p = strstr(json, "\"rounds\":[");
	int n = 0;

	if (!p)
		return -1;
	p += strlen("\"rounds\":[");
	while (*p == '{' && n < max) {
		const char *end = strchr(p, '}');
		char obj[1024];

		if (!end || (size_t)(end - p + 1) >= sizeof(obj))
			return -1;
		memcpy(obj, p, end - p + 1);
		obj[end - p + 1] = 0;
		if (json_u64_field(obj, "round", &r[n].round) ||
		    json_u64_field(obj, "dirty_pages", &r[n].dirty_pages) ||
		    json_u64_field(obj, "bytes_wire", &r[n].bytes_wire))
			return -1;
		r[n].frozen = json_bool(obj, "frozen");
		n++;
		p = end + 1;
		if (*p == ',')
			p++;
	}
	return *p == ']' ? n : -1;
}

/* Start the receiver, then `lmig send --pid WRITER --mem ... EXTRA...`. */
static void migrate_start(struct __test_metadata *_metadata, struct env *e,
			  const char *const extra[])
{
	const char *args[32] = { "--pid", e->pid, "--no-progress" };
	int n = 3, port;

	for (; extra && *extra && n < 31; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	port = recv_start(&e->rx, e->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&e->tx, e->mem, port, args));
}

/* Both ends completed; the receiver verified the digest the sender sent. */
static void check_completed(struct __test_metadata *_metadata, struct env *e, double timeout_s)
{
	char status[32], d_tx[64], d_rx[64];

	ASSERT_EQ(0, proc_wait(&e->tx, timeout_s)) TH_LOG("lmig send still running");
	ASSERT_EQ(0, proc_wait(&e->rx, 5)) TH_LOG("lmig recv still running");
	ASSERT_EQ(0, proc_exit_code(&e->tx)) TH_LOG("send: %s", e->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&e->rx)) TH_LOG("recv: %s", e->rx.err_log);
	ASSERT_TRUE(json_one_object(e->tx.out)) TH_LOG("send stdout: %s", e->tx.out);
	ASSERT_TRUE(json_one_object(e->rx.out)) TH_LOG("recv stdout: %s", e->rx.out);
	ASSERT_EQ(0, json_str_field(e->tx.out, "status", status, sizeof(status)));
	EXPECT_STREQ("completed", status);
	ASSERT_EQ(0, json_str_field(e->rx.out, "status", status, sizeof(status)));
	EXPECT_STREQ("completed", status);
	ASSERT_EQ(0, json_str_field(e->tx.out, "digest", d_tx, sizeof(d_tx)));
	ASSERT_EQ(0, json_str_field(e->rx.out, "digest", d_rx, sizeof(d_rx)));
	EXPECT_STREQ(d_tx, d_rx);
	EXPECT_EQ(32, strlen(d_tx));
	EXPECT_TRUE(path_exists(e->out));
	EXPECT_FALSE(path_exists(e->partial));
}

/*
 * lmig send failed as promised: exit status 1 within limit_s of since, one
 * line on stderr containing one of words (if any), a "failed" report.
 */
static void check_send_failed(struct __test_metadata *_metadata, struct env *e, double since,
			      double limit_s, const char *const words[])
{
	char status[32] = "";
	bool named = !words;

	ASSERT_EQ(0, proc_wait(&e->tx, limit_s + 5)) TH_LOG("lmig send still running");
	TH_LOG("send failed %.3f s after the fault: %.*s", e->tx.t_exit - since,
	       (int)strcspn(e->tx.err, "\n"), e->tx.err);
	EXPECT_EQ(1, proc_exit_code(&e->tx)) TH_LOG("wait status 0x%x", e->tx.status);
	EXPECT_LE(e->tx.t_exit - since, limit_s);
	EXPECT_TRUE(one_line(e->tx.err)) TH_LOG("stderr is not one line: '%s'", e->tx.err_log);
	for (; words && *words; words++)
		named |= strstr(e->tx.err, *words) != NULL;
	EXPECT_TRUE(named) TH_LOG("stderr does not name the cause: %s", e->tx.err_log);
	EXPECT_TRUE(json_one_object(e->tx.out)) TH_LOG("stdout: '%s'", e->tx.out);
	EXPECT_EQ(0, json_str_field(e->tx.out, "status", status, sizeof(status)));
	EXPECT_STREQ("failed", status);
	EXPECT_EQ(0, json_bool(e->tx.out, "converged"));
	EXPECT_FALSE(path_exists(e->out)) TH_LOG("%s exists after a failed migration", e->out);
}

/* ---- 1. convergence with each tracker, on each kind of memory ----------- */

FIXTURE(converge) {
	struct env e;
};

FIXTURE_VARIANT(converge) {
	const char *tracker;
	bool anon;
};

FIXTURE_VARIANT_ADD(converge, scan_memfd) { .tracker = "scan", .anon = false };
FIXTURE_VARIANT_ADD(converge, scan_anon) { .tracker = "scan", .anon = true };
FIXTURE_VARIANT_ADD(converge, uffd_memfd) { .tracker = "uffd", .anon = false };
FIXTURE_VARIANT_ADD(converge, uffd_anon) { .tracker = "uffd", .anon = true };

FIXTURE_SETUP(converge)
{
	env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(converge)
{
	env_teardown(&self->e);
}

/*
 * 32 MiB written at 16 MB/s, migrated over a 64 MB/s link (round 0 alone
 * takes half a second): converges, and the image is the memory at the
 * freeze.
 */
TEST_F(converge, image_is_the_memory_at_the_freeze)
{
	struct env *e = &self->e;
	bool uffd = !strcmp(variant->tracker, "uffd");
	char s[64];
	struct round r[64];
	uint8_t *mem, *img;
	uint64_t bad = 0, written;
	int64_t before, sum, diff = -1;
	int n;

	writer_start(_metadata, e, variant->anon, uffd, 32 * MiB, "16M");
	before = writer_sum(e);
	ASSERT_GE(before, 0);
	migrate_start(_metadata, e, ARGS("--tracker", variant->tracker, "--bandwidth", "64M"));
	check_completed(_metadata, e, 20);

	ASSERT_EQ(1, json_bool(e->tx.out, "live")) TH_LOG("%s", e->tx.out);
	EXPECT_EQ(1, json_bool(e->tx.out, "converged"));
	ASSERT_EQ(0, json_str_field(e->tx.out, "tracker", s, sizeof(s)));
	EXPECT_STREQ(variant->tracker, s);
	ASSERT_EQ(0, json_str_field(e->tx.out, "frozen", s, sizeof(s)));
	EXPECT_STREQ("signal", s);
	ASSERT_EQ(0, json_str_field(e->tx.out, "source", s, sizeof(s)));
	EXPECT_STREQ("paused", s);
	EXPECT_GT(json_dbl(e->tx.out, "downtime_ms"), 0);
	n = rounds_parse(e->tx.out, r, 64);
	ASSERT_GE(n, 2) TH_LOG("rounds: %s", e->tx.out);
	EXPECT_EQ(32 * MiB / PAGE, r[0].dirty_pages);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(i, r[i].round);
		EXPECT_EQ(i == n - 1, r[i].frozen) TH_LOG("round %d", i);
	}
	TH_LOG("%s on %s: %d rounds, downtime %.1f ms (freeze %.2f ms, final harvest %.2f ms, %llu pages in the final round)",
	       variant->tracker, variant->anon ? "anon" : "memfd", n,
	       json_dbl(e->tx.out, "downtime_ms"), json_dbl(e->tx.out, "freeze_ms"),
	       json_dbl(e->tx.out, "final_harvest_ms"), (unsigned long long)r[n - 1].dirty_pages);

	/* The source stays paused after the commit (--then keep). */
	EXPECT_TRUE(is_stopped(e->dw.pid)) TH_LOG("state %c", pid_state(e->dw.pid));
	mem = mem_snapshot(e);
	ASSERT_NE(NULL, mem);
	img = file_load(e->out, e->size);
	ASSERT_NE(NULL, img) TH_LOG("cannot read %s as %llu bytes", e->out, (unsigned long long)e->size);
	for (uint64_t p = 0; p < e->size / PAGE; p++)
		if (memcmp(mem + p * PAGE, img + p * PAGE, PAGE)) {
			diff = p;
			break;
		}
	EXPECT_EQ(-1, diff) TH_LOG("page %lld of the image differs from the paused source",
				   (long long)diff);
	sum = counter_sum(img, e->size, &bad);
	EXPECT_GE(sum, 0) TH_LOG("page %llu does not hold the counter pattern",
				 (unsigned long long)bad);
	/* It was written while it migrated. */
	TH_LOG("%lld rewrites before the send, %lld in the image", (long long)before, (long long)sum);
	EXPECT_GT(sum, before);
	free(mem);
	free(img);

	/* Resumed and stopped, the writer reports at least the writes the image holds. */
	ASSERT_EQ(0, kill(e->dw.pid, SIGCONT));
	ASSERT_EQ(0, kill(e->dw.pid, SIGTERM));
	ASSERT_EQ(0, proc_wait(&e->dw, 5));
	ASSERT_EQ(0, json_u64_field(e->dw.out, "pages_written", &written)) TH_LOG("%s", e->dw.out);
	EXPECT_GE(written, (uint64_t)sum);
}

/* ---- 2..6 --------------------------------------------------------------- */

FIXTURE(live) {
	struct env e;
};

FIXTURE_SETUP(live)
{
	env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(live)
{
	env_teardown(&self->e);
}

/* 2. --then kill: after the verified commit the source is gone. */
TEST_F(live, then_kill)
{
	struct env *e = &self->e;
	char s[32];

	writer_start(_metadata, e, false, false, 32 * MiB, "8M");
	migrate_start(_metadata, e, ARGS("--tracker", "scan", "--then", "kill"));
	check_completed(_metadata, e, 20);
	ASSERT_EQ(0, json_str_field(e->tx.out, "source", s, sizeof(s)));
	EXPECT_STREQ("killed", s);
	ASSERT_EQ(0, proc_wait(&e->dw, 2)) TH_LOG("the source still exists, state %c",
						    pid_state(e->dw.pid));
	EXPECT_TRUE(WIFSIGNALED(e->dw.status) && WTERMSIG(e->dw.status) == SIGKILL)
		TH_LOG("wait status 0x%x", e->dw.status);
}

/*
 * A migration whose final round, sent with the writer paused, takes most
 * of a second: 32 MiB at 24 MB/s, written at 32 MB/s (each round dirties
 * most of what it sends), and a downtime budget that lets it freeze after
 * the first harvest.
 */
static const char *const *slow_final_round(const char *freeze)
{
	static const char *args[16];
	int n = 0;

	args[n++] = "--tracker";
	args[n++] = "scan";
	args[n++] = "--bandwidth";
	args[n++] = "24M";
	args[n++] = "--downtime-ms";
	args[n++] = "60000";
	args[n++] = "--channels";
	args[n++] = "2";
	args[n++] = "--freeze";
	args[n++] = freeze;
	args[n] = NULL;
	return args;
}

/*
 * Kill one end while the writer is paused for the final round: the writer
 * must run again within RESUME_MAX_S, and no image must appear.
 */
static void kill_while_paused(struct __test_metadata *_metadata, struct env *e, bool kill_sender)
{
	double t_paused, t_kill, t_resumed;

	t_paused = wait_paused(e, 15);
	ASSERT_NE(0, t_paused) TH_LOG("the writer was never paused; send: %s", e->tx.err_log);
	ASSERT_EQ(0, kill(kill_sender ? e->tx.pid : e->rx.pid, SIGKILL));
	t_kill = mono_s();
	t_resumed = wait_resumed(e, 5);
	ASSERT_NE(0, t_resumed) TH_LOG("the writer is still paused 5 s after the %s died",
				       kill_sender ? "sender" : "receiver");
	TH_LOG("%s killed %.0f ms into the pause; writer resumed %.1f ms later",
	       kill_sender ? "sender" : "receiver", (t_kill - t_paused) * 1000,
	       (t_resumed - t_kill) * 1000);
	EXPECT_LE(t_resumed - t_kill, RESUME_MAX_S);
	if (kill_sender) {
		ASSERT_EQ(0, proc_wait(&e->tx, 2));
		EXPECT_TRUE(WIFSIGNALED(e->tx.status));
		ASSERT_EQ(0, proc_wait(&e->rx, FAIL_MAX_S + 1)) TH_LOG("recv still running");
		EXPECT_EQ(1, proc_exit_code(&e->rx)) TH_LOG("recv: %s", e->rx.err_log);
		/* The receiver was not killed: it cleans up its partial image. */
		EXPECT_FALSE(path_exists(e->partial));
		EXPECT_FALSE(path_exists(e->out));
	} else {
		char s[32];

		check_send_failed(_metadata, e, t_kill, FAIL_MAX_S,
				  ARGS("closed", "reset", "Broken pipe"));
		ASSERT_EQ(0, json_str_field(e->tx.out, "source", s, sizeof(s)));
		EXPECT_STREQ("resumed", s);
		/* A killed receiver may leave PATH.partial, never PATH. */
		EXPECT_FALSE(path_exists(e->out));
	}
	EXPECT_TRUE(writer_runs(e)) TH_LOG("the writer does not write after the failure");
}

/* 3. The receiver dies while the source is stopped: it runs again at once. */
TEST_F(live, receiver_killed_while_frozen)
{
	struct env *e = &self->e;

	writer_start(_metadata, e, false, false, 32 * MiB, "32M");
	migrate_start(_metadata, e, slow_final_round("signal"));
	kill_while_paused(_metadata, e, false);
}

/* The receiver dies in round 0: send fails at once, the source never stopped. */
TEST_F(live, receiver_killed_in_round_0)
{
	struct env *e = &self->e;
	double t_kill;

	writer_start(_metadata, e, false, false, 32 * MiB, "8M");
	migrate_start(_metadata, e, ARGS("--tracker", "scan", "--bandwidth", "20M"));
	usleep(700 * 1000);
	ASSERT_EQ(-1, proc_wait(&e->tx, 0)) TH_LOG("send ended early: %s", e->tx.err_log);
	ASSERT_TRUE(holds_file_in(e->rx.pid, e->dir)) TH_LOG("no image file while receiving");
	ASSERT_EQ(0, kill(e->rx.pid, SIGKILL));
	t_kill = mono_s();
	check_send_failed(_metadata, e, t_kill, FAIL_MAX_S, ARGS("closed", "reset", "Broken pipe"));
	EXPECT_FALSE(is_stopped(e->dw.pid)) TH_LOG("state %c", pid_state(e->dw.pid));
	EXPECT_TRUE(writer_runs(e));
}

/* The sender is SIGKILLed while the source is stopped: its guard resumes it. */
TEST_F(live, sender_killed_while_frozen)
{
	struct env *e = &self->e;

	writer_start(_metadata, e, false, false, 32 * MiB, "32M");
	migrate_start(_metadata, e, slow_final_round("signal"));
	kill_while_paused(_metadata, e, true);
}

/*
 * A process of our own with exactly this pid (clone3 with set_tid), which
 * stops itself at once and exits with 7 if it is ever continued.  Returns
 * its pid, or -1.
 */
static pid_t impostor_with_pid(pid_t want)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
			 tls, set_tid, set_tid_size, cgroup;
	} ca = { .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&want, .set_tid_size = 1 };
	long r = syscall(SYS_clone3, &ca, sizeof(ca));

	if (r == 0) {
		syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
		_exit(7);
	}
	return r > 0 ? (pid_t)r : -1;
}

/* The freeze guard: the child of lmig send named lmig-guard, or 0. */
static pid_t guard_of(pid_t send)
{
	char path[64], buf[256], comm[32];
	FILE *f;
	int pid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)send, (int)send);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fscanf(f, "%d", &pid) == 1) {
		snprintf(buf, sizeof(buf), "/proc/%d/comm", pid);
		if (read_str("/proc", buf + 6, comm, sizeof(comm)) == 0 &&
		    !strncmp(comm, "lmig-guard", 10)) {
			fclose(f);
			return pid;
		}
	}
	fclose(f);
	return 0;
}

/*
 * The workload dies while paused and its pid is taken by another process
 * (stopped, like the workload was); then one end dies.  The resume that
 * follows - by lmig send when the receiver dies, by its guard when lmig
 * send is SIGKILLed - must not reach the newcomer: it goes through a
 * pidfd taken when --pid was checked (the guard's before the fork); a raw
 * pid would continue whatever process holds the number now.
 */
static void resume_after_pid_reuse(struct __test_metadata *_metadata, struct env *e,
				   bool kill_sender)
{
	pid_t old, guard, imp;
	int st;

	if (geteuid() != 0)
		SKIP(return, "choosing a pid (clone3 set_tid) needs root");
	writer_start(_metadata, e, false, false, 32 * MiB, "32M");
	migrate_start(_metadata, e, slow_final_round("signal"));
	ASSERT_NE(0, wait_paused(e, 15)) TH_LOG("the writer was never paused; send: %s",
						e->tx.err_log);
	/* Let the freeze settle: the final round is on the wire now. */
	usleep(100 * 1000);
	guard = guard_of(e->tx.pid);
	ASSERT_GT(guard, 0) TH_LOG("no lmig-guard child of lmig send");
	old = e->dw.pid;
	ASSERT_EQ(0, kill(old, SIGKILL));
	ASSERT_EQ(0, proc_wait(&e->dw, 2));
	imp = impostor_with_pid(old);
	if (imp < 0)
		SKIP(return, "cannot take pid %d for a new process: %s", (int)old, strerror(errno));
	for (int i = 0; i < 1000 && !is_stopped(imp); i++)
		usleep(1000);
	ASSERT_TRUE(is_stopped(imp)) TH_LOG("the impostor did not stop");
	if (kill_sender) {
		ASSERT_EQ(0, kill(e->tx.pid, SIGKILL));
		ASSERT_EQ(0, proc_wait(&e->tx, 2));
		ASSERT_TRUE(WIFSIGNALED(e->tx.status)) TH_LOG("send ended before the kill: %s",
							      e->tx.err_log);
	} else {
		ASSERT_EQ(0, kill(e->rx.pid, SIGKILL));
		ASSERT_EQ(0, proc_wait(&e->tx, FAIL_MAX_S + 5));
		EXPECT_EQ(1, proc_exit_code(&e->tx)) TH_LOG("send: %s", e->tx.err_log);
	}
	/* The guard acts on the closed pipe or stands down, then exits. */
	for (int i = 0; i < 2000; i++) {
		char s = pid_state(guard);

		if (!s || s == 'Z')
			break;
		usleep(1000);
	}
	EXPECT_TRUE(!pid_state(guard) || pid_state(guard) == 'Z') TH_LOG("the guard still runs");
	EXPECT_TRUE(is_stopped(imp)) TH_LOG("pid %d, now another process, was continued (state %c)",
					    (int)imp, pid_state(imp));
	kill(imp, SIGKILL);
	EXPECT_EQ(imp, waitpid(imp, &st, 0));
	EXPECT_TRUE(WIFSIGNALED(st)) TH_LOG("the impostor exited with %d: it was continued",
					    WEXITSTATUS(st));
}

TEST_F(live, guard_ignores_reused_pid)
{
	resume_after_pid_reuse(_metadata, &self->e, true);
}

TEST_F(live, resume_ignores_reused_pid)
{
	resume_after_pid_reuse(_metadata, &self->e, false);
}

/* ---- 4. cgroup freezing ---------------------------------------------------- */

/*
 * Make a test cgroup under base (a v1 freezer hierarchy or cgroup2) and
 * move the writer into it.  Returns 0, or -1 with why set for a SKIP.
 */
static int cgroup_enter(struct env *e, const char *base, bool v1, char *why, size_t len)
{
	struct statfs sf;
	unsigned int r = 0;
	char buf[64];

	if (statfs(base, &sf) || sf.f_type != (v1 ? CGROUP_MAGIC : CGROUP2_MAGIC)) {
		snprintf(why, len, "no cgroup %s hierarchy at %s", v1 ? "v1 freezer" : "v2", base);
		return -1;
	}
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = getpid();
	snprintf(e->cg_parent, sizeof(e->cg_parent), "%s", base);
	snprintf(e->cg, sizeof(e->cg), "%s/lmig-test-%08x", base, r);
	if (mkdir(e->cg, 0755)) {
		snprintf(why, len, "cannot make %s: %s", e->cg, strerror(errno));
		e->cg[0] = 0;
		return -1;
	}
	e->cg_v1 = v1;
	if (read_str(e->cg, v1 ? "freezer.state" : "cgroup.freeze", buf, sizeof(buf))) {
		snprintf(why, len, "%s has no %s", e->cg, v1 ? "freezer.state" : "cgroup.freeze");
		goto undo;
	}
	if (write_str(e->cg, "cgroup.procs", e->pid)) {
		snprintf(why, len, "cannot move the writer into %s: %s", e->cg, strerror(errno));
		goto undo;
	}
	return 0;
undo:
	rmdir(e->cg);
	e->cg[0] = 0;
	return -1;
}

/* The cgroup's freeze file: "FROZEN"/"THAWED" (v1) or "1"/"0" (v2). */
static void cg_state(const struct env *e, char *buf, size_t len)
{
	if (read_str(e->cg, e->cg_v1 ? "freezer.state" : "cgroup.freeze", buf, len))
		snprintf(buf, len, "?");
	buf[strcspn(buf, "\n")] = 0;
}

static void cgroup_success(struct __test_metadata *_metadata, struct env *e, const char *base,
			   bool v1)
{
	char why[400], spec[400], s[32];
	uint8_t *img;
	int64_t sum, again;
	uint64_t bad = 0;

	writer_start(_metadata, e, false, false, 32 * MiB, "8M");
	if (cgroup_enter(e, base, v1, why, sizeof(why)))
		SKIP(return, "%s", why);
	snprintf(spec, sizeof(spec), "cgroup:%s", e->cg);
	migrate_start(_metadata, e, ARGS("--tracker", "scan", "--freeze", spec, "--bandwidth", "64M"));
	check_completed(_metadata, e, 20);
	ASSERT_EQ(0, json_str_field(e->tx.out, "frozen", s, sizeof(s)));
	EXPECT_STREQ(v1 ? "cgroup-v1" : "cgroup-v2", s);
	TH_LOG("downtime %.1f ms, freeze %.2f ms", json_dbl(e->tx.out, "downtime_ms"),
	       json_dbl(e->tx.out, "freeze_ms"));
	EXPECT_EQ(1, cg_frozen(e)) TH_LOG("the cgroup is not frozen after the commit");
	cg_state(e, s, sizeof(s));
	EXPECT_STREQ(v1 ? "FROZEN" : "1", s);
	/* Frozen means frozen: the memory is the image and stays so. */
	img = file_load(e->out, e->size);
	ASSERT_NE(NULL, img);
	sum = counter_sum(img, e->size, &bad);
	EXPECT_GE(sum, 0) TH_LOG("page %llu does not hold the counter pattern",
				 (unsigned long long)bad);
	usleep(200 * 1000);
	again = writer_sum(e);
	EXPECT_EQ(sum, again) TH_LOG("the frozen writer wrote on");
	free(img);
}

static void cgroup_failure(struct __test_metadata *_metadata, struct env *e, const char *base,
			   bool v1)
{
	char why[400], spec[400], s[32];

	writer_start(_metadata, e, false, false, 32 * MiB, "32M");
	if (cgroup_enter(e, base, v1, why, sizeof(why)))
		SKIP(return, "%s", why);
	snprintf(spec, sizeof(spec), "cgroup:%s", e->cg);
	migrate_start(_metadata, e, slow_final_round(spec));
	kill_while_paused(_metadata, e, false);
	cg_state(e, s, sizeof(s));
	EXPECT_STREQ(v1 ? "THAWED" : "0", s);
	EXPECT_EQ(0, cg_frozen(e));
}

TEST_F(live, cgroup_v1_frozen_after_success)
{
	cgroup_success(_metadata, &self->e, "/sys/fs/cgroup/freezer", true);
}

TEST_F(live, cgroup_v2_frozen_after_success)
{
	cgroup_success(_metadata, &self->e, "/sys/fs/cgroup/unified", false);
}

TEST_F(live, cgroup_v1_thawed_after_failure)
{
	cgroup_failure(_metadata, &self->e, "/sys/fs/cgroup/freezer", true);
}

TEST_F(live, cgroup_v2_thawed_after_failure)
{
	cgroup_failure(_metadata, &self->e, "/sys/fs/cgroup/unified", false);
}

/* --freeze cgroup:DIR when the writer is not in DIR: refused before anything is sent. */
TEST_F(live, cgroup_not_a_member)
{
	struct env *e = &self->e;
	char why[400], spec[400];
	int port, fd;
	struct proc other = { 0 };

	writer_start(_metadata, e, false, false, 8 * MiB, "1M");
	if (cgroup_enter(e, "/sys/fs/cgroup/unified", false, why, sizeof(why)) &&
	    cgroup_enter(e, "/sys/fs/cgroup/freezer", true, why, sizeof(why)))
		SKIP(return, "%s", why);
	/* Move it back out: the cgroup exists, but the writer is not in it. */
	ASSERT_EQ(0, write_str(e->cg_parent, "cgroup.procs", e->pid));
	snprintf(spec, sizeof(spec), "cgroup:%s", e->cg);
	fd = sock_reserve(&port);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, send_start(&other, e->mem, port, ARGS("--pid", e->pid, "--freeze", spec)));
	ASSERT_EQ(0, proc_wait(&other, 5));
	EXPECT_EQ(1, proc_exit_code(&other)) TH_LOG("%s", other.err_log);
	EXPECT_TRUE(one_line(other.err)) TH_LOG("%s", other.err_log);
	EXPECT_NE(NULL, strstr(other.err, "not in that cgroup")) TH_LOG("%s", other.err_log);
	proc_kill(&other);
	close(fd);
}

/* ---- 5. no convergence --------------------------------------------------- */

/* The failure leaves the writer running and no image behind. */
static void check_not_converged(struct __test_metadata *_metadata, struct env *e, double since,
				double limit_s)
{
	char s[32];

	check_send_failed(_metadata, e, since, limit_s, ARGS("did not converge"));
	/* It was never paused: "running", not "resumed". */
	ASSERT_EQ(0, json_str_field(e->tx.out, "source", s, sizeof(s)));
	EXPECT_STREQ("running", s);
	EXPECT_FALSE(is_stopped(e->dw.pid)) TH_LOG("state %c", pid_state(e->dw.pid));
	EXPECT_TRUE(writer_runs(e));
	ASSERT_EQ(0, proc_wait(&e->rx, FAIL_MAX_S + 1)) TH_LOG("recv still running");
	EXPECT_EQ(1, proc_exit_code(&e->rx)) TH_LOG("recv: %s", e->rx.err_log);
	EXPECT_FALSE(path_exists(e->out));
	EXPECT_FALSE(path_exists(e->partial));
}

/* Written at 40 MB/s, carried at 10 MB/s: --timeout 3 ends it. */
TEST_F(live, timeout_not_converging)
{
	struct env *e = &self->e;
	struct round r[64];

	writer_start(_metadata, e, false, false, 16 * MiB, "40M");
	migrate_start(_metadata, e, ARGS("--tracker", "scan", "--bandwidth", "10M", "--timeout", "3"));
	check_not_converged(_metadata, e, e->tx.t_start, 3 + FAIL_MAX_S);
	EXPECT_NE(NULL, strstr(e->tx.err, "--timeout 3")) TH_LOG("%s", e->tx.err_log);
	EXPECT_GE(rounds_parse(e->tx.out, r, 64), 1);
}

/* A round 0 far longer than --timeout: the limit holds inside a round too. */
TEST_F(live, timeout_inside_round_0)
{
	struct env *e = &self->e;

	writer_start(_metadata, e, false, false, 32 * MiB, "8M");
	migrate_start(_metadata, e, ARGS("--tracker", "scan", "--bandwidth", "8M", "--timeout", "1"));
	check_not_converged(_metadata, e, e->tx.t_start, 1 + FAIL_MAX_S);
}

/* --downtime-ms 1 is below what a switch-over costs: --max-rounds 3 ends it. */
TEST_F(live, max_rounds)
{
	struct env *e = &self->e;
	struct round r[64];

	writer_start(_metadata, e, false, false, 32 * MiB, "8M");
	migrate_start(_metadata, e, ARGS("--tracker", "scan", "--downtime-ms", "1",
					 "--max-rounds", "3"));
	check_not_converged(_metadata, e, e->tx.t_start, 10);
	EXPECT_NE(NULL, strstr(e->tx.err, "3 rounds")) TH_LOG("%s", e->tx.err_log);
	EXPECT_EQ(3, rounds_parse(e->tx.out, r, 64)) TH_LOG("%s", e->tx.out);
}

/* ---- 6. usage --------------------------------------------------------------- */

/* `lmig send ARGS...` fails before it connects: exit status, one line naming want. */
static void send_refused(struct __test_metadata *_metadata, const char *const args[], int code,
			 const char *want)
{
	const char *argv[24] = { lmig_path(), "send" };
	struct proc p = { 0 };
	int n = 2;

	for (; *args && n < 23; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&p, 5)) TH_LOG("lmig send still running");
	EXPECT_EQ(code, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_TRUE(one_line(p.err)) TH_LOG("stderr is not one line: '%s'", p.err_log);
	EXPECT_NE(NULL, strstr(p.err, want)) TH_LOG("stderr does not name '%s': %s", want, p.err_log);
	proc_kill(&p);
}

TEST_F(live, usage_errors)
{
	struct env *e = &self->e;
	char to[32], img[340];
	int port, fd = sock_reserve(&port);

	ASSERT_GE(fd, 0);
	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	snprintf(img, sizeof(img), "%s/src.img", e->dir);
	ASSERT_EQ(0, image_write(img, IMG_RANDOM, 1 * MiB));
	writer_start(_metadata, e, false, false, 4 * MiB, "1M");

	send_refused(_metadata, ARGS("--mem", img, "--to", to, "--freeze", "signal"), 2, "--pid");
	send_refused(_metadata, ARGS("--mem", img, "--to", to, "--then", "kill"), 2, "--pid");
	send_refused(_metadata, ARGS("--mem", "anon:7f0000000000-7f0000100000", "--to", to), 2,
		     "--pid");
	send_refused(_metadata, ARGS("--mem", e->mem, "--to", to, "--pid", e->pid, "--freeze",
				     "bogus"), 2, "bogus");
	send_refused(_metadata, ARGS("--mem", e->mem, "--to", to, "--pid", e->pid, "--then",
				     "maybe"), 2, "maybe");
	send_refused(_metadata, ARGS("--mem", e->mem, "--to", to, "--pid", e->pid, "--tracker",
				     "nosuch"), 2, "nosuch");
	/* Not usage but a failed migration; it must name the cgroup, not the refused connect. */
	send_refused(_metadata, ARGS("--mem", e->mem, "--to", to, "--pid", e->pid, "--freeze",
				     "cgroup:/nonexistent"), 1, "/nonexistent");
	send_refused(_metadata, ARGS("--mem", e->mem, "--to", to, "--pid", e->pid, "--freeze",
				     "cgroup:/tmp"), 1, "/tmp");
	/* Nothing was touched: the writer was never stopped. */
	EXPECT_FALSE(is_stopped(e->dw.pid));
	EXPECT_TRUE(writer_runs(e));
	close(fd);
}

/* ---- the confirmed commit: a lost reply never leaves a copy next to a running source ---- */

FIXTURE(commit) {
	struct env e;
	struct relay rl;
};

FIXTURE_SETUP(commit)
{
	env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(commit)
{
	relay_stop(&self->rl);
	env_teardown(&self->e);
}

/*
 * A live migration of a 32 MiB writer whose channel 0 replies pass the
 * relay: the first reply with magic gets act.
 */
static void migrate_via_relay(struct __test_metadata *_metadata, struct env *e, struct relay *rl,
			      uint32_t magic, enum relay_act act)
{
	const char *const args[] = { "--pid", e->pid, "--no-progress", "--tracker", "scan",
				     "--bandwidth", "64M", NULL };
	int port;

	writer_start(_metadata, e, false, false, 32 * MiB, "8M");
	port = recv_start(&e->rx, e->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, relay_start(rl, port, magic, act));
	ASSERT_EQ(0, send_start(&e->tx, e->mem, rl->f.port, args));
}

/* The writer stays paused for 2 s: nothing resumes it. */
static void check_stays_paused(struct __test_metadata *_metadata, struct env *e)
{
	for (int i = 0; i < 40; i++) {
		ASSERT_TRUE(is_stopped(e->dw.pid))
			TH_LOG("the source runs %d ms after the outcome became unknown (state %c)",
			       i * 50, pid_state(e->dw.pid));
		usleep(50 * 1000);
	}
}

/* The image committed at the receiver is the paused source, byte for byte. */
static void check_image_is_source(struct __test_metadata *_metadata, struct env *e)
{
	uint8_t *mem = mem_snapshot(e), *img = file_load(e->out, e->size);

	ASSERT_NE(NULL, mem);
	ASSERT_NE(NULL, img) TH_LOG("no committed image at %s", e->out);
	EXPECT_EQ(0, memcmp(mem, img, e->size)) TH_LOG("the image differs from the paused source");
	free(mem);
	free(img);
}

/* The verdict arrives damaged: nothing was committed, the source runs again. */
TEST_F(commit, verdict_damaged)
{
	struct env *e = &self->e;
	char s[32];

	migrate_via_relay(_metadata, e, &self->rl, LMIG_RESULT_MAGIC, RELAY_FLIP);
	ASSERT_EQ(0, proc_wait(&e->tx, 30)) TH_LOG("lmig send still running");
	ASSERT_TRUE(self->rl.hit) TH_LOG("the verdict never passed the relay");
	EXPECT_EQ(1, proc_exit_code(&e->tx)) TH_LOG("send: %s", e->tx.err_log);
	EXPECT_TRUE(one_line(e->tx.err)) TH_LOG("%s", e->tx.err_log);
	EXPECT_NE(NULL, strstr(e->tx.err, "checksum mismatch")) TH_LOG("%s", e->tx.err_log);
	ASSERT_EQ(0, json_str_field(e->tx.out, "source", s, sizeof(s)));
	EXPECT_STREQ("resumed", s);
	EXPECT_TRUE(writer_runs(e)) TH_LOG("the source does not run after the failure");
	/* The receiver waited for a confirmation that never came, and discarded the image. */
	ASSERT_EQ(0, proc_wait(&e->rx, 15)) TH_LOG("lmig recv still running");
	EXPECT_EQ(1, proc_exit_code(&e->rx)) TH_LOG("recv: %s", e->rx.err_log);
	EXPECT_NE(NULL, strstr(e->rx.err, "confirm")) TH_LOG("recv: %s", e->rx.err_log);
	EXPECT_FALSE(path_exists(e->out)) TH_LOG("%s committed next to a resumed source", e->out);
	EXPECT_FALSE(path_exists(e->partial));
}

/*
 * The final result is lost after the receiver committed: the outcome is
 * unknown to the sender, which leaves the source paused and says so.
 */
TEST_F(commit, final_lost)
{
	struct env *e = &self->e;
	char s[32];

	migrate_via_relay(_metadata, e, &self->rl, LMIG_FINAL_MAGIC, RELAY_CUT);
	ASSERT_EQ(0, proc_wait(&e->tx, 30)) TH_LOG("lmig send still running");
	ASSERT_TRUE(self->rl.hit) TH_LOG("no final result passed the relay");
	ASSERT_EQ(0, proc_wait(&e->rx, 5)) TH_LOG("lmig recv still running");
	EXPECT_EQ(0, proc_exit_code(&e->rx)) TH_LOG("recv: %s", e->rx.err_log);
	EXPECT_EQ(3, proc_exit_code(&e->tx)) TH_LOG("send: %s", e->tx.err_log);
	EXPECT_TRUE(one_line(e->tx.err)) TH_LOG("%s", e->tx.err_log);
	EXPECT_NE(NULL, strstr(e->tx.err, "outcome unknown")) TH_LOG("%s", e->tx.err_log);
	EXPECT_NE(NULL, strstr(e->tx.err, "check --out on the receiver")) TH_LOG("%s", e->tx.err_log);
	ASSERT_TRUE(json_one_object(e->tx.out)) TH_LOG("%s", e->tx.out);
	ASSERT_EQ(0, json_str_field(e->tx.out, "status", s, sizeof(s)));
	EXPECT_STREQ("failed", s);
	ASSERT_EQ(0, json_str_field(e->tx.out, "outcome", s, sizeof(s))) TH_LOG("%s", e->tx.out);
	EXPECT_STREQ("unknown", s);
	ASSERT_EQ(0, json_str_field(e->tx.out, "source", s, sizeof(s)));
	EXPECT_STREQ("paused", s);
	check_stays_paused(_metadata, e);
	check_image_is_source(_metadata, e);
}

/*
 * lmig send is SIGKILLed after the verdict, once it told the receiver to
 * commit (the relay holds the final result back): its guard must leave
 * the source paused, since the copy may be committed — and here it is.
 */
TEST_F(commit, sender_killed_after_verdict)
{
	struct env *e = &self->e;
	double deadline;

	migrate_via_relay(_metadata, e, &self->rl, LMIG_FINAL_MAGIC, RELAY_HOLD);
	deadline = mono_s() + 30;
	while (!self->rl.hit && mono_s() < deadline && proc_wait(&e->tx, 0))
		usleep(1000);
	ASSERT_TRUE(self->rl.hit) TH_LOG("no final result; send: %s", e->tx.err_log);
	ASSERT_EQ(-1, proc_wait(&e->tx, 0)) TH_LOG("send ended: %s", e->tx.err_log);
	ASSERT_EQ(0, kill(e->tx.pid, SIGKILL));
	ASSERT_EQ(0, proc_wait(&e->tx, 2));
	ASSERT_EQ(0, proc_wait(&e->rx, 5)) TH_LOG("lmig recv still running");
	EXPECT_EQ(0, proc_exit_code(&e->rx)) TH_LOG("recv: %s", e->rx.err_log);
	check_stays_paused(_metadata, e);
	check_image_is_source(_metadata, e);
}

/*
 * The receiver is SIGKILLed after its verdict, before any confirmation
 * (the relay swallows the verdict): nothing is committed and the sender
 * resumes the source.
 */
TEST_F(commit, receiver_killed_before_confirm)
{
	struct env *e = &self->e;
	double deadline, t_kill;

	migrate_via_relay(_metadata, e, &self->rl, LMIG_RESULT_MAGIC, RELAY_SWALLOW);
	deadline = mono_s() + 30;
	while (!self->rl.hit && mono_s() < deadline && proc_wait(&e->tx, 0))
		usleep(1000);
	ASSERT_TRUE(self->rl.hit) TH_LOG("no verdict; send: %s", e->tx.err_log);
	ASSERT_EQ(0, kill(e->rx.pid, SIGKILL));
	t_kill = mono_s();
	check_send_failed(_metadata, e, t_kill, FAIL_MAX_S, ARGS("closed", "reset"));
	ASSERT_NE(0, wait_resumed(e, RESUME_MAX_S)) TH_LOG("the source is still paused");
	EXPECT_TRUE(writer_runs(e));
	EXPECT_FALSE(path_exists(e->out));
}

TEST_HARNESS_MAIN

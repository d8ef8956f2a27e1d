// SPDX-License-Identifier: GPL-2.0-only
/*
 * user/host/qmp.c, the QMP client, against a real QEMU and against
 * broken or hostile peers.
 *
 * The qemu fixture starts qemu-system-x86_64 paused (-S: no guest kernel
 * is needed, TCG, 2 vCPUs, 64 MiB) with a QMP socket of its own:
 *
 *   open_pid_version  qmp_open() reports QEMU's pid (the child started)
 *                     and the version `qemu-system-x86_64 --version` prints
 *   vcpus             two vCPUs, indexes 0 and 1, whose thread ids are
 *                     threads of QEMU's process (/proc/PID/task)
 *   params            QEMU's defaults (300 ms, 128 MiB/s), then values set
 *                     with migrate-set-parameters read back
 *   accel_tcg         query-kvm under -accel tcg: "tcg"
 *   migrate_none      query-migrate before any migration: "none", no ram
 *   migrate_failed    a migration to nowhere: "failed", with QEMU's reason
 *   unknown_command   QEMU's error desc quoted in one line; the connection
 *                     goes on working
 *   exec_text         query-status's "return" text, whole; a buffer one byte
 *                     short refused; events (RESUME, STOP) skipped and kept
 *   exec_schema       query-qmp-schema, QEMU's longest reply (~200 KB), whole
 *   second_client     a second client while one is connected gets no
 *                     greeting: an error that says why; once the first
 *                     has gone, a new one is served
 *   bad_arguments     a bad command name or argument text is refused
 *                     before anything is sent
 *
 * The guest fixture boots qemu/qmp_guest.S, 256 MiB that it keeps
 * rewriting:
 *
 *   dirty_rate        calc-dirty-rate paused: 0; running: the whole RAM
 *                     block a second (QEMU's whole MiB/s, given in MB/s)
 *
 * The migration fixture migrates one such QEMU, its RAM holding 16 MiB
 * of random bytes, to another (-incoming) at 16 MB/s:
 *
 *   query_migrate     while active: status, RAM total, remaining, page
 *                     size, mbps, expected downtime; completed: nothing
 *                     remaining, the random bytes sent, a downtime; each
 *                     number the same as the reply's text holds
 *
 * The peer tests run a unix server of their own in a thread, speaking a
 * script:
 *
 *   peer_no_greeting  connects, never greets: an error after the timeout
 *   peer_not_json     a greeting that is not JSON, one that is not valid
 *                     JSON, one that is not QMP's
 *   peer_reply_max    a reply of exactly QMP_REPLY_MAX bytes is taken,
 *                     one byte more refused
 *   peer_closes       the peer closes in the middle of a reply
 *   peer_events_ids   events and a reply to another id before the reply:
 *                     skipped; a timed-out reply arriving late is skipped
 *   no_socket         a path where nothing listens, or nothing is
 *
 * Every failure must be one line starting "QMP PATH: " and come within
 * a small multiple of the timeout given.  SKIP when qemu-system-x86_64
 * is missing.  About 5 s in all, most of it QEMU starting and the
 * migration.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "host/qmp.h"
#include "lib/err.h"
#include "lib/json_read.h"

#define QEMU	"qemu-system-x86_64"

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool in_path(const char *bin)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, bin);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

static void sock_path(char *buf, size_t len, const char *what)
{
	static int seq;

	snprintf(buf, len, "/tmp/lmig-test_qmp-%d-%s-%d.sock", (int)getpid(), what, seq++);
}

/* Is msg one line, starting "QMP path: "? */
static bool one_line(const char *msg, const char *path)
{
	char head[200];

	snprintf(head, sizeof(head), "QMP %s: ", path);
	return !strncmp(msg, head, strlen(head)) && !strchr(msg, '\n');
}

/*
 * Start QEMU paused, its QMP socket at path, with up to four more
 * arguments (NULL ends them): its pid.
 */
static pid_t qemu_spawn(const char *path, const char *x1, const char *x2, const char *x3,
			const char *x4)
{
	char chardev[200];
	pid_t pid;

	snprintf(chardev, sizeof(chardev), "unix:%s,server=on,wait=off", path);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(null, 1);
		execlp(QEMU, QEMU, "-accel", "tcg", "-smp", "2", "-m", "64", "-nodefaults",
		       "-display", "none", "-S", "-qmp", chardev, x1, x2, x3, x4, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The socket appears once QEMU is up: retry until it answers (20 s). */
static int qemu_connect(struct qmp *q, const char *path, pid_t pid)
{
	double end = mono() + 20;

	for (;;) {
		lmig_err_clear();
		if (qmp_open(q, path, 5000) == 0)
			return 0;
		if (mono() > end || waitpid(pid, NULL, WNOHANG) != 0)
			return -1;
		usleep(50 * 1000);
	}
}

static void qemu_kill(pid_t pid, const char *path)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(path);
}

FIXTURE(qemu) {
	pid_t pid;
	char path[108];
	struct qmp q;
	bool missing, open;
};

FIXTURE_SETUP(qemu)
{
	int rc;

	self->pid = 0;
	self->open = false;
	self->missing = !in_path(QEMU);
	if (self->missing)
		return;
	sock_path(self->path, sizeof(self->path), "qemu");
	self->pid = qemu_spawn(self->path, NULL, NULL, NULL, NULL);
	ASSERT_LT(0, self->pid);
	/* A setup that fails gets no teardown: clean up before saying so. */
	rc = qemu_connect(&self->q, self->path, self->pid);
	if (rc)
		qemu_kill(self->pid, self->path);
	ASSERT_EQ(0, rc) TH_LOG("QEMU did not answer: %s", lmig_errmsg());
	self->open = true;
}

FIXTURE_TEARDOWN(qemu)
{
	if (self->open)
		qmp_close(&self->q);
	qemu_kill(self->pid, self->path);
}

#define NEED_QEMU() do { \
	if (self->missing) \
		SKIP(return, QEMU " is not installed"); \
} while (0)

TEST_F(qemu, open_pid_version)
{
	char line[256], want[64], got[64];
	FILE *f;

	NEED_QEMU();
	EXPECT_EQ(self->pid, self->q.pid);
	EXPECT_EQ(self->q.fd >= 0, true);
	f = popen(QEMU " --version", "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(line, sizeof(line), f));
	pclose(f);
	/* "QEMU emulator version 7.2.22 (Debian ...)" */
	ASSERT_EQ(1, sscanf(line, "QEMU emulator version %63s", want));
	snprintf(got, sizeof(got), "%u.%u.%u", self->q.version[0], self->q.version[1],
		 self->q.version[2]);
	EXPECT_STREQ(want, got);
}

TEST_F(qemu, vcpus)
{
	struct qmp_vcpu v[QMP_VCPUS_MAX];
	char task[64];
	struct stat st;
	int n;

	NEED_QEMU();
	n = qmp_vcpus(&self->q, v, QMP_VCPUS_MAX);
	ASSERT_EQ(2, n) TH_LOG("%s", lmig_errmsg());
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(i, v[i].index);
		EXPECT_NE(self->pid, v[i].tid);
		snprintf(task, sizeof(task), "/proc/%d/task/%d", (int)self->pid, (int)v[i].tid);
		EXPECT_EQ(0, stat(task, &st)) TH_LOG("%s is not a thread of QEMU", task);
	}
	EXPECT_NE(v[0].tid, v[1].tid);
	/* Room for one: one. */
	ASSERT_EQ(1, qmp_vcpus(&self->q, v, 1));
	EXPECT_EQ(0, v[0].index);
}

TEST_F(qemu, params)
{
	struct qmp_params p;
	char out[64];

	NEED_QEMU();
	ASSERT_EQ(0, qmp_params(&self->q, &p)) TH_LOG("%s", lmig_errmsg());
	/* QEMU's defaults: 300 ms, 128 MiB/s. */
	EXPECT_EQ(300, p.downtime_limit_ms);
	EXPECT_EQ(128 << 20, p.max_bandwidth);
	ASSERT_EQ(0, qmp_exec(&self->q, "migrate-set-parameters",
			      "{\"downtime-limit\": 1234, \"max-bandwidth\": 5000000}", out, sizeof(out)))
		TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("{}", out);
	ASSERT_EQ(0, qmp_params(&self->q, &p));
	EXPECT_EQ(1234, p.downtime_limit_ms);
	EXPECT_EQ(5000000, p.max_bandwidth);
}

TEST_F(qemu, accel_tcg)
{
	char a[8] = "x";

	NEED_QEMU();
	ASSERT_EQ(0, qmp_accel(&self->q, a, sizeof(a))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("tcg", a);
	/* No room for "tcg": an error, not a cut answer. */
	ASSERT_EQ(-1, qmp_accel(&self->q, a, 3));
	EXPECT_TRUE(one_line(lmig_errmsg(), self->path));
}

TEST_F(qemu, migrate_none)
{
	struct qmp_migrate m;

	NEED_QEMU();
	memset(&m, 0x5a, sizeof(m));
	ASSERT_EQ(0, qmp_query_migrate(&self->q, &m)) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("none", m.status);
	EXPECT_FALSE(m.has_ram);
	EXPECT_EQ(0, m.remaining);
	EXPECT_EQ(0, m.page_size);
	EXPECT_EQ(-1, m.expected_downtime_ms);
	EXPECT_EQ(-1, m.downtime_ms);
	EXPECT_EQ(-1, m.total_time_ms);
	EXPECT_EQ(-1, m.cpu_throttle_percentage);
	EXPECT_STREQ("", m.error_desc);
}

TEST_F(qemu, migrate_failed)
{
	struct qmp_migrate m;
	char out[64], args[200], nowhere[108];
	double end = mono() + 20;

	NEED_QEMU();
	/* A destination that is not there: QEMU's migration fails, and says why. */
	sock_path(nowhere, sizeof(nowhere), "nowhere");
	snprintf(args, sizeof(args), "{\"uri\": \"unix:%s\"}", nowhere);
	ASSERT_EQ(0, qmp_exec(&self->q, "migrate", args, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	do {
		ASSERT_EQ(0, qmp_query_migrate(&self->q, &m)) TH_LOG("%s", lmig_errmsg());
		ASSERT_GT(end, mono()) TH_LOG("still %s", m.status);
	} while (strcmp(m.status, "failed"));
	EXPECT_NE(NULL, strstr(m.error_desc, "No such file or directory")) TH_LOG("%s", m.error_desc);
	EXPECT_EQ(-1, m.downtime_ms);
}

TEST_F(qemu, unknown_command)
{
	char out[64], want[400];
	char a[8];

	NEED_QEMU();
	ASSERT_EQ(-1, qmp_exec(&self->q, "no-such-command", NULL, out, sizeof(out)));
	snprintf(want, sizeof(want), "QMP %s: no-such-command: QEMU says \"The command "
		 "no-such-command has not been found\" (CommandNotFound)", self->path);
	EXPECT_STREQ(want, lmig_errmsg());
	/* Arguments QEMU refuses: its words again. */
	lmig_err_clear();
	ASSERT_EQ(-1, qmp_exec(&self->q, "migrate-set-parameters", "{\"downtime-limit\": \"x\"}",
			       out, sizeof(out)));
	EXPECT_TRUE(one_line(lmig_errmsg(), self->path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "QEMU says \"Parameter 'downtime-limit'"))
		TH_LOG("%s", lmig_errmsg());
	/* The connection is as good as before. */
	lmig_err_clear();
	ASSERT_EQ(0, qmp_accel(&self->q, a, sizeof(a))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("tcg", a);
}

TEST_F(qemu, exec_text)
{
	char out[256];
	struct jr_doc d;
	bool running = true;
	size_t n;

	NEED_QEMU();
	ASSERT_EQ(0, qmp_exec(&self->q, "query-status", NULL, out, sizeof(out)))
		TH_LOG("%s", lmig_errmsg());
	/* One JSON object, whole: "status": "prelaunch", not running. */
	n = strlen(out);
	ASSERT_EQ(0, jr_parse(&d, out, n, &jr_limits_default, NULL)) TH_LOG("%s", out);
	EXPECT_TRUE(jr_str_eq(&d, jr_get(&d, 0, "status"), "prelaunch")) TH_LOG("%s", out);
	ASSERT_EQ(0, jr_bool(&d, jr_get(&d, 0, "running"), &running));
	EXPECT_FALSE(running);
	jr_free(&d);
	/* Exactly the room for it works; a byte less is refused. */
	ASSERT_EQ(0, qmp_exec(&self->q, "query-status", NULL, out, n + 1));
	EXPECT_EQ(n, strlen(out));
	ASSERT_EQ(-1, qmp_exec(&self->q, "query-status", NULL, out, n));
	EXPECT_TRUE(one_line(lmig_errmsg(), self->path)) TH_LOG("%s", lmig_errmsg());
	lmig_err_clear();
	/* cont and stop send events before their replies: skipped, kept. */
	ASSERT_EQ(0, qmp_exec(&self->q, "cont", NULL, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("RESUME", self->q.last_event);
	ASSERT_EQ(0, qmp_exec(&self->q, "stop", NULL, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("STOP", self->q.last_event);
	ASSERT_EQ(0, qmp_exec(&self->q, "query-status", NULL, out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"paused\"")) TH_LOG("%s", out);
}

TEST_F(qemu, exec_schema)
{
	static char big[QMP_REPLY_MAX];
	struct jr_doc d;
	size_t n;
	int cmds = 0;

	NEED_QEMU();
	/* QEMU's longest reply, whole: an array describing every command. */
	ASSERT_EQ(0, qmp_exec(&self->q, "query-qmp-schema", NULL, big, sizeof(big)))
		TH_LOG("%s", lmig_errmsg());
	n = strlen(big);
	EXPECT_LT(100000, n);
	ASSERT_EQ(0, jr_parse(&d, big, n, &jr_limits_default, NULL));
	ASSERT_EQ(JR_ARRAY, jr_type(&d, 0));
	for (int e = jr_first(&d, 0); e >= 0; e = jr_next(&d, e))
		if (jr_str_eq(&d, jr_get(&d, e, "meta-type"), "command") &&
		    (jr_str_eq(&d, jr_get(&d, e, "name"), "query-migrate") ||
		     jr_str_eq(&d, jr_get(&d, e, "name"), "query-cpus-fast") ||
		     jr_str_eq(&d, jr_get(&d, e, "name"), "calc-dirty-rate")))
			cmds++;
	EXPECT_EQ(3, cmds);
	jr_free(&d);
	/* And the connection goes on after it. */
	ASSERT_EQ(0, qmp_exec(&self->q, "query-status", NULL, big, sizeof(big)));
}

TEST_F(qemu, second_client)
{
	struct qmp other;
	char a[8];
	double t;

	NEED_QEMU();
	/* QEMU greets the next client only when this one has gone. */
	t = mono();
	ASSERT_EQ(-1, qmp_open(&other, self->path, 500));
	t = mono() - t;
	EXPECT_TRUE(one_line(lmig_errmsg(), self->path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "no greeting within 500 ms (QEMU serves one client"))
		TH_LOG("%s", lmig_errmsg());
	EXPECT_LE(0.49, t);
	EXPECT_GT(5.0, t);
	lmig_err_clear();
	ASSERT_EQ(0, qmp_accel(&self->q, a, sizeof(a))) TH_LOG("%s", lmig_errmsg());
	qmp_close(&self->q);
	self->open = false;
	ASSERT_EQ(0, qmp_open(&other, self->path, 5000)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(self->pid, other.pid);
	ASSERT_EQ(0, qmp_accel(&other, a, sizeof(a))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("tcg", a);
	qmp_close(&other);
}

TEST_F(qemu, bad_arguments)
{
	char out[64], a[8];

	NEED_QEMU();
	/* A name that would escape its quotes, arguments that would end the
	 * command early or are not an object: refused here. */
	ASSERT_EQ(-1, qmp_exec(&self->q, "stop\"}", NULL, out, sizeof(out)));
	EXPECT_TRUE(one_line(lmig_errmsg(), self->path)) TH_LOG("%s", lmig_errmsg());
	lmig_err_clear();
	ASSERT_EQ(-1, qmp_exec(&self->q, "", NULL, out, sizeof(out)));
	lmig_err_clear();
	ASSERT_EQ(-1, qmp_exec(&self->q, "query-status", "{}}{\"execute\": \"quit\"}", out,
			       sizeof(out)));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "the arguments are not JSON")) TH_LOG("%s", lmig_errmsg());
	lmig_err_clear();
	ASSERT_EQ(-1, qmp_exec(&self->q, "query-status", "[1]", out, sizeof(out)));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "not a JSON object")) TH_LOG("%s", lmig_errmsg());
	lmig_err_clear();
	/* Nothing of that reached QEMU: it still answers, still paused. */
	ASSERT_EQ(0, qmp_accel(&self->q, a, sizeof(a))) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(0, waitpid(self->pid, NULL, WNOHANG));
}

/*
 * A guest that runs: qemu/qmp_guest.S, a boot sector that writes every
 * page of its 256 MiB over and over, booted from a raw disk.
 */
FIXTURE(guest) {
	pid_t pid;
	char path[108];
	struct qmp q;
	bool missing, open;
};

FIXTURE_SETUP(guest)
{
	char exe[PATH_MAX], bin[PATH_MAX + 32], drive[PATH_MAX + 96];
	ssize_t n;
	int rc;

	self->pid = 0;
	self->open = false;
	self->missing = !in_path(QEMU);
	if (self->missing)
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ASSERT_LT(0, n);
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	snprintf(bin, sizeof(bin), "%s/qmp_guest.bin", exe);
	ASSERT_EQ(0, access(bin, R_OK)) TH_LOG("%s is not built", bin);
	snprintf(drive, sizeof(drive), "file=%s,format=raw,if=ide,snapshot=on", bin);
	sock_path(self->path, sizeof(self->path), "guest");
	self->pid = qemu_spawn(self->path, "-m", "256", "-drive", drive);
	ASSERT_LT(0, self->pid);
	rc = qemu_connect(&self->q, self->path, self->pid);
	if (rc)
		qemu_kill(self->pid, self->path);
	ASSERT_EQ(0, rc) TH_LOG("%s", lmig_errmsg());
	self->open = true;
}

FIXTURE_TEARDOWN(guest)
{
	if (self->open)
		qmp_close(&self->q);
	qemu_kill(self->pid, self->path);
}

/*
 * Has vCPU 0 finished a pass of its loop?  SeaBIOS takes a while under
 * TCG before it runs the boot sector; its loop is in 0x7c00..0x7dff and
 * ECX counts the passes begun.
 */
static bool guest_looping(struct qmp *q)
{
	static char regs[16384];
	unsigned long eip, ecx;
	const char *e, *c;

	if (qmp_exec(q, "human-monitor-command", "{\"command-line\": \"info registers\"}",
		     regs, sizeof(regs)))
		return false;
	e = strstr(regs, "EIP=");
	c = strstr(regs, "ECX=");
	if (!e || !c)
		return false;
	eip = strtoul(e + 4, NULL, 16);
	ecx = strtoul(c + 4, NULL, 16);
	return eip >= 0x7c00 && eip < 0x7e00 && ecx >= 2;
}

TEST_F_TIMEOUT(guest, dirty_rate, 90)
{
	double paused = -1, running = -1, mib;
	char out[64];

	if (self->missing)
		SKIP(return, QEMU " is not installed");
	ASSERT_EQ(0, qmp_dirty_rate(&self->q, 1, &paused)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, qmp_exec(&self->q, "cont", NULL, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	for (int i = 0; !guest_looping(&self->q); i++) {
		ASSERT_GT(400, i) TH_LOG("the guest did not reach its loop in 20 s: %s",
					 lmig_has_err() ? lmig_errmsg() : "");
		usleep(50 * 1000);
	}
	ASSERT_EQ(0, qmp_dirty_rate(&self->q, 1, &running)) TH_LOG("%s", lmig_errmsg());
	/* Paused, nothing changes; running, every page does within the
	 * second: QEMU reports the RAM block's 256 MiB (a little less if
	 * its second ran long), in MiB/s, given here in MB/s. */
	TH_LOG("paused %.3f MB/s, running %.3f MB/s", paused, running);
	EXPECT_EQ(0, paused);
	mib = running / 1.048576;
	EXPECT_LE(128, mib) TH_LOG("%.3f MB/s", running);
	EXPECT_GE(256, mib) TH_LOG("%.3f MB/s", running);
	EXPECT_GT(1e-6, fabs(mib - round(mib))) TH_LOG("%.9f MiB/s is not QEMU's whole number", mib);
	/* Out of QEMU's range: refused here. */
	ASSERT_EQ(-1, qmp_dirty_rate(&self->q, 0, &running));
	EXPECT_TRUE(one_line(lmig_errmsg(), self->path)) TH_LOG("%s", lmig_errmsg());
	lmig_err_clear();
	ASSERT_EQ(-1, qmp_dirty_rate(&self->q, 61, &running));
}

/*
 * A real migration between two QEMUs: the source's RAM holds 16 MiB of
 * random bytes (-device loader), and max-bandwidth holds the link to
 * 16 MB/s, so the migration is active for about a second.
 */
#define RAND_BYTES	(16 << 20)

FIXTURE(migration) {
	pid_t src, dst;
	char spath[108], dpath[108], mpath[108], rand[108];
	struct qmp s, d;
	bool missing, sopen, dopen;
};

static int write_random(const char *path, size_t len)
{
	int in = open("/dev/urandom", O_RDONLY), out = creat(path, 0600), rc = 0;
	char buf[65536];

	while (in >= 0 && out >= 0 && len && !rc) {
		ssize_t n = read(in, buf, sizeof(buf) < len ? sizeof(buf) : len);

		rc = n <= 0 || write(out, buf, n) != n;
		len -= n > 0 ? n : 0;
	}
	rc |= in < 0 || out < 0;
	close(in);
	close(out);
	return rc ? -1 : 0;
}

static void migration_cleanup(FIXTURE_DATA(migration) *self)
{
	if (self->sopen)
		qmp_close(&self->s);
	if (self->dopen)
		qmp_close(&self->d);
	self->sopen = self->dopen = false;
	qemu_kill(self->src, self->spath);
	qemu_kill(self->dst, self->dpath);
	self->src = self->dst = 0;
	unlink(self->rand);
	unlink(self->mpath);
}

FIXTURE_SETUP(migration)
{
	char loader[300], incoming[200];
	int rc;

	self->src = self->dst = 0;
	self->sopen = self->dopen = false;
	self->missing = !in_path(QEMU);
	if (self->missing)
		return;
	sock_path(self->spath, sizeof(self->spath), "src");
	sock_path(self->dpath, sizeof(self->dpath), "dst");
	sock_path(self->mpath, sizeof(self->mpath), "mig");
	sock_path(self->rand, sizeof(self->rand), "ram");
	snprintf(loader, sizeof(loader), "loader,file=%s,addr=0x1000000,force-raw=on", self->rand);
	snprintf(incoming, sizeof(incoming), "unix:%s", self->mpath);
	/* A setup that fails gets no teardown: clean up before saying so. */
	rc = write_random(self->rand, RAND_BYTES);
	if (!rc) {
		self->src = qemu_spawn(self->spath, "-device", loader, NULL, NULL);
		self->dst = qemu_spawn(self->dpath, "-incoming", incoming, NULL, NULL);
		rc = self->src <= 0 || self->dst <= 0;
	}
	if (!rc)
		rc = qemu_connect(&self->s, self->spath, self->src);
	self->sopen = !rc;
	if (!rc)
		rc = qemu_connect(&self->d, self->dpath, self->dst);
	self->dopen = !rc;
	if (rc)
		migration_cleanup(self);
	ASSERT_EQ(0, rc) TH_LOG("%s", lmig_has_err() ? lmig_errmsg() : "cannot start QEMU");
}

FIXTURE_TEARDOWN(migration)
{
	if (!self->missing)
		migration_cleanup(self);
}

/* The number after "key": in a reply's text, read without json_read. */
static unsigned long long number_in(const char *text, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\": ", key);
	p = strstr(text, k);
	return p ? strtoull(p + strlen(k), NULL, 10) : ~0ULL;
}

TEST_F_TIMEOUT(migration, query_migrate, 60)
{
	struct qmp_migrate m, a = { .has_ram = false };
	char out[4096], args[200];
	double end, mbps = 0;

	if (self->missing)
		SKIP(return, QEMU " is not installed");
	ASSERT_EQ(0, qmp_exec(&self->s, "migrate-set-parameters", "{\"max-bandwidth\": 16000000}",
			      out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	snprintf(args, sizeof(args), "{\"uri\": \"unix:%s\"}", self->mpath);
	ASSERT_EQ(0, qmp_exec(&self->s, "migrate", args, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	end = mono() + 30;
	for (;;) {
		ASSERT_EQ(0, qmp_query_migrate(&self->s, &m)) TH_LOG("%s", lmig_errmsg());
		if (!strcmp(m.status, "active") && m.has_ram && !a.has_ram)
			a = m;
		/* QEMU's first estimate comes after its first 100 ms. */
		if (!strcmp(m.status, "active") && m.mbps > mbps)
			mbps = m.mbps;
		if (!strcmp(m.status, "completed") || !strcmp(m.status, "failed"))
			break;
		ASSERT_GT(end, mono()) TH_LOG("still %s", m.status);
		usleep(20 * 1000);
	}
	ASSERT_STREQ("completed", m.status) TH_LOG("%s", m.error_desc);
	/* While active: RAM of 64 MiB and some, partly sent, an estimate. */
	ASSERT_TRUE(a.has_ram);
	EXPECT_LE(64 << 20, a.total);
	EXPECT_LT(0, a.remaining);
	EXPECT_GT(a.total, a.remaining);
	EXPECT_EQ(4096, a.page_size);
	EXPECT_LT(0, mbps);
	EXPECT_LE(1, a.dirty_sync_count);
	EXPECT_LE(0, a.expected_downtime_ms);
	EXPECT_LE(0, a.total_time_ms);
	EXPECT_EQ(-1, a.downtime_ms);
	EXPECT_EQ(-1, a.cpu_throttle_percentage);
	/* Completed: everything sent, the random bytes at least, a downtime. */
	EXPECT_TRUE(m.has_ram);
	EXPECT_EQ(a.total, m.total);
	EXPECT_EQ(0, m.remaining);
	EXPECT_LE(RAND_BYTES, m.transferred);
	EXPECT_LE(RAND_BYTES, m.normal * m.page_size);
	EXPECT_LE(2, m.dirty_sync_count);
	EXPECT_LE(0, m.downtime_ms);
	EXPECT_LE(a.total_time_ms, m.total_time_ms);
	EXPECT_EQ(-1, m.expected_downtime_ms);
	EXPECT_STREQ("", m.error_desc);
	/* The same numbers as the reply's text says, read another way. */
	ASSERT_EQ(0, qmp_exec(&self->s, "query-migrate", NULL, out, sizeof(out)));
	EXPECT_EQ(number_in(out, "total"), m.total);
	EXPECT_EQ(number_in(out, "transferred"), m.transferred);
	EXPECT_EQ(number_in(out, "duplicate"), m.duplicate);
	EXPECT_EQ(number_in(out, "normal"), m.normal);
	EXPECT_EQ(number_in(out, "dirty-sync-count"), m.dirty_sync_count);
	EXPECT_EQ(number_in(out, "dirty-pages-rate"), m.dirty_pages_rate);
	EXPECT_EQ(number_in(out, "downtime"), m.downtime_ms);
	EXPECT_EQ(number_in(out, "total-time"), m.total_time_ms);
	/* The destination took it. */
	ASSERT_EQ(0, qmp_query_migrate(&self->d, &m)) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("completed", m.status);
}

/* ---- the scripted peers ---- */

struct peer {
	char path[108];
	int lfd;
	pthread_t thr;
	void (*script)(int fd);
};

static void *peer_run(void *arg)
{
	struct peer *p = arg;
	struct pollfd pfd = { .fd = p->lfd, .events = POLLIN };
	int fd;

	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	p->script(fd);
	close(fd);
	return NULL;
}

static int peer_start(struct peer *p, void (*script)(int fd))
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	sock_path(p->path, sizeof(p->path), "peer");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->path);
	p->script = script;
	p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(p->lfd, 4))
		return -1;
	return pthread_create(&p->thr, NULL, peer_run, p) ? -1 : 0;
}

static void peer_stop(struct peer *p)
{
	pthread_join(p->thr, NULL);
	close(p->lfd);
	unlink(p->path);
}

/* Until the client closes (or 10 s). */
static void wait_eof(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char b[4096];

	while (poll(&pfd, 1, 10000) == 1 && read(fd, b, sizeof(b)) > 0)
		;
}

/* One command line from the client: its id (0 if none came). */
static unsigned long read_cmd(int fd, char *name, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char line[4096], *s;
	size_t n = 0;

	while (n < sizeof(line) - 1 && poll(&pfd, 1, 10000) == 1 && read(fd, line + n, 1) == 1)
		if (line[n++] == '\n')
			break;
	line[n] = 0;
	if (name) {
		s = strstr(line, "\"execute\": \"");
		snprintf(name, len, "%.*s", s ? (int)strcspn(s + 12, "\"") : 0, s ? s + 12 : "");
	}
	s = strstr(line, "\"id\": ");
	return s ? strtoul(s + 6, NULL, 10) : 0;
}

static void say(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= w;
	}
}

static void sayf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sayf(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say(fd, buf);
}

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 3, \"minor\": 1, " \
		 "\"major\": 8}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* Greet, and answer qmp_capabilities. */
static void handshake(int fd)
{
	say(fd, GREETING);
	sayf(fd, "{\"return\": {}, \"id\": %lu}\r\n", read_cmd(fd, NULL, 0));
}

static void script_silent(int fd)
{
	wait_eof(fd);
}

TEST(peer_no_greeting)
{
	struct peer p;
	struct qmp q;
	double t;

	ASSERT_EQ(0, peer_start(&p, script_silent));
	t = mono();
	ASSERT_EQ(-1, qmp_open(&q, p.path, 300));
	t = mono() - t;
	EXPECT_TRUE(one_line(lmig_errmsg(), p.path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "no greeting within 300 ms")) TH_LOG("%s", lmig_errmsg());
	/* It waited the timeout, and not much more. */
	EXPECT_LE(0.29, t);
	EXPECT_GT(3.0, t);
	EXPECT_EQ(-1, q.fd);
	qmp_close(&q);
	peer_stop(&p);
}

static const char *bad_greeting;

static void script_bad_greeting(int fd)
{
	say(fd, bad_greeting);
	wait_eof(fd);
}

static void refused_greeting(struct __test_metadata *_metadata, const char *greeting,
			     const char *want)
{
	struct peer p;
	struct qmp q;

	lmig_err_clear();
	bad_greeting = greeting;
	ASSERT_EQ(0, peer_start(&p, script_bad_greeting));
	ASSERT_EQ(-1, qmp_open(&q, p.path, 2000));
	EXPECT_TRUE(one_line(lmig_errmsg(), p.path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), want)) TH_LOG("%s", lmig_errmsg());
	peer_stop(&p);
}

TEST(peer_not_json)
{
	refused_greeting(_metadata, "Welcome to the monitor\r\n",
			 "greeting is not a JSON object (it starts with byte 0x57)");
	refused_greeting(_metadata, "\r\n[\"QMP\"]\r\n",
			 "greeting is not a JSON object (it starts with byte 0x5b)");
	refused_greeting(_metadata, "{\"QMP\": {\"version\": nope}}\r\n",
			 "greeting is not valid JSON: unexpected byte at byte 21");
	refused_greeting(_metadata, "{\"QMP\": \"\\ud800\"}\r\n",
			 "greeting is not valid JSON: invalid escape or lone surrogate");
	refused_greeting(_metadata, "{\"hello\": {}}\r\n",
			 "not a QMP monitor (its greeting has no \"QMP\" object)");
	/* A greeting nested past the limit: refused, and no deeper. */
	refused_greeting(_metadata, "{\"QMP\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\r\n",
			 "greeting is not valid JSON: nested too deep");
}

static size_t reply_len;

/* A reply of reply_len bytes: {"return": "xxx...x", "id": N}. */
static void script_long_reply(int fd)
{
	char head[64], tail[64], *buf;
	size_t h, t;
	unsigned long id;

	handshake(fd);
	id = read_cmd(fd, NULL, 0);
	h = snprintf(head, sizeof(head), "{\"return\": \"");
	t = snprintf(tail, sizeof(tail), "\", \"id\": %lu}", id);
	buf = malloc(reply_len + 3);
	memcpy(buf, head, h);
	memset(buf + h, 'x', reply_len - h - t);
	memcpy(buf + reply_len - t, tail, t);
	memcpy(buf + reply_len, "\r\n", 3);
	say(fd, buf);
	free(buf);
	wait_eof(fd);
}

TEST(peer_reply_max)
{
	static char out[QMP_REPLY_MAX];
	struct peer p;
	struct qmp q;

	/* Exactly QMP_REPLY_MAX: taken, its "return" is the string. */
	reply_len = QMP_REPLY_MAX;
	ASSERT_EQ(0, peer_start(&p, script_long_reply));
	ASSERT_EQ(0, qmp_open(&q, p.path, 2000)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(8, q.version[0]);
	EXPECT_EQ(1, q.version[1]);
	EXPECT_EQ(3, q.version[2]);
	ASSERT_EQ(0, qmp_exec(&q, "query-status", NULL, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(QMP_REPLY_MAX - strlen("{\"return\": , \"id\": 2}"), strlen(out));
	EXPECT_EQ('"', out[0]);
	EXPECT_EQ('x', out[1]);
	qmp_close(&q);
	peer_stop(&p);
	/* One byte more: refused, and the connection closed. */
	reply_len = QMP_REPLY_MAX + 1;
	ASSERT_EQ(0, peer_start(&p, script_long_reply));
	ASSERT_EQ(0, qmp_open(&q, p.path, 2000)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(-1, qmp_exec(&q, "query-status", NULL, out, sizeof(out)));
	EXPECT_TRUE(one_line(lmig_errmsg(), p.path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "reply to query-status is longer than 262144 bytes"))
		TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(-1, q.fd);
	lmig_err_clear();
	ASSERT_EQ(-1, qmp_exec(&q, "query-status", NULL, out, sizeof(out)));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "not connected")) TH_LOG("%s", lmig_errmsg());
	qmp_close(&q);
	peer_stop(&p);
}

static void script_close_mid(int fd)
{
	handshake(fd);
	read_cmd(fd, NULL, 0);
	say(fd, "{\"return\": {\"status\": \"runn");
}

TEST(peer_closes)
{
	struct qmp_migrate m;
	struct peer p;
	struct qmp q;
	double t;

	ASSERT_EQ(0, peer_start(&p, script_close_mid));
	ASSERT_EQ(0, qmp_open(&q, p.path, 5000)) TH_LOG("%s", lmig_errmsg());
	t = mono();
	ASSERT_EQ(-1, qmp_query_migrate(&q, &m));
	t = mono() - t;
	EXPECT_TRUE(one_line(lmig_errmsg(), p.path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "QEMU closed the connection mid-message while "
			       "reply to query-migrate was awaited")) TH_LOG("%s", lmig_errmsg());
	/* It did not wait for the timeout: the close ended it. */
	EXPECT_GT(2.5, t);
	qmp_close(&q);
	peer_stop(&p);
}

static void script_events_ids(int fd)
{
	unsigned long id;
	char name[64];

	handshake(fd);
	id = read_cmd(fd, name, sizeof(name));
	/* Events, a reply to an id not asked, then the reply. */
	say(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n");
	sayf(fd, "{\"return\": {\"status\": \"wrong\"}, \"id\": %lu}\r\n", id + 100);
	say(fd, "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"setup\"}}");
	/* Split in the middle of a string holding braces. */
	sayf(fd, "{\"return\": {\"status\": \"right }{\", \"%s\": 1}", name);
	usleep(50 * 1000);
	sayf(fd, ", \"id\": %lu}\r\n", id);
	/* The next command gets no answer in time; its reply comes late,
	 * just before the reply to the one after. */
	id = read_cmd(fd, NULL, 0);
	read_cmd(fd, NULL, 0);
	sayf(fd, "{\"return\": {\"late\": true}, \"id\": %lu}\r\n", id);
	sayf(fd, "{\"return\": {\"late\": false}, \"id\": %lu}\r\n", id + 1);
	wait_eof(fd);
}

TEST(peer_events_ids)
{
	struct peer p;
	struct qmp q;
	char out[256];
	double t;

	ASSERT_EQ(0, peer_start(&p, script_events_ids));
	ASSERT_EQ(0, qmp_open(&q, p.path, 400)) TH_LOG("%s", lmig_errmsg());
	ASSERT_EQ(0, qmp_exec(&q, "query-status", NULL, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("{\"status\": \"right }{\", \"query-status\": 1}", out);
	EXPECT_STREQ("MIGRATION", q.last_event);
	t = mono();
	ASSERT_EQ(-1, qmp_exec(&q, "query-name", NULL, out, sizeof(out)));
	t = mono() - t;
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "no reply to query-name within 400 ms"))
		TH_LOG("%s", lmig_errmsg());
	EXPECT_LE(0.39, t);
	lmig_err_clear();
	ASSERT_EQ(0, qmp_exec(&q, "query-uuid", NULL, out, sizeof(out))) TH_LOG("%s", lmig_errmsg());
	EXPECT_STREQ("{\"late\": false}", out);
	qmp_close(&q);
	peer_stop(&p);
}

TEST(no_socket)
{
	char path[108], longer[109];
	struct qmp q;
	int fd;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	sock_path(path, sizeof(path), "none");
	ASSERT_EQ(-1, qmp_open(&q, path, 1000));
	EXPECT_TRUE(one_line(lmig_errmsg(), path)) TH_LOG("%s", lmig_errmsg());
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "cannot connect: No such file or directory"))
		TH_LOG("%s", lmig_errmsg());
	qmp_close(&q);
	/* A socket file nobody listens on. */
	lmig_err_clear();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
	close(fd);
	ASSERT_EQ(-1, qmp_open(&q, path, 1000));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "cannot connect: Connection refused"))
		TH_LOG("%s", lmig_errmsg());
	unlink(path);
	/* A path longer than a unix socket's. */
	lmig_err_clear();
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	ASSERT_EQ(-1, qmp_open(&q, longer, 1000));
	EXPECT_NE(NULL, strstr(lmig_errmsg(), "longer than 107 bytes")) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(NULL, strchr(lmig_errmsg(), '\n'));
	qmp_close(&q);
}

TEST_HARNESS_MAIN

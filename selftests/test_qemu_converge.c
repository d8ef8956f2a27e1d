// SPDX-License-Identifier: GPL-2.0-only
/*
 * A QEMU guest that does not converge by itself converges through lmig
 * (lmig proxy send --qmp, user/live/converge_vm.c), and the limits lmig
 * puts on its vCPU threads never outlive it.
 *
 * The guest (qemu/guest.c under QEMU 7.2 TCG, 512 MiB, 1 vCPU) rewrites
 * 60 MB/s of 128 MiB at wall pace; QEMU's
 * max-bandwidth is 30 MB/s, its downtime-limit its default, 300 ms.  In
 * beside_native the writer computes before each page it writes, so that
 * it needs a good share of its vCPU for its rate (see GUEST_ARGS); in the
 * other cases it only sleeps between its slices.  qemu/qmig.py runs each
 * migration and reports the vCPU thread's CPU cgroup and quota before,
 * during and after it.
 *
 *   beside_native      two guests side by side: one migrated natively
 *                      (tcp), one through lmig proxy with --qmp.  Through
 *                      lmig it completes within QEMU's downtime limit, the
 *                      destination's guest counts on from the source's,
 *                      the vCPU thread was limited (and the writer wrote
 *                      at half its rate or less meanwhile) and is back in
 *                      its cgroup with its quota, and no state file is
 *                      left.  The native one, cancelled once it has run
 *                      NATIVE_RATIO times as long as lmig's took, had not
 *                      completed, its writer dirtying faster than the link
 *                      all along, and its source runs on.
 *   cancelled          the migration cancelled while the limit holds the
 *                      vCPU thread: lmig puts it back at once (QEMU says
 *                      cancelled, or its stream ends), and the source
 *                      runs on.
 *   lmig_killed        lmig proxy send SIGKILLed while its limit holds
 *                      the vCPU thread: its guard puts the thread back,
 *                      the migration fails, the source runs on.
 *   guard_killed_too   the same with the guard killed first: the limit
 *                      stays (state file and all) until
 *                      `lmig throttle --restore` puts it back.  Any lmig
 *                      --qmp that starts on the host meanwhile undoes
 *                      such stale limits too, and fails this case: run
 *                      it alone.
 *
 *   usage              the options' errors: one line naming the problem,
 *                      exit 2 (1 when the QMP socket cannot be reached)
 *
 * Host cgroups here are v1 (cpu): the thread moves to a child cgroup
 * with a CFS quota.  Timings are only compared with each other.  SKIP
 * when QEMU, the kernel or a static libc is missing.  About a minute for
 * beside_native (boots included) and half a minute for each of the
 * others on 2 CPUs shared with other QEMUs.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define CASE_TIMEOUT	600
#define RUN_TIMEOUT	280
/* The native run goes on this many times as long as lmig's took. */
#define NATIVE_RATIO	1.5
#define RESULT_MAX	65536

/*
 * The guest and the link of beside_native, at QEMU's default downtime
 * budget.  Its writer computes before each page it writes (guest_busy=30:
 * 30 % of its vCPU at full speed for 60 MB/s), as real workloads do: a
 * CPU limit slows it in proportion.  Not more: beside the other guest on
 * a loaded machine it gets far less than a whole vCPU, and it must still
 * dirty faster than the link.  A writer that only sleeps between
 * its slices dirties 60 MB/s on 2 % of a CPU, less than the least limit
 * lmig may set at 300 ms (a vCPU waiting for its quota delays the
 * switch-over), and is out of reach of any CPU limit.  --settle: the
 * writer's own rate and busy share before the migration (a line a
 * second).
 */
#define GUEST_ARGS "--rate", "60", "--touch", "128", "--max-bandwidth", "30000000", \
		   "--guest-append", "pti=on guest_busy=30", "--settle", "3", \
		   "--boot-timeout", "90"
/* That link in MB/s, for the writer's rates. */
#define LINK_MBS	30
/* The killed cases need a limit, not a convergence: a smaller guest is limited sooner. */
#define KILL_GUEST_ARGS "--rate", "60", "--touch", "128", "--max-bandwidth", "30000000", \
			"--boot-timeout", "90"

FIXTURE(converge) {
	char dir[PATH_MAX];
	char *res, *native;
	int skip;
};

FIXTURE_SETUP(converge)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 0));
	self->res = calloc(1, RESULT_MAX);
	self->native = calloc(1, RESULT_MAX);
	ASSERT_TRUE(self->res && self->native);
	self->skip = 0;
}

FIXTURE_TEARDOWN(converge)
{
	free(self->res);
	free(self->native);
	scratch_remove(self->dir);
}

/*
 * Start qmig.py for case NAME in DIR/NAME with EXTRA (NULL-terminated);
 * its JSON line goes to DIR/NAME.json.
 */
static int qmig_start(struct proc *p, const char *dir, const char *name,
		      const char *const extra[])
{
	static char qmig[PATH_MAX];
	char work[PATH_MAX], result[PATH_MAX];
	const char *argv[48] = { python3_path(), qmig, "--name", name, "--work", work,
				 "--lmig", lmig_path(), "--result-file", result };
	int n = 10;

	if (!qemu_driver("qmig.py", qmig, sizeof(qmig)))
		return -1;
	snprintf(work, sizeof(work), "%s/%s", dir, name);
	snprintf(result, sizeof(result), "%s/%s.json", dir, name);
	for (int i = 0; extra[i] && n < 47; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	return proc_spawn(p, (char *const *)argv, NULL);
}

/* Wait for it and read its line into res; 4: cannot run here (skip). */
static int qmig_wait(struct __test_metadata *_metadata, struct proc *p, const char *dir,
		     const char *name, char *res)
{
	char file[64];

	if (proc_wait(p, RUN_TIMEOUT)) {
		proc_kill(p);
		TH_LOG("qmig.py %s still running after %d s", name, RUN_TIMEOUT);
		return -1;
	}
	if (proc_exit_code(p) == 4)
		return 4;
	if (proc_exit_code(p) != 0) {
		TH_LOG("qmig.py %s: exit %d: %s", name, proc_exit_code(p), p->err_log);
		return -1;
	}
	snprintf(file, sizeof(file), "%s.json", name);
	if (read_str(dir, file, res, RESULT_MAX) || res[0] != '{') {
		TH_LOG("qmig.py %s left no result", name);
		return -1;
	}
	return 0;
}


/* The text of the object after "key": (up to its closing brace) into buf. */
static const char *obj(const char *json, const char *key, char *buf, size_t len)
{
	char k[64];
	const char *p, *e;

	snprintf(k, sizeof(k), "\"%s\":{", key);
	p = strstr(json, k);
	e = p ? strchr(p + strlen(k), '}') : NULL;
	if (!e) {
		snprintf(buf, len, "(no %s)", key);
		return buf;
	}
	p += strlen(k) - 1;
	snprintf(buf, len, "%.*s", (int)(e - p + 1), p);
	return buf;
}

/* The most vCPU threads seen limited at once during the migration. */
static int64_t most_limited(const char *json)
{
	int64_t most = 0;

	for (const char *p = strstr(json, "\"threads_limited\":"); p;
	     p = strstr(p + 1, "\"threads_limited\":")) {
		int64_t v = strtoll(p + 18, NULL, 10);

		if (v > most)
			most = v;
	}
	return most;
}

/* QEMU completed, the destination runs, and its guest printed no tick. */
static bool silent_destination(const char *res)
{
	char buf[64];

	return !strcmp(json_str_or(res, "status", buf, sizeof(buf)), "completed") &&
	       json_num(res, "dst_ticks") == 0;
}

/* The source's guest went on after a failed or cancelled migration. */
static void check_source_runs(struct __test_metadata *_metadata, const char *res)
{
	char buf[64];

	ASSERT_STREQ("running", json_str_or(res, "src_status", buf, sizeof(buf)));
	ASSERT_LE(json_num(res, "src_tick_after_failure") + 5, json_num(res, "src_tick_later"));
}

TEST_F_TIMEOUT(converge, beside_native, CASE_TIMEOUT)
{
	const char *lmig_case[] = { "--transport", "proxy", "--lmig-qmp", "--timeout", "150",
				    GUEST_ARGS, NULL };
	char bound_file[PATH_MAX + 16], bound[32], buf[512], b2[512];
	const char *native_case[] = { "--transport", "tcp", "--bound-file", bound_file,
				      "--timeout", "250", GUEST_ARGS, NULL };
	struct proc pn = { 0 }, pl = { 0 };
	double t_lmig;
	int r;

	snprintf(bound_file, sizeof(bound_file), "%s/native.bound", self->dir);
	for (int attempt = 1;; attempt++) {
		unlink(bound_file);
		ASSERT_EQ(0, qmig_start(&pn, self->dir, "native", native_case));
		ASSERT_EQ(0, qmig_start(&pl, self->dir, "lmig", lmig_case));
		r = qmig_wait(_metadata, &pl, self->dir, "lmig", self->res);
		/* The native run's bound: NATIVE_RATIO x what lmig's took (1 s if it failed). */
		t_lmig = r ? 0 : json_dbl(self->res, "wall_s");
		snprintf(bound, sizeof(bound), "%.1f", t_lmig > 0 ? NATIVE_RATIO * t_lmig : 1.0);
		file_write(bound_file, bound, strlen(bound));
		if (qmig_wait(_metadata, &pn, self->dir, "native", self->native) == 4 || r == 4)
			SKIP(return, "cannot boot a QEMU guest here: %.900s", pl.err_log);
		ASSERT_EQ(0, r);
		ASSERT_NE(NULL, self->native[0] ? self->native : NULL);
		TH_LOG("through lmig: %.3000s", self->res);
		TH_LOG("native: %.1500s", self->native);
		if (attempt > 1 || !silent_destination(self->res))
			break;
		/* QEMU under TCG now and then leaves a destination silent (test_qemu.c). */
		TH_LOG("the destination guest printed nothing after a completed migration: once more");
	}

	/* Through lmig: completed within QEMU's downtime limit, the same guest running on. */
	ASSERT_EQ(NULL, strstr(self->res, "\"harness_error\":"));
	ASSERT_STREQ("completed", json_str_or(self->res, "status", buf, sizeof(buf)));
	ASSERT_STREQ("running", json_str_or(self->res, "dst_status", buf, sizeof(buf)));
	EXPECT_STREQ("postmigrate", json_str_or(self->res, "src_status", buf, sizeof(buf)));
	ASSERT_LT(0, json_num(self->res, "src_tick_at_migrate"));
	ASSERT_LT(json_num(self->res, "src_tick_at_migrate"), json_num(self->res, "dst_first_tick"));
	ASSERT_LE(json_num(self->res, "src_last_tick"), json_num(self->res, "dst_first_tick"));
	ASSERT_LE(json_num(self->res, "dst_first_tick") + 5, json_num(self->res, "dst_last_tick"));
	ASSERT_LT(0, json_num(self->res, "total_time_ms"));
	ASSERT_LT(0, json_dbl(self->res, "downtime_limit_ms"));
	ASSERT_LE(json_dbl(self->res, "downtime_ms"), json_dbl(self->res, "downtime_limit_ms"));
	EXPECT_EQ(0, json_num(self->res, "proxy_send_exit"));
	EXPECT_EQ(0, json_num(self->res, "proxy_recv_exit"));
	/* ... because lmig limited the vCPU thread (qmig.py saw it moved) ... */
	ASSERT_LE(1, most_limited(self->res));
	ASSERT_EQ(1, json_bool(self->res, "throttled"));
	/* ... a writer that needs its CPU, and wrote at half its rate or less under the limit ... */
	ASSERT_LE(10, json_num(self->res, "writer_busy_before_pct"));
	ASSERT_LT(LINK_MBS, json_num(self->res, "writer_mbs_before"));
	ASSERT_LE(0, json_num(self->res, "writer_mbs_during_min"));
	ASSERT_LE(2 * json_num(self->res, "writer_mbs_during_min"),
		  json_num(self->res, "writer_mbs_before"));
	/* ... and put everything back: cgroup, quota, no state file. */
	ASSERT_EQ(1, json_bool(self->res, "restored"));
	ASSERT_EQ(1, json_bool(self->res, "vcpu_cpu_restored"))
		TH_LOG("before %s after %s", obj(self->res, "vcpu_cpu_before", buf, sizeof(buf)),
		       obj(self->res, "vcpu_cpu_after", b2, sizeof(b2)));
	ASSERT_EQ(0, json_bool(self->res, "state_file_after"));

	/* Natively, the same guest had not completed in NATIVE_RATIO x that time. */
	ASSERT_EQ(NULL, strstr(self->native, "\"harness_error\":"));
	ASSERT_EQ(1, json_bool(self->native, "bounded"));
	ASSERT_STREQ("active", json_str_or(self->native, "status_at_bound", buf, sizeof(buf)));
	ASSERT_LE(NATIVE_RATIO * t_lmig - 0.5, json_dbl(self->native, "bound_s"));
	/* Its writer went on dirtying faster than the link carries. */
	ASSERT_LT(LINK_MBS, json_num(self->native, "writer_mbs_during"));
	check_source_runs(_metadata, self->native);
	TH_LOG("through lmig: completed in %.1f s, downtime %lld ms (limit %lld), vCPU limited to %.1f %% of a CPU at least, writer %lld MB/s (busy %lld %%) before, %lld at the least; natively still active after %.1f s, %lld bytes left, writer %lld MB/s",
	       t_lmig, (long long)json_num(self->res, "downtime_ms"),
	       (long long)json_dbl(self->res, "downtime_limit_ms"),
	       json_dbl(self->res, "min_limit_pct"),
	       (long long)json_num(self->res, "writer_mbs_before"),
	       (long long)json_num(self->res, "writer_busy_before_pct"),
	       (long long)json_num(self->res, "writer_mbs_during_min"),
	       json_dbl(self->native, "bound_s"),
	       (long long)json_num(self->native, "remaining_at_bound"),
	       (long long)json_num(self->native, "writer_mbs_during"));
}

/* Killed while limiting: the case's result in self->res; -1 after a skip. */
static int killed_case(struct __test_metadata *_metadata, FIXTURE_DATA(converge) *self,
		       const char *name, bool guard_too)
{
	const char *args[] = { "--transport", "proxy", "--lmig-qmp", "--kill-when-limited",
			       "--timeout", "150", KILL_GUEST_ARGS,
			       guard_too ? "--kill-guard" : NULL, NULL };
	struct proc p = { 0 };
	char buf[512];
	int r;

	if (qmig_start(&p, self->dir, name, args))
		return -2;
	r = qmig_wait(_metadata, &p, self->dir, name, self->res);
	if (r == 4) {
		self->skip = 1;
		return -1;
	}
	if (r)
		return -2;
	TH_LOG("%.3000s", self->res);
	/* Killed while the limit held the vCPU thread, in the middle of the migration. */
	if (strcmp(json_str_or(self->res, "killed_while", buf, sizeof(buf)), "active"))
		return -3;
	return 0;
}

TEST_F_TIMEOUT(converge, cancelled, CASE_TIMEOUT)
{
	const char *args[] = { "--transport", "proxy", "--lmig-qmp", "--cancel-when-limited",
			       "--timeout", "150", KILL_GUEST_ARGS, NULL };
	char before[512], buf[512];
	struct proc p = { 0 };
	int r;

	ASSERT_EQ(0, qmig_start(&p, self->dir, "cancelled", args));
	r = qmig_wait(_metadata, &p, self->dir, "cancelled", self->res);
	if (r == 4)
		SKIP(return, "cannot boot a QEMU guest here");
	ASSERT_EQ(0, r);
	TH_LOG("%.3000s", self->res);
	ASSERT_EQ(NULL, strstr(self->res, "\"harness_error\":"));
	ASSERT_STREQ("cancelled", json_str_or(self->res, "status", buf, sizeof(buf)));
	ASSERT_STRNE(obj(self->res, "vcpu_cpu_before", before, sizeof(before)),
		     obj(self->res, "vcpu_cpu_at_cancel", buf, sizeof(buf)));
	/* Put back by lmig itself, at once (its guard only stands down). */
	ASSERT_LE(0, json_dbl(self->res, "freed_after_cancel_s"));
	ASSERT_EQ(1, json_bool(self->res, "vcpu_cpu_restored"));
	ASSERT_EQ(0, json_bool(self->res, "state_file_after"));
	ASSERT_EQ(1, json_bool(self->res, "restored"));
	check_source_runs(_metadata, self->res);
	/* Whichever lmig saw first: QEMU's status, or the end of its stream. */
	TH_LOG("lmig freed the vCPU thread %.3f s after the cancel (its end: %s)",
	       json_dbl(self->res, "freed_after_cancel_s"), json_str_or(self->res, "end", buf, sizeof(buf)));
}

TEST_F_TIMEOUT(converge, lmig_killed, CASE_TIMEOUT)
{
	char before[512], after[512];
	int r = killed_case(_metadata, self, "killed", false);

	if (self->skip)
		SKIP(return, "cannot boot a QEMU guest here");
	ASSERT_EQ(0, r);
	ASSERT_EQ(NULL, strstr(self->res, "\"harness_error\":"));
	ASSERT_LE(1, most_limited(self->res));
	ASSERT_STRNE(obj(self->res, "vcpu_cpu_before", before, sizeof(before)),
		     obj(self->res, "vcpu_cpu_at_kill", after, sizeof(after)));
	/* The guard put the thread back, quota and all, and removed the state file. */
	ASSERT_LE(0, json_dbl(self->res, "freed_after_kill_s"));
	ASSERT_EQ(1, json_bool(self->res, "vcpu_cpu_restored"))
		TH_LOG("before %s after %s", before,
		       obj(self->res, "vcpu_cpu_after_kill", after, sizeof(after)));
	ASSERT_EQ(0, json_bool(self->res, "state_file_after_kill"));
	/* The migration failed and the source runs on. */
	ASSERT_EQ(0, strcmp(json_str_or(self->res, "status", after, sizeof(after)), "failed"));
	check_source_runs(_metadata, self->res);
	TH_LOG("the guard freed the vCPU thread %.3f s after the kill",
	       json_dbl(self->res, "freed_after_kill_s"));
}

TEST_F_TIMEOUT(converge, guard_killed_too, CASE_TIMEOUT)
{
	char before[512], after[512];
	int r = killed_case(_metadata, self, "guard-killed", true);

	if (self->skip)
		SKIP(return, "cannot boot a QEMU guest here");
	ASSERT_EQ(0, r);
	ASSERT_EQ(NULL, strstr(self->res, "\"harness_error\":"));
	ASSERT_LE(1, json_num(self->res, "guards_killed"));
	/* Nobody put it back: still limited, the state file there. */
	obj(self->res, "vcpu_cpu_before", before, sizeof(before));
	ASSERT_STRNE(before, obj(self->res, "vcpu_cpu_after_kill", after, sizeof(after)));
	ASSERT_EQ(1, json_bool(self->res, "state_file_after_kill"));
	/* lmig throttle --restore did, from the state file. */
	ASSERT_EQ(0, json_num(self->res, "throttle_restore_exit"));
	ASSERT_EQ(1, json_bool(self->res, "vcpu_cpu_restored"))
		TH_LOG("before %s after %s", before,
		       obj(self->res, "vcpu_cpu_after_restore", after, sizeof(after)));
	ASSERT_EQ(0, json_bool(self->res, "state_file_after_restore"));
	/* The migration failed; the source is there (limited until the restore). */
	ASSERT_STREQ("running", json_str_or(self->res, "src_status", after, sizeof(after)));
}

/* lmig ARGS... exits with code and says, in one line on stderr, words. */
static void usage_case(struct __test_metadata *_metadata, int code, const char *words,
		       const char *const args[])
{
	const char *argv[16] = { lmig_path() };
	struct proc p = { 0 };
	int n = 1;

	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&p, 20)) proc_kill(&p);
	EXPECT_EQ(code, proc_exit_code(&p)) TH_LOG("%s: %s", args[2], p.err_log);
	EXPECT_NE(NULL, strstr(p.err, words)) TH_LOG("%s: %s", args[2], p.err_log);
	/* One line. */
	EXPECT_EQ(p.err_len ? p.err + p.err_len - 1 : NULL, strchr(p.err, '\n'))
		TH_LOG("%s", p.err_log);
	EXPECT_EQ(0, p.out_len);
}

TEST_F(converge, usage)
{
	char sock[PATH_MAX + 16];

	snprintf(sock, sizeof(sock), "%s/none.qmp", self->dir);
	usage_case(_metadata, 2, "--throttle needs --qmp PATH",
		   (const char *const[]){ "proxy", "send", "--listen", "unix:/nonexistent/x",
					  "--to", "127.0.0.1:9", "--throttle", "auto", NULL });
	usage_case(_metadata, 2, "--throttle-max needs --qmp PATH",
		   (const char *const[]){ "pipe", "send", "--to", "127.0.0.1:9",
					  "--throttle-max", "50", NULL });
	usage_case(_metadata, 2, "--vm-pid needs --qmp PATH",
		   (const char *const[]){ "pipe", "send", "--to", "127.0.0.1:9", "--vm-pid",
					  "1", NULL });
	usage_case(_metadata, 2, "--throttle: 'on' is not auto or off",
		   (const char *const[]){ "pipe", "send", "--to", "127.0.0.1:9", "--qmp", sock,
					  "--throttle", "on", NULL });
	usage_case(_metadata, 2, "--throttle-max: 100 is out of range",
		   (const char *const[]){ "proxy", "send", "--listen", "unix:/nonexistent/x",
					  "--to", "127.0.0.1:9", "--qmp", sock,
					  "--throttle-max", "100", NULL });
	usage_case(_metadata, 2, "--vm-pid",
		   (const char *const[]){ "pipe", "send", "--to", "127.0.0.1:9", "--qmp", sock,
					  "--vm-pid", "x", NULL });
	/* Well formed, but no QEMU there: a failure, before anything was carried. */
	usage_case(_metadata, 1, sock,
		   (const char *const[]){ "pipe", "send", "--to", "127.0.0.1:9", "--qmp", sock,
					  NULL });
}

TEST_HARNESS_MAIN

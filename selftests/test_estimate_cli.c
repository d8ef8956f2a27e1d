// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig estimate` run for real: it watches `lmig dirty` writing a memfd at
 * a known rate, and its prediction is held against a real `lmig send` of
 * the same memfd over the same --bandwidth, side by side.  Bad input is
 * refused with one line and exit 2.
 *
 *   predicts_a_real_send   the JSON's shape and numbers (the image, the
 *                          rate it saw against the writer's, the link),
 *                          then the real migration: its total time within
 *                          a factor of 1.8 of the prediction either way,
 *                          rounds within 2, and the image identical
 *   link_measured          --to: a probe send to a real lmig recv, held to
 *                          --bandwidth: the cap's rate, the memory's bytes
 *   busy_writer_course     a CPU-paced writer: runnable throughout, its
 *                          CPU unwatched and the pace read from it; its
 *                          --throttle auto course where one is needed
 *   never_without_throttle a writer faster than the link, --throttle off:
 *                          "never", the rounds running out
 *   text_report            the text form names the verdict
 *   bad_input              one line, exit 2, for each mistake
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define PAGE	4096ULL
#define MiB	(1024ULL * 1024)

FIXTURE(est) {
	char dir[256], out[320], mem[512], pid[16];
	struct proc dw, rx, tx, est;
};

FIXTURE_SETUP(est)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 64 * MiB));
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
}

FIXTURE_TEARDOWN(est)
{
	proc_kill(&self->est);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	if (self->dw.pid > 0)
		kill(self->dw.pid, SIGCONT);
	proc_kill(&self->dw);
	scratch_remove(self->dir);
}

/* A memfd of size written at rate by `lmig dirty`: its path and pid into self. */
static int writer(struct _test_data_est *self, const char *size, const char *rate)
{
	const char *const args[] = { "--mem", "memfd:lmig-est-test", "--size", size, "--rate", rate,
				     NULL };

	if (dirty_start(&self->dw, args, self->mem, sizeof(self->mem)))
		return -1;
	snprintf(self->pid, sizeof(self->pid), "%d", (int)self->dw.pid);
	return 0;
}

/* lmig estimate ARGS... to its end: exit code, stdout in self->est.out. */
static int estimate(struct _test_data_est *self, const char *const args[])
{
	const char *argv[32] = { lmig_path(), "estimate" };
	int n = 2;

	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (proc_spawn(&self->est, (char *const *)argv, NULL) || proc_wait(&self->est, 60))
		return -1;
	return proc_exit_code(&self->est);
}

TEST_F(est, predicts_a_real_send)
{
	char s[64];
	uint64_t pages, zero, rounds = 0;
	double dirty, pred_s, act_s, pred_rounds;
	const char *p;
	int port;

	/* 32 MiB at 8 MB/s over 16 MB/s: round 0 2 s, then a few shrinking rounds. */
	ASSERT_EQ(0, writer(self, "32Mi", "8M"));
	ASSERT_EQ(0, estimate(self, (const char *const[]){ "--mem", self->mem, "--pid", self->pid,
							   "--bandwidth", "16M", "--observe", "2",
							   "--json", NULL }))
		TH_LOG("stderr: %s", self->est.err_log);
	ASSERT_TRUE(json_one_object(self->est.out)) TH_LOG("stdout: %s", self->est.out);
	TH_LOG("%s", self->est.out);
	ASSERT_EQ(0, json_str_field(self->est.out, "role", s, sizeof(s)));
	EXPECT_STREQ("estimate", s);
	ASSERT_EQ(0, json_str_field(self->est.out, "model", s, sizeof(s)));
	EXPECT_STREQ("lmig", s);
	ASSERT_EQ(0, json_str_field(self->est.out, "verdict", s, sizeof(s)));
	EXPECT_STREQ("converges", s);
	ASSERT_EQ(0, json_str_field(self->est.out, "link_from", s, sizeof(s)));
	EXPECT_STREQ("--bandwidth", s);
	EXPECT_EQ(16, json_dbl(self->est.out, "link_mbps"));
	ASSERT_EQ(0, json_u64_field(self->est.out, "pages_total", &pages));
	EXPECT_EQ(32 * MiB / PAGE, pages);
	/* The counter pattern fills every page. */
	ASSERT_EQ(0, json_u64_field(self->est.out, "pages_zero", &zero));
	EXPECT_EQ(0, zero);
	/* Distinct pages: no more than written, and over 2 s of 8 MiB, not much less. */
	dirty = json_dbl(self->est.out, "dirty_mbps");
	EXPECT_GE(dirty, 0.5 * 8);
	EXPECT_LE(dirty, 1.2 * 8);
	p = strstr(self->est.out, "\"curve\":[{\"s\":");
	EXPECT_NE(NULL, p) TH_LOG("no curve points");
	EXPECT_GT(json_dbl(self->est.out, "harvest_ms"), 0);
	EXPECT_EQ(1, json_bool(self->est.out, "converged"));
	pred_s = json_dbl(self->est.out, "total_s");
	pred_rounds = json_dbl(self->est.out, "rounds");
	EXPECT_GE(pred_rounds, 3);

	/* The real migration, side by side. */
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->mem, port,
				(const char *const[]){ "--pid", self->pid, "--bandwidth", "16M",
						       "--no-progress", NULL }));
	ASSERT_EQ(0, proc_wait(&self->tx, 60));
	ASSERT_EQ(0, proc_wait(&self->rx, 10));
	ASSERT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	EXPECT_EQ(1, files_equal(self->mem, self->out));
	act_s = json_dbl(self->tx.out, "total_ms") / 1000;
	/* The rounds array's elements hold no array: its first ']' ends it. */
	p = strstr(self->tx.out, "\"rounds\":[");
	ASSERT_NE(NULL, p);
	for (const char *end = strchr(p, ']'); (p = strstr(p + 1, "\"round\":")) && p < end;)
		rounds++;
	TH_LOG("predicted %.2f s in %.0f rounds, actual %.2f s in %llu rounds", pred_s,
	       pred_rounds, act_s, (unsigned long long)rounds);
	EXPECT_GE(pred_s, act_s / 1.8);
	EXPECT_LE(pred_s, act_s * 1.8);
	EXPECT_LE(pred_rounds, rounds + 2);
	EXPECT_GE(pred_rounds + 2, rounds);
}

/*
 * A writer whose pace is its CPU (lmig dirty --pace cpu): it is runnable
 * all the time, its CPU is looked at unwatched too (the pace the model
 * reads its curve at is the ratio of the two, never below 1), and where
 * only a limit makes it converge, --throttle auto's course is reported:
 * the round its limit starts in, the limits it sets, the tightest share.
 */
TEST_F(est, busy_writer_course)
{
	const char *const dargs[] = { "--mem", "memfd:lmig-est-test", "--size", "16Mi",
				      "--rate", "32M", "--pace", "cpu", NULL };
	double used, quiet, pace;
	char s[64];

	ASSERT_EQ(0, dirty_start(&self->dw, dargs, self->mem, sizeof(self->mem)));
	snprintf(self->pid, sizeof(self->pid), "%d", (int)self->dw.pid);
	ASSERT_EQ(0, estimate(self, (const char *const[]){ "--mem", self->mem, "--pid", self->pid,
							   "--bandwidth", "4M", "--observe", "2",
							   "--throttle-max", "99", "--json", NULL }))
		TH_LOG("stderr: %s", self->est.err_log);
	TH_LOG("%s", self->est.out);
	EXPECT_GE(json_dbl(self->est.out, "busiest_thread_runnable_pct"), 90);
	EXPECT_EQ(0, json_bool(self->est.out, "writer_idle"));
	used = json_dbl(self->est.out, "cpu_used_pct");
	quiet = json_dbl(self->est.out, "cpu_quiet_pct");
	pace = json_dbl(self->est.out, "pace");
	EXPECT_GT(used, 0);
	EXPECT_GT(quiet, 0);
	EXPECT_GE(pace, 1);
	/* Both rounded to a tenth of a per cent: the ratio within 5 %, or 1. */
	if (quiet > used * 1.05)
		EXPECT_LE(fabs(pace - quiet / used), 0.05 * quiet / used);
	if (quiet < used)
		EXPECT_EQ(1, pace);
	EXPECT_LE(json_dbl(self->est.out, "harvest_min_ms"), json_dbl(self->est.out, "harvest_ms"));
	ASSERT_EQ(0, json_str_field(self->est.out, "verdict", s, sizeof(s)));
	if (!strcmp(s, "throttle")) {
		EXPECT_EQ(0, json_bool(self->est.out, "as_is_converged"));
		EXPECT_EQ(1, json_bool(self->est.out, "converged"));
		EXPECT_GE(json_dbl(self->est.out, "throttle_from_round"), 1);
		EXPECT_GE(json_dbl(self->est.out, "throttle_steps"), 1);
		EXPECT_LT(json_dbl(self->est.out, "cpu_share_pct"), 100);
		EXPECT_EQ(json_dbl(self->est.out, "cpu_share_pct"),
			  json_dbl(self->est.out, "throttle_share_pct"));
	} else {
		TH_LOG("verdict %s: the writer got too little CPU here to outrun the link", s);
	}
}

TEST_F(est, never_without_throttle)
{
	char s[64];

	ASSERT_EQ(0, writer(self, "16Mi", "16M"));
	ASSERT_EQ(0, estimate(self, (const char *const[]){ "--mem", self->mem, "--pid", self->pid,
							   "--bandwidth", "4M", "--observe", "1",
							   "--throttle", "off", "--max-rounds", "10",
							   "--json", NULL }))
		TH_LOG("stderr: %s", self->est.err_log);
	ASSERT_EQ(0, json_str_field(self->est.out, "verdict", s, sizeof(s)));
	EXPECT_STREQ("never", s);
	ASSERT_EQ(0, json_str_field(self->est.out, "as_is_fail", s, sizeof(s)));
	EXPECT_STREQ("rounds", s);
	EXPECT_EQ(10, json_dbl(self->est.out, "as_is_rounds"));
	EXPECT_EQ(100, json_dbl(self->est.out, "throttle_floor_pct"));
}

/*
 * --to: a probe send of the first --probe bytes of the memory to a real
 * lmig recv, held to --bandwidth: the rate measured is the cap's (a
 * ratio, not a time), and the receiver holds exactly those bytes.
 */
TEST_F(est, link_measured)
{
	char to[32], s[64];
	uint8_t *a, *b;
	double mbps;
	int port;

	ASSERT_EQ(0, writer(self, "32Mi", "0"));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	snprintf(to, sizeof(to), "127.0.0.1:%d", port);
	ASSERT_EQ(0, estimate(self, (const char *const[]){ "--mem", self->mem, "--to", to,
							   "--bandwidth", "40M", "--probe", "16Mi",
							   "--observe", "1", "--json", NULL }))
		TH_LOG("stderr: %s", self->est.err_log);
	ASSERT_EQ(0, proc_wait(&self->rx, 10));
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	ASSERT_EQ(0, json_str_field(self->est.out, "link_from", s, sizeof(s)));
	EXPECT_STREQ("measured with --to, held to --bandwidth", s);
	mbps = json_dbl(self->est.out, "link_mbps");
	TH_LOG("probe: %.2f MB/s under a cap of 40", mbps);
	EXPECT_LE(mbps, 40 * 1.1);
	EXPECT_GE(mbps, 40 * 0.5);
	/* The counter pattern does not compress under auto here: a page and its share of headers. */
	EXPECT_GE(json_dbl(self->est.out, "page_wire"), 4096);
	a = file_load(self->mem, 32 * MiB);
	b = file_load(self->out, 16 * MiB);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_EQ(0, memcmp(a, b, 16 * MiB));
	free(a);
	free(b);
}

TEST_F(est, text_report)
{
	ASSERT_EQ(0, writer(self, "8Mi", "1M"));
	ASSERT_EQ(0, estimate(self, (const char *const[]){ "--mem", self->mem, "--bandwidth", "100M",
							   "--observe", "1", NULL }))
		TH_LOG("stderr: %s", self->est.err_log);
	EXPECT_NE(NULL, strstr(self->est.out, "lmig send converges as it is: about "))
		TH_LOG("%s", self->est.out);
	EXPECT_NE(NULL, strstr(self->est.out, "link: 100.0 MB/s (--bandwidth)"));
}

TEST_F(est, bad_input)
{
	static const char *const cases[][8] = {
		{ "--bandwidth", "10M", NULL },
		{ "--mem", "/dev/null", NULL },
		{ "--mem", "/dev/null", "--bandwidth", "10M", "--observe", "0", NULL },
		{ "--mem", "/dev/null", "--bandwidth", "10M", "--throttle-max", "100", NULL },
		{ "--mem", "/dev/null", "--bandwidth", "10M", "--probe", "5", NULL },
		{ "--mem", "/dev/null", "--bandwidth", "10M", "--tracker", "psychic", NULL },
		{ "--mem", "anon:1000-2000", "--bandwidth", "10M", NULL },
		{ "--mem", "/dev/null", "--to", "nowhere", NULL },
	};

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proc p = { 0 };
		const char *argv[12] = { lmig_path(), "estimate" };
		int n = 2;

		for (int k = 0; cases[i][k]; k++)
			argv[n++] = cases[i][k];
		ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
		ASSERT_EQ(0, proc_wait(&p, 10));
		EXPECT_EQ(2, proc_exit_code(&p)) TH_LOG("case %u: %s", i, p.err_log);
		EXPECT_TRUE(one_line(p.err)) TH_LOG("case %u: %s", i, p.err_log);
		EXPECT_EQ(0, p.out_len);
		proc_kill(&p);
	}
	/* A memory that cannot be read is a failure, not a usage error. */
	{
		struct proc p = { 0 };
		const char *argv[] = { lmig_path(), "estimate", "--mem", "/nonexistent-lmig-est",
				       "--bandwidth", "10M", NULL };

		ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
		ASSERT_EQ(0, proc_wait(&p, 10));
		EXPECT_EQ(1, proc_exit_code(&p));
		EXPECT_TRUE(one_line(p.err)) TH_LOG("%s", p.err_log);
		proc_kill(&p);
	}
}

TEST_HARNESS_MAIN

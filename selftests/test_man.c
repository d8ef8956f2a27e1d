// SPDX-License-Identifier: GPL-2.0-only
/*
 * The man pages (the scdoc sources in Documentation/man) and the bash
 * completion (completion/lmig) against the real lmig: man/check.py asks
 * every command's --help and compares, builds the pages with `make man`
 * and renders them with man(1), and drives _lmig in a real bash.  Then the
 * same checks on a page and a completion with one option taken out and
 * one made up, which must fail naming both: a checker that passes
 * anything would pass the real files too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/proc.h"

/* The tree's top directory, from the lmig under test (TOP/user/lmig). */
static int top_dir(char *buf, size_t len)
{
	const char *bin = lmig_path(), *slash = strrchr(bin, '/');
	char rel[4096];
	int n;

	if (!slash)
		return -1;
	n = snprintf(rel, sizeof(rel), "%.*s/..", (int)(slash - bin), bin);
	if (n < 0 || (size_t)n >= sizeof(rel) || !realpath(rel, buf) || strlen(buf) >= len)
		return -1;
	return 0;
}

static const char *python(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* Run check.py WHAT [EXTRA...] (NULL-terminated) to its end in p. */
static void check(struct __test_metadata *_metadata, struct proc *p, const char *what,
		  const char *const extra[])
{
	char top[4000], script[4096];
	const char *argv[16] = { python(), script, what, "--lmig", lmig_path() };
	int n = 5;

	ASSERT_EQ(0, top_dir(top, sizeof(top)));
	snprintf(script, sizeof(script), "%s/selftests/man/check.py", top);
	for (int i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	ASSERT_EQ(0, proc_spawn(p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(p, 120)) TH_LOG("check.py %s still running", what);
	proc_kill(p);
}

static void passes(struct __test_metadata *_metadata, const char *what)
{
	struct proc p;

	check(_metadata, &p, what, NULL);
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("check.py %s: %s", what, p.err_log);
	EXPECT_EQ(0, p.err_len) TH_LOG("stderr: %s", p.err_log);
	ksft_print_msg("%s", p.out);
	fflush(stdout);
}

/* Every option of every --help in its page and only those; examples valid. */
TEST(pages_match_help)
{
	passes(_metadata, "options");
}

/* `make man`, then `man --warnings -l` of each page says nothing. */
TEST(pages_render)
{
	passes(_metadata, "render");
}

/* _lmig completes commands, exactly each command's options, and values. */
TEST(completion_matches_help)
{
	passes(_metadata, "completion");
}

/* Copy src to dst with cut taken out of every line, and add after the first line holding anchor. */
static int mutate(const char *src, const char *dst, const char *cut, const char *anchor,
		  const char *add)
{
	char line[4096];
	FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
	int added = 0;

	if (!in || !out) {
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		return -1;
	}
	while (fgets(line, sizeof(line), in)) {
		char *c = strstr(line, cut);

		if (c)
			memmove(c, c + strlen(cut), strlen(c + strlen(cut)) + 1);
		fputs(line, out);
		if (!added && strstr(line, anchor)) {
			fputs(add, out);
			added = 1;
		}
	}
	fclose(in);
	return fclose(out) || !added ? -1 : 0;
}

FIXTURE(drift)
{
	char dir[64], top[4000];
};

FIXTURE_SETUP(drift)
{
	strcpy(self->dir, "/tmp/lmig-r27-man.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	ASSERT_EQ(0, top_dir(self->top, sizeof(self->top)));
}

FIXTURE_TEARDOWN(drift)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		TH_LOG("could not remove %s", self->dir);
}

/* lmig-send's page without --then and with a made-up --frobnicate. */
TEST_F(drift, page_drift_is_named)
{
	char src[4200], pages[96], dst[128], cmd[4400];
	struct proc p;

	snprintf(pages, sizeof(pages), "%s/pages", self->dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s/Documentation/man' '%s'", self->top, pages);
	ASSERT_EQ(0, system(cmd));
	snprintf(src, sizeof(src), "%s/Documentation/man/lmig-send.8.scd", self->top);
	snprintf(dst, sizeof(dst), "%s/lmig-send.8.scd", pages);
	ASSERT_EQ(0, mutate(src, dst, "*--then*", "# OPTIONS",
			    "\n*--frobnicate* _N_\n\tNo such option.\n"));
	check(_metadata, &p, "options", (const char *const[]){ "--pages", pages, NULL });
	EXPECT_EQ(1, proc_exit_code(&p)) TH_LOG("stdout: %s", p.out);
	EXPECT_NE(NULL, strstr(p.err, "lmig-send.8.scd: missing options that lmig send --help lists: --then"))
		TH_LOG("stderr: %s", p.err_log);
	EXPECT_NE(NULL, strstr(p.err, "lmig-send.8.scd: options that lmig send --help does not list: --frobnicate"))
		TH_LOG("stderr: %s", p.err_log);
}

/* The completion without proxy send's --grace-ms, and with a --frobnicate for recv. */
TEST_F(drift, completion_drift_is_named)
{
	char src[4200], dst[128];
	struct proc p;

	snprintf(src, sizeof(src), "%s/completion/lmig", self->top);
	snprintf(dst, sizeof(dst), "%s/lmig", self->dir);
	ASSERT_EQ(0, mutate(src, dst, "--grace-ms ", "flags='--no-sync",
			    "        flags=\"$flags --frobnicate\"\n"));
	check(_metadata, &p, "completion", (const char *const[]){ "--completion", dst, NULL });
	EXPECT_EQ(1, proc_exit_code(&p)) TH_LOG("stdout: %s", p.out);
	EXPECT_NE(NULL, strstr(p.err, "'lmig proxy send --<TAB>': missing --grace-ms"))
		TH_LOG("stderr: %s", p.err_log);
	EXPECT_NE(NULL, strstr(p.err, "'lmig recv --<TAB>': missing none; not wanted --frobnicate"))
		TH_LOG("stderr: %s", p.err_log);
}

/* Where scdoc is missing, `make man` says so (and how to get it) and fails. */
TEST_F(drift, make_man_without_scdoc)
{
	static const char *const tools[] = { "make", "sh", "mkdir", "printf", "mv" };
	char bin[96], link[128], path[128], out[96], cmd[160];
	struct proc p;

	snprintf(bin, sizeof(bin), "%s/bin", self->dir);
	ASSERT_EQ(0, mkdir(bin, 0700));
	for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
		snprintf(cmd, sizeof(cmd), "command -v %s", tools[i]);
		FILE *f = popen(cmd, "r");
		char where[96] = "";

		ASSERT_NE(NULL, f);
		ASSERT_NE(NULL, fgets(where, sizeof(where), f));
		pclose(f);
		where[strcspn(where, "\n")] = 0;
		snprintf(link, sizeof(link), "%s/%s", bin, tools[i]);
		ASSERT_EQ(0, symlink(where, link)) TH_LOG("%s -> %s", link, where);
	}
	snprintf(path, sizeof(path), "PATH=%s", bin);
	snprintf(out, sizeof(out), "MAN_BUILD=%s/out", self->dir);
	ASSERT_EQ(0, proc_spawn(&p, (char *const[]){ "/usr/bin/env", "-i", path, "make", "-s",
						  "-C", self->top, "man", out, NULL }, NULL));
	ASSERT_EQ(0, proc_wait(&p, 60));
	proc_kill(&p);
	EXPECT_NE(0, proc_exit_code(&p));
	EXPECT_NE(NULL, strstr(p.err, "make man: scdoc is missing (apt-get install scdoc"))
		TH_LOG("stderr: %s", p.err_log);
}

TEST_HARNESS_MAIN

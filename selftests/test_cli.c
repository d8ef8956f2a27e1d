// SPDX-License-Identifier: GPL-2.0-only
/*
 * The command line of the real lmig binary: bad usage exits 2 with one
 * line on stderr that says what is wrong, before any socket or file is
 * touched; help and version exit 0.
 */
#include <string.h>

#include "kselftest_harness.h"

#include "lib/proc.h"

struct usage_case {
	const char *args[12];
	const char *says;
};

/*
 * Every command here would be a valid migration but for one mistake, so
 * the exit status 2 can only come from that mistake.  Nothing listens on
 * port 9: a command that got past its checks would fail with status 1.
 */
static const struct usage_case bad[] = {
	{ { "bogus" }, "unknown command" },
	{ { "--bogus", "send" }, "unknown option" },
	{ { "send", "--to", "127.0.0.1:9" }, "missing --mem" },
	{ { "send", "--mem", "/etc/hostname" }, "missing --to" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--channels", "0" },
	  "out of range" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--channels", "65" },
	  "out of range" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--channels", "2x" },
	  "not a number" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--compress", "zlib" },
	  "zlib" },
	/* lmig pipe carries lz4 blocks only. */
	{ { "pipe", "send", "--to", "127.0.0.1:9", "--compress", "zstd" }, "lz4 blocks only" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--bandwidth", "0" },
	  "more than 0" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--bandwidth", "12X" },
	  "suffix" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--zerocopy", "maybe" },
	  "maybe" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "--timeout", "0" },
	  "out of range" },
	{ { "send", "--mem", "/etc/hostname", "--to", "127.0.0.1:9", "stray" },
	  "unexpected argument" },
	{ { "send", "--mem", "/etc/hostname", "--to" }, "needs a value" },
	/* The short options --help lists, -p for --pid among them. */
	{ { "send", "-m", "/etc/hostname", "-t", "127.0.0.1:9", "-p", "0" },
	  "--pid: 0 is out of range" },
	{ { "qemu" }, "missing send or recv" },
	{ { "qemu", "move" }, "not send or recv" },
	{ { "qemu", "send", "--to", "127.0.0.1:9" }, "missing --qmp" },
	{ { "qemu", "send", "--qmp", "/nonexistent/q" }, "missing --to" },
	{ { "qemu", "send", "--qmp", "/nonexistent/q", "--to", "127.0.0.1:9", "--tracker",
	    "psychic" }, "not one of" },
	{ { "qemu", "send", "--qmp", "/nonexistent/q", "--to", "127.0.0.1:9", "--listen",
	    "127.0.0.1:0" }, "--listen" },
	{ { "qemu", "recv", "--qmp", "/nonexistent/q" }, "missing --listen" },
	{ { "qemu", "recv", "--qmp", "/nonexistent/q", "--listen", "127.0.0.1:0",
	    "--downtime-ms", "100" }, "source's option" },
	{ { "dirty", "--size", "1Mi", "--rate", "1M" }, "missing --mem" },
	{ { "dirty", "--mem", "/nonexistent/x", "--rate", "1M" }, "missing --size" },
	{ { "dirty", "--mem", "/nonexistent/x", "--size", "1Mi" }, "missing --rate" },
	{ { "dirty", "--mem", "/nonexistent/x", "--size", "1000", "--rate", "1M" },
	  "multiple of 4 KiB" },
	{ { "dirty", "--mem", "/nonexistent/x", "--size", "1Mi", "--rate", "1M", "--pace", "gpu" },
	  "gpu" },
	{ { "dirty", "--mem", "/nonexistent/x", "--size", "1Mi", "--rate", "1M",
	    "--pattern", "zeros" }, "zeros" },
	{ { "dirty", "--mem", "memfd:", "--size", "1Mi", "--rate", "1M" }, "needs a name" },
	{ { "dirtyrate", "--count", "2" }, "missing --mem" },
	{ { "dirtyrate", "--mem", "anon:1000-2000" }, "needs --pid" },
	{ { "dirtyrate", "--pid", "0", "--mem", "/etc/hostname" }, "--pid" },
	{ { "dirtyrate", "--pid", "1", "--mem", "anon:1000-1800" }, "page-aligned" },
	{ { "dirtyrate", "--pid", "1", "--mem", "anon:zz-1000" }, "not anon:START-END" },
	{ { "dirtyrate", "--mem", "/etc/hostname", "--tracker", "psychic" }, "not one of" },
	{ { "dirtyrate", "--mem", "/etc/hostname", "--interval", "5" }, "out of range" },
	{ { "recv", "--listen", "127.0.0.1:0" }, "missing --out" },
	{ { "recv", "--out", "/nonexistent/x" }, "missing --listen" },
	{ { "recv", "--listen", "127.0.0.1:0", "--out", "/nonexistent/x", "--size", "0" },
	  "more than 0" },
	{ { "recv", "--listen", "127.0.0.1:0", "--out", "/nonexistent/x", "--max-size", "0" },
	  "'none'" },
	{ { "recv", "--listen", "127.0.0.1:0", "--out", "/nonexistent/x", "--max-size", "1Q" },
	  "suffix" },
	{ { "recv", "--listen", "127.0.0.1:0", "--out", "/nonexistent/x", "--size", "2Mi",
	    "--max-size", "1Mi" }, "larger than --max-size" },
	{ { "recv", "--listen", "127.0.0.1:0", "--out", "/nonexistent/x", "--ready-fd", "-1" },
	  "not a number" },
	{ { "recv", "--listen", "127.0.0.1:0", "--out", "/nonexistent/x", "--frobnicate" },
	  "unknown option" },
};

static void run(struct __test_metadata *_metadata, struct proc *p, const char *const args[])
{
	const char *argv[16] = { lmig_path() };

	for (int i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	ASSERT_EQ(0, proc_spawn(p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(p, 5)) TH_LOG("lmig %s still running", args[0]);
	proc_kill(p);
}

TEST(usage_errors)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct proc p;

		run(_metadata, &p, bad[i].args);
		EXPECT_EQ(2, proc_exit_code(&p))
			TH_LOG("case %zu (%s ...): stderr: %s", i, bad[i].args[0], p.err_log);
		EXPECT_TRUE(one_line(p.err)) TH_LOG("case %zu: stderr: '%s'", i, p.err_log);
		EXPECT_NE(NULL, strstr(p.err, bad[i].says))
			TH_LOG("case %zu: stderr does not say '%s': %s", i, bad[i].says, p.err_log);
		EXPECT_EQ(0, p.out_len) TH_LOG("case %zu: stdout: %s", i, p.out);
	}
}

TEST(no_command)
{
	struct proc p;

	run(_metadata, &p, (const char *const[]){ NULL });
	EXPECT_EQ(2, proc_exit_code(&p));
	EXPECT_NE(NULL, strstr(p.err, "Usage: lmig"));
}

TEST(help)
{
	static const struct { const char *args[3], *says; } ok[] = {
		{ { "--help" }, "Usage: lmig" },
		{ { "help", "send" }, "Usage: lmig send" },
		{ { "send", "--help" }, "Usage: lmig send" },
		{ { "recv", "-h" }, "Usage: lmig recv" },
		{ { "dirty", "--help" }, "Usage: lmig dirty" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct proc p;

		run(_metadata, &p, ok[i].args);
		EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("%s %s", ok[i].args[0], ok[i].args[1]);
		EXPECT_NE(NULL, strstr(p.out, ok[i].says)) TH_LOG("stdout: %s", p.out);
		EXPECT_EQ(0, p.err_len) TH_LOG("stderr: %s", p.err_log);
	}
}

TEST(version)
{
	struct proc p;

	run(_metadata, &p, (const char *const[]){ "version", NULL });
	EXPECT_EQ(0, proc_exit_code(&p)) TH_LOG("stderr: %s", p.err_log);
	EXPECT_GT(p.out_len, 0);
}

TEST_HARNESS_MAIN

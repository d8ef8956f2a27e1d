// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig.ko on Debian's own kernels: for each series (6.1, 6.12) DKMS builds
 * the module against its headers, as on a host with lmig's DKMS source
 * installed (vm/kmod-build.sh --dkms: `dkms build -k KVER` from the
 * source as `make install` lays it out, in a private DKMS tree), then the
 * kernel boots in a VM and the module's selftests run there
 * (vm/kmod-host.sh, vm/kmod.sh, kmod/test_lmig_kmod.c, then
 * kmod/test_lmig_nolost.c in the same boot).  Every case of the VM's TAP
 * becomes one result here, named "SERIES CASE", so the suite's totals
 * count them one by one.
 *
 * The build is one result saying how the module was built (DKMS, or the
 * plain kbuild when DKMS cannot run here, with a SKIP naming why) and its
 * vermagic and version.  A series whose kernel image or headers are not
 * installed is one SKIP with the reason; a failed build, a VM that fails
 * or a program that stops early is a failure.
 *
 * Usage: test_kmod_vm [SERIES[=KO]...]: the series named (default 6.1 and
 * 6.12); with KO, that module file is tested instead of one built here
 * (for instance one the installed lmig-dkms built, Documentation/install.md).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	if (buf)
		buf[fread(buf, 1, n, f)] = 0;
	fclose(f);
	return buf;
}

/*
 * DKMS builds lmig.ko for SERIES (vm/kmod-build.sh --dkms): its path into
 * ko, or false when there is none (the result already given).
 */
static bool build_series(const char *dir, const char *series, char *ko, size_t len)
{
	char cmd[8192], out[64], err[64], *text, *how, *nl, *path;
	bool built = false;
	int status;

	snprintf(out, sizeof(out), "%s/lmig-kmod-build.%d.out", getenv("TMPDIR") ?: "/tmp", getpid());
	snprintf(err, sizeof(err), "%s/lmig-kmod-build.%d.err", getenv("TMPDIR") ?: "/tmp", getpid());
	snprintf(cmd, sizeof(cmd), "timeout -k 5 300 sh '%s/vm/kmod-build.sh' --dkms %s test_kmod_vm.dkms >%s 2>%s",
		 dir, series, out, err);
	status = system(cmd);
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	text = slurp(out);
	how = slurp(err);
	unlink(out);
	unlink(err);
	if (status == 4) {
		ksft_test_result_skip("%s: %s", series, how ? how : "cannot run here\n");
		goto out;
	}
	/* stdout: "KERNEL KVER KO"; stderr's last line: how it was built. */
	path = text ? strrchr(text, ' ') : NULL;
	if (status || !path || !how || !*how) {
		if (how)
			for (char *l = strtok_r(how, "\n", &nl); l; l = strtok_r(NULL, "\n", &nl))
				printf("# %s\n", l);
		ksft_test_result_fail("%s build lmig.ko (exit %d)\n", series, status);
		goto out;
	}
	path[strcspn(path, "\n")] = 0;
	snprintf(ko, len, "%s", path + 1);
	how[strcspn(how, "\n")] = 0;
	ksft_test_result_pass("%s lmig.ko %s\n", series, how);
	if (!strncmp(how, "built by plain", 14))
		ksft_test_result_skip("%s dkms build: DKMS cannot run here, the plain kbuild built it\n",
				      series);
	built = true;
out:
	free(text);
	free(how);
	return built;
}

/* Run the series in the VM and turn its TAP into results here. */
static void run_series(const char *dir, const char *arg)
{
	char cmd[8192], out[64], err[64], series[32], built[4096], *text, *reason, *line, *save;
	const char *ko = strchr(arg, '=');
	int status, cases = 0, bad = 0, totals = 0;

	snprintf(series, sizeof(series), "%.*s", ko ? (int)(ko - arg) : (int)strlen(arg), arg);
	/* The module DKMS builds, unless one is given. */
	if (!ko) {
		built[0] = '=';
		if (!build_series(dir, series, built + 1, sizeof(built) - 1))
			return;
		ko = built;
	}

	snprintf(out, sizeof(out), "%s/lmig-kmod.%d.out", getenv("TMPDIR") ?: "/tmp", getpid());
	snprintf(err, sizeof(err), "%s/lmig-kmod.%d.err", getenv("TMPDIR") ?: "/tmp", getpid());
	/* Its own limit goes first, so qemu never outlives the test. */
	snprintf(cmd, sizeof(cmd), "VM_TIMEOUT=360 timeout -k 5 420 sh '%s/vm/kmod-host.sh' %s %s%s%s >%s 2>%s",
		 dir, series, ko ? "'" : "", ko ? ko + 1 : "", ko ? "'" : "", out, err);
	status = system(cmd);
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	text = slurp(out);
	reason = slurp(err);
	unlink(out);
	unlink(err);
	if (status == 4) {
		ksft_test_result_skip("%s: %s", series, reason ? reason : "cannot run here\n");
		goto out;
	}
	for (line = strtok_r(text ?: "", "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *name = line;
		bool ok;

		if (!strncmp(line, "# Totals:", 9))
			totals = 1;
		if (!strncmp(line, "ok ", 3)) {
			ok = true;
			name += 3;
		} else if (!strncmp(line, "not ok ", 7)) {
			ok = false;
			name += 7;
		} else {
			printf("#   %s\n", line);
			continue;
		}
		/* "ok 12 exact.mapped", "ok - insmod", "ok 3 name # SKIP why" */
		name += strspn(name, "0123456789- ");
		cases++;
		if (strstr(name, "# SKIP"))
			ksft_test_result_skip("%s %s\n", series, name);
		else if (ok)
			ksft_test_result_pass("%s %s\n", series, name);
		else
			ksft_test_result_fail("%s %s\n", series, name), bad++;
	}
	if (reason && *reason)
		printf("# %s: %s", series, reason);
	/* A VM or program that stopped early must not read as clean. */
	if (!totals || (status && !bad))
		ksft_test_result_fail("%s run complete (exit %d, %d cases, %s)\n", series, status,
				      cases, totals ? "totals seen" : "no totals from the test program");
out:
	free(text);
	free(reason);
}

/* The module's sources pass checkpatch.pl --strict (from linux-source-6.1). */
static void checkpatch(const char *dir)
{
	char cmd[4096 * 2];
	int st;

	snprintf(cmd, sizeof(cmd), "cd '%s/..' && perl selftests/build/checkpatch/checkpatch.pl "
		 "--no-tree --strict --quiet -f kmod/*.c kmod/*.h include/uapi/linux/lmig.h",
		 dir);
	st = system(cmd);
	ksft_test_result(WIFEXITED(st) && !WEXITSTATUS(st), "checkpatch --strict kmod/ and uapi\n");
}

int main(int argc, char **argv)
{
	char dir[4096], *slash;

	/* This program is selftests/build/test_kmod_vm: the scripts are in selftests/vm. */
	snprintf(dir, sizeof(dir), "%s", argv[0]);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	strncat(dir, "/..", sizeof(dir) - strlen(dir) - 1);

	ksft_print_header();
	checkpatch(dir);
	for (int i = 1; i < argc || i == 1; i++) {
		if (argc > 1) {
			run_series(dir, argv[i]);
		} else {
			run_series(dir, "6.1");
			run_series(dir, "6.12");
		}
	}
	ksft_set_plan(ksft_test_num());
	ksft_print_cnts();
	return ksft_get_fail_cnt() ? KSFT_FAIL : KSFT_PASS;
}

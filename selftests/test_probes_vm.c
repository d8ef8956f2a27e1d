// SPDX-License-Identifier: GPL-2.0-only
/*
 * The eBPF probes on a real KVM guest.  The host's /dev/kvm cannot run
 * one, so this boots the VM of vm/run-in-vm.sh (Debian's 6.1 kernel, with
 * BTF; its CPU has svm: nested KVM with shadow paging) and runs
 * vm/probes.sh there, which watches kvm/kvm_vmm with `lmig stat --json`:
 *
 *   pages  the guest writes 512 pages of its RAM once: at least 512 guest
 *          page faults are counted (shadow paging: each first touch of a
 *          page exits to KVM), and the exits at least as many;
 *   rate   the guest writes pages at 2048/s for 2 s and reports progress
 *          with a port write per batch: the port-I/O exits counted by
 *          reason equal the VMM's own count, and all exits at least that.
 *
 * Before kvm_amd is loaded, `lmig stat` works without the KVM probes and
 * says so in its note.  `lmig stat` run inside a new pid namespace (with
 * its own /proc) counts a process there writing 4096 fresh pages by the
 * pid it has there: 4096 to 1.1 x 4096 write faults.
 *
 * SKIP, with the reason, when there is no VM here, /dev/kvm cannot appear
 * in it, or the guest kernel has no BTF.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/vm.h"

/*
 * Sums over the "CASE stat JSON" lines: guest faults, exits, exits of one
 * reason, write faults; lines whose "pid" is not pid (if pid is not 0).
 */
struct sums {
	uint64_t faults, exits, reason_exits, write_faults;
	int lines, other_pid;
};

static void sum_stat(const char *out, const char *c, unsigned int reason, uint64_t pid,
		     struct sums *s)
{
	char tag[32], want[48];
	size_t n;

	memset(s, 0, sizeof(*s));
	n = snprintf(tag, sizeof(tag), "%s stat {", c) - 1;
	snprintf(want, sizeof(want), "{\"reason\":%u,\"count\":", reason);
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *e = strchr(l, '\n'), *r;
		char line[4096];
		uint64_t v;

		if (strncmp(l, tag, n))
			continue;
		snprintf(line, sizeof(line), "%.*s", (int)(e ? e - l - n : (long)strlen(l + n)), l + n);
		if (!json_u64_field(line, "guest_faults", &v))
			s->faults += v;
		if (!json_u64_field(line, "guest_exits", &v))
			s->exits += v;
		if (!json_u64_field(line, "write_faults", &v))
			s->write_faults += v;
		if (pid && (json_u64_field(line, "pid", &v) || v != pid))
			s->other_pid++;
		r = strstr(line, want);
		if (r)
			s->reason_exits += strtoull(r + strlen(want), NULL, 10);
		s->lines++;
	}
}

FIXTURE(probes) {
	int unused;
};

FIXTURE_SETUP(probes)
{
}

FIXTURE_TEARDOWN(probes)
{
}

TEST_F_TIMEOUT(probes, kvm_guest, 300)
{
	char buf[1024], *out = NULL;
	struct proc p = { 0 };
	const char *line;
	struct sums s;
	uint64_t pages, io, pid;

	ASSERT_EQ(0, vm_run(&p, "probes.sh", false, 240, 280, &out))
		TH_LOG("run-in-vm.sh still running");
	ASSERT_NE(NULL, out);
	if (proc_exit_code(&p) == 4)
		SKIP(goto done, "no VM here: %.900s", p.err_log);
	TH_LOG("%s", p.err_log);
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("stdout: %s", out);
	if (vm_result(out, "btf", buf, sizeof(buf)) && !strcmp(buf, "no"))
		SKIP(goto done, "the guest kernel has no /sys/kernel/btf/vmlinux");
	/* lmig and a writer in a pid namespace of their own. */
	EXPECT_EQ(NULL, vm_result(out, "pidns error", buf, sizeof(buf))) TH_LOG("%s", buf);
	if (vm_result(out, "pidns stderr", buf, sizeof(buf)))
		TH_LOG("pid namespace: lmig stat said: %s", buf);
	ASSERT_NE(NULL, line = vm_result(out, "pidns pid", buf, sizeof(buf))) TH_LOG("%s", out);
	pid = strtoull(line, NULL, 10);
	sum_stat(out, "pidns", 0, pid, &s);
	TH_LOG("pid namespace: lmig stat counted %lu write faults of its pid %lu (4096 pages "
	       "written) in %d intervals", s.write_faults, pid, s.lines);
	ASSERT_GT(s.lines, 0);
	EXPECT_EQ(0, s.other_pid);
	EXPECT_GE(s.write_faults, 4096);
	EXPECT_LE(s.write_faults, 4096 * 11 / 10);
	/* No KVM yet: the rest works, and the note says what is missing. */
	if ((line = vm_result(out, "nokvm stat", buf, sizeof(buf)))) {
		const char *note = strstr(line, "\"note\":");

		TH_LOG("without kvm: %s", note ? note : line);
		EXPECT_NE(NULL, strstr(line, "\"kvm\":false")) TH_LOG("%s", line);
		EXPECT_NE(NULL, strstr(line, "no KVM tracepoints")) TH_LOG("%s", line);
		EXPECT_NE(NULL, strstr(line, "\"threads\":[{\"tid\":")) TH_LOG("%s", line);
	} else {
		TH_LOG("kvm was loaded already: no check without it");
	}
	if ((line = vm_result(out, "kvm skip", buf, sizeof(buf))))
		SKIP(goto done, "no /dev/kvm in the VM: %s", line);
	ASSERT_NE(NULL, vm_result(out, "kvm", buf, sizeof(buf))) TH_LOG("output:\n%s", out);
	ASSERT_STREQ("ok", buf) TH_LOG("output:\n%s", out);
	EXPECT_EQ(NULL, vm_result(out, "pages error", buf, sizeof(buf))) TH_LOG("%s", buf);
	EXPECT_EQ(NULL, vm_result(out, "rate error", buf, sizeof(buf))) TH_LOG("%s", buf);

	/* 512 pages written once: a guest page fault each, at least. */
	ASSERT_NE(NULL, line = vm_result(out, "pages halted", buf, sizeof(buf))) TH_LOG("%s", out);
	ASSERT_EQ(1, sscanf(line, "pages_written=%lu", &pages)) TH_LOG("%s", line);
	sum_stat(out, "pages", 0, 0, &s);
	TH_LOG("pages: guest wrote %lu pages; lmig stat counted %lu guest faults, %lu exits "
	       "in %d intervals", pages, s.faults, s.exits, s.lines);
	ASSERT_GT(s.lines, 0);
	EXPECT_GE(s.faults, pages);
	EXPECT_LE(s.faults, pages * 11 / 10 + 20);
	EXPECT_GE(s.exits, s.faults);

	/* Port writes: SVM exit code 0x7b (io). */
	ASSERT_NE(NULL, line = vm_result(out, "rate halted", buf, sizeof(buf))) TH_LOG("%s", out);
	ASSERT_EQ(2, sscanf(line, "pages_written=%lu io_exits=%lu", &pages, &io)) TH_LOG("%s", line);
	sum_stat(out, "rate", 0x7b, 0, &s);
	TH_LOG("rate: guest wrote %lu pages with %lu port writes; lmig stat counted %lu io "
	       "exits, %lu exits, %lu guest faults", pages, io, s.reason_exits, s.exits, s.faults);
	EXPECT_GT(io, 0);
	EXPECT_EQ(io, s.reason_exits);
	EXPECT_GE(s.exits, io);
done:
	free(out);
	proc_kill(&p);
}

TEST_HARNESS_MAIN

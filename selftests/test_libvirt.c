// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig under libvirt: Documentation/qemu.md's libvirt recipe, run.
 *
 * libvirt/virtmig.py starts two libvirtd, each in its own network, mount
 * and UTS namespaces (its own hostname, host_uuid, configuration, run,
 * state, log and cache directories; a veth pair with 198.18.27.1 and .2
 * between them), boots a TCG domain running the QEMU test guest
 * (qemu/guest.c: "lmig-guest tick N" on its serial console, a file) on
 * the source, puts lmig proxy send (source) and lmig proxy recv
 * (destination) on the unix socket of --migrateuri, and runs
 *
 *   virsh migrate --live DOMAIN DST --migrateuri unix://MIG/migrate.sock
 *   ... the same with --parallel --parallel-connections 2
 *
 * then tears everything down and reports what was left behind.
 *
 * libvirt 9.0 turns on QEMU's return-path capability for every migration
 * that is not --tunnelled (which takes no --migrateuri), so the migration
 * needs an lmig proxy that carries the return path ('lmig proxy --help'
 * says so).  With one, a case must have virsh succeed, the domain run on
 * the destination only, its ticks go on there above the source's last,
 * lmig's own QMP socket beside libvirt's monitor answer on both sides,
 * and both proxies exit 0.  With a proxy carrying one way only, the case
 * checks the failure instead: virsh fails, the domain stays on the source
 * and keeps running there, and the destination has none.  Either way
 * nothing may be left behind (domains, cgroups, network namespaces,
 * processes, the temporary directory).  SKIP only when libvirt, QEMU,
 * root or the guest cannot be had here.  About 40-60 s a case on 2 CPUs,
 * most of it libvirtd probing QEMU and the guest's boot.
 *
 * qemu_ram runs Documentation/qemu-ram.md's "QMP beside libvirt" with
 * libvirt/virtram.py: the same two hosts, a domain whose RAM is a shared
 * memfd and which has lmig's extra QMP socket (<qemu:commandline>) on the
 * source, the same domain started by libvirt with -incoming defer and
 * `virsh create --paused` on the destination, and
 *
 *   lmig qemu recv --qmp MIG/lmig.qmp --listen 198.18.27.2:0   (destination)
 *   lmig qemu send --qmp MIG/lmig.qmp --to 198.18.27.2:PORT    (source)
 *
 * Both lmig sides must exit 0 with QEMU completed; with both guests
 * stopped (the source in postmigrate, the destination paused) the
 * source's memfd and the destination's must hash alike; after `virsh
 * resume` the destination's counter goes on from the source's; libvirt
 * must say what happened (states and lifecycle events on both daemons),
 * `virsh define` of the plain XML must make the destination persistent
 * without -incoming for its next boot, and `virsh destroy` must remove
 * the source.  The guest is mkguest.sh --smp's (no operating system, it
 * boots in a second): 14-23 s on 2 CPUs, 8 of them the first
 * libvirtd probing QEMU.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/jfield.h"
#include "lib/proc.h"

#define CASE_TIMEOUT	240
#define DRIVER_TIMEOUT	200

FIXTURE(libvirt) {
	char line[PROC_OUT_MAX];
	const char *res;
	int skip;
};

FIXTURE_SETUP(libvirt)
{
	self->res = NULL;
	self->skip = 0;
}

FIXTURE_TEARDOWN(libvirt)
{
}

/* Does this lmig's proxy carry QEMU's return path?  Its --help says so. */
static bool proxy_both_ways(struct __test_metadata *_metadata)
{
	char *argv[] = { (char *)lmig_path(), "proxy", "--help", NULL };
	struct proc p = { 0 };

	if (proc_spawn(&p, argv, NULL) || proc_wait(&p, 20)) {
		proc_kill(&p);
		return false;
	}
	return strstr(p.out, "return path") != NULL;
}

static void run_driver(struct __test_metadata *_metadata, FIXTURE_DATA(libvirt) *self,
		       const char *script, const char *const extra[])
{
	char driver[PATH_MAX], lmig[PATH_MAX];
	const char *bin = lmig_path(), *slash = strrchr(bin, '/');
	const char *argv[16];
	struct proc p = { 0 };
	int n = 0;

	ASSERT_NE(NULL, slash);
	snprintf(driver, sizeof(driver), "%.*s/../selftests/libvirt/%s",
		 (int)(slash - bin), bin, script);
	snprintf(lmig, sizeof(lmig), "%s", bin);
	argv[n++] = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	argv[n++] = driver;
	argv[n++] = "--lmig";
	argv[n++] = lmig;
	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	ASSERT_EQ(0, proc_spawn(&p, (char *const *)argv, NULL));
	ASSERT_EQ(0, proc_wait(&p, DRIVER_TIMEOUT)) {
		proc_kill(&p);
		TH_LOG("%s still running", script);
	}
	if (proc_exit_code(&p) == 4) {
		self->skip = 1;
		SKIP(return, "cannot run libvirt here: %.900s", p.err_log);
	}
	self->res = json_last_line(p.out, self->line, sizeof(self->line));
	ASSERT_NE(NULL, self->res) TH_LOG("no result from %s: %s %s", script, p.out, p.err_log);
	TH_LOG("%s", self->res);
	ASSERT_EQ(0, proc_exit_code(&p)) TH_LOG("%s: %s", script, p.err_log);
}

static void run_case(struct __test_metadata *_metadata, FIXTURE_DATA(libvirt) *self,
		     const char *const extra[])
{
	run_driver(_metadata, self, "virtmig.py", extra);
}

static void check(struct __test_metadata *_metadata, const char *res, int connections)
{
	char buf[512], other[256];

	ASSERT_EQ(NULL, strstr(res, "\"harness_error\":")) TH_LOG("harness error");
	/* Two hosts as libvirt sees them: their own names and UUIDs. */
	ASSERT_STRNE(json_str_or(res, "src_hostname", buf, sizeof(buf)),
		     json_str_or(res, "dst_hostname", other, sizeof(other)));
	ASSERT_EQ(1, json_num(res, "src_host_uuid_ok"));
	ASSERT_EQ(1, json_num(res, "dst_host_uuid_ok"));
	ASSERT_STREQ("running", json_str_or(res, "src_qmp_status", buf, sizeof(buf)));
	ASSERT_LT(0, json_num(res, "src_tick_at_migrate"));

	if (proxy_both_ways(_metadata)) {
		ASSERT_EQ(0, json_num(res, "migrate_exit"))
			TH_LOG("virsh migrate: %s", json_str_or(res, "migrate_err", buf, sizeof(buf)));
		ASSERT_STREQ("running", json_str_or(res, "dst_domstate", buf, sizeof(buf)));
		ASSERT_EQ(0, json_num(res, "src_domains"));
		/* The same guest goes on: above the source's last tick, and counting. */
		ASSERT_LT(json_num(res, "src_last_tick"), json_num(res, "dst_first_tick"));
		ASSERT_LE(json_num(res, "dst_first_tick") + 5, json_num(res, "dst_last_tick"));
		/* lmig's monitor came along beside libvirt's. */
		ASSERT_STREQ("running", json_str_or(res, "dst_qmp_status", buf, sizeof(buf)));
		/* Every connection QEMU made (multifd's too) went through lmig. */
		ASSERT_EQ(connections, json_num(res, "proxy_streams"));
		EXPECT_EQ(0, json_num(res, "proxy_send_exit"));
		EXPECT_EQ(0, json_num(res, "proxy_recv_exit"));
		TH_LOG("virsh migrate took %.2f s; libvirt: %lld ms, downtime %lld ms, %s of memory",
		       json_dbl(res, "migrate_s"), (long long)json_num(res, "total_time_ms"),
		       (long long)json_num(res, "downtime_ms"),
		       json_str_or(res, "memory_processed", buf, sizeof(buf)));
	} else {
		TH_LOG("this lmig proxy carries one way: libvirt's return path cannot pass");
		ASSERT_NE(0, json_num(res, "migrate_exit"));
		ASSERT_NE(NULL, strstr(json_str_or(res, "migrate_err", buf, sizeof(buf)),
				       "error: operation failed"));
		ASSERT_STREQ("running", json_str_or(res, "src_domstate_after", buf, sizeof(buf)));
		ASSERT_LT(json_num(res, "src_tick_after_failure"), json_num(res, "src_tick_later"));
		ASSERT_EQ(0, json_num(res, "dst_domains"));
	}
	/* libvirt removed its cgroups; nothing else of the run remains. */
	ASSERT_STREQ("", json_str_or(res, "cgroups_left", buf, sizeof(buf)));
	ASSERT_STREQ("", json_str_or(res, "leftovers", buf, sizeof(buf)));
}

TEST_F_TIMEOUT(libvirt, migrate, CASE_TIMEOUT)
{
	run_case(_metadata, self, NULL);
	if (self->skip)
		return;
	check(_metadata, self->res, 1);
}

TEST_F_TIMEOUT(libvirt, parallel, CASE_TIMEOUT)
{
	run_case(_metadata, self, (const char *const[]){ "--parallel", "2", NULL });
	if (self->skip)
		return;
	/* The main connection and one per multifd channel. */
	check(_metadata, self->res, 3);
}

/* "paused (user)": the state libvirt shows, before its reason. */
static bool state_is(const char *res, const char *key, const char *state)
{
	char buf[128];
	size_t n = strlen(state);

	json_str_or(res, key, buf, sizeof(buf));
	return !strncmp(buf, state, n) && (buf[n] == 0 || buf[n] == ' ');
}

static void check_ram(struct __test_metadata *_metadata, const char *res)
{
	char buf[512];

	ASSERT_EQ(NULL, strstr(res, "\"harness_error\":")) TH_LOG("harness error");
	/* libvirt made the guest's RAM a shared memfd; its QEMU waits on the destination. */
	ASSERT_EQ(1, json_num(res, "src_memfd_backend"));
	ASSERT_TRUE(state_is(res, "src_domstate_before", "running"));
	EXPECT_EQ(1, json_num(res, "src_qemu_all_cpus"));
	ASSERT_STREQ("inmigrate", json_str_or(res, "dst_qmp_status_before", buf, sizeof(buf)));
	ASSERT_TRUE(state_is(res, "dst_domstate_before", "paused"));
	ASSERT_LT(0, json_num(res, "src_tick_at_migrate"));

	/* lmig moved the RAM, QEMU the devices. */
	ASSERT_EQ(0, json_num(res, "send_exit"))
		TH_LOG("lmig qemu send: %s", json_str_or(res, "send_err", buf, sizeof(buf)));
	ASSERT_EQ(0, json_num(res, "recv_exit"))
		TH_LOG("lmig qemu recv: %s", json_str_or(res, "recv_err", buf, sizeof(buf)));
	EXPECT_STREQ("completed", json_str_or(res, "send_qemu_status", buf, sizeof(buf)));
	EXPECT_STREQ("completed", json_str_or(res, "recv_qemu_status", buf, sizeof(buf)));
	EXPECT_STREQ("migrated", json_str_or(res, "send_source", buf, sizeof(buf)));
	/* libvirt's one backend for a guest without NUMA nodes, memfd on both sides. */
	ASSERT_STREQ("pc.ram:memfd:67108864", json_str_or(res, "blocks", buf, sizeof(buf)));
	ASSERT_STREQ("pc.ram:memfd", json_str_or(res, "dst_blocks", buf, sizeof(buf)));
	EXPECT_LT(0, json_num(res, "device_bytes"));
	EXPECT_GT(16 << 20, json_num(res, "device_bytes"));

	/* Both stopped, and the same RAM. */
	ASSERT_STREQ("postmigrate", json_str_or(res, "src_qmp_status_after", buf, sizeof(buf)));
	ASSERT_TRUE(state_is(res, "src_domstate_after", "paused"));
	ASSERT_STREQ("paused", json_str_or(res, "dst_qmp_status_after", buf, sizeof(buf)));
	ASSERT_TRUE(state_is(res, "dst_domstate_after", "paused"));
	ASSERT_STREQ("paused", json_str_or(res, "dst_qmp_status_after_hash", buf, sizeof(buf)));
	ASSERT_EQ(1, json_num(res, "hash_equal"));
	ASSERT_EQ(1, json_num(res, "hashed_qemus_ram"));

	/* virsh resume: the same guest goes on from the source's last tick. */
	ASSERT_EQ(0, json_num(res, "dst_resume_exit"))
		TH_LOG("virsh resume: %s", json_str_or(res, "dst_resume_err", buf, sizeof(buf)));
	ASSERT_LE(json_num(res, "src_last_tick"), json_num(res, "dst_first_tick"));
	ASSERT_LT(json_num(res, "dst_first_tick"), json_num(res, "dst_tick"));
	ASSERT_TRUE(state_is(res, "dst_domstate_running", "running"));
	ASSERT_STREQ("running", json_str_or(res, "dst_qmp_status_running", buf, sizeof(buf)));
	/* What libvirt told of it: the source stopped, the destination resumed. */
	json_str_or(res, "src_events", buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "Suspended Paused")) TH_LOG("source events: %s", buf);
	EXPECT_NE(NULL, strstr(buf, "Stopped Destroyed")) TH_LOG("source events: %s", buf);
	json_str_or(res, "dst_events", buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "Resumed Unpaused")) TH_LOG("destination events: %s", buf);

	/* The operator's steps after: define the plain XML, destroy the source. */
	ASSERT_EQ(0, json_num(res, "dst_define_exit"));
	ASSERT_EQ(1, json_num(res, "dst_persistent"));
	EXPECT_EQ(1, json_num(res, "dst_live_incoming"));
	ASSERT_EQ(0, json_num(res, "dst_next_incoming"));
	ASSERT_EQ(0, json_num(res, "src_destroy_exit"));
	ASSERT_EQ(0, json_num(res, "src_domains_after_destroy"));
	ASSERT_TRUE(state_is(res, "dst_domstate_end", "running"));

	ASSERT_STREQ("", json_str_or(res, "cgroups_left", buf, sizeof(buf)));
	ASSERT_STREQ("", json_str_or(res, "leftovers", buf, sizeof(buf)));
	TH_LOG("lmig qemu send took %lld ms, QEMU's downtime %lld ms, %lld bytes on the wire,"
	       " QEMU's stream %lld bytes; the whole case %.1f s",
	       (long long)json_num(res, "total_ms"), (long long)json_num(res, "qemu_downtime_ms"),
	       (long long)json_num(res, "bytes_wire"), (long long)json_num(res, "device_bytes"),
	       json_dbl(res, "secs"));
}

TEST_F_TIMEOUT(libvirt, qemu_ram, CASE_TIMEOUT)
{
	run_driver(_metadata, self, "virtram.py", NULL);
	if (self->skip)
		return;
	check_ram(_metadata, self->res);
}

TEST_HARNESS_MAIN

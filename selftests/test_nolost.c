// SPDX-License-Identifier: GPL-2.0-only
/*
 * No lost write through short-lived, new, zapped or moved mappings.
 *
 * A writer process maps a memfd and, depending on the case, writes
 * through mappings it changes while a tracker (uffd here, soft-dirty in
 * the VM: vm/softdirty.sh runs `test_nolost --run soft-dirty CASE`)
 * harvests it, the way the live engine does: a full copy once the tracker
 * started, then harvest and copy the reported pages, again and again; at
 * the end the writer is stopped and one more harvest is copied.  The copy
 * (a shadow image) must then equal the memfd byte for byte.
 *
 *   shortlived  mmap 32 pages, write them, munmap, sleep 5 ms, in a loop
 *   newmap      after tracking started, a second mapping of the whole
 *               object, written through for the rest of the run
 *   dontneed    write pages, then MADV_DONTNEED them (the entries go,
 *               the shmem pages stay with their new content)
 *   mremap      a window mapped, written, moved by mremap, written, and
 *               replaced by mmap MAP_FIXED; now and then the writer's main
 *               mapping moves
 *   fork        a child of the writer writes through the mapping it
 *               inherited (its own page tables), and exits
 *   uring       write pages, then MADV_DONTNEED them through io_uring
 *               (IORING_OP_MADVISE: no madvise system call)
 *   pageout     write pages, then process_madvise(MADV_PAGEOUT) on them
 *               (reclaim unmaps them; without swap the shmem pages stay)
 *   vfork       a child sharing the writer's address space (clone
 *               CLONE_VM | CLONE_VFORK: another pid) maps, writes and
 *               unmaps a window; the writer itself makes no such call
 *
 * Host tests: each case with uffd; newmap with the second mapping made
 * inside tracker_open(), after the tracker read the writer's mappings
 * (tracker_start_hook); a mapping call of ours under way while the watch
 * attaches, counted when it ends; the refusal of uffd when the mapping
 * watch cannot load (a child without CAP_BPF, CAP_PERFMON and
 * CAP_SYS_ADMIN runs lmig dirtyrate) and --tracker auto then picking
 * scan; and live `lmig send --tracker uffd --object-writes mapped` of the
 * shortlived, newmap, mremap, fork and dontneed writers over loopback,
 * byte-identical with the paused source.  With uffd the writer starts
 * its case only once the tracker protected its memory, so that what the
 * case does comes after tracking started whatever the machine's load.
 * `test_nolost --live CASE` runs one such send, to repeat it in a loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "chan/codec.h"
#include "lib/err.h"
#include "live/mapwatch.h"
#include "live/track.h"
#include "lib/uapi_compat.h"
#include "lib/jfield.h"
#include "lib/nolost.h"
#include "lib/nolost_writer.h"
#include "lib/proc.h"
#include "lib/uffd.h"

#define PAGE		NW_PAGE
#define RUN_PAGES	2048		/* 8 MiB */
#define RUN_SECONDS	2.5

static int read_pages(int fd, uint64_t first, uint64_t n, uint8_t *buf)
{
	return pread(fd, buf, n * PAGE, first * PAGE) == (ssize_t)(n * PAGE) ? 0 : -1;
}

struct nl_run {
	struct writer w;
	struct tracker t;
	uint64_t *sent;		/* the hash of each page as last copied */
};

static int nl_harvest(void *ctx, uint64_t *bitmap)
{
	return tracker_harvest(&((struct nl_run *)ctx)->t, bitmap);
}

static int nl_read(void *ctx, uint64_t page, uint64_t n, uint8_t *buf)
{
	return read_pages(((struct nl_run *)ctx)->w.fd, page, n, buf);
}

static void nl_pause(void *ctx)
{
	writer_pause(&((struct nl_run *)ctx)->w);
}

static void nl_copied(void *ctx, uint64_t page, const uint8_t *data)
{
	((struct nl_run *)ctx)->sent[page] = codec_page_hash(data);
}

static struct writer *hook_writer;

/*
 * tracker_start_hook: the writer starts inside tracker_open(), once the
 * tracker armed, and is waited for until it wrote (newmap: through its
 * new mapping, so that mapping exists).
 */
static void go_at_start(struct tracker *t)
{
	uint64_t before = *wcount;

	if (write(hook_writer->go, "g", 1) != 1)
		return;
	for (int i = 0; i < 10000 && *wcount < before + 16; i++)
		usleep(1000);
}

/*
 * The migration against the writer; prints one line, returns 0 when
 * nothing was lost.  at_start: the writer starts inside tracker_open()
 * (go_at_start), else once the first full copy is taken.
 */
static int nolost(const char *tracker, const char *cname, bool at_start)
{
	int wc = wcase_of(cname);
	uint64_t npages = RUN_PAGES, size = npages * PAGE;
	uint8_t *dst = malloc(size), *src = malloc(size);
	struct nl_run n = { .w = { .go = -1 }, .sent = calloc(npages, 8) };
	struct nl_rounds r = { .npages = npages, .seconds = RUN_SECONDS, .harvest = nl_harvest,
			       .read = nl_read, .pause = nl_pause, .copied = nl_copied, .ctx = &n };
	struct track_target tg;
	char why[512];

	if (wc < 0)
		return printf("no case %s\n", cname), 2;
	if (!n.sent || !dst || !src)
		return printf("out of memory\n"), 1;
	if (writer_start(&n.w, wc, npages, !strcmp(tracker, "uffd")))
		return printf("writer: %s\n", strerror(errno)), 1;
	tg = (struct track_target){ .fd = n.w.fd, .pid = n.w.pid, .size = size,
				    .mapped_writes_only = true, .sent = n.sent };
	hook_writer = &n.w;
	tracker_start_hook = at_start ? go_at_start : NULL;
	if (tracker_open(&n.t, tracker, &tg, why, sizeof(why))) {
		printf("tracker: %s\n", lmig_errmsg());
		writer_stop(&n.w);
		return 1;
	}
	tracker_start_hook = NULL;
	/* The first full copy comes after the start: what changes later is harvested. */
	if (read_pages(n.w.fd, 0, npages, dst))
		return printf("read: %s\n", strerror(errno)), 1;
	for (uint64_t p = 0; p < npages; p++)
		n.sent[p] = codec_page_hash(dst + p * PAGE);
	if (!at_start && write(n.w.go, "g", 1) != 1)
		return printf("go: %s\n", strerror(errno)), 1;
	if (nl_rounds_run(&r, dst, src)) {
		writer_stop(&n.w);
		return 1;
	}
	printf("%s case=%s tracker=%s writes=%llu harvests=%u map_rescans=%u copied=%llu "
	       "differ=%llu harvest_ms=%.3f\n", r.differ ? "LOST" : "ok", cname, n.t.ops->name,
	       (unsigned long long)*wcount, n.t.harvests, n.t.map_rescans,
	       (unsigned long long)r.copied_pages, (unsigned long long)r.differ,
	       n.t.harvests ? 1000 * n.t.harvest_s / n.t.harvests : 0);
	tracker_close(&n.t);
	writer_stop(&n.w);
	free(n.sent);
	free(dst);
	free(src);
	return r.differ ? 1 : 0;
}

static void run_case(struct __test_metadata *_metadata, const char *cname, bool at_start)
{
	char line[512] = "";
	int p[2], st;
	pid_t pid;
	ssize_t n;

	if (!have_wp_async())
		SKIP(return, "no async write-protection (UFFD_FEATURE_WP_ASYNC) here");
	/* In a child: its stdout is the result line. */
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int rc;

		dup2(p[1], 1);
		rc = nolost("uffd", cname, at_start);
		fflush(stdout);
		_exit(rc);
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	line[n > 0 ? n : 0] = 0;
	TH_LOG("%s", line);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) TH_LOG("%s", line);
	ASSERT_EQ(0, strncmp(line, "ok ", 3));
	/* The watch saw the changes: the harvests that compared all pages. */
	ASSERT_EQ(0, !strstr(line, "map_rescans=0 ") ? 0 : 1) TH_LOG("no rescan: %s", line);
}

TEST(uffd_shortlived) { run_case(_metadata, "shortlived", false); }
TEST(uffd_newmap) { run_case(_metadata, "newmap", false); }
TEST(uffd_dontneed) { run_case(_metadata, "dontneed", false); }
TEST(uffd_mremap) { run_case(_metadata, "mremap", false); }
TEST(uffd_fork) { run_case(_metadata, "fork", false); }
TEST(uffd_uring) { run_case(_metadata, "uring", false); }
TEST(uffd_pageout) { run_case(_metadata, "pageout", false); }
TEST(uffd_vfork) { run_case(_metadata, "vfork", false); }

/*
 * The second mapping made while tracking starts: after the tracker read
 * the writer's mappings, before tracker_open() returns.  The watch's
 * baseline must not include it, or no harvest registers it.
 */
TEST(uffd_newmap_at_start) { run_case(_metadata, "newmap", true); }

struct blocked {
	void *page;		/* registered for missing-page faults */
	volatile int state;	/* 1 madvise returned; 2 may exit */
};

/* MADV_POPULATE_WRITE of a page whose fault waits for our userfaultfd. */
static void *populate(void *arg)
{
	struct blocked *b = arg;

	madvise(b->page, PAGE, MADV_POPULATE_WRITE);
	b->state = 1;
	/* No counted call (a thread's exit can madvise its stack) until sampled. */
	while (b->state != 2)
		usleep(1000);
	return NULL;
}

/*
 * A mapping call under way when the watch attaches is counted when it
 * ends: a madvise of ours waits on a missing-page fault while the watch
 * loads, and ends once the fault is resolved.  Its change could land
 * after the tracker read the mappings, so its end must move the counters.
 */
TEST(watch_counts_call_under_way)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct blocked b = { 0 };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_zeropage zp = { .mode = 0 };
	struct mapwatch_sample s0, s1;
	struct mapwatch_state st = { 0 };
	struct uffd_msg msg;
	struct mapwatch *mw;
	pthread_t th;
	int uffd;

	if (mapwatch_open(&mw, getpid()))
		SKIP(return, "no mapping watch here: %s", lmig_errmsg());
	mapwatch_close(mw);
	b.page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, b.page);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	ASSERT_GE(uffd, 0);
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	reg.range = (struct uffdio_range){ (uintptr_t)b.page, PAGE };
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, pthread_create(&th, NULL, populate, &b));
	/* The fault's message: the madvise has started and waits. */
	ASSERT_EQ(sizeof(msg), read(uffd, &msg, sizeof(msg)));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	ASSERT_EQ(0, mapwatch_open(&mw, getpid())) TH_LOG("%s", lmig_errmsg());
	mapwatch_read(mw, &s0);
	mapwatch_policy(&st, &s0, NULL);
	zp.range = (struct uffdio_range){ (uintptr_t)b.page, PAGE };
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zp));
	while (!b.state)
		usleep(1000);
	mapwatch_read(mw, &s1);
	b.state = 2;
	pthread_join(th, NULL);
	TH_LOG("counted calls started %llu, ended %llu before; %llu, %llu after",
	       (unsigned long long)s0.enters, (unsigned long long)s0.exits,
	       (unsigned long long)s1.enters, (unsigned long long)s1.exits);
	EXPECT_EQ(MAPWATCH_RESCAN, mapwatch_policy(&st, &s1, NULL));
	EXPECT_EQ(s1.enters, s1.exits);
	mapwatch_close(mw);
	close(uffd);
	munmap(b.page, PAGE);
}

/* Drop cap from every set of this process (and its children). */
static int drop_caps(const int *caps, int n)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	for (int i = 0; i < n; i++) {
		if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0))
			return -1;
		d[caps[i] / 32].effective &= ~(1U << caps[i] % 32);
		d[caps[i] / 32].permitted &= ~(1U << caps[i] % 32);
		d[caps[i] / 32].inheritable &= ~(1U << caps[i] % 32);
	}
	return syscall(SYS_capset, &h, d);
}

#ifndef CAP_PERFMON
#define CAP_PERFMON	38
#endif
#ifndef CAP_BPF
#define CAP_BPF		39
#endif

/*
 * Without the right to load eBPF, uffd refuses a shared object, naming
 * the cause, and --tracker auto picks scan.  The writer and the kernel
 * are the real ones; only lmig's capabilities are less.
 */
TEST(refused_without_bpf)
{
	static const int caps[] = { CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON };
	struct writer w = { .go = -1 };
	char mem[64], pid[16], tr[32];
	struct proc a = { 0 };
	pid_t c;
	int st;

	if (!have_wp_async())
		SKIP(return, "no async write-protection (UFFD_FEATURE_WP_ASYNC) here");
	if (getuid())
		SKIP(return, "runs as root, to show root without CAP_BPF refused");
	ASSERT_EQ(0, writer_start(&w, W_SHORTLIVED, RUN_PAGES, true));
	ASSERT_EQ(1, write(w.go, "g", 1));
	snprintf(mem, sizeof(mem), "/proc/%d/fd/%d", (int)w.pid, w.fd);
	snprintf(pid, sizeof(pid), "%d", (int)w.pid);
	/* With every capability, uffd watches it. */
	ASSERT_EQ(0, proc_spawn(&a, (char *const[]){ (char *)lmig_path(), "dirtyrate", "--json",
			"--pid", pid, "--mem", mem, "--tracker", "uffd", "--object-writes", "mapped",
			"--interval", "200", "--count", "1", NULL }, NULL));
	ASSERT_EQ(0, proc_wait(&a, 20));
	EXPECT_EQ(0, proc_exit_code(&a)) TH_LOG("%s", a.err_log);
	proc_kill(&a);
	c = fork();
	ASSERT_GE(c, 0);
	if (c == 0) {
		struct proc u = { 0 }, au = { 0 };
		int bad = 0;

		if (drop_caps(caps, 3))
			_exit(99);
		/* Our own bpf() is refused now: the real condition, not a knob. */
		if (proc_spawn(&u, (char *const[]){ (char *)lmig_path(), "dirtyrate", "--json",
				"--pid", pid, "--mem", mem, "--tracker", "uffd", "--object-writes",
				"mapped", "--interval", "200", "--count", "1", NULL }, NULL) ||
		    proc_wait(&u, 20))
			_exit(98);
		if (proc_exit_code(&u) != 1 || !one_line(u.err) ||
		    !strstr(u.err, "needs eBPF to see the writer's mapping changes")) {
			fprintf(stderr, "uffd without CAP_BPF: rc %d: %s", proc_exit_code(&u),
				u.err_log);
			bad |= 1;
		}
		if (proc_spawn(&au, (char *const[]){ (char *)lmig_path(), "dirtyrate", "--json",
				"--pid", pid, "--mem", mem, "--object-writes", "mapped",
				"--interval", "200", "--count", "1", NULL }, NULL) ||
		    proc_wait(&au, 20))
			_exit(97);
		if (proc_exit_code(&au) || json_str_field(au.out, "tracker", tr, sizeof(tr)) ||
		    strcmp(tr, "scan") || !strstr(au.out, "uffd: needs eBPF")) {
			fprintf(stderr, "auto without CAP_BPF: rc %d: %s %s", proc_exit_code(&au),
				au.out, au.err_log);
			bad |= 2;
		}
		_exit(bad);
	}
	ASSERT_EQ(c, waitpid(c, &st, 0));
	writer_stop(&w);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
}

/*
 * lmig send --tracker uffd --object-writes mapped of a writer over
 * loopback: the image equals the paused source.  The writer starts
 * writing its case's way once the send is under way (newmap: its new
 * mapping comes after uffd registered the first).
 */
FIXTURE(live) {
	struct writer w;
};

FIXTURE_VARIANT(live) {
	enum wcase wc;
};

FIXTURE_VARIANT_ADD(live, shortlived) { .wc = W_SHORTLIVED };
FIXTURE_VARIANT_ADD(live, newmap) { .wc = W_NEWMAP };
FIXTURE_VARIANT_ADD(live, mremap) { .wc = W_MREMAP };
FIXTURE_VARIANT_ADD(live, fork) { .wc = W_FORK };
FIXTURE_VARIANT_ADD(live, dontneed) { .wc = W_DONTNEED };

FIXTURE_SETUP(live)
{
	self->w.go = -1;
}

FIXTURE_TEARDOWN(live)
{
	if (self->w.pid > 0)
		writer_stop(&self->w);
}

/* What one live send of a writer's memfd found. */
struct live_result {
	char fail[512];		/* why the send could not be checked, or "" */
	char tracker[32], source[32];
	uint64_t writes;	/* by the writer during the send */
	uint64_t rescans;	/* the report's map_rescans */
	uint64_t differ;	/* pages of the image not equal to the paused source */
	char state;		/* the writer's, after the send */
};

static int live_fail(struct live_result *res, const char *what, const char *log)
{
	snprintf(res->fail, sizeof(res->fail), "%s: %.400s", what, log ? log : "");
	return -1;
}

/*
 * lmig send of w's memfd (w started, waiting for go) to lmig recv over
 * loopback, go given while round 0 is under way; the image then compared
 * with the memfd.  0, or -1 with res->fail saying why.
 */
static int live_send(struct writer *w, uint64_t npages, struct live_result *res)
{
	char mem[64], pid[16], out[PATH_MAX];
	struct proc rx = { 0 }, tx = { 0 };
	uint8_t *img = NULL, *src = NULL;
	uint64_t before = *wcount;
	int port, fd = -1, ret = -1;

	memset(res, 0, sizeof(*res));
	snprintf(mem, sizeof(mem), "/proc/%d/fd/%d", (int)w->pid, w->fd);
	snprintf(pid, sizeof(pid), "%d", (int)w->pid);
	snprintf(out, sizeof(out), "/tmp/lmig-i17-nolost-%d.img", (int)getpid());
	port = recv_start(&rx, out, NULL, 0);
	if (port <= 0)
		return live_fail(res, "lmig recv did not start", NULL);
	if (send_start(&tx, mem, port, (const char *const[]){ "--pid", pid,
			"--no-progress", "--tracker", "uffd", "--object-writes", "mapped",
			"--freeze", "signal", "--bandwidth", "64M", NULL })) {
		live_fail(res, "lmig send did not start", NULL);
		goto out;
	}
	/* Round 0 takes about half a second at 64 MB/s: write during it. */
	usleep(150 * 1000);
	if (write(w->go, "g", 1) != 1) {
		live_fail(res, "go", strerror(errno));
		goto out;
	}
	if (proc_wait(&tx, 60)) {
		live_fail(res, "lmig send still running", NULL);
		goto out;
	}
	if (proc_wait(&rx, 10)) {
		live_fail(res, "lmig recv still running; send said", tx.err_log);
		goto out;
	}
	if (proc_exit_code(&tx) || proc_exit_code(&rx)) {
		live_fail(res, proc_exit_code(&tx) ? "send" : "recv",
			  proc_exit_code(&tx) ? tx.err_log : rx.err_log);
		goto out;
	}
	res->writes = *wcount - before;
	res->state = pid_state(w->pid);
	if (json_str_field(tx.out, "tracker", res->tracker, sizeof(res->tracker)) ||
	    json_str_field(tx.out, "source", res->source, sizeof(res->source)) ||
	    json_u64_field(tx.out, "map_rescans", &res->rescans)) {
		live_fail(res, "the report lacks tracker, source or map_rescans", tx.out);
		goto out;
	}
	src = malloc(npages * PAGE);
	img = malloc(npages * PAGE);
	fd = open(out, O_RDONLY);
	if (!src || !img || fd < 0 || read_pages(w->fd, 0, npages, src) ||
	    read_pages(fd, 0, npages, img)) {
		live_fail(res, "cannot read the source or the image", strerror(errno));
		goto out;
	}
	for (uint64_t p = 0; p < npages; p++)
		res->differ += !!memcmp(src + p * PAGE, img + p * PAGE, PAGE);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	unlink(out);
	free(src);
	free(img);
	proc_kill(&tx);
	proc_kill(&rx);
	return ret;
}

TEST_F(live, image_is_the_paused_source)
{
	const uint64_t npages = 8192;	/* 32 MiB */
	struct live_result r;

	if (!have_wp_async())
		SKIP(return, "no async write-protection (UFFD_FEATURE_WP_ASYNC) here");
	ASSERT_EQ(0, writer_start(&self->w, variant->wc, npages, true));
	ASSERT_EQ(0, live_send(&self->w, npages, &r)) TH_LOG("%s", r.fail);
	TH_LOG("%s: %llu writes during the send, %llu harvests compared every page",
	       wcase_names[variant->wc], (unsigned long long)r.writes,
	       (unsigned long long)r.rescans);
	EXPECT_STREQ("uffd", r.tracker);
	EXPECT_STREQ("paused", r.source);
	EXPECT_GT(r.writes, 0);
	EXPECT_GT(r.rescans, 0);
	EXPECT_EQ('T', r.state);
	EXPECT_EQ(0, r.differ) TH_LOG("%llu pages of the image differ from the paused source",
				      (unsigned long long)r.differ);
}

/*
 * --live CASE: one live send of the case's writer (what the live tests
 * do), one line on stdout; exit 0 when the image is the paused source.
 * For running one case again and again.
 */
static int live_only(const char *cname)
{
	struct writer w = { .go = -1 };
	struct live_result r;
	int wc = wcase_of(cname), bad;

	if (wc < 0)
		return fprintf(stderr, "--live CASE: no case %s\n", cname), 2;
	if (writer_start(&w, wc, 8192, true))
		return fprintf(stderr, "writer: %s\n", strerror(errno)), 1;
	if (live_send(&w, 8192, &r)) {
		writer_stop(&w);
		return printf("FAIL case=%s %s\n", cname, r.fail), 1;
	}
	writer_stop(&w);
	bad = r.differ || !r.rescans || strcmp(r.tracker, "uffd") || strcmp(r.source, "paused") ||
	      r.state != 'T';
	printf("%s case=%s tracker=%s source=%s writes=%llu map_rescans=%llu differ=%llu "
	       "state=%c\n", bad ? "LOST" : "ok", cname, r.tracker, r.source,
	       (unsigned long long)r.writes, (unsigned long long)r.rescans,
	       (unsigned long long)r.differ, r.state);
	return bad;
}

/*
 * --writer CASE PAGES: start the writer (no userfaultfd) on a memfd of
 * PAGES pages, print "PID /proc/PID/fd/N" and wait to be killed (the
 * writer goes with us).  For vm/softdirty.sh's live send.
 */
static int writer_only(const char *cname, const char *pages)
{
	struct writer w = { .go = -1 };
	int wc = wcase_of(cname);

	if (wc < 0 || atoi(pages) < 2 * NW_WIN)
		return fprintf(stderr, "--writer CASE PAGES: no case %s or too few pages\n", cname), 2;
	if (writer_start(&w, wc, atoi(pages), false) || write(w.go, "g", 1) != 1)
		return fprintf(stderr, "writer: %s\n", strerror(errno)), 1;
	printf("%d /proc/%d/fd/%d\n", (int)w.pid, (int)w.pid, w.fd);
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--run"))
		return nolost(argv[2], argv[3], false);
	if (argc == 5 && !strcmp(argv[1], "--run") && !strcmp(argv[4], "at-start"))
		return nolost(argv[2], argv[3], true);
	if (argc == 4 && !strcmp(argv[1], "--writer"))
		return writer_only(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "--live"))
		return live_only(argv[2]);
	return test_harness_run(argc, argv);
}

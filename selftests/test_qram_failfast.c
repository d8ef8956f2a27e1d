// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig qemu send's pause shared by several RAM blocks (user/live/qemu_ram.c)
 * when one block's session fails during pre-copy: the other sessions give
 * up at once instead of finishing their rounds first.  Run without QEMU:
 * the real page sessions (image_send, two `lmig dirty` writers on
 * memfds, two `lmig recv` on loopback) share the real qram_pause as their
 * freeze hook, as cmd_qemu_send.c runs them; what QEMU would do only
 * happens once every block asked for the pause, which no block does here.
 *
 *   failed_block_stops_the_others  block B's receiver is killed while
 *                                  both blocks are in round 0 (held to
 *                                  4 MB/s, A's 64 MiB would take 16 s):
 *                                  B fails first, A gives up within a
 *                                  tenth of its round's time with "another
 *                                  RAM block's migration failed", nobody
 *                                  asked for the pause, the writers run
 *                                  on and were never stopped.
 *
 * About 1-2 s.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "lib/proc.h"

#include "lib/err.h"
#include "image/image.h"
#include "live/qemu_ram.h"

#define RATE		(4 << 20)	/* each block's --bandwidth */
#define SIZE_A		(64 << 20)
#define SIZE_B		(16 << 20)

struct session {
	struct send_opts o;
	struct image_stats st;
	struct qram_pause *pz;
	pthread_t th;
	char to[64];
	int ret;
	bool first;		/* the first block to fail */
	double t_end;
	char err[300];
};

/* As cmd_qemu_send.c's block thread. */
static void *session_run(void *arg)
{
	struct session *s = arg;

	s->ret = image_send(&s->o, &s->st);
	if (s->ret) {
		snprintf(s->err, sizeof(s->err), "%s", lmig_errmsg());
		s->first = qram_block_gone(s->pz);
	}
	s->t_end = mono_s();
	return NULL;
}

static void session_init(struct session *s, struct qram_pause *pz, const char *mem, pid_t writer,
			 int port)
{
	snprintf(s->to, sizeof(s->to), "127.0.0.1:%d", port);
	s->pz = pz;
	s->o = (struct send_opts){ .mem = mem, .to = s->to, .channels = 1,
				   .compress = COMPRESS_NONE, .bandwidth = RATE, .zerocopy = 0,
				   .timeout_ms = 10000, .pid = writer, .freeze = "none",
				   .tracker = "scan", .mapped_writes_only = true,
				   .downtime_ms = 300, .max_rounds = 30, .throttle = false,
				   .throttle_max_pct = 90, .pause = &pz->hook };
}

static int writer(struct proc *p, const char *name, const char *size, char *mem, size_t len)
{
	const char *args[] = { "--mem", name, "--size", size, "--rate", "1M", NULL };

	return dirty_start(p, args, mem, len);
}

TEST(failed_block_stops_the_others)
{
	struct proc wa = { 0 }, wb = { 0 }, ra = { 0 }, rb = { 0 };
	struct qram_pause pz = { .guard = { .fd = -1 } };
	struct session a = { 0 }, b = { 0 };
	char mema[256], memb[256], outa[64], outb[64];
	double round_a = (double)SIZE_A / RATE, lag;
	int pa, pb;

	snprintf(outa, sizeof(outa), "/tmp/lmig-failfast-%d-a", (int)getpid());
	snprintf(outb, sizeof(outb), "/tmp/lmig-failfast-%d-b", (int)getpid());
	ASSERT_EQ(0, writer(&wa, "memfd:lmig-failfast-a", "67108864", mema, sizeof(mema)));
	ASSERT_EQ(0, writer(&wb, "memfd:lmig-failfast-b", "16777216", memb, sizeof(memb)));
	pa = recv_start(&ra, outa, NULL, 0);
	pb = recv_start(&rb, outb, NULL, 0);
	ASSERT_GT(pa, 0);
	ASSERT_GT(pb, 0);
	qram_init(&pz, NULL, NULL, "/tmp/lmig-failfast.sock", 2, 5000);
	session_init(&a, &pz, mema, wa.pid, pa);
	session_init(&b, &pz, memb, wb.pid, pb);
	ASSERT_EQ(0, pthread_create(&a.th, NULL, session_run, &a));
	ASSERT_EQ(0, pthread_create(&b.th, NULL, session_run, &b));
	/* Both in round 0 (B's lasts 4 s, A's 16 s). */
	usleep(800 * 1000);
	proc_kill(&rb);
	pthread_join(b.th, NULL);
	pthread_join(a.th, NULL);
	lag = a.t_end - b.t_end;
	TH_LOG("B failed: %s; A ended %.3f s later: %s (round 0 would take %.1f s)", b.err, lag,
	       a.err, round_a);

	EXPECT_NE(0, b.ret);
	EXPECT_TRUE(b.first);
	EXPECT_NE(0, a.ret);
	EXPECT_FALSE(a.first);
	EXPECT_STREQ("another RAM block's migration failed", a.err);
	EXPECT_LT(lag, round_a / 10);
	EXPECT_EQ(1, a.st.rounds);		/* still in round 0 */
	EXPECT_EQ(0, pz.asked);			/* nobody asked for the pause */
	EXPECT_FALSE(pz.migrating);
	EXPECT_STREQ("running", a.st.source_state);
	EXPECT_STREQ("running", b.st.source_state);
	/* The writers ran on, never stopped. */
	EXPECT_NE(0, pid_state(wa.pid));
	EXPECT_NE('T', pid_state(wa.pid));
	EXPECT_NE('T', pid_state(wb.pid));
	/* A's receiver saw its sender go and gave up too. */
	EXPECT_EQ(0, proc_wait(&ra, 15));
	EXPECT_NE(0, proc_exit_code(&ra));

	qram_destroy(&pz);
	proc_kill(&ra);
	proc_kill(&wa);
	proc_kill(&wb);
	unlink(outa);
	unlink(outb);
}

TEST_HARNESS_MAIN

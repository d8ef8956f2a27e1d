// SPDX-License-Identifier: GPL-2.0-only
/*
 * Failure paths of the real lmig binary.  Whatever goes wrong - the
 * network, the peer, the disk, the permissions, a stall - both ends must
 * stop within 2 s of the fault with exit status 1 and one line on stderr
 * that names the cause, and the receiver must leave neither PATH nor
 * PATH.partial: a failed migration never looks like a complete one.
 *
 * The peers misbehave for real: fake senders and receivers are the
 * test's own sockets, and a damaging proxy sits between two real lmigs.
 */
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "err.h"
#include "wire.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/proxy.h"
#include "lib/sock.h"

#define MiB		(1024ULL * 1024)
#define DEADLINE_S	2.0	/* how long either end may take to give up */
#define NOBODY		65534

FIXTURE(fault) {
	char dir[256], src[320], out[320], partial[340], mnt[300];
	bool mounted;
	struct proc rx, tx;
	struct proxy px;
	int fd[2];
};

FIXTURE_SETUP(fault)
{
	self->fd[0] = self->fd[1] = -1;
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 96 * MiB));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
}

FIXTURE_TEARDOWN(fault)
{
	proxy_stop(&self->px);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	for (int i = 0; i < 2; i++)
		if (self->fd[i] >= 0)
			close(self->fd[i]);
	if (self->mounted && umount2(self->mnt, MNT_DETACH))
		TH_LOG("cannot unmount %s", self->mnt);
	scratch_remove(self->dir);
}

static bool has_any(const char *msg, const char *const words[])
{
	for (; *words; words++)
		if (strstr(msg, *words))
			return true;
	return false;
}

/*
 * p failed the way lmig promises: exit status 1 no later than DEADLINE_S
 * after `since`, one line on stderr containing one of words, and a
 * --json report that says "failed" with the same message.
 */
static void check_failed(struct __test_metadata *_metadata, struct proc *p, const char *who,
			 double since, const char *const words[])
{
	char status[32] = "", error[512] = "", line[600];

	ASSERT_EQ(0, proc_wait(p, DEADLINE_S + 3))
		TH_LOG("%s still running %.1f s after the fault", who, DEADLINE_S + 3);
	TH_LOG("%s failed after %.3f s: %.*s", who, p->t_exit - since,
	       (int)strcspn(p->err, "\n"), p->err);
	EXPECT_EQ(1, proc_exit_code(p)) TH_LOG("%s: wait status 0x%x", who, p->status);
	EXPECT_LE(p->t_exit - since, DEADLINE_S)
		TH_LOG("%s took %.3f s to fail", who, p->t_exit - since);
	EXPECT_TRUE(one_line(p->err)) TH_LOG("%s stderr is not one line: '%s'", who, p->err_log);
	EXPECT_TRUE(has_any(p->err, words))
		TH_LOG("%s stderr does not name the cause (%s...): %s", who, words[0], p->err_log);
	EXPECT_TRUE(json_one_object(p->out)) TH_LOG("%s stdout: '%s'", who, p->out);
	EXPECT_EQ(0, json_str_field(p->out, "status", status, sizeof(status)));
	EXPECT_STREQ("failed", status);
	/* Tools reading --json get the same message people read on stderr. */
	EXPECT_EQ(0, json_str_field(p->out, "error", error, sizeof(error)));
	snprintf(line, sizeof(line), "lmig %s: %s\n", who, error);
	EXPECT_STREQ(line, p->err);
}

static void check_no_output(struct __test_metadata *_metadata, const char *out, const char *partial)
{
	EXPECT_FALSE(path_exists(out)) TH_LOG("%s exists after a failed migration", out);
	EXPECT_FALSE(path_exists(partial)) TH_LOG("%s was left behind", partial);
}

#define WORDS(...)	((const char *const[]){ __VA_ARGS__, NULL })

static void hello_for(struct lmig_hello *h, uint64_t size)
{
	struct hello_info hi = { .caps = LMIG_CAPS_V1, .nchannels = 1, .image_size = size };

	if (getrandom(hi.session, sizeof(hi.session), 0) != sizeof(hi.session))
		abort();
	wire_hello_build(h, &hi);
}

static void reseal_hello(struct lmig_hello *h)
{
	h->checksum = htole64(wire_checksum(h, sizeof(*h), offsetof(struct lmig_hello, checksum)));
}

static bool ack_intact(const struct lmig_hello_ack *a)
{
	return le32toh(a->magic) == LMIG_WIRE_MAGIC &&
	       le64toh(a->checksum) ==
	       wire_checksum(a, sizeof(*a), offsetof(struct lmig_hello_ack, checksum));
}

/* ---- the network and the handshake ------------------------------------ */

TEST_F(fault, connection_refused)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 1 * MiB));
	/* Bound, not listening: a port nobody answers on, and nobody can take. */
	self->fd[0] = sock_reserve(&port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, WORDS("refused"));
}

TEST_F(fault, garbage_hello)
{
	char junk[sizeof(struct lmig_hello)];
	struct lmig_hello_ack a;
	double t0;
	int port;

	/* Exactly a hello's worth, so lmig's answer is not lost to a reset. */
	memset(junk, ' ', sizeof(junk));
	memcpy(junk, "GET / HTTP/1.1\r\nHost: lmig\r\n\r\n", 30);
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], junk, sizeof(junk)));
	t0 = mono_s();
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("magic"));
	/* The refusal is still a well-formed ack. */
	ASSERT_EQ(0, sock_read_full(self->fd[0], &a, sizeof(a), 2));
	EXPECT_TRUE(ack_intact(&a));
	EXPECT_EQ(LMIG_ST_PROTOCOL, le32toh(a.status));
	check_no_output(_metadata, self->out, self->partial);
}

TEST_F(fault, short_hello)
{
	struct lmig_hello h;
	double t0;
	int port;

	hello_for(&h, 1 * MiB);
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], &h, sizeof(h) / 2));
	close(self->fd[0]);
	self->fd[0] = -1;
	t0 = mono_s();
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("closed"));
	check_no_output(_metadata, self->out, self->partial);
}

TEST_F(fault, wrong_version)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	double t0;
	int port;

	/* A well-formed hello from a future lmig: only the version is new. */
	hello_for(&h, 1 * MiB);
	h.version = htole16(99);
	reseal_hello(&h);

	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], &h, sizeof(h)));
	t0 = mono_s();
	ASSERT_EQ(0, sock_read_full(self->fd[0], &a, sizeof(a), DEADLINE_S))
		TH_LOG("no ack to a version 99 hello");
	EXPECT_TRUE(ack_intact(&a));
	EXPECT_EQ(LMIG_ST_VERSION, le32toh(a.status));
	EXPECT_NE(NULL, strstr(a.reason, "version")) TH_LOG("ack reason: %.96s", a.reason);
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("version"));
	check_no_output(_metadata, self->out, self->partial);
}

TEST_F(fault, bad_ack_magic)
{
	struct hello_info hi;
	struct lmig_hello h;
	struct lmig_hello_ack a;
	uint32_t status;
	double t0;
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 1 * MiB));
	self->fd[0] = sock_listen(&port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, WORDS("--channels", "2")));
	self->fd[1] = sock_accept(self->fd[0], DEADLINE_S);
	ASSERT_GE(self->fd[1], 0);
	/* What the real sender says first is a valid hello for channel 0. */
	ASSERT_EQ(0, sock_read_full(self->fd[1], &h, sizeof(h), DEADLINE_S));
	lmig_err_clear();
	ASSERT_EQ(0, wire_hello_parse(&h, &hi, &status)) TH_LOG("%s", lmig_errmsg());
	EXPECT_EQ(0, hi.channel);
	EXPECT_EQ(2, hi.nchannels);
	EXPECT_EQ(1 * MiB, hi.image_size);

	wire_ack_build(&a, LMIG_CAPS_V1, LMIG_ST_OK, NULL);
	a.magic = htole32(0x0badf00d);
	a.checksum = htole64(wire_checksum(&a, sizeof(a), offsetof(struct lmig_hello_ack, checksum)));
	ASSERT_EQ(0, sock_write_full(self->fd[1], &a, sizeof(a)));
	t0 = mono_s();
	check_failed(_metadata, &self->tx, "send", t0, WORDS("magic"));
}

TEST_F(fault, size_mismatch)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 1 * MiB));
	port = recv_start(&self->rx, self->out, WORDS("--size", "1000000"), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("size mismatch"));
	/* The refusal travels back: the sender names it too. */
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, WORDS("size mismatch"));
	check_no_output(_metadata, self->out, self->partial);
}

/* --accept-timeout: a receiver nobody connects to gives up on its own. */
TEST_F(fault, no_sender)
{
	ASSERT_GT(recv_start(&self->rx, self->out, WORDS("--accept-timeout", "1"), 0), 0);
	check_failed(_metadata, &self->rx, "recv", self->rx.t_start + 1, WORDS("no connection"));
	EXPECT_GE(self->rx.t_exit - self->rx.t_start, 0.9);
	check_no_output(_metadata, self->out, self->partial);
}

/* A source that cannot be an image is refused before anything is sent. */
TEST_F(fault, unusable_source)
{
	static const struct { const char *name, *says; } src[] = {
		{ "missing.img", "No such file" },
		{ "empty.img", "empty" },
		{ ".", "not a regular file" },
	};
	char path[400];
	int port;

	snprintf(path, sizeof(path), "%s/empty.img", self->dir);
	ASSERT_EQ(0, file_write(path, "", 0));
	/* Nobody listens: a sender that got as far as connecting says "refused". */
	self->fd[0] = sock_reserve(&port);
	ASSERT_GE(self->fd[0], 0);
	for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
		snprintf(path, sizeof(path), "%s/%s", self->dir, src[i].name);
		ASSERT_EQ(0, send_start(&self->tx, path, port, NULL));
		check_failed(_metadata, &self->tx, "send", self->tx.t_start, WORDS(src[i].says));
		proc_kill(&self->tx);
		memset(&self->tx, 0, sizeof(self->tx));
	}
}

/* A second channel from another migration must not be mixed into this one. */
TEST_F(fault, foreign_channel)
{
	struct hello_info hi = { .caps = LMIG_CAPS_V1, .nchannels = 2, .image_size = 1 * MiB };
	struct lmig_hello h;
	struct lmig_hello_ack a;
	double t0;
	int port;

	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(16, getrandom(hi.session, 16, 0));
	wire_hello_build(&h, &hi);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], &h, sizeof(h)));
	ASSERT_EQ(0, sock_read_full(self->fd[0], &a, sizeof(a), DEADLINE_S));
	ASSERT_EQ(LMIG_ST_OK, le32toh(a.status)) TH_LOG("refused: %.96s", a.reason);

	hi.channel = 1;
	hi.session[0] ^= 1;
	wire_hello_build(&h, &hi);
	self->fd[1] = sock_connect(port);
	ASSERT_GE(self->fd[1], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[1], &h, sizeof(h)));
	t0 = mono_s();
	ASSERT_EQ(0, sock_read_full(self->fd[1], &a, sizeof(a), DEADLINE_S));
	EXPECT_TRUE(ack_intact(&a));
	EXPECT_EQ(LMIG_ST_SESSION, le32toh(a.status));
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("another migration"));
	check_no_output(_metadata, self->out, self->partial);
}

/* A sender that shakes hands and then says nothing must not hold the receiver. */
TEST_F(fault, stalled_sender)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	double t0;
	int port;

	hello_for(&h, 1 * MiB);
	port = recv_start(&self->rx, self->out, WORDS("--timeout", "1"), 0);
	ASSERT_GT(port, 0);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], &h, sizeof(h)));
	ASSERT_EQ(0, sock_read_full(self->fd[0], &a, sizeof(a), DEADLINE_S));
	ASSERT_TRUE(ack_intact(&a));
	ASSERT_EQ(LMIG_ST_OK, le32toh(a.status)) TH_LOG("refused: %.96s", a.reason);
	t0 = mono_s();
	/* --timeout 1: it may wait 1 s for data, and must give up within 2. */
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("no data"));
	EXPECT_GE(self->rx.t_exit - t0, 0.9);
	check_no_output(_metadata, self->out, self->partial);
}

/* A receiver that accepts and then never reads must not hold the sender. */
TEST_F(fault, stalled_receiver)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	double t0;
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 32 * MiB));
	self->fd[0] = sock_listen(&port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				WORDS("--channels", "1", "--timeout", "1")));
	self->fd[1] = sock_accept(self->fd[0], DEADLINE_S);
	ASSERT_GE(self->fd[1], 0);
	ASSERT_EQ(0, sock_read_full(self->fd[1], &h, sizeof(h), DEADLINE_S));
	wire_ack_build(&a, LMIG_CAPS_V1, LMIG_ST_OK, NULL);
	ASSERT_EQ(0, sock_write_full(self->fd[1], &a, sizeof(a)));
	t0 = mono_s();
	/* 32 MiB do not fit in the socket buffers: the sender must stall. */
	check_failed(_metadata, &self->tx, "send", t0, WORDS("stalled", "no progress"));
	EXPECT_GE(self->tx.t_exit - t0, 0.9);
}

/* ---- a damaged stream ------------------------------------------------- */

/* The proxy itself must be harmless, or the tests below prove nothing. */
TEST_F(fault, proxy_passthrough)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, proxy_start(&self->px, port, -1, -1));
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.port,
				WORDS("--channels", "3", "--compress", "none")));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(3, self->px.conns);
	EXPECT_EQ(1, files_equal(self->src, self->out));
}

TEST_F(fault, flipped_byte)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	/* Channel 0 carries about half of the 16 MiB: 4 MiB is well inside it. */
	ASSERT_EQ(0, proxy_start(&self->px, port, 4 * MiB, -1));
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.port,
				WORDS("--channels", "2", "--compress", "none")));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("checksum", "corrupt"));
	EXPECT_TRUE(self->px.flipped);
	/* The receiver's verdict reaches the sender, which reports it as such. */
	check_failed(_metadata, &self->tx, "send", self->rx.t_exit, WORDS("checksum", "corrupt"));
	check_no_output(_metadata, self->out, self->partial);
}

TEST_F(fault, truncated_stream)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, proxy_start(&self->px, port, -1, 3 * MiB + 17));
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.port,
				WORDS("--channels", "2", "--compress", "none")));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("truncated", "closed"));
	EXPECT_TRUE(self->px.cut);
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     WORDS("closed", "reset", "Broken pipe"));
	check_no_output(_metadata, self->out, self->partial);
}

/* "On any failure PATH.partial is removed and PATH is untouched." */
TEST_F(fault, old_output_untouched)
{
	char old[340];
	int port;

	snprintf(old, sizeof(old), "%s/old.img", self->dir);
	ASSERT_EQ(0, image_write(old, IMG_TEXT, 1 * MiB + 5));
	ASSERT_EQ(0, file_copy(old, self->out, 0644));
	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, proxy_start(&self->px, port, -1, 5 * MiB));
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.port, WORDS("--channels", "1")));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("truncated", "closed"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     WORDS("closed", "reset", "Broken pipe"));
	EXPECT_EQ(1, files_equal(old, self->out)) TH_LOG("the previous image was changed");
	EXPECT_FALSE(path_exists(self->partial));
}

/* ---- the receiver's disk ---------------------------------------------- */

TEST_F(fault, disk_full)
{
	char out[340], partial[360];
	int port;

	if (geteuid() != 0)
		SKIP(return, "mounting a small tmpfs needs root");
	/*
	 * A private mount namespace: the tmpfs is invisible to the rest of
	 * the system and goes away with this test even if teardown never runs.
	 */
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	snprintf(self->mnt, sizeof(self->mnt), "%s/small", self->dir);
	ASSERT_EQ(0, mkdir(self->mnt, 0755));
	if (mount("lmig-selftest", self->mnt, "tmpfs", 0, "size=4m,mode=0755"))
		SKIP(return, "cannot mount a tmpfs here: %s", strerror(errno));
	self->mounted = true;
	snprintf(out, sizeof(out), "%s/out.img", self->mnt);
	snprintf(partial, sizeof(partial), "%s.partial", out);

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, WORDS("--channels", "2")));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start,
		     WORDS("No space left on device"));
	check_failed(_metadata, &self->tx, "send", self->rx.t_exit, WORDS("No space left"));
	check_no_output(_metadata, out, partial);
}

TEST_F(fault, permission_denied)
{
	char ro[300], out[340], partial[360], bin[300];
	int port;

	if (geteuid() != 0)
		SKIP(return, "dropping to uid %d needs root", NOBODY);
	/*
	 * The receiver runs as nobody and writes into a root-owned 0755
	 * directory.  It runs a copy of lmig inside the scratch directory,
	 * because the checkout itself need not be reachable for nobody.
	 */
	snprintf(ro, sizeof(ro), "%s/root-only", self->dir);
	snprintf(out, sizeof(out), "%s/out.img", ro);
	snprintf(partial, sizeof(partial), "%s.partial", out);
	snprintf(bin, sizeof(bin), "%s/lmig", self->dir);
	ASSERT_EQ(0, chmod(self->dir, 0755));
	ASSERT_EQ(0, mkdir(ro, 0755));
	ASSERT_EQ(0, chown(ro, 0, 0));
	ASSERT_EQ(0, file_copy(lmig_path(), bin, 0755));
	ASSERT_EQ(0, setenv("LMIG", bin, 1));

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 1 * MiB));
	port = recv_start(&self->rx, out, NULL, NOBODY);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("Permission denied"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, WORDS("Permission denied"));
	check_no_output(_metadata, out, partial);
}

/* ---- a peer that dies ------------------------------------------------- */

/* Start a 64 MiB migration capped at 20 MB/s (3 s) and let it run 0.5 s. */
static void start_slow_migration(struct __test_metadata *_metadata,
				 FIXTURE_DATA(fault) *self)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 64 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				WORDS("--channels", "2", "--bandwidth", "20M")));
	usleep(500 * 1000);
	ASSERT_EQ(-1, proc_wait(&self->tx, 0)) TH_LOG("send ended early: %s", self->tx.err_log);
	ASSERT_EQ(-1, proc_wait(&self->rx, 0)) TH_LOG("recv ended early: %s", self->rx.err_log);
	ASSERT_TRUE(path_exists(self->partial)) TH_LOG("no %s while receiving", self->partial);
}

TEST_F(fault, sender_killed)
{
	double t0;

	start_slow_migration(_metadata, self);
	ASSERT_EQ(0, kill(self->tx.pid, SIGKILL));
	t0 = mono_s();
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("closed", "truncated", "reset"));
	check_no_output(_metadata, self->out, self->partial);
}

/* An interrupted receiver cleans up after itself, unlike a killed one. */
TEST_F(fault, receiver_interrupted)
{
	double t0;

	start_slow_migration(_metadata, self);
	ASSERT_EQ(0, kill(self->rx.pid, SIGTERM));
	t0 = mono_s();
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S + 3));
	TH_LOG("recv stopped after %.3f s: %s", self->rx.t_exit - t0, self->rx.err_log);
	EXPECT_LE(self->rx.t_exit - t0, DEADLINE_S);
	EXPECT_NE(0, proc_exit_code(&self->rx)) TH_LOG("wait status 0x%x", self->rx.status);
	EXPECT_NE(NULL, strstr(self->rx.err, "interrupted"));
	EXPECT_TRUE(one_line(self->rx.err)) TH_LOG("stderr is not one line: '%s'", self->rx.err_log);
	check_no_output(_metadata, self->out, self->partial);
	check_failed(_metadata, &self->tx, "send", t0, WORDS("closed", "reset", "Broken pipe"));
}

/* The image loses its tail while it is sent: no image made of the rest. */
TEST_F(fault, source_shrinks)
{
	double t0;

	start_slow_migration(_metadata, self);
	ASSERT_EQ(0, truncate(self->src, 1 * MiB));
	t0 = mono_s();
	check_failed(_metadata, &self->tx, "send", t0, WORDS("shrank"));
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("closed", "truncated", "reset"));
	check_no_output(_metadata, self->out, self->partial);
}

TEST_F(fault, receiver_killed)
{
	double t0;

	start_slow_migration(_metadata, self);
	ASSERT_EQ(0, kill(self->rx.pid, SIGKILL));
	t0 = mono_s();
	check_failed(_metadata, &self->tx, "send", t0, WORDS("closed", "reset", "Broken pipe"));
	/*
	 * A SIGKILLed receiver cannot remove its PATH.partial, and must not
	 * need to: only PATH means "complete", and it was never created.
	 */
	EXPECT_FALSE(path_exists(self->out));
}

TEST_HARNESS_MAIN

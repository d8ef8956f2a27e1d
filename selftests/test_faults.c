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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "lib/err.h"
#include "chan/wire.h"

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

/*
 * A source of size bytes, lmig recv into out (as uid) with rx_args, and
 * lmig send to it with tx_args.
 */
static void migration_start(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self,
			    uint64_t size, const char *out, const char *const rx_args[], uid_t uid,
			    const char *const tx_args[])
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, size));
	port = recv_start(&self->rx, out, rx_args, uid);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, tx_args));
}

/*
 * Stands in for the receiver: a source of size bytes, the sender started
 * against a bare listening socket (self->fd[0]), its first connection
 * accepted (self->fd[1]) and the hello it sends read into *h.
 */
static void first_hello(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self,
			uint64_t size, const char *const args[], struct lmig_hello *h)
{
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, size));
	self->fd[0] = sock_listen(&port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, args));
	self->fd[1] = sock_accept(self->fd[0], DEADLINE_S);
	ASSERT_GE(self->fd[1], 0);
	ASSERT_EQ(0, sock_read_full(self->fd[1], h, sizeof(*h), DEADLINE_S));
}

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

	/* What the real sender says first is a valid hello for channel 0. */
	first_hello(_metadata, self, 1 * MiB, WORDS("--channels", "2"), &h);
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

/*
 * A receiver's reason is the peer's text: whatever bytes it holds, the
 * sender shows printable ASCII only (each other byte as '?'), on stderr
 * and in its --json report.  ESC [2J clears a terminal, ESC ]0;...BEL
 * retitles it, 0x9b is a C1 CSI, and 0xff is no UTF-8 at all.
 */
#define EVIL_REASON	"disk \x1b[2J\x1b]0;pwned\x07 \x9b" "31m\xff gone"
#define EVIL_SHOWN	"disk ?[2J?]0;pwned? ?31m? gone"

/* The first byte of s that is neither printable ASCII nor a newline, or 0. */
static int unprintable(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) && *s != '\n')
			return (unsigned char)*s;
	return 0;
}

static void check_reason_shown(struct __test_metadata *_metadata, struct proc *p, double t0)
{
	check_failed(_metadata, p, "send", t0, WORDS(EVIL_SHOWN));
	EXPECT_EQ(0, unprintable(p->err)) TH_LOG("stderr: %s", p->err_log);
	EXPECT_EQ(0, unprintable(p->out)) TH_LOG("JSON report: %s", p->out);
	EXPECT_EQ(NULL, strstr(p->out, "\\u00")) TH_LOG("an escaped control character: %s", p->out);
}

/* The receiver refuses the hello with a reason full of terminal escapes. */
TEST_F(fault, refusal_reason_escapes)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	double t0;

	first_hello(_metadata, self, 1 * MiB, WORDS("--channels", "1"), &h);
	wire_ack_build(&a, 0, LMIG_ST_IO, EVIL_REASON);
	ASSERT_EQ(0, sock_write_full(self->fd[1], &a, sizeof(a)));
	t0 = mono_s();
	check_reason_shown(_metadata, &self->tx, t0);
}

/* The receiver accepts, then fails the image with such a reason. */
TEST_F(fault, result_reason_escapes)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	struct lmig_result r;
	double t0;

	first_hello(_metadata, self, 1 * MiB, WORDS("--channels", "1"), &h);
	wire_ack_build(&a, LMIG_CAPS_V1, LMIG_ST_OK, NULL);
	ASSERT_EQ(0, sock_write_full(self->fd[1], &a, sizeof(a)));
	wire_result_build(&r, LMIG_ST_IO, 0, EVIL_REASON);
	ASSERT_EQ(0, sock_write_full(self->fd[1], &r, sizeof(r)));
	t0 = mono_s();
	check_reason_shown(_metadata, &self->tx, t0);
}

TEST_F(fault, size_mismatch)
{
	migration_start(_metadata, self, 1 * MiB, self->out, WORDS("--size", "1000000"), 0, NULL);
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

	first_hello(_metadata, self, 32 * MiB, WORDS("--channels", "1", "--timeout", "1"), &h);
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
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.f.port,
				WORDS("--channels", "3", "--compress", "none")));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(3, self->px.f.conns);
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
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.f.port,
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
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.f.port,
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
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->px.f.port, WORDS("--channels", "1")));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("truncated", "closed"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     WORDS("closed", "reset", "Broken pipe"));
	EXPECT_EQ(1, files_equal(old, self->out)) TH_LOG("the previous image was changed");
	EXPECT_FALSE(path_exists(self->partial));
}

/* ---- the receiver's disk ---------------------------------------------- */

/*
 * A private mount namespace with a tmpfs of the given size at self->mnt:
 * invisible to the rest of the system, and gone with this test even if
 * teardown never runs.  0, or -1 with why set (a SKIP).
 */
static int small_tmpfs(FIXTURE_DATA(fault) *self, const char *size, char *why, size_t len)
{
	char opts[64];

	if (geteuid() != 0)
		return snprintf(why, len, "mounting a tmpfs needs root"), -1;
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	snprintf(self->mnt, sizeof(self->mnt), "%s/small", self->dir);
	if (mkdir(self->mnt, 0755))
		return snprintf(why, len, "mkdir %s: %s", self->mnt, strerror(errno)), -1;
	snprintf(opts, sizeof(opts), "size=%s,mode=0755", size);
	if (mount("lmig-selftest", self->mnt, "tmpfs", 0, opts))
		return snprintf(why, len, "cannot mount a tmpfs here: %s", strerror(errno)), -1;
	self->mounted = true;
	return 0;
}

/* The filesystem fills up while the pages arrive. */
TEST_F(fault, disk_full)
{
	char out[340], partial[360], fill[340], why[400];
	static char junk[64 * 1024];
	double t0;
	int port, fd;

	if (small_tmpfs(self, "24m", why, sizeof(why)))
		SKIP(return, "%s", why);
	snprintf(out, sizeof(out), "%s/out.img", self->mnt);
	snprintf(partial, sizeof(partial), "%s.partial", out);
	snprintf(fill, sizeof(fill), "%s/fill", self->mnt);

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, out, NULL, 0);
	ASSERT_GT(port, 0);
	/* 16 MiB fit when announced; 2 s on the wire leave time to take the room. */
	ASSERT_EQ(0, send_start(&self->tx, self->src, port,
				WORDS("--channels", "2", "--bandwidth", "8M")));
	for (t0 = mono_s(); !holds_file_in(self->rx.pid, self->mnt) && mono_s() - t0 < 5;)
		usleep(2000);
	ASSERT_TRUE(holds_file_in(self->rx.pid, self->mnt)) TH_LOG("recv: %s", self->rx.err_log);
	fd = open(fill, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	while (write(fd, junk, sizeof(junk)) > 0)
		;
	EXPECT_EQ(ENOSPC, errno);
	close(fd);
	t0 = mono_s();
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("No space left on device"));
	check_failed(_metadata, &self->tx, "send", self->rx.t_exit, WORDS("could not store"));
	/* The sender learns the code, never the receiver's paths. */
	EXPECT_EQ(NULL, strstr(self->tx.err, self->dir)) TH_LOG("send: %s", self->tx.err_log);
	check_no_output(_metadata, out, partial);
}

/* An image announced larger than the free space is refused before anything is written. */
TEST_F(fault, no_room_for_announced_size)
{
	char out[340], partial[360], why[400];
	struct statvfs sv;

	if (small_tmpfs(self, "4m", why, sizeof(why)))
		SKIP(return, "%s", why);
	snprintf(out, sizeof(out), "%s/out.img", self->mnt);
	snprintf(partial, sizeof(partial), "%s.partial", out);

	migration_start(_metadata, self, 16 * MiB, out, NULL, 0, WORDS("--channels", "2"));
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("free"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     WORDS("refused the migration: image larger than the free space"));
	EXPECT_EQ(NULL, strstr(self->tx.err, self->dir)) TH_LOG("send: %s", self->tx.err_log);
	/* Nothing was written: the refusal came before the first page. */
	ASSERT_EQ(0, statvfs(self->mnt, &sv));
	EXPECT_EQ(sv.f_blocks, sv.f_bfree);
	check_no_output(_metadata, out, partial);
}

/* --max-size, and its default (this host's RAM), against the announced size. */
TEST_F(fault, max_size)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
	double t0;
	int port;

	migration_start(_metadata, self, 2 * MiB, self->out, WORDS("--max-size", "1Mi"), 0, NULL);
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("--max-size"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start,
		     WORDS("refused the migration: image larger than the receiver accepts (--max-size)"));
	check_no_output(_metadata, self->out, self->partial);
	proc_kill(&self->rx);
	proc_kill(&self->tx);
	memset(&self->rx, 0, sizeof(self->rx));
	memset(&self->tx, 0, sizeof(self->tx));

	/* Exactly the limit is accepted. */
	port = recv_start(&self->rx, self->out, WORDS("--max-size", "2Mi"), 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
	ASSERT_EQ(0, proc_wait(&self->tx, 10));
	ASSERT_EQ(0, proc_wait(&self->rx, 10));
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	proc_kill(&self->rx);
	proc_kill(&self->tx);
	memset(&self->rx, 0, sizeof(self->rx));
	memset(&self->tx, 0, sizeof(self->tx));
	unlink(self->out);

	/* 120 bytes of hello announcing twice this host's memory, no option given. */
	hello_for(&h, 2 * ram);
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], &h, sizeof(h)));
	t0 = mono_s();
	ASSERT_EQ(0, sock_read_full(self->fd[0], &a, sizeof(a), DEADLINE_S));
	EXPECT_TRUE(ack_intact(&a));
	EXPECT_EQ(LMIG_ST_SIZE, le32toh(a.status)) TH_LOG("ack: %.96s", a.reason);
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("--max-size"));
	check_no_output(_metadata, self->out, self->partial);
}

/* VmRSS of a process, in bytes, or 0. */
static uint64_t rss_of(pid_t pid)
{
	char path[64], line[256];
	uint64_t kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/*
 * A receiver accepts a hello and waits for pages: its RSS once the ack is
 * read, for an image of the given size (the output on self->mnt).
 */
static uint64_t rss_after_hello(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self,
				uint64_t size, struct proc *rx)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	char out[340];
	uint64_t rss;
	int port, fd;

	snprintf(out, sizeof(out), "%s/%llu.img", self->mnt, (unsigned long long)size);
	hello_for(&h, size);
	port = recv_start(rx, out, WORDS("--max-size", "none"), 0);
	if (port <= 0)
		return 0;
	fd = sock_connect(port);
	if (fd < 0 || sock_write_full(fd, &h, sizeof(h)) ||
	    sock_read_full(fd, &a, sizeof(a), DEADLINE_S) || le32toh(a.status) != LMIG_ST_OK) {
		TH_LOG("no ack for %llu bytes: %.96s; recv: %s", (unsigned long long)size,
		       a.reason, rx->err_log);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	/* Past the hello, the receiver sets up its rings and waits: let it. */
	usleep(300 * 1000);
	rss = rss_of(rx->pid);
	close(fd);
	return rss;
}

/* The bookkeeping for an announced size is not paid before pages arrive. */
TEST_F(fault, huge_announced_size_small_rss)
{
	struct proc rx2 = { 0 };
	uint64_t small, huge;
	char why[400];

	/* A tmpfs that says it has room for the 1 TiB (nothing is written). */
	if (small_tmpfs(self, "2t", why, sizeof(why)))
		SKIP(return, "%s", why);
	small = rss_after_hello(_metadata, self, 1 * MiB, &self->rx);
	huge = rss_after_hello(_metadata, self, 1ULL << 40, &rx2);
	TH_LOG("receiver RSS after the hello: %.1f MiB for 1 MiB, %.1f MiB for 1 TiB (%llu pages: 12 bytes each would be %.0f MiB)",
	       small / (double)MiB, huge / (double)MiB, (1ULL << 40) / 4096,
	       (1ULL << 40) / 4096 * 12.0 / MiB);
	proc_kill(&rx2);
	ASSERT_GT(small, 0);
	ASSERT_GT(huge, 0);
	EXPECT_LT(huge, small + 16 * MiB);
}

/* ---- the output path ---------------------------------------------------- */

/*
 * A link at PATH.partial to a file of someone else (a sticky /dev/shm,
 * fs.protected_symlinks=0): the receiver writes its own file, and the
 * link's target keeps its bytes.
 */
TEST_F(fault, partial_symlink_not_followed)
{
	static const char victim_text[] = "the victim's own bytes\n";
	char victim[340], buf[64] = "";
	struct stat sb;
	int fd;
	ssize_t n;

	snprintf(victim, sizeof(victim), "%s/victim", self->dir);
	ASSERT_EQ(0, file_write(victim, victim_text, sizeof(victim_text) - 1));
	ASSERT_EQ(0, symlink(victim, self->partial));
	migration_start(_metadata, self, 4 * MiB, self->out, NULL, 0, NULL);
	ASSERT_EQ(0, proc_wait(&self->tx, 10));
	ASSERT_EQ(0, proc_wait(&self->rx, 10));
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	fd = open(victim, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_GE(n, 0);
	buf[n] = 0;
	EXPECT_STREQ(victim_text, buf) TH_LOG("the link's target was written");
	ASSERT_EQ(0, lstat(self->out, &sb));
	EXPECT_TRUE(S_ISREG(sb.st_mode)) TH_LOG("%s is not a regular file (mode 0%o)", self->out,
						sb.st_mode);
	EXPECT_EQ(0600, sb.st_mode & 07777);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	/* The link is someone else's: left as it was. */
	ASSERT_EQ(0, lstat(self->partial, &sb));
	EXPECT_TRUE(S_ISLNK(sb.st_mode));
}

/* A world-readable PATH.partial made beforehand by another user is never the image. */
TEST_F(fault, partial_precreated_not_committed)
{
	struct stat pre, sb;

	ASSERT_EQ(0, file_write(self->partial, "planted", 7));
	ASSERT_EQ(0, chmod(self->partial, 0644));
	ASSERT_EQ(0, chown(self->partial, NOBODY, NOBODY));
	ASSERT_EQ(0, stat(self->partial, &pre));
	migration_start(_metadata, self, 4 * MiB, self->out, NULL, 0, NULL);
	ASSERT_EQ(0, proc_wait(&self->tx, 10));
	ASSERT_EQ(0, proc_wait(&self->rx, 10));
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	ASSERT_EQ(0, lstat(self->out, &sb));
	EXPECT_TRUE(S_ISREG(sb.st_mode));
	EXPECT_NE(pre.st_ino, sb.st_ino) TH_LOG("the planted file became the image");
	EXPECT_EQ(0600, sb.st_mode & 07777);
	EXPECT_EQ(geteuid(), sb.st_uid);
	EXPECT_EQ(1, files_equal(self->src, self->out));
}

/* Names in dir, "." and ".." aside, or -1. */
static int names_in(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/*
 * An existing regular PATH is replaced in one step (a link under a hidden
 * random name, renamed over PATH), and no other name is left behind.
 */
TEST_F(fault, existing_out_replaced)
{
	struct stat sb;
	int port, before;

	ASSERT_EQ(0, image_write(self->out, IMG_TEXT, 1 * MiB));
	ASSERT_EQ(0, chmod(self->out, 0644));
	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 4 * MiB));
	before = names_in(self->dir);
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
	ASSERT_EQ(0, proc_wait(&self->tx, 10));
	ASSERT_EQ(0, proc_wait(&self->rx, 10));
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	ASSERT_EQ(0, lstat(self->out, &sb));
	EXPECT_TRUE(S_ISREG(sb.st_mode));
	EXPECT_EQ(0600, sb.st_mode & 07777);
	EXPECT_EQ(before, names_in(self->dir)) TH_LOG("a name was left in %s", self->dir);
}

/* An existing PATH that is not a regular file is refused, and stays. */
TEST_F(fault, out_not_regular_refused)
{
	static const char *const kinds[] = { "symbolic link", "fifo", "directory" };
	char victim[340];
	struct stat sb;

	snprintf(victim, sizeof(victim), "%s/victim", self->dir);
	ASSERT_EQ(0, file_write(victim, "victim", 6));
	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 1 * MiB));
	for (int k = 0; k < 3; k++) {
		int port, made = k == 0 ? symlink(victim, self->out) :
				 k == 1 ? mkfifo(self->out, 0600) : mkdir(self->out, 0700);

		ASSERT_EQ(0, made) TH_LOG("cannot make a %s: %s", kinds[k], strerror(errno));
		port = recv_start(&self->rx, self->out, NULL, 0);
		ASSERT_GT(port, 0);
		ASSERT_EQ(0, send_start(&self->tx, self->src, port, NULL));
		check_failed(_metadata, &self->rx, "recv", self->tx.t_start,
			     WORDS("refusing to replace it"));
		EXPECT_NE(NULL, strstr(self->rx.err, kinds[k])) TH_LOG("recv: %s", self->rx.err_log);
		check_failed(_metadata, &self->tx, "send", self->tx.t_start,
			     WORDS("receiver refused the migration: the receiver's output exists and is not a regular file"));
		EXPECT_EQ(NULL, strstr(self->tx.err, self->dir)) TH_LOG("send: %s", self->tx.err_log);
		ASSERT_EQ(0, lstat(self->out, &sb));
		EXPECT_TRUE(k == 0 ? S_ISLNK(sb.st_mode) : k == 1 ? S_ISFIFO(sb.st_mode) :
			    S_ISDIR(sb.st_mode)) TH_LOG("the %s was replaced", kinds[k]);
		EXPECT_FALSE(path_exists(self->partial));
		EXPECT_EQ(6, lstat(victim, &sb) == 0 ? sb.st_size : -1);
		proc_kill(&self->rx);
		proc_kill(&self->tx);
		memset(&self->rx, 0, sizeof(self->rx));
		memset(&self->tx, 0, sizeof(self->tx));
		ASSERT_EQ(0, k == 2 ? rmdir(self->out) : unlink(self->out));
	}
}

/* A refusal tells a peer nobody authenticated the code, not the receiver's paths. */
TEST_F(fault, refusal_names_no_local_path)
{
	struct lmig_hello h;
	struct lmig_hello_ack a;
	char out[340];
	double t0;
	int port;

	/* A directory that is not there: lmig's own message names it. */
	snprintf(out, sizeof(out), "%s/no-such-dir/out.img", self->dir);
	hello_for(&h, 1 * MiB);
	port = recv_start(&self->rx, out, NULL, 0);
	ASSERT_GT(port, 0);
	self->fd[0] = sock_connect(port);
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(0, sock_write_full(self->fd[0], &h, sizeof(h)));
	t0 = mono_s();
	ASSERT_EQ(0, sock_read_full(self->fd[0], &a, sizeof(a), DEADLINE_S));
	EXPECT_TRUE(ack_intact(&a));
	EXPECT_EQ(LMIG_ST_IO, le32toh(a.status));
	TH_LOG("ack reason: %.96s", a.reason);
	EXPECT_EQ(NULL, memchr(a.reason, '/', sizeof(a.reason))) TH_LOG("a path in the ack");
	EXPECT_EQ(NULL, strstr(a.reason, "no-such-dir"));
	EXPECT_NE(NULL, strstr(a.reason, "No such file or directory"));
	/* The receiver's own stderr has it all. */
	check_failed(_metadata, &self->rx, "recv", t0, WORDS("no-such-dir"));
}
TEST_F(fault, permission_denied)
{
	char ro[300], out[340], partial[360], bin[300];

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

	migration_start(_metadata, self, 1 * MiB, out, NULL, NOBODY, NULL);
	check_failed(_metadata, &self->rx, "recv", self->tx.t_start, WORDS("Permission denied"));
	check_failed(_metadata, &self->tx, "send", self->tx.t_start, WORDS("Permission denied"));
	check_no_output(_metadata, out, partial);
}

/* ---- a peer that dies ------------------------------------------------- */

/* Start a 64 MiB migration capped at 20 MB/s (3 s) and let it run 0.5 s. */
static void start_slow_migration(struct __test_metadata *_metadata,
				 FIXTURE_DATA(fault) *self)
{
	migration_start(_metadata, self, 64 * MiB, self->out, NULL, 0,
			WORDS("--channels", "2", "--bandwidth", "20M"));
	usleep(500 * 1000);
	ASSERT_EQ(-1, proc_wait(&self->tx, 0)) TH_LOG("send ended early: %s", self->tx.err_log);
	ASSERT_EQ(-1, proc_wait(&self->rx, 0)) TH_LOG("recv ended early: %s", self->rx.err_log);
	/* The image being received: an unnamed file in the output's directory. */
	ASSERT_TRUE(holds_file_in(self->rx.pid, self->dir)) TH_LOG("no image file while receiving");
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

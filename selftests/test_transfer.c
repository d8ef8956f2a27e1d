// SPDX-License-Identifier: GPL-2.0-only
/*
 * End-to-end migrations over loopback with the real lmig binary: every
 * image must arrive byte for byte, and what both sides report with
 * --json must agree with what the image is made of.  One receiver is an
 * older lmig as the sender sees it (no zstd pages): a forwarder clears
 * LMIG_CAP_ZSTD from each hello on its way to the real lmig recv.
 */
#include <endian.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "chan/wire.h"

#include "lib/files.h"
#include "lib/fwd.h"
#include "lib/jfield.h"
#include "lib/proc.h"

#define PAGE	4096ULL
#define MiB	(1024ULL * 1024)

struct report {
	char status[32], digest[64];
	uint64_t bytes_total, bytes_wire, pages_total, pages_zero, pages_compressed, pages_raw;
	uint64_t pages_zstd, channels, total_ms;
};

/* Every field the tests look at; -1 if one is missing. */
static int report_parse(const char *json, struct report *r)
{
	memset(r, 0, sizeof(*r));
	if (!json_one_object(json) ||
	    json_str_field(json, "status", r->status, sizeof(r->status)) ||
	    json_u64_field(json, "bytes_total", &r->bytes_total) ||
	    json_u64_field(json, "bytes_wire", &r->bytes_wire) ||
	    json_u64_field(json, "pages_total", &r->pages_total) ||
	    json_u64_field(json, "pages_zero", &r->pages_zero) ||
	    json_u64_field(json, "pages_compressed", &r->pages_compressed) ||
	    json_u64_field(json, "pages_raw", &r->pages_raw) ||
	    json_u64_field(json, "pages_zstd", &r->pages_zstd) ||
	    json_u64_field(json, "channels", &r->channels) ||
	    json_u64_field(json, "total_ms", &r->total_ms))
		return -1;
	/* Present but null on failure. */
	json_str_field(json, "digest", r->digest, sizeof(r->digest));
	return 0;
}

FIXTURE(xfer) {
	char dir[256], src[320], out[320], partial[340], disk_dir[64];
	struct proc rx, tx;
};

FIXTURE_VARIANT(xfer) {
	enum img_kind kind;
	uint64_t size;
	unsigned int channels;
	const char *compress;
	const char *extra[3];	/* more send options, NULL-terminated */
	bool on_disk;		/* source on a disk file system, not tmpfs */
};

/* Channel counts 1, 3 and 8 against every kind of image and every --compress. */
FIXTURE_VARIANT_ADD(xfer, random_1ch_none) {
	.kind = IMG_RANDOM, .size = 16 * MiB, .channels = 1, .compress = "none",
};
FIXTURE_VARIANT_ADD(xfer, random_3ch_lz4) {
	.kind = IMG_RANDOM, .size = 16 * MiB, .channels = 3, .compress = "lz4",
};
FIXTURE_VARIANT_ADD(xfer, random_8ch_auto_no_zerocopy) {
	.kind = IMG_RANDOM, .size = 16 * MiB, .channels = 8, .compress = "auto",
	.extra = { "--zerocopy", "off" },
};
/* Zero-copy sends are off by default on loopback: force them once. */
FIXTURE_VARIANT_ADD(xfer, random_3ch_none_zerocopy) {
	.kind = IMG_RANDOM, .size = 16 * MiB, .channels = 3, .compress = "none",
	.extra = { "--zerocopy", "on" },
};
FIXTURE_VARIANT_ADD(xfer, zero_heavy_8ch_lz4_zerocopy) {
	.kind = IMG_ZERO_HEAVY, .size = 16 * MiB, .channels = 8, .compress = "lz4",
	.extra = { "--zerocopy", "on" },
};
/*
 * A source on a disk file system is read through the ring (tmpfs and
 * memfd sources are read inline).
 */
FIXTURE_VARIANT_ADD(xfer, on_disk_text_3ch_auto) {
	.kind = IMG_TEXT, .size = 16 * MiB + 4096 * 3 + 5, .channels = 3, .compress = "auto",
	.on_disk = true,
};
FIXTURE_VARIANT_ADD(xfer, zero_heavy_1ch_none) {
	.kind = IMG_ZERO_HEAVY, .size = 16 * MiB, .channels = 1, .compress = "none",
};
FIXTURE_VARIANT_ADD(xfer, zero_heavy_3ch_auto) {
	.kind = IMG_ZERO_HEAVY, .size = 32 * MiB, .channels = 3, .compress = "auto",
};
FIXTURE_VARIANT_ADD(xfer, text_1ch_none) {
	.kind = IMG_TEXT, .size = 16 * MiB, .channels = 1, .compress = "none",
};
FIXTURE_VARIANT_ADD(xfer, text_3ch_auto) {
	.kind = IMG_TEXT, .size = 16 * MiB, .channels = 3, .compress = "auto",
};
FIXTURE_VARIANT_ADD(xfer, text_8ch_lz4) {
	.kind = IMG_TEXT, .size = 16 * MiB, .channels = 8, .compress = "lz4",
};
/* zstd pages, where the receiver takes them (every lmig recv that knows them). */
FIXTURE_VARIANT_ADD(xfer, text_3ch_zstd) {
	.kind = IMG_TEXT, .size = 16 * MiB, .channels = 3, .compress = "zstd",
};
FIXTURE_VARIANT_ADD(xfer, zero_heavy_8ch_zstd) {
	.kind = IMG_ZERO_HEAVY, .size = 16 * MiB, .channels = 8, .compress = "zstd",
};
FIXTURE_VARIANT_ADD(xfer, odd_size_text_1ch_zstd) {
	.kind = IMG_TEXT, .size = 10 * MiB + 123, .channels = 1, .compress = "zstd",
};
FIXTURE_VARIANT_ADD(xfer, random_2ch_zstd) {
	.kind = IMG_RANDOM, .size = 16 * MiB, .channels = 2, .compress = "zstd",
};
/* The last page is partial: its tail must not appear in the output. */
FIXTURE_VARIANT_ADD(xfer, odd_size_random_3ch_lz4) {
	.kind = IMG_RANDOM, .size = 10 * MiB + 123, .channels = 3, .compress = "lz4",
};
FIXTURE_VARIANT_ADD(xfer, odd_size_text_1ch_auto) {
	.kind = IMG_TEXT, .size = 10 * MiB + 123, .channels = 1, .compress = "auto",
};
/* More channels than pages: most channels carry nothing but their END frame. */
FIXTURE_VARIANT_ADD(xfer, one_page_8ch) {
	.kind = IMG_RANDOM, .size = PAGE, .channels = 8, .compress = "auto",
};
FIXTURE_VARIANT_ADD(xfer, one_zero_page_1ch) {
	.kind = IMG_ZERO, .size = PAGE, .channels = 1, .compress = "lz4",
};
FIXTURE_VARIANT_ADD(xfer, less_than_a_page_3ch) {
	.kind = IMG_TEXT, .size = 777, .channels = 3, .compress = "lz4",
};
/* Nothing but zero runs: no page data on the wire at all. */
FIXTURE_VARIANT_ADD(xfer, all_zero_64m_8ch) {
	.kind = IMG_ZERO, .size = 64 * MiB, .channels = 8, .compress = "auto",
};

FIXTURE_SETUP(xfer)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 2 * variant->size));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	if (variant->on_disk) {
		struct statfs fs;

		strcpy(self->disk_dir, "/var/tmp/lmig-test-XXXXXX");
		ASSERT_NE(NULL, mkdtemp(self->disk_dir));
		ASSERT_EQ(0, statfs(self->disk_dir, &fs));
		if (fs.f_type == TMPFS_MAGIC)
			SKIP(return, "/var/tmp is a tmpfs here");
		snprintf(self->src, sizeof(self->src), "%s/src.img", self->disk_dir);
	}
}

FIXTURE_TEARDOWN(xfer)
{
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	scratch_remove(self->dir);
	if (self->disk_dir[0])
		scratch_remove(self->disk_dir);
}

TEST_F(xfer, migrate)
{
	const uint64_t pages = (variant->size + PAGE - 1) / PAGE;
	char ch[16];
	const char *args[] = { "--channels", ch, "--compress", variant->compress,
			       variant->extra[0], variant->extra[1], variant->extra[2], NULL };
	struct report s, r;
	int64_t zero;
	int port;

	snprintf(ch, sizeof(ch), "%u", variant->channels);
	ASSERT_EQ(0, image_write(self->src, variant->kind, variant->size));
	zero = image_zero_pages(self->src);
	ASSERT_GE(zero, 0);
	if (variant->kind == IMG_ZERO_HEAVY)
		ASSERT_EQ(pages - pages / 4, zero);

	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, args));
	ASSERT_EQ(0, proc_wait(&self->tx, 20)) TH_LOG("lmig send still running after 20 s");
	ASSERT_EQ(0, proc_wait(&self->rx, 5)) TH_LOG("lmig recv still running 5 s after send");
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	/* Success is silent on stderr when the result goes to stdout. */
	EXPECT_EQ(0, self->tx.err_len) TH_LOG("send stderr: %s", self->tx.err_log);
	EXPECT_EQ(0, self->rx.err_len) TH_LOG("recv stderr: %s", self->rx.err_log);

	ASSERT_EQ(1, files_equal(self->src, self->out));
	EXPECT_FALSE(path_exists(self->partial));

	ASSERT_EQ(0, report_parse(self->tx.out, &s)) TH_LOG("send stdout: %s", self->tx.out);
	ASSERT_EQ(0, report_parse(self->rx.out, &r)) TH_LOG("recv stdout: %s", self->rx.out);
	EXPECT_STREQ("completed", s.status);
	EXPECT_STREQ("completed", r.status);
	EXPECT_EQ(variant->size, s.bytes_total);
	EXPECT_EQ(variant->size, r.bytes_total);
	EXPECT_EQ(pages, s.pages_total);
	EXPECT_EQ(pages, r.pages_total);
	EXPECT_EQ(variant->channels, s.channels);
	EXPECT_EQ(variant->channels, r.channels);
	EXPECT_EQ(zero, s.pages_zero);
	EXPECT_EQ(zero, r.pages_zero);
	EXPECT_EQ(pages, s.pages_zero + s.pages_compressed + s.pages_raw);
	EXPECT_EQ(pages, r.pages_zero + r.pages_compressed + r.pages_raw);
	/* Both ends count the same frames. */
	EXPECT_EQ(s.pages_compressed, r.pages_compressed);
	EXPECT_EQ(s.pages_zstd, r.pages_zstd);
	/* zstd only when asked for (auto may step down where the network keeps it waiting). */
	if (!strcmp(variant->compress, "zstd")) {
		EXPECT_EQ(s.pages_compressed, s.pages_zstd);
	} else if (strcmp(variant->compress, "auto")) {
		EXPECT_EQ(0, s.pages_zstd);
	}
	EXPECT_EQ(s.bytes_wire, r.bytes_wire);
	EXPECT_EQ(32, strlen(s.digest));
	EXPECT_STREQ(s.digest, r.digest);

	if (!strcmp(variant->compress, "none")) {
		EXPECT_EQ(0, s.pages_compressed);
		EXPECT_GE(s.bytes_wire, (pages - zero) * PAGE);
	}
	if (variant->kind == IMG_RANDOM) {
		/*
		 * Random pages never shrink by the 1/16 lz4 must save; only a
		 * partial last page, padded with zeros, may.
		 */
		EXPECT_LE(s.pages_compressed, variant->size % PAGE ? 1 : 0);
		EXPECT_GE(s.bytes_wire, variant->size - variant->size % PAGE);
	}
	if (variant->kind == IMG_TEXT && strcmp(variant->compress, "none") &&
	    strcmp(variant->compress, "auto")) {
		EXPECT_EQ(pages, s.pages_compressed);
		EXPECT_LT(s.bytes_wire, variant->size);
	}
	if (variant->kind == IMG_ZERO_HEAVY)
		EXPECT_LT(s.bytes_wire, variant->size / 2);
	if (variant->kind == IMG_ZERO)
		EXPECT_LT(s.bytes_wire, 4096 * variant->channels);
}

/*
 * A receiver from before zstd pages, as the sender sees one: every hello
 * reaches the real lmig recv without LMIG_CAP_ZSTD (its checksum made
 * good again), so the ack does not accept it.
 */
struct old_peer {
	struct fwd f;
	atomic_int offered;	/* hellos that asked for zstd pages */
};

static int strip_zstd(struct fwd *f, struct fwd_pair *c, int s, uint8_t *buf, size_t n)
{
	struct old_peer *o = f->ctx;
	struct lmig_hello h;
	size_t k;

	if (s != 0 || c->have == sizeof(h))
		return fwd_write(c, s, buf, n);
	k = sizeof(h) - c->have < n ? sizeof(h) - c->have : n;
	memcpy(c->msg + c->have, buf, k);
	c->have += k;
	if (c->have < sizeof(h))
		return 0;
	memcpy(&h, c->msg, sizeof(h));
	if (le32toh(h.caps) & LMIG_CAP_ZSTD)
		o->offered++;
	h.caps = htole32(le32toh(h.caps) & ~LMIG_CAP_ZSTD);
	h.checksum = htole64(wire_checksum(&h, sizeof(h), offsetof(struct lmig_hello, checksum)));
	if (fwd_write(c, s, (const uint8_t *)&h, sizeof(h)))
		return -1;
	return n > k ? fwd_write(c, s, buf + k, n - k) : 0;
}

/* Single migrations with their own checks: --bandwidth, IPv6, an older receiver. */
FIXTURE(single) {
	char dir[256], src[320], out[320];
	struct proc rx, tx;
	struct old_peer op;
};

FIXTURE_SETUP(single)
{
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 32 * MiB));
	snprintf(self->src, sizeof(self->src), "%s/src.img", self->dir);
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
}

FIXTURE_TEARDOWN(single)
{
	fwd_stop(&self->op.f);
	proc_kill(&self->tx);
	proc_kill(&self->rx);
	scratch_remove(self->dir);
}

/* --bandwidth must really hold the sender back, not just be parsed. */
TEST_F(single, bandwidth_cap)
{
	static const char *const args[] = {
		"--channels", "2", "--compress", "none", "--bandwidth", "20M", NULL,
	};
	double took;
	struct report s;
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 16 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, args));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	ASSERT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	ASSERT_EQ(1, files_equal(self->src, self->out));

	/* 16.8 MB at 20 MB/s is 0.84 s; allow for the initial burst. */
	took = self->tx.t_exit - self->tx.t_start;
	TH_LOG("16 MiB at --bandwidth 20M took %.3f s", took);
	EXPECT_GE(took, 0.6);
	EXPECT_LT(took, 5.0);
	ASSERT_EQ(0, report_parse(self->tx.out, &s));
	EXPECT_GE(s.total_ms, 600);
}

/*
 * --timeout is "the longest stall".  Under a low --bandwidth the sender
 * waits for tokens between frames; that wait is the cap working, not a
 * stalled receiver, and must not end the migration.  At 150 KB/s one
 * 64-page frame needs 1.76 s of tokens, more than --timeout 1.
 */
TEST_F(single, rate_wait_is_not_a_stall)
{
	static const char *const args[] = {
		"--channels", "1", "--compress", "none", "--bandwidth", "150K", "--timeout", "1", NULL,
	};
	int port;

	/* 129 pages: a frame within the initial burst, a full one, then one page. */
	ASSERT_EQ(0, image_write(self->src, IMG_RANDOM, 129 * PAGE));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&self->tx, self->src, port, args));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
}

/* [ADDR]:PORT on both ends: the same migration over IPv6 loopback. */
TEST_F(single, ipv6_loopback)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool have_v6 = fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	static const char *const args[] = { "--channels", "3", NULL };
	char to[32];
	int port;

	if (fd >= 0)
		close(fd);
	if (!have_v6)
		SKIP(return, "no IPv6 loopback here");
	ASSERT_EQ(0, image_write(self->src, IMG_TEXT, 8 * MiB + 1));
	port = recv_start_on(&self->rx, "[::1]:0", self->out, NULL, 0);
	ASSERT_GT(port, 0);
	snprintf(to, sizeof(to), "[::1]:%d", port);
	ASSERT_EQ(0, send_start_to(&self->tx, self->src, to, args));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
}

/*
 * --compress zstd to a receiver that does not take zstd pages: the sender
 * asks on every channel, is refused, and sends lz4, which arrives byte
 * for byte.
 */
TEST_F(single, zstd_to_older_receiver)
{
	static const char *const args[] = { "--channels", "2", "--compress", "zstd", NULL };
	const uint64_t pages = 8 * MiB / PAGE;
	struct report s, r;
	int port;

	ASSERT_EQ(0, image_write(self->src, IMG_TEXT, 8 * MiB));
	port = recv_start(&self->rx, self->out, NULL, 0);
	ASSERT_GT(port, 0);
	self->op.f.pass = strip_zstd;
	self->op.f.ctx = &self->op;
	ASSERT_EQ(0, fwd_start(&self->op.f, port));
	ASSERT_EQ(0, send_start(&self->tx, self->src, self->op.f.port, args));
	ASSERT_EQ(0, proc_wait(&self->tx, 20));
	ASSERT_EQ(0, proc_wait(&self->rx, 5));
	EXPECT_EQ(0, proc_exit_code(&self->tx)) TH_LOG("send: %s", self->tx.err_log);
	ASSERT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->src, self->out));
	EXPECT_EQ(2, self->op.offered);
	ASSERT_EQ(0, report_parse(self->tx.out, &s)) TH_LOG("send stdout: %s", self->tx.out);
	ASSERT_EQ(0, report_parse(self->rx.out, &r)) TH_LOG("recv stdout: %s", self->rx.out);
	EXPECT_EQ(0, s.pages_zstd);
	EXPECT_EQ(0, r.pages_zstd);
	EXPECT_EQ(pages, s.pages_compressed);
	EXPECT_EQ(pages, r.pages_compressed);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the receiver reports verified is what it stored, whatever a page
 * became between rounds.
 *
 *   zeroed.*    the reproduction: 16 MiB of random bytes in a shm file,
 *               the first 4 MiB zeroed one second into a live send
 *               (scan tracker, 4 MB/s link); the image must be the paused
 *               source, byte for byte
 *   churn.*     `lmig dirty --pattern churn` under each tracker here (scan,
 *               uffd; soft-dirty and kmod run it in the VM: vm/live.sh,
 *               vm/live-kmod-host.sh): pages that turn zero, zero pages
 *               that get data, pages back to an earlier content (A, B, A);
 *               `--pattern holes`: holes punched in the shm file;
 *               `--pattern madvise`: pages zeroed by MADV_REMOVE (shm) or
 *               MADV_DONTNEED (anon); `--pattern pwrite`: the churn cycle
 *               with zeroes and B written by pwrite() to the file; byte
 *               for byte again; `holes` once more with `--object-writes
 *               mapped` (the hole map alone, no content comparison)
 *   other.*     another process pwrite()s 4 MiB of the shm file (zeros or
 *               data) during round 0 under the uffd tracker: byte for byte;
 *               or ftruncate()s it larger or smaller: send fails, nothing
 *               is committed
 *   rounds.*    forged live streams whose later rounds overwrite data with
 *               zero runs (raw and lz4 data, the partial last page, the
 *               whole image), zero pages with data, A with B with A: the
 *               output must hold what the stream means, with and without
 *               --verify-readback; into ramfs too, which cannot punch
 *               holes, so the zero runs are written as zeros
 *   readback.*  the output changed behind the receiver's back after its
 *               pages were written: --verify-readback refuses the commit
 *               (without it, the table of hashes cannot see it)
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "chan/codec.h"
#include "lib/err.h"
#include "chan/wire.h"

#include "lib/files.h"
#include "lib/jfield.h"
#include "lib/proc.h"
#include "lib/sock.h"

#define PAGE		LMIG_PAGE_SIZE
#define MiB		(1024ULL * 1024)
#define DEADLINE_S	5.0

#define ARGS(...)	((const char *const[]){ __VA_ARGS__, NULL })

/* The first page where a and b differ, or -1; *nbytes: how many bytes differ. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t size, uint64_t *nbytes)
{
	int64_t first = -1;

	*nbytes = 0;
	for (uint64_t i = 0; i < size; i++)
		if (a[i] != b[i]) {
			if (first < 0)
				first = i / PAGE;
			++*nbytes;
		}
	return first;
}

/* Page p of the file is a hole (SEEK_DATA skips it). */
static bool page_is_hole(const char *path, uint64_t p)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t d = fd < 0 ? -1 : lseek(fd, (off_t)(p * PAGE), SEEK_DATA);

	if (fd >= 0)
		close(fd);
	return fd >= 0 && (d < 0 || d >= (off_t)((p + 1) * PAGE));
}

/* ---- live migrations ------------------------------------------------------ */

struct live {
	char dir[256], shm[320], out[320], partial[340], pid[16];
	uint64_t size;
	struct proc dw, rx, tx;
};

static void live_setup(struct __test_metadata *_metadata, struct live *l, uint64_t size)
{
	memset(l, 0, sizeof(*l));
	l->size = size;
	ASSERT_EQ(0, scratch_make(l->dir, sizeof(l->dir), 3 * size + 4 * MiB));
	snprintf(l->shm, sizeof(l->shm), "%s/guest.mem", l->dir);
	snprintf(l->out, sizeof(l->out), "%s/out.img", l->dir);
	snprintf(l->partial, sizeof(l->partial), "%s.partial", l->out);
}

static void live_teardown(struct live *l)
{
	proc_kill(&l->tx);
	proc_kill(&l->rx);
	if (l->dw.pid && !l->dw.exited)
		kill(l->dw.pid, SIGCONT);
	proc_kill(&l->dw);
	scratch_remove(l->dir);
}

/* `lmig dirty` on the shm file (or anon), extra options after --size. */
static void writer_start(struct __test_metadata *_metadata, struct live *l, bool anon,
			 const char *const extra[], char *mem, size_t memlen)
{
	const char *args[24] = { "--mem", anon ? "anon" : l->shm, "--size", NULL };
	char sz[32];
	int n = 4;

	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)l->size);
	args[3] = sz;
	for (; extra && *extra && n < 23; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	ASSERT_EQ(0, dirty_start(&l->dw, args, mem, memlen));
	snprintf(l->pid, sizeof(l->pid), "%d", (int)l->dw.pid);
}

/* The writer's memory now (malloc'd): the shm file, or its anon range. */
static uint8_t *source_now(const struct live *l, const char *mem)
{
	unsigned long s, e;
	uint8_t *buf;
	char path[64];
	int fd;

	if (sscanf(mem, "anon:%lx-%lx", &s, &e) != 2)
		return file_load(l->shm, l->size);
	buf = malloc(l->size);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)l->dw.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0 || pread(fd, buf, l->size, (off_t)s) != (ssize_t)l->size) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	close(fd);
	return buf;
}

/*
 * Both ends completed, the source is paused, and the committed image is
 * the paused source byte for byte.  Returns the receiver's zero pages.
 */
static uint64_t check_image(struct __test_metadata *_metadata, struct live *l, const char *mem,
			    double timeout_s)
{
	char status[32] = "", d_tx[64] = "", d_rx[64] = "";
	uint64_t zero = 0, nbytes = 0;
	uint8_t *src, *img;
	int64_t diff;

	EXPECT_EQ(0, proc_wait(&l->tx, timeout_s)) TH_LOG("lmig send still running");
	EXPECT_EQ(0, proc_wait(&l->rx, 5)) TH_LOG("lmig recv still running");
	EXPECT_EQ(0, proc_exit_code(&l->tx)) TH_LOG("send: %s", l->tx.err_log);
	EXPECT_EQ(0, proc_exit_code(&l->rx)) TH_LOG("recv: %s", l->rx.err_log);
	EXPECT_EQ(0, json_str_field(l->rx.out, "status", status, sizeof(status)));
	EXPECT_STREQ("completed", status);
	EXPECT_EQ(0, json_str_field(l->tx.out, "digest", d_tx, sizeof(d_tx)));
	EXPECT_EQ(0, json_str_field(l->rx.out, "digest", d_rx, sizeof(d_rx)));
	EXPECT_STREQ(d_tx, d_rx);
	EXPECT_EQ(0, json_str_field(l->tx.out, "source", status, sizeof(status)));
	EXPECT_STREQ("paused", status);
	EXPECT_EQ(0, json_u64_field(l->rx.out, "pages_zero", &zero));
	src = source_now(l, mem);
	img = file_load(l->out, l->size);
	EXPECT_NE(NULL, src);
	EXPECT_NE(NULL, img) TH_LOG("no %llu-byte image at %s", (unsigned long long)l->size, l->out);
	if (src && img) {
		uint64_t holes = 0, pages = 0;

		diff = first_diff(src, img, l->size, &nbytes);
		EXPECT_EQ(-1, diff) TH_LOG("%llu bytes differ from the paused source, the first in page %lld",
					   (unsigned long long)nbytes, (long long)diff);
		/* Which of the source's holes were missed, for the log. */
		for (uint64_t p = 0; diff >= 0 && p < l->size / PAGE; p++) {
			if (!memcmp(src + p * PAGE, img + p * PAGE, PAGE))
				continue;
			pages++;
			holes += !strncmp(mem, "anon:", 5) ? 0 : page_is_hole(l->shm, p);
		}
		if (diff >= 0)
			TH_LOG("%llu pages differ, %llu of them holes in the source",
			       (unsigned long long)pages, (unsigned long long)holes);
	}
	free(src);
	free(img);
	return zero;
}

static void migrate(struct __test_metadata *_metadata, struct live *l, const char *mem,
		    const char *const rx_extra[], const char *const tx_extra[])
{
	const char *args[24] = { "--pid", l->pid, "--freeze", "signal", "--no-progress" };
	int n = 5, port;

	for (; tx_extra && *tx_extra && n < 23; tx_extra++)
		args[n++] = *tx_extra;
	args[n] = NULL;
	port = recv_start(&l->rx, l->out, rx_extra, 0);
	ASSERT_GT(port, 0);
	ASSERT_EQ(0, send_start(&l->tx, mem, port, args));
}

FIXTURE(zeroed) {
	struct live l;
};

FIXTURE_SETUP(zeroed)
{
	live_setup(_metadata, &self->l, 16 * MiB);
}

FIXTURE_TEARDOWN(zeroed)
{
	live_teardown(&self->l);
}

/*
 * Another process zeroes the first 4 MiB one second into round 0 (which
 * takes four at 4 MB/s): only the scan tracker sees writes that are not
 * the workload's own, as in the report this reproduces.
 */
TEST_F(zeroed, first_4mib_zeroed_during_round_0)
{
	struct live *l = &self->l;
	static uint8_t zeros[4 * MiB];
	char mem[512];
	uint64_t zero;
	int fd;

	ASSERT_EQ(0, image_write(l->shm, IMG_RANDOM, l->size));
	writer_start(_metadata, l, false, ARGS("--rate", "0", "--no-fill"), mem, sizeof(mem));
	migrate(_metadata, l, mem, NULL, ARGS("--tracker", "scan", "--bandwidth", "4M"));
	usleep(1000 * 1000);
	fd = open(l->shm, O_WRONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(sizeof(zeros), pwrite(fd, zeros, sizeof(zeros), 0));
	close(fd);
	zero = check_image(_metadata, l, mem, 60);
	/* At least each zeroed page once, most of them after round 0. */
	EXPECT_GE(zero, 4 * MiB / PAGE);
}

FIXTURE(churn) {
	struct live l;
};

FIXTURE_VARIANT(churn) {
	const char *tracker, *pattern;
	bool anon, readback;
	bool mapped;	/* --object-writes mapped */
};

FIXTURE_VARIANT_ADD(churn, scan_shm) { .tracker = "scan", .pattern = "churn" };
FIXTURE_VARIANT_ADD(churn, scan_shm_readback) {
	.tracker = "scan", .pattern = "churn", .readback = true,
};
FIXTURE_VARIANT_ADD(churn, scan_anon) { .tracker = "scan", .pattern = "churn", .anon = true };
FIXTURE_VARIANT_ADD(churn, uffd_shm) { .tracker = "uffd", .pattern = "churn" };
FIXTURE_VARIANT_ADD(churn, uffd_anon_readback) {
	.tracker = "uffd", .pattern = "churn", .anon = true, .readback = true,
};
FIXTURE_VARIANT_ADD(churn, scan_shm_holes) { .tracker = "scan", .pattern = "holes" };
FIXTURE_VARIANT_ADD(churn, uffd_shm_holes) { .tracker = "uffd", .pattern = "holes" };
FIXTURE_VARIANT_ADD(churn, uffd_shm_holes_mapped) {
	.tracker = "uffd", .pattern = "holes", .mapped = true,
};
FIXTURE_VARIANT_ADD(churn, uffd_shm_madvise) { .tracker = "uffd", .pattern = "madvise" };
FIXTURE_VARIANT_ADD(churn, uffd_anon_madvise) {
	.tracker = "uffd", .pattern = "madvise", .anon = true,
};
FIXTURE_VARIANT_ADD(churn, uffd_shm_pwrite) { .tracker = "uffd", .pattern = "pwrite" };

FIXTURE_SETUP(churn)
{
	live_setup(_metadata, &self->l, 4 * MiB);
}

FIXTURE_TEARDOWN(churn)
{
	live_teardown(&self->l);
}

/*
 * 4 MiB churned at 3 MB/s over a 4 MB/s link, switching over only below
 * 50 ms: pre-copy runs several rounds while the workload writes most
 * pages at least once, each to the next step of zero, A, B, A (churn),
 * of a hole punched in the shm file, A (holes), of madvise() zeroing it,
 * A (madvise: MADV_REMOVE in the shm file, MADV_DONTNEED in anon), or of
 * the churn cycle with the zeroes and B written by pwrite() (pwrite).
 */
TEST_F(churn, image_is_the_paused_source)
{
	struct live *l = &self->l;
	bool uffd = !strcmp(variant->tracker, "uffd");
	const char *wx[] = { "--rate", "3M", "--pattern", variant->pattern, uffd ? "--uffd" : NULL,
			     NULL };
	char mem[512];
	uint64_t zero, written = 0;

	writer_start(_metadata, l, variant->anon, wx, mem, sizeof(mem));
	migrate(_metadata, l, mem, variant->readback ? ARGS("--verify-readback") : NULL,
		ARGS("--tracker", variant->tracker, "--bandwidth", "4M", "--downtime-ms", "50",
		     "--object-writes", variant->mapped ? "mapped" : "any"));
	zero = check_image(_metadata, l, mem, 60);
	TH_LOG("%s: %llu zero pages received", variant->tracker, (unsigned long long)zero);
	if (!variant->anon && strcmp(variant->tracker, "scan")) {
		uint64_t holed = 0, rescans = 0;

		/* The object check ran, and found what only it can see. */
		EXPECT_EQ(0, json_u64_field(l->tx.out, "pages_holed", &holed)) TH_LOG("%s", l->tx.out);
		EXPECT_EQ(0, json_u64_field(l->tx.out, "object_rescans", &rescans));
		TH_LOG("object check: %llu pages holed, %llu rescans", (unsigned long long)holed,
		       (unsigned long long)rescans);
		if (strcmp(variant->pattern, "churn") && strcmp(variant->pattern, "pwrite")) {
			EXPECT_GT(holed, 0);
		}
		if (variant->mapped) {
			EXPECT_EQ(0, rescans);
		} else if (!strcmp(variant->pattern, "pwrite")) {
			EXPECT_GT(rescans, 0);
		}
	}
	/* The fill has no zero page: these all came after round 0. */
	EXPECT_GT(zero, 0);
	if (variant->readback)
		EXPECT_NE(NULL, strstr(l->rx.out, "\"readback_ms\"")) TH_LOG("%s", l->rx.out);
	ASSERT_EQ(0, kill(l->dw.pid, SIGCONT));
	ASSERT_EQ(0, kill(l->dw.pid, SIGTERM));
	ASSERT_EQ(0, proc_wait(&l->dw, 5));
	ASSERT_EQ(0, json_u64_field(l->dw.out, "pages_written", &written)) TH_LOG("%s", l->dw.out);
	EXPECT_GT(written, l->size / PAGE / 4) TH_LOG("the workload did not churn");
}

/*
 * Another process changes the shm file while the workload (with its
 * userfaultfd, for the uffd tracker) only holds it: pwrite() of the first
 * 4 MiB one second into round 0, with zeros or new data, or ftruncate()
 * to another size.  The writes must reach the image; a size change must
 * fail the migration and leave no image.
 */
FIXTURE(other) {
	struct live l;
};

FIXTURE_VARIANT(other) {
	const char *tracker;
	enum { OTHER_ZEROS, OTHER_DATA, OTHER_GROW, OTHER_SHRINK } what;
};

FIXTURE_VARIANT_ADD(other, uffd_pwrite_zeros) { .tracker = "uffd", .what = OTHER_ZEROS };
FIXTURE_VARIANT_ADD(other, uffd_pwrite_data) { .tracker = "uffd", .what = OTHER_DATA };
FIXTURE_VARIANT_ADD(other, uffd_grown) { .tracker = "uffd", .what = OTHER_GROW };
FIXTURE_VARIANT_ADD(other, uffd_shrunk) { .tracker = "uffd", .what = OTHER_SHRINK };

FIXTURE_SETUP(other)
{
	live_setup(_metadata, &self->l, 16 * MiB);
}

FIXTURE_TEARDOWN(other)
{
	live_teardown(&self->l);
}

TEST_F(other, changes_reach_the_image_or_fail_it)
{
	struct live *l = &self->l;
	static uint8_t buf[4 * MiB];
	bool uffd = !strcmp(variant->tracker, "uffd");
	const char *wx[] = { "--rate", "0", "--no-fill", uffd ? "--uffd" : NULL, NULL };
	char mem[512];
	uint64_t zero;
	int fd;

	ASSERT_EQ(0, image_write(l->shm, IMG_RANDOM, l->size));
	writer_start(_metadata, l, false, wx, mem, sizeof(mem));
	migrate(_metadata, l, mem, NULL, ARGS("--tracker", variant->tracker, "--bandwidth", "4M"));
	usleep(1000 * 1000);
	fd = open(l->shm, O_WRONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	switch (variant->what) {
	case OTHER_ZEROS:
	case OTHER_DATA:
		memset(buf, 0, sizeof(buf));
		if (variant->what == OTHER_DATA)
			ASSERT_EQ(sizeof(buf), getrandom(buf, sizeof(buf), 0));
		ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
		close(fd);
		zero = check_image(_metadata, l, mem, 60);
		if (variant->what == OTHER_ZEROS)
			EXPECT_GE(zero, 4 * MiB / PAGE);
		if (uffd) {
			uint64_t rescans = 0;

			EXPECT_EQ(0, json_u64_field(l->tx.out, "object_rescans", &rescans));
			EXPECT_GT(rescans, 0) TH_LOG("%s", l->tx.out);
		}
		return;
	case OTHER_GROW:
	case OTHER_SHRINK:
		ASSERT_EQ(0, ftruncate(fd, variant->what == OTHER_GROW ? l->size + 4 * MiB :
							     l->size - 4 * MiB));
		close(fd);
		EXPECT_EQ(0, proc_wait(&l->tx, 60)) TH_LOG("lmig send still running");
		EXPECT_EQ(0, proc_wait(&l->rx, 10)) TH_LOG("lmig recv still running");
		EXPECT_NE(0, proc_exit_code(&l->tx)) TH_LOG("send: %s", l->tx.out);
		/* Found by a harvest, or by round 0 reading past the new end. */
		EXPECT_TRUE(strstr(l->tx.err_log, "changed size") || strstr(l->tx.err_log, "shrank"))
			TH_LOG("send: %s", l->tx.err_log);
		EXPECT_NE(0, proc_exit_code(&l->rx)) TH_LOG("recv: %s", l->rx.out);
		EXPECT_NE(0, access(l->out, F_OK)) TH_LOG("%s was committed", l->out);
		EXPECT_NE(0, access(l->partial, F_OK)) TH_LOG("%s is left", l->partial);
		return;
	}
}

/* ---- forged live streams -------------------------------------------------- */

#define NP		8
#define IMG_SIZE	((NP - 1) * PAGE + PAGE / 2)	/* the last page is partial */
#define MAXR		4

/* One channel's stream, with the counts ROUND and END frames carry. */
struct fb {
	uint8_t buf[4 * NP * PAGE];
	size_t len;
	uint64_t seq, pages, frames;
};

static void fb_frame(struct fb *b, uint16_t type, const struct lmig_page_desc *d, unsigned int nd,
		     const void *payload, size_t plen)
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(type),
		.ndesc = htole32(nd), .payload_len = htole32(plen), .seq = htole64(b->seq++),
	};

	f.checksum = htole64(wire_frame_checksum(&f, d, nd));
	memcpy(b->buf + b->len, &f, sizeof(f));
	b->len += sizeof(f);
	memcpy(b->buf + b->len, d, nd * sizeof(*d));
	b->len += nd * sizeof(*d);
	memcpy(b->buf + b->len, payload, plen);
	b->len += plen;
}

static void fb_round(struct fb *b, uint64_t round)
{
	struct lmig_round r = { .round = htole64(round), .pages = htole64(b->pages),
				.frames = htole64(b->frames) };

	fb_frame(b, LMIG_FRAME_ROUND, NULL, 0, &r, sizeof(r));
}

static void fb_end(struct fb *b, const uint8_t digest[16])
{
	struct lmig_end e = { .pages = htole64(b->pages), .frames = htole64(b->frames) };

	memcpy(e.digest, digest, 16);
	fb_frame(b, LMIG_FRAME_END, NULL, 0, &e, sizeof(e));
}

/*
 * Each round is a string with one letter per page: '.' not sent, 'z' a
 * zero page (consecutive ones as one zero run), 'a' and 'b' two random
 * contents sent raw, 'c' a compressible content sent lz4.
 */
FIXTURE(rounds) {
	char dir[256], out[320], partial[340], want_path[320], mnt[300];
	bool mounted;
	uint8_t content[3][NP * PAGE];	/* a, b, c */
	uint8_t want[NP * PAGE];
	struct proc rx;
	int fd;
};

FIXTURE_VARIANT(rounds) {
	const char *round[MAXR];
	bool readback;
	bool ramfs;	/* the output on ramfs, which cannot punch holes: zeros are written */
};

FIXTURE_VARIANT_ADD(rounds, data_then_zero) { .round = { "aaaaaaaa", "zzz.z..z" } };
FIXTURE_VARIANT_ADD(rounds, data_then_zero_readback) {
	.round = { "aaaaaaaa", "zzz.z..z" }, .readback = true,
};
FIXTURE_VARIANT_ADD(rounds, lz4_then_zero) { .round = { "cccccccc", ".zzzzzz." } };
FIXTURE_VARIANT_ADD(rounds, lz4_then_zero_readback) {
	.round = { "cccccccc", ".zzzzzz." }, .readback = true,
};
FIXTURE_VARIANT_ADD(rounds, zero_then_data_readback) {
	.round = { "zzzzzzzz", "a.b.c.a.", "z......c" }, .readback = true,
};
FIXTURE_VARIANT_ADD(rounds, a_b_a_readback) {
	.round = { "aaaaaaaa", "bbbbcccc", "aaaa.zz.", "....aaaa" }, .readback = true,
};
FIXTURE_VARIANT_ADD(rounds, whole_image_zeroed_last) {
	.round = { "aaaaaaaa", "b.c.b.c.", "zzzzzzzz" },
};
FIXTURE_VARIANT_ADD(rounds, whole_image_zeroed_last_readback) {
	.round = { "aaaaaaaa", "b.c.b.c.", "zzzzzzzz" }, .readback = true,
};
FIXTURE_VARIANT_ADD(rounds, ramfs_data_then_zero) {
	.round = { "aaaaaaaa", "zzz.z..z" }, .ramfs = true,
};
FIXTURE_VARIANT_ADD(rounds, ramfs_a_b_a_readback) {
	.round = { "aaaaaaaa", "bbbbcccc", "aaaa.zz.", "zzzzaaaz" }, .readback = true, .ramfs = true,
};

FIXTURE_SETUP(rounds)
{
	self->fd = -1;
	codec_init();
	ASSERT_EQ(0, scratch_make(self->dir, sizeof(self->dir), 1 * MiB));
	snprintf(self->out, sizeof(self->out), "%s/out.img", self->dir);
	snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	snprintf(self->want_path, sizeof(self->want_path), "%s/want.img", self->dir);
	for (int k = 0; k < 2; k++)
		ASSERT_EQ(sizeof(self->content[k]),
			  getrandom(self->content[k], sizeof(self->content[k]), 0));
	for (int p = 0; p < NP; p++)
		for (int i = 0; i < (int)PAGE; i++)
			self->content[2][p * PAGE + i] = "lmig page "[i % 10] + (i % 977 == 0) * p;
	/* Only half of the last page is in the image: the rest is sent as zeros. */
	for (int k = 0; k < 3; k++)
		memset(self->content[k] + IMG_SIZE, 0, NP * PAGE - IMG_SIZE);
}

FIXTURE_TEARDOWN(rounds)
{
	proc_kill(&self->rx);
	if (self->fd >= 0)
		close(self->fd);
	if (self->mounted)
		umount2(self->mnt, MNT_DETACH);
	scratch_remove(self->dir);
}

/* Round r of the variant into b; updates the image the stream describes. */
static void build_round(FIXTURE_DATA(rounds) *self, struct fb *b, const char *round)
{
	static uint8_t payload[NP * PAGE];
	struct lmig_page_desc d[NP];
	unsigned int nd = 0;
	size_t plen = 0;

	for (unsigned int p = 0; p < NP; p++) {
		char k = round[p];
		const uint8_t *page;

		if (k == '.')
			continue;
		if (k == 'z') {
			memset(self->want + p * PAGE, 0, PAGE);
			if (nd && le16toh(d[nd - 1].enc) == LMIG_ENC_ZERO &&
			    le64toh(d[nd - 1].index) + le32toh(d[nd - 1].len) == p) {
				d[nd - 1].len = htole32(le32toh(d[nd - 1].len) + 1);
			} else {
				d[nd++] = (struct lmig_page_desc){ .index = htole64(p),
								   .enc = htole16(LMIG_ENC_ZERO),
								   .len = htole32(1),
								   .hash = htole64(codec_zero_hash()) };
			}
			b->pages++;
			continue;
		}
		page = self->content[k - 'a'] + p * PAGE;
		memcpy(self->want + p * PAGE, page, PAGE);
		d[nd] = (struct lmig_page_desc){ .index = htole64(p), .enc = htole16(LMIG_ENC_RAW),
						 .len = htole32(PAGE),
						 .hash = htole64(codec_page_hash(page)) };
		if (k == 'c') {
			unsigned int n = codec_lz4_page(page, payload + plen);

			assert(n);
			d[nd].enc = htole16(LMIG_ENC_LZ4);
			d[nd].len = htole32(n);
			plen += n;
		} else {
			memcpy(payload + plen, page, PAGE);
			plen += PAGE;
		}
		nd++;
		b->pages++;
	}
	if (!nd)
		return;
	fb_frame(b, LMIG_FRAME_BATCH, d, nd, payload, plen);
	b->frames++;
}

/* The receiver's descriptor of its output file, opened by us for writing. */
static int open_receivers_output(const struct proc *rx, const char *dir)
{
	char path[64], link[512], fdpath[400];
	struct dirent *de;
	DIR *dp;
	int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)rx->pid);
	dp = opendir(path);
	while (dp && fd < 0 && (de = readdir(dp))) {
		ssize_t n;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		/* PATH.partial, or an unnamed file in the same directory */
		if (!strncmp(link, dir, strlen(dir)) && link[strlen(dir)] == '/')
			fd = open(fdpath, O_WRONLY | O_CLOEXEC);
	}
	if (dp)
		closedir(dp);
	return fd;
}

static void run_rounds(struct __test_metadata *_metadata, FIXTURE_DATA(rounds) *self,
		       const char *const round[], bool readback, bool tamper,
		       struct lmig_result *res)
{
	static struct fb b;
	struct hello_info hi = { .caps = LMIG_CAPS_V1 | LMIG_CAP_ROUNDS, .nchannels = 1,
				 .image_size = IMG_SIZE };
	struct lmig_hello h;
	struct lmig_hello_ack a;
	uint64_t hash[NP];
	uint8_t digest[16];
	uint32_t caps;
	int nr = 0, port;

	while (nr < MAXR && round[nr])
		nr++;
	memset(&b, 0, sizeof(b));
	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(sizeof(hi.session), getrandom(hi.session, sizeof(hi.session), 0));
	wire_hello_build(&h, &hi);
	port = recv_start(&self->rx, self->out, readback ? ARGS("--verify-readback") : NULL, 0);
	ASSERT_GT(port, 0);
	self->fd = sock_connect(port);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, sock_write_full(self->fd, &h, sizeof(h)));
	ASSERT_EQ(0, sock_read_full(self->fd, &a, sizeof(a), DEADLINE_S));
	lmig_err_clear();
	ASSERT_EQ(0, wire_ack_parse(&a, &caps)) TH_LOG("%s", lmig_errmsg());
	ASSERT_TRUE(caps & LMIG_CAP_ROUNDS);
	for (int r = 0; r < nr; r++) {
		size_t start = b.len;

		build_round(self, &b, round[r]);
		if (r == nr - 1)
			break;
		fb_round(&b, r);
		ASSERT_EQ(0, sock_write_full(self->fd, b.buf + start, b.len - start));
		/* Round r is written and acknowledged before round r + 1 goes out. */
		ASSERT_EQ(0, sock_read_full(self->fd, res, sizeof(*res), DEADLINE_S))
			TH_LOG("round %d not acknowledged: %s", r, self->rx.err);
		ASSERT_EQ(LMIG_ROUND_ACK_MAGIC, le32toh(res->magic)) TH_LOG("%.96s", res->reason);
		if (tamper && r == 0) {
			int fd = open_receivers_output(&self->rx, self->dir);
			static const char junk[] = "written behind the receiver's back";

			ASSERT_GE(fd, 0) TH_LOG("the receiver's output is not open in %s", self->dir);
			ASSERT_EQ(sizeof(junk), pwrite(fd, junk, sizeof(junk), 2 * PAGE + 100));
			close(fd);
		}
		b.len = start = 0;
	}
	for (int p = 0; p < NP; p++)
		hash[p] = codec_page_hash(self->want + p * PAGE);
	codec_digest(hash, NP, digest);
	fb_end(&b, digest);
	ASSERT_EQ(0, sock_write_full(self->fd, b.buf, b.len));
	ASSERT_EQ(0, sock_read_full(self->fd, res, sizeof(*res), DEADLINE_S))
		TH_LOG("no verdict from the receiver");
	ASSERT_EQ(0, proc_wait(&self->rx, DEADLINE_S));
	EXPECT_EQ(LMIG_RESULT_MAGIC, le32toh(res->magic));
	ASSERT_EQ(0, file_write(self->want_path, self->want, IMG_SIZE));
}

TEST_F(rounds, output_is_what_the_stream_means)
{
	struct lmig_result res;

	if (variant->ramfs) {
		if (geteuid() != 0)
			SKIP(return, "mounting a ramfs needs root");
		/* A private mount namespace: the ramfs goes away with this test. */
		if (unshare(CLONE_NEWNS) == 0)
			mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
		snprintf(self->mnt, sizeof(self->mnt), "%s/ram", self->dir);
		ASSERT_EQ(0, mkdir(self->mnt, 0755));
		if (mount("lmig-selftest", self->mnt, "ramfs", 0, "mode=0755"))
			SKIP(return, "cannot mount a ramfs here: %s", strerror(errno));
		self->mounted = true;
		snprintf(self->out, sizeof(self->out), "%s/out.img", self->mnt);
		snprintf(self->partial, sizeof(self->partial), "%s.partial", self->out);
	}

	run_rounds(_metadata, self, variant->round, variant->readback, false, &res);
	EXPECT_EQ(LMIG_ST_OK, le32toh(res.status)) TH_LOG("verdict: %.96s", res.reason);
	EXPECT_EQ(0, proc_exit_code(&self->rx)) TH_LOG("recv: %s", self->rx.err_log);
	EXPECT_EQ(1, files_equal(self->want_path, self->out))
		TH_LOG("the output is not what the stream's last rounds say");
	EXPECT_FALSE(path_exists(self->partial));
	if (variant->readback)
		EXPECT_NE(NULL, strstr(self->rx.out, "\"readback_ms\"")) TH_LOG("%s", self->rx.out);
}

FIXTURE(readback) {
	FIXTURE_DATA(rounds) r;
};

FIXTURE_VARIANT(readback) {
	bool readback;
};

FIXTURE_VARIANT_ADD(readback, on) { .readback = true };
FIXTURE_VARIANT_ADD(readback, off) { .readback = false };

FIXTURE_SETUP(readback)
{
	self->r.fd = -1;
	codec_init();
	ASSERT_EQ(0, scratch_make(self->r.dir, sizeof(self->r.dir), 1 * MiB));
	snprintf(self->r.out, sizeof(self->r.out), "%s/out.img", self->r.dir);
	snprintf(self->r.partial, sizeof(self->r.partial), "%s.partial", self->r.out);
	snprintf(self->r.want_path, sizeof(self->r.want_path), "%s/want.img", self->r.dir);
	ASSERT_EQ(sizeof(self->r.content[0]),
		  getrandom(self->r.content[0], sizeof(self->r.content[0]), 0));
	memset(self->r.content[0] + IMG_SIZE, 0, NP * PAGE - IMG_SIZE);
}

FIXTURE_TEARDOWN(readback)
{
	proc_kill(&self->r.rx);
	if (self->r.fd >= 0)
		close(self->r.fd);
	scratch_remove(self->r.dir);
}

/*
 * Page 2 of the output is changed once round 0 is written; the stream is
 * honest.  The hashes of what was written still match the digest: only a
 * read of the file can tell, and --verify-readback fails the commit.
 */
TEST_F(readback, output_changed_after_its_write)
{
	static const char *const round[] = { "aaaaaaaa", "........", NULL };
	struct lmig_result res;

	run_rounds(_metadata, &self->r, round, variant->readback, true, &res);
	if (!variant->readback) {
		/* What --verify-readback is for: the digest alone passes. */
		EXPECT_EQ(LMIG_ST_OK, le32toh(res.status)) TH_LOG("verdict: %.96s", res.reason);
		EXPECT_EQ(0, files_equal(self->r.want_path, self->r.out));
		return;
	}
	TH_LOG("recv: %.*s", (int)strcspn(self->r.rx.err, "\n"), self->r.rx.err);
	EXPECT_EQ(LMIG_ST_DIGEST, le32toh(res.status)) TH_LOG("verdict: %.96s", res.reason);
	EXPECT_EQ(1, proc_exit_code(&self->r.rx));
	EXPECT_TRUE(one_line(self->r.rx.err)) TH_LOG("stderr: '%s'", self->r.rx.err_log);
	EXPECT_NE(NULL, strstr(self->r.rx.err, "page 2 differs")) TH_LOG("%s", self->r.rx.err_log);
	EXPECT_FALSE(path_exists(self->r.out)) TH_LOG("a changed image was committed");
	EXPECT_FALSE(path_exists(self->r.partial));
}

TEST_HARNESS_MAIN

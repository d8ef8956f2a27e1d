// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig qemu's two decisions about RAM blocks, on exact inputs:
 *
 *   qmem_parse (host/qmp_memdev.c)   which of query-memdev's backends are
 *                                    the guest's shared RAM: QEMU 7.2's own
 *                                    replies (one memfd; a NUMA guest with
 *                                    a private and two shared backends; plain
 *                                    -m, nothing shared), entries without an
 *                                    id or size, 17 shared, not an array
 *   qlink_match (live/qemu_link.c)   the destination's answer to a HELLO:
 *                                    blocks matched by id and size in the
 *                                    source's order; a size or an id that
 *                                    differs names the source's block; a
 *                                    shared backend of the destination the
 *                                    source does not send names that one
 */
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"

#include "host/qmp_memdev.h"
#include "live/qemu_link.h"

static enum qmem_why parse(const char *json, struct qmem_block *b, unsigned int *n)
{
	return qmem_parse(json, strlen(json), b, n);
}

TEST(qemu72_one_memfd)
{
	/* QEMU 7.2, -object memory-backend-memfd,id=m0,size=64M,share=on */
	const char *r = "[{\"share\": true, \"reserve\": true, \"prealloc\": false,"
			" \"host-nodes\": [], \"size\": 67108864, \"merge\": true, \"dump\": true,"
			" \"policy\": \"default\", \"id\": \"m0\"}]";
	struct qmem_block b[QMEM_MAX];
	unsigned int n = 99;

	ASSERT_EQ(QMEM_OK, parse(r, b, &n));
	ASSERT_EQ(1, n);
	EXPECT_STREQ("m0", b[0].id);
	EXPECT_EQ(64ULL << 20, b[0].size);
	EXPECT_STREQ("", b[0].path);
}

TEST(numa_private_and_shared)
{
	const char *r = "[{\"share\": false, \"size\": 134217728, \"id\": \"priv\", \"policy\":"
			" \"default\", \"host-nodes\": []},"
			" {\"share\": true, \"size\": 167772160, \"id\": \"ram0\"},"
			" {\"share\": true, \"size\": 100663296, \"id\": \"ram1\"}]";
	struct qmem_block b[QMEM_MAX];
	unsigned int n;

	ASSERT_EQ(QMEM_OK, parse(r, b, &n));
	ASSERT_EQ(2, n);
	EXPECT_STREQ("ram0", b[0].id);
	EXPECT_EQ(160ULL << 20, b[0].size);
	EXPECT_STREQ("ram1", b[1].id);
	EXPECT_EQ(96ULL << 20, b[1].size);
}

TEST(nothing_shared)
{
	/* QEMU 7.2 with plain -m 64: its implicit backend is not shared. */
	const char *r = "[{\"share\": false, \"reserve\": true, \"size\": 67108864, \"id\": \"pc.ram\"}]";
	struct qmem_block b[QMEM_MAX];
	unsigned int n = 99;

	EXPECT_EQ(QMEM_NO_SHARED, parse(r, b, &n));
	EXPECT_EQ(0, n);
	EXPECT_EQ(QMEM_NO_SHARED, parse("[]", b, &n));
}

TEST(incomplete_entries_skipped)
{
	const char *r = "[{\"share\": true, \"size\": 4096},"
			" {\"share\": true, \"id\": \"nosize\"},"
			" {\"share\": true, \"id\": \"zero\", \"size\": 0},"
			" {\"share\": \"yes\", \"id\": \"str\", \"size\": 4096},"
			" {\"share\": true, \"id\": \"ok\", \"size\": 8192}]";
	struct qmem_block b[QMEM_MAX];
	unsigned int n;

	ASSERT_EQ(QMEM_OK, parse(r, b, &n));
	ASSERT_EQ(1, n);
	EXPECT_STREQ("ok", b[0].id);
	EXPECT_EQ(8192, b[0].size);
}

/* An array of count shared backends r0, r1, ... */
static const char *shared_array(char *r, size_t cap, int count)
{
	size_t len = snprintf(r, cap, "[");

	for (int i = 0; i < count; i++)
		len += snprintf(r + len, cap - len, "%s{\"share\": true, \"id\": \"r%d\","
				" \"size\": 4096}", i ? "," : "", i);
	snprintf(r + len, cap - len, "]");
	return r;
}

TEST(too_many_and_not_an_array)
{
	char r[4096];
	struct qmem_block b[QMEM_MAX];
	unsigned int n;

	EXPECT_EQ(QMEM_TOO_MANY, parse(shared_array(r, sizeof(r), QMEM_MAX + 1), b, &n));
	/* Exactly QMEM_MAX is fine. */
	EXPECT_EQ(QMEM_OK, parse(shared_array(r, sizeof(r), QMEM_MAX), b, &n));
	EXPECT_EQ(QMEM_MAX, n);
	EXPECT_EQ(QMEM_QMP, parse("{\"id\": \"m0\"}", b, &n));
	EXPECT_EQ(QMEM_QMP, parse("[{\"share\": true,", b, &n));
}

static struct qmem_block blk(const char *id, uint64_t size, const char *path)
{
	struct qmem_block b = { .size = size };

	snprintf(b.id, sizeof(b.id), "%s", id);
	snprintf(b.path, sizeof(b.path), "%s", path);
	return b;
}

static struct qlink_block theirs_blk(const char *id, uint64_t size)
{
	struct qlink_block b = { .size = size };

	snprintf(b.id, sizeof(b.id), "%s", id);
	return b;
}

TEST(match_in_the_sources_order)
{
	struct qmem_block mine[2] = { blk("ram1", 96 << 20, "/dev/shm/b"),
				      blk("ram0", 160 << 20, "/dev/shm/a") };
	struct qlink_block theirs[2] = { theirs_blk("ram0", 160 << 20), theirs_blk("ram1", 96 << 20) };
	struct qmem_block out[QMEM_MAX];

	ASSERT_EQ(-1, qlink_match(mine, 2, theirs, 2, out));
	EXPECT_STREQ("/dev/shm/a", out[0].path);
	EXPECT_STREQ("/dev/shm/b", out[1].path);
}

TEST(mismatch_names_the_block)
{
	struct qmem_block mine[2] = { blk("ram0", 160 << 20, "a"), blk("ram1", 96 << 20, "b") };
	struct qlink_block size[2] = { theirs_blk("ram0", 160 << 20), theirs_blk("ram1", 97 << 20) };
	struct qlink_block id[1] = { theirs_blk("pc.ram", 160 << 20) };
	struct qlink_block one[1] = { theirs_blk("ram1", 96 << 20) };
	struct qlink_block twice[2] = { theirs_blk("ram0", 160 << 20), theirs_blk("ram0", 160 << 20) };
	struct qmem_block out[QMEM_MAX];

	EXPECT_EQ(1, qlink_match(mine, 2, size, 2, out));	/* theirs[1]'s size */
	EXPECT_EQ(0, qlink_match(mine, 2, id, 1, out));	/* theirs[0]'s id */
	/* The source sends ram1 only: this side's ram0 (mine[0]) would hold nothing. */
	EXPECT_EQ(1 + 0, qlink_match(mine, 2, one, 1, out));
	/* A block named twice cannot take one backend twice. */
	EXPECT_EQ(1, qlink_match(mine, 2, twice, 2, out));
}

TEST_HARNESS_MAIN

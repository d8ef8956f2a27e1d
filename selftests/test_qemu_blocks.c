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
 *   qmem_mtree_gpas, qmem_hva_parse, qmem_maps_find (host/qmp_memdev.c)
 *                                    which memfd is which backend's: QEMU
 *                                    7.2's `info mtree -f` and `gpa2hva`
 *                                    texts and a /proc/PID/maps of it with
 *                                    two 16 MiB memfd backends, region
 *                                    names that only begin alike, replies
 *                                    for other regions or none, anonymous
 *                                    memory, addresses at the edges, lines
 *                                    blank or cut short
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

/*
 * QEMU 7.2, -m 32 with two NUMA nodes, each a 16 MiB memfd backend
 * (ram0, ram1), `info mtree -f` (parts of it; the memory flat view is
 * listed for each address space that has it), and its /proc/PID/maps.
 */
static const char mtree72[] =
	"FlatView #0\n"
	" AS \"I/O\", root: io\n"
	" Root memory region: io\n"
	"  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan\n"
	"  0000000000000010-000000000000001f (prio 0, i/o): io @0000000000000010\n"
	"\n"
	"FlatView #1\n"
	" AS \"memory\", root: system\n"
	" AS \"cpu-memory-0\", root: system\n"
	" Root memory region: system\n"
	"  0000000000000000-000000000009ffff (prio 0, ram): ram0\n"
	"  00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem\n"
	"  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom\n"
	"  0000000000100000-0000000000ffffff (prio 0, ram): ram0 @0000000000100000\n"
	"  0000000001000000-0000000001ffffff (prio 0, ram): ram1\n"
	"  00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram\n"
	"  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n"
	"\n"
	"FlatView #2\n"
	" AS \"pci_bridge_memory\", root: bus master container\n"
	"  0000000000000000-000000000009ffff (prio 0, ram): ram0\n"
	"  0000000001000000-0000000001ffffff (prio 0, ram): ram1 KVM\n";

static const char maps72[] =
	"55d0c3c00000-55d0c3f4e000 r--p 00000000 fe:01 11083905                   /usr/bin/qemu-system-x86_64\n"
	"7fba95ffd000-7fba95ffe000 ---p 00000000 00:00 0 \n"
	"7fba95ffe000-7fba96ffe000 rw-s 00000000 00:01 6644581                    /memfd:memory-backend-memfd (deleted)\n"
	"7fba96ffe000-7fba96fff000 ---p 00000000 00:00 0 \n"
	"7fba96fff000-7fba97fff000 rw-s 00000000 00:01 6644580                    /memfd:memory-backend-memfd (deleted)\n"
	"7fff1b9f5000-7fff1ba16000 rw-p 00000000 00:00 0                          [stack]";

TEST(mtree_ranges_of_a_region)
{
	uint64_t g[8];

	/* ram0 twice in the memory flat view, then once in another. */
	ASSERT_EQ(3, qmem_mtree_gpas(mtree72, "ram0", g, 8));
	EXPECT_EQ(0, g[0]);
	EXPECT_EQ(0x100000, g[1]);
	EXPECT_EQ(0, g[2]);
	ASSERT_EQ(2, qmem_mtree_gpas(mtree72, "ram1", g, 8));
	EXPECT_EQ(0x1000000, g[0]);
	EXPECT_EQ(0x1000000, g[1]);	/* " KVM" after the name */
	/* Only max are stored; all are counted. */
	EXPECT_EQ(3, qmem_mtree_gpas(mtree72, "ram0", g, 1));
	EXPECT_EQ(0, g[0]);
	/* A name is whole: ram is none of ram0's, ram10 not ram1; roms and i/o are not RAM. */
	EXPECT_EQ(0, qmem_mtree_gpas(mtree72, "ram", g, 8));
	EXPECT_EQ(0, qmem_mtree_gpas(mtree72, "ram10", g, 8));
	EXPECT_EQ(0, qmem_mtree_gpas(mtree72, "pc.rom", g, 8));
	EXPECT_EQ(0, qmem_mtree_gpas(mtree72, "io", g, 8));
	EXPECT_EQ(1, qmem_mtree_gpas(mtree72, "vga.vram", g, 8));
	EXPECT_EQ(0, qmem_mtree_gpas(mtree72, "", g, 8));
	EXPECT_EQ(0, qmem_mtree_gpas("", "ram0", g, 8));
	/* A line is scanned on its own: a blank one before a range does not count it twice. */
	EXPECT_EQ(1, qmem_mtree_gpas("\n  0000000000000000-000000000009ffff (prio 0, ram): ram0\n",
				     "ram0", g, 8));
	EXPECT_EQ(0, qmem_mtree_gpas("  0000000000000000-000000000009ffff (prio 0, ram):\nram0\n",
				     "ram0", g, 8));
}

TEST(gpa2hva_names_the_region)
{
	uint64_t hva = 1;

	ASSERT_EQ(0, qmem_hva_parse("Host virtual address for 0x1000000 (ram1) is 0x7fba95ffe000\r\n",
				    "ram1", &hva));
	EXPECT_EQ(0x7fba95ffe000ULL, hva);
	ASSERT_EQ(0, qmem_hva_parse("Host virtual address for 0x0 (ram0) is 0x7fba96fff000",
				    "ram0", &hva));
	EXPECT_EQ(0x7fba96fff000ULL, hva);
	hva = 1;
	/* Another region found there: not this backend's address. */
	EXPECT_EQ(-1, qmem_hva_parse("Host virtual address for 0x1000000 (ram1) is 0x7fba95ffe000\r\n",
				     "ram", &hva));
	EXPECT_EQ(-1, qmem_hva_parse("Host virtual address for 0x1000000 (ram10) is 0x7fba95ffe000\r\n",
				     "ram1", &hva));
	/* QEMU 7.2's answers where there is no RAM. */
	EXPECT_EQ(-1, qmem_hva_parse("Memory at address 0xfee00000 is not RAM\r\n", "ram0", &hva));
	EXPECT_EQ(-1, qmem_hva_parse("No memory is mapped at address 0x100000000\r\n", "ram0",
				     &hva));
	/* No number, or something after it. */
	EXPECT_EQ(-1, qmem_hva_parse("Host virtual address for 0x0 (ram0) is 0x", "ram0", &hva));
	EXPECT_EQ(-1, qmem_hva_parse("Host virtual address for 0x0 (ram0) is 0x12zz", "ram0", &hva));
	EXPECT_EQ(1, hva);
}

TEST(maps_inode_at_an_address)
{
	unsigned int ma = 9, mi = 9;
	uint64_t ino = 9;

	ASSERT_EQ(0, qmem_maps_find(maps72, 0x7fba95ffe000ULL, &ma, &mi, &ino));
	EXPECT_EQ(0, ma);
	EXPECT_EQ(1, mi);
	EXPECT_EQ(6644581, ino);
	/* The last byte of the other memfd's mapping. */
	ASSERT_EQ(0, qmem_maps_find(maps72, 0x7fba97ffefffULL, &ma, &mi, &ino));
	EXPECT_EQ(6644580, ino);
	ASSERT_EQ(0, qmem_maps_find(maps72, 0x55d0c3c00010ULL, &ma, &mi, &ino));
	EXPECT_EQ(0xfe, ma);
	EXPECT_EQ(1, mi);
	EXPECT_EQ(11083905, ino);
	ino = 9;
	/* A range's end is outside it; a guard page and the stack are no file's. */
	EXPECT_EQ(-1, qmem_maps_find(maps72, 0x7fba97fff000ULL, &ma, &mi, &ino));
	EXPECT_EQ(-1, qmem_maps_find(maps72, 0x7fba96ffe000ULL, &ma, &mi, &ino));
	EXPECT_EQ(-1, qmem_maps_find(maps72, 0x7fff1ba15fffULL, &ma, &mi, &ino));
	EXPECT_EQ(-1, qmem_maps_find(maps72, 0x1000, &ma, &mi, &ino));
	EXPECT_EQ(-1, qmem_maps_find("", 0x1000, &ma, &mi, &ino));
	/* A line cut short does not take its inode from the next one. */
	EXPECT_EQ(-1, qmem_maps_find("1000-2000 rw-s 00000000 00:01\n42 /memfd:x\n", 0x1000, &ma, &mi,
				     &ino));
	EXPECT_EQ(9, ino);
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

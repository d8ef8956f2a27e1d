// SPDX-License-Identifier: GPL-2.0-only
/*
 * The texts `lmig qemu send` reads to find a guest's RAM blocks
 * (user/host/qmp_memdev.c): query-memdev's reply, HMP `info mtree -f`,
 * HMP `gpa2hva`, and /proc/PID/maps.  QEMU and /proc are local, but a
 * QEMU is a guest's process: whatever it answers must give a block
 * list within bounds or a refusal, never a crash or a read out of range.
 *
 * Input: the first byte picks the parser (mod 4), the rest is its text.
 * Besides surviving the sanitizers: qmem_parse gives at most QMEM_MAX
 * blocks, each with a NUL-terminated id and a size above zero;
 * qmem_mtree_gpas fills no more than its room; qmem_hva_parse and
 * qmem_maps_find touch their outputs only when they return 0, and
 * qmem_maps_find's inode is then not zero.  The seeds
 * (corpus/fuzz_qmem/) are QEMU 7.2's and Linux 6.18's own texts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/qmp_memdev.h"
#include "lib/err.h"

#define ROOM	4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qmem_block b[QMEM_MAX];
	uint64_t gpa[ROOM + 1], hva = 0x5a5a, ino = 0x5a5a;
	unsigned int n = 0, major = 0x5a5a, minor = 0x5a5a;
	char *text;
	int got;

	if (!size)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;
	switch (data[0] % 4) {
	case 0:
		if (qmem_parse(text, size - 1, b, &n) == QMEM_OK) {
			if (!n || n > QMEM_MAX)
				abort();
			for (unsigned int i = 0; i < n; i++)
				if (!memchr(b[i].id, 0, sizeof(b[i].id)) || !b[i].size)
					abort();
		} else if (n > QMEM_MAX) {
			abort();
		}
		break;
	case 1:
		gpa[ROOM] = 0x5a5a;
		got = qmem_mtree_gpas(text, "ram0", gpa, ROOM);
		if (got < 0 || gpa[ROOM] != 0x5a5a)
			abort();
		break;
	case 2:
		if (qmem_hva_parse(text, "ram0", &hva) && hva != 0x5a5a)
			abort();
		break;
	case 3:
		if (qmem_maps_find(text, 0x7f0000000000ULL, &major, &minor, &ino)) {
			if (major != 0x5a5a || minor != 0x5a5a || ino != 0x5a5a)
				abort();
		} else if (!ino) {
			abort();
		}
		break;
	}
	free(text);
	lmig_err_clear();
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A QEMU guest's shared RAM, found over QMP: the memory backends
 * (query-memdev) with share=on, which QEMU's x-ignore-shared leaves out
 * of its own migration stream, and for each the file this host can open
 * to read or write it in place:
 *
 *   memory-backend-memfd   /proc/PID/fd/N: the descriptor QEMU holds,
 *                          named "memfd:memory-backend-memfd", of the
 *                          backend's size (hugetlb=on too)
 *   memory-backend-file    its mem-path (qom-get): a /dev/shm file, a
 *                          file on hugetlbfs
 *
 * QEMU names every memfd alike, so two memfd backends of one size cannot
 * be told apart from outside: that is refused (QMEM_AMBIGUOUS) rather
 * than guessed.  Backends without share=on are QEMU's to migrate.
 */
#ifndef LMIG_QMP_MEMDEV_H
#define LMIG_QMP_MEMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qmp;

#define QMEM_MAX	16

enum qmem_kind { QMEM_MEMFD, QMEM_FILE };

struct qmem_block {
	char id[64];		/* the backend's id (-object ...,id=ID) */
	uint64_t size;		/* bytes */
	enum qmem_kind kind;
	bool hugetlb;		/* memfd with hugetlb=on, or a file on hugetlbfs */
	char path[512];		/* what to open: /proc/PID/fd/N or the mem-path */
};

enum qmem_why {
	QMEM_OK,
	QMEM_NO_SHARED,		/* no backend with share=on (or no backend at all) */
	QMEM_AMBIGUOUS,		/* two memfd backends of one size: which fd is which? */
	QMEM_NO_FD,		/* a memfd backend's descriptor is not among QEMU's */
	QMEM_TOO_MANY,		/* more than QMEM_MAX shared backends */
	QMEM_UNKNOWN_TYPE,	/* a shared backend that is neither memfd nor file */
	QMEM_QMP,		/* QMP failed: lmig_err() */
};

/*
 * The pure part: query-memdev's "return" value (JSON text, len bytes)
 * into b[0..*n), the backends with share=on that have an id and a size,
 * in QEMU's order (kind and path not filled in).  QMEM_OK,
 * QMEM_NO_SHARED, QMEM_TOO_MANY, or QMEM_QMP for a reply that is not a
 * JSON array.
 */
enum qmem_why qmem_parse(const char *json, size_t len, struct qmem_block *b, unsigned int *n);

/*
 * The shared backends of the QEMU behind q (q->pid must be known) into
 * b[0..*n).  QMEM_OK, or why not; detail names the backend concerned.
 */
enum qmem_why qmem_list(struct qmp *q, struct qmem_block *b, unsigned int *n,
			char *detail, size_t dlen);

#endif

/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A QEMU guest's shared RAM, found over QMP: the memory backends
 * (query-memdev) with share=on, which QEMU's x-ignore-shared leaves out
 * of its own migration stream, and for each the file this host can open
 * to read or write it in place:
 *
 *   memory-backend-memfd   /proc/PID/fd/N: the descriptor QEMU holds
 *                          and maps for it (hugetlb=on too)
 *   memory-backend-file    its mem-path (qom-get): a /dev/shm file, a
 *                          file on hugetlbfs
 *
 * QEMU names every memfd alike ("memfd:memory-backend-memfd"): a memfd
 * backend's descriptor is the only one of its size, or, of several, the
 * one whose inode QEMU maps where it keeps the backend: `info mtree -f`
 * gives a guest address of the backend's region, `gpa2hva` QEMU's host
 * address for it (naming the region it found), /proc/PID/maps the inode
 * mapped there, which is the descriptor's (fstat).  A backend of such a
 * size that no guest address maps is refused (QMEM_AMBIGUOUS) rather than
 * guessed.
 * Backends without share=on are QEMU's to migrate.
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
	QMEM_AMBIGUOUS,		/* two memfds of a backend's size, and QEMU does not
				 * show which one it maps for it */
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
 * The pure parts of telling memfds apart, on the texts QEMU 7.2 and
 * /proc give:
 *
 * qmem_mtree_gpas: HMP `info mtree -f`'s ranges of RAM region id
 * ("  START-END (prio P, ram): ID[ @OFFSET]..."), their start addresses
 * into gpa[0..max) in the text's order (the same range is listed once for
 * each flat view); returns how many there are.
 *
 * qmem_hva_parse: HMP `gpa2hva ADDR`'s reply ("Host virtual address for
 * ADDR (REGION) is 0xHVA") into *hva when REGION is id.  0, or -1.
 *
 * qmem_maps_find: the /proc/PID/maps line whose range holds addr: its
 * device (major:minor) and inode.  0, or -1 (no line, or no file).
 */
int qmem_mtree_gpas(const char *text, const char *id, uint64_t *gpa, int max);
int qmem_hva_parse(const char *reply, const char *id, uint64_t *hva);
int qmem_maps_find(const char *maps, uint64_t addr, unsigned int *major, unsigned int *minor,
		   uint64_t *ino);

/*
 * The shared backends of the QEMU behind q (q->pid must be known) into
 * b[0..*n).  QMEM_OK, or why not; detail names the backend concerned.
 */
enum qmem_why qmem_list(struct qmp *q, struct qmem_block *b, unsigned int *n,
			char *detail, size_t dlen);

#endif

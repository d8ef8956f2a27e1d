/* SPDX-License-Identifier: GPL-2.0-only */
/* The memory image: a source read in place, and an output that appears only when verified. */
#ifndef LMIG_IMAGE_H
#define LMIG_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

struct src_image {
	int fd;
	uint64_t size, npages;
	bool in_memory;		/* tmpfs, memfd or hugetlbfs: reads never wait for a disk */
};

struct dst_image {
	int fd;
	char *path;		/* final name */
	char *tmp;		/* PATH.partial, renamed on commit */
	uint64_t size;
};

/* Regular file, tmpfs/shm file or /proc/PID/fd/N of a memfd. */
int src_image_open(struct src_image *im, const char *path);
void src_image_close(struct src_image *im);

int dst_image_create(struct dst_image *im, const char *path, uint64_t size);
/* fdatasync (if sync), rename to the final name, sync the directory. */
int dst_image_commit(struct dst_image *im, int sync);
/* Remove the partial file: a failed migration leaves nothing behind. */
void dst_image_abort(struct dst_image *im);

#endif

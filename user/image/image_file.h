/* SPDX-License-Identifier: GPL-2.0-only */
/* The memory image: a source read in place, and an output that appears only when verified. */
#ifndef LMIG_IMAGE_FILE_H
#define LMIG_IMAGE_FILE_H

#include <stdbool.h>
#include <stdint.h>

struct src_image {
	int fd;
	uint64_t size, npages;
	bool in_memory;		/* tmpfs, memfd or hugetlbfs: reads never wait for a disk */
};

/*
 * The output: an unnamed O_TMPFILE in PATH's directory, linked as PATH
 * only by the commit (where the filesystem has no O_TMPFILE, a new
 * PATH.partial created with O_EXCL, renamed by the commit).  Names are
 * resolved in the directory opened once, never through a symbolic link.
 */
struct dst_image {
	int fd;
	int dfd;		/* PATH's directory */
	char *path;		/* final name, as given */
	char *name;		/* its last component, in dfd */
	char *tmp;		/* the image as messages name it */
	char *partial;		/* a name in dfd to remove on failure, or NULL */
	int err;		/* errno of a failed create */
	bool not_regular;	/* it failed because PATH is not a regular file */
	bool in_place;		/* PATH itself is written: no rename, nothing removed */
	uint64_t size;
};

/* Regular file, tmpfs/shm file or /proc/PID/fd/N of a memfd. */
int src_image_open(struct src_image *im, const char *path);
void src_image_close(struct src_image *im);

/*
 * Create the output for an image of size bytes.  Refuses an existing PATH
 * that is not a regular file.  Returns 0; -2 when the filesystem has less
 * than size bytes free (nothing created); -1 on other errors.  Both set
 * lmig_err() and im->err (and im->not_regular).
 */
int dst_image_create(struct dst_image *im, const char *path, uint64_t size);
/*
 * The output written in place: PATH exists, is exactly size bytes, and
 * is written where it is (the file a destination QEMU maps as guest RAM,
 * /proc/PID/fd/N of its memfd).  Nothing is renamed or removed; a failed
 * migration leaves it partly written.  0, or -1 with lmig_err().
 */
int dst_image_open_in_place(struct dst_image *im, const char *path, uint64_t size);
/* fdatasync (if sync), give the image its final name, sync the directory. */
int dst_image_commit(struct dst_image *im, int sync);
/* Drop the image: a failed migration leaves nothing behind. */
void dst_image_abort(struct dst_image *im);

#endif

// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig dirty --disk-write PATH`: a thread that writes to a file on disk
 * while the writer dirties memory, standing in for a guest that also does
 * disk I/O (QEMU's I/O threads writing its disk image).  It is what the
 * I/O half of `lmig send --throttle` acts on.
 *
 * The writes bypass the page cache (O_DIRECT, 1 MiB each, cycling over
 * the first DISK_SPAN bytes of the file): a buffered write is written back
 * later by the kernel's flusher threads, which cgroup v1's blkio throttle
 * cannot charge to the writer, and whose timing would make the measured
 * rate say little.  File systems without O_DIRECT (tmpfs) are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "workload/dirty.h"
#include "lib/err.h"

#define DISK_BLOCK	(1024 * 1024)
#define DISK_SPAN	(64ULL * 1024 * 1024)

struct disk_writer {
	pthread_t th;
	int fd;
	uint64_t rate;			/* bytes per second, 0 = as fast as the disk takes them */
	void *buf;
	atomic_bool stop;
	atomic_int tid;
	atomic_uint_fast64_t bytes;
	int err;			/* errno of a failed write */
};

static struct disk_writer dw = { .fd = -1 };

static void *disk_main(void *arg)
{
	double t0 = now_s();
	uint64_t off = 0;

	atomic_store(&dw.tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&dw.stop)) {
		ssize_t n;

		if (dw.rate && atomic_load(&dw.bytes) > (now_s() - t0) * dw.rate) {
			nanosleep(&(struct timespec){ .tv_nsec = 2 * 1000 * 1000 }, NULL);
			continue;
		}
		n = pwrite(dw.fd, dw.buf, DISK_BLOCK, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			dw.err = errno;
			break;
		}
		atomic_fetch_add(&dw.bytes, (uint64_t)n);
		off = (off + DISK_BLOCK) % DISK_SPAN;
	}
	return NULL;
}

int dirty_disk_start(const char *path, uint64_t rate)
{
	sigset_t all, old;
	struct stat sb;

	dw.fd = open(path, O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (dw.fd < 0)
		return lmig_err_errno(errno, "--disk-write: cannot open %s with O_DIRECT", path);
	if (fstat(dw.fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(dw.fd);
		dw.fd = -1;
		return lmig_err("--disk-write: %s is not a regular file", path);
	}
	if (posix_memalign(&dw.buf, 4096, DISK_BLOCK)) {
		close(dw.fd);
		dw.fd = -1;
		return lmig_err("out of memory");
	}
	memset(dw.buf, 0x5a, DISK_BLOCK);
	/* One write now, so a file system that takes no O_DIRECT fails here, not later. */
	if (pwrite(dw.fd, dw.buf, DISK_BLOCK, 0) != DISK_BLOCK) {
		int e = errno;

		dirty_disk_stop(NULL);
		return lmig_err_errno(e, "--disk-write: cannot write %s with O_DIRECT", path);
	}
	dw.rate = rate;
	atomic_store(&dw.stop, false);
	atomic_store(&dw.bytes, 0);
	/* Signals stay with the memory writer. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&dw.th, NULL, disk_main, NULL)) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		dirty_disk_stop(NULL);
		return lmig_err("cannot start the disk writer thread");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

int dirty_disk_stop(struct dirty_stats *st)
{
	int ret = 0;

	if (dw.fd < 0)
		return 0;
	if (st) {
		atomic_store(&dw.stop, true);
		pthread_join(dw.th, NULL);
		st->disk_bytes = atomic_load(&dw.bytes);
		st->disk_tid = atomic_load(&dw.tid);
		if (dw.err)
			ret = lmig_err_errno(dw.err, "--disk-write: a write failed");
	}
	close(dw.fd);
	dw.fd = -1;
	free(dw.buf);
	dw.buf = NULL;
	return ret;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The writers of test_nolost (see its top comment for the cases): a
 * process that maps a memfd and writes through mappings it changes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>

#include "lib/uapi_compat.h"
#include "lib/nolost_writer.h"

#define PAGE		NW_PAGE
#define WIN		NW_WIN

const char *const wcase_names[] = { "shortlived", "newmap", "dontneed", "mremap", "fork",
					   "uring", "pageout", "vfork" };

int wcase_of(const char *s)
{
	for (unsigned int i = 0; i < sizeof(wcase_names) / sizeof(wcase_names[0]); i++)
		if (!strcmp(s, wcase_names[i]))
			return i;
	return -1;
}

volatile uint64_t *wcount;

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

/*
 * One write of a page, in turn: to zero, to pattern A, to pattern B (so
 * A, B, A: back to what may have been sent), and to content never seen
 * before; a zero page then changes from zero.
 */
static void stamp(uint8_t *page, uint64_t index)
{
	uint64_t *w = (uint64_t *)page, c = *wcount + 1;

	switch (c % 4) {
	case 0:
		memset(page, 0, PAGE);
		break;
	case 1:
	case 2:
		for (unsigned int i = 1; i < PAGE / 8; i++)
			w[i] = (c % 4) * 0x0101010101010101ULL ^ i;
		w[0] = index;
		break;
	default:
		for (unsigned int i = 1; i < PAGE / 8; i++)
			w[i] = c ^ i;
		w[0] = index;
	}
	*wcount = c;
}

static uint8_t *map(int fd, uint64_t first, uint64_t n)
{
	return mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, first * PAGE);
}

/* A userfaultfd of ours watching [a, a + len) in async write-protect mode. */
static int uffd_setup(void *a, uint64_t len)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	struct uffdio_register r = { .range = { (uintptr_t)a, len },
				     .mode = UFFDIO_REGISTER_MODE_WP };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &r))
		return -1;
	return fd;
}

struct vwin {
	int fd;
	uint64_t first;
};

/* The vfork child: a short-lived window in the writer's address space. */
static int vfork_child(void *arg)
{
	const struct vwin *v = arg;
	uint8_t *w = map(v->fd, v->first, WIN);

	if (w == MAP_FAILED)
		return 1;
	for (int i = 0; i < WIN; i++)
		stamp(w + i * PAGE, v->first + i);
	munmap(w, WIN * PAGE);
	return 0;
}

/*
 * MADV_DONTNEED on [a, a + len) through io_uring, waiting for it.  The
 * soft-dirty harvests stop and continue us: a wait they interrupt is
 * waited again, a request that comes back with EAGAIN (6.12) or
 * ECANCELED (6.1: the io-wq worker saw the stop) is made again.
 */
static int uring_dontneed(void *a, uint64_t len)
{
	static struct io_uring ring;
	static bool up;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret;

	if (!up && (ret = io_uring_queue_init(4, &ring, 0))) {
		errno = -ret;
		return -1;
	}
	up = true;
	do {
		sqe = io_uring_get_sqe(&ring);
		if (!sqe)
			return errno = EBUSY, -1;
		io_uring_prep_madvise(sqe, a, len, MADV_DONTNEED);
		do
			ret = io_uring_submit(&ring);
		while (ret == -EINTR || ret == -EAGAIN);
		if (ret != 1)
			return errno = ret < 0 ? -ret : EIO, -1;
		do
			ret = io_uring_wait_cqe(&ring, &cqe);
		while (ret == -EINTR || ret == -EAGAIN);
		if (ret)
			return errno = -ret, -1;
		ret = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
	} while (ret == -EAGAIN || ret == -EINTR || ret == -ECANCELED);
	errno = -ret;
	return ret ? -1 : 0;
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise	440
#endif

/* process_madvise(MADV_PAGEOUT) on ourselves, through a pidfd. */
static int pageout(void *a, uint64_t len)
{
	static int pidfd = -1;
	struct iovec v = { a, len };

	if (pidfd < 0)
		pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	return syscall(SYS_process_madvise, pidfd, &v, 1, MADV_PAGEOUT, 0) < 0 ? -1 : 0;
}

/*
 * Wait until a tracker write-protected page a of ours, which we wrote:
 * the uffd tracker protects what it watches once it read our mappings,
 * so a mapping made after that is one made while it watches.  Without
 * PAGEMAP_SCAN there is nothing to wait for.
 */
static void wait_armed(void *a)
{
	struct page_region r;
	struct pm_scan_arg arg = { .size = sizeof(arg), .start = (uintptr_t)a,
				   .end = (uintptr_t)a + PAGE, .vec = (uintptr_t)&r, .vec_len = 1,
				   .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	for (int i = 0; pm >= 0 && i < 60000 && ioctl(pm, PAGEMAP_SCAN, &arg) > 0; i++)
		usleep(500);
	if (pm >= 0)
		close(pm);
}

/*
 * The mremap case's step: a window mapped, written, moved by mremap,
 * written, and replaced by mmap MAP_FIXED; every 20th step the main
 * mapping moves too.  Returns where the main mapping is now.
 */
static uint8_t *mremap_round(int fd, uint8_t *main_map, uint64_t npages, uint8_t *spare,
			     uint64_t first, uint64_t n)
{
	uint8_t *w = map(fd, first, WIN), *w2;

	if (w == MAP_FAILED)
		_exit(6);
	for (int i = 0; i < WIN / 2; i++)
		stamp(w + i * PAGE, first + i);
	w2 = mremap(w, WIN * PAGE, WIN * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
		    spare + (n % 2) * WIN * PAGE);
	if (w2 == MAP_FAILED)
		_exit(8);
	for (int i = WIN / 2; i < WIN; i++)
		stamp(w2 + i * PAGE, first + i);
	/*
	 * Replaced by a fresh reservation (mmap MAP_FIXED removes it), so
	 * that no later window is placed where the next moves to.
	 */
	if (mmap(w2, WIN * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != w2)
		_exit(8);
	/* The main mapping moves too, written before and after. */
	if (n % 20 == 19) {
		uint8_t *to = mmap(NULL, npages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		stamp(main_map + first * PAGE, first);
		if (to == MAP_FAILED)
			_exit(8);
		to = mremap(main_map, npages * PAGE, npages * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (to == MAP_FAILED)
			_exit(8);
		main_map = to;
		stamp(main_map + (first + 1) * PAGE, first + 1);
	}
	return main_map;
}

/*
 * The writer: map all of memfd, register it with a userfaultfd when uffd,
 * fill it, say so on ready, wait for a byte on go (EOF too) and, with
 * uffd, for the tracker to protect it, then write the case's way until
 * killed.
 */
static void writer_main(enum wcase wc, int fd, uint64_t npages, bool uffd, int ready, int go)
{
	uint8_t *main_map = map(fd, 0, npages), *spare;
	uint64_t x = 88172645463325252ULL, n = 0;
	char c;

	if (main_map == MAP_FAILED || (uffd && uffd_setup(main_map, npages * PAGE) < 0))
		_exit(3);
	for (uint64_t p = 0; p < npages; p++)
		stamp(main_map + p * PAGE, p);
	/* A place to move windows and the main mapping to. */
	spare = mmap(NULL, npages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (spare == MAP_FAILED || write(ready, "r", 1) != 1)
		_exit(4);
	if (read(go, &c, 1) < 0)
		_exit(5);
	if (uffd)
		wait_armed(main_map);
	if (wc == W_NEWMAP) {
		uint8_t *m2 = map(fd, 0, npages);

		if (m2 == MAP_FAILED)
			_exit(6);
		for (;; n++) {
			for (int i = 0; i < 16; i++) {
				uint64_t p = rnd(&x) % npages;

				stamp(m2 + p * PAGE, p);
			}
			usleep(1000);
		}
	}
	for (;; n++) {
		uint64_t first = rnd(&x) % (npages - WIN);
		uint8_t *w;

		switch (wc) {
		case W_SHORTLIVED:
			w = map(fd, first, WIN);
			if (w == MAP_FAILED)
				_exit(6);
			for (int i = 0; i < WIN; i++)
				stamp(w + i * PAGE, first + i);
			munmap(w, WIN * PAGE);
			usleep(5000);
			break;
		case W_DONTNEED:
			for (int i = 0; i < 8; i++) {
				uint64_t p = rnd(&x) % npages;

				stamp(main_map + p * PAGE, p);
				if (madvise(main_map + p * PAGE, PAGE, MADV_DONTNEED))
					_exit(7);
			}
			usleep(2000);
			break;
		case W_FORK: {
			pid_t c = fork();

			if (c < 0)
				_exit(10);
			if (c == 0) {
				for (int i = 0; i < WIN; i++)
					stamp(main_map + (first + i) * PAGE, first + i);
				_exit(0);
			}
			waitpid(c, NULL, 0);
			usleep(5000);
			break;
		}
		case W_VFORK: {
			static char stack[64 * 1024] __attribute__((aligned(16)));
			struct vwin v = { fd, first };
			int st;
			pid_t c = clone(vfork_child, stack + sizeof(stack),
					CLONE_VM | CLONE_VFORK | SIGCHLD, &v);

			if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
				_exit(12);
			usleep(5000);
			break;
		}
		case W_URING:
		case W_PAGEOUT:
			for (int i = 0; i < 8; i++)
				stamp(main_map + (first + i) * PAGE, first + i);
			if (wc == W_URING ? uring_dontneed(main_map + first * PAGE, 8 * PAGE) :
					    pageout(main_map + first * PAGE, 8 * PAGE)) {
				fprintf(stderr, "writer: %s: %s\n", wcase_names[wc], strerror(errno));
				_exit(11);
			}
			usleep(2000);
			break;
		case W_MREMAP:
			main_map = mremap_round(fd, main_map, npages, spare, first, n);
			usleep(5000);
			break;
		default:
			_exit(9);
		}
	}
}

int writer_start(struct writer *w, enum wcase wc, uint64_t npages, bool uffd)
{
	int r[2], g[2];
	char c;

	if (!wcount) {
		wcount = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (wcount == MAP_FAILED)
			return -1;
	}
	w->fd = memfd_create("lmig-i17-nolost", MFD_CLOEXEC);
	if (w->fd < 0 || ftruncate(w->fd, npages * PAGE) || pipe2(r, O_CLOEXEC) ||
	    pipe2(g, O_CLOEXEC))
		return -1;
	w->pid = fork();
	if (w->pid < 0)
		return -1;
	if (w->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Its own group, so that the final pause stops its children too. */
		setpgid(0, 0);
		close(r[0]);
		close(g[1]);
		writer_main(wc, w->fd, npages, uffd, r[1], g[0]);
	}
	close(r[1]);
	close(g[0]);
	w->go = g[1];
	if (read(r[0], &c, 1) != 1) {
		close(r[0]);
		return -1;
	}
	close(r[0]);
	return 0;
}

/*
 * The final pause: the writer and every process it forked (a paused
 * source, as a VM at switch-over, writes nothing).  The writer first: in
 * a vfork it stops only once its child has exited, which a stopped child
 * never does.  Then the rest of its group (a group stop also reaches a
 * child being forked), and wait until each member is stopped or gone.
 */
void writer_pause(struct writer *w)
{
	int st;

	kill(w->pid, SIGSTOP);
	waitpid(w->pid, &st, WUNTRACED);
	kill(-w->pid, SIGSTOP);
	for (int tries = 0; tries < 5000; tries++) {
		bool running = false;
		DIR *d = opendir("/proc");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[300], buf[512], *p;
			int fd, pgrp = 0;
			ssize_t n;
			char state = 0;

			if (e->d_name[0] < '0' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n <= 0)
				continue;
			buf[n] = 0;
			p = strrchr(buf, ')');
			if (!p || sscanf(p + 1, " %c %*d %d", &state, &pgrp) != 2)
				continue;
			if (pgrp == w->pid && state != 'T' && state != 't' && state != 'Z' &&
			    state != 'X')
				running = true;
		}
		if (d)
			closedir(d);
		if (!running)
			return;
		usleep(1000);
	}
}

void writer_stop(struct writer *w)
{
	if (w->pid > 0) {
		kill(-w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
	}
	if (w->go >= 0)
		close(w->go);
	close(w->fd);
	w->pid = 0;
	w->go = -1;
}

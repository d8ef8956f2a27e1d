// SPDX-License-Identifier: GPL-2.0-only
/*
 * What lmig.ko costs, measured the same way for any version of the module
 * (bench/kmod-ab.sh loads two in turn): on a SIZE_MIB memfd with 4 KiB
 * folios that a child process maps and fills,
 *   idle      one harvest with nothing written (the module's own time,
 *             struct lmig_harvest.ns)
 *   1pct      one harvest after the child wrote 1 % of the pages
 *   fault     read-faulting every page of a new mapping of the attached
 *             object (the fault probes run on each)
 *   munmap    removing that mapping after a harvest (the notifier walks
 *             its page tables first)
 *   fault0, munmap0  the same on a second memfd that no session watches
 * Medians of REPS runs, one line each: "NAME ms".
 *
 * Usage: kmod_ab SIZE_MIB REPS
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uapi/linux/lmig.h>

#define PAGE	4096UL
#define MAXREP	15

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

static int memfd_filled(size_t size)
{
	int fd = memfd_create("lmig-ab", MFD_CLOEXEC);
	char *buf = calloc(1, 1 << 20);

	if (fd < 0 || !buf || ftruncate(fd, size))
		return -1;
	for (size_t off = 0; off < size; off += 1 << 20) {
		memset(buf, (int)(off >> 20) + 1, 1 << 20);
		if (pwrite(fd, buf, 1 << 20, off) != 1 << 20)
			return -1;
	}
	free(buf);
	return fd;
}

static double harvest_ms(int dev, uint64_t *bm, size_t npages)
{
	struct lmig_harvest h = { .bitmap = (uintptr_t)bm, .bitmap_bits = npages };

	if (ioctl(dev, LMIG_IOC_HARVEST, &h) < 0) {
		perror("LMIG_IOC_HARVEST");
		exit(1);
	}
	return h.ns / 1e6;
}

/* Map fd whole, read-fault every page, harvest if dev >= 0, unmap. */
static void fault_unmap(int fd, size_t size, int dev, uint64_t *bm, double *f, double *u)
{
	volatile char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	double t0;
	char c = 0;

	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	t0 = now_ms();
	for (size_t off = 0; off < size; off += PAGE)
		c += m[off];
	*f = now_ms() - t0;
	(void)c;
	if (dev >= 0)
		harvest_ms(dev, bm, size / PAGE);
	t0 = now_ms();
	munmap((void *)m, size);
	*u = now_ms() - t0;
}

int main(int argc, char **argv)
{
	double idle[MAXREP], one[MAXREP], f[MAXREP], u[MAXREP], f0[MAXREP], u0[MAXREP];
	size_t size, npages;
	int reps, fd, fd0, dev, cmdp[2], ackp[2];
	struct lmig_attach a = { 0 };
	uint64_t *bm;
	pid_t pid;
	char c;

	if (argc != 3)
		return fprintf(stderr, "usage: kmod_ab SIZE_MIB REPS\n"), 2;
	size = strtoull(argv[1], NULL, 0) << 20;
	reps = atoi(argv[2]);
	if (!size || reps < 1 || reps > MAXREP)
		return fprintf(stderr, "kmod_ab: bad size or reps\n"), 2;
	npages = size / PAGE;
	fd = memfd_filled(size);
	fd0 = memfd_filled(size);
	bm = calloc(npages / 64 + 1, 8);
	if (fd < 0 || fd0 < 0 || !bm || pipe(cmdp) || pipe(ackp))
		return perror("set-up"), 1;
	pid = fork();
	if (pid == 0) {
		char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		uint64_t x = 88172645463325252ULL;

		close(cmdp[1]);
		close(ackp[0]);
		if (m == MAP_FAILED)
			_exit(1);
		for (size_t off = 0; off < size; off += PAGE)
			m[off]++;
		if (write(ackp[1], "r", 1) != 1)
			_exit(1);
		while (read(cmdp[0], &c, 1) == 1) {
			for (size_t i = 0; i < npages / 100; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				m[x % npages * PAGE]++;
			}
			if (write(ackp[1], "w", 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	if (read(ackp[0], &c, 1) != 1)
		return fprintf(stderr, "kmod_ab: the writer failed\n"), 1;
	dev = open(LMIG_DEVICE, O_RDWR | O_CLOEXEC);
	a.fd = fd;
	a.length = size;
	if (dev < 0 || ioctl(dev, LMIG_IOC_ATTACH, &a))
		return perror(LMIG_DEVICE), 1;
	harvest_ms(dev, bm, npages);
	for (int r = 0; r < reps; r++)
		idle[r] = harvest_ms(dev, bm, npages);
	for (int r = 0; r < reps; r++) {
		if (write(cmdp[1], "w", 1) != 1 || read(ackp[0], &c, 1) != 1)
			return fprintf(stderr, "kmod_ab: the writer failed\n"), 1;
		one[r] = harvest_ms(dev, bm, npages);
	}
	for (int r = 0; r < reps; r++) {
		fault_unmap(fd, size, dev, bm, &f[r], &u[r]);
		harvest_ms(dev, bm, npages);
		fault_unmap(fd0, size, -1, NULL, &f0[r], &u0[r]);
	}
	printf("idle %.2f\n1pct %.2f\nfault %.2f\nmunmap %.2f\nfault0 %.2f\nmunmap0 %.2f\n",
	       median(idle, reps), median(one, reps), median(f, reps), median(u, reps),
	       median(f0, reps), median(u0, reps));
	fflush(stdout);
	close(cmdp[1]);
	waitpid(pid, NULL, 0);
	close(dev);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * Nanoseconds per system call, for bench/mapwatch.sh: getppid (a call
 * the mapping watch does not count, but whose entry and exit run its
 * programs once attached) and an mmap + munmap pair of one shared page
 * (two counted calls, when this process is the one watched).
 * Usage: syscall_cost N; prints "getppid NS mmap_munmap NS".
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	double t0, a, b;

	t0 = now();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	a = (now() - t0) / n * 1e9;
	t0 = now();
	for (long i = 0; i < n / 10; i++) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 1;
		munmap(p, 4096);
	}
	b = (now() - t0) / (n / 10) * 1e9;
	printf("getppid %.1f mmap_munmap %.1f\n", a, b);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * The two microbenchmarks of bench/probes.sh.  Each waits for a line on
 * stdin (so the probes can be attached to its pid first), runs, and prints
 * its elapsed time and the CPU time it used (its own and its child's), in
 * seconds: the probes run in the context of the task that faults or
 * switches, so their cost is in the CPU time, which other load on the
 * machine disturbs less than the elapsed time.
 *
 *   probes_bench faults N   N times: map 16 MiB, write each page, unmap
 *                           (4096 write faults per round)
 *   probes_bench switch N   two processes on one CPU pass a byte back and
 *                           forth over pipes N times (2 switches per round)
 *   probes_bench threads N  as faults, in one thread per CPU of one process
 *                           at once, N rounds each: every CPU counts into
 *                           the same process's entry
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
	struct rusage a, b;

	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	return a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec +
	       (a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
		b.ru_stime.tv_usec) * 1e-6;
}

static void faults(long n)
{
	const size_t len = 16 << 20;

	for (long r = 0; r < n; r++) {
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			exit(1);
		/* One fault per 4 KiB page, also where THP is "always". */
		madvise(m, len, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < len; i += 4096)
			m[i] = 1;
		munmap(m, len);
	}
}

static void *faults_thread(void *arg)
{
	faults((long)arg);
	return NULL;
}

static void threads(long n)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th[64];

	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > 64)
		ncpu = 64;
	for (long i = 0; i < ncpu; i++) {
		cpu_set_t set;
		pthread_attr_t a;

		CPU_ZERO(&set);
		CPU_SET(i, &set);
		pthread_attr_init(&a);
		pthread_attr_setaffinity_np(&a, sizeof(set), &set);
		if (pthread_create(&th[i], &a, faults_thread, (void *)n))
			exit(1);
		pthread_attr_destroy(&a);
	}
	for (long i = 0; i < ncpu; i++)
		pthread_join(th[i], NULL);
}

static void pingpong(long n)
{
	int a[2], b[2];
	cpu_set_t set;
	char c = 0;
	pid_t pid;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	if (pipe(a) || pipe(b))
		exit(1);
	pid = fork();
	if (!pid) {
		close(a[1]);
		close(b[0]);
		while (read(a[0], &c, 1) == 1 && write(b[1], &c, 1) == 1)
			;
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	for (long i = 0; i < n; i++)
		if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
			exit(1);
	close(a[1]);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	char line[16];
	double t0, c0;
	long n;

	if (argc != 3)
		return 2;
	n = atol(argv[2]);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	t0 = now();
	c0 = cpu_s();
	if (!strcmp(argv[1], "faults"))
		faults(n);
	else if (!strcmp(argv[1], "threads"))
		threads(n);
	else
		pingpong(n);
	t0 = now() - t0;
	printf("%.4f %.4f\n", t0, cpu_s() - c0);
	return 0;
}

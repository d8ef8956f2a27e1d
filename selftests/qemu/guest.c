// SPDX-License-Identifier: GPL-2.0-only
/*
 * /init of the QEMU test guest: a memory writer with a heartbeat.
 *
 * It fills GUEST_TOUCH_MB MiB (default 256) with content shaped like the
 * memory of a real machine, then rewrites GUEST_RATE_MB MB/s (default 4)
 * of it, a slice every 100 ms, and prints one line per slice on the serial
 * port:
 *
 *   lmig-guest tick N
 *
 * N counts up from 1 and never restarts, so a destination whose console
 * shows ticks above those the source printed runs the same guest on.
 * Before the first tick it prints "lmig-guest ready touched=M MiB
 * fill_ms=T".  The kernel hands command-line words with '=' to init as
 * environment: append "guest_touch=256 guest_rate=4 guest_tick=100".
 *
 * With guest_compute=1 (a guest of two CPUs or more) the writer runs on
 * CPU 0 only, and a second thread, on CPU 1 only, writes nothing but
 * counts loops and prints its rate every guest_compute_ms (default 500):
 *
 *   lmig-guest compute N ops/s
 *
 * so that a test can tell whether limiting one vCPU slowed the other.
 * Without it nothing changes (other tests read these lines).
 *
 * With guest_work=N the writer computes N rounds of a hash before each
 * page it writes, so that its rate depends on the CPU it gets, as a real
 * workload's does (it computes between writes): held to less CPU than it
 * needs, it writes less.  guest_busy=P (1..95) picks N itself: after the
 * fill it times the hash for a second and takes the N that keeps the
 * writer busy P % of the time at guest_rate when the vCPU runs at its
 * best speed (a loaded host gives it less and the share grows; past
 * 100 % the writer falls short of its rate).  The ready
 * line then ends in " work=N", and once a second the writer says what
 * share of the wall clock it spent computing and writing, and the rate it
 * wrote at:
 *
 *   lmig-guest busy P % rate R MB/s
 *
 * Without either, nothing changes.
 *
 * Content, decided per 4 KiB page by a hash of its index:
 *   30 %  zero (written, but zero: free or cleared memory)
 *   40 %  text: words from a small vocabulary, numbers, punctuation and
 *         newlines (logs, configuration, strings)
 *   30 %  binary: 8-byte words, a quarter each zero, small integers,
 *         pointer-like values sharing their upper bits, and random
 * Every page differs from every other, so a compressor finds no page
 * repeated; lz4 shrinks the non-zero pages to about half, as it does the
 * system libraries.  Rewritten pages keep their kind: the writer stores a
 * counter at a moving offset, which changes few bytes, as real writes do.
 *
 * Built with gcc -static: the initramfs holds nothing else.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static int out = 1;
static int to_kmsg;

/*
 * One line on the serial console.  Through the kernel's log when it can
 * (/dev/kmsg, at a level "quiet" still shows): the kernel writes its
 * console to the UART by polling the transmitter, so a line gets out even
 * if the interrupt that drives the tty's transmission was lost in a
 * migration, which leaves a tty silent for good.
 */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	int n = to_kmsg ? snprintf(buf, sizeof(buf), "<2>") : 0, m;

	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m > 0 && write(out, buf, (size_t)(n + m)) < 0)
		out = 1;
}

/* The kernel log as output: unlimited (it limits /dev/kmsg writers by default). */
static int open_kmsg(void)
{
	int fd = open("/proc/sys/kernel/printk_devkmsg", O_WRONLY);

	if (fd < 0)
		return -1;
	if (write(fd, "on\n", 3) != 3) {
		close(fd);
		return -1;
	}
	close(fd);
	return open("/dev/kmsg", O_WRONLY | O_NOCTTY);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static const char *const words[] = {
	"the", "of", "and", "to", "in", "is", "for", "on", "with", "as", "by", "that",
	"error", "warning", "info", "debug", "request", "response", "client", "server",
	"memory", "page", "cache", "buffer", "device", "driver", "kernel", "user",
	"process", "thread", "socket", "connection", "timeout", "retry", "status",
	"config", "value", "name", "path", "file", "/usr/lib", "/var/log", "/etc",
	"GET", "POST", "HTTP/1.1", "200", "404", "500", "id", "uuid", "session",
	"started", "stopped", "failed", "completed", "migration", "transfer", "queue",
	"= ", ": ", "{", "}", "[", "]", "\"key\"", "\"data\"", "true", "false", "null",
	"database", "query", "select", "from", "where", "insert", "update", "table",
	"index", "record", "field", "offset", "length", "bytes", "seconds", "ms",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static void fill_text(unsigned char *p, uint64_t seed)
{
	size_t i = 0;
	uint64_t r = mix(seed);

	while (i < PAGE) {
		const char *w;
		char num[24];
		size_t len;

		r = mix(r + 0x9e3779b97f4a7c15ULL);
		if ((r & 15) == 0) {
			len = (size_t)snprintf(num, sizeof(num), "%llu", (unsigned long long)(r >> 40));
			w = num;
		} else {
			w = words[(r >> 8) % NWORDS];
			len = strlen(w);
		}
		if (len > PAGE - i)
			len = PAGE - i;
		memcpy(p + i, w, len);
		i += len;
		if (i < PAGE)
			p[i++] = (r >> 20) % 11 == 0 ? '\n' : ' ';
	}
}

static void fill_binary(unsigned char *p, uint64_t seed)
{
	uint64_t *w = (uint64_t *)p, r = mix(seed), base = 0x00007f0000000000ULL | (mix(seed >> 8) & 0xffff000000ULL);

	for (size_t i = 0; i < PAGE / 8; i++) {
		r = mix(r + i);
		switch (r & 3) {
		case 0: w[i] = 0; break;
		case 1: w[i] = (r >> 8) & 0xff; break;
		case 2: w[i] = base | ((r >> 12) & 0xfffff8); break;
		default: w[i] = mix(r); break;
		}
	}
}

static void fill_page(unsigned char *p, uint64_t idx)
{
	unsigned kind = (unsigned)(mix(idx * 2654435761ULL + 1) % 100);

	if (kind < 30)
		memset(p, 0, PAGE);
	else if (kind < 70)
		fill_text(p, idx);
	else
		fill_binary(p, idx);
}

static unsigned long env_ul(const char *name, unsigned long def)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : def;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* This thread on CPU cpu only; false when the guest has no such CPU. */
static bool pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

/* The computing thread of guest_compute=1: loops, its rate per period. */
static void *compute(void *arg)
{
	uint64_t period = (uint64_t)(unsigned long)arg * 1000000ULL, t0, t, ops = 0;
	uint32_t x = 2463534242u;

	if (!pin(1))
		say("lmig-guest FAIL no CPU 1 for the computing thread\n");
	t0 = now_ns();
	for (;;) {
		for (int i = 0; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
		}
		__asm__ volatile("" : : "r"(x));
		ops += 4096;
		t = now_ns();
		if (t - t0 >= period) {
			say("lmig-guest compute %llu ops/s\n",
			    (unsigned long long)(ops * 1000000000ULL / (t - t0)));
			ops = 0;
			t0 = t;
		}
	}
	return NULL;
}

/* N rounds of a hash: the writer's computing per page (guest_work). */
static uint64_t work(uint64_t x, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	__asm__ volatile("" : "+r"(x));
	return x;
}

/*
 * guest_busy=P: the rounds per page that keep the writer busy P % of the
 * time at per_tick pages a tick_ms.  Timed in 20 windows of 50 ms after a
 * warm-up (TCG translates the loop on its first run), the fastest
 * window taken: on a shared host the others measure the neighbours.
 */
static unsigned long work_for_busy(unsigned long pct, size_t per_tick, unsigned long tick_ms)
{
	const unsigned long step = 1 << 14;
	uint64_t x = work(88172645463325252ULL, step);
	double ns_per_round = 0, budget_ns;

	for (int w = 0; w < 20; w++) {
		uint64_t t0 = now_ns(), t, rounds = 0;

		do {
			x = work(x, step);
			rounds += step;
			t = now_ns();
		} while (t - t0 < 50000000ULL);
		if (!w || (double)(t - t0) / (double)rounds < ns_per_round)
			ns_per_round = (double)(t - t0) / (double)rounds;
	}
	__asm__ volatile("" : : "r"(x));
	if (!per_tick)
		return 0;
	budget_ns = (double)tick_ms * 1e6 * (double)pct / 100.0 / (double)per_tick;
	return (unsigned long)(budget_ns / ns_per_round) + 1;
}

int main(void)
{
	unsigned long touch_mb = env_ul("guest_touch", 256), rate_mb = env_ul("guest_rate", 4);
	unsigned long tick_ms = env_ul("guest_tick", 100);
	unsigned long work_n = env_ul("guest_work", 0), busy_pct = env_ul("guest_busy", 0);
	uint64_t work_x = 2463534242ULL, busy_ns = 0, busy_t0 = 0;
	size_t busy_pages = 0;
	size_t npages = touch_mb * 1024 * 1024 / PAGE, per_tick, next = 0;
	unsigned long long tick = 0;
	unsigned char *mem;
	uint64_t t0, deadline;

	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	out = open_kmsg();
	to_kmsg = out >= 0;
	if (out < 0)
		out = open("/dev/ttyS0", O_WRONLY | O_NOCTTY);
	if (out < 0)
		out = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (out < 0)
		out = 1;
	if (!tick_ms)
		tick_ms = 100;
	if (env_ul("guest_compute", 0)) {
		unsigned long cms = env_ul("guest_compute_ms", 500);
		pthread_t th;

		if (!pin(0))
			say("lmig-guest FAIL cannot pin the writer to CPU 0\n");
		if (pthread_create(&th, NULL, compute, (void *)(cms ? cms : 500)))
			say("lmig-guest FAIL cannot start the computing thread\n");
	}

	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("lmig-guest FAIL mmap %lu MiB\n", touch_mb);
		for (;;)
			pause();
	}
	t0 = now_ns();
	for (size_t i = 0; i < npages; i++)
		fill_page(mem + i * PAGE, i);
	t0 = (now_ns() - t0) / 1000000;

	/* Pages per slice: rate_mb * 10^6 bytes per second. */
	per_tick = (size_t)((uint64_t)rate_mb * 1000000 / PAGE * tick_ms / 1000);
	if (!work_n && busy_pct)
		work_n = work_for_busy(busy_pct > 95 ? 95 : busy_pct, per_tick, tick_ms);
	if (work_n)
		say("lmig-guest ready touched=%lu MiB fill_ms=%llu rate=%lu MB/s work=%lu\n",
		    touch_mb, (unsigned long long)t0, rate_mb, work_n);
	else
		say("lmig-guest ready touched=%lu MiB fill_ms=%llu rate=%lu MB/s\n", touch_mb,
		    (unsigned long long)t0, rate_mb);
	deadline = now_ns();
	busy_t0 = deadline;
	for (;;) {
		uint64_t t_work = work_n ? now_ns() : 0;

		tick++;
		for (size_t k = 0; k < per_tick && npages; k++) {
			uint64_t *w = (uint64_t *)(mem + next * PAGE);

			if (work_n)
				work_x = work(work_x + k, work_n);
			w[(tick * 7 + k) % (PAGE / 8)] = tick;
			if (++next == npages)
				next = 0;
		}
		say("lmig-guest tick %llu\n", tick);
		if (work_n) {
			uint64_t t = now_ns();

			busy_ns += t - t_work;
			busy_pages += per_tick;
			if (t - busy_t0 >= 1000000000ULL) {
				say("lmig-guest busy %llu %% rate %llu MB/s\n",
				    (unsigned long long)(busy_ns * 100 / (t - busy_t0)),
				    (unsigned long long)((uint64_t)busy_pages * PAGE * 1000 /
							 (t - busy_t0)));
				busy_ns = 0;
				busy_pages = 0;
				busy_t0 = t;
			}
		}
		deadline += tick_ms * 1000000ULL;
		uint64_t t = now_ns();
		/* Far behind (the VM was stopped): start the beat afresh. */
		if (t > deadline + 1000000000ULL)
			deadline = t;
		if (deadline > t) {
			struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000ULL),
					       .tv_nsec = (long)(deadline % 1000000000ULL) };
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
	}
}

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

int main(void)
{
	unsigned long touch_mb = env_ul("guest_touch", 256), rate_mb = env_ul("guest_rate", 4);
	unsigned long tick_ms = env_ul("guest_tick", 100);
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
	say("lmig-guest ready touched=%lu MiB fill_ms=%llu rate=%lu MB/s\n", touch_mb,
	    (unsigned long long)(now_ns() - t0) / 1000000, rate_mb);

	/* Pages per slice: rate_mb * 10^6 bytes per second. */
	per_tick = (size_t)((uint64_t)rate_mb * 1000000 / PAGE * tick_ms / 1000);
	deadline = now_ns();
	for (;;) {
		tick++;
		for (size_t k = 0; k < per_tick && npages; k++) {
			uint64_t *w = (uint64_t *)(mem + next * PAGE);

			w[(tick * 7 + k) % (PAGE / 8)] = tick;
			if (++next == npages)
				next = 0;
		}
		say("lmig-guest tick %llu\n", tick);
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

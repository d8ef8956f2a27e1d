// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm_vmm: a tiny VMM on the KVM API, a real guest for the dirty trackers.
 *
 *   kvm_vmm --mem-size SIZE (--pages LIST | --rate PAGES_PER_S)
 *           [--duration S] [--ready-fd FD] [--go-fd FD] [--hold]
 *
 * Guest RAM is a memfd mapped MAP_SHARED and handed to KVM as memory slot
 * 0 at guest-physical address 0; the memfd stays open, so another process
 * can read it (and track it) as /proc/PID/fd/N.  The guest's code and its
 * parameters live in a second slot at CODE_GPA (anonymous memory above any
 * RAM size accepted: a parameter page, the code, the page list), so RAM
 * holds nothing but what the guest wrote.
 *
 * Processor mode: 32-bit protected mode with flat 4 GiB segments and no
 * paging, set directly through KVM_SET_SREGS (CR0.PE, code and data
 * descriptors with base 0, limit 4 GiB, 32-bit default size): no GDT,
 * IDT or stack in guest memory, the guest never reloads a segment and runs
 * with interrupts off.  Guest-physical = linear address, so the code
 * reaches all of RAM (up to MAX_MEM) without mode switches.
 *
 * --pages LIST (comma-separated page numbers or ranges A-B): the guest
 *   writes each listed page once, dword k of page p = p * 1024 + k + 1
 *   (the dword's index in RAM plus one, never zero), then HLTs.
 * --rate R: the guest picks pages with a xorshift32 generator (page =
 *   x * npages >> 32) and fills each: dword 0 = the page number, every
 *   other dword = the write's sequence number (1, 2, ...).  After each
 *   batch of pages it does `out 0x10, eax` with the running count; the VMM
 *   sleeps there to hold R pages/s and, when --duration has passed or
 *   SIGTERM arrived, sets a stop flag the guest reads after the out; the
 *   guest then HLTs.
 *
 * --ready-fd FD: once guest RAM exists (before the vCPU first runs) the
 *   line "memfd /proc/PID/fd/N" is written to FD and FD is closed.
 * --go-fd FD: after that, wait until a byte can be read from FD (or it
 *   reaches its end) before the vCPU first runs, so a tracker can attach
 *   to guest RAM before the guest writes.
 * --hold: after the guest halted, stay alive (memfd open) until SIGTERM.
 *
 * When the guest halts, one line goes to stdout:
 *   halted pages_written=N io_exits=N seconds=S rate=PAGES_PER_S
 *
 * The vCPU thread is the main thread, so stopping the process (SIGSTOP,
 * as the soft-dirty tracker and `lmig send --freeze signal` do) stops the
 * guest; KVM_RUN interrupted that way returns EINTR and is entered again.
 *
 * Errors: one line on stderr, exit status 1 (2 for bad usage).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#define PAGE		4096ULL
#define MAX_MEM		(2048ULL << 20)	/* RAM ends below CODE_GPA */
#define CODE_GPA	0xF0000000ULL
#define IO_PORT		0x10

/* Parameter block at the start of the code slot (32-bit words). */
enum { P_STOP, P_NPAGES, P_BATCH, P_COUNT, P_SEED, P_LEFT, P_WORDS };
/*
 * Its own page, before the code: the guest writes it, and a write to a
 * page holding code costs a code-cache flush where the guest's processor
 * is emulated (nested KVM under TCG).
 */
#define PARAM_SIZE	PAGE

/*
 * The guest's code, 32-bit, position independent (only relative jumps).
 * Entry points: guest_pages (esi = the page list, ebp = its length) and
 * guest_rate (esi = the parameter block).
 */
extern const unsigned char guest_code[], guest_code_end[], guest_pages[], guest_rate[];
__asm__(
	"	.pushsection .rodata\n"
	"	.code32\n"
	"guest_code:\n"
	"guest_pages:\n"
	"	cld\n"
	"1:	test %ebp, %ebp\n"
	"	jz 3f\n"
	"	lodsl\n"			/* eax = page number */
	"	mov %eax, %edi\n"
	"	shl $12, %edi\n"		/* its address */
	"	mov %eax, %edx\n"
	"	shl $10, %edx\n"
	"	inc %edx\n"			/* dword index + 1 */
	"	mov $1024, %ecx\n"
	"2:	mov %edx, (%edi)\n"
	"	add $4, %edi\n"
	"	inc %edx\n"
	"	loop 2b\n"
	"	dec %ebp\n"
	"	jmp 1b\n"
	"3:	hlt\n"
	"	jmp 3b\n"
	"guest_rate:\n"
	"	cld\n"
	"	mov 16(%esi), %ebx\n"		/* x = seed */
	"	mov 12(%esi), %ebp\n"		/* count so far */
	"4:	mov 8(%esi), %ecx\n"
	"	mov %ecx, 20(%esi)\n"		/* pages left in this batch */
	"5:	mov %ebx, %eax\n"		/* xorshift32 */
	"	shl $13, %eax\n"
	"	xor %eax, %ebx\n"
	"	mov %ebx, %eax\n"
	"	shr $17, %eax\n"
	"	xor %eax, %ebx\n"
	"	mov %ebx, %eax\n"
	"	shl $5, %eax\n"
	"	xor %eax, %ebx\n"
	"	mov %ebx, %eax\n"
	"	mull 4(%esi)\n"			/* edx = x * npages >> 32 */
	"	mov %edx, %edi\n"
	"	shl $12, %edi\n"
	"	inc %ebp\n"
	"	mov %ebp, %eax\n"
	"	mov $1024, %ecx\n"
	"	rep stosl\n"			/* the page = sequence number */
	"	mov %edx, -4096(%edi)\n"	/* dword 0 = the page number */
	"	decl 20(%esi)\n"
	"	jnz 5b\n"
	"	mov %ebp, 12(%esi)\n"
	"	mov %ebx, 16(%esi)\n"
	"	mov %ebp, %eax\n"
	"	out %eax, $0x10\n"		/* the VMM paces and counts here */
	"	cmpl $0, (%esi)\n"
	"	je 4b\n"
	"6:	hlt\n"
	"	jmp 6b\n"
	"guest_code_end:\n"
	"	.code64\n"
	"	.popsection\n");

static volatile sig_atomic_t terminate;

static void on_term(int sig)
{
	(void)sig;
	terminate = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kvm_vmm --mem-size SIZE (--pages LIST | --rate PAGES_PER_S)\n"
		"               [--duration S] [--ready-fd FD] [--go-fd FD] [--hold]\n");
	exit(2);
}

static void __attribute__((format(printf, 1, 2), noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	fputs("kvm_vmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SIZE with an optional K, M, G suffix (binary). */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		usage();
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'i')
		end++;
	if (*end)
		usage();
	return v;
}

/* LIST: "3,17,1000" or with ranges "10-20". */
static uint32_t *parse_pages(const char *s, uint64_t npages, uint32_t *n)
{
	uint32_t *list = NULL;
	size_t cap = 0, len = 0;
	char *end;

	while (*s) {
		unsigned long long a, b;

		errno = 0;
		a = strtoull(s, &end, 0);
		if (errno || end == s)
			die("--pages: bad page number at '%s'", s);
		b = a;
		if (*end == '-') {
			s = end + 1;
			b = strtoull(s, &end, 0);
			if (errno || end == s || b < a)
				die("--pages: bad range at '%s'", s);
		}
		if (b >= npages)
			die("--pages: page %llu is beyond guest RAM (%llu pages)", b,
			    (unsigned long long)npages);
		for (unsigned long long p = a; p <= b; p++) {
			if (len == cap) {
				cap = cap ? cap * 2 : 64;
				list = realloc(list, cap * sizeof(*list));
				if (!list)
					die("out of memory");
			}
			list[len++] = p;
		}
		if (*end == ',')
			end++;
		else if (*end)
			die("--pages: unexpected '%s'", end);
		s = end;
	}
	if (!len)
		die("--pages: no page given");
	*n = len;
	return list;
}

static void seg_flat(struct kvm_segment *sg, uint16_t sel, uint8_t type)
{
	memset(sg, 0, sizeof(*sg));
	sg->base = 0;
	sg->limit = 0xffffffff;
	sg->selector = sel;
	sg->type = type;
	sg->present = 1;
	sg->dpl = 0;
	sg->db = 1;		/* 32-bit */
	sg->s = 1;		/* code/data */
	sg->l = 0;
	sg->g = 1;		/* 4 KiB granularity: limit 4 GiB */
}

static const char *exit_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_UNKNOWN: return "UNKNOWN";
	case KVM_EXIT_EXCEPTION: return "EXCEPTION";
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN (triple fault)";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	}
	return "?";
}

int main(int argc, char **argv)
{
	uint64_t mem_size = 0, npages, code_size;
	const char *pages_arg = NULL;
	double rate = 0, duration = 0;
	int ready_fd = -1, go_fd = -1, kvm, vm, vcpu, memfd, run_size;
	bool hold = false;
	uint32_t *list = NULL, nlist = 0, batch = 1;
	volatile uint32_t *param;
	struct kvm_run *run;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct sigaction sa;
	unsigned long long io_exits = 0;
	uint8_t *ram, *code;
	double t0, paced_from;
	uint64_t paced_base = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--hold")) {
			hold = true;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage();
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--mem-size"))
			mem_size = parse_size(v);
		else if (!strcmp(a, "--pages"))
			pages_arg = v;
		else if (!strcmp(a, "--rate"))
			rate = atof(v);
		else if (!strcmp(a, "--duration"))
			duration = atof(v);
		else if (!strcmp(a, "--ready-fd"))
			ready_fd = atoi(v);
		else if (!strcmp(a, "--go-fd"))
			go_fd = atoi(v);
		else
			usage();
	}
	if (!mem_size || !!pages_arg == (rate > 0))
		usage();
	if (mem_size % PAGE || mem_size > MAX_MEM)
		die("--mem-size must be a multiple of 4 KiB, at most %llu MiB",
		    MAX_MEM >> 20);
	npages = mem_size / PAGE;
	if (pages_arg)
		list = parse_pages(pages_arg, npages, &nlist);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;	/* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("cannot open /dev/kvm: %s", strerror(errno));
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die("KVM_GET_API_VERSION: not %d", KVM_API_VERSION);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM: %s", strerror(errno));

	/* Guest RAM: the memfd, shared, so the mapping writes the object. */
	memfd = memfd_create("kvm_vmm-ram", 0);
	if (memfd < 0 || ftruncate(memfd, mem_size))
		die("guest RAM memfd of %llu bytes: %s", (unsigned long long)mem_size,
		    strerror(errno));
	ram = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		die("mmap of guest RAM: %s", strerror(errno));
	/* Code slot: parameters, code, then the page list. */
	code_size = (PARAM_SIZE + (guest_code_end - guest_code) + 4ULL * nlist + PAGE - 1) &
		    ~(PAGE - 1);
	code = mmap(NULL, code_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		die("mmap of the code slot: %s", strerror(errno));
	param = (volatile uint32_t *)code;
	memcpy(code + PARAM_SIZE, guest_code, guest_code_end - guest_code);
	if (nlist)
		memcpy(code + PARAM_SIZE + (guest_code_end - guest_code), list, 4ULL * nlist);

	struct kvm_userspace_memory_region r0 = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
		.userspace_addr = (uintptr_t)ram,
	}, r1 = {
		.slot = 1, .guest_phys_addr = CODE_GPA, .memory_size = code_size,
		.userspace_addr = (uintptr_t)code,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r0) ||
	    ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r1))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU: %s", strerror(errno));
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(*run))
		die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap of kvm_run: %s", strerror(errno));

	/* 32-bit protected mode, flat segments, no paging. */
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		die("KVM_GET_SREGS: %s", strerror(errno));
	seg_flat(&sregs.cs, 0x08, 0xb);		/* execute/read, accessed */
	seg_flat(&sregs.ds, 0x10, 0x3);		/* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = (sregs.cr0 | 1) & ~(1UL << 31);	/* PE, no PG */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		die("KVM_SET_SREGS: %s", strerror(errno));

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;			/* interrupts off */
	if (nlist) {
		regs.rip = CODE_GPA + PARAM_SIZE + (guest_pages - guest_code);
		regs.rsi = CODE_GPA + PARAM_SIZE + (guest_code_end - guest_code);
		regs.rbp = nlist;
	} else {
		/* About 100 exits a second at most, at least one per 64 pages. */
		batch = rate / 100 < 1 ? 1 : rate / 100 > 64 ? 64 : (uint32_t)(rate / 100);
		param[P_STOP] = 0;
		param[P_NPAGES] = npages;
		param[P_BATCH] = batch;
		param[P_COUNT] = 0;
		param[P_SEED] = 0x2545F491u ^ (uint32_t)getpid();
		if (!param[P_SEED])
			param[P_SEED] = 1;
		regs.rip = CODE_GPA + PARAM_SIZE + (guest_rate - guest_code);
		regs.rsi = CODE_GPA;
	}
	if (ioctl(vcpu, KVM_SET_REGS, &regs))
		die("KVM_SET_REGS: %s", strerror(errno));

	if (ready_fd >= 0) {
		dprintf(ready_fd, "memfd /proc/%d/fd/%d\n", (int)getpid(), memfd);
		close(ready_fd);
	}
	if (go_fd >= 0) {
		char c;

		while (read(go_fd, &c, 1) < 0 && errno == EINTR && !terminate)
			;
		close(go_fd);
	}

	t0 = paced_from = now();
	for (;;) {
		if (terminate)
			param[P_STOP] = 1;
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;	/* a signal: stopped and resumed, or SIGTERM */
			die("KVM_RUN: %s", strerror(errno));
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == IO_PORT &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 && !nlist) {
			uint32_t count;
			double t, ahead;

			memcpy(&count, (uint8_t *)run + run->io.data_offset, 4);
			io_exits++;
			t = now();
			if (duration > 0 && t - t0 >= duration)
				param[P_STOP] = 1;
			/*
			 * Hold the rate against the clock; a stall (the process
			 * stopped, a slow stretch) longer than 0.2 s restarts the
			 * reference instead of being made up in a burst.
			 */
			ahead = paced_from + (count - paced_base) / rate - t;
			if (ahead < -0.2) {
				paced_from = t;
				paced_base = count;
			} else if (ahead > 0 && !param[P_STOP] && !terminate) {
				struct timespec ts = { (time_t)ahead,
						       (long)((ahead - (time_t)ahead) * 1e9) };

				nanosleep(&ts, NULL);
			}
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO)
			die("unexpected I/O exit: port 0x%x, %s, size %u", run->io.port,
			    run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.size);
		if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
			die("unexpected exit reason FAIL_ENTRY (hardware reason 0x%llx)",
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
			die("unexpected exit reason INTERNAL_ERROR (suberror %u)",
			    run->internal.suberror);
		die("unexpected exit reason %u (%s)", run->exit_reason,
		    exit_name(run->exit_reason));
	}

	{
		double secs = now() - t0;
		uint64_t written = nlist ? nlist : param[P_COUNT];

		printf("halted pages_written=%llu io_exits=%llu seconds=%.3f rate=%.1f\n",
		       (unsigned long long)written, io_exits, secs, secs > 0 ? written / secs : 0);
		fflush(stdout);
	}

	if (hold) {
		sigset_t block, old;

		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGINT);
		sigprocmask(SIG_BLOCK, &block, &old);
		while (!terminate)
			sigsuspend(&old);
	}
	return 0;
}

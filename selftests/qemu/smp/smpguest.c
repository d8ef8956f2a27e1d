// SPDX-License-Identifier: GPL-2.0-only
/*
 * A two-vCPU QEMU test guest without an operating system, for nested KVM.
 *
 * Loaded by `qemu-system-x86_64 -kernel smpguest.elf` (Multiboot; 32-bit
 * protected mode, paging off: guest-physical = linear address):
 *
 *   vCPU 0  fills guest_touch MiB (default 32) at 8 MiB, then rewrites
 *           guest_rate MB/s (default 4) of it, a slice every guest_tick ms
 *           (default 100), one word per page, and prints on the first
 *           serial port
 *             lmig-guest tick N
 *           sleeping between slices: HLT, woken by its local APIC timer,
 *           or with guest_hlt=0 spinning on the TSC (under nested KVM the
 *           timer of a halted vCPU was not heard of again after a
 *           migration, see selftests/vm/README.md);
 *   vCPU 1  only computes (a xorshift loop, no memory written but its own
 *           stack) and prints on the second serial port, every
 *           guest_compute_ms (default 500)
 *             lmig-guest compute N ops/s
 *
 * Each processor has a serial port of its own, so neither ever waits for
 * the other: limiting the CPU time of one vCPU's thread must not slow the
 * other through a shared lock.  Before the first tick vCPU 0 prints
 * "lmig-guest ready touched=M MiB rate=R MB/s tsc_khz=F cpus=2".  The
 * words come from the Multiboot command line (QEMU's -append).
 *
 * Why not Linux: a Linux guest of two vCPUs under nested KVM inside the
 * VM of selftests/vm (TCG, one host thread) stalled at boot with both
 * vCPUs spinning on a lock nobody held (measured in selftests/vm/README.md),
 * while code that runs with paging off, as selftests/kvm/kvm_vmm's guest
 * does, runs there reliably and starts in seconds.
 *
 * Time: the TSC, calibrated against the PIT (channel 2, 50 ms); the local
 * APIC timer, calibrated against the TSC, wakes vCPU 0 from HLT.  Built with gcc -m32 -ffreestanding: no libc, no libgcc
 * (hence div64 below).
 */
#include <stdint.h>

#define COM1		0x3f8
#define COM2		0x2f8
#define LAPIC		0xfee00000u
#define TRAMP		0x8000u
#define MEM_BASE	(8u << 20)
#define PAGE		4096u
#define TIMER_VEC	0x20
#define SPURIOUS_VEC	0xff

extern char tramp_start[], tramp_end[];
extern void timer_stub(void), spurious_stub(void);

static volatile int ap_up;
static uint32_t tsc_khz;
static uint32_t compute_ms = 500;

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void lapic_w(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC + reg) = v;
}

static inline uint32_t lapic_r(uint32_t reg)
{
	return *(volatile uint32_t *)(LAPIC + reg);
}

/* n / d without libgcc: two 32-bit divides. */
static uint64_t div64(uint64_t n, uint32_t d)
{
	uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n, qhi = hi / d, r = hi % d, qlo;

	asm("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
	return (uint64_t)qhi << 32 | qlo;
}

static void putc_port(uint16_t port, char c)
{
	while (!(inb(port + 5) & 0x20))
		;
	outb(port, (uint8_t)c);
}

static void puts_port(uint16_t port, const char *s)
{
	while (*s)
		putc_port(port, *s++);
}

static void putu_port(uint16_t port, uint64_t v)
{
	char buf[24];
	int i = 0;

	do {
		uint64_t q = div64(v, 10);

		buf[i++] = (char)('0' + (v - q * 10));
		v = q;
	} while (v);
	while (i)
		putc_port(port, buf[--i]);
}

/* "key=N" among the command line's words, or def. */
static uint32_t arg(const char *cmd, const char *key, uint32_t def)
{
	for (const char *p = cmd; p && *p; p++) {
		const char *k = key, *q = p;
		uint32_t v = 0;

		if (p != cmd && p[-1] != ' ')
			continue;
		while (*k && *q == *k)
			k++, q++;
		if (*k || *q != '=')
			continue;
		for (q++; *q >= '0' && *q <= '9'; q++)
			v = v * 10 + (uint32_t)(*q - '0');
		return v;
	}
	return def;
}

/* TSC ticks in 50 ms of PIT channel 2 (1193182 Hz, mode 0, gate on). */
static uint32_t calibrate_tsc_khz(void)
{
	const uint16_t count = 1193182 / 20;
	uint64_t t0, t1;

	outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01));
	outb(0x43, 0xb0);
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	t0 = rdtsc();
	while (!(inb(0x61) & 0x20))
		;
	t1 = rdtsc();
	return (uint32_t)div64(t1 - t0, 50);
}

static void delay_ms(uint32_t ms)
{
	uint64_t end = rdtsc() + (uint64_t)tsc_khz * ms;

	while (rdtsc() < end)
		asm volatile("pause");
}

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t zero, type;
	uint16_t off_hi;
} __attribute__((packed));

static struct idt_entry idt[256];

static void set_gate(int vec, void (*fn)(void))
{
	uint32_t a = (uint32_t)fn;

	idt[vec] = (struct idt_entry){ (uint16_t)a, 0x08, 0, 0x8e, (uint16_t)(a >> 16) };
}

static void load_idt(void)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) r = { sizeof(idt) - 1, (uint32_t)idt };

	asm volatile("lidt %0" : : "m"(r));
}

/* Local APIC timer counts per ms (divide by 1), measured against the TSC. */
static uint32_t apic_per_ms;

static void calibrate_apic(void)
{
	lapic_w(0x3e0, 0xb);
	lapic_w(0x320, 1u << 16 | TIMER_VEC);	/* masked while measured */
	lapic_w(0x380, 0xffffffffu);
	delay_ms(10);
	apic_per_ms = (0xffffffffu - lapic_r(0x390)) / 10;
	lapic_w(0x380, 0);
	if (!apic_per_ms)
		apic_per_ms = 1;
}

/*
 * Sleep (HLT) until the TSC passes `until`.  The local APIC timer runs
 * periodic (WAKE_MS): a one-shot timer armed on the source and moved by a
 * migration while the vCPU sleeps could leave it halted for good.
 */
#define WAKE_MS	10

static void start_wake_timer(void)
{
	lapic_w(0x320, 1u << 17 | TIMER_VEC);	/* periodic */
	lapic_w(0x380, apic_per_ms * WAKE_MS);
}

static int use_hlt = 1;

static void sleep_until(uint64_t until)
{
	while (rdtsc() < until) {
		if (use_hlt)
			asm volatile("sti; hlt; cli");
		else
			asm volatile("pause");
	}
}

static void start_ap(void)
{
	uint8_t *dst = (uint8_t *)TRAMP;

	for (char *s = tramp_start; s < tramp_end; s++)
		*dst++ = (uint8_t)*s;
	lapic_w(0x310, 1u << 24);
	lapic_w(0x300, 0x4500);			/* INIT */
	delay_ms(10);
	for (int i = 0; i < 2 && !ap_up; i++) {
		lapic_w(0x310, 1u << 24);
		lapic_w(0x300, 0x4600 | TRAMP >> 12);	/* start-up */
		delay_ms(5);
	}
	for (int i = 0; i < 1000 && !ap_up; i++)
		delay_ms(1);
}

void ap_main(void)
{
	uint64_t t0, t, ops = 0;
	uint32_t x = 2463534242u;

	ap_up = 1;
	t0 = rdtsc();
	for (;;) {
		for (int i = 0; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
		}
		asm volatile("" : : "r"(x));
		ops += 4096;
		t = rdtsc();
		if (t - t0 >= (uint64_t)tsc_khz * compute_ms) {
			puts_port(COM2, "lmig-guest compute ");
			putu_port(COM2, div64(ops * 1000, (uint32_t)div64((t - t0), tsc_khz)));
			puts_port(COM2, " ops/s\n");
			ops = 0;
			t0 = rdtsc();
		}
	}
}

struct multiboot_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

void bsp_main(uint32_t magic, const struct multiboot_info *mbi)
{
	const char *cmd = magic == 0x2badb002 && (mbi->flags & 4) ? (const char *)mbi->cmdline : "";
	uint32_t touch_mb = arg(cmd, "guest_touch", 32), rate_mb = arg(cmd, "guest_rate", 4);
	uint32_t tick_ms = arg(cmd, "guest_tick", 100), npages, per_tick, next = 0, tick = 0;
	uint64_t deadline, period;
	volatile uint32_t *mem = (volatile uint32_t *)MEM_BASE;

	compute_ms = arg(cmd, "guest_compute_ms", 500);
	use_hlt = (int)arg(cmd, "guest_hlt", 1);
	if (!tick_ms)
		tick_ms = 100;
	if (!compute_ms)
		compute_ms = 500;
	tsc_khz = calibrate_tsc_khz();
	for (int v = 0; v < 256; v++)
		set_gate(v, spurious_stub);
	set_gate(TIMER_VEC, timer_stub);
	load_idt();
	lapic_w(0xf0, 0x100 | SPURIOUS_VEC);	/* software-enable the local APIC */
	calibrate_apic();
	start_ap();
	start_wake_timer();

	npages = touch_mb * (1024 * 1024 / PAGE);
	for (uint32_t p = 0; p < npages; p++)
		for (uint32_t w = 0; w < PAGE / 4; w += 16)
			mem[p * (PAGE / 4) + w] = p * 2654435761u + w;
	puts_port(COM1, "lmig-guest ready touched=");
	putu_port(COM1, touch_mb);
	puts_port(COM1, " MiB rate=");
	putu_port(COM1, rate_mb);
	puts_port(COM1, " MB/s tsc_khz=");
	putu_port(COM1, tsc_khz);
	puts_port(COM1, ap_up ? " cpus=2\n" : " cpus=1\n");

	/* Pages per slice: rate_mb * 10^6 bytes per second. */
	per_tick = (uint32_t)div64((uint64_t)rate_mb * 1000000 / PAGE * tick_ms, 1000);
	period = (uint64_t)tsc_khz * tick_ms;
	deadline = rdtsc();
	for (;;) {
		uint64_t t;

		tick++;
		for (uint32_t k = 0; k < per_tick && npages; k++) {
			mem[next * (PAGE / 4) + (tick * 7 + k) % (PAGE / 4)] = tick;
			if (++next == npages)
				next = 0;
		}
		puts_port(COM1, "lmig-guest tick ");
		putu_port(COM1, tick);
		putc_port(COM1, '\n');
		deadline += period;
		t = rdtsc();
		/*
		 * Far behind (the VM was stopped), or ahead (the TSC moved back
		 * in a migration): start the beat afresh.
		 */
		if (t > deadline + (uint64_t)tsc_khz * 1000 || deadline > t + period)
			deadline = t;
		sleep_until(deadline);
	}
}

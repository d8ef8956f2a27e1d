// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm_harvest: which pages of a KVM guest's RAM lmig.ko reports, run by
 * vm/kvm.sh inside the VM with the module loaded.
 *
 *   kvm_harvest MEM PID GO HALTED
 *
 * MEM is the guest RAM (/proc/PID/fd/N of kvm_vmm's memfd), PID the VMM,
 * GO a FIFO the VMM waits on (kvm_vmm --go-fd) before its vCPU first runs,
 * HALTED the file the VMM writes its "halted" line to.  Steps:
 *
 *   1. every page of MEM is put in the page cache (pwrite of zeros, which
 *      the fresh memfd holds anyway), so the guest's writes cannot be
 *      reported as pages appearing: only through the page tables;
 *   2. attach /dev/lmig to MEM (with PID) and harvest: nothing written yet;
 *   3. release the guest (a byte into GO), wait for "halted" in HALTED;
 *   4. harvest: the guest's pages; harvest once more: nothing.
 *
 * Prints, for vm/kvm.sh to pass on:
 *   before N                  step 2's harvest: pages reported
 *   pages LIST                step 4: the pages reported (comma-separated)
 *   stats dirty=N folios=N pages=N notified=N presence=N ns=N
 *   idle N                    the harvest after that: pages reported
 * Errors: "error TEXT", exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/lmig.h>

#define PAGE	4096

static int fail(const char *what)
{
	printf("error %s: %s\n", what, strerror(errno));
	return 1;
}

static long harvest(int dev, unsigned long long *bits, unsigned long long npages,
		    struct lmig_harvest *h)
{
	memset(h, 0, sizeof(*h));
	h->bitmap = (uintptr_t)bits;
	h->bitmap_bits = npages;
	return ioctl(dev, LMIG_IOC_HARVEST, h);
}

/* Has the VMM written its "halted" line?  Up to 60 s. */
static int wait_halted(const char *path)
{
	for (int i = 0; i < 600; i++) {
		char buf[512] = "";
		FILE *f = fopen(path, "r");

		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);

			buf[n] = 0;
			fclose(f);
			if (strstr(buf, "halted"))
				return 0;
		}
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	}
	return -1;
}

int main(int argc, char **argv)
{
	static char zero[PAGE];
	unsigned long long npages, *bits;
	struct lmig_version v = { 0 };
	struct lmig_attach a = { 0 };
	struct lmig_harvest h;
	struct stat sb;
	int fd, dev, go, pid, first = 1;
	long n;

	if (argc != 5) {
		fprintf(stderr, "usage: kvm_harvest MEM PID GO HALTED\n");
		return 2;
	}
	pid = atoi(argv[2]);
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &sb))
		return fail(argv[1]);
	npages = sb.st_size / PAGE;
	bits = calloc((npages + 63) / 64, sizeof(*bits));
	if (!bits)
		return fail("calloc");
	for (unsigned long long p = 0; p < npages; p++)
		if (pwrite(fd, zero, PAGE, p * PAGE) != PAGE)
			return fail("pwrite");

	dev = open(LMIG_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0 || ioctl(dev, LMIG_IOC_VERSION, &v))
		return fail(LMIG_DEVICE);
	if (v.abi != LMIG_ABI_VERSION || v.page_shift != 12) {
		printf("error %s: ABI %u, page shift %u\n", LMIG_DEVICE, v.abi, v.page_shift);
		return 1;
	}
	a.fd = fd;
	a.length = npages * PAGE;
	a.pids = (uintptr_t)&pid;
	a.npids = 1;
	if (ioctl(dev, LMIG_IOC_ATTACH, &a))
		return fail("LMIG_IOC_ATTACH");
	n = harvest(dev, bits, npages, &h);
	if (n < 0)
		return fail("LMIG_IOC_HARVEST");
	printf("before %ld\n", n);
	fflush(stdout);

	go = open(argv[3], O_WRONLY);
	if (go < 0 || write(go, "g", 1) != 1)
		return fail(argv[3]);
	close(go);
	if (wait_halted(argv[4])) {
		printf("error the guest did not halt within 60 s\n");
		return 1;
	}

	n = harvest(dev, bits, npages, &h);
	if (n < 0)
		return fail("LMIG_IOC_HARVEST");
	printf("pages ");
	for (unsigned long long p = 0; p < npages; p++) {
		if (!(bits[p / 64] >> (p % 64) & 1))
			continue;
		printf("%s%llu", first ? "" : ",", p);
		first = 0;
	}
	printf("\nstats dirty=%llu folios=%llu pages=%llu notified=%llu presence=%llu ns=%llu\n",
	       (unsigned long long)h.dirty, (unsigned long long)h.folios,
	       (unsigned long long)h.pages, (unsigned long long)h.notified,
	       (unsigned long long)h.presence, (unsigned long long)h.ns);
	n = harvest(dev, bits, npages, &h);
	if (n < 0)
		return fail("LMIG_IOC_HARVEST");
	printf("idle %ld\n", n);
	close(dev);
	return 0;
}

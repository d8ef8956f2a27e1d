/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest of test_qmp's dirty-rate case: a boot sector (SeaBIOS loads
 * it at 0x7c00 from a raw disk) that enters 32-bit protected mode and
 * writes a pass counter into every 4 KiB page from 1 MiB to 256 MiB,
 * over and over.  Under TCG a pass takes a few tens of milliseconds, so
 * every page of a 256 MiB guest changes within any second: QEMU's page
 * sampling must then report the whole RAM block as dirtied.
 */
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	in $0x92, %al		/* A20 on (the fast gate), or odd megabytes alias */
	or $2, %al
	out %al, $0x92
	lgdtl gdt_desc
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $pm
	.code32
pm:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ecx, %ecx
1:	inc %ecx
	mov $0x100000, %edi
2:	mov %ecx, (%edi)
	add $4096, %edi
	cmp $0x10000000, %edi
	jb 2b
	jmp 1b

	.p2align 3
gdt:				/* null, flat 4 GiB code, flat 4 GiB data */
	.quad 0
	.quad 0x00cf9a000000ffff
	.quad 0x00cf92000000ffff
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	.org 510
	.word 0xaa55

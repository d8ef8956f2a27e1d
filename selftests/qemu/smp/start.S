/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Entry of the two-vCPU QEMU test guest (see smpguest.c): a Multiboot
 * header, so that `qemu-system-x86_64 -kernel` loads it and enters it in
 * 32-bit protected mode with paging off, the boot processor's entry, the
 * second processor's real-mode start-up code (copied below 1 MiB, where a
 * start-up IPI can point) and the interrupt stub of the timer that wakes a
 * sleeping processor.
 */
#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x0

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl _start
_start:
	cli
	lgdt gdtr
	ljmp $0x08, $1f
1:	movw $0x10, %cx
	movw %cx, %ds
	movw %cx, %es
	movw %cx, %ss
	movw %cx, %fs
	movw %cx, %gs
	movl $bsp_stack_top, %esp
	pushl %ebx		/* Multiboot information */
	pushl %eax		/* Multiboot magic */
	call bsp_main
2:	hlt
	jmp 2b

/* The second processor arrives here in protected mode from the trampoline. */
ap_entry32:
	movw $0x10, %cx
	movw %cx, %ds
	movw %cx, %es
	movw %cx, %ss
	movw %cx, %fs
	movw %cx, %gs
	movl $ap_stack_top, %esp
	call ap_main
3:	hlt
	jmp 3b

/* Timer interrupt: end of interrupt to the local APIC, back to the loop. */
	.globl timer_stub
timer_stub:
	movl $0, 0xfee000b0
	iret

/* Any other vector: nothing to do (none is expected). */
	.globl spurious_stub
spurious_stub:
	iret

	.section .rodata
	.align 16
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: code, flat, 32-bit */
	.quad 0x00cf92000000ffff	/* 0x10: data, flat */
gdt_end:
gdtr:
	.word gdt_end - gdt - 1
	.long gdt

/*
 * Real-mode start-up code, copied to TRAMP (a page below 1 MiB).  A
 * start-up IPI with vector TRAMP >> 12 starts the processor at
 * TRAMP >> 4 : 0, so everything here is addressed from its start.
 */
	.globl tramp_start, tramp_end
	.code16
tramp_start:
	cli
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdtr - tramp_start
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $ap_entry32
	.align 4
tramp_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
tramp_end:
	.code32

	.bss
	.align 16
	.space 16384
bsp_stack_top:
	.space 16384
ap_stack_top:

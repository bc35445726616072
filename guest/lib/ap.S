/*
 * Application processor start-up. ap_tramp is copied to AP_TRAMPOLINE
 * (below 1 MiB) and started by SIPI in real mode; it loads our GDT and
 * jumps to 32-bit code in the image, which enters long mode with the same
 * page tables. Each AP records its APIC ID and halts: no stack, no C.
 */
#include "segs.h"

	.section .rodata
	.code16
	.globl ap_tramp, ap_tramp_end
ap_tramp:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	(tramp_gdt_ptr - ap_tramp)
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	*(tramp_target - ap_tramp)
	.balign 4
tramp_target:
	.long	ap_start32
	.word	KCODE32
	.word	0
tramp_gdt_ptr:
	.word	GDT_ENTRIES * 8 - 1
	.long	gdt
ap_tramp_end:

	.text
	.code32
ap_start32:
	movl	$KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%cr4, %eax
	orl	$0x20, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax
	movl	%eax, %cr0
	ljmp	$KCODE, $ap_start64

	.code64
ap_start64:
	movl	$1, %eax
	xorl	%ecx, %ecx
	cpuid
	shrl	$24, %ebx		/* initial APIC ID */
	movl	$1, %eax
	lock xaddl %eax, ap_count
	cmpl	$MAX_CPUS, %eax
	jae	1f
	movl	%ebx, ap_ids(,%rax,4)
1:	cli
	hlt
	jmp	1b

	.data
	.globl ap_count, ap_ids
	.balign 8
ap_count:
	.long 0
ap_ids:
	.fill MAX_CPUS, 4, 0xffffffff

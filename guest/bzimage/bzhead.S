/*
 * Start of the protected-mode part of the bzImage (linked at 1 MiB):
 *   +0x000 startup_32: 32-bit entry (code32_start), ESI = boot_params
 *   +0x100 kernel_info (protocol 2.15)
 *   +0x200 startup_64: 64-bit entry, RSI = boot_params
 * The 64-bit entry may be loaded anywhere (relocatable_kernel=1): it
 * copies the image to its link address first, then uses the common path.
 */
#include "../lib/segs.h"

	.section .text.bzhead, "ax"
	.code32
	.globl startup_32
startup_32:
	cli
	cld
	movl	%esi, boot_info
	movl	$BOOT_BZ32, boot_kind
	movl	$startup_32, boot_load
	jmp	enter_long32

	.org 0x100
kernel_info:
	.ascii	"LToP"
	.long	kernel_info_end - kernel_info	/* size */
	.long	kernel_info_end - kernel_info	/* size_total */
	.long	0				/* setup_type_max */
kernel_info_end:

	.code64
	.org 0x200
	.globl startup_64
startup_64:
	cli
	cld
	leaq	startup_32(%rip), %rdx		/* where we were loaded */
	movl	$startup_32, %edi		/* where we were linked */
	cmpq	%rdi, %rdx
	je	2f
	movq	%rsi, %r9
	movq	%rdx, %rsi
	movl	$_pm_copy_size, %ecx
	cmpq	%rsi, %rdi
	jb	1f
	leaq	-1(%rsi, %rcx), %rsi		/* overlapping upwards: copy backwards */
	leaq	-1(%rdi, %rcx), %rdi
	std
1:	rep movsb
	cld
	movq	%r9, %rsi
	movl	$2f, %eax
	jmp	*%rax
2:
	movq	%rsi, boot_info
	movq	%rdx, boot_load
	movl	$BOOT_BZ64, boot_kind
	/* Our own GDT and page tables, then the common 64-bit path. */
	lgdt	gdt_ptr
	movl	$pml4, %eax
	movq	%rax, %cr3
	pushq	$KCODE
	pushq	$long_entry
	lretq

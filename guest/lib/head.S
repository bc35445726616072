/*
 * Start-up shared by every image: 32-bit protected mode (paging off) ->
 * long mode with our identity page tables -> minimal ring-0 setup ->
 * iretq to ring 3 with IOPL=3. Ring 0 does as little as possible because
 * some hosts emulate ring-0 code slowly.
 */
#include "segs.h"

	.section .text.head, "ax"
	.code32

/* PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): EBX = struct hvm_start_info. */
	.globl pvh_start
pvh_start:
	cli
	cld
	movl	%ebx, boot_info
	movl	$BOOT_PVH, boot_kind
	movl	$__image_start, boot_load
	/* fall through */

/* Any 32-bit flat entry with paging off lands here; no stack is needed. */
	.globl enter_long32
enter_long32:
	lgdt	gdt_ptr
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax	/* PG | PE */
	movl	%eax, %cr0
	ljmp	$KCODE, $long_entry

	.code64
/* 64-bit, our GDT and page tables are live. */
	.globl long_entry
long_entry:
	movl	$KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	xorl	%eax, %eax
	movl	%eax, %fs
	movl	%eax, %gs
	movabs	$kstack_top, %rsp
	call	kernel_init
	/* iretq frame: SS, RSP, RFLAGS (IOPL=3, IF=0), CS, RIP */
	pushq	$(UDATA | 3)
	movabs	$ustack_top, %rax
	pushq	%rax
	pushq	$0x3002
	pushq	$(UCODE | 3)
	movabs	$user_entry, %rax
	pushq	%rax
	iretq

/* Ring 3 from here on. Zero .bss at native speed, then run the test. */
	.text
user_entry:
	movabs	$__bss_start, %rdi
	movabs	$__bss_end, %rcx
	subq	%rdi, %rcx
	xorl	%eax, %eax
	rep stosb
	call	kit_main
1:	pause
	jmp	1b

	.data
	.globl boot_kind, boot_info, boot_load
	.balign 8
boot_info:	.quad 0
boot_load:	.quad 0
boot_kind:	.long 0

	.balign 16
	.globl gdt, gdt_ptr
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* KCODE */
	.quad 0x00cf92000000ffff	/* KDATA */
	.quad 0x00cff2000000ffff	/* UDATA */
	.quad 0x00affa000000ffff	/* UCODE */
	.quad 0, 0			/* TSS, filled by kernel_init */
	.quad 0x00cf9a000000ffff	/* KCODE32 */
gdt_end:
	.balign 8
	.word 0
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

/*
 * Identity map of 0-4 GiB with 2 MiB pages, all present/RW/user so ring 3
 * reaches RAM and MMIO (LAPIC, IOAPIC). Built at link time: no ring-0 work.
 */
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 0x7
	.quad pd + 0x1000 + 0x7
	.quad pd + 0x2000 + 0x7
	.quad pd + 0x3000 + 0x7
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.quad addr + 0x87		/* PS | U | RW | P */
	.set addr, addr + 0x200000
	.endr

	.section .stack, "aw", @nobits
	.balign 16
	.space 16384
	.globl kstack_top
kstack_top:
	.space 65536
	.globl ustack_top
ustack_top:

/*
 * bzload: a tiny PVH "boot loader" used only to exercise the bzImage
 * 64-bit entry under QEMU (which itself only uses the real-mode path).
 * QEMU passes the bzImage as the PVH module (-initrd). We load its
 * protected-mode part at 2 MiB (not its 1 MiB link address, so the
 * relocation path runs), build a zero page from the PVH start info,
 * enter long mode with identity paging and jump to +0x200, RSI = zero page.
 */
#define ZP	0x7000
#define PML4	0x9000		/* PML4, PDPT, 4 PDs: 0x9000-0xefff */
#define LOAD	0x200000

	.section .text.head, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	movl	%ebx, %ebp			/* hvm_start_info */
	movl	16(%ebp), %edx			/* modlist_paddr */
	movl	(%edx), %ebx			/* module (bzImage) address */

	/* zero page: zero, copy setup header, loader fields */
	movl	$ZP, %edi
	xorl	%eax, %eax
	movl	$1024, %ecx
	rep stosl
	leal	0x1f1(%ebx), %esi
	movl	$ZP + 0x1f1, %edi
	movl	$0x26c - 0x1f1, %ecx
	rep movsb
	movb	$0xff, ZP + 0x210		/* type_of_loader */
	movl	24(%ebp), %eax			/* cmdline_paddr */
	movl	%eax, ZP + 0x228

	/* e820 from the PVH memmap (24-byte entries -> 20-byte) */
	movl	40(%ebp), %esi
	movl	48(%ebp), %ecx
	movb	%cl, ZP + 0x1e8
	movl	$ZP + 0x2d0, %edi
1:	testl	%ecx, %ecx
	jz	2f
	pushl	%ecx
	movl	$5, %ecx
	rep movsl
	addl	$4, %esi
	popl	%ecx
	decl	%ecx
	jmp	1b
2:
	/* protected-mode part -> LOAD */
	movzbl	0x1f1(%ebx), %eax
	incl	%eax
	shll	$9, %eax
	leal	(%ebx, %eax), %esi
	movl	8(%edx), %ecx			/* module size */
	subl	%eax, %ecx
	movl	$LOAD, %edi
	rep movsb

	/* identity page tables, 4 GiB, 2 MiB pages, supervisor only */
	movl	$PML4, %edi
	xorl	%eax, %eax
	movl	$6 * 1024, %ecx
	rep stosl
	movl	$PML4 + 0x1000 + 3, PML4
	movl	$PML4 + 0x2003, PML4 + 0x1000
	movl	$PML4 + 0x3003, PML4 + 0x1008
	movl	$PML4 + 0x4003, PML4 + 0x1010
	movl	$PML4 + 0x5003, PML4 + 0x1018
	movl	$PML4 + 0x2000, %edi
	movl	$0x83, %eax
	movl	$2048, %ecx
3:	movl	%eax, (%edi)
	addl	$0x200000, %eax
	addl	$8, %edi
	loop	3b

	lgdt	gdt_ptr
	movl	%cr4, %eax
	orl	$0x20, %eax
	movl	%eax, %cr4
	movl	$PML4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax
	movl	%eax, %cr0
	ljmp	$0x08, $long64

	.code64
long64:
	movl	$0x10, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	$ZP, %esi
	movl	$LOAD + 0x200, %eax
	jmp	*%rax

	.balign 8
gdt:
	.quad	0
	.quad	0x00af9a000000ffff
	.quad	0x00cf92000000ffff
gdt_ptr:
	.word	3 * 8 - 1
	.long	gdt

	.section .note.Xen, "a", @note
	.balign 4
	.long	4, 8, 18
	.asciz	"Xen"
	.balign 4
	.quad	pvh_start

/*
 * Real-mode setup part of the bzImage: boot sector stub, the Linux x86
 * boot protocol 2.15 header, and setup code for loaders that start the
 * image in real mode (QEMU -kernel via SeaBIOS/linuxboot). It builds its
 * own zero page, asks the BIOS for the E820 map, switches to 32-bit
 * protected mode and jumps to code32_start with ESI = zero page, as the
 * protocol's 32-bit entry requires. 64-bit loaders never run this.
 */
#define ZP		0x1000	/* zero page, offset in the setup segment */
#define STACK_TOP	0x3000
#define E820_MAX	128
#define SMAP		0x534d4150

	.section .setup, "ax"
	.code16
	.globl _setup_start
_setup_start:
	.org 0x1f1
hdr:
setup_sects:	.byte	_setup_sects
root_flags:	.word	0
syssize:	.long	_syssize
ram_size:	.word	0
vid_mode:	.word	0xffff
root_dev:	.word	0
boot_flag:	.word	0xaa55
	/* 0x200: loaders jump here (setup segment + 0x20 : 0) */
		.byte	0xeb, start_of_setup - 1f
1:
header:		.ascii	"HdrS"
version:	.word	0x020f
realmode_swtch:	.long	0
start_sys_seg:	.word	0x1000
kernel_version:	.word	version_str - 0x200
type_of_loader:	.byte	0
loadflags:	.byte	0x01		/* LOADED_HIGH */
setup_move_size: .word	0x8000
code32_start:	.long	startup_32
ramdisk_image:	.long	0
ramdisk_size:	.long	0
bootsect_kludge: .long	0
heap_end_ptr:	.word	0
ext_loader_ver:	.byte	0
ext_loader_type: .byte	0
cmd_line_ptr:	.long	0
initrd_addr_max: .long	0x7fffffff
kernel_alignment: .long	0x100000
relocatable_kernel: .byte 1
min_alignment:	.byte	20		/* log2(1 MiB) */
xloadflags:	.word	0x0003		/* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
cmdline_size:	.long	4095
hardware_subarch: .long	0
hardware_subarch_data: .quad 0
payload_offset:	.long	0
payload_length:	.long	0
setup_data:	.quad	0
pref_address:	.quad	0x100000
init_size:	.long	_init_size
handover_offset: .long	0
kernel_info_offset: .long 0x100		/* see bzhead.S */
	.globl hdr_end
hdr_end:				/* bzimage.ld asserts this is 0x26c */

start_of_setup:
	cli
	cld
	/* Loader set DS = ES = SS = setup segment; make CS match, own stack. */
	movw	%ds, %ax
	movw	%ax, %es
	movw	%ax, %ss
	movw	$STACK_TOP, %sp
	pushw	%ax
	pushw	$2f
	lretw
2:
	/* Fresh zero page holding a copy of the (loader-patched) header. */
	movw	$ZP, %di
	xorw	%ax, %ax
	movw	$2048, %cx
	rep stosw
	movw	$0x1f1, %si
	movw	$ZP + 0x1f1, %di
	movw	$0x26c - 0x1f1, %cx
	rep movsb

	/* BIOS E820 map into zero page e820_table / e820_entries. */
	xorl	%ebx, %ebx
	movw	$ZP + 0x2d0, %di
3:	movl	$0xe820, %eax
	movl	$SMAP, %edx
	movl	$20, %ecx
	int	$0x15
	jc	4f
	cmpl	$SMAP, %eax
	jne	4f
	addw	$20, %di
	incb	ZP + 0x1e8
	cmpb	$E820_MAX, ZP + 0x1e8
	jae	4f
	testl	%ebx, %ebx
	jnz	3b
4:
	/* Fast A20 (normally already on). */
	inb	$0x92, %al
	orb	$0x02, %al
	andb	$0xfe, %al
	outb	%al, $0x92

	/* Linear addresses: zero page (for ESI) and our GDT. */
	xorl	%esi, %esi
	movw	%ds, %si
	shll	$4, %esi
	leal	boot_gdt(%esi), %eax
	movl	%eax, boot_gdt_ptr + 2
	addl	$ZP, %esi
	movl	code32_start, %eax
	movl	%eax, jump_target

	lgdtl	boot_gdt_ptr
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	movw	$0x18, %ax		/* __BOOT_DS */
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	ljmpl	*%cs:jump_target	/* __BOOT_CS:code32_start */

	.balign 8
boot_gdt:
	.quad	0
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x10: __BOOT_CS */
	.quad	0x00cf92000000ffff	/* 0x18: __BOOT_DS */
boot_gdt_ptr:
	.word	4 * 8 - 1
	.long	0
jump_target:
	.long	0
	.word	0x10
version_str:
	.asciz	"keel-bootparams-test"

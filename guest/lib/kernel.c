/*
 * The only C code that runs in ring 0 on the BSP: TSS and IDT set-up, and
 * the exception reporter. Kept tiny; no SSE (built -mgeneral-regs-only).
 */
#include <keel/kit.h>
#include "segs.h"

struct tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} __attribute__((packed));

struct idt_gate {
	u16 off_lo;
	u16 sel;
	u8 ist;
	u8 type;
	u16 off_mid;
	u32 off_hi;
	u32 reserved;
};

struct trap_frame {
	u64 vec, err, rip, cs, rflags, rsp, ss;
};

extern u64 gdt[GDT_ENTRIES];
extern char trap_stubs[];
extern char kstack_top[];

/* In .data, not .bss: ring 3 zeroes .bss after kernel_init has run. */
#define KDATA_SECTION __attribute__((section(".data"), aligned(16)))
static struct tss tss KDATA_SECTION;
static struct idt_gate idt[32] KDATA_SECTION;

void kernel_init(void)
{
	u64 base = (u64)&tss;
	struct { u16 limit; u64 base; } __attribute__((packed)) idtr;
	int i;

	tss.rsp[0] = (u64)kstack_top;
	tss.iomap_base = sizeof(tss);	/* no I/O bitmap: IOPL=3 decides */
	gdt[TSS_SEL / 8] = (sizeof(tss) - 1) | ((base & 0xffffff) << 16) |
			   (0x89ULL << 40) | ((base >> 24 & 0xff) << 56);
	gdt[TSS_SEL / 8 + 1] = base >> 32;

	for (i = 0; i < 32; i++) {
		u64 h = (u64)trap_stubs + 16 * i;

		idt[i].off_lo = h;
		idt[i].sel = KCODE;
		idt[i].type = 0x8e;	/* present, DPL 0, interrupt gate */
		idt[i].off_mid = h >> 16;
		idt[i].off_hi = h >> 32;
	}
	idtr.limit = sizeof(idt) - 1;
	idtr.base = (u64)idt;
	asm volatile("lidt %0" :: "m"(idtr) : "memory");
	asm volatile("ltr %w0" :: "r"(TSS_SEL) : "memory");
}

void trap_handler(struct trap_frame *f)
{
	fail("exception: vector=%llu err=%#llx rip=%#llx cs=%#llx rsp=%#llx",
	     f->vec, f->err, f->rip, f->cs, f->rsp);
	test_end();
}

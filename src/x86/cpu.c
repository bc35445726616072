// SPDX-License-Identifier: MIT
/* x86 vCPU state at power-on and at the boot loader's entry point. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm/kvm.h"
#include "x86/layout.h"
#include "x86/x86.h"

#define CPUID_HYPERVISOR        (1U << 31)      /* leaf 1 ECX */
#define CPUID_HTT               (1U << 28)      /* leaf 1 EDX */

#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_MTRR_DEF_TYPE       0x2ff
#define MSR_IA32_TSC            0x10
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102

#define MISC_ENABLE_FAST_STRING 1
#define MTRR_ENABLE_WB          ((1 << 11) | 6)

#define APIC_LVT0               0x350
#define APIC_LVT1               0x360
#define APIC_MODE_NMI           (4 << 8)
#define APIC_MODE_EXTINT        (7 << 8)

#define X86_CR0_PE              (1ULL << 0)
#define X86_CR0_MP              (1ULL << 1)
#define X86_CR0_ET              (1ULL << 4)
#define X86_CR0_NE              (1ULL << 5)
#define X86_CR0_WP              (1ULL << 16)
#define X86_CR0_PG              (1ULL << 31)
#define X86_CR4_PAE             (1ULL << 5)
#define EFER_LME                (1ULL << 8)
#define EFER_LMA                (1ULL << 10)
#define X86_EFLAGS_IF           (1ULL << 9)

/* GDT selectors shared by both entry modes (Linux's __BOOT_CS/__BOOT_DS). */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA   0x18
#define SEL_TSS    0x20

static const uint64_t boot_gdt[] = {
	0,
	0x00cf9b000000ffffULL,  /* 0x08: 32-bit code, flat */
	0x00af9b000000ffffULL,  /* 0x10: 64-bit code */
	0x00cf93000000ffffULL,  /* 0x18: data, flat */
	0x00008b0000000067ULL,  /* 0x20: TSS (busy), base 0: entry needs a valid TR */
};

static unsigned int order_base_2(unsigned int n)
{
	unsigned int s = 0;

	while ((1U << s) < n)
		s++;
	return s;
}

static int setup_cpuid(const struct kvm *kvm, int fd, unsigned int id, unsigned int nr_cpus,
		       keel_error **err)
{
	const struct kvm_cpuid2 *sup = kvm->cpuid;
	unsigned int core_shift = order_base_2(nr_cpus);
	struct kvm_cpuid2 *c;
	size_t size = sizeof(*c) + sup->nent * sizeof(c->entries[0]);
	int ret;

	c = malloc(size);
	if (!c)
		return err_set(err, KEEL_ERR_NOMEM, "out of memory setting CPUID");
	memcpy(c, sup, size);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* Initial APIC ID and logical processor count. */
			e->ebx = (e->ebx & 0xffff) | (id << 24) |
				 ((nr_cpus > 1 ? (1U << core_shift) : 1) << 16);
			e->ecx |= CPUID_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= CPUID_HTT;
			break;
		case 0xb:
		case 0x1f:
			/* One package, one thread per core, nr_cpus cores. */
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1 << 8) | 0;
			} else if (e->index == 1) {
				e->eax = core_shift;
				e->ebx = nr_cpus;
				e->ecx = (2 << 8) | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index & 0xff;
			}
			break;
		case 4:
			/* Intel: cores per package in every cache descriptor. */
			e->eax = (e->eax & 0x3ffffff) | ((nr_cpus - 1) << 26);
			break;
		case 0x80000008:
			/* AMD: core count and APIC ID width. */
			e->ecx = (e->ecx & ~0xf0ffU) | (core_shift << 12) | (nr_cpus - 1);
			break;
		}
	}
	ret = ioctl(fd, KVM_SET_CPUID2, c);
	free(c);
	if (ret < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_CPUID2 on vCPU %u failed",
				 id);
	return 0;
}

static int setup_msrs(int fd, unsigned int id, keel_error **err)
{
	static const struct { uint32_t index; uint64_t value; } init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB },
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	/* kvm_msrs ends in a flexible array: give it room for N entries. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + N * sizeof(struct kvm_msr_entry)];
	} msrs;
	int ret;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = N;
	for (int i = 0; i < N; i++) {
		msrs.hdr.entries[i].index = init[i].index;
		msrs.hdr.entries[i].data = init[i].value;
	}
	ret = ioctl(fd, KVM_SET_MSRS, &msrs);
	if (ret < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_MSRS on vCPU %u failed", id);
	if (ret != N)
		return err_set(err, KEEL_ERR_KVM, "KVM refused MSR 0x%x on vCPU %u",
			       msrs.hdr.entries[ret].index, id);
	return 0;
}

static int setup_fpu(int fd, unsigned int id, keel_error **err)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;        /* x87 power-on control word: all exceptions masked */
	fpu.mxcsr = 0x1f80;
	if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_FPU on vCPU %u failed", id);
	return 0;
}

static int setup_lapic(int fd, unsigned int id, keel_error **err)
{
	struct kvm_lapic_state lapic;
	uint32_t v;

	if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_LAPIC on vCPU %u failed",
				 id);
	/* Virtual wire: the PIC's INTR on LINT0, NMI on LINT1, as BIOSes leave it. */
	memcpy(&v, &lapic.regs[APIC_LVT0], 4);
	v = (v & ~0x1ffffU) | APIC_MODE_EXTINT;
	memcpy(&lapic.regs[APIC_LVT0], &v, 4);
	memcpy(&v, &lapic.regs[APIC_LVT1], 4);
	v = (v & ~0x1ffffU) | APIC_MODE_NMI;
	memcpy(&lapic.regs[APIC_LVT1], &v, 4);
	if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_LAPIC on vCPU %u failed",
				 id);
	return 0;
}

int x86_vcpu_setup(const struct kvm *kvm, int fd, unsigned int id, unsigned int nr_cpus,
		   keel_error **err)
{
	if (setup_cpuid(kvm, fd, id, nr_cpus, err) || setup_msrs(fd, id, err) ||
	    setup_fpu(fd, id, err) || setup_lapic(fd, id, err))
		return -1;
	return 0;
}

static struct kvm_segment segment(uint16_t sel, uint8_t type, bool code64, bool db)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = db, .s = 1, .l = code64, .g = 1,
	};
}

int x86_vcpu_set_entry(int fd, const struct boot_entry *entry, keel_error **err)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	bool long64 = entry->mode == BOOT_MODE_LONG64;

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_SREGS failed");
	sregs.cs = long64 ? segment(SEL_CODE64, 11, true, false) : segment(SEL_CODE32, 11, false, true);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(SEL_DATA, 3, false, true);
	sregs.tr = (struct kvm_segment){ .selector = SEL_TSS, .limit = 0x67, .type = 11,
					 .present = 1 };
	sregs.ldt = (struct kvm_segment){ .type = 2, .unusable = 1 };
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0xffff;
	if (long64) {
		sregs.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = X86_CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
	} else {
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
	}
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_SREGS failed");

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;        /* bit 1 is reserved and always set */
	regs.rip = entry->rip;
	/* Not required by the protocols, but code that pushes before it sets
	 * up its own stack should not fault: give it the page below the tables. */
	regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
	regs.rsi = entry->rsi;
	regs.rbx = entry->rbx;
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_REGS failed");
	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_MP_STATE failed");
	return 0;
}

int x86_vcpu_set_reset(int fd, keel_error **err)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_segment data = { .limit = 0xffff, .type = 3, .present = 1, .s = 1 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0xfff0, .rflags = 2 };

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_SREGS failed");
	/* Real mode at F000:FFF0 with CS based at 0xFFFF0000: the last 16 bytes below 4 GiB. */
	sregs.cs = (struct kvm_segment){ .base = 0xffff0000, .limit = 0xffff, .selector = 0xf000,
					 .type = 11, .present = 1, .s = 1 };
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = (struct kvm_segment){ .limit = 0xffff, .type = 11, .present = 1 };
	sregs.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	sregs.gdt = (struct kvm_dtable){ .limit = 0xffff };
	sregs.idt = (struct kvm_dtable){ .limit = 0xffff };
	sregs.cr0 = X86_CR0_ET | (1ULL << 29) | (1ULL << 30);      /* CD and NW, as after RESET */
	sregs.cr2 = sregs.cr3 = sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_SREGS failed");
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_REGS failed");
	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_MP_STATE failed");
	return 0;
}

bool x86_vcpu_stuck(int fd)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;

	if (ioctl(fd, KVM_GET_MP_STATE, &mp) < 0)
		return false;
	switch (mp.mp_state) {
	case KVM_MP_STATE_UNINITIALIZED:        /* waits for a SIPI */
	case KVM_MP_STATE_INIT_RECEIVED:
		return true;
	case KVM_MP_STATE_HALTED:
		/* HLT with IF clear: only an NMI, SMI or INIT could wake it. */
		return ioctl(fd, KVM_GET_REGS, &regs) == 0 && !(regs.rflags & X86_EFLAGS_IF);
	default:
		return false;
	}
}

int x86_vcpu_set_waiting(int fd, unsigned int id, keel_error **err)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };

	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_MP_STATE on vCPU %u failed",
				 id);
	return 0;
}

void x86_write_boot_tables(struct mem *mem)
{
	uint64_t *pml4 = mem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = mem_ptr(mem, LAYOUT_PD, 4 * 4096);

	memcpy(mem_ptr(mem, LAYOUT_GDT, sizeof(boot_gdt)), boot_gdt, sizeof(boot_gdt));
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3;                    /* present, writable */
	for (int i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096ULL) | 0x3;
	for (int i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;     /* 2 MiB page */
}

/* ---- in-kernel irqchip and PIT state ---- */

struct x86_platform_state {
	struct kvm_irqchip chip[3];     /* PIC master, PIC slave, IOAPIC */
	struct kvm_pit_state2 pit;
};

struct x86_platform_state *x86_platform_save(struct kvm *kvm, keel_error **err)
{
	struct x86_platform_state *st = calloc(1, sizeof(*st));

	if (!st) {
		err_set(err, KEEL_ERR_NOMEM, "out of memory saving the interrupt controllers");
		return NULL;
	}
	for (int i = 0; i < 3; i++) {
		st->chip[i].chip_id = i;
		if (ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &st->chip[i]) < 0) {
			err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_IRQCHIP %d failed", i);
			goto fail;
		}
	}
	if (ioctl(kvm->vm_fd, KVM_GET_PIT2, &st->pit) < 0) {
		err_errno(err, KEEL_ERR_KVM, errno, "KVM_GET_PIT2 failed");
		goto fail;
	}
	return st;
fail:
	free(st);
	return NULL;
}

int x86_platform_restore(struct kvm *kvm, const struct x86_platform_state *st,
			 keel_error **err)
{
	for (int i = 0; i < 3; i++)
		if (ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &st->chip[i]) < 0)
			return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_IRQCHIP %d failed", i);
	if (ioctl(kvm->vm_fd, KVM_SET_PIT2, &st->pit) < 0)
		return err_errno(err, KEEL_ERR_KVM, errno, "KVM_SET_PIT2 failed");
	return 0;
}

void x86_platform_state_free(struct x86_platform_state *st)
{
	free(st);
}

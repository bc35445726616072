/* SPDX-License-Identifier: MIT */
/* x86-64 machine set-up: vCPU state, boot tables, MP table. */
#ifndef KEEL_X86_X86_H
#define KEEL_X86_X86_H

#include <stdbool.h>

#include "boot/boot.h"
#include "core/error.h"
#include "kvm/mem.h"

struct kvm;

/* Highest CPU count the machine describes (8-bit xAPIC IDs, IOAPIC takes one). */
#define X86_MAX_CPUS 254

/*
 * vCPUs are KVM vCPU descriptors (`fd`) here, numbered `id` (= APIC ID).
 * CPUID, MSRs, FPU and LAPIC at power-on; also used on reset.
 */
int x86_vcpu_setup(const struct kvm *kvm, int fd, unsigned int id, unsigned int nr_cpus,
		   keel_error **err);
/* Registers of the boot vCPU for a loader's entry point. */
int x86_vcpu_set_entry(int fd, const struct boot_entry *entry, keel_error **err);
/*
 * Whether the vCPU waits for something no other vCPU in its state can send:
 * halted with interrupts disabled, or waiting for INIT/SIPI.  Called on the
 * vCPU's own thread, between runs.
 */
bool x86_vcpu_stuck(int fd);
/* The boot vCPU as after RESET: real mode at F000:FFF0 (firmware boots). */
int x86_vcpu_set_reset(int fd, keel_error **err);
/* APs wait for INIT/SIPI from the guest, as on real hardware. */
int x86_vcpu_set_waiting(int fd, unsigned int id, keel_error **err);
/* GDT and identity page tables that BOOT_MODE_LONG64 entries use. */
void x86_write_boot_tables(struct mem *mem);
/* A PCI slot's INTA# and the IOAPIC pin it drives. */
struct mp_pci_irq {
	uint8_t slot;
	uint8_t gsi;
};
/* Intel MultiProcessor table: CPUs, IOAPIC, ISA IRQs and PCI INTA# lines. */
int mptable_write(struct mem *mem, unsigned int nr_cpus, const struct mp_pci_irq *pci,
		  int nr_pci, keel_error **err);
/*
 * An error describing why a vCPU stopped: `what`, then its registers and the
 * instruction bytes at RIP.
 */
keel_error *x86_vcpu_error(int fd, const struct mem *mem, const char *what);

/* In-kernel irqchip and PIT state at power-on, restored on guest reset. */
struct x86_platform_state;
struct x86_platform_state *x86_platform_save(struct kvm *kvm, keel_error **err);
int x86_platform_restore(struct kvm *kvm, const struct x86_platform_state *st,
			 keel_error **err);
void x86_platform_state_free(struct x86_platform_state *st);

#endif

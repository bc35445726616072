/* SPDX-License-Identifier: MIT */
/* /dev/kvm and the KVM VM file descriptor. */
#ifndef KEEL_KVM_KVM_H
#define KEEL_KVM_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#define KVM_DEVICE_PATH "/dev/kvm"

struct kvm_cpuid2;

struct kvm {
	int sys_fd;
	int vm_fd;
	int run_size;           /* size of each vCPU's kvm_run mapping */
	unsigned int max_vcpus;
	struct kvm_cpuid2 *cpuid;       /* KVM_GET_SUPPORTED_CPUID */
};

/*
 * Opens /dev/kvm and checks the API version and the capabilities keel
 * needs.  Fills sys_fd, run_size, max_vcpus and cpuid; vm_fd stays -1.
 */
int kvm_open(struct kvm *kvm, keel_error **err);
/* Creates the VM with in-kernel irqchip and PIT, TSS and identity map. */
int kvm_create_vm(struct kvm *kvm, keel_error **err);
void kvm_close(struct kvm *kvm);
/* Guest physical address bits KVM offers (CPUID 0x80000008; 36 without it). */
unsigned int kvm_phys_bits(const struct kvm *kvm);
/*
 * Maps host memory at `gpa` as memory slot `slot` (size 0 removes the
 * slot).  read_only: guest writes exit as MMIO (KVM_MEM_READONLY).
 */
int kvm_set_memory(struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
		   bool read_only, keel_error **err);
int kvm_irq_line(struct kvm *kvm, unsigned int gsi, int level);

#endif

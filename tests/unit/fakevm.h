/* SPDX-License-Identifier: MIT */
/*
 * A struct keel_vm without KVM for the unit tests: the parts a test asks
 * for (buses, event loop, guest RAM, MSI routing, PCI host, one device),
 * built for real; the KVM descriptors are -1, or a descriptor the test
 * fakes by defining its own ioctl() (see test-virtio-pci.c).  Any set-up
 * failure prints why and exits 1.
 */
#ifndef KEEL_TEST_FAKEVM_H
#define KEEL_TEST_FAKEVM_H

#include <stdint.h>

#include "core/vm.h"

enum {
	FAKE_VM_PIO  = 1 << 0,  /* vm->pio */
	FAKE_VM_MMIO = 1 << 1,  /* vm->mmio */
	FAKE_VM_LOOP = 1 << 2,  /* vm->loop, started */
	FAKE_VM_IRQ  = 1 << 3,  /* vm->irq (MSI routes), through the KVM descriptor */
	FAKE_VM_PCI  = 1 << 4,  /* the PCI host (needs PIO, MMIO and IRQ) */
};

struct fake_vm_opts {
	unsigned int flags;     /* FAKE_VM_* */
	uint64_t mem_size;      /* guest RAM in vm->mem; 0: none */
	int kvm_fd;             /* kvm.sys_fd and kvm.vm_fd; 0 means none (-1) */
	unsigned int cpus;      /* cfg.cpus */
	keel_virtio_transport transport;        /* cfg.transport */
	keel_log_cb log_cb;     /* cfg.log_cb, at KEEL_LOG_DEBUG; NULL: none */
	/* A device to create last (e.g. rtc_create); NULL: none. */
	int (*create)(struct keel_vm *vm, keel_error **err);
};

struct keel_vm *fake_vm_new(const struct fake_vm_opts *opts);
/* Starts vm->loop on a VM built without FAKE_VM_LOOP. */
void fake_vm_start_loop(struct keel_vm *vm);
/* Destroys the devices (newest first), then everything fake_vm_new() built. */
void fake_vm_free(struct keel_vm *vm);
/* One-byte port I/O on vm->pio, as the guest's in/out instructions. */
uint8_t fake_vm_inb(struct keel_vm *vm, uint16_t port);
void fake_vm_outb(struct keel_vm *vm, uint16_t port, uint8_t v);

#endif

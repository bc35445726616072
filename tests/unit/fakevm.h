/* SPDX-License-Identifier: MIT */
/*
 * A device context without KVM for the unit tests: the parts a test asks
 * for (buses, event loop, guest RAM, MSI routing, PCI host, one device),
 * built for real, as the machine builder would; the KVM descriptors are -1,
 * or a descriptor the test fakes by defining its own ioctl() (see
 * test-virtio-pci.c).  Stop requests are recorded.  Any set-up failure
 * prints why and exits 1.
 */
#ifndef KEEL_TEST_FAKEVM_H
#define KEEL_TEST_FAKEVM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/devctx.h"
#include "kvm/irq.h"
#include "kvm/kvm.h"
#include "kvm/mem.h"
#include "pci/pci.h"

enum {
	FAKE_VM_PIO  = 1 << 0,  /* ctx.pio */
	FAKE_VM_MMIO = 1 << 1,  /* ctx.mmio */
	FAKE_VM_LOOP = 1 << 2,  /* ctx.loop, started */
	FAKE_VM_IRQ  = 1 << 3,  /* ctx.irq (MSI routes), through the KVM descriptor */
	FAKE_VM_PCI  = 1 << 4,  /* the PCI host and a host bridge at 00:00.0 (needs PIO, MMIO, IRQ) */
};

struct fake_vm_opts {
	unsigned int flags;     /* FAKE_VM_* */
	uint64_t mem_size;      /* guest RAM in ctx.mem; 0: none */
	int kvm_fd;             /* kvm.sys_fd and kvm.vm_fd; 0 means none (-1) */
	unsigned int cpus;      /* ctx.nr_cpus */
	keel_log_cb log_cb;     /* ctx.log, at KEEL_LOG_DEBUG; NULL: none */
	/* A device to create last (e.g. rtc_create); NULL: none. */
	int (*create)(struct devctx *ctx, keel_error **err);
};

struct fake_vm {
	struct devctx ctx;
	struct kvm kvm;
	struct mem mem;
	struct irq_routing irq;
	struct pci_host *pci;
	struct pci_dev host_bridge;
	/* What the devices asked for through devctx_request_stop(). */
	keel_stop_reason reason;        /* the first reason */
	bool stop_requested;
};

struct fake_vm *fake_vm_new(const struct fake_vm_opts *opts);
/* Starts ctx.loop on a VM built without FAKE_VM_LOOP. */
void fake_vm_start_loop(struct fake_vm *vm);
/* Destroys the devices (newest first), then everything fake_vm_new() built. */
void fake_vm_free(struct fake_vm *vm);
/* One-byte port I/O on ctx.pio, as the guest's in/out instructions. */
uint8_t fake_vm_inb(struct fake_vm *vm, uint16_t port);
void fake_vm_outb(struct fake_vm *vm, uint16_t port, uint8_t v);

#endif

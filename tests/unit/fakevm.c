// SPDX-License-Identifier: MIT
/* The unit tests' fake VM: see fakevm.h. */
#include <stdio.h>
#include <stdlib.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "x86/layout.h"
#include "fakevm.h"

static void die(keel_error *err)
{
	fprintf(stderr, "cannot build the fake VM: %s\n", err ? keel_error_get_message(err) : "?");
	exit(1);
}

static void record_stop(void *owner, keel_stop_reason reason, keel_error *detail)
{
	struct fake_vm *vm = owner;

	if (vm->reason == KEEL_STOP_NONE)
		vm->reason = reason;
	vm->stop_requested = true;
	keel_error_free(detail);
}

static const struct devctx_ops fake_ops = { .request_stop = record_stop };

struct fake_vm *fake_vm_new(const struct fake_vm_opts *o)
{
	struct fake_vm *vm = calloc(1, sizeof(*vm));
	keel_error *err = NULL;

	if (!vm)
		die(NULL);
	vm->kvm.sys_fd = o->kvm_fd ? o->kvm_fd : -1;
	vm->kvm.vm_fd = o->kvm_fd ? o->kvm_fd : -1;
	vm->mem.fd = -1;
	vm->ctx.kvm = &vm->kvm;
	vm->ctx.mem = &vm->mem;
	vm->ctx.irq = &vm->irq;
	vm->ctx.nr_cpus = o->cpus;
	vm->ctx.ops = &fake_ops;
	vm->ctx.owner = vm;
	if (o->log_cb)
		vm->ctx.log = (struct logger){ .cb = o->log_cb, .level = KEEL_LOG_DEBUG };
	if ((o->flags & FAKE_VM_PIO) && !(vm->ctx.pio = bus_new("pio", &err)))
		die(err);
	if ((o->flags & FAKE_VM_MMIO) && !(vm->ctx.mmio = bus_new("mmio", &err)))
		die(err);
	if (o->flags & FAKE_VM_LOOP)
		fake_vm_start_loop(vm);
	if (o->mem_size && mem_init(&vm->mem, o->mem_size, false, &err))
		die(err);
	if ((o->flags & FAKE_VM_IRQ) && irq_routing_init(&vm->irq, &vm->kvm, &err))
		die(err);
	if (o->flags & FAKE_VM_PCI) {
		const struct pci_windows win = {
			.io_base = LAYOUT_PCI_IO, .io_size = LAYOUT_PCI_IO_SIZE,
			.mem_base = LAYOUT_PCI_MMIO32, .mem_size = LAYOUT_PCI_MMIO32_SIZE,
			.ecam_base = LAYOUT_PCI_ECAM, .ecam_size = LAYOUT_PCI_ECAM_SIZE,
		};

		if (!(vm->pci = pci_host_create(&vm->ctx, &win, &err)))
			die(err);
		/* As the board's chipset: devices then start at slot 1. */
		pci_dev_init(&vm->host_bridge, &vm->ctx, "host-bridge", NULL, 0x8086, 0x1237,
			     0x060000, 0, 0, 0);
		if (pci_register_fn(vm->pci, &vm->host_bridge, 0, &err))
			die(err);
	}
	if (o->create && o->create(&vm->ctx, &err))
		die(err);
	return vm;
}

void fake_vm_start_loop(struct fake_vm *vm)
{
	keel_error *err = NULL;

	vm->ctx.loop = loop_new(&err);
	if (!vm->ctx.loop || loop_start(vm->ctx.loop, KEEL_SANDBOX_OFF, &err))
		die(err);
}

void fake_vm_free(struct fake_vm *vm)
{
	pci_unregister(&vm->host_bridge);
	devctx_destroy_devices(&vm->ctx);
	loop_free(vm->ctx.loop);
	irq_routing_fini(&vm->irq);
	mem_fini(&vm->mem);
	bus_free(vm->ctx.pio);
	bus_free(vm->ctx.mmio);
	free(vm);
}

uint8_t fake_vm_inb(struct fake_vm *vm, uint16_t port)
{
	uint8_t v = 0;

	bus_access(vm->ctx.pio, port, &v, 1, false);
	return v;
}

void fake_vm_outb(struct fake_vm *vm, uint16_t port, uint8_t v)
{
	bus_access(vm->ctx.pio, port, &v, 1, true);
}

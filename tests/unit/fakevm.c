// SPDX-License-Identifier: MIT
/* The unit tests' fake VM: see fakevm.h. */
#include <stdio.h>
#include <stdlib.h>

#include "bus/bus.h"
#include "core/loop.h"
#include "pci/pci.h"
#include "fakevm.h"

static void die(keel_error *err)
{
	fprintf(stderr, "cannot build the fake VM: %s\n", err ? keel_error_get_message(err) : "?");
	exit(1);
}

struct keel_vm *fake_vm_new(const struct fake_vm_opts *o)
{
	struct keel_vm *vm = calloc(1, sizeof(*vm));
	keel_error *err = NULL;

	if (!vm)
		die(NULL);
	vm->kvm.sys_fd = o->kvm_fd ? o->kvm_fd : -1;
	vm->kvm.vm_fd = o->kvm_fd ? o->kvm_fd : -1;
	vm->control_fd = -1;
	vm->state_fd = -1;
	vm->cfg.cpus = o->cpus;
	vm->cfg.transport = o->transport;
	if (o->log_cb) {
		vm->cfg.log_cb = o->log_cb;
		vm->cfg.log_level = KEEL_LOG_DEBUG;
	}
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	if ((o->flags & FAKE_VM_PIO) && !(vm->pio = bus_new("pio", &err)))
		die(err);
	if ((o->flags & FAKE_VM_MMIO) && !(vm->mmio = bus_new("mmio", &err)))
		die(err);
	if (o->flags & FAKE_VM_LOOP)
		fake_vm_start_loop(vm);
	if (o->mem_size && mem_init(&vm->mem, o->mem_size, false, &err))
		die(err);
	if ((o->flags & FAKE_VM_IRQ) && irq_routing_init(&vm->irq, &vm->kvm, &err))
		die(err);
	if ((o->flags & FAKE_VM_PCI) && pci_host_create(vm, &err))
		die(err);
	if (o->create && o->create(vm, &err))
		die(err);
	return vm;
}

void fake_vm_start_loop(struct keel_vm *vm)
{
	keel_error *err = NULL;

	vm->loop = loop_new(&err);
	if (!vm->loop || loop_start(vm->loop, &err))
		die(err);
}

void fake_vm_free(struct keel_vm *vm)
{
	while (vm->devs) {
		struct vdev *d = vm->devs;

		vm->devs = d->next;
		d->destroy(d);
	}
	loop_free(vm->loop);
	irq_routing_fini(&vm->irq);
	if (vm->mem.host)       /* a zeroed struct mem is not finished (fd 0) */
		mem_fini(&vm->mem);
	bus_free(vm->pio);
	bus_free(vm->mmio);
	keel_error_free(vm->stop_err);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

uint8_t fake_vm_inb(struct keel_vm *vm, uint16_t port)
{
	uint8_t v = 0;

	bus_access(vm->pio, port, &v, 1, false);
	return v;
}

void fake_vm_outb(struct keel_vm *vm, uint16_t port, uint8_t v)
{
	bus_access(vm->pio, port, &v, 1, true);
}

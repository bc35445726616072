/* SPDX-License-Identifier: MIT */
/*
 * The device context: all a device may use of the VM it belongs to.  The
 * machine builder (board/machine.c) fills one in and hands it to every
 * device it creates; devices never see struct keel_vm.
 *
 *  - logging:          log (log_msg / log_limited)
 *  - address spaces:   pio, mmio (bus_add / bus_del)
 *  - guest memory:     mem (mem_ptr)
 *  - the event thread: loop (loop_add / loop_del)
 *  - interrupts:       kvm (kvm_irq_line for ISA/INTx lines, irqfds,
 *                      ioeventfds), irq (GSI routes for MSIs)
 *  - threads:          sandbox, the mode their I/O threads start with
 *                      (thread_spawn, core/thread.h)
 *  - the machine:      nr_cpus; devctx_request_stop (reset or power-off
 *                      lines, errors that end the run)
 *  - the device list:  devctx_add: the VM resets its devices with the guest
 *                      and destroys them with itself, newest first
 */
#ifndef KEEL_CORE_DEVCTX_H
#define KEEL_CORE_DEVCTX_H

#include <keel/keel.h>

#include "core/log.h"

struct bus;
struct irq_routing;
struct kvm;
struct loop;
struct mem;

/* The common part every emulated device embeds. */
struct vdev {
	const char *name;
	void (*reset)(struct vdev *dev);    /* guest reset; may be NULL */
	void (*destroy)(struct vdev *dev);
	struct vdev *next;
};

/* What the VM answers for its devices (set by the VM core). */
struct devctx_ops {
	/*
	 * Ends the current run with `reason` (first caller wins); `detail`
	 * (may be NULL) passes to the VM.  Safe from any thread.
	 */
	void (*request_stop)(void *owner, keel_stop_reason reason, keel_error *detail);
};

struct devctx {
	struct logger log;
	struct bus *pio;
	struct bus *mmio;
	struct mem *mem;
	struct loop *loop;              /* NULL in some unit tests and fuzzers */
	struct kvm *kvm;
	struct irq_routing *irq;        /* KVM GSI routes for MSIs */
	unsigned int nr_cpus;
	int sandbox;                    /* keel_sandbox_mode: for the threads devices start */
	const struct devctx_ops *ops;
	void *owner;
	struct vdev *devs;              /* newest first */
};

/* The device is the VM's from now on: reset with the guest, destroyed with the VM. */
void devctx_add(struct devctx *ctx, struct vdev *dev);
/* Guest reset: every device's reset, newest first. */
void devctx_reset_devices(struct devctx *ctx);
/* Destroys every device, newest first. */
void devctx_destroy_devices(struct devctx *ctx);
/* See devctx_ops.request_stop; frees `detail` when nobody answers. */
void devctx_request_stop(struct devctx *ctx, keel_stop_reason reason, keel_error *detail);

#endif

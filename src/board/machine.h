/* SPDX-License-Identifier: MIT */
/*
 * The machine builder: the one place that assembles a VM's machine from its
 * configuration (like Firecracker's builder.rs).  It lays out guest memory,
 * creates the buses and every device in order, keeps the registries the
 * runtime API finds devices in, and loads the boot loader's images with the
 * tables and command line the guest needs.  It is the only file that
 * includes device headers; the VM core (vm/vm.c) sees just this interface.
 */
#ifndef KEEL_BOARD_MACHINE_H
#define KEEL_BOARD_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/objects.h"
#include "core/devctx.h"

struct kvm;
struct loop;
struct machine;
struct vcpu;
struct virtio_net;

/*
 * Guest RAM, buses and every configured device, over the VM `kvm` (created,
 * no vCPUs yet) and the event loop `loop` (running).  `cfg` (validated)
 * must outlive the machine.  `ops`/`owner` answer the devices' stop
 * requests (devctx.h).
 */
struct machine *machine_new(const struct vm_config *cfg, struct kvm *kvm, struct loop *loop,
			    const struct devctx_ops *ops, void *owner, keel_error **err);
/* Destroys the devices (newest first), then guest RAM and the buses. */
void machine_free(struct machine *m);
/* The device context: what the vCPUs dispatch their exits to. */
struct devctx *machine_devctx(struct machine *m);
/*
 * Puts the machine in its power-on state with the boot images loaded: the
 * boot vCPU at the loader's entry, the others waiting for INIT/SIPI.
 * `reload`: a run happened, so RAM, the irqchip, the devices and the vCPUs
 * are reset first.  `vcpus` has cfg->cpus entries.
 */
int machine_load(struct machine *m, struct vcpu *vcpus, bool reload, keel_error **err);
/* Presses the ACPI power button (piix.h); -1 when the guest does not listen. */
int machine_power_button(struct machine *m, keel_error **err);
/* Network device `index`, or NULL (and err) when there is none. */
struct virtio_net *machine_nic(struct machine *m, unsigned int index, keel_error **err);
/*
 * The kernel command line: `cmdline` plus where the first `nr_mmio`
 * virtio-mmio devices are (" virtio_mmio.device=0x200@0xBASE:IRQ" each:
 * they have no bus to be found on).  -1 when it does not fit in `len`
 * bytes with its NUL.
 */
int machine_cmdline(const char *cmdline, int nr_mmio, char *buf, size_t len);
/*
 * The default MAC address of network device `index`: locally administered,
 * derived from the machine identifier (or the kernel path), the same at
 * every boot.
 */
void machine_default_mac(const struct vm_config *cfg, int index, uint8_t mac[6]);

#endif

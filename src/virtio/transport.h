/* SPDX-License-Identifier: MIT */
/*
 * virtio transports: modern virtio-pci (virtio/pci.c) and virtio-mmio
 * version 2 (virtio/mmio.c).
 *
 * Attaching: the device has called virtio_dev_init() (and set up whatever
 * it watches); on success the transport owns it: it is registered with
 * vm_add_vdev(), reset with the VM (status 0) and, when the VM is
 * destroyed, stopped, removed from the guest's view and released through
 * ops->destroy (which calls virtio_dev_fini() and frees it).  On failure
 * nothing is kept and the caller still owns the device.
 */
#ifndef KEEL_VIRTIO_TRANSPORT_H
#define KEEL_VIRTIO_TRANSPORT_H

#include <stddef.h>

#include "core/error.h"

struct keel_vm;
struct virtio_dev;

/* PCI or MMIO, as vm->cfg.transport says. */
int virtio_attach(struct keel_vm *vm, struct virtio_dev *vdev, keel_error **err);
int virtio_pci_attach(struct keel_vm *vm, struct virtio_dev *vdev, keel_error **err);
int virtio_mmio_attach(struct keel_vm *vm, struct virtio_dev *vdev, keel_error **err);

/* virtio-mmio devices: at most this many per VM (one interrupt line each). */
#define VIRTIO_MMIO_MAX_DEVICES 8
#define VIRTIO_MMIO_SIZE 0x200
#define VIRTIO_MMIO_STRIDE 0x1000

/*
 * Appends " virtio_mmio.device=0x200@0x<base>:<irq>" for each virtio-mmio
 * device of the VM to the NUL-terminated string in `buf` (`len` bytes in
 * all).  Returns the number of characters appended, or -1 (buf unchanged)
 * when they do not fit.
 */
int virtio_mmio_cmdline(struct keel_vm *vm, char *buf, size_t len);

#endif

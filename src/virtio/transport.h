/* SPDX-License-Identifier: MIT */
/*
 * virtio transports: modern virtio-pci (virtio/transport_pci.c) and
 * virtio-mmio version 2 (virtio/transport_mmio.c).  The machine builder
 * picks one per VM and attaches each virtio device to it.
 *
 * Attaching: the device has called virtio_dev_init() (and set up whatever
 * it watches); on success the transport owns it: it is one of the VM's
 * devices (devctx_add), reset with the VM (status 0) and, when the VM is
 * destroyed, stopped, removed from the guest's view and released through
 * ops->destroy (which calls virtio_dev_fini() and frees it).  On failure
 * nothing is kept and the caller still owns the device.
 */
#ifndef KEEL_VIRTIO_TRANSPORT_H
#define KEEL_VIRTIO_TRANSPORT_H

#include <stdint.h>

#include "core/error.h"

struct pci_host;
struct virtio_dev;

/* A PCI function on `host`'s bus 0 (BARs, MSI-X, INTx). */
int virtio_pci_attach(struct pci_host *host, struct virtio_dev *vdev, keel_error **err);

/* The register window virtio-mmio decodes, and the builder's spacing of windows. */
#define VIRTIO_MMIO_SIZE 0x200
#define VIRTIO_MMIO_STRIDE 0x1000

/* A virtio-mmio window at `base` (VIRTIO_MMIO_SIZE bytes) on ISA line `irq`. */
int virtio_mmio_attach(struct virtio_dev *vdev, uint64_t base, unsigned int irq,
		       keel_error **err);

#endif
